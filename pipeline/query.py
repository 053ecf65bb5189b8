"""Filtered reads of a version: ``python -m pipeline query``.

Only the language folders asked for are opened (``data/<slug>/``), only the columns needed are
read, and the other conditions are pushed into the Parquet scan as Arrow expressions (row groups
whose statistics rule them out are skipped). Files are read in sorted order, so ``--limit N``
gives the same rows every time.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from manifests.manifest import read_manifest
from manifests.summary import markdown_table
from pipeline.errors import PipelineError
from pipeline.writer import language_slug

TABLE_COLUMNS = ["repo_name", "path", "language", "license_type", "length_bytes"]


def glob_regex(glob: str) -> str:
    """A shell glob as an anchored RE2 pattern (``*`` any run, ``?`` one character, ``[...]`` a class);
    fnmatch.translate's atomic groups are not RE2."""
    out, i = ["^"], 0
    while i < len(glob):
        c = glob[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[" and (end := glob.find("]", i + 2)) != -1:
            body = glob[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out) + "$"


def shard_files(folder: Path, languages: Sequence[str]) -> list[Path]:
    """The data shards to open: those of ``languages`` (case-insensitive), or all."""
    manifest = read_manifest(folder)
    known = {name.lower(): name for name in manifest["languages"]}
    wanted = []
    for language in languages:
        if language.lower() not in known:
            raise PipelineError(f"--language {language}: not in version {manifest['version']} "
                                f"(it has: {', '.join(sorted(known.values())) or 'no files'})")
        wanted.append(language_slug(known[language.lower()]))
    prefixes = tuple(f"data/{slug}/" for slug in wanted) or ("data/",)
    return sorted(folder / s["path"] for s in manifest["shards"] if s["path"].startswith(prefixes))


def scan(
    folder: Path,
    languages: Sequence[str] = (),
    licenses: Sequence[str] = (),
    license_type: str | None = None,
    repo: str | None = None,
    path: str | None = None,
    contains: str | None = None,
    columns: Sequence[str] | None = None,
    limit: int | None = None,
    summary: bool = False,
) -> Iterator[pa.RecordBatch]:
    """The rows of version ``folder`` that match every condition given, in batches: ``columns``, or
    with none given, every column (``summary``: those of TABLE_COLUMNS this version has)."""
    files = shard_files(folder, languages)
    if not files:
        return
    dataset = ds.dataset([str(f) for f in files], format="parquet")
    names = dataset.schema.names
    if columns:
        wanted = list(columns)
    else:
        wanted = [c for c in TABLE_COLUMNS if c in names] if summary else names
    for column in [*wanted, *(["detected_licenses"] if licenses else []),
                   *(["license_type"] if license_type else [])]:
        if column not in names:
            raise PipelineError(f"column {column!r} is not in this version (it has: {', '.join(names)})")
    conditions = []
    if license_type:
        conditions.append(ds.field("license_type") == license_type)
    if repo:
        glob = glob_regex(repo)
        conditions.append(pc.match_substring_regex(ds.field("repo_name"), glob)
                          | pc.match_substring_regex(ds.field("origin_url"), glob))
    if path:
        conditions.append(pc.match_substring_regex(ds.field("path"), glob_regex(path)))
    if contains:
        conditions.append(pc.match_substring(ds.field("content"), contains))
    expression = None
    for condition in conditions:
        expression = condition if expression is None else expression & condition
    read = list(dict.fromkeys([*wanted, *(["detected_licenses"] if licenses else [])]))
    left = limit
    for batch in dataset.to_batches(columns=read, filter=expression, batch_size=4096):
        if licenses:
            flat = pc.list_flatten(batch["detected_licenses"])
            parents = pc.list_parent_indices(batch["detected_licenses"])
            hit = pc.is_in(flat, pa.array(list(licenses), pa.string()))
            rows = sorted(set(pc.filter(parents, hit).to_pylist()))
            batch = batch.take(pa.array(rows, pa.int64()))
        batch = batch.select(wanted)
        if left is not None:
            batch = batch.slice(0, left)
            left -= batch.num_rows
        if batch.num_rows:
            yield batch
        if left == 0:
            return


def write(batches: Iterator[pa.RecordBatch], fmt: str, out: Path | None) -> int:
    """Print or write the rows: a table, JSON lines, or a Parquet file (needs ``out``)."""
    count = 0
    if fmt == "parquet":
        if out is None:
            raise PipelineError("--format parquet needs --out FILE")
        writer = None
        for batch in batches:
            writer = writer or pq.ParquetWriter(out, batch.schema, compression="zstd")
            writer.write_batch(batch)
            count += batch.num_rows
        if writer is None:
            pq.write_table(pa.table({}), out)
        else:
            writer.close()
        return count
    stream: IO[str] = out.open("w") if out else sys.stdout
    try:
        if fmt == "jsonl":
            for batch in batches:
                for row in batch.to_pylist():
                    stream.write(json.dumps(row, default=_json_default, ensure_ascii=False) + "\n")
                    count += 1
        else:
            rows: list[list[Any]] = []
            header: list[str] = []
            for batch in batches:
                header = batch.schema.names
                rows += [[_cell(v) for v in r.values()] for r in batch.to_pylist()]
            count = len(rows)
            stream.write((markdown_table(header, rows) if rows else "no matching file") + "\n")
    finally:
        if out:
            stream.close()
    return count


def _json_default(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _cell(value: Any) -> str:
    text = ", ".join(value) if isinstance(value, list) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."
