"""Building a version: checks, the graph, then the manifest as the commit marker.

The version is assembled in a hidden staging folder next to it and renamed into place only when
the shards, the card, SHA256SUMS and the manifest are all written: a crash never leaves a folder
that looks like a finished version.
"""

from __future__ import annotations

import datetime as dt
import platform
import re
import shutil
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from manifests.card import CHART, dataset_card, language_chart
from manifests.changes import CHANGELOG, CHANGES_JSON, CHANGES_PARQUET, compare, write_changes
from manifests.manifest import FORMAT, MANIFEST, read_manifest, write_manifest, write_sums
from pipeline import __version__
from pipeline.checkpoint import open_staging, reusable
from pipeline.config import Config
from pipeline.content_store import ContentStore
from pipeline.errors import PipelineError
from pipeline.optout import Registry, load_registry
from pipeline.orc import Export
from pipeline.partition import WORK
from pipeline.writer import sha256_file
from stages.base import Reason, Stage
from stages.decode import Decode
from stages.fetch import Fetch
from stages.filters import Filters
from stages.language import Language
from stages.license import License, LicenseCache
from stages.optout import OptOut
from stages.redact import Redact

_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$")
_PACKAGES = (
    "pyarrow", "pandas", "dask", "distributed", "fsspec", "charset-normalizer", "xxhash", "swh.model", "detect-secrets",
    "datasketch", "enry-python", "guesslang", "tensorflow-cpu", "scancode-toolkit", "license-expression",
)
_REASONS = {r.value for r in Reason}
LICENSE_CACHE = Path(".cache") / "licenses"  # under the output folder, shared by its versions
BUNDLED_EXPORT = Path(__file__).resolve().parent.parent / "examples" / "sample-export"


def version_dir(output: Path, version: str) -> Path:
    """The folder of ``version`` under ``output`` (``dataset/v2.1``)."""
    if not _VERSION.match(version):
        raise PipelineError(f"--version {version!r}: use letters, digits, '.', '_' or '-' (e.g. 2.1)")
    return output / f"v{version}"


def software_versions() -> dict[str, str]:
    """The versions of everything that can change the output."""
    versions = {"pipeline": __version__, "python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # e.g. tensorflow instead of tensorflow-cpu
            versions[name] = "not installed"
    return versions


def build_stages(store_url: str, config: Config, registry: Registry | None = None,
                 license_cache: Path | None = None) -> list[Stage]:
    """The stages, in the order of the flow (``registry``: the effective opt-out registry;
    ``license_cache``: the folder of ScanCode results kept across versions)."""
    stages: list[Stage] = [OptOut(registry)] if registry is not None and len(registry) else []
    stages += [
        Fetch(store_url, max_bytes=config.fetch.max_file_bytes, threads=config.execution.fetch_threads),
        Decode(probe_bytes=config.decode.binary_probe_bytes),
        Language(config.language),
        License(config.license, str(license_cache) if license_cache else None),
        Filters(config.filters),
    ]
    if config.redact.enabled:
        stages.append(
            Redact(
                keep_author_emails=config.redact.keep_author_emails,
                time_budget_s=config.redact.time_budget_s,
                time_budget_s_per_mb=config.redact.time_budget_s_per_mb,
            )
        )
    return stages


def run_version(
    version: str,
    input_url: str,
    store_url: str | None,
    output: Path,
    config: Config,
    workers: int | None,
    scheduler: str | None,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
    memory_limit: str | int = "auto",
    parent: str | None = None,
    as_of: dt.datetime | None = None,
    opt_out: Path | None = None,
) -> Path:
    """Build ``version`` of the dataset from the export at ``input_url``; returns its folder.

    ``parent``: the version the changelog compares with (default: the latest finished version in
    ``output``). ``as_of``: build from the archive as it stood then (per origin, the latest full
    visit at or before that date). ``opt_out``: the opt-out registry file (else ``[opt_out]
    registry``); repositories opted out by any earlier version in ``output`` stay out.

    Raises PipelineError for bad input, an existing version with a different input, config or
    software, or an output folder that cannot be written.
    """
    target = version_dir(output, version)
    export = Export(input_url)
    export.check()
    store_url = store_url or f"{export.url}/content_store"
    ContentStore(store_url).check()
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=dt.UTC)
    registry, effective, carried = effective_registry(output, version, opt_out or (config.opt_out.registry or None))
    identity = {
        "input": {"export": input_url, "content_store": store_url, "fingerprint": export.fingerprint(),
                  "as_of": as_of.isoformat() if as_of else None},
        "config_sha256": config.digest(),
        "software": software_versions(),
        "opt_out": None if registry is None else {
            "registry_sha256": registry.sha256, "carried_repositories": len(carried),
            "effective_sha256": effective.sha256 if effective is not None else None,
        },
    }
    if _up_to_date(target, identity, log):
        return target
    parent_dir = choose_parent(output, version, parent)
    staging = output / f".v{version}.partial"
    try:
        open_staging(staging, identity, staging / WORK, log, resume=config.execution.checkpoint)
        reuse = reusable(staging / WORK, log) if config.execution.checkpoint else {}
    except OSError as e:
        raise PipelineError(f"{output}: cannot write the output folder ({e.strerror})") from e

    from pipeline.graph import build, dask_client  # dask is imported only when a build runs

    stages = build_stages(store_url, config, effective, output / LICENSE_CACHE)
    try:
        with dask_client(workers, scheduler, memory_limit) as client:
            walk_report, stage_reports, dedup_report, write_reports = build(
                export, stages, staging, config, client, log, reuse, as_of
            )
        shutil.rmtree(staging / WORK, ignore_errors=True)
        LicenseCache(output / LICENSE_CACHE).compact()  # one file of ScanCode results, for the next version
        manifest = assemble_manifest(
            version, identity, config, stages, walk_report, stage_reports, dedup_report, write_reports
        )
        if identity["opt_out"] is not None:
            new = sorted({u for r in write_reports for u in r["opted_out_origins"]})
            opt_stage = next((st for st in manifest["stages"] if st["name"] == "opt_out"), None)
            manifest["opt_out"] = {
                **identity["opt_out"],
                "entries": len(registry) if registry is not None else 0,
                "repositories_removed": len(new),
                "files_removed": opt_stage["dropped"].get("opted_out", 0) if opt_stage else 0,
                "repositories": sorted(set(new) | set(carried)),
            }
        summary = None
        if parent_dir is not None:
            parent_manifest = read_manifest(parent_dir)
            manifest["parent"] = parent_manifest["version"]
            summary, rows = compare(parent_dir, parent_manifest, staging, manifest)
            write_changes(staging, summary, rows)
        else:
            write_changes(staging, None, None)
        extra = [CHANGES_JSON, CHANGES_PARQUET, CHANGELOG]
        if language_chart(manifest, staging / CHART):
            extra.append(CHART)
        (staging / "README.md").write_text(dataset_card(manifest, summary))
        manifest["files"] = [{"path": name, "bytes": (staging / name).stat().st_size,
                              "sha256": sha256_file(staging / name)} for name in sorted(["README.md", *extra])]
        write_sums(staging, manifest["shards"] + manifest["files"])
        write_manifest(staging, manifest)
        staging.rename(target)
    except OSError as e:  # disk full, folder made read-only mid-run: no manifest, nothing renamed
        raise PipelineError(f"{e.filename or output}: write failed ({e.strerror or e}); version not written") from e
    log(f"wrote {target} ({manifest['totals']['files_kept']} files kept, "
        f"{manifest['totals']['files_dropped']} dropped)")
    return target


def finished_versions(output: Path) -> list[dict[str, Any]]:
    """The manifests of the finished versions in ``output``, oldest first."""
    found = [read_manifest(p) for p in output.glob("v*") if p.is_dir() and (p / MANIFEST).is_file()]
    return sorted(found, key=lambda m: (m["created_at"], m["version"]))


def effective_registry(output: Path, version: str, path: Path | str | None
                       ) -> tuple[Registry | None, Registry | None, list[str]]:
    """The opt-out registry at ``path`` (or an empty one), the same plus the repositories that
    earlier versions in ``output`` opted out (which stay out even if the file no longer names them;
    each dated and explained by the first version that removed it), and those repositories.
    (None, None, []) when there is neither."""
    versions = finished_versions(output)  # oldest first
    # rebuilding an existing version: only the versions built before it count
    built = next((m["created_at"] for m in versions if m["version"] == version), None)
    seen: set[str] = set()
    removed_by: list[tuple[dict[str, Any], list[str]]] = []  # each version, with the URLs it removed first
    for m in versions:
        if m["version"] != version and (built is None or m["created_at"] < built):
            urls = sorted(set((m.get("opt_out") or {}).get("repositories", [])) - seen)
            seen.update(urls)
            removed_by.append((m, urls))
    if path is None and not seen:
        return None, None, []
    registry = load_registry(path) if path is not None else Registry([])
    effective = registry
    for m, urls in removed_by:
        if urls:
            effective = effective.union(urls, dt.date.fromisoformat(m["created_at"][:10]),
                                        f"opted out in version {m['version']}")
    return registry, effective, sorted(seen)


def choose_parent(output: Path, version: str, parent: str | None) -> Path | None:
    """The folder of the version the changelog compares with: ``parent`` if given (it must be a
    finished version), else the most recently built finished version in ``output``, else None."""
    if parent is not None:
        folder = version_dir(output, parent)
        if parent == version or not (folder / MANIFEST).is_file():
            raise PipelineError(f"--parent {parent}: no finished version {parent} in {output}")
        return folder
    earlier = [m for m in finished_versions(output) if m["version"] != version]
    return version_dir(output, earlier[-1]["version"]) if earlier else None


def _up_to_date(target: Path, identity: dict[str, Any], log: Callable[[str], None]) -> bool:
    """True if ``target`` already holds this exact build; an error if it holds a different one."""
    if not target.exists():
        return False
    if not (target / MANIFEST).exists():
        raise PipelineError(f"{target}: exists but has no manifest (not built by this tool); remove it first")
    existing = read_manifest(target)
    # the input is identified by its fingerprint, not by where it lies: a moved export is the same input
    differences = [
        what
        for what, old, new in (
            ("input", existing["input"]["fingerprint"], identity["input"]["fingerprint"]),
            ("as-of date", existing["input"].get("as_of"), identity["input"]["as_of"]),
            ("opt-out registry", (existing.get("opt_out") or {}).get("effective_sha256"),
             (identity["opt_out"] or {}).get("effective_sha256")),
            ("config", existing["config_sha256"], identity["config_sha256"]),
            ("software", existing["software"], identity["software"]),
        )
        if old != new
    ]
    if differences:
        raise PipelineError(
            f"{target}: version {existing['version']} already exists with a different "
            f"{' and '.join(differences)}; build a new --version"
        )
    log(f"{target}: up to date (same input, config and software)")
    return True


def assemble_manifest(
    version: str,
    identity: dict[str, Any],
    config: Config,
    stages: list[Stage],
    walk_report: dict[str, Any],
    stage_reports: list[dict[str, Any]],
    dedup_report: dict[str, Any],
    write_reports: list[dict[str, Any]],
) -> dict[str, Any]:
    """The manifest from the reports of every partition; checks files in = kept + dropped."""
    stage_entries = []
    for stage in stages:
        totals: dict[str, int] = {}
        for report in stage_reports:
            for key, value in report["stages"].get(stage.name, {}).items():
                totals[key] = totals.get(key, 0) + value
        if stage.name == "license":  # ScanCode ran in a pre-pass over the distinct license blobs
            for key, value in walk_report.get("license_scan", {}).items():
                totals[key] = totals.get(key, 0) + value
            totals.setdefault("scancode_runs", 0)
        stage_entries.append(_stage_entry(stage.name, totals))
    if dedup_report:
        dropped: dict[str, dict[str, int]] = {}
        for report in write_reports:
            for stage_name, reasons in report["dedup_dropped"].items():
                for reason, n in reasons.items():
                    dropped.setdefault(stage_name, {})[reason] = dropped.get(stage_name, {}).get(reason, 0) + n
        exact_in = dedup_report["rows_in"]
        exact_out = sum(dropped.get("exact_dedup", {}).values())
        near_out = sum(dropped.get("near_dedup", {}).values())
        stage_entries.append(_stage_entry("exact_dedup", {"in": exact_in, "kept": exact_in - exact_out,
                                                          **dropped.get("exact_dedup", {})}))
        near_counters = {k: v for k, v in dedup_report.items()
                         if k in ("candidate_pairs", "verified_pairs", "clusters", "label_iterations")}
        stage_entries.append(_stage_entry("near_dedup", {"in": exact_in - exact_out,
                                                         "kept": exact_in - exact_out - near_out,
                                                         **dropped.get("near_dedup", {}), **near_counters}))
    languages: dict[str, dict[str, int]] = {}
    for report in write_reports:
        for language, stats in report["languages"].items():
            entry = languages.setdefault(language, {"files": 0, "bytes": 0})
            entry["files"] += stats["files"]
            entry["bytes"] += stats["bytes"]
    license_totals: dict[str, dict[str, dict[str, int]]] = {"licenses": {}, "license_types": {}}
    for report in write_reports:
        for key, totals in license_totals.items():
            for name, stats in report.get(key, {}).items():
                entry = totals.setdefault(name, {"files": 0, "bytes": 0})
                entry["files"] += stats["files"]
                entry["bytes"] += stats["bytes"]
    shards = sorted((s for r in write_reports for s in r["shards"]), key=lambda s: s["path"])
    files_in = walk_report["files"]
    kept = sum(r["rows_kept"] for r in write_reports)
    dropped_total = sum(r["rows_dropped"] for r in write_reports)
    if files_in != kept + dropped_total or files_in != sum(r["rows_in"] for r in stage_reports):
        raise RuntimeError(f"bug: {files_in} files walked but {kept} kept + {dropped_total} dropped")
    return {
        "format": FORMAT,
        "version": version,
        "parent": None,
        "created_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        **identity,
        "config": config.to_dict(),
        "walk": {k: v for k, v in walk_report.items() if k != "license_scan"},
        "stages": stage_entries,
        "languages": dict(sorted(languages.items())),
        **({k: dict(sorted(v.items())) for k, v in license_totals.items()}
           if any(s.name == "license" for s in stages) else {}),
        "shards": shards,
        "totals": {
            "files_in": files_in,
            "files_kept": kept,
            "files_dropped": dropped_total,
            "content_bytes": sum(v["bytes"] for v in languages.values()),
            "shard_bytes": sum(s["bytes"] for s in shards),
        },
    }


def _stage_entry(name: str, totals: dict[str, int]) -> dict[str, Any]:
    reasons = {k: v for k, v in totals.items() if k in _REASONS}
    extra = {k: v for k, v in totals.items() if k not in reasons and k not in ("in", "kept")}
    return {"name": name, "in": totals.get("in", 0), "kept": totals.get("kept", 0),
            "dropped": dict(sorted(reasons.items())), "counters": dict(sorted(extra.items()))}
