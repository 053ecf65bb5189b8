"""The Dask graph: the only module that imports dask.

Assembled in the order of the flow: the walk (joins over the export's tables, level by level),
the partitioning of files by origin, then the stages and the writer per partition. Everything a
partition does is a plain function elsewhere (``pipeline.walk``, ``pipeline.partition``).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash
from dask.distributed import Client, LocalCluster, as_completed
from tqdm import tqdm

from pipeline import walk
from pipeline.config import Config
from pipeline.orc import Export, Piece
from pipeline.partition import (
    DECISIONS_SCHEMA,
    KEYS_SCHEMA,
    WORK,
    finalize_partition,
    license_files,
    process_partition,
    ready,
)
from pipeline.writer import shard_name
from schemas import WALK_SCHEMA
from stages.base import Stage
from stages.dedup import (
    DedupConfig,
    band_hashes,
    blob_of_rank,
    candidate_pairs,
    estimated_jaccard,
    exact_jaccard,
    first_of_groups,
)

_MAX_DEPTH = 10_000  # directory trees are acyclic; this only guards against a corrupt export


@contextmanager
def dask_client(workers: int | None, scheduler: str | None, memory_limit: str | int = "auto") -> Iterator[Client]:
    """A client on ``scheduler`` (tcp://host:port) or on a new LocalCluster of ``workers`` processes."""
    dask.config.set({"dataframe.convert-string": False, "distributed.worker.daemon": False})
    # p2p shuffles log every start and stop at WARNING; they are routine here
    logging.getLogger("distributed.shuffle").setLevel(logging.ERROR)
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, memory_limit=memory_limit
        ) as cluster,
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

    def __init__(self, export: Export, config: Config, log: Callable[[str], None],
                 as_of: dt.datetime | None = None) -> None:
        self.export = export
        self.config = config
        self.log = log
        self.as_of = as_of
        self.report: dict[str, Any] = {}

    def table(self, name: str) -> dd.DataFrame:
        pieces = self.export.pieces(name)
        schema = self.export.schema(name)
        return dd.from_map(_read_piece, pieces, export=self.export, meta=to_pandas(schema.empty_table()))

    def origins(self) -> dd.DataFrame:
        """One row per origin that has a full visit: its snapshot, branch, revision and root tree."""
        status = self.table("origin_visit_status")
        visits = status.shuffle("origin").map_partitions(
            _arrow_fn(walk.latest_full_visits, self.as_of), meta=to_pandas(walk.VISITS_SCHEMA.empty_table())
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


def _give_back_memory() -> None:
    """Return Arrow's freed buffers to the OS after a partition: Dask counts retained allocator
    memory against the worker's limit and pauses the worker when it looks full."""
    pool = pa.default_memory_pool()
    pool.release_unused()
    if pool.backend_name == "jemalloc":
        pa.jemalloc_set_decay_ms(0)


def _process_buckets(df: pd.DataFrame, stages: Sequence[Stage], staging: str, config: Config) -> list[dict[str, Any]]:
    prepared = [ready(stage) for stage in stages]
    reports = []
    for bucket, group in sorted(df.groupby("bucket", sort=True), key=lambda kv: kv[0]):
        table = to_arrow(group.drop(columns=["bucket"]))
        reports.append(process_partition(table, int(bucket), prepared, Path(staging), config.output, config.dedup,
                                         config.execution.checkpoint))
        _give_back_memory()
    return reports


def _license_rows(df: pd.DataFrame) -> pd.DataFrame:
    from stages.license import license_file_mask

    mask = license_file_mask(pa.array(df["path"].tolist(), pa.string())).fill_null(False)
    return df[np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)]


def _scan_licenses(df: pd.DataFrame, stages: Sequence[Stage]) -> dict[str, int]:
    prepared = [ready(stage) for stage in stages]
    table = to_arrow(df).cast(WALK_SCHEMA)
    counters = next(s for s in prepared if hasattr(s, "prepare")).prepare(license_files(table, prepared))
    _give_back_memory()
    return counters


def _scan_license_blobs(client: Client, rows: dd.DataFrame, stages: Sequence[Stage], config: Config) -> dict[str, int]:
    """ScanCode once per distinct license blob of the whole corpus, before the partitions: each
    distinct blob goes to one task, which scans it (unless the cache has it) and adds it to the
    cache; the partitions' license stages then find every text in the cache. Returns the counters
    of the ScanCode runs."""
    lic = rows.map_partitions(_license_rows, meta=rows._meta)
    n = int(lic.shape[0].compute())
    if n == 0:
        return {}
    parts = max(1, math.ceil(n / 256))
    unique = lic.drop_duplicates(subset=["blob_id"], split_out=parts)
    tasks = [dask.delayed(_scan_licenses)(part, list(stages)) for part in unique.to_delayed()]
    totals: dict[str, int] = {}
    for counters in _run_with_bar(client, tasks, "licenses"):
        for key, value in counters.items():
            if key.startswith("scancode_") and key != "scancode_cache_hits":
                totals[key] = totals.get(key, 0) + value
    return totals


def _finalize(bucket: int, staging: str, config: Config) -> dict[str, Any]:
    folder = Path(staging) / WORK / "decisions" / f"bucket={bucket}"
    if folder.is_dir():
        decisions = pq.read_table(folder, schema=DECISIONS_SCHEMA.remove(0))
        decisions = decisions.add_column(0, "bucket", pa.array([bucket] * decisions.num_rows, pa.int32()))
    else:
        decisions = DECISIONS_SCHEMA.empty_table()
    report = finalize_partition(bucket, Path(staging), decisions, config.output)
    _give_back_memory()
    return report


def _run_with_bar(client: Client, tasks: list[Any], desc: str) -> list[Any]:
    futures = client.compute(tasks)
    results = []
    with tqdm(total=len(futures), desc=desc, unit="part", disable=None, file=sys.stderr) as bar:
        for future in as_completed(futures):
            results.append(future.result())
            bar.update(1)
    return results


def build(
    export: Export,
    stages: Sequence[Stage],
    staging: Path,
    config: Config,
    client: Client,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
    reuse: dict[int, dict[str, Any]] | None = None,
    as_of: dt.datetime | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """Walk ``export``, run ``stages`` per partition, deduplicate, and write shards under ``staging``.

    ``reuse``: stage reports of partitions an interrupted run already finished (checked
    checkpoints); their stages are not run again. Returns the walk report, one stage report per
    input partition (``process_partition``), the dedup report, and one write report per partition
    (``finalize_partition``).
    """
    reuse = dict(reuse or {})
    walker = Walk(export, config, log, as_of)
    rows = walker.files().persist()
    n_files, total_bytes = dask.compute(rows.shape[0], rows.length.sum())
    n_files, total_bytes = int(n_files), int(total_bytes or 0)
    nbuckets = max(1, math.ceil(total_bytes / config.output.partition_bytes))
    walker.report.update(files=n_files, content_bytes=total_bytes, partitions=nbuckets)
    log(f"walk: {n_files} files, {total_bytes / 1e6:.1f} MB of content, {nbuckets} partition(s)")
    if n_files == 0:
        return walker.report, [], {}, []
    if any(hasattr(stage, "prepare") for stage in stages):
        walker.report["license_scan"] = _scan_license_blobs(client, rows, stages, config)
    reuse = {b: r for b, r in reuse.items() if b < nbuckets}
    if reuse:
        log(f"resume: reusing {len(reuse)} of {nbuckets} partition(s) finished by the interrupted run")
    bucketed = rows.map_partitions(_bucket, nbuckets, meta=_bucket(rows._meta, 1))
    if reuse:
        bucketed = bucketed[~bucketed.bucket.isin(sorted(reuse))]
    bucketed = bucketed.shuffle("bucket", npartitions=max(1, nbuckets - len(reuse)))
    tasks = [dask.delayed(_process_buckets)(part, list(stages), str(staging), config) for part in bucketed.to_delayed()]
    fresh = [r for rs in _run_with_bar(client, tasks, "stages") for r in rs] if len(reuse) < nbuckets else []
    stage_reports = sorted(fresh + list(reuse.values()), key=lambda r: r["bucket"])
    buckets = [r["bucket"] for r in stage_reports]
    kept, seen = sum(r["rows_kept"] for r in stage_reports), sum(r["rows_in"] for r in stage_reports)
    log(f"stages: {kept} of {seen} files kept")
    dedup_report = Dedup(staging, config.dedup, log, config.execution.components_partition_edges).run(nbuckets)
    tasks = [dask.delayed(_finalize)(b, str(staging), config) for b in buckets]
    write_reports = sorted(_run_with_bar(client, tasks, "write"), key=lambda r: r["bucket"])
    return walker.report, stage_reports, dedup_report, write_reports


class Dedup:
    """Exact and near dedup over the whole corpus, as shuffles and joins of the rows' keys.

    exact: keys shuffled on sha256 → the survivor of each hash. near: the survivors' LSH band keys
    shuffled on (band, key) → candidate pairs per bucket → joined with both signatures and
    verified → connected components by min-label propagation with pointer jumping → the survivor
    of each component. Decisions are written per input partition for ``finalize_partition``.
    """

    def __init__(self, staging: Path, config: DedupConfig, log: Callable[[str], None],
                 edges_per_partition: int = 1_000_000) -> None:
        self.work = staging / WORK
        self.config = config
        self.log = log
        self.edges_per_partition = edges_per_partition

    def run(self, nbuckets: int) -> dict[str, Any]:
        meta = to_pandas(KEYS_SCHEMA.empty_table())
        keys = dd.read_parquet(str(self.work / "keys"), dtype_backend="pyarrow")
        keys = keys.astype(meta.dtypes.to_dict()) if len(keys.columns) else meta
        picked = keys.shuffle("sha256").map_partitions(_pick_exact, meta=_pick_exact(meta))
        picked = picked.persist()
        exact = picked[~picked.is_survivor]
        exact_decisions = exact.map_partitions(
            _decisions, "exact_dedup", "exact_duplicate", False, meta=to_pandas(DECISIONS_SCHEMA.empty_table())
        )
        survivors = picked[picked.is_survivor & ~picked.signature.isna()][["bucket", "row", "rank", "blob_id",
                                                                          "signature"]].persist()
        near_decisions, report = self._near(survivors)
        decisions = dd.concat([exact_decisions, near_decisions])
        n_in, n_exact, n_near = dask.compute(picked.shape[0], exact.shape[0], near_decisions.shape[0])
        decisions.to_parquet(str(self.work / "decisions"), partition_on=["bucket"], write_index=False)
        report.update(rows_in=int(n_in), exact_duplicates=int(n_exact), near_duplicates=int(n_near))
        self.log(f"dedup: {n_exact} exact and {n_near} near duplicates of {n_in} files")
        return report

    def _near(self, survivors: dd.DataFrame) -> tuple[dd.DataFrame, dict[str, Any]]:
        c = self.config
        band_meta = pd.DataFrame({"bk": pd.Series(dtype="uint64"), "node": pd.Series(dtype=pd.ArrowDtype(pa.string()))})
        bands = survivors.map_partitions(_band_rows, c.bands, c.rows, meta=band_meta)
        pair_meta = pd.DataFrame({"a": band_meta.node, "b": band_meta.node})
        pairs = bands.shuffle("bk").map_partitions(_bucket_pairs, meta=pair_meta)
        pairs = pairs.shuffle("a").map_partitions(lambda df: df.drop_duplicates(), meta=pair_meta)
        sigs = survivors[["rank", "signature", "bucket", "row"]]
        with_sigs = pairs
        for side in ("a", "b"):
            names = {"rank": side, "signature": f"sig_{side}", "bucket": f"bucket_{side}", "row": f"row_{side}"}
            with_sigs = with_sigs.merge(sigs.rename(columns=names), on=side)
        exact_in = str(self.work / "rows") if c.exact_jaccard else None
        edges = with_sigs.map_partitions(_verify, c.threshold, exact_in, c.ngram, meta=pair_meta).persist()
        n_pairs, n_edges = dask.compute(pairs.shape[0], edges.shape[0])
        self.log(f"dedup: {n_pairs} candidate pairs, {n_edges} verified")
        # as many partitions as the edges need, not as the input had: each join of a round is a
        # shuffle, and a shuffle of a few thousand edges over many partitions is all overhead
        parts = max(1, math.ceil(n_edges / self.edges_per_partition))
        edges = edges.repartition(npartitions=parts).persist()
        labels, iterations = _components(edges, self.log)
        members = labels[labels.node != labels.label]
        members = members.merge(survivors[["rank", "bucket", "row"]].rename(columns={"rank": "node"}), on="node")
        decisions = members.map_partitions(
            _decisions_from_labels, c.keep_near_duplicates, meta=to_pandas(DECISIONS_SCHEMA.empty_table())
        )
        n_clusters = dask.compute(labels[labels.node == labels.label].shape[0])[0] if iterations else 0
        report = {"candidate_pairs": int(n_pairs), "verified_pairs": int(n_edges), "clusters": int(n_clusters),
                  "label_iterations": iterations}
        return decisions, report


def _pick_exact(df: pd.DataFrame) -> pd.DataFrame:
    """Keys shuffled on sha256: the smallest rank of each hash survives, the others name it."""
    table = to_arrow(df).sort_by([("sha256", "ascending"), ("rank", "ascending")])
    hashes, blobs = table["sha256"].to_pylist(), table["blob_id"].to_pylist()
    first = first_of_groups(hashes)
    survivor, current = [], None
    for i, is_first in enumerate(first):
        current = blobs[i] if is_first else current
        survivor.append(current)
    out = table.append_column("is_survivor", pa.array(first, pa.bool_()))
    return to_pandas(out.append_column("survivor_blob", pa.array(survivor, pa.string())))


def _decisions(df: pd.DataFrame, stage: str, reason: str, keep: bool) -> pd.DataFrame:
    n = len(df)
    return to_pandas(pa.table({
        "bucket": pa.array(df["bucket"].to_numpy(), pa.int32()),
        "row": pa.array(df["row"].to_numpy(), pa.int64()),
        "stage": pa.array([None if keep else stage] * n, pa.string()),
        "reason": pa.array([None if keep else reason] * n, pa.string()),
        "detail": pa.array(df["survivor_blob"].tolist(), pa.string()),
        "near_dup_cluster": pa.array(df["survivor_blob"].tolist(), pa.string()),
    }, schema=DECISIONS_SCHEMA))


def _decisions_from_labels(df: pd.DataFrame, keep: bool) -> pd.DataFrame:
    return _decisions(df.assign(survivor_blob=[blob_of_rank(r) for r in df["label"]]), "near_dedup",
                      "near_duplicate", keep)


def _signature_matrix(values: Sequence[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(values), dtype=np.uint32).reshape(len(values), -1) if len(values) else np.empty(
        (0, 0), np.uint32)


def _band_rows(df: pd.DataFrame, bands: int, rows: int) -> pd.DataFrame:
    """One row per (document, band): the band's key mixed with its number, and the document."""
    keys = band_hashes(_signature_matrix(df["signature"].tolist()), bands, rows)
    with np.errstate(over="ignore"):
        keys = keys ^ (np.arange(bands, dtype=np.uint64) * np.uint64(0xD6E8FEB86659FD93))[None, :]
    nodes = np.repeat(np.asarray(df["rank"].tolist(), dtype=object), bands)
    return pd.DataFrame({"bk": keys.reshape(-1), "node": pd.array(nodes, dtype=pd.ArrowDtype(pa.string()))})


def _bucket_pairs(df: pd.DataFrame) -> pd.DataFrame:
    """Candidate pairs of every LSH bucket in this partition (linear in each bucket's size)."""
    df = df.sort_values(["bk", "node"])
    keys, nodes = df["bk"].to_numpy(), df["node"].tolist()
    a, b = [], []
    start = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            if i - start > 1:
                for x, y in candidate_pairs(nodes[start:i]):
                    a.append(x)
                    b.append(y)
            start = i
    string = pd.ArrowDtype(pa.string())
    return pd.DataFrame({"a": pd.array(a, dtype=string), "b": pd.array(b, dtype=string)})


def _verify(df: pd.DataFrame, threshold: float, rows_dir: str | None, ngram: int) -> pd.DataFrame:
    """Candidate pairs whose Jaccard reaches ``threshold``: estimated from the signatures (the share
    of equal MinHash values), or, with ``rows_dir``, exact on the two files' shingle sets."""
    if not len(df):
        return df[["a", "b"]]
    if rows_dir is None:
        similar = estimated_jaccard(_signature_matrix(df["sig_a"].tolist()), _signature_matrix(df["sig_b"].tolist()))
    else:
        sides = [zip(df[f"bucket_{x}"], df[f"row_{x}"], strict=True) for x in ("a", "b")]
        texts = _texts(Path(rows_dir), [pair for side in sides for pair in side])
        similar = np.array([
            exact_jaccard(texts[(ba, ra)], texts[(bb, rb)], ngram)
            for ba, ra, bb, rb in zip(df["bucket_a"], df["row_a"], df["bucket_b"], df["row_b"], strict=True)
        ])
    return df.loc[similar >= threshold, ["a", "b"]]


def _texts(rows_dir: Path, wanted: list[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """The content of the given (partition, row) pairs, reading only the row groups that hold them."""
    out: dict[tuple[int, int], str] = {}
    by_bucket: dict[int, set[int]] = {}
    for bucket, row in wanted:
        by_bucket.setdefault(int(bucket), set()).add(int(row))
    for bucket, rows in by_bucket.items():
        reader = pq.ParquetFile(rows_dir / shard_name(bucket))
        starts = np.cumsum([0] + [reader.metadata.row_group(g).num_rows for g in range(reader.num_row_groups)])
        for group in sorted({int(np.searchsorted(starts, r, side="right") - 1) for r in rows}):
            contents = reader.read_row_group(group, columns=["content"])["content"].to_pylist()
            for r in rows:
                if starts[group] <= r < starts[group + 1]:
                    out[(bucket, r)] = contents[r - starts[group]]
    return out


def _components(edges: dd.DataFrame, log: Callable[[str], None]) -> tuple[dd.DataFrame, int]:
    """Connected components of ``edges`` (a, b): every node labelled with the smallest node of its
    component, by min-label propagation with pointer jumping, all as shuffles and joins."""
    string = pd.ArrowDtype(pa.string())
    label_meta = pd.DataFrame({"node": pd.Series(dtype=string), "label": pd.Series(dtype=string)})
    both = dd.concat([edges.rename(columns={"a": "src", "b": "dst"}), edges.rename(columns={"a": "dst", "b": "src"})])
    # a fixed number of label partitions: split_out=True would follow the concat below and grow every round
    parts = max(1, edges.npartitions)
    labels = both[["src"]].rename(columns={"src": "node"}).drop_duplicates(split_out=parts)
    labels = labels.assign(label=labels.node).persist()
    for iteration in range(1, 200):
        neighbour = both.merge(labels.rename(columns={"node": "dst", "label": "nlabel"}), on="dst")
        offered = neighbour[["src", "nlabel"]].rename(columns={"src": "node", "nlabel": "label"})
        candidates = dd.concat([labels, offered])
        new = candidates.groupby("node").label.min(split_out=parts).reset_index()
        jumped = new.merge(new.rename(columns={"node": "label", "label": "label2"}), on="label", how="left")
        jumped = jumped.assign(label=jumped.label.where(jumped.label2.isna() | (jumped.label <= jumped.label2),
                                                        jumped.label2))[["node", "label"]]
        jumped = jumped.map_partitions(lambda df: df, meta=label_meta).persist()
        compared = jumped.merge(labels.rename(columns={"label": "old"}), on="node")
        changed = int((compared.label != compared.old).sum().compute())
        labels = jumped
        if changed == 0:
            return labels, iteration
        log(f"dedup: components, iteration {iteration}, {changed} labels changed")
    raise RuntimeError("connected components did not converge in 200 iterations")
