"""The opt-out stage: files of repositories in the opt-out registry go to the ledger before any fetch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa

from pipeline.optout import Registry
from stages.base import Reason, RowStage, StageResult, split


@dataclass(frozen=True)
class OptOut(RowStage):
    """Drops every file whose repository the ``registry`` names (ledger: ``opted_out``, detail: the
    entry that matched and its date). Runs first, on walk rows, so opted-out blobs are never read."""

    registry: Registry
    name: ClassVar[str] = "opt_out"
    reads_content: ClassVar[bool] = False  # it decides on the repository alone, before any fetch

    def process(self, table: pa.Table, resource: Any = None) -> StageResult:
        entries = self.registry.matches(table["origin_url"].to_pylist(), table["repo_name"].to_pylist())
        reasons = [None if e is None else Reason.OPTED_OUT for e in entries]
        details = [None if e is None else e.described() for e in entries]
        kept, dropped, counters = split(self.name, table, reasons, details)
        return StageResult(kept, dropped, counters)
