"""Writing shards: zstd Parquet, deterministic names and bytes, written to a temporary name and renamed."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.config import OutputConfig


def language_slug(language: str) -> str:
    """A folder name safe for any language name: ``C++`` → ``c++``, ``F#`` → ``f-sharp``."""
    slug = language.lower().replace("#", "-sharp").replace("*", "-star")
    slug = re.sub(r"[^a-z0-9+._-]+", "-", slug).strip("-.")
    return slug or "unknown"


def shard_name(bucket: int) -> str:
    """The file name of input partition ``bucket``'s shard."""
    return f"part-{bucket:05d}.parquet"


def write_shard(table: pa.Table, root: Path, relpath: str, config: OutputConfig) -> dict[str, Any]:
    """Write ``table`` to ``root/relpath`` atomically; returns its manifest entry.

    Row groups hold at most ``config.row_group_bytes`` of content (well under Parquet's 2 GiB
    page limits), and the same table always gives the same bytes.
    """
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with pq.ParquetWriter(
        tmp,
        table.schema,
        compression="zstd",
        compression_level=config.zstd_level,
        # content: no dictionary (values rarely repeat) and no min/max statistics (useless, large)
        use_dictionary=[c for c in table.column_names if c != "content"],
        write_statistics=[c for c in table.column_names if c != "content"],
        write_page_index=True,
    ) as writer:
        for start, stop in row_group_bounds(table, config.row_group_bytes):
            writer.write_table(table.slice(start, stop - start), row_group_size=stop - start)
    digest = sha256_file(tmp)
    size = tmp.stat().st_size
    os.replace(tmp, path)
    return {"path": relpath, "rows": table.num_rows, "bytes": size, "sha256": digest}


def row_group_bounds(table: pa.Table, max_bytes: int) -> list[tuple[int, int]]:
    """``[start, stop)`` row ranges whose rows hold at most ``max_bytes`` (at least one row each)."""
    if table.num_rows == 0:
        return [(0, 0)]
    if "content" in table.column_names:
        sizes = pc.binary_length(table["content"]).to_pylist()
    else:
        sizes = [0] * table.num_rows
    bounds, start, acc = [], 0, 0
    for i, size in enumerate(sizes):
        if i > start and acc + size > max_bytes:
            bounds.append((start, i))
            start, acc = i, 0
        acc += size
    bounds.append((start, table.num_rows))
    return bounds


def sha256_file(path: Path) -> str:
    """SHA-256 hex of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()
