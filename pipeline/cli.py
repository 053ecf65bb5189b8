"""The command line: ``python -m pipeline {run, inspect, verify, export-git}``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from pipeline.errors import PipelineError

DEFAULT_OUTPUT = Path("dataset")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Build versioned, checksummed source-code datasets from Software Heritage exports.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="build a dataset version", description=(
        "Walk a Software Heritage graph export (ORC tables in the public layout), fetch and decode "
        "every file, and write versioned Parquet shards with a manifest, a ledger and a dataset card."))
    run.add_argument("--version", required=True, help="version to build, e.g. 2.1 (written to OUTPUT/v2.1)")
    run.add_argument("--input", default=None, metavar="PATH_OR_URL",
                     help="export root holding orc/<table>/*.orc (default: the bundled sample export)")
    run.add_argument("--content-store", default=None, metavar="URL",
                     help="root holding content/<sha1> gzip blobs: a folder or s3://softwareheritage "
                          "(default: INPUT/content_store)")
    run.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, metavar="DIR",
                     help="folder of versions (default: ./dataset)")
    run.add_argument("--config", type=Path, default=None, metavar="FILE", help="TOML config (docs/config.md)")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="worker processes of the local Dask cluster (default: one per core)")
    where.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                       help="run on an existing Dask cluster")
    run.add_argument("--memory-limit", default="auto", metavar="BYTES",
                     help="memory limit of each local worker, e.g. 2GiB (default: the machine's memory / workers)")

    inspect = sub.add_parser("inspect", help="summarise a version's manifest")
    inspect.add_argument("version", nargs="?", default=None, help="version (default: the latest in OUTPUT)")
    inspect.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, metavar="DIR")
    inspect.add_argument("--json", action="store_true", help="print the manifest itself")

    verify = sub.add_parser("verify", help="recompute every checksum of a version")
    verify.add_argument("version")
    verify.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, metavar="DIR")

    export = sub.add_parser("export-git", help="export local git repositories as a Software Heritage export",
                            description="Write ORC tables in the public schema and a gzip content store "
                                        "for local git repositories, one origin per repository.")
    export.add_argument("repos", nargs="+", type=Path, metavar="REPO_DIR")
    export.add_argument("--out", type=Path, required=True, metavar="DIR")
    export.add_argument("--origin-url", action="append", default=None, metavar="URL",
                        help="origin URL, once per repository in order (default: file://<absolute path>)")
    export.add_argument("--visit-date", type=_iso_date, default=None, metavar="ISO",
                        help="visit date (default: the latest committer date in the repository)")
    export.add_argument("--status-date", type=_iso_date, default=None, metavar="ISO",
                        help="date of the visit's 'full' status (default: the visit date)")
    return parser


def _iso_date(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not an ISO date: {text!r}") from e
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _latest_version(output: Path) -> str:
    """The most recently built finished version in ``output``."""
    from manifests.manifest import MANIFEST, read_manifest

    built = [read_manifest(p) for p in output.glob("v*") if (p / MANIFEST).is_file()]
    if not built:
        raise PipelineError(f"{output}: no finished version here")
    return max(built, key=lambda m: (m["created_at"], m["version"]))["version"]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        from pipeline.config import load_config
        from pipeline.run import BUNDLED_EXPORT, run_version

        if args.workers is not None and args.workers < 1:
            raise PipelineError(f"--workers {args.workers}: must be at least 1")
        run_version(
            args.version,
            args.input or str(BUNDLED_EXPORT),
            args.content_store,
            args.output,
            load_config(args.config),
            args.workers,
            args.scheduler,
            memory_limit=args.memory_limit,
        )
        return 0
    if args.command == "inspect":
        from manifests.manifest import read_manifest
        from manifests.summary import summary
        from pipeline.run import version_dir

        version = args.version or _latest_version(args.output)
        manifest = read_manifest(version_dir(args.output, version))
        print(json.dumps(manifest, indent=2) if args.json else summary(manifest), end="" if not args.json else "\n")
        return 0
    if args.command == "verify":
        from manifests.manifest import verify
        from pipeline.run import version_dir

        folder = version_dir(args.output, args.version)
        problems = verify(folder)
        for problem in problems:
            print(f"{folder}/{problem}", file=sys.stderr)
        if problems:
            return 1
        print(f"{folder}: every checksum verifies")
        return 0
    if args.command == "export-git":
        from pipeline.export_git import export_repositories

        if args.origin_url and len(args.origin_url) != len(args.repos):
            raise PipelineError(f"--origin-url given {len(args.origin_url)} time(s) for {len(args.repos)} repositories")
        try:
            summary_ = export_repositories(
                args.repos, args.out, args.origin_url, visit_date=args.visit_date, status_date=args.status_date
            )
        except ValueError as e:
            raise PipelineError(str(e)) from e
        print(json.dumps(summary_, indent=2, default=str))
        return 0
    raise AssertionError(args.command)  # pragma: no cover
