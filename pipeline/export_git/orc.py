"""Writing the export: the ORC tables (schemas, buffered batches, atomic renames), the
conversion of dates and persons to their column values (timestamps, pseudonyms), and the
gzip-compressed content store."""

from __future__ import annotations

import os
import uuid
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import attr
import pyarrow as pa
import pyarrow.orc as orc
from swh.model.hashutil import DEFAULT_ALGORITHMS, MultiHash
from swh.model.model import Content, Person, SkippedContent, TimestampWithTimezone

from .git import _CHUNK

_TS = pa.timestamp("us")  # written as ORC timestamps; pyarrow reads them back as timestamp[ns]

# Column names and types of the public Software Heritage graph dataset (ORC).
TABLES: dict[str, list[tuple[str, pa.DataType]]] = {
    "origin": [("id", pa.string()), ("url", pa.string())],
    "origin_visit": [("origin", pa.string()), ("visit", pa.int64()), ("date", _TS), ("type", pa.string())],
    "origin_visit_status": [
        ("origin", pa.string()),
        ("visit", pa.int64()),
        ("date", _TS),
        ("status", pa.string()),
        ("snapshot", pa.string()),
        ("type", pa.string()),
    ],
    "snapshot": [("id", pa.string())],
    "snapshot_branch": [
        ("snapshot_id", pa.string()),
        ("name", pa.binary()),
        ("target", pa.string()),
        ("target_type", pa.string()),
    ],
    "release": [
        ("id", pa.string()),
        ("name", pa.binary()),
        ("message", pa.binary()),
        ("target", pa.string()),
        ("target_type", pa.string()),
        ("author", pa.binary()),
        ("date", _TS),
        ("date_offset", pa.int16()),
        ("date_raw_offset_bytes", pa.binary()),
        ("raw_manifest", pa.binary()),
    ],
    "revision": [
        ("id", pa.string()),
        ("message", pa.binary()),
        ("author", pa.binary()),
        ("date", _TS),
        ("date_offset", pa.int16()),
        ("date_raw_offset_bytes", pa.binary()),
        ("committer", pa.binary()),
        ("committer_date", _TS),
        ("committer_offset", pa.int16()),
        ("committer_date_raw_offset_bytes", pa.binary()),
        ("directory", pa.string()),
        ("type", pa.string()),
        ("raw_manifest", pa.binary()),
    ],
    "revision_history": [("id", pa.string()), ("parent_id", pa.string()), ("parent_rank", pa.int32())],
    "revision_extra_headers": [("id", pa.string()), ("key", pa.binary()), ("value", pa.binary())],
    "directory": [("id", pa.string()), ("raw_manifest", pa.binary())],
    "directory_entry": [
        ("directory_id", pa.string()),
        ("name", pa.binary()),
        ("type", pa.string()),
        ("target", pa.string()),
        ("perms", pa.int32()),
    ],
    "content": [
        ("sha1", pa.string()),
        ("sha1_git", pa.string()),
        ("sha256", pa.string()),
        ("blake2s256", pa.string()),
        ("length", pa.int64()),
        ("status", pa.string()),
        ("data", pa.binary()),
    ],
    "skipped_content": [
        ("sha1", pa.string()),
        ("sha1_git", pa.string()),
        ("sha256", pa.string()),
        ("blake2s256", pa.string()),
        ("length", pa.int64()),
        ("status", pa.string()),
        ("reason", pa.string()),
    ],
}

# swh.export names the files of a sub-table with the uuid of its main table.
_MAIN_TABLE = {
    "snapshot_branch": "snapshot",
    "revision_history": "revision",
    "revision_extra_headers": "revision",
    "directory_entry": "directory",
}

_FLUSH_ROWS = 100_000  # rows buffered per table before they are written out
_GZIP_LEVEL = 6  # zlib's default: ~4x faster than 9 for ~1% larger files
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _OrcTable:
    """Buffered rows of one table, written to ORC in batches and renamed into place on close."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")
        self.schema = pa.schema([pa.field(c, t) for c, t in TABLES[name]])
        self.columns: list[list[Any]] = [[] for _ in TABLES[name]]
        self.rows = 0
        self._writer: orc.ORCWriter | None = orc.ORCWriter(str(self.tmp), compression="zstd")

    def add(self, *row: Any) -> None:
        for col, value in zip(self.columns, row, strict=True):
            col.append(value)
        self.rows += 1
        if len(self.columns[0]) >= _FLUSH_ROWS:
            self._flush()

    def extend(self, *columns: list[Any]) -> None:
        """Add several rows at once, given column by column."""
        for col, values in zip(self.columns, columns, strict=True):
            col.extend(values)
        self.rows += len(columns[0])
        if len(self.columns[0]) >= _FLUSH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self.columns[0] or self.rows == 0:
            arrays = [pa.array(col, type=f.type) for col, f in zip(self.columns, self.schema, strict=True)]
            assert self._writer is not None
            self._writer.write(pa.Table.from_arrays(arrays, schema=self.schema))
            self.columns = [[] for _ in self.columns]

    def close(self) -> None:
        """Write the table; one with no rows is an empty folder, as Software Heritage's writer
        leaves it (it creates a file only for a table that has rows)."""
        self._flush()
        assert self._writer is not None
        self._writer.close()
        self._writer = None
        if self.rows:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
        for stale in self.path.parent.glob(f"{self.name}-*.orc"):
            if stale != self.path:
                stale.unlink()  # left by an earlier export into the same folder

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.tmp.unlink(missing_ok=True)


def _ts(date: TimestampWithTimezone | None) -> tuple[int | None, int | None, bytes | None]:
    """(UTC microseconds since epoch, offset in minutes, raw offset bytes), as swh.export."""
    if date is None:
        return None, None, None
    micros = date.timestamp.seconds * 1_000_000 + date.timestamp.microseconds
    return micros, date.offset_minutes(), date.offset_bytes


def _dt_micros(dt: datetime) -> int:
    delta = dt - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _pseudonym(person: Person | None) -> bytes | None:
    return None if person is None else person.anonymize().fullname


def _aware(dt: datetime | None) -> datetime | None:
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)


def _write_atomic(path: Path, chunks: Any) -> None:
    if path.exists():
        return  # content-addressed and written atomically: already complete
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as f:
        for chunk in chunks:
            f.write(chunk)
    os.replace(tmp, path)


def _store_content(
    git_id: bytes, data: bytes, store: Path, max_content_size: int | None
) -> Content | SkippedContent:
    """Hash one blob with swh.model and write it gzip-compressed to the content store."""
    if max_content_size is not None and len(data) >= max_content_size:
        content: Content | SkippedContent = SkippedContent.from_data(data, reason="Content too large")
    else:
        content = Content.from_data(data)
        _write_atomic(store / content.sha1.hex(), [zlib.compress(data, _GZIP_LEVEL, wbits=31)])
        content = attr.evolve(content, data=None)
    if content.sha1_git != git_id:
        raise ValueError(f"blob {git_id.hex()}: sha1_git mismatch")
    return content


def _stream_content(
    git_id: bytes, size: int, stream: IO[bytes], store: Path, max_content_size: int | None
) -> Content | SkippedContent:
    """Hash (and store) a large blob chunk by chunk, never holding it whole in memory."""
    skip = max_content_size is not None and size >= max_content_size
    hasher = MultiHash(DEFAULT_ALGORITHMS, length=size)
    tmp = store / f".stream.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        with open(os.devnull if skip else tmp, "wb") as f:
            compressor = zlib.compressobj(_GZIP_LEVEL, wbits=31)
            left = size
            while left:
                chunk = stream.read(min(_CHUNK, left))
                if not chunk:
                    raise RuntimeError(f"git cat-file: short read for blob {git_id.hex()}")
                left -= len(chunk)
                hasher.update(chunk)
                if not skip:
                    f.write(compressor.compress(chunk))
            if not skip:
                f.write(compressor.flush())
        hashes = hasher.digest()
        if skip:
            content: Content | SkippedContent = SkippedContent(
                **hashes, length=size, status="absent", reason="Content too large"
            )
        else:
            content = Content(**hashes, length=size, status="visible")
            target = store / content.sha1.hex()
            if target.exists():
                tmp.unlink()
            else:
                os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    if content.sha1_git != git_id:
        raise ValueError(f"blob {git_id.hex()}: sha1_git mismatch")
    return content
