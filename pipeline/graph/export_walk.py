"""The walk of an export as Dask work: joins over the export's tables, level by level.

Per origin: the latest full visit → its snapshot → the branch walked → the revision → its root tree,
then ``directory_entry`` joined level by level (never a dict of the whole table in one process),
then ``content`` and ``skipped_content``. Each step is a pure Arrow function of ``pipeline.walk``.
"""

from __future__ import annotations

import sys

import dask
import dask.dataframe as dd
import pandas as pd
from tqdm import tqdm

from pipeline import walk
from pipeline.graph.cluster import arrow_fn, to_pandas
from pipeline.orc import Export, Piece
from schemas import WALK_SCHEMA

_MAX_DEPTH = 10_000  # directory trees are acyclic; this only guards against a corrupt export


def _read_piece(piece: Piece, export: Export) -> pd.DataFrame:
    return to_pandas(walk.strip_credentials(export.read(piece), piece.table))


class Walk(walk.ExportWalk):
    """The walk of one export as Dask work; ``files()`` gives one WALK_SCHEMA row per file."""

    def table(self, name: str) -> dd.DataFrame:
        """A table of the export; an empty or absent one is an empty frame of the public schema."""
        pieces = self.export.pieces(name)
        empty = to_pandas(walk.strip_credentials(self.export.schema(name).empty_table(), name))
        if not pieces:
            return dd.from_pandas(empty, npartitions=1)
        return dd.from_map(_read_piece, pieces, export=self.export, meta=empty)

    def origins(self) -> dd.DataFrame:
        """One row per origin that has a full visit: its snapshot, branch, revision and root tree."""
        status = self.table("origin_visit_status")
        visits = status.shuffle("origin").map_partitions(
            arrow_fn(walk.latest_full_visits, self.as_of), meta=to_pandas(walk.VISITS_SCHEMA.empty_table())
        )
        visit_dates = self.table("origin_visit").rename(columns={"date": "visit_date"})
        visits = dd.merge(visits, visit_dates, on=["origin", "visit"], how="left")
        visits = visits.assign(visit_date=visits.visit_date.fillna(visits.status_date))

        branches = self.table("snapshot_branch")
        with_branches = dd.merge(
            visits[["origin", "snapshot"]], branches, left_on="snapshot", right_on="snapshot_id", how="left"
        )[["origin", "snapshot", "name", "target", "target_type"]]
        heads = with_branches.shuffle("origin").map_partitions(
            arrow_fn(walk.choose_heads, tuple(self.config.walk.default_branches)),
            meta=to_pandas(walk.HEADS_SCHEMA.empty_table()),
        )
        releases = self.table("release").rename(
            columns={"id": "release_id", "target": "release_target", "target_type": "release_target_type"}
        )
        heads = dd.merge(heads, releases, left_on="target", right_on="release_id", how="left")
        heads = heads.map_partitions(
            arrow_fn(walk.resolve_revisions),
            meta=heads._meta[["origin", "snapshot", "branch_name"]].assign(
                revision_id=heads._meta["target"], problem=heads._meta["problem"]
            ),
        )
        revisions = self.table("revision").rename(
            columns={"id": "revision_id", "directory": "directory_id", "date": "revision_date"}
        )
        roots = dd.merge(heads, revisions, on="revision_id", how="left")
        roots = roots.map_partitions(arrow_fn(walk.check_revisions), meta=roots._meta)
        if self.export.files("directory"):  # tell a root tree missing from the export from an empty one
            known = self._directories()
            roots = dd.merge(roots, known.rename(columns={"dir": "directory_id"}), on="directory_id", how="left")
            missing = roots.problem.isna() & roots.directory_id.notnull() & roots._known.isna()
            roots = roots.assign(problem=roots.problem.mask(missing, "directory_missing")).drop(columns=["_known"])
        roots = dd.merge(roots, visits[["origin", "visit_date"]], on="origin", how="left")
        return roots

    def _directories(self) -> dd.DataFrame:
        """The ids of the directories the export has (``dir``), marked ``_known``."""
        ids = self.table("directory")[["id"]].rename(columns={"id": "dir"})
        return ids.assign(_known=1)

    def files(self) -> dd.DataFrame:
        """Every file of every walked tree, joined with content and provenance (WALK_SCHEMA)."""
        roots = self.origins().persist()
        origin_table = self.table("origin")
        n_origins, problems, with_credentials = dask.compute(
            origin_table.url.nunique(), roots.problem.value_counts(dropna=False), origin_table.had_credentials.sum()
        )
        self.count_origins(int(n_origins), {None if pd.isna(k) else str(k): int(v) for k, v in problems.items()},
                           int(with_credentials))

        good = roots[roots.problem.isna()]
        frontier = good.map_partitions(
            arrow_fn(walk.root_frontier), meta=to_pandas(walk.FRONTIER_SCHEMA.empty_table())
        )
        entries = self.table("directory_entry")
        level_meta = to_pandas(walk.LEVEL_SCHEMA.empty_table())
        file_levels, submodules, missing = [], [], []
        check = bool(self.export.files("directory"))
        known = self._directories() if check else None
        bar = tqdm(desc="walk", unit="level", disable=None, file=sys.stderr)
        for depth in range(_MAX_DEPTH):
            if known is not None and depth > 0:  # a subdirectory the export does not have: counted
                looked_up = dd.merge(frontier, known, on="dir", how="left")
                missing.append(looked_up._known.isna().sum())
            joined = dd.merge(frontier, entries, left_on="dir", right_on="directory_id", how="inner")
            level = joined.map_partitions(arrow_fn(walk.expand_level), meta=level_meta).persist()
            file_levels.append(level[level.type == "file"][["origin", "target", "path", "perms"]])
            submodules.append((level.type == "rev").sum())
            frontier = level.map_partitions(
                arrow_fn(walk.next_frontier), meta=to_pandas(walk.FRONTIER_SCHEMA.empty_table())
            ).persist()
            n_dirs = int(frontier.shape[0].compute())
            bar.update(1)
            bar.set_postfix_str(f"{n_dirs} directories below", refresh=False)
            if bar.disable:  # no bar to show it: say it in the log
                self.log(f"walk: depth {depth + 1}, {n_dirs} directories below")
            if n_dirs == 0:
                break
        bar.close()
        files = dd.concat(file_levels)
        content = self.table("content").rename(columns={"sha1_git": "target"})
        skipped = self.table("skipped_content").rename(
            columns={"sha1_git": "target", "sha1": "skipped_sha1", "length": "skipped_length",
                     "status": "skipped_status", "reason": "skipped_reason"}
        )
        files = dd.merge(files, content, on="target", how="left")
        files = dd.merge(files, skipped, on="target", how="left")
        files = dd.merge(files, good.drop(columns=["problem"]), on="origin", how="inner")
        rows = files.map_partitions(arrow_fn(walk.file_rows), meta=to_pandas(WALK_SCHEMA.empty_table()))
        self.report.submodules_skipped = int(sum(dask.compute(*submodules)))
        self.report.directories_missing = int(sum(dask.compute(*missing))) if missing else 0
        if not check:
            self.log("walk: the export has no directory table: a missing directory reads as an empty one")
        return rows
