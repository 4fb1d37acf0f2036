"""Loads the YAML configuration: the packaged defaults, overlaid by a user file."""
from __future__ import annotations

import copy
from importlib.resources import files
from pathlib import Path

import yaml

# Package data (`stancebeam.configs`), so a wheel install finds it as a checkout does.
DEFAULT_CONFIG = Path(str(files("stancebeam.configs").joinpath("default.yaml")))
# Keys whose values are paths, resolved against the folder of the file that set them.
PATH_KEYS = {("model", "dir"), ("model", "stance_dir"), ("nlp", "gazetteer")}
# The config key of each task's model directory.
MODEL_DIR_KEYS = {"sentiment": "dir", "stance": "stance_dir"}


class ConfigError(ValueError):
    """The configuration file is missing, not YAML, or names unknown keys."""


def _read(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping")
    for section, key in PATH_KEYS:
        value = (data.get(section) or {}).get(key)
        if isinstance(value, str) and "://" not in value and not Path(value).is_absolute():
            data[section][key] = str((path.parent / value).resolve())
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
    """The model directory of one task in the packaged default config."""
    return load_config()["model"][MODEL_DIR_KEYS[task]]


def load_config(path: str | Path | None = None) -> dict:
    """The default config, with the keys of `path` (if given) replacing the defaults."""
    config = _read(DEFAULT_CONFIG)
    if path:
        config = _overlay(config, _read(Path(path)))
    return config
