"""Runner profiles: named YAML files of Beam pipeline options, turned into command-line flags."""
from __future__ import annotations

import logging
import os
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

PROFILE_DIR = Path(str(files("stancebeam.configs.profiles")))

# ${VAR} or ${VAR:-default}, as in a shell.
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

_LOGGER = logging.getLogger(__name__)


class ProfileError(ValueError):
    """A profile that cannot be found or does not have the expected shape."""


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def _resolve_path(name_or_path: str) -> Path:
    # A bare name is a profile shipped in configs/profiles; anything path-like is taken as is.
    if name_or_path.endswith((".yaml", ".yml")) or os.sep in name_or_path or "/" in name_or_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise ProfileError(f"profile file {name_or_path!r} does not exist")
        return path
    path = PROFILE_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ProfileError(
            f"unknown profile {name_or_path!r}; available profiles: "
            f"{', '.join(available_profiles()) or '(none)'} (in {PROFILE_DIR}); "
            "or give a path to a .yaml file")
    return path


def _expand(value: Any, unresolved: set[str]) -> Any:
    if isinstance(value, list):
        return [_expand(v, unresolved) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(m: re.Match) -> str:
        name, default = m.group(1), m.group(2)
        if os.environ.get(name):  # set and non-empty, like the shell's ${VAR:-default}
            return os.environ[name]
        if default is not None:
            return default
        # Left in place so the flag still shows what is missing; the command line may override it.
        unresolved.add(name)
        return m.group(0)

    return _VAR.sub(substitute, value)


def load_profile(name_or_path: str) -> dict:
    """Loads a profile by name (configs/profiles/NAME.yaml) or from a .yaml path.

    Args:
      name_or_path: a profile name such as "dataflow", or a path to a profile YAML file.

    Returns:
      {"name", "path", "description", "options", "unresolved"}: options with ${VAR} expanded from
      the environment; "unresolved" lists the variables that were unset and had no default.

    Raises:
      ProfileError: the profile does not exist or is malformed.
    """
    path = _resolve_path(name_or_path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("description"), str):
        raise ProfileError(f"{path}: a profile needs a one-line 'description:' string")
    options = data.get("options")
    if not isinstance(options, dict):
        raise ProfileError(f"{path}: 'options:' must be a mapping of Beam option names to values")
    unresolved: set[str] = set()
    expanded = {}
    for key, value in options.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise ProfileError(f"{path}: option {key!r} is not a Beam option name (temp_location)")
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, (dict, list)) for v in items):
            raise ProfileError(f"{path}: option {key!r} must be a scalar or a list of scalars")
        expanded[key] = _expand(value, unresolved)
    return {
        "name": path.stem,
        "path": str(path),
        "description": data["description"],
        "options": expanded,
        "unresolved": sorted(unresolved),
    }


def profile_argv(profile: dict) -> list[str]:
    """Turns a profile's options into Beam flags: lists repeat the flag, true is a bare flag."""
    argv = []
    for key, value in profile["options"].items():
        if value is None or value is False:
            continue  # store_true flags have no "off" spelling; absent is off.
        if value is True:
            argv.append(f"--{key}")
        elif isinstance(value, list):
            argv.extend(f"--{key}={item}" for item in value)
        else:
            argv.append(f"--{key}={value}")
    return argv


def _flag_names(argv: list[str]) -> set[str]:
    return {a[2:].split("=", 1)[0].replace("-", "_") for a in argv if a.startswith("--")}


def apply_profile(argv: list[str], name_or_path: str) -> list[str]:
    """Returns the profile's flags followed by argv, so that argv wins.

    Beam parses options with argparse, which keeps the last occurrence of a single-valued flag, so
    --region=... on the command line replaces the profile's region. Append-style options
    (experiments, dataflow_service_options, environment_option, ...) are different: argparse
    accumulates them, so the command line adds to the profile's list and cannot remove from it.
    """
    profile = load_profile(name_or_path)
    given = _flag_names(argv)
    # An unset variable only matters in an option that the command line does not replace.
    left = {name for key, value in profile["options"].items() if key not in given
            for name, _ in _VAR.findall(str(value))}
    missing = sorted(left & set(profile["unresolved"]))
    if missing:
        _LOGGER.warning(
            "profile %s: environment variable(s) %s not set; set them or pass the options on the "
            "command line", profile["name"], ", ".join(missing))
    return profile_argv(profile) + list(argv)
