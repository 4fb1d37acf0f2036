"""Loads the YAML configuration: the packaged defaults, overlaid by a user file.

Model and gazetteer values are resource references (see `stancebeam.classifier.resources`):
`package:...` and `gs://...`-style URIs are kept as written, so that each worker resolves them
in its own install or through Beam's filesystems. A relative local path in a user's file is made
absolute against that file's folder at launch; a local path must then exist on every worker.
"""
from __future__ import annotations

import copy
import posixpath
from pathlib import Path

import yaml

from stancebeam.classifier.resources import (ResourceError, is_packaged, is_uri, normalise,
                                             read_bytes)

# Package data (`stancebeam.configs`), so a wheel install finds it as a checkout does.
DEFAULT_CONFIG = "package:configs/default.yaml"
# Keys whose values are resource references; relative paths are relative to the file's folder.
PATH_KEYS = {("model", "dir"), ("model", "stance_dir"), ("nlp", "gazetteer")}
# The config key of each task's model directory.
MODEL_DIR_KEYS = {"sentiment": "dir", "stance": "stance_dir"}


class ConfigError(ValueError):
    """The configuration file is missing, not YAML, or names unknown keys."""


def _relative_to(path: str, value: str) -> str:
    """A reference in the file `path`, with a relative local path made relative to its folder."""
    if is_uri(value) or is_packaged(value) or Path(value).is_absolute():
        return value
    if is_uri(path) or is_packaged(path):  # a config on GCS (a Flex Template parameter)
        return posixpath.join(posixpath.dirname(path), value)
    return normalise(value, Path(path).parent)


def _read(path: str) -> dict:
    """One YAML file: a local path, `package:configs/NAME.yaml` or a Beam filesystem URI."""
    try:
        text = read_bytes(path).decode("utf-8")
    except ResourceError as e:
        raise ConfigError(f"config file {path} does not exist or cannot be read: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {path} is not UTF-8: {e}") from e
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping")
    for section, key in PATH_KEYS:
        value = (data.get(section) or {}).get(key)
        if isinstance(value, str):
            data[section][key] = _relative_to(path, value)
    return data


def _overlay(base: dict, update: dict, where: str = "") -> dict:
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if key not in base:
            raise ConfigError(f"unknown config key {where}{key!r}; known: {sorted(base)}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {where}{key!r} must be a mapping")
            merged[key] = _overlay(base[key], value, f"{where}{key}.")
        else:
            merged[key] = value
    return merged


def default_model_dir(task: str = "sentiment") -> str:
    """The model reference of one task in the packaged default config (`package:models/...`)."""
    return load_config()["model"][MODEL_DIR_KEYS[task]]


def load_config(path: str | Path | None = None) -> dict:
    """The default config, with the keys of `path` (if given) replacing the defaults."""
    config = _read(DEFAULT_CONFIG)
    if path:
        config = _overlay(config, _read(str(path)))
    return config
