"""The build in one process, without Dask: what an in-process run (``--workers 1``, or an export
under ``[execution] in_process_below_mb``) does when the export is small enough to hold its walk in
memory (``[execution] local_engine_below_mb``).

It is ``pipeline.graph.build`` step for step, with the same functions at every step, so its shards
and ledger are byte-identical to a Dask build's (tested: tests/test_engines.py):

1. the walk: the export's tables read whole (Arrow tables, pieces read by a few threads) and joined
   with the pure functions of ``pipeline.walk``, level by level, as ``pipeline.graph.export_walk``
   joins them on Dask;
2. each corpus stage's reduce on a ``LocalCorpus`` (the same operations as ``DaskCorpus``), its rows
   written per partition where ``read_reduced`` finds them;
3. the row flow and the shards per partition: ``process_partition`` and ``finalize_partition``,
   the partitions run by ``threads`` threads.

What it saves is Dask's fixed cost, which a small export never earns back: the cluster's start, the
graph building and optimisation of every step, the task and shuffle machinery (docs/performance.md,
"The whole pipeline"). One engine detail shows in the manifest: connected components take one round
here (union-find), so near dedup's ``label_iterations`` is 1.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from manifests.reports import BuildReport, PartitionReport, WriteReport
from pipeline import walk
from pipeline.config import Config
from pipeline.local_corpus import LocalCorpus
from pipeline.orc import Export
from pipeline.partition import (
    WORK,
    attach_content,
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
from pipeline.resources import after_reduce, give_back_memory, resource
from schemas import WALK_SCHEMA
from stages.base import CorpusStage, Stage

_MAX_DEPTH = 10_000  # directory trees are acyclic; this only guards against a corrupt export
_READ_THREADS = 8  # pieces of the export read at once (an object store's reads are latency-bound)


class BuildCorpus(LocalCorpus):
    """A ``LocalCorpus`` whose ``with_content`` reads the kept rows a build left (as ``DaskCorpus``
    does), a whole table at a time; ``tick`` is called once per step (the reduce's progress bar)."""

    def __init__(self, table: pa.Table, resource: Any, rows_dir: str, tick: Callable[[], Any] = lambda: None) -> None:
        super().__init__(table, resource)
        self.rows_dir = rows_dir
        self.tick = tick

    def _new(self, table: pa.Table) -> BuildCorpus:
        self.tick()
        return BuildCorpus(table, self.resource, self.rows_dir, self.tick)

    def with_content(self, bucket: str, row: str, into: str) -> BuildCorpus:
        return self._new(attach_content(self.table, rows_dir=self.rows_dir, bucket=bucket, row=row, into=into))


class LocalWalk(walk.ExportWalk):
    """The walk of one export in this process; ``files()`` gives one WALK_SCHEMA row per file."""

    def table(self, name: str) -> pa.Table:
        """A table of the export, whole; an empty or absent one is an empty table of the public schema."""
        pieces = self.export.pieces(name)
        empty = walk.strip_credentials(self.export.schema(name).empty_table(), name)
        if not pieces:
            return empty
        with ThreadPoolExecutor(min(_READ_THREADS, len(pieces))) as pool:
            tables = list(pool.map(lambda p: walk.strip_credentials(self.export.read(p), name), pieces))
        return pa.concat_tables([empty, *tables], promote_options="permissive")

    def origins(self, known: pa.Array | None) -> pa.Table:
        """One row per origin that has a full visit: its snapshot, branch, revision and root tree
        (``known``: the ids of the directories the export has, None when it has no directory table)."""
        visits = walk.latest_full_visits(self.table("origin_visit_status"), self.as_of)
        visit_dates = self.table("origin_visit").rename_columns({"date": "visit_date"})
        visits = _join(visits, visit_dates, ["origin", "visit"], "left outer")
        visits = _set(visits, "visit_date", pc.coalesce(visits["visit_date"], visits["status_date"]))

        branches = self.table("snapshot_branch")
        with_branches = _join(visits.select(["origin", "snapshot"]), branches, "snapshot", "left outer",
                              right_keys="snapshot_id")
        heads = walk.choose_heads(with_branches.select(["origin", "snapshot", "name", "target", "target_type"]),
                                  tuple(self.config.walk.default_branches))
        releases = self.table("release").rename_columns(
            {"id": "release_id", "target": "release_target", "target_type": "release_target_type"})
        heads = _join(heads, releases, "target", "left outer", right_keys="release_id")
        heads = walk.resolve_revisions(heads)
        revisions = self.table("revision").rename_columns(
            {"id": "revision_id", "directory": "directory_id", "date": "revision_date"})
        roots = walk.check_revisions(_join(heads, revisions, "revision_id", "left outer"))
        if known is not None:  # tell a root tree missing from the export from an empty one
            found = pc.fill_null(pc.is_in(roots["directory_id"], value_set=known), False)
            missing = pc.and_(pc.and_(pc.is_null(roots["problem"]), pc.is_valid(roots["directory_id"])),
                              pc.invert(found))
            roots = _set(roots, "problem", pc.if_else(missing, "directory_missing", roots["problem"]))
        return _join(roots, visits.select(["origin", "visit_date"]), "origin", "left outer")

    def files(self) -> pa.Table:
        """Every file of every walked tree, joined with content and provenance (WALK_SCHEMA)."""
        check = bool(self.export.files("directory"))
        known = pc.unique(self.table("directory")["id"]) if check else None  # read once, for both uses
        roots = self.origins(known)
        origin_table = self.table("origin")
        n_origins = len(pc.unique(origin_table["url"]).drop_null())
        with_credentials = int(pc.sum(origin_table["had_credentials"]).as_py() or 0)
        problems: dict[str | None, int] = {}
        for problem in roots["problem"].to_pylist():
            problems[problem] = problems.get(problem, 0) + 1
        self.count_origins(n_origins, problems, with_credentials)

        good = roots.filter(pc.is_null(roots["problem"]))
        frontier = walk.root_frontier(good)
        entries = self.table("directory_entry")
        file_levels, submodules, missing = [], 0, 0
        bar = tqdm(desc="walk", unit="level", disable=None, file=sys.stderr)
        for depth in range(_MAX_DEPTH):
            if known is not None and depth > 0:  # a subdirectory the export does not have: counted
                missing += int(pc.sum(pc.invert(pc.is_in(frontier["dir"], value_set=known))).as_py() or 0)
            joined = _join(frontier, entries, "dir", "inner", right_keys="directory_id")
            level = walk.expand_level(joined)
            file_levels.append(level.filter(pc.equal(level["type"], "file")).select(
                ["origin", "target", "path", "perms"]))
            submodules += int(pc.sum(pc.equal(level["type"], "rev")).as_py() or 0)
            frontier = walk.next_frontier(level)
            bar.update(1)
            bar.set_postfix_str(f"{frontier.num_rows} directories below", refresh=False)
            if bar.disable:  # no bar to show it: say it in the log
                self.log(f"walk: depth {depth + 1}, {frontier.num_rows} directories below")
            if frontier.num_rows == 0:
                break
        bar.close()
        files = pa.concat_tables(file_levels)
        content = self.table("content").rename_columns({"sha1_git": "target"})
        skipped = self.table("skipped_content").rename_columns(
            {"sha1_git": "target", "sha1": "skipped_sha1", "length": "skipped_length", "status": "skipped_status",
             "reason": "skipped_reason"})
        files = _join(files, content, "target", "left outer")
        files = _join(files, skipped, "target", "left outer")
        files = _join(files, good.drop_columns(["problem"]), "origin", "inner")
        self.report.submodules_skipped = submodules
        self.report.directories_missing = missing
        if not check:
            self.log("walk: the export has no directory table: a missing directory reads as an empty one")
        return walk.file_rows(files).cast(WALK_SCHEMA)


def _join(left: pa.Table, right: pa.Table, keys: str | list[str], how: str, right_keys: str | None = None
          ) -> pa.Table:
    """``left`` joined with ``right``: the left's columns, then the right's but its keys."""
    joined = left.join(right, keys=keys, right_keys=right_keys, join_type=how, coalesce_keys=True,
                       use_threads=False)
    dropped = {right_keys} if right_keys else set()
    names = [*left.column_names, *(c for c in right.column_names
                                   if c not in dropped and c not in ([keys] if isinstance(keys, str) else keys))]
    return joined.select(names)


def _set(table: pa.Table, name: str, values: Any) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def _write_reduced(table: pa.Table, work: Path, stage: str) -> None:
    """A reduce's rows, one folder per partition (``reduced/<stage>/bucket=N``), as ``read_reduced`` reads them."""
    if table.num_rows == 0:
        return
    buckets = table["bucket"].to_numpy()
    rest = table.drop_columns(["bucket"])
    for b in np.unique(buckets):
        folder = work / "reduced" / stage / f"bucket={int(b)}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(rest.filter(pa.array(buckets == b)), folder / "part.0.parquet")


def _read_keys(work: Path, stage: CorpusStage) -> pa.Table:
    """The keys ``stage``'s map left for every kept row (every partition's file)."""
    schema = keys_schema(stage)
    folder = work / "keys" / stage.name
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    tables = [pq.read_table(f, schema=schema) for f in files]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def _phase_bar(desc: str) -> tqdm:
    """A progress bar (on a terminal only) of a phase's steps, whose number is not known ahead."""
    return tqdm(desc=desc, unit="step", disable=None, file=sys.stderr)


def _run(tasks: list[Callable[[], Any]], threads: int, desc: str) -> list[Any]:
    """Run ``tasks`` on ``threads`` threads with a progress bar (on a terminal); results in completion order."""
    results = []
    with (ThreadPoolExecutor(max(1, threads)) as pool,
          tqdm(total=len(tasks), desc=desc, unit="part", disable=None, file=sys.stderr) as bar):
        for future in as_completed([pool.submit(t) for t in tasks]):
            results.append(future.result())
            bar.update(1)
    return results


def build_local(
    export: Export,
    flow: Sequence[Stage],
    staging: Path,
    config: Config,
    threads: int = 1,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
    reuse: dict[int, PartitionReport] | None = None,
    as_of: dt.datetime | None = None,
) -> BuildReport:
    """Walk ``export``, run ``flow`` over every file, and write shards under ``staging``, in this
    process (``pipeline.graph.build``'s contract; ``threads``: partitions run at once)."""
    check_flow(flow)
    reuse = dict(reuse or {})
    work = staging / WORK
    started = time.perf_counter()
    walker = LocalWalk(export, config, log, as_of)
    rows = walker.files()
    report, nbuckets = walked(walker.report, rows.num_rows, int(pc.sum(rows["length"]).as_py() or 0),
                              time.perf_counter() - started, config.output.partition_bytes, reuse, log)
    if rows.num_rows == 0:
        return report
    buckets = np.array([bucket_of(u, nbuckets) for u in rows["origin_url"].to_pylist()], dtype=np.int64)
    todo = {int(b): rows.filter(pa.array(buckets == b)) for b in np.unique(buckets) if int(b) not in reuse}
    del rows
    before, after = corpus_stages(flow)

    schemas: dict[str, pa.Schema] = {}
    fresh: list[PartitionReport] = []
    if todo:
        selection = selection_stages(flow)
        for stage in before:
            started = time.perf_counter()
            schema = pa.schema([pa.field("bucket", pa.int32()), *stage.key_schema])
            keys = []
            for bucket, table in sorted(todo.items()):
                for selector in selection:
                    table = selector.process(table, resource(selector)).kept
                keys.append(with_address(stage.map(table, resource(stage)), bucket, None).cast(schema))
            with _phase_bar(f"{stage.name} reduce") as bar:
                corpus = BuildCorpus(pa.concat_tables(keys), resource(stage), str(work / "rows"), bar.update)
                reduced = stage.reduce(corpus)
                _write_reduced(reduced.rows.table, work, stage.name)
            after_reduce(stage)
            report.phases[f"{stage.name} reduce"] = time.perf_counter() - started
            schemas[stage.name] = reduced.schema
            report.reduces[stage.name] = reduced.counters
            log(f"{stage.name}: {counters_line(reduced.counters)}")

        def row_flow(bucket: int) -> PartitionReport:
            reduced = {name: read_reduced(work, name, bucket, schema) for name, schema in schemas.items()}
            try:
                return process_partition(todo[bucket], bucket, list(flow), staging, config.output, reduced,
                                         config.execution.checkpoint)
            finally:
                give_back_memory()

        started = time.perf_counter()
        fresh = _run([lambda b=b: row_flow(b) for b in sorted(todo)], threads, "stages")
        report.phases["row flow"] = time.perf_counter() - started
    todo.clear()
    report.partitions = sorted(fresh + list(reuse.values()), key=lambda r: r.bucket)
    kept, seen = sum(r.rows_kept for r in report.partitions), sum(r.rows_in for r in report.partitions)
    log(f"stages: {kept} of {seen} files kept")

    dropped_before: list[pa.Table] = []
    after_schemas: dict[str, pa.Schema] = {}
    for stage in after:
        started = time.perf_counter()
        keys = _read_keys(work, stage)
        for dropped in dropped_before:  # less the rows earlier such stages dropped
            gone = pc.is_in(_address(keys), value_set=_address(dropped))
            keys = keys.filter(pc.invert(gone))
        with _phase_bar(f"{stage.name} reduce") as bar:
            reduced = stage.reduce(BuildCorpus(keys, resource(stage), str(work / "rows"), bar.update))
            rows_reduced = reduced.rows.table
            _write_reduced(rows_reduced, work, stage.name)
        after_reduce(stage)
        report.phases[f"{stage.name} reduce"] = time.perf_counter() - started
        dropped_before.append(rows_reduced.filter(pc.is_valid(rows_reduced["reason"])).select(["bucket", "row"]))
        after_schemas[stage.name] = reduced.schema
        report.reduces[stage.name] = reduced.counters
        log(f"{stage.name}: {counters_line(reduced.counters)}")

    def write(bucket: int) -> WriteReport:
        reduced = {s.name: read_reduced(work, s.name, bucket, after_schemas[s.name]) for s in after}
        try:
            return finalize_partition(bucket, staging, after, reduced, config.output)
        finally:
            give_back_memory()

    started = time.perf_counter()
    report.writes = sorted(_run([lambda b=r.bucket: write(b) for r in report.partitions], threads, "write"),
                           key=lambda r: r.bucket)
    report.phases["write"] = time.perf_counter() - started
    return report


def _address(table: pa.Table) -> pa.Array:
    """Each row's (bucket, row) as one int64, for set lookups (rows per partition stay far below 2**40)."""
    buckets = table["bucket"].to_numpy().astype(np.int64)
    rows = table["row"].to_numpy().astype(np.int64)
    return pa.array((buckets << 40) | rows, pa.int64())
