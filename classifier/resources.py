"""Resource references: names for models and data files that each machine resolves for itself.

The launcher pickles a reference, never a path of its own disk, and every worker resolves it:

- `package:SUB/REST` is data installed with stancebeam (`package:models/tsc-minilm` is
  `stancebeam.models` / `tsc-minilm`), found with importlib.resources in the worker's own install.
- `SCHEME://...` (`gs://`, `s3://`, ...) is read through Beam's `FileSystems` and copied once per
  machine into a local cache; a model directory is verified against its manifest's sha256 first.
- anything else is a local path, used as is: it must exist on every worker (a shared mount).

No torch here: the launcher uses this module to read a manifest before anything is loaded.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from importlib.resources import files
from pathlib import Path

PACKAGE = "package:"
MANIFEST = "stancebeam_model.json"
WEIGHTS = "weights.safetensors"
_CHUNK = 1 << 20


class ResourceError(RuntimeError):
    """A reference that names nothing, or a fetched copy that does not match its checksum."""


def is_packaged(ref: str) -> bool:
    return str(ref).startswith(PACKAGE)


def is_uri(ref: str) -> bool:
    return "://" in str(ref)


def cache_root() -> Path:
    """Where fetched copies live: $STANCEBEAM_CACHE, else the user's cache folder."""
    root = os.environ.get("STANCEBEAM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "stancebeam")
    return Path(root)


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def packaged_path(ref: str) -> Path:
    """The installed file or folder that `package:SUB/REST` names (it may not exist)."""
    sub, _, rest = ref[len(PACKAGE):].strip("/").partition("/")
    if not sub or not rest:
        raise ResourceError(f"{ref!r}: a packaged resource is written package:FOLDER/NAME, "
                            "as in package:models/tsc-minilm")
    try:
        root = files(f"stancebeam.{sub}")
    except ModuleNotFoundError as e:
        raise ResourceError(f"{ref!r}: stancebeam has no package data folder {sub!r}") from e
    # Wheels install as plain folders, so the Traversable is a real path.
    return Path(str(root.joinpath(rest)))


def normalise(ref: str, base: str | os.PathLike | None = None) -> str:
    """A reference that means the same on every machine: relative local paths made absolute.

    Args:
      ref: a reference as written by a user.
      base: the folder a relative path is relative to (default: the current directory).
    """
    ref = str(ref)
    if is_packaged(ref) or is_uri(ref) or os.path.isabs(ref):
        return ref
    return os.path.abspath(os.path.join(base or os.getcwd(), ref))


def _fs():
    # Lazy: Beam is heavy to import, and local and packaged references do not need it.
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def _read_uri(uri: str) -> bytes:
    try:
        with _fs().open(uri) as f:
            return f.read()
    except Exception as e:  # BeamIOError, missing credentials, unknown scheme, ...
        raise ResourceError(f"cannot read {uri}: {e}") from e


def read_bytes(ref: str) -> bytes:
    """The content of a file reference, without caching it (the launcher reads manifests so)."""
    if is_uri(ref):
        return _read_uri(ref)
    path = packaged_path(ref) if is_packaged(ref) else Path(ref)
    if not path.is_file():
        raise ResourceError(f"{ref} does not exist" + (f" ({path})" if str(path) != ref else ""))
    return path.read_bytes()


def join(ref: str, name: str) -> str:
    """`ref`/`name` for a folder reference of any kind."""
    return f"{ref.rstrip('/')}/{name}"


def _publish(tmp: Path, final: Path) -> Path:
    """Renames a complete temporary copy into place; another process may have won the race."""
    try:
        os.rename(tmp, final)
    except OSError:
        if not final.exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # an equal copy is already there
    return final


def _fetch_dir(uri: str) -> Path:
    manifest_bytes = _read_uri(join(uri, MANIFEST))
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError as e:
        raise ResourceError(f"{join(uri, MANIFEST)} is not valid JSON: {e}") from e
    expected = manifest.get("weights_sha256")
    if not expected:
        raise ResourceError(f"{join(uri, MANIFEST)} has no weights_sha256: a model fetched from "
                            "a remote filesystem must pin its weights")
    # The weights' sha256 names the copy; the manifest's own hash keeps an edited manifest apart.
    key = f"{expected[:24]}-{hashlib.sha256(manifest_bytes).hexdigest()[:8]}"
    final = cache_root() / "models" / key
    if (final / MANIFEST).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=final.parent))
    try:
        prefix = uri.rstrip("/") + "/"
        matched = _fs().match([prefix + "**"])[0].metadata_list
        for meta in matched:
            target = tmp / meta.path[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            with _fs().open(meta.path) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
        weights = tmp / manifest.get("weights", WEIGHTS)
        if not weights.is_file():
            raise ResourceError(f"{uri} has no {weights.name}")
        if sha256_file(weights) != expected:
            raise ResourceError(f"{join(uri, weights.name)} does not match the weights_sha256 "
                                f"in its {MANIFEST}: the copy is corrupt or belongs to another model")
        return _publish(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def resolve_dir(ref: str | os.PathLike) -> str:
    """A local folder holding the model directory `ref` names, fetched and cached if remote.

    Raises:
      ResourceError: the reference names nothing, or a fetched copy fails its sha256 check.
    """
    ref = str(ref)
    if is_uri(ref):
        return str(_fetch_dir(ref))
    path = packaged_path(ref) if is_packaged(ref) else Path(ref)
    if is_packaged(ref) and not path.is_dir():
        raise ResourceError(f"{ref} is not installed with stancebeam (looked in {path})")
    return str(path)


def resolve_file(ref: str | os.PathLike) -> str:
    """A local path holding the file `ref` names; a remote file is cached under its sha256."""
    ref = str(ref)
    if not is_uri(ref):
        path = packaged_path(ref) if is_packaged(ref) else Path(ref)
        if not path.is_file():
            raise ResourceError(f"{ref} does not exist" + (f" ({path})" if str(path) != ref else ""))
        return str(path)
    data = _read_uri(ref)
    final = cache_root() / "files" / hashlib.sha256(data).hexdigest()[:32] / ref.rstrip("/").rsplit("/", 1)[-1]
    if not final.is_file():
        final.parent.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".file-", dir=final.parent.parent))
        (tmp / final.name).write_bytes(data)
        _publish(tmp, final.parent)
    return str(final)
