"""The opt-out stage: files of repositories in the opt-out registry go to the ledger before any fetch."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from pipeline.optout import Registry
from stages.base import Reason, StageResult, split


@dataclass(frozen=True)
class OptOut:
    """Drops every file whose repository the ``registry`` names (ledger: ``opted_out``, detail: the
    entry that matched and its date). Runs first, on walk rows, so opted-out blobs are never read."""

    registry: Registry
    name: str = "opt_out"

    def setup(self) -> None:
        """Nothing to load: the registry is indexed when built."""

    def process(self, table: pa.Table) -> StageResult:
        entries = self.registry.matches(table["origin_url"].to_pylist(), table["repo_name"].to_pylist())
        reasons = [None if e is None else Reason.OPTED_OUT for e in entries]
        details = [None if e is None else f"{e.target} ({e.date.isoformat()})" for e in entries]
        kept, dropped, counters = split(self.name, table, reasons, details)
        return StageResult(kept, dropped, counters)
