"""Writing shards: zstd Parquet (a build's own work files: LZ4), deterministic names and bytes, written to a
temporary name and renamed."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

if TYPE_CHECKING:  # the config pulls in every stage; verify and inspect need none of them
    from pipeline.config import OutputConfig


def language_slug(language: str) -> str:
    """A folder name safe for any language name: ``C++`` → ``c++``, ``F#`` → ``f-sharp``."""
    slug = language.lower().replace("#", "-sharp").replace("*", "-star")
    slug = re.sub(r"[^a-z0-9+._-]+", "-", slug).strip("-.")
    return slug or "unknown"


def shard_name(bucket: int) -> str:
    """The file name of input partition ``bucket``'s shard."""
    return f"part-{bucket:05d}.parquet"


class ShardWriter:
    """One shard written in pieces: ``write`` appends row groups, ``close`` renames it into place.

    The file is written under a temporary name and renamed only when complete. Row groups hold at
    most ``config.row_group_bytes`` of content and never span two ``write`` calls, so the bytes
    depend only on the tables written, in order.
    """

    def __init__(self, root: Path, relpath: str, schema: pa.Schema, config: OutputConfig, digest: bool = True,
                 compression: str = "zstd") -> None:
        self.relpath = relpath
        self.digest = digest
        self.path = root / relpath
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self.config = config
        self.rows = 0
        # content: no dictionary (values rarely repeat) and no min/max statistics (useless, large)
        others = [c for c in schema.names if c != "content"]
        self._writer = pq.ParquetWriter(
            self.tmp,
            schema,
            compression=compression,
            compression_level=config.zstd_level if compression == "zstd" else None,
            use_dictionary=others,
            write_statistics=others,
            write_page_index=True,
        )

    def write(self, table: pa.Table) -> None:
        sizes = pc.binary_length(table["content"]).to_pylist() if "content" in table.column_names else [0] * len(table)
        for start, stop in size_bounds(sizes, self.config.row_group_bytes):
            self._writer.write_table(table.slice(start, stop - start), row_group_size=stop - start)
        self.rows += table.num_rows

    def close(self) -> dict[str, Any]:
        """Finish the file, move it into place; returns its manifest entry."""
        self._writer.close()
        digest = sha256_file(self.tmp) if self.digest else None
        size = self.tmp.stat().st_size
        os.replace(self.tmp, self.path)
        return {"path": self.relpath, "rows": self.rows, "bytes": size, "sha256": digest}


def write_shard(table: pa.Table, root: Path, relpath: str, config: OutputConfig, digest: bool = True,
                compression: str = "zstd") -> dict[str, Any]:
    """Write ``table`` to ``root/relpath`` atomically; returns its manifest entry."""
    writer = ShardWriter(root, relpath, table.schema, config, digest, compression)
    writer.write(table)
    return writer.close()


def size_bounds(sizes: list[int], max_bytes: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges of consecutive items totalling at most ``max_bytes`` (at least one item each)."""
    bounds, start, acc = [], 0, 0
    for i, size in enumerate(sizes):
        if i > start and acc + size > max_bytes:
            bounds.append((start, i))
            start, acc = i, 0
        acc += size
    if sizes:
        bounds.append((start, len(sizes)))
    return bounds


def sha256_file(path: Path) -> str:
    """SHA-256 hex of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()
