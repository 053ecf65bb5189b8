"""The content store: ``<root>/content/<sha1>``, each blob gzip-compressed, on any fsspec filesystem.

Production setting: ``s3://softwareheritage`` (the public bucket; anonymous access is the default
for ``s3://`` URLs unless storage options say otherwise).
"""

from __future__ import annotations

from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from pipeline.errors import PipelineError


class ContentStore:
    """Read gzip blobs by their SHA-1 from a folder or bucket."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        options = dict(storage_options or {})
        if url.startswith("s3://"):
            options.setdefault("anon", True)
        self.url = url.rstrip("/")
        self.fs, root = fsspec.core.url_to_fs(self.url, **options)
        self.root = root.rstrip("/")

    @property
    def is_local(self) -> bool:
        """True for a local folder, where reads are fast enough that threads only add overhead."""
        return isinstance(self.fs, LocalFileSystem)

    def check(self) -> None:
        """Fail with one clear line if the store does not exist."""
        if not self.fs.isdir(self.root) and not self.url.startswith("s3://"):
            raise PipelineError(f"{self.url}: content store does not exist")

    def get(self, sha1: str) -> bytes | None:
        """The stored (still compressed) bytes of blob ``sha1``, or None when it is not there."""
        try:
            with self.fs.open(f"{self.root}/content/{sha1}", "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None
