"""A Beam filesystem over an in-memory object store (`memtest://`), standing in for GCS or S3.

Defining the class registers the scheme: Beam's `FileSystems` picks the subclass whose
`scheme()` matches. Like GCS it has no directories (prefix listing), and it counts reads so that
tests can tell whether a resource was fetched again.
"""
from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

from apache_beam.io.filesystem import FileMetadata
from apache_beam.io.localfilesystem import LocalFileSystem

SCHEME = "memtest"


class MemoryFileSystem(LocalFileSystem):
    objects: dict[str, bytes] = {}
    reads: Counter = Counter()

    @classmethod
    def scheme(cls):
        return SCHEME

    @classmethod
    def upload(cls, folder: Path, uri: str) -> str:
        """Stores every file under `folder` as an object under `uri`; returns the uri."""
        for path in folder.rglob("*"):
            if path.is_file():
                cls.objects[f"{uri}/{path.relative_to(folder).as_posix()}"] = path.read_bytes()
        return uri

    def join(self, basepath, *paths):
        return "/".join([basepath.rstrip("/"), *paths])

    def has_dirs(self):
        return False

    def _list(self, dir_or_prefix):
        for path, data in sorted(self.objects.items()):
            if path.startswith(dir_or_prefix):
                yield FileMetadata(path, len(data), 0.0)

    def exists(self, path):
        return path in self.objects

    def metadata(self, path):
        return FileMetadata(path, len(self.objects[path]), 0.0)

    def open(self, path, mime_type="application/octet-stream", compression_type=None):
        if path not in self.objects:
            raise FileNotFoundError(path)
        self.reads[path] += 1
        return io.BytesIO(self.objects[path])
