"""What a build reports, typed: the walk, each partition's row pass, each corpus stage's reduce and
each partition's write. ``manifests.assemble`` turns them into the manifest; checkpoints keep a
partition's ``PartitionReport`` as JSON (``to_dict`` / ``from_dict``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

Counters = dict[str, int]


def add_counters(into: dict[str, Counters], stage: str, counters: Counters) -> None:
    """Add ``counters`` to ``into[stage]``."""
    entry = into.setdefault(stage, {})
    for key, value in counters.items():
        entry[key] = entry.get(key, 0) + int(value)


Timings = dict[str, dict[str, float]]


def add_timing(into: Timings, stage: str, cpu_s: float, wall_s: float, bytes_in: int) -> None:
    """Add one call's CPU seconds (of the thread that ran it), wall seconds and input bytes to ``into[stage]``."""
    entry = into.setdefault(stage, {"cpu_s": 0.0, "wall_s": 0.0, "bytes": 0})
    entry["cpu_s"] += cpu_s
    entry["wall_s"] += wall_s
    entry["bytes"] += bytes_in


@dataclass
class WalkReport:
    """The walk of the export: origins, what kept an origin from being walked, files and bytes found."""

    origins: int = 0
    origins_walked: int = 0
    origin_problems: Counters = field(default_factory=dict)
    #: origin URLs with a userinfo (``https://user:token@host``), which the walk removed
    origins_with_credentials: int = 0
    submodules_skipped: int = 0
    directories_missing: int = 0
    files: int = 0
    content_bytes: int = 0
    partitions: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class PartitionReport:
    """One input partition's pass through the row flow: rows in, rows every stage kept, and each
    stage's counters (``in``, ``kept``, one per reason, and the stage's own)."""

    bucket: int
    rows_in: int
    rows_kept: int
    stages: dict[str, Counters] = field(default_factory=dict)
    timings: Timings = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartitionReport:
        return cls(int(data["bucket"]), int(data["rows_in"]), int(data["rows_kept"]),
                   {k: {n: int(v) for n, v in c.items()} for k, c in data["stages"].items()},
                   {k: dict(v) for k, v in data.get("timings", {}).items()})


@dataclass
class WriteReport:
    """One partition's final pass: the corpus stages that read kept rows, then its shards.

    ``stages``: those stages' counters; ``languages``, ``licenses``, ``license_types``: files and
    bytes kept per key; ``opted_out_origins``: the repositories of this partition that the opt-out
    registry removed (origins are never split across partitions, so these add up to exact totals).
    """

    bucket: int
    rows_kept: int
    rows_dropped: int
    shards: list[dict[str, Any]] = field(default_factory=list)
    stages: dict[str, Counters] = field(default_factory=dict)
    languages: dict[str, Counters] = field(default_factory=dict)
    licenses: dict[str, Counters] = field(default_factory=dict)
    license_types: dict[str, Counters] = field(default_factory=dict)
    opted_out_origins: list[str] = field(default_factory=list)
    timings: Timings = field(default_factory=dict)


@dataclass
class BuildReport:
    """Everything ``pipeline.graph.build`` reports: ``reduces`` holds each corpus stage's reduce counters."""

    walk: WalkReport
    partitions: list[PartitionReport] = field(default_factory=list)
    reduces: dict[str, Counters] = field(default_factory=dict)
    writes: list[WriteReport] = field(default_factory=list)
    #: wall seconds of each phase the driver waited for: walk, each reduce, the row flow, the writes
    phases: dict[str, float] = field(default_factory=dict)
