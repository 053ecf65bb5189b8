"""The Dask graph: the only package that imports dask.

``build`` wires any flow of stages (``stages.base``) in the order given:

1. the walk (``export_walk``): one row per file, in partitions of whole origins (``bucket``);
2. each corpus stage that reads the input: its map over each partition's walk rows (after the
   flow's leading selection stages), its reduce on the cluster (``corpus.DaskCorpus``), its reduced
   rows written per partition;
3. the row flow per partition (``pipeline.partition.process_partition``): row stages, and those
   corpus stages' apply at their place, with the partition's reduced rows as an argument;
4. each corpus stage that reads the kept rows, in order: its reduce over the keys its map left for
   every kept row (less the rows an earlier such stage dropped), its reduced rows written per partition;
5. per partition, those stages' apply and the shards (``pipeline.partition.finalize_partition``).
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import dask
import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
from dask.distributed import Client

from manifests.reports import BuildReport, PartitionReport, WriteReport
from pipeline.config import Config
from pipeline.graph.cluster import (
    after_reduce,
    dask_client,
    phase_bar,
    run_with_bar,
    to_arrow,
    to_pandas,
)
from pipeline.graph.corpus import CorpusContext, DaskCorpus, meta
from pipeline.graph.export_walk import Walk
from pipeline.orc import Export
from pipeline.partition import (
    WORK,
    bucket_of,
    check_flow,
    corpus_stages,
    counters_line,
    finalize_partition,
    keys_schema,
    process_partition,
    read_reduced,
    selection_stages,
    walked,
    with_address,
)
from pipeline.resources import give_back_memory, resource
from schemas import WALK_SCHEMA
from stages.base import CorpusStage, RowStage, Stage

__all__ = ["build", "check_flow", "dask_client"]


def _bucket(df: pd.DataFrame, nbuckets: int) -> pd.DataFrame:
    buckets = [bucket_of(url, nbuckets) for url in df["origin_url"]]
    return df.assign(bucket=pd.Series(buckets, index=df.index, dtype="int64"))


def _partitions(df: pd.DataFrame) -> list[tuple[int, pa.Table]]:
    """The walk rows of each partition (bucket) in a Dask piece, in bucket order."""
    return [(int(b), to_arrow(group.drop(columns=["bucket"])).cast(WALK_SCHEMA))
            for b, group in sorted(df.groupby("bucket", sort=True), key=lambda kv: kv[0])]


def _input_keys(df: pd.DataFrame, stage: CorpusStage, selection: Sequence[RowStage]) -> pd.DataFrame:
    """A corpus stage's map over each partition in this piece (after the selection stages), with ``bucket``."""
    out = []
    for bucket, table in _partitions(df):
        for selector in selection:
            table = selector.process(table, resource(selector)).kept
        out.append(with_address(stage.map(table, resource(stage)), bucket, None))
    schema = pa.schema([pa.field("bucket", pa.int32()), *stage.key_schema])
    return to_pandas(pa.concat_tables(out).cast(schema) if out else schema.empty_table())


def _process_buckets(df: pd.DataFrame, flow: Sequence[Stage], staging: str, config: Config,
                     schemas: dict[str, pa.Schema]) -> list[PartitionReport]:
    reports = []
    work = Path(staging) / WORK
    for bucket, table in _partitions(df):
        reduced = {name: read_reduced(work, name, bucket, schema) for name, schema in schemas.items()}
        reports.append(process_partition(table, bucket, flow, Path(staging), config.output, reduced,
                                         config.execution.checkpoint))
        give_back_memory()
    return reports


def _finalize(bucket: int, staging: str, after: Sequence[CorpusStage], schemas: dict[str, pa.Schema],
              config: Config) -> WriteReport:
    work = Path(staging) / WORK
    reduced = {s.name: read_reduced(work, s.name, bucket, schemas[s.name]) for s in after}
    report = finalize_partition(bucket, Path(staging), after, reduced, config.output)
    give_back_memory()
    return report


def _write_reduced(rows: Any, work: Path, stage: str) -> None:
    """A reduce's rows (a ``DaskCorpus``), one folder per partition (``reduced/<stage>/bucket=N``)."""
    rows.frame.to_parquet(str(work / "reduced" / stage), partition_on=["bucket"], write_index=False)


def build(
    export: Export,
    flow: Sequence[Stage],
    staging: Path,
    config: Config,
    client: Client,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
    reuse: dict[int, PartitionReport] | None = None,
    as_of: dt.datetime | None = None,
) -> BuildReport:
    """Walk ``export``, run ``flow`` over every file, and write shards under ``staging``.

    ``reuse``: the reports of partitions an interrupted run already finished (checked
    checkpoints); their row flow is not run again.
    """
    check_flow(flow)
    reuse = dict(reuse or {})
    work = staging / WORK
    context = CorpusContext(str(work / "rows"), log, config.execution.components_partition_edges)
    started = time.perf_counter()
    walker = Walk(export, config, log, as_of)
    rows = walker.files().persist()
    n_files, total_bytes = dask.compute(rows.shape[0], rows.length.sum())
    report, nbuckets = walked(walker.report, int(n_files), int(total_bytes or 0), time.perf_counter() - started,
                              config.output.partition_bytes, reuse, log)
    if int(n_files) == 0:
        return report
    bucketed = rows.map_partitions(_bucket, nbuckets, meta=_bucket(rows._meta, 1))
    if reuse:
        bucketed = bucketed[~bucketed.bucket.isin(sorted(reuse))]
    todo = bucketed.shuffle("bucket", npartitions=max(1, nbuckets - len(reuse))).persist()
    before, after = corpus_stages(flow)

    schemas: dict[str, pa.Schema] = {}
    if len(reuse) < nbuckets:
        selection = selection_stages(flow)
        for stage in before:
            key_meta = meta(pa.schema([pa.field("bucket", pa.int32()), *stage.key_schema]))
            keys = todo.map_partitions(_input_keys, stage, selection, meta=key_meta)
            schema = pa.schema([pa.field("bucket", pa.int32()), *stage.key_schema])
            started = time.perf_counter()
            with phase_bar(f"{stage.name} reduce") as bar:
                reduced = stage.reduce(DaskCorpus(keys, schema, stage, replace(context, tick=bar.update)))
                _write_reduced(reduced.rows, work, stage.name)
            after_reduce(client, stage)
            report.phases[f"{stage.name} reduce"] = time.perf_counter() - started
            schemas[stage.name] = reduced.schema
            report.reduces[stage.name] = reduced.counters
            log(f"{stage.name}: {counters_line(reduced.counters)}")
        tasks = [dask.delayed(_process_buckets)(part, list(flow), str(staging), config, schemas)
                 for part in todo.to_delayed()]
        started = time.perf_counter()
        fresh = [r for rs in run_with_bar(client, tasks, "stages") for r in rs]
        report.phases["row flow"] = time.perf_counter() - started
    else:
        fresh = []
    report.partitions = sorted(fresh + list(reuse.values()), key=lambda r: r.bucket)
    kept, seen = sum(r.rows_kept for r in report.partitions), sum(r.rows_in for r in report.partitions)
    log(f"stages: {kept} of {seen} files kept")

    dropped_before: list[dd.DataFrame] = []
    after_schemas: dict[str, pa.Schema] = {}
    for stage in after:
        started = time.perf_counter()
        keys = _kept_keys(work, stage, dropped_before)
        with phase_bar(f"{stage.name} reduce") as bar:
            reduced = stage.reduce(DaskCorpus(keys, keys_schema(stage), stage, replace(context, tick=bar.update)))
            rows = reduced.rows.persist()
            _write_reduced(rows, work, stage.name)
        after_reduce(client, stage)
        report.phases[f"{stage.name} reduce"] = time.perf_counter() - started
        frame = rows.frame  # type: ignore[attr-defined]
        dropped_before.append(frame[frame["reason"].notnull()][["bucket", "row"]])
        after_schemas[stage.name] = reduced.schema
        report.reduces[stage.name] = reduced.counters
        log(f"{stage.name}: {counters_line(reduced.counters)}")
    tasks = [dask.delayed(_finalize)(r.bucket, str(staging), after, after_schemas, config) for r in report.partitions]
    started = time.perf_counter()
    report.writes = sorted(run_with_bar(client, tasks, "write"), key=lambda r: r.bucket)
    report.phases["write"] = time.perf_counter() - started
    return report


def _kept_keys(work: Path, stage: CorpusStage, dropped_before: list[dd.DataFrame]) -> dd.DataFrame:
    """The keys ``stage``'s map left for every kept row, less the rows earlier such stages dropped."""
    empty = meta(keys_schema(stage))
    keys = dd.read_parquet(str(work / "keys" / stage.name), dtype_backend="pyarrow")
    keys = keys.astype(empty.dtypes.to_dict()) if len(keys.columns) else dd.from_pandas(empty, npartitions=1)
    for dropped in dropped_before:
        gone = dropped.assign(_gone=1)
        keys = keys.merge(gone, on=["bucket", "row"], how="left")
        keys = keys[keys["_gone"].isnull()].drop(columns=["_gone"])
    return keys
