"""Reading a Software Heritage graph export: the ORC tables in the public layout.

``<export>/orc/<table>/*.orc``, local or on any fsspec filesystem. The unit of reading is one stripe
of one file, so a table of many files and stripes becomes many small, independent pieces.

Software Heritage's writer creates a file only for a table that has rows: an empty table is an
empty folder (or, on an object store, no object at all). So an empty folder reads as an empty table,
and the tables a subset of the archive may lack (``OPTIONAL_TABLES``) may be absent altogether; a
table the walk cannot do without that is absent is one clear error. Each table is listed once; the
sizes and checksums of that listing are used to open files and fingerprint the export, so no file
is asked for its size again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.orc as orc

from pipeline.errors import PipelineError
from pipeline.storage import StorageConfig, classify, is_parse_error, with_retries

#: The tables the walk reads, and the columns it needs of each (never ``data`` or ``raw_manifest``).
TABLE_COLUMNS: dict[str, list[str]] = {
    "origin": ["url"],
    "origin_visit": ["origin", "visit", "date"],
    "origin_visit_status": ["origin", "visit", "date", "status", "snapshot"],
    "snapshot_branch": ["snapshot_id", "name", "target", "target_type"],
    "release": ["id", "target", "target_type"],
    "revision": ["id", "directory", "date", "committer_date"],
    "directory": ["id"],
    "directory_entry": ["directory_id", "name", "type", "target", "perms"],
    "content": ["sha1", "sha1_git", "length", "status"],
    "skipped_content": ["sha1", "sha1_git", "length", "status", "reason"],
}

#: Tables an export may lack: their absence means no rows (a subset of the archive with no
#: releases, no skipped content, ...). ``directory`` only tells a missing directory from an empty one.
OPTIONAL_TABLES = frozenset({"origin_visit", "release", "skipped_content", "directory"})

_US = pa.timestamp("us", tz="UTC")
_NS = pa.timestamp("ns")
#: The public schema's types of the columns read, for tables with no file to read a footer from.
PUBLIC_TYPES: dict[str, pa.DataType] = {
    "url": pa.string(), "origin": pa.string(), "visit": pa.int64(), "date": _NS, "status": pa.string(),
    "snapshot": pa.string(), "snapshot_id": pa.string(), "name": pa.binary(), "target": pa.string(),
    "target_type": pa.string(), "id": pa.string(), "directory": pa.string(), "committer_date": _NS,
    "directory_id": pa.string(), "type": pa.string(), "perms": pa.int32(), "sha1": pa.string(),
    "sha1_git": pa.string(), "length": pa.int64(), "reason": pa.string(),
}


class ExportReadError(PipelineError):
    """A file of the export could not be read (after retries): one line naming it."""


@dataclass(frozen=True)
class Piece:
    """One stripe of one ORC file of a table (``size``: the file's, from the listing)."""

    table: str
    path: str
    stripe: int
    size: int | None = None


class Export:
    """An export in the public layout, opened through fsspec (``storage_options`` go to fsspec)."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None,
                 storage: StorageConfig | None = None) -> None:
        self.url = url.rstrip("/")
        self.storage = storage or StorageConfig()
        try:
            self.fs, root = fsspec.core.url_to_fs(self.url, **(storage_options or {}))
        except (ImportError, ValueError, TypeError) as e:
            raise PipelineError(f"{self.url}: cannot open the export ({type(e).__name__}: {e})") from e
        self.root = root.rstrip("/")
        self._listing: dict[str, list[dict[str, Any]]] = {}
        self._present: dict[str, bool] = {}
        self._footers: dict[str, tuple[pa.Schema, int]] = {}

    def check(self) -> None:
        """Fail with one clear line unless every table the walk needs is there (an empty folder is an
        empty table) and every file parses with the columns the walk reads."""
        orc_dir = f"{self.root}/orc"
        listed = self._list_root()
        if not listed:
            raise PipelineError(f"{self.url}: not a Software Heritage export (no orc/ folder)")
        for table in TABLE_COLUMNS:
            if table not in OPTIONAL_TABLES and not self._present.get(table):
                raise PipelineError(f"{orc_dir}/{table}: table missing from the export (no such folder); "
                                    "the walk cannot do without it")
            for path in self.files(table):
                columns = self._footer(path)[0].names
                missing = [c for c in TABLE_COLUMNS[table] if c not in columns]
                if missing:
                    raise PipelineError(f"{path}: table {table} lacks column(s) {', '.join(missing)}")

    def _list_root(self) -> bool:
        """List every table's files once (sizes and checksums included); False if there is no orc/."""
        if self._present:
            return True
        orc_dir = f"{self.root}/orc"
        try:
            found = with_retries(lambda: self.fs.find(orc_dir, detail=True, withdirs=True), self.storage)
        except FileNotFoundError:
            return False
        except Exception as e:  # noqa: BLE001 - one line, never a traceback
            raise ExportReadError(f"{self.url}: cannot read the export: listing its tables failed ({_why(e)}); "
                                  "check the URL, the network and [storage]") from None
        for path, info in found.items():
            relative = path[len(orc_dir) + 1:] if path.startswith(orc_dir + "/") else path.rsplit("/orc/", 1)[-1]
            table = relative.split("/", 1)[0]
            if table not in TABLE_COLUMNS:
                continue
            self._present[table] = True  # a folder, or an object under it
            if info.get("type") != "directory" and relative.endswith(".orc") and relative.count("/") == 1:
                self._listing.setdefault(table, []).append(info)
        for files in self._listing.values():
            files.sort(key=lambda info: info["name"])
        return bool(found) or self.fs.isdir(orc_dir)

    def total_bytes(self) -> int:
        """The size of every ORC file of the tables the walk reads, from the listing."""
        self._list_root()
        return sum(int(info.get("size") or 0) for files in self._listing.values() for info in files)

    def files(self, table: str) -> list[str]:
        """The table's ORC files, sorted (none for an empty or absent table)."""
        self._list_root()
        return [info["name"] for info in self._listing.get(table, [])]

    def schema(self, table: str) -> pa.Schema:
        """The Arrow schema of what ``read`` returns for ``table`` (the first file's footer, or the
        public schema's types when the table has no file)."""
        files = self.files(table)
        if not files:
            return _normalise(pa.schema([pa.field(c, PUBLIC_TYPES[c]) for c in TABLE_COLUMNS[table]]).empty_table(
            )).schema
        return empty_table(self._footer(files[0])[0], TABLE_COLUMNS[table]).schema

    def pieces(self, table: str) -> list[Piece]:
        """One piece per stripe of every file of ``table``; an empty file still gives one piece."""
        out: list[Piece] = []
        self._list_root()
        for info in self._listing.get(table, []):
            nstripes = self._footer(info["name"])[1]
            out.extend(Piece(table, info["name"], s, info.get("size")) for s in range(max(nstripes, 1)))
        return out

    def _open(self, path: str, size: int | None = None) -> Any:
        """``path`` opened for reading with what the listing said of it: no HEAD request (s3fs asks
        an object's details before its first ranged GET unless it has them)."""
        info = next((i for infos in self._listing.values() for i in infos if i["name"] == path), None)
        size = size if size is not None else (info or {}).get("size")
        f = self.fs.open(path, "rb", size=size) if size is not None else self.fs.open(path, "rb")
        if info is not None and hasattr(f, "_details"):
            f._details = info  # noqa: SLF001 - fsspec's cached object details; the listing's are as good
        return f

    def read(self, piece: Piece) -> pa.Table:
        """The needed columns of one piece, timestamps as ``timestamp[us, UTC]``."""
        try:
            return with_retries(lambda: self._read(piece), self.storage)
        except PipelineError:
            raise
        except Exception as e:  # noqa: BLE001 - a read problem, said as one: never "write failed"
            if is_parse_error(e):
                raise PipelineError(f"{piece.path}: stripe {piece.stripe} does not parse: {e}") from e
            raise ExportReadError(f"{piece.path}: cannot read this file of the export ({_why(e)})") from None

    def _read(self, piece: Piece) -> pa.Table:
        columns = TABLE_COLUMNS[piece.table]
        with self._open(piece.path, piece.size) as f:
            reader = orc.ORCFile(f)
            if reader.nstripes == 0:
                return empty_table(reader.schema, columns)
            try:
                table = reader.read_stripe(piece.stripe, columns=columns)
                table = pa.Table.from_batches([table]) if isinstance(table, pa.RecordBatch) else table
            except pa.ArrowInvalid as e:
                if "out of range" not in str(e):
                    raise PipelineError(f"{piece.path}: stripe {piece.stripe} does not parse: {e}") from e
                table = _read_stripe_row_by_row(self, piece, columns)
        return _normalise(table.select(columns))

    def fingerprint(self) -> dict[str, Any]:
        """A digest of every file of the tables read: relative path, size and checksum.

        Local files are hashed (SHA-256); on object stores the store's own checksum (ETag) is used,
        so fingerprinting a multi-terabyte export does not read it.
        """
        entries = []
        self._list_root()
        for table in TABLE_COLUMNS:
            for info in self._listing.get(table, []):
                path = info["name"]
                checksum = info.get("ETag") or info.get("etag")
                if checksum is None:
                    digest = hashlib.sha256()
                    with self._open(path, info.get("size")) as f:
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
                self._footers[path] = with_retries(lambda: self._read_footer(path), self.storage)
            except Exception as e:  # noqa: BLE001 - a read problem, one line
                if is_parse_error(e):
                    raise PipelineError(f"{path}: not a readable ORC file ({e})") from e
                raise ExportReadError(f"{path}: cannot read this file of the export ({_why(e)})") from None
        return self._footers[path]

    def _read_footer(self, path: str) -> tuple[pa.Schema, int]:
        with self._open(path) as f:
            reader = orc.ORCFile(f)
            return reader.schema, reader.nstripes


def _why(error: BaseException) -> str:
    """An error's class and kind, for one line (never its arguments: they may hold a signed URL)."""
    return f"{type(error).__name__}: {classify(error)}"


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


def _read_stripe_row_by_row(export: Export, piece: Piece, columns: list[str]) -> pa.Table:
    """Fallback for a stripe with a timestamp that pyarrow cannot represent in nanoseconds.

    Software Heritage keeps commit dates as their authors wrote them, years 0 and 9999 included.
    pyorc reads each timestamp as microseconds, per row; whatever still does not fit is null.
    """
    import pyorc  # only needed on the rare bad stripe

    with export._open(piece.path, piece.size) as f:
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
