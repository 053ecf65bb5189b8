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
from pipeline.writer import language_slug, shard_name, write_shard
from schemas import LEDGER_SCHEMA, WALK_SCHEMA
from stages.base import Stage

#: Rows are written in this order, so shards do not depend on how rows arrived.
ROW_ORDER = [("origin_url", "ascending"), ("path", "ascending"), ("content_id", "ascending")]
LANGUAGE_UNKNOWN = "unknown"


def process_partition(
    rows: pa.Table, bucket: int, stages: Sequence[Stage], staging: Path, output: OutputConfig
) -> dict[str, Any]:
    """Run ``stages`` over the walk rows of one partition and write its shards under ``staging``.

    Returns the partition's report: per-stage counters, shard entries and per-language totals.
    """
    table = rows.cast(WALK_SCHEMA).sort_by(ROW_ORDER)
    ledgers: list[pa.Table] = []
    counters: dict[str, dict[str, int]] = {}
    for stage in stages:
        result = stage.process(table)
        table = result.kept
        ledgers.append(result.dropped)
        counters[stage.name] = result.counters
    shards = []
    languages: dict[str, dict[str, int]] = {}
    for language, part in split_by_language(table):
        slug = language_slug(language)
        shards.append({**write_shard(part, staging, f"data/{slug}/{shard_name(bucket)}", output),
                       "kind": "data", "language": language})
        languages[language] = {
            "files": part.num_rows,
            "bytes": int(pc.sum(part["length_bytes"]).as_py() or 0),
        }
    ledger = pa.concat_tables(ledgers).cast(LEDGER_SCHEMA).sort_by(ROW_ORDER[:2] + [("stage", "ascending")])
    if ledger.num_rows:
        shards.append({**write_shard(ledger, staging, f"dropped/{shard_name(bucket)}", output), "kind": "dropped"})
    return {
        "rows_in": rows.num_rows,
        "rows_kept": table.num_rows,
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
