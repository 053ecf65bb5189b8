"""The Dask graph: the only module that imports dask.

Assembled in the order of the flow: the walk (joins over the export's tables, level by level),
the partitioning of files by origin, then the stages and the writer per partition. Everything a
partition does is a plain function elsewhere (``pipeline.walk``, ``pipeline.partition``).
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dask
import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
import xxhash
from dask.distributed import Client, LocalCluster, as_completed
from tqdm import tqdm

from pipeline import walk
from pipeline.config import Config
from pipeline.orc import Export, Piece
from pipeline.partition import process_partition, ready
from schemas import WALK_SCHEMA
from stages.base import Stage

_MAX_DEPTH = 10_000  # directory trees are acyclic; this only guards against a corrupt export


@contextmanager
def dask_client(workers: int | None, scheduler: str | None) -> Iterator[Client]:
    """A client on ``scheduler`` (tcp://host:port) or on a new LocalCluster of ``workers`` processes."""
    dask.config.set({"dataframe.convert-string": False, "distributed.worker.daemon": False})
    # p2p shuffles log every start and stop at WARNING; they are routine here
    logging.getLogger("distributed.shuffle").setLevel(logging.ERROR)
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        yield client


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow-backed pandas, so strings, bytes and timestamps keep their Arrow types."""
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def to_arrow(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df, preserve_index=False)


def _arrow_fn(fn: Callable[..., pa.Table], *args: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def run(df: pd.DataFrame) -> pd.DataFrame:
        return to_pandas(fn(to_arrow(df), *args))

    return run


def _read_piece(piece: Piece, export: Export) -> pd.DataFrame:
    return to_pandas(export.read(piece))


class Walk:
    """The walk of one export as Dask work; ``files()`` gives one WALK_SCHEMA row per file."""

    def __init__(self, export: Export, config: Config, log: Callable[[str], None]) -> None:
        self.export = export
        self.config = config
        self.log = log
        self.report: dict[str, Any] = {}

    def table(self, name: str) -> dd.DataFrame:
        pieces = self.export.pieces(name)
        schema = self.export.schema(name)
        return dd.from_map(_read_piece, pieces, export=self.export, meta=to_pandas(schema.empty_table()))

    def origins(self) -> dd.DataFrame:
        """One row per origin that has a full visit: its snapshot, branch, revision and root tree."""
        status = self.table("origin_visit_status")
        visits = status.shuffle("origin").map_partitions(
            _arrow_fn(walk.latest_full_visits), meta=to_pandas(walk.VISITS_SCHEMA.empty_table())
        )
        visit_dates = self.table("origin_visit").rename(columns={"date": "visit_date"})
        visits = dd.merge(visits, visit_dates, on=["origin", "visit"], how="left")
        visits = visits.assign(visit_date=visits.visit_date.fillna(visits.status_date))

        branches = self.table("snapshot_branch")
        with_branches = dd.merge(
            visits[["origin", "snapshot"]], branches, left_on="snapshot", right_on="snapshot_id", how="left"
        )[["origin", "snapshot", "name", "target", "target_type"]]
        heads = with_branches.shuffle("origin").map_partitions(
            _arrow_fn(walk.choose_heads, tuple(self.config.walk.default_branches)),
            meta=to_pandas(walk.HEADS_SCHEMA.empty_table()),
        )
        releases = self.table("release").rename(
            columns={"id": "release_id", "target": "release_target", "target_type": "release_target_type"}
        )
        heads = dd.merge(heads, releases, left_on="target", right_on="release_id", how="left")
        heads = heads.map_partitions(
            _arrow_fn(walk.resolve_revisions),
            meta=heads._meta[["origin", "snapshot", "branch_name"]].assign(
                revision_id=heads._meta["target"], problem=heads._meta["problem"]
            ),
        )
        revisions = self.table("revision").rename(
            columns={"id": "revision_id", "directory": "directory_id", "date": "revision_date"}
        )
        roots = dd.merge(heads, revisions, on="revision_id", how="left")
        roots = roots.map_partitions(_arrow_fn(walk.check_revisions), meta=roots._meta)
        roots = dd.merge(roots, visits[["origin", "visit_date"]], on="origin", how="left")
        return roots

    def files(self) -> dd.DataFrame:
        """Every file of every walked tree, joined with content and provenance (WALK_SCHEMA)."""
        roots = self.origins().persist()
        n_origins, problems = dask.compute(
            self.table("origin").url.nunique(), roots.problem.value_counts(dropna=False)
        )
        counts = {str(k): int(v) for k, v in problems.items() if not pd.isna(k)}
        walked = int(sum(v for k, v in problems.items() if pd.isna(k)))
        counts["no_full_visit"] = max(0, int(n_origins) - walked - sum(counts.values()))
        self.report.update(origins=int(n_origins), origins_walked=walked,
                           origin_problems={k: counts.get(k, 0) for k in walk.ORIGIN_PROBLEMS})
        self.log(f"walk: {n_origins} origins, {walked} with a tree to walk")

        good = roots[roots.problem.isna()]
        frontier = good.map_partitions(
            _arrow_fn(walk.root_frontier), meta=to_pandas(walk.FRONTIER_SCHEMA.empty_table())
        )
        entries = self.table("directory_entry")
        level_meta = to_pandas(walk.LEVEL_SCHEMA.empty_table())
        file_levels, submodules = [], []
        for depth in range(_MAX_DEPTH):
            joined = dd.merge(frontier, entries, left_on="dir", right_on="directory_id", how="inner")
            level = joined.map_partitions(_arrow_fn(walk.expand_level), meta=level_meta).persist()
            file_levels.append(level[level.type == "file"][["origin", "target", "path"]])
            submodules.append((level.type == "rev").sum())
            frontier = level.map_partitions(
                _arrow_fn(walk.next_frontier), meta=to_pandas(walk.FRONTIER_SCHEMA.empty_table())
            ).persist()
            n_dirs = int(frontier.shape[0].compute())
            self.log(f"walk: depth {depth + 1}, {n_dirs} directories below")
            if n_dirs == 0:
                break
        files = dd.concat(file_levels)
        content = self.table("content").rename(columns={"sha1_git": "target"})
        skipped = self.table("skipped_content").rename(
            columns={"sha1_git": "target", "sha1": "skipped_sha1", "length": "skipped_length",
                     "status": "skipped_status", "reason": "skipped_reason"}
        )
        files = dd.merge(files, content, on="target", how="left")
        files = dd.merge(files, skipped, on="target", how="left")
        files = dd.merge(files, good.drop(columns=["problem"]), on="origin", how="inner")
        rows = files.map_partitions(_arrow_fn(walk.file_rows), meta=to_pandas(WALK_SCHEMA.empty_table()))
        self.report["submodules_skipped"] = int(sum(dask.compute(*submodules)))
        return rows


def _bucket(df: pd.DataFrame, nbuckets: int) -> pd.DataFrame:
    buckets = [xxhash.xxh64_intdigest(url.encode()) % nbuckets for url in df["origin_url"]]
    return df.assign(bucket=pd.Series(buckets, index=df.index, dtype="int64"))


def _process_buckets(
    df: pd.DataFrame, stages: Sequence[Stage], staging: str, config: Config
) -> list[dict[str, Any]]:
    prepared = [ready(stage) for stage in stages]
    reports = []
    for bucket, group in sorted(df.groupby("bucket", sort=True), key=lambda kv: kv[0]):
        table = to_arrow(group.drop(columns=["bucket"]))
        reports.append(
            {"bucket": int(bucket), **process_partition(table, int(bucket), prepared, Path(staging), config.output)}
        )
    return reports


def build(
    export: Export,
    stages: Sequence[Stage],
    staging: Path,
    config: Config,
    client: Client,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Walk ``export``, run ``stages`` per partition and write shards under ``staging``.

    Returns the walk report and one report per input partition (see ``process_partition``).
    """
    walker = Walk(export, config, log)
    rows = walker.files().persist()
    n_files, total_bytes = dask.compute(rows.shape[0], rows.length.sum())
    n_files, total_bytes = int(n_files), int(total_bytes or 0)
    nbuckets = max(1, math.ceil(total_bytes / config.output.partition_bytes))
    walker.report.update(files=n_files, content_bytes=total_bytes, partitions=nbuckets)
    log(f"walk: {n_files} files, {total_bytes / 1e6:.1f} MB of content, {nbuckets} partition(s)")
    if n_files == 0:
        return walker.report, []
    bucketed = rows.map_partitions(_bucket, nbuckets, meta=_bucket(rows._meta, 1))
    bucketed = bucketed.shuffle("bucket", npartitions=nbuckets)
    tasks = [
        dask.delayed(_process_buckets)(part, list(stages), str(staging), config)
        for part in bucketed.to_delayed()
    ]
    futures = client.compute(tasks)
    reports: list[dict[str, Any]] = []
    with tqdm(total=len(futures), desc="partitions", unit="part", disable=None, file=sys.stderr) as bar:
        for future in as_completed(futures):
            reports.extend(future.result())
            bar.update(1)
    reports.sort(key=lambda r: r["bucket"])
    return walker.report, reports
