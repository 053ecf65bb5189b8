"""The work of one input partition: the row flow, then, after the corpus-wide reduces, its shards.

``process_partition`` runs the row flow over a partition in batches (row stages' ``process``, and
the ``apply`` of the corpus stages that read the input, with their reduced rows of this partition)
and writes the kept rows, the map keys of every corpus stage that reads kept rows, and the ledger
to the version's work folder. ``finalize_partition`` later runs those stages' ``apply`` with what
their reduces decided, and writes the data shards per language. Pure Python over pyarrow tables (no
dask): the output depends only on the rows, never on the worker or the thread.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from manifests.reports import (
    BuildReport,
    PartitionReport,
    Timings,
    WalkReport,
    WriteReport,
    add_counters,
    add_timing,
)
from pipeline.checkpoint import mark_done
from pipeline.config import OutputConfig
from pipeline.resources import resource
from pipeline.writer import ShardWriter, language_slug, shard_name, size_bounds, write_shard
from schemas import LEDGER_SCHEMA, WALK_SCHEMA
from stages.base import CorpusStage, RowStage, Stage

#: Rows are written in this order, so shards do not depend on how rows arrived.
ROW_ORDER = [("origin_url", "ascending"), ("path", "ascending"), ("content_id", "ascending")]
LANGUAGE_UNKNOWN = "unknown"
WORK = ".work"  # inside the staging folder; removed before the version is committed
#: The work folder's files (kept rows, keys, ledger) are read back once by the same build and are never
#: part of a version: LZ4, which spends less CPU per byte than the shards' zstd; their row groups,
#: which the shards' follow, do not depend on the codec.
WORK_COMPRESSION = "lz4"
_ADDRESS = [pa.field("bucket", pa.int32()), pa.field("row", pa.int64())]


class Clock:
    """CPU seconds of this thread (a worker runs several tasks at once), wall seconds and the content
    bytes of one stage call."""

    def __init__(self, batch: pa.Table, count_bytes: bool = True) -> None:
        column = "length_bytes" if "length_bytes" in batch.column_names else "length"
        counted = count_bytes and column in batch.column_names
        self.bytes = int(pc.sum(batch[column]).as_py() or 0) if counted else 0
        self.cpu, self.wall = time.thread_time(), time.perf_counter()

    def stop(self, into: Timings, stage: str) -> None:
        add_timing(into, stage, time.thread_time() - self.cpu, time.perf_counter() - self.wall, self.bytes)


def reads_kept(stage: Stage) -> bool:
    """Whether ``stage`` is a corpus stage that runs after the row flow, on the rows it kept."""
    return isinstance(stage, CorpusStage) and stage.reads == "kept"


def keys_schema(stage: CorpusStage) -> pa.Schema:
    """What a kept-reading corpus stage's map keys are stored as: its ``key_schema`` after ``bucket``, ``row``."""
    return pa.schema([*_ADDRESS, *stage.key_schema])


def bucket_of(url: str, nbuckets: int) -> int:
    """The input partition of an origin, by its URL (every file of an origin is in one partition)."""
    return xxhash.xxh64_intdigest(url.encode()) % nbuckets


def corpus_stages(flow: Sequence[Stage]) -> tuple[list[CorpusStage], list[CorpusStage]]:
    """The flow's corpus stages that read the input, and those that read the kept rows."""
    corpus = [s for s in flow if isinstance(s, CorpusStage)]
    return [s for s in corpus if not reads_kept(s)], [s for s in corpus if reads_kept(s)]


def walked(walk: WalkReport, n_files: int, total_bytes: int, seconds: float, partition_bytes: int,
           reuse: dict[int, PartitionReport], log: Callable[[str], None]) -> tuple[BuildReport, int]:
    """The build's report once the walk found ``n_files`` files of ``total_bytes``, and the number of
    partitions; ``reuse`` (the partitions an interrupted run finished) loses those past that number."""
    nbuckets = max(1, math.ceil(total_bytes / partition_bytes))
    report = BuildReport(walk)
    report.phases["walk"] = seconds
    walk.files, walk.content_bytes, walk.partitions = n_files, total_bytes, nbuckets
    log(f"walk: {n_files} files, {total_bytes / 1e6:.1f} MB of content, {nbuckets} partition(s)")
    for bucket in [b for b in reuse if b >= nbuckets]:
        del reuse[bucket]
    if reuse and n_files:
        log(f"resume: reusing {len(reuse)} of {nbuckets} partition(s) finished by the interrupted run")
    return report, nbuckets


def check_flow(flow: Sequence[Stage]) -> None:
    """Raise ValueError unless every stage is a row or a corpus stage, names are distinct, and the
    corpus stages that read kept rows come after every other stage."""
    names = [s.name for s in flow]
    if len(set(names)) != len(names):
        raise ValueError(f"stage names repeat in the flow: {names}")
    seen_kept = False
    for stage in flow:
        if not isinstance(stage, RowStage | CorpusStage):
            raise ValueError(f"{stage!r} is neither a RowStage nor a CorpusStage")
        if isinstance(stage, CorpusStage) and stage.reads not in ("input", "kept"):
            raise ValueError(f"{stage.name}: reads must be 'input' or 'kept', not {stage.reads!r}")
        if reads_kept(stage):
            seen_kept = True
        elif seen_kept:
            raise ValueError(f"{stage.name} comes after a corpus stage that reads kept rows")


def selection_stages(flow: Sequence[Stage]) -> list[RowStage]:
    """The row stages at the head of the flow that decide without reading content (opt-out): what a
    corpus stage that reads the input sees has been through them."""
    out = []
    for stage in flow:
        if not isinstance(stage, RowStage) or stage.reads_content:
            break
        out.append(stage)
    return out


def counters_line(counters: dict[str, int]) -> str:
    """A reduce's counters as one log line."""
    return ", ".join(f"{k} {v}" for k, v in counters.items() if v) or "done"


def attach_content(table: pa.Table, resource: Any = None, *, rows_dir: str, bucket: str, row: str,
                    into: str) -> pa.Table:
    """``table`` plus the content of the kept row each (``bucket``, ``row``) names, reading only the
    row groups that hold them."""
    wanted = list(zip(table[bucket].to_pylist(), table[row].to_pylist(), strict=True))
    by_bucket: dict[int, set[int]] = {}
    for b, r in wanted:
        by_bucket.setdefault(int(b), set()).add(int(r))
    found: dict[tuple[int, int], str] = {}
    for b, rows in by_bucket.items():
        reader = pq.ParquetFile(Path(rows_dir) / shard_name(b))
        starts = np.cumsum([0] + [reader.metadata.row_group(g).num_rows for g in range(reader.num_row_groups)])
        for group in sorted({int(np.searchsorted(starts, r, side="right") - 1) for r in rows}):
            contents = reader.read_row_group(group, columns=["content"])["content"].to_pylist()
            for r in rows:
                if starts[group] <= r < starts[group + 1]:
                    found[(b, r)] = contents[r - starts[group]]
    return table.append_column(into, pa.array([found[(int(b), int(r))] for b, r in wanted], pa.large_string()))


def with_address(keys: pa.Table, bucket: int, first_row: int | None) -> pa.Table:
    """``keys`` with ``bucket`` (and ``row``, numbered from ``first_row``) in front."""
    n = keys.num_rows
    columns = [pa.array(np.full(n, bucket, dtype=np.int32), pa.int32())]
    names = ["bucket"]
    if first_row is not None:
        columns.append(pa.array(np.arange(first_row, first_row + n, dtype=np.int64), pa.int64()))
        names.append("row")
    return pa.Table.from_arrays([*columns, *keys.columns], names=[*names, *keys.column_names])


def read_reduced(work: Path, stage: str, bucket: int, schema: pa.Schema) -> pa.Table:
    """The rows a corpus stage's reduce gave partition ``bucket`` (written partitioned on ``bucket``)."""
    folder = work / "reduced" / stage / f"bucket={bucket}"
    if not folder.is_dir():
        return schema.empty_table()
    table = pq.read_table(folder, schema=schema.remove(schema.get_field_index("bucket")))
    table = table.add_column(0, "bucket", pa.array(np.full(table.num_rows, bucket, dtype=np.int32), pa.int32()))
    return table.sort_by([("row", "ascending")]) if "row" in schema.names else table


def process_partition(
    rows: pa.Table,
    bucket: int,
    flow: Sequence[Stage],
    staging: Path,
    output: OutputConfig,
    reduced: Mapping[str, pa.Table],
    checkpoint: bool = True,
) -> PartitionReport:
    """Run the row flow of ``flow`` over the walk rows of one partition; write its kept rows, the
    keys of the stages that read them, and its ledger, then (``checkpoint``) the partition's
    checkpoint marker with their checksums. ``reduced``: by stage name, the reduced rows of this
    partition for each corpus stage that reads the input.

    The rows are processed in batches of at most ``output.batch_bytes`` of content, each written
    out before the next is fetched, so a worker's memory is bounded by the batch size even when
    one repository is huge.
    """
    table = rows.cast(WALK_SCHEMA).sort_by(ROW_ORDER)
    work = staging / WORK
    row_flow = [s for s in flow if not reads_kept(s)]
    after = [s for s in flow if reads_kept(s)]
    ledgers: list[pa.Table] = []
    counters: dict[str, dict[str, int]] = {}
    timings: Timings = {}
    row_writer: ShardWriter | None = None
    key_writers = {s.name: ShardWriter(work, f"keys/{s.name}/{shard_name(bucket)}", keys_schema(s), output,
                                       checkpoint, WORK_COMPRESSION) for s in after}
    kept_rows = 0
    # unknown lengths (files with no content row) count as zero: they are never fetched
    for start, stop in size_bounds(pc.fill_null(table["length"], 0).to_pylist(), output.batch_bytes):
        batch = table.slice(start, stop - start)
        for stage in row_flow:
            clock = Clock(batch)
            if isinstance(stage, CorpusStage):
                result = stage.apply(batch, resource(stage), reduced[stage.name])
            else:
                result = stage.process(batch, resource(stage))
            clock.stop(timings, stage.name)
            batch = result.kept
            ledgers.append(result.dropped)
            add_counters(counters, stage.name, result.counters)
        if batch.num_rows:
            if row_writer is None:
                row_writer = ShardWriter(work, f"rows/{shard_name(bucket)}", batch.schema, output, checkpoint,
                                         WORK_COMPRESSION)
            row_writer.write(batch)
            for stage in after:
                clock = Clock(batch, count_bytes=False)  # the bytes count once, at apply
                key_writers[stage.name].write(with_address(stage.map(batch, resource(stage)), bucket, kept_rows))
                clock.stop(timings, stage.name)
            kept_rows += batch.num_rows
    written = [row_writer.close()] if row_writer is not None else []
    written += [writer.close() for writer in key_writers.values()]
    ledger = pa.concat_tables(ledgers).cast(LEDGER_SCHEMA) if ledgers else LEDGER_SCHEMA.empty_table()
    written.append(write_shard(ledger, work, f"ledger/{shard_name(bucket)}", output, checkpoint,
                                WORK_COMPRESSION))
    report = PartitionReport(bucket, rows.num_rows, kept_rows, counters, timings)
    if checkpoint:
        mark_done(work, bucket, report.to_dict(), written)  # last: the partition's checkpoint
    return report


def _rebased(reduced: pa.Table, present: np.ndarray) -> tuple[pa.Table, np.ndarray]:
    """The reduced rows about the rows ``present`` (sorted ids), ``row`` rebased to positions in
    ``present``; and the mask of the positions they drop."""
    ids = reduced["row"].to_numpy()
    lo, hi = np.searchsorted(ids, present[0]), np.searchsorted(ids, present[-1], side="right")
    part = reduced.slice(lo, hi - lo)
    ids = ids[lo:hi]
    inside = np.isin(ids, present)
    if not inside.all():
        part, ids = part.filter(pa.array(inside)), ids[inside]
    positions = np.searchsorted(present, ids)
    part = part.set_column(part.schema.get_field_index("row"), "row", pa.array(positions, pa.int64()))
    drop = np.zeros(len(present), dtype=bool)
    drop[positions[part["reason"].is_valid().to_numpy(zero_copy_only=False)]] = True
    return part, drop


def finalize_partition(bucket: int, staging: Path, after: Sequence[CorpusStage], reduced: Mapping[str, pa.Table],
                       output: OutputConfig) -> WriteReport:
    """Run the corpus stages that read kept rows (``after``, in order) over this partition's kept rows,
    each with its reduced rows (by stage name, sorted by ``row``), and write the data shards and the
    ledger. Returns the shard entries, per-language and per-license totals and the stages' counters.
    """
    work = staging / WORK
    rows_path = work / "rows" / shard_name(bucket)
    report = WriteReport(bucket, 0, 0)
    ledgers = [pq.read_table(work / "ledger" / shard_name(bucket))]
    if rows_path.exists():
        reader = pq.ParquetFile(rows_path)
        writers: dict[str, ShardWriter] = {}
        offset = 0
        for group in range(reader.num_row_groups):
            batch = reader.read_row_group(group)
            present = np.arange(offset, offset + batch.num_rows, dtype=np.int64)
            offset += batch.num_rows
            for stage in after:
                if batch.num_rows:
                    part, drop = _rebased(reduced[stage.name], present)
                else:
                    part, drop = reduced[stage.name].slice(0, 0), np.zeros(0, dtype=bool)
                clock = Clock(batch)
                result = stage.apply(batch, resource(stage), part)
                clock.stop(report.timings, stage.name)
                present = present[~drop]
                if result.kept.num_rows != len(present):
                    raise RuntimeError(f"bug: {stage.name}.apply kept {result.kept.num_rows} rows, its reduce "
                                       f"kept {len(present)}")
                batch = result.kept
                ledgers.append(result.dropped)
                add_counters(report.stages, stage.name, result.counters)
            if "detected_licenses" in batch.column_names:
                count_licenses(batch, report.licenses, report.license_types)
            for language, part in split_by_language(batch):
                if language not in writers:
                    relpath = f"data/{language_slug(language)}/{shard_name(bucket)}"
                    writers[language] = ShardWriter(staging, relpath, part.schema, output)
                writers[language].write(part)
                add_counters(report.languages, language, {"files": part.num_rows,
                                                          "bytes": int(pc.sum(part["length_bytes"]).as_py() or 0)})
        report.shards = [{**writers[lang].close(), "kind": "data", "language": lang} for lang in sorted(writers)]
    ledger = pa.concat_tables(ledgers).cast(LEDGER_SCHEMA).sort_by(ROW_ORDER + [("stage", "ascending")])
    if ledger.num_rows:
        report.shards.append({**write_shard(ledger, staging, f"dropped/{shard_name(bucket)}", output),
                              "kind": "dropped"})
    report.rows_kept = sum(v["files"] for v in report.languages.values())
    report.rows_dropped = ledger.num_rows
    report.opted_out_origins = sorted(set(pc.filter(ledger["origin_url"],
                                                    pc.equal(ledger["reason"], "opted_out")).to_pylist()))
    return report


def count_licenses(batch: pa.Table, licenses: dict[str, dict[str, int]],
                   license_types: dict[str, dict[str, int]]) -> None:
    """Add the kept rows of ``batch`` to the files and bytes per SPDX id (``none`` for files with no
    license) and per license_type."""
    sizes = batch["length_bytes"].to_pylist()
    for ids, kind, size in zip(batch["detected_licenses"].to_pylist(), batch["license_type"].to_pylist(), sizes,
                               strict=True):
        for key, totals in [(i, licenses) for i in (ids or ["none"])] + [(kind, license_types)]:
            entry = totals.setdefault(key, {"files": 0, "bytes": 0})
            entry["files"] += 1
            entry["bytes"] += size


def split_by_language(table: pa.Table) -> list[tuple[str, pa.Table]]:
    """The kept rows per language, in language order (``unknown`` until the language stage runs)."""
    if table.num_rows == 0:
        return []
    if "language" not in table.column_names:
        return [(LANGUAGE_UNKNOWN, table)]
    out = []
    for language in sorted(pc.unique(table["language"]).to_pylist()):
        out.append((language, table.filter(pc.equal(table["language"], language))))
    return out
