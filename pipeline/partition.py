"""The work of one input partition, before and after the global dedup passes.

``process_partition`` runs the per-file stages over a partition and writes its kept rows, their
dedup keys (hash, survivor rank, MinHash signature) and its ledger rows to the version's work
folder. ``finalize_partition`` later applies what the dedup passes decided about its rows and
writes its shards. Pure Python over pyarrow tables (no dask): the output depends only on the rows,
never on the worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.checkpoint import mark_done
from pipeline.config import OutputConfig
from pipeline.writer import ShardWriter, language_slug, shard_name, size_bounds, write_shard
from schemas import LEDGER_SCHEMA, WALK_SCHEMA
from stages.base import Stage
from stages.dedup import DedupConfig, signatures, survivor_rank

#: Rows are written in this order, so shards do not depend on how rows arrived.
ROW_ORDER = [("origin_url", "ascending"), ("path", "ascending"), ("content_id", "ascending")]
LANGUAGE_UNKNOWN = "unknown"
WORK = ".work"  # inside the staging folder; removed before the version is committed


#: What the dedup passes read of each kept row (never its content).
KEYS_SCHEMA = pa.schema(
    [
        pa.field("bucket", pa.int32()),
        pa.field("row", pa.int64()),
        pa.field("sha256", pa.string()),
        pa.field("rank", pa.string()),
        pa.field("blob_id", pa.string()),
        # num_perm little-endian uint32 values; null: too few tokens for near dedup. (Plain binary:
        # Dask's p2p shuffle cannot carry fixed_size_binary.)
        pa.field("signature", pa.binary()),
    ]
)


#: What the dedup passes decide about a row: dropped (stage, reason, detail) and/or its cluster.
DECISIONS_SCHEMA = pa.schema([
    pa.field("bucket", pa.int32()),
    pa.field("row", pa.int64()),
    pa.field("stage", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("detail", pa.string()),
    pa.field("near_dup_cluster", pa.string()),
])


def process_partition(
    rows: pa.Table,
    bucket: int,
    stages: Sequence[Stage],
    staging: Path,
    output: OutputConfig,
    dedup: DedupConfig,
    checkpoint: bool = True,
) -> dict[str, Any]:
    """Run ``stages`` over the walk rows of one partition; write its kept rows, keys and ledger,
    then (``checkpoint``) the partition's checkpoint marker with their checksums.

    The rows are processed in batches of at most ``output.batch_bytes`` of content, each written
    out before the next is fetched, so a worker's memory is bounded by the batch size even when
    one repository is huge. Returns the per-stage counters and row counts.
    """
    table = rows.cast(WALK_SCHEMA).sort_by(ROW_ORDER)
    work = staging / WORK
    ledgers: list[pa.Table] = []
    counters: dict[str, dict[str, int]] = {}
    for stage in stages:
        if hasattr(stage, "prepare"):  # the license stage: every license file of the partition first
            counters[stage.name] = dict(stage.prepare(license_files(table, stages)))
    row_writer: ShardWriter | None = None
    key_writer = ShardWriter(work, f"keys/{shard_name(bucket)}", KEYS_SCHEMA, output, checkpoint)
    kept_rows = 0
    # unknown lengths (files with no content row) count as zero: they are never fetched
    for start, stop in size_bounds(pc.fill_null(table["length"], 0).to_pylist(), output.batch_bytes):
        batch = table.slice(start, stop - start)
        for stage in stages:
            result = stage.process(batch)
            batch = result.kept
            ledgers.append(result.dropped)
            stage_counters = counters.setdefault(stage.name, {})
            for key, value in result.counters.items():
                stage_counters[key] = stage_counters.get(key, 0) + value
        if batch.num_rows:
            if row_writer is None:
                row_writer = ShardWriter(work, f"rows/{shard_name(bucket)}", batch.schema, output, checkpoint)
            row_writer.write(batch)
            key_writer.write(dedup_keys(batch, bucket, kept_rows, dedup))
            kept_rows += batch.num_rows
    written = [row_writer.close()] if row_writer is not None else []
    written.append(key_writer.close())
    ledger = pa.concat_tables(ledgers).cast(LEDGER_SCHEMA)
    written.append(write_shard(ledger, work, f"ledger/{shard_name(bucket)}", output, checkpoint))
    report = {"bucket": bucket, "rows_in": rows.num_rows, "rows_kept": kept_rows, "stages": counters}
    if checkpoint:
        mark_done(work, bucket, report, written)  # last: the partition's checkpoint
    return report


#: The stages that turn a walk row into text; the license pre-pass runs only these.
CONTENT_STAGES = ("fetch", "decode")


def license_files(table: pa.Table, stages: Sequence[Stage]) -> pa.Table:
    """The partition's license files, fetched and decoded (``content``), each with the ``problem``
    that kept its text out (the reason the fetch or decode stage gave), for ``License.prepare``.
    These stage runs are a look-ahead: their counters and ledger rows are not kept (each file goes
    through the stages again in its batch)."""
    from stages.license import license_file_mask

    picked = table.filter(pc.fill_null(license_file_mask(table["path"]), False))
    for stage in stages:
        if stage.name == "opt_out":  # opted-out repositories are never read, license files included
            picked = stage.process(picked).kept
    # texts the license cache already knows (the corpus pre-pass scanned them) are not read again
    known = [s for s in stages if hasattr(s, "cached")]
    unread = known[0].cached(picked["blob_id"].to_pylist()) if known else [False] * picked.num_rows
    problems: dict[tuple[str, str], str] = {}
    current = picked.filter(pa.array([not u for u in unread], pa.bool_()))
    for stage in stages:
        if stage.name not in CONTENT_STAGES:
            continue
        result = stage.process(current)
        for url, path, reason in zip(result.dropped["origin_url"].to_pylist(), result.dropped["path"].to_pylist(),
                                     result.dropped["reason"].to_pylist(), strict=True):
            problems[(url, path)] = reason
        current = result.kept
    text = dict(zip(zip(current["origin_url"].to_pylist(), current["path"].to_pylist(), strict=True),
                    current["content"].to_pylist(), strict=True)) if "content" in current.column_names else {}
    keys = list(zip(picked["origin_url"].to_pylist(), picked["path"].to_pylist(), strict=True))
    return pa.table({
        "origin_url": picked["origin_url"], "path": picked["path"], "blob_id": picked["blob_id"],
        "content": pa.array([text.get(k) for k in keys], pa.large_string()),
        "problem": pa.array([None if k in text or u else problems.get(k, "content_missing")
                             for k, u in zip(keys, unread, strict=True)], pa.string()),
    })


def dedup_keys(batch: pa.Table, bucket: int, first_row: int, dedup: DedupConfig) -> pa.Table:
    """The keys of a batch of kept rows: exact-dedup hash, survivor rank, MinHash signature."""
    sigs, counts = signatures(batch["content"].to_pylist(), dedup)
    blobs = sigs.view(np.uint8).reshape(len(sigs), -1)
    signature = pa.array([bytes(blobs[i]) if counts[i] else None for i in range(len(sigs))], pa.binary())
    return pa.table(
        {
            "bucket": pa.array([bucket] * batch.num_rows, pa.int32()),
            "row": pa.array(np.arange(first_row, first_row + batch.num_rows), pa.int64()),
            "sha256": batch["sha256"],
            "rank": survivor_rank(batch),
            "blob_id": batch["blob_id"],
            "signature": signature,
        },
        schema=KEYS_SCHEMA,
    )


def finalize_partition(bucket: int, staging: Path, decisions: pa.Table, output: OutputConfig) -> dict[str, Any]:
    """Apply the dedup ``decisions`` for this partition and write its data shards and ledger.

    Rows decided dropped go to the ledger with their stage, reason and survivor; the others are
    written per language with their ``near_dup_cluster``. Returns shard entries, per-language
    totals and the dedup drop counts.
    """
    work = staging / WORK
    rows_path = work / "rows" / shard_name(bucket)
    decisions = decisions.sort_by([("row", "ascending")])
    stages = decisions["stage"].to_pylist()
    dropped_at = {r: i for i, r in enumerate(decisions["row"].to_pylist()) if stages[i] is not None}
    cluster_of = dict(zip(decisions["row"].to_pylist(), decisions["near_dup_cluster"].to_pylist(), strict=True))
    shards, languages = [], {}
    licenses: dict[str, dict[str, int]] = {}
    license_types: dict[str, dict[str, int]] = {}
    ledgers = [pq.read_table(work / "ledger" / shard_name(bucket))]
    dedup_dropped: dict[str, dict[str, int]] = {}
    if rows_path.exists():
        reader = pq.ParquetFile(rows_path)
        writers: dict[str, ShardWriter] = {}
        offset = 0
        for group in range(reader.num_row_groups):
            batch = reader.read_row_group(group)
            index = np.arange(offset, offset + batch.num_rows)
            offset += batch.num_rows
            drop = np.array([i in dropped_at for i in index.tolist()], dtype=bool)
            if drop.any():
                gone = batch.filter(pa.array(drop))
                rows = decisions.take(pa.array([dropped_at[i] for i in index[drop].tolist()]))
                ledgers.append(_dedup_ledger(gone, rows))
                for stage, reason in zip(rows["stage"].to_pylist(), rows["reason"].to_pylist(), strict=True):
                    entry = dedup_dropped.setdefault(stage, {})
                    entry[reason] = entry.get(reason, 0) + 1
                batch, index = batch.filter(pa.array(~drop)), index[~drop]
            clusters = [cluster_of.get(i) or blob for i, blob in zip(index.tolist(), batch["blob_id"].to_pylist(),
                                                                      strict=True)]
            at = batch.schema.get_field_index("content")
            batch = batch.add_column(at, "near_dup_cluster", pa.array(clusters, pa.string()))
            if "detected_licenses" in batch.column_names:
                count_licenses(batch, licenses, license_types)
            for language, part in split_by_language(batch):
                if language not in writers:
                    relpath = f"data/{language_slug(language)}/{shard_name(bucket)}"
                    writers[language] = ShardWriter(staging, relpath, part.schema, output)
                writers[language].write(part)
                totals = languages.setdefault(language, {"files": 0, "bytes": 0})
                totals["files"] += part.num_rows
                totals["bytes"] += int(pc.sum(part["length_bytes"]).as_py() or 0)
        shards = [{**writers[lang].close(), "kind": "data", "language": lang} for lang in sorted(writers)]
    ledger = pa.concat_tables(ledgers).cast(LEDGER_SCHEMA).sort_by(ROW_ORDER + [("stage", "ascending")])
    if ledger.num_rows:
        shards.append({**write_shard(ledger, staging, f"dropped/{shard_name(bucket)}", output), "kind": "dropped"})
    return {
        "bucket": bucket,
        "rows_kept": sum(v["files"] for v in languages.values()),
        "rows_dropped": ledger.num_rows,
        "shards": shards,
        "languages": languages,
        "dedup_dropped": dedup_dropped,
        "licenses": licenses,
        "license_types": license_types,
        # origins are never split across partitions: these lists add up to exact totals
        "opted_out_origins": sorted(set(pc.filter(ledger["origin_url"],
                                                  pc.equal(ledger["reason"], "opted_out")).to_pylist())),
    }


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


def _dedup_ledger(rows: pa.Table, decisions: pa.Table) -> pa.Table:
    columns = {name: rows[name] for name in ("blob_id", "content_id", "origin_url", "snapshot_id", "revision_id",
                                             "path", "length_bytes")}
    columns.update(stage=decisions["stage"], reason=decisions["reason"], detail=decisions["detail"])
    return pa.table(columns).cast(LEDGER_SCHEMA)


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


_READY: dict[str, Stage] = {}


def ready(stage: Stage) -> Stage:
    """``stage`` with its ``setup()`` done, once per process for each distinct configuration."""
    key = repr(stage)
    if key not in _READY:
        stage.setup()
        _READY[key] = stage
    return _READY[key]
