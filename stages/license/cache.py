"""The persistent detection cache: what ScanCode found in each license blob, kept across versions."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

SCANCODE_VERSION = metadata.version("scancode-toolkit")
CACHE_SCHEMA = pa.schema([
    pa.field("sha1", pa.string(), nullable=False),
    pa.field("scancode_version", pa.string(), nullable=False),
    pa.field("expressions", pa.list_(pa.string()), nullable=False),
])
_CACHE_GLOB = "licenses-*.parquet"
_SHA1 = re.compile(r"^[0-9a-f]{40}$")


class LicenseCache:
    """What ScanCode found in each license blob: ``(sha1, scancode_version) → SPDX expressions``.

    Persisted as small Parquet files under ``directory`` (kept across dataset versions; entries of
    other ScanCode versions are ignored). Each ``flush`` writes its new entries as one new file,
    named by the SHA-256 of its entries (so two writers can never collide, and the same entries give
    the same name), written to a temporary name and renamed. Reading recomputes that hash: a file
    that cannot be read, has another schema or does not hash to its name is ignored with a warning.
    Only complete scans are stored (never a timeout, a failure or a truncated file).
    ``directory=None``: in memory only.
    """

    def __init__(self, directory: Path | str | None, scancode_version: str = SCANCODE_VERSION) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.scancode_version = scancode_version
        self.ignored_files = 0
        self._ignored_reported = 0
        self._bad: set[str] = set()
        self._entries: dict[str, tuple[str, ...]] = {}
        self._pending: dict[str, tuple[str, ...]] = {}
        self._read: set[str] = set()
        self._lock = threading.Lock()
        self.refresh()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, sha1: str) -> tuple[str, ...] | None:
        """The expressions stored for ``sha1`` under this ScanCode version, or None."""
        return self._entries.get(sha1)

    def put(self, sha1: str, expressions: Sequence[str]) -> None:
        """Remember a complete scan; written by the next ``flush``. Keys that are not SHA-1 hex are not kept."""
        if not _SHA1.match(sha1):
            return
        value = tuple(expressions)
        with self._lock:
            if self._entries.get(sha1) != value:
                self._entries[sha1] = value
                self._pending[sha1] = value

    def refresh(self) -> int:
        """Read cache files written since the last look (by this or other workers); returns the entries added."""
        if self.directory is None or not self.directory.is_dir():
            return 0
        added = 0
        for path in sorted(self.directory.glob(_CACHE_GLOB)):
            if path.name in self._read:
                continue
            self._read.add(path.name)
            entries = self._load(path)
            for sha1, version, expressions in entries:
                if version == self.scancode_version and sha1 not in self._entries:
                    self._entries[sha1] = expressions
                    added += 1
        return added

    def _load(self, path: Path) -> list[tuple[str, str, tuple[str, ...]]]:
        try:
            table = pq.read_table(path)
            if not table.schema.equals(CACHE_SCHEMA, check_metadata=False):
                raise ValueError(f"schema {table.schema} is not the cache's")
            entries = [
                (sha1, version, tuple(expressions))
                for sha1, version, expressions in zip(
                    table["sha1"].to_pylist(),
                    table["scancode_version"].to_pylist(),
                    table["expressions"].to_pylist(),
                    strict=True,
                )
            ]
            if any(not isinstance(s, str) or not _SHA1.match(s) or not isinstance(v, str) for s, v, _ in entries):
                raise ValueError("a row is not a (sha1, version, expressions) entry")
            if path.name != _cache_file_name(entries):
                raise ValueError("its content does not hash to its name")
        except Exception as e:  # noqa: BLE001 - any damage: the file is not trusted, the run goes on
            self.ignored_files += 1
            self._bad.add(path.name)
            log.warning("license cache file %s ignored: %s", path, e)
            return []
        return entries

    def ignored_since_last_call(self) -> int:
        """How many cache files were ignored (damaged) since the previous call."""
        count, self._ignored_reported = self.ignored_files - self._ignored_reported, self.ignored_files
        return count

    def flush(self) -> Path | None:
        """Write the entries added since the last flush as one new file; returns its path (None if none)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if self.directory is None or not pending:
            return None
        entries = [(sha1, self.scancode_version, pending[sha1]) for sha1 in sorted(pending)]
        return self._write(entries)

    def compact(self) -> Path | None:
        """Merge every readable cache file into one (for the driver, at the end of a run)."""
        if self.directory is None or not self.directory.is_dir():
            return None
        merged: dict[tuple[str, str], tuple[str, ...]] = {}
        paths = sorted(self.directory.glob(_CACHE_GLOB))
        for path in paths:
            for sha1, version, expressions in self._load(path):
                merged.setdefault((sha1, version), expressions)
        if not merged:
            return None
        target = self._write([(sha1, version, merged[sha1, version]) for sha1, version in sorted(merged)])
        for path in paths:
            if path != target:
                path.unlink(missing_ok=True)
        return target

    def _write(self, entries: list[tuple[str, str, tuple[str, ...]]]) -> Path:
        assert self.directory is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        name = _cache_file_name(entries)
        target = self.directory / name
        self._read.add(name)
        if target.exists() and name not in self._bad:
            return target  # the same entries, already written (by another worker, or an earlier run)
        self._bad.discard(name)
        table = pa.table(
            {
                "sha1": [e[0] for e in entries],
                "scancode_version": [e[1] for e in entries],
                "expressions": [list(e[2]) for e in entries],
            },
            schema=CACHE_SCHEMA,
        )
        tmp = self.directory / f".tmp-{name}-{os.getpid()}-{threading.get_ident()}"
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, target)
        return target


def _cache_file_name(entries: Iterable[tuple[str, str, tuple[str, ...]]]) -> str:
    digest = hashlib.sha256()
    for sha1, version, expressions in entries:
        digest.update("\t".join([sha1, version, *expressions]).encode() + b"\n")
    return f"licenses-{digest.hexdigest()[:32]}.parquet"
