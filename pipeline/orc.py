"""Reading a Software Heritage graph export: the ORC tables in the public layout.

``<export>/orc/<table>/*.orc``, local or on any fsspec filesystem. The unit of reading is one stripe
of one file, so a table of many files and stripes becomes many small, independent pieces.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.orc as orc

from pipeline.errors import PipelineError

#: The tables the walk reads, and the columns it needs of each (never ``data`` or ``raw_manifest``).
TABLE_COLUMNS: dict[str, list[str]] = {
    "origin": ["url"],
    "origin_visit": ["origin", "visit", "date"],
    "origin_visit_status": ["origin", "visit", "date", "status", "snapshot"],
    "snapshot_branch": ["snapshot_id", "name", "target", "target_type"],
    "release": ["id", "target", "target_type"],
    "revision": ["id", "directory", "date", "committer_date"],
    "directory_entry": ["directory_id", "name", "type", "target"],
    "content": ["sha1", "sha1_git", "length", "status"],
    "skipped_content": ["sha1", "sha1_git", "length", "status", "reason"],
}

_US = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Piece:
    """One stripe of one ORC file of a table."""

    table: str
    path: str
    stripe: int


class Export:
    """An export in the public layout, opened through fsspec (``storage_options`` go to fsspec)."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = url.rstrip("/")
        self.fs, root = fsspec.core.url_to_fs(self.url, **(storage_options or {}))
        self.root = root.rstrip("/")
        self._files: dict[str, list[str]] = {}
        self._footers: dict[str, tuple[pa.Schema, int]] = {}

    def check(self) -> None:
        """Fail with one clear line unless every table the walk needs is present and parses."""
        orc_dir = f"{self.root}/orc"
        if not self.fs.isdir(orc_dir):
            raise PipelineError(f"{self.url}: not a Software Heritage export (no orc/ folder)")
        for table in TABLE_COLUMNS:
            files = self.files(table)
            if not files:
                raise PipelineError(f"{orc_dir}/{table}: table missing from the export (no .orc file)")
            for path in files:
                columns = self._footer(path)[0].names
                missing = [c for c in TABLE_COLUMNS[table] if c not in columns]
                if missing:
                    raise PipelineError(f"{path}: table {table} lacks column(s) {', '.join(missing)}")

    def files(self, table: str) -> list[str]:
        """The table's ORC files, sorted."""
        if table not in self._files:
            pattern = f"{self.root}/orc/{table}/*.orc"
            self._files[table] = sorted(self.fs.glob(pattern))
        return self._files[table]

    def schema(self, table: str) -> pa.Schema:
        """The Arrow schema of what ``read`` returns for ``table`` (from the first file's footer)."""
        return empty_table(self._footer(self.files(table)[0])[0], TABLE_COLUMNS[table]).schema

    def pieces(self, table: str) -> list[Piece]:
        """One piece per stripe of every file of ``table``; an empty file still gives one piece."""
        out: list[Piece] = []
        for path in self.files(table):
            nstripes = self._footer(path)[1]
            out.extend(Piece(table, path, s) for s in range(max(nstripes, 1)))
        return out

    def read(self, piece: Piece) -> pa.Table:
        """The needed columns of one piece, timestamps as ``timestamp[us, UTC]``."""
        columns = TABLE_COLUMNS[piece.table]
        with self.fs.open(piece.path, "rb") as f:
            reader = orc.ORCFile(f)
            if reader.nstripes == 0:
                return empty_table(reader.schema, columns)
            try:
                table = reader.read_stripe(piece.stripe, columns=columns)
                table = pa.Table.from_batches([table]) if isinstance(table, pa.RecordBatch) else table
            except pa.ArrowInvalid as e:
                if "out of range" not in str(e):
                    raise PipelineError(f"{piece.path}: stripe {piece.stripe} does not parse: {e}") from e
                table = _read_stripe_row_by_row(self.fs, piece, columns)
        return _normalise(table.select(columns))

    def fingerprint(self) -> dict[str, Any]:
        """A digest of every file of the tables read: relative path, size and checksum.

        Local files are hashed (SHA-256); on object stores the store's own checksum (ETag) is used,
        so fingerprinting a multi-terabyte export does not read it.
        """
        entries = []
        for table in TABLE_COLUMNS:
            for path in self.files(table):
                info = self.fs.info(path)
                checksum = info.get("ETag") or info.get("etag")
                if checksum is None:
                    digest = hashlib.sha256()
                    with self.fs.open(path, "rb") as f:
                        while chunk := f.read(1 << 22):
                            digest.update(chunk)
                    checksum = "sha256:" + digest.hexdigest()
                rel = path[len(self.root) + 1 :]
                entries.append(f"{rel}\t{info['size']}\t{str(checksum).strip(chr(34))}")
        return {
            "files": len(entries),
            "sha256": hashlib.sha256("\n".join(entries).encode()).hexdigest(),
        }

    def _footer(self, path: str) -> tuple[pa.Schema, int]:
        """Schema and stripe count of one ORC file, or one clear error naming it."""
        if path not in self._footers:
            try:
                with self.fs.open(path, "rb") as f:
                    reader = orc.ORCFile(f)
                    self._footers[path] = (reader.schema, reader.nstripes)
            except (pa.ArrowInvalid, OSError) as e:
                raise PipelineError(f"{path}: not a readable ORC file ({e})") from e
        return self._footers[path]


def empty_table(schema: pa.Schema, columns: list[str]) -> pa.Table:
    """An empty table of ``columns`` with the normalised types."""
    return _normalise(pa.schema([schema.field(c) for c in columns]).empty_table())


def _normalise(table: pa.Table) -> pa.Table:
    """ORC timestamps are naive UTC instants: make them ``timestamp[us, UTC]``."""
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type) and f.type != _US:
            col = table.column(i)
            col = col.cast(pa.timestamp("us")) if f.type.unit == "ns" else col
            table = table.set_column(i, pa.field(f.name, _US), col.cast(_US))
    return table


class _Microseconds:
    """pyorc converter: a timestamp as int64 microseconds since the epoch (no range limit to 9999)."""

    @staticmethod
    def from_orc(seconds: int, nanoseconds: int, timezone: Any) -> int | None:
        value = seconds * 1_000_000 + nanoseconds // 1000
        return value if -(2**63) <= value < 2**63 else None

    @staticmethod
    def to_orc(*args: Any) -> Any:  # pragma: no cover - never written
        raise NotImplementedError


def _read_stripe_row_by_row(fs: Any, piece: Piece, columns: list[str]) -> pa.Table:
    """Fallback for a stripe with a timestamp that pyarrow cannot represent in nanoseconds.

    Software Heritage keeps commit dates as their authors wrote them, years 0 and 9999 included.
    pyorc reads each timestamp as microseconds, per row; whatever still does not fit is null.
    """
    import pyorc  # only needed on the rare bad stripe

    with fs.open(piece.path, "rb") as f:
        reader = pyorc.Reader(
            f,
            column_names=columns,
            struct_repr=pyorc.StructRepr.DICT,
            converters={pyorc.TypeKind.TIMESTAMP: _Microseconds},
        )
        rows = reader.read_stripe(piece.stripe).read()
        schema = orc.ORCFile(f).schema
    arrays = []
    for name in columns:
        values = [row[name] for row in rows]
        typ = schema.field(name).type
        if pa.types.is_timestamp(typ):
            arrays.append(pa.array(values, pa.int64()).cast(pa.timestamp("us")))
        else:
            arrays.append(pa.array(values, typ))
    return pa.table(arrays, names=columns)
