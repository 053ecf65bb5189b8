"""The manifest of a version, assembled from a build's typed reports (``manifests.reports``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from manifests.manifest import FORMAT
from manifests.reports import BuildReport, Counters, add_counters, add_timing
from stages.base import Reason

_REASONS = {r.value for r in Reason}


def stage_totals(report: BuildReport, names: Sequence[str]) -> dict[str, Counters]:
    """Each stage's counters summed over the partitions' row flows, the final passes and its reduce."""
    totals: dict[str, Counters] = {name: {} for name in names}
    for part in [*report.partitions, *report.writes]:
        for name, counters in part.stages.items():
            add_counters(totals, name, counters)
    for name, counters in report.reduces.items():
        add_counters(totals, name, counters)
    return totals


def stage_timings(report: BuildReport, names: Sequence[str]) -> dict[str, Any]:
    """CPU seconds (of the threads that ran them), wall seconds and input bytes per stage, summed over
    every call; and the wall seconds the driver waited for each phase. Speed, never identity: two
    builds of the same version differ here and nowhere else in what they measured."""
    stages: dict[str, dict[str, float]] = {}
    for part in [*report.partitions, *report.writes]:
        for name, t in part.timings.items():
            add_timing(stages, name, t["cpu_s"], t["wall_s"], int(t["bytes"]))
    total = sum(t["cpu_s"] for t in stages.values()) or 1.0
    out = {}
    for name in names:
        if name not in stages:
            continue
        t = stages[name]
        out[name] = {"cpu_s": round(t["cpu_s"], 3), "wall_s": round(t["wall_s"], 3), "bytes": int(t["bytes"]),
                     "mb_per_cpu_s": round(t["bytes"] / 1e6 / t["cpu_s"], 2) if t["cpu_s"] > 0 else None,
                     "cpu_share": round(t["cpu_s"] / total, 4)}
    return {"stages": out, "phases_wall_s": {k: round(v, 3) for k, v in report.phases.items()}}


def assemble_manifest(
    version: str,
    identity: dict[str, Any],
    config: dict[str, Any],
    stage_names: Sequence[str],
    report: BuildReport,
    opt_out: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest (without ``parent`` and ``files``) from ``report``; checks files in = kept + dropped.

    ``stage_names``: the flow's stages in order. ``opt_out``: the registry's entry count and the
    repositories earlier versions opted out (``entries``, ``carried``), when a registry applies.
    """
    totals = stage_totals(report, stage_names)
    stage_entries = [_stage_entry(name, totals[name]) for name in stage_names]
    languages: dict[str, Counters] = {}
    licenses: dict[str, Counters] = {}
    license_types: dict[str, Counters] = {}
    for write in report.writes:
        for into, source in ((languages, write.languages), (licenses, write.licenses),
                             (license_types, write.license_types)):
            for key, counters in source.items():
                add_counters(into, key, counters)
    shards = sorted((s for w in report.writes for s in w.shards), key=lambda s: s["path"])
    files_in = report.walk.files
    kept = sum(w.rows_kept for w in report.writes)
    dropped = sum(w.rows_dropped for w in report.writes)
    if files_in != kept + dropped or files_in != sum(p.rows_in for p in report.partitions):
        raise RuntimeError(f"bug: {files_in} files walked but {kept} kept + {dropped} dropped")
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "version": version,
        "parent": None,
        "created_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        **identity,
        "config": config,
        "walk": report.walk.to_dict(),
        "stages": stage_entries,
        "languages": dict(sorted(languages.items())),
    }
    if "license" in stage_names:
        manifest["licenses"] = dict(sorted(licenses.items()))
        manifest["license_types"] = dict(sorted(license_types.items()))
    manifest["shards"] = shards
    manifest["totals"] = {
        "files_in": files_in,
        "files_kept": kept,
        "files_dropped": dropped,
        "content_bytes": sum(v["bytes"] for v in languages.values()),
        "shard_bytes": sum(s["bytes"] for s in shards),
    }
    manifest["timings"] = stage_timings(report, stage_names)
    if identity.get("opt_out") is not None and opt_out is not None:
        removed = sorted({u for w in report.writes for u in w.opted_out_origins})
        manifest["opt_out"] = {
            **identity["opt_out"],
            "entries": opt_out["entries"],
            "repositories_removed": len(removed),
            "files_removed": totals.get("opt_out", {}).get(Reason.OPTED_OUT.value, 0),
            "repositories": sorted(set(removed) | set(opt_out["carried"])),
        }
    return manifest


def _stage_entry(name: str, totals: Counters) -> dict[str, Any]:
    reasons = {k: v for k, v in totals.items() if k in _REASONS}
    extra = {k: v for k, v in totals.items() if k not in reasons and k not in ("in", "kept")}
    return {"name": name, "in": totals.get("in", 0), "kept": totals.get("kept", 0),
            "dropped": dict(sorted(reasons.items())), "counters": dict(sorted(extra.items()))}
