"""The whole pipeline, start-up included, on exports of real code of growing size (issue 13).

    python -m benchmarks.endtoend --mb 36 100 300 1000 [--work /tmp/bench-e2e]

Repositories: one per Python distribution installed here (its files as installed, its
``*.dist-info`` folder with METADATA and license files included), then the project-sized folders
of the other source trees on the machine (``benchmarks/foundation.py``: the standard library,
/usr/include, Perl, npm modules, the JDK), in a fixed seeded order; an export of N MB takes
repositories in that order until N MB of source. Real code nobody here wrote; exported with
``export-git``. Past what the machine holds, repositories are taken again under other origin URLs
(said in the table: those copies are exact duplicates, which the dedup stage removes).

Each export is built by ``python -m pipeline run --workers 1`` pinned to one core (``taskset``), in
a fresh output folder, default config: CPU seconds of the whole process tree, wall seconds, and the
peak memory summed over all its processes (PSS, ``benchmarks/proctree.py``). MB/s per core = MB of
file content found by the walk / CPU seconds. Also the bundled sample, as the README runs it (not
pinned: pinned to one core, the same run takes ~0.8 CPU s more, its threads taking turns on it).

Such runs take the engine without Dask (``pipeline.local_build``); ``--dask-mb`` (default: the sample
and 36 MB) builds the same exports again on one Dask worker in the process
(``[execution] local_engine_below_mb = 0``, the engine these runs took before), to show what the
engine saves; the shards of both are compared (sha256 of every data and ledger file).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from benchmarks.foundation import SOURCE_SUFFIXES, project_trees, source_roots
from benchmarks.proctree import measure

_GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.org", "GIT_COMMITTER_NAME": "bench",
            "GIT_COMMITTER_EMAIL": "bench@example.org", "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
            "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z"}


def distributions() -> list[tuple[str, list[tuple[str, Path]]]]:
    """(name, [(path in repository, file)]) of each installed distribution with source files."""
    out, seen = [], set()
    for dist in sorted(metadata.distributions(), key=lambda d: (d.metadata["Name"] or "").lower()):
        name = (dist.metadata["Name"] or "").lower()
        if not name or name in seen or not dist.files:
            continue
        seen.add(name)
        files = []
        for f in dist.files:
            parts = f.parts
            if not parts or ".." in parts or "__pycache__" in parts:
                continue
            in_info = parts[0].endswith(".dist-info")
            if in_info and (parts[-1] == "METADATA" or "licenses" in parts or parts[-1].upper().startswith(
                    ("LICEN", "COPYING", "NOTICE"))) or not in_info and f.suffix in SOURCE_SUFFIXES:
                path = Path(dist.locate_file(f))
                if path.is_file() and not path.is_symlink():
                    files.append(("/".join(parts), path))
        if files:
            out.append((name, files))
    return out


def candidates(work: Path) -> list[tuple[str, list[tuple[str, Path]]]]:
    """Every repository the machine can give, in a fixed seeded order."""
    repos = distributions()
    for root in source_roots(work):
        for top, files in project_trees(root):
            repos.append((str(top).strip("/").replace("/", "_"), [(str(f.relative_to(top)), f) for f in files]))
    random.Random(13).shuffle(repos)
    return repos


def make_repo(target: Path, files: list[tuple[str, Path]]) -> None:
    if (target / ".git").is_dir():
        return
    shutil.rmtree(target, ignore_errors=True)
    for relative, source in files:
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
    env = {**os.environ, **_GIT_ENV}
    subprocess.run(["git", "init", "-q", "-b", "main", str(target)], check=True)
    subprocess.run(["git", "-C", str(target), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(target), "commit", "-q", "--no-verify", "-m", "import"], check=True, env=env)


def make_export(work: Path, mb: float) -> tuple[Path, int, int]:
    """The export of ``mb`` MB of repositories; (folder, repositories, copies of earlier ones)."""
    from pipeline.export_git import export_repositories

    export = work / f"export-{mb:g}"
    chosen, urls, total, copies = [], [], 0, 0
    pool = candidates(work)
    round_ = 0
    while total < mb * 1e6:
        for name, files in pool:
            repo = work / "repos" / name
            make_repo(repo, files)
            chosen.append(repo)
            urls.append(f"https://example.org/{name}" + (f"-copy{round_}" if round_ else ""))
            copies += bool(round_)
            total += sum(p.stat().st_size for _, p in files)
            if total >= mb * 1e6:
                break
        round_ += 1
    if not (export / "orc").is_dir():
        export_repositories(chosen, export, origin_urls=urls, visit_date=dt.datetime(2024, 1, 2, tzinfo=dt.UTC))
    return export, len(chosen), copies


def run(export: Path | None, output: Path, dask: bool = False) -> dict:
    """One build of ``export`` (None: the bundled sample, as the README runs it: not pinned, as a user's
    run is not; the exports: pinned to one core, so that the rate is a per-core rate); ``dask``: on one
    Dask worker in the process instead of the engine without Dask."""
    shutil.rmtree(output, ignore_errors=True)
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") and export is not None else []
    config = []
    if dask:
        output.mkdir(parents=True)
        (output / "dask.toml").write_text("[execution]\nlocal_engine_below_mb = 0\n")
        config = ["--config", str(output / "dask.toml")]
    command = [*pin, sys.executable, "-m", "pipeline", "run", "--version", "bench", "--output", str(output),
               *(["--workers", "1"] if export else []), *(["--input", str(export)] if export else []), *config]
    result = measure(command, marks=("license:",))  # the License reduce logs its counters when done
    if result.rc:
        raise SystemExit(f"{' '.join(command)}: exit {result.rc}")
    manifest = json.loads((output / "vbench" / "manifest.json").read_text())
    return {"run": result, "manifest": manifest}


def digests(output: Path) -> dict[str, str]:
    """sha256 of every data and ledger file of the build under ``output``."""
    version = output / "vbench"
    return {str(p.relative_to(version)): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in ("data", "dropped") for p in sorted((version / folder).rglob("*.parquet"))}


_WALK = """
import json, resource, sys, time
from pipeline.config import Config
from pipeline.local_build import LocalWalk
from pipeline.orc import Export
export = Export(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.process_time()
rows = LocalWalk(export, Config(), lambda m: None).files()
print(json.dumps({"orc_mb": export.total_bytes() / 1e6, "rows": rows.num_rows, "rows_mb": rows.nbytes / 1e6,
                  "cpu_s": time.process_time() - started,
                  "peak_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024}))
"""


def walk_memory(export: Path) -> dict:
    """The walk without Dask alone, in a fresh process: the export's ORC MB, the rows, and the growth of the
    process's peak RSS over the walk (its imports done first)."""
    done = subprocess.run([sys.executable, "-c", _WALK, str(export)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def row(name: str, repos: str, r: dict) -> str:
    m, t = r["manifest"], r["run"]
    mb = m["walk"]["content_bytes"] / 1e6
    return (f"| {name} | {repos} | {m['walk']['files']:,} | {mb:.1f} | {t.cpu_s:.1f} | {t.wall_s:.1f} "
            f"| **{mb / t.cpu_s:.1f}** | {t.peak_pss_mb:.0f} | {m['totals']['files_kept']:,} |")


def phases(r: dict) -> str:
    """Each phase's wall seconds (one core: about its CPU seconds) and the memory peaks before and after
    the License reduce ends (ScanCode's index leaves the workers then)."""
    walls = r["manifest"]["timings"]["phases_wall_s"]
    peaks = r["run"].phase_peaks_mb
    parts = ", ".join(f"{name} {s:.1f} s" for name, s in walls.items())
    return (f"{parts}; peak PSS up to the end of the license reduce {peaks.get('start', 0):.0f} MB, "
            f"after it {peaks.get('license:', 0):.0f} MB")


def shares(r: dict) -> str:
    stages = r["manifest"]["timings"]["stages"]
    total = r["run"].cpu_s
    parts = [f"{name} {s['cpu_s'] / total:.0%}" for name, s in sorted(stages.items(), key=lambda x: -x[1]["cpu_s"])]
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, nargs="*", default=[36, 100, 300, 1000])
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-e2e"))
    parser.add_argument("--no-sample", action="store_true", help="skip the bundled sample's runs")
    parser.add_argument("--dask-mb", type=float, nargs="*", default=[36],
                        help="exports (of --mb) also built on Dask, as are the sample's unless --no-sample")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    results, same = [], []
    if not args.no_sample:
        results.append(("bundled sample (the README's run)", "2", run(None, args.work / "out-sample")))
        results.append(("bundled sample, on Dask", "2", run(None, args.work / "out-sample-dask", dask=True)))
        same.append(("bundled sample", digests(args.work / "out-sample") == digests(args.work / "out-sample-dask")))
    walks = []
    for mb in args.mb:
        export, n, copies = make_export(args.work, mb)
        repos = f"{n}" + (f" ({copies} copies)" if copies else "")
        results.append((f"{mb:g} MB", repos, run(export, args.work / f"out-{mb:g}")))
        walks.append((f"{mb:g} MB", walk_memory(export)))
        if mb in args.dask_mb:
            results.append((f"{mb:g} MB, on Dask", repos, run(export, args.work / f"out-{mb:g}-dask", dask=True)))
            same.append((f"{mb:g} MB", digests(args.work / f"out-{mb:g}") == digests(args.work / f"out-{mb:g}-dask")))
        print(f"done: {mb:g} MB", file=sys.stderr)
    print("| export | repositories | files | content MB | CPU s (all processes) | wall s | MB/s per core "
          "| peak memory, all processes (PSS MB) | files kept |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, repos, r in results:
        print(row(name, repos, r))
    print("\nShare of the CPU time per stage (the rest: start-up, walk, reduces, writing):")
    for name, _, r in results:
        print(f"- {name}: {shares(r)}")
    print("\nPhases (wall seconds) and memory before and after the License reduce ends:")
    for name, _, r in results:
        print(f"- {name}: {phases(r)}")
    print("\nThe walk without Dask alone, in a fresh process (it holds the export's tables and the walk's rows):")
    for name, w in walks:
        print(f"- {name}: {w['orc_mb']:.1f} MB of ORC, {w['rows']:,} rows ({w['rows_mb']:.0f} MB), "
              f"{w['cpu_s']:.1f} CPU s, peak RSS {w['peak_mb']:.0f} MB over the process's before the walk")
    if same:
        print("\nShards and ledger byte-identical without and on Dask: "
              + ", ".join(f"{name} {'yes' if ok else 'NO'}" for name, ok in same))


if __name__ == "__main__":
    main()
