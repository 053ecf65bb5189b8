"""The content store: ``<root>/content/<sha1>``, each blob gzip-compressed, on any fsspec filesystem.

Production setting: ``s3://softwareheritage`` (the public bucket; read anonymously unless
``[storage]`` configures credentials). A blob is read with one GET (``cat_file``: no HEAD first,
half the round trips of ``open`` + ``read`` on a fetch that is latency-bound at archive scale).
"""

from __future__ import annotations

from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from pipeline.errors import PipelineError
from pipeline.storage import FORBIDDEN, MISSING, UNREACHABLE, StorageConfig, classify, with_retries


class StoreUnreadable(PipelineError):
    """The content store as a whole cannot be read: the run stops before any version is written."""


class ContentStore:
    """Read gzip blobs by their SHA-1 from a folder or bucket (``options``: fsspec's)."""

    def __init__(self, url: str, options: dict[str, Any] | None = None,
                 storage: StorageConfig | None = None) -> None:
        self.url = url.rstrip("/")
        self.storage = storage or StorageConfig()
        try:
            self.fs, root = fsspec.core.url_to_fs(self.url, **(options or {}))
        except (ImportError, ValueError, TypeError) as e:
            raise PipelineError(f"{self.url}: cannot open the content store ({type(e).__name__}: {e})") from e
        self.root = root.rstrip("/")

    @property
    def is_local(self) -> bool:
        """True for a local folder, where reads are fast enough that threads only add overhead."""
        return isinstance(self.fs, LocalFileSystem)

    def check(self) -> None:
        """Fail with one clear line if the store does not exist or cannot be reached at all.

        A local store must be a folder. A remote one is asked for a blob that cannot exist: "not
        found" or "forbidden" (S3 answers 403 for a missing key to readers who may not list) both
        prove the store answers; no connection is a read problem, reported now, before any work.
        """
        if self.is_local:
            if not self.fs.isdir(self.root):
                raise PipelineError(f"{self.url}: content store does not exist")
            return
        try:
            with_retries(lambda: self.fs.cat_file(f"{self.root}/content/{'0' * 40}"), self.storage)
        except Exception as e:  # noqa: BLE001 - classified below; never a traceback for the user
            if classify(e) in (MISSING, FORBIDDEN):
                return
            raise StoreUnreadable(f"{self.url}: content store cannot be read ({type(e).__name__}); "
                                  "check the URL, the network and [storage]") from None

    def get(self, sha1: str) -> bytes | None:
        """The stored (still compressed) bytes of blob ``sha1``, or None when it is not there.

        Raises ``PermissionError`` when access is refused, ``StoreUnreadable`` when the store cannot
        be reached, and the last error of a read that kept failing after the retries.
        """
        read = _read_file if self.is_local else self.fs.cat_file  # local: no fsspec file object per blob
        try:
            return with_retries(lambda: read(f"{self.root}/content/{sha1}"), self.storage)
        except Exception as e:
            kind = classify(e)
            if kind == MISSING:
                return None
            if kind == UNREACHABLE:
                raise StoreUnreadable(f"{self.url}: content store unreachable while reading blobs "
                                      f"({type(e).__name__}); nothing was written") from None
            raise


def _read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
