"""The work of one input partition: run the stages in order, write its shards and ledger.

Pure Python over pyarrow tables (no dask): the graph module calls ``process_partition`` once per
partition, on whichever worker. The output depends only on the rows, never on the worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import OutputConfig
from pipeline.writer import ShardWriter, language_slug, shard_name, size_bounds, write_shard
from schemas import LEDGER_SCHEMA, WALK_SCHEMA
from stages.base import Stage

#: Rows are written in this order, so shards do not depend on how rows arrived.
ROW_ORDER = [("origin_url", "ascending"), ("path", "ascending"), ("content_id", "ascending")]
LANGUAGE_UNKNOWN = "unknown"


def process_partition(
    rows: pa.Table, bucket: int, stages: Sequence[Stage], staging: Path, output: OutputConfig
) -> dict[str, Any]:
    """Run ``stages`` over the walk rows of one partition and write its shards under ``staging``.

    The rows are processed in batches of at most ``output.batch_bytes`` of content, each written
    out before the next is fetched, so a worker's memory is bounded by the batch size even when
    one repository is huge. Returns the partition's report: per-stage counters, shard entries and
    per-language totals.
    """
    table = rows.cast(WALK_SCHEMA).sort_by(ROW_ORDER)
    ledgers: list[pa.Table] = []
    counters: dict[str, dict[str, int]] = {}
    writers: dict[str, ShardWriter] = {}
    languages: dict[str, dict[str, int]] = {}
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
        kept_rows += batch.num_rows
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
        "rows_in": rows.num_rows,
        "rows_kept": kept_rows,
        "rows_dropped": ledger.num_rows,
        "stages": counters,
        "shards": shards,
        "languages": languages,
    }


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
