"""Fetch: the bytes of every file, from the content store, verified against their SHA-1.

Reasons: ``skipped_content`` (the archive did not keep the blob), ``symlink`` (the entry is a
symbolic link: its blob is a path, not a file), ``content_missing`` (no content row, or no blob in
the store), ``too_large`` (decided from the content table's length, so large blobs are never
downloaded), ``content_corrupt`` (bad gzip, or bytes that do not hash to the id), ``fetch_failed``
(access refused, or reads that kept failing after the retries; detail: what and the error class).

A store that cannot be reached at all, or that refuses every read of a batch, stops the run
(``StoreUnreadable``): a version of nothing but ``fetch_failed`` rows would look complete and be
useless.
"""

from __future__ import annotations

import hashlib
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa
from isal import isal_zlib  # gzip via Intel ISA-L: ~1.8x zlib's speed here

from pipeline.content_store import ContentStore, StoreUnreadable
from pipeline.storage import FORBIDDEN, StorageConfig, classify
from stages.base import Reason, RowStage, StageResult, binary_array, split

_GZIP = 16 + zlib.MAX_WBITS


@dataclass(frozen=True)
class FetchConfig:
    """The ``[fetch]`` section: files over ``max_file_bytes`` (The Stack v2: 10 MiB) are not fetched
    (ledger: too_large)."""

    max_file_bytes: int = 10 * 1024 * 1024


@dataclass(frozen=True)
class Fetch(RowStage):
    """Fetch stage: adds a ``data`` column (the original bytes) to walk rows.

    ``threads``: concurrent reads from a remote store (a local folder is read sequentially); an
    execution setting, not part of the output's identity. ``storage_options``: fsspec options of
    the store, as ``(key, value)`` pairs. The resource is the opened ``ContentStore``.
    """

    store_url: str
    config: FetchConfig = field(default_factory=FetchConfig)
    threads: int = 8
    storage_options: tuple[tuple[str, Any], ...] = ()
    storage: StorageConfig = field(default_factory=StorageConfig)
    name: ClassVar[str] = "fetch"
    reads_content: ClassVar[bool] = True

    def setup(self) -> ContentStore:
        return ContentStore(self.store_url, dict(self.storage_options), self.storage)

    def process(self, table: pa.Table, store: ContentStore) -> StageResult:
        """Walk rows in (WALK_SCHEMA); the same rows with their bytes out (``data``, binary)."""
        status = table["status"].to_pylist()
        blob_ids = table["blob_id"].to_pylist()
        lengths = table["length"].to_pylist()
        skip_reasons = table["skip_reason"].to_pylist()
        symlinks = table["is_symlink"].to_pylist() if "is_symlink" in table.column_names else [False] * len(status)
        reasons: list[Reason | None] = [None] * table.num_rows
        details: list[str | None] = [None] * table.num_rows
        for i, st in enumerate(status):
            if symlinks[i]:
                reasons[i], details[i] = Reason.SYMLINK, "a symbolic link: its blob is the target path"
            elif st is None:
                reasons[i], details[i] = Reason.CONTENT_MISSING, "no row in the content table"
            elif st != "visible":
                reasons[i] = Reason.SKIPPED_CONTENT
                details[i] = skip_reasons[i] or f"content status {st}"
            elif lengths[i] is not None and lengths[i] > self.config.max_file_bytes:
                reasons[i], details[i] = Reason.TOO_LARGE, f"{lengths[i]} bytes > {self.config.max_file_bytes}"
        wanted = sorted({blob_ids[i] for i in range(len(reasons)) if reasons[i] is None})
        if store.is_local or self.threads <= 1:
            fetched = {sha1: fetch_blob(store, sha1) for sha1 in wanted}
        else:  # object stores are latency-bound: overlap the requests
            with ThreadPoolExecutor(max_workers=self.threads) as pool:
                fetched = dict(zip(wanted, pool.map(lambda sha1: fetch_blob(store, sha1), wanted), strict=True))
        data: list[bytes | None] = [None] * table.num_rows
        for i, blob in enumerate(blob_ids):
            if reasons[i] is not None:
                continue
            payload, problem = fetched[blob]
            if payload is None:
                reasons[i], details[i] = _problem_reason(problem)
            else:
                data[i] = payload
        refused = [p for p, problem in fetched.values() if problem.startswith("forbidden")]
        if len(refused) >= _REFUSALS and len(refused) == len(fetched):
            raise StoreUnreadable(f"{self.store_url}: the content store refuses every read ({len(refused)} blobs "
                                  "in a row, access denied); check [storage] credentials; nothing was written")
        with_data = table.append_column("data", binary_array(data))
        kept, dropped, counters = split(self.name, with_data, reasons, details)
        counters["bytes_fetched"] = sum(len(p) for p, _ in fetched.values() if p is not None)
        return StageResult(kept, dropped, counters)


#: A batch whose every read (this many at least) is refused stops the run.
_REFUSALS = 4


def _problem_reason(problem: str) -> tuple[Reason, str]:
    if problem == "missing":
        return Reason.CONTENT_MISSING, "no blob in the content store"
    if problem.startswith(("forbidden", "read failed")):
        return Reason.FETCH_FAILED, problem
    return Reason.CONTENT_CORRUPT, problem


def fetch_blob(store: ContentStore, sha1: str) -> tuple[bytes | None, str]:
    """The verified bytes of one blob, or None and what went wrong: ``missing``, ``forbidden
    (ErrorClass)``, ``read failed after N retries (ErrorClass)``, ``bad gzip: ...``, ``sha1 mismatch``."""
    try:
        raw = store.get(sha1)
    except StoreUnreadable:
        raise
    except PermissionError as e:
        return None, f"forbidden ({type(e).__name__})"
    except Exception as e:  # noqa: BLE001 - any other read error, after the retries, is this blob's problem
        if classify(e) == FORBIDDEN:
            return None, f"forbidden ({type(e).__name__})"
        return None, f"read failed after {store.storage.retries} retries ({type(e).__name__})"
    if raw is None:
        return None, "missing"
    try:
        payload = isal_zlib.decompress(raw, _GZIP)
    except (isal_zlib.error, zlib.error) as e:
        return None, f"bad gzip: {e}"
    if hashlib.sha1(payload).hexdigest() != sha1:
        return None, "sha1 mismatch: the stored bytes do not hash to the blob id"
    return payload, ""
