"""The command line: ``python -m pipeline {run, inspect, versions, diff, query, verify, export-git}``."""

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
        "every file, detect its language and licenses, apply the quality filters, redact secrets and "
        "personal data, remove exact and near duplicates across the corpus, and write versioned "
        "Parquet shards with a manifest, a ledger of every file left out, a changelog and a dataset "
        "card. A killed run resumes when the same command is run again."))
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
                       help="worker processes of the local Dask cluster (default: one per core; an export under "
                            "[execution] in_process_below_mb, or --workers 1, runs in this process, without Dask "
                            "below [execution] local_engine_below_mb)")
    where.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                       help="run on an existing Dask cluster")
    run.add_argument("--repo-metadata", type=Path, default=None, metavar="FILE",
                     help="repository metadata (Parquet, CSV or JSONL: origin_url or repo_name, stars, forks, "
                          "dates, license, language, github id) joined onto every file; default: "
                          "[repo_metadata] file (docs/formats.md)")
    run.add_argument("--storage-option", action="append", default=[], metavar="KEY=VALUE",
                     help="an fsspec option for s3:// (or other remote) export and content store, e.g. "
                          "endpoint_url=http://127.0.0.1:9000 or anon=false (repeatable; over [storage])")
    run.add_argument("--threads", type=int, default=1, metavar="N",
                     help="threads per worker of the local Dask cluster, or partitions at once in this process "
                          "(default: 1)")
    run.add_argument("--memory-limit", default="auto", metavar="BYTES",
                     help="memory limit of each local worker, e.g. 2GiB (default: the machine's memory / workers)")
    run.add_argument("--parent", default=None, metavar="VERSION",
                     help="version the changelog compares with (default: the latest finished one in OUTPUT)")
    run.add_argument("--opt-out", type=Path, default=None, metavar="FILE",
                     help="opt-out registry (docs/license.md; default: [opt_out] registry in the config). "
                          "Repositories opted out by an earlier version in OUTPUT stay out")
    run.add_argument("--license-cache", type=Path, default=None, metavar="DIR",
                     help="folder of license detection results, keyed by blob SHA-1 and ScanCode version "
                          "(default: OUTPUT/.cache/licenses); give several output folders the same one and "
                          "a license text scanned for one is never scanned again for another")
    run.add_argument("--as-of", type=_iso_date, default=None, metavar="DATE",
                     help="build from the archive as it stood at DATE (ISO 8601): per origin, the latest full "
                          "visit at or before it")

    inspect = sub.add_parser("inspect", help="summarise a version's manifest")
    inspect.add_argument("version", nargs="?", default=None, help="version (default: the latest in OUTPUT)")
    inspect.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, metavar="DIR")
    inspect.add_argument("--json", action="store_true", help="print the manifest itself")

    versions = sub.add_parser("versions", help="list the versions in an output folder, and whether each verifies")
    versions.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, metavar="DIR")
    versions.add_argument("--no-verify", action="store_true", help="skip re-hashing the shards (faster)")

    diff = sub.add_parser("diff", help="what changed between two versions (files, repositories, config)",
                          description="Files and repositories added and removed from version A to B, by reason, "
                                      "and the config and software changes; the same as B's CHANGELOG.md when A "
                                      "is its parent.")
    diff.add_argument("a", metavar="A")
    diff.add_argument("b", metavar="B")
    diff.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, metavar="DIR")
    diff.add_argument("--json", action="store_true", help="print changes.json's form instead of Markdown")

    query = sub.add_parser("query", help="filtered reads of a version (predicate pushdown)",
                           description="Rows of a version matching every condition given. Only the language "
                                       "folders and columns needed are read.")
    query.add_argument("version")
    query.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, metavar="DIR")
    query.add_argument("--language", action="append", default=[], metavar="L", help="Linguist name (repeatable)")
    query.add_argument("--license", action="append", default=[], metavar="SPDX",
                       help="an SPDX id among detected_licenses (repeatable: any of them)")
    query.add_argument("--license-type", default=None, choices=["permissive", "no_license", "non_permissive"])
    query.add_argument("--repo", default=None, metavar="GLOB", help="glob on repo_name or origin_url")
    query.add_argument("--path", default=None, metavar="GLOB", help="glob on the path (leading /)")
    query.add_argument("--contains", default=None, metavar="TEXT", help="content contains TEXT")
    query.add_argument("--columns", default=None, metavar="A,B,...",
                       help="columns to return (default: a summary for table, every column otherwise)")
    query.add_argument("--limit", type=int, default=None, metavar="N")
    query.add_argument("--format", default="table", choices=["table", "jsonl", "parquet"])
    query.add_argument("--out", type=Path, default=None, metavar="FILE", help="write here instead of stdout")

    lookup = sub.add_parser("lookup", help="is a repository or file in a version, and if not, why",
                            description="For each version (or the one named): the files of TARGET that are in, "
                                        "those that are out with the stage, reason and detail, and the opt-out "
                                        "entries that apply. TARGET: a repository URL, owner/name, owner/*, a blob "
                                        "sha1, or a path glob starting with /.")
    lookup.add_argument("target", metavar="TARGET")
    lookup.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, metavar="DIR")
    lookup.add_argument("--version", default=None, help="only this version (default: every finished one)")
    lookup.add_argument("--registry", type=Path, default=None, metavar="FILE",
                        help="also say whether an entry of this opt-out registry applies (the next version)")
    lookup.add_argument("--limit", type=int, default=20, metavar="N", help="files listed per version (default 20)")
    lookup.add_argument("--json", action="store_true", help="every file, as JSON")

    optout = sub.add_parser("opt-out", help="manage the opt-out registry")
    optout_sub = optout.add_subparsers(dest="optout_command", required=True, metavar="ACTION")
    add = optout_sub.add_parser("add", help="add a repository or owner to the registry",
                                description="Validate TARGET (a repository URL, owner/name, owner/* or a glob), say "
                                            "if the registry already covers it, else append one dated line, and "
                                            "print what the next version will remove (a lookup in the latest one).")
    add.add_argument("target", metavar="TARGET")
    add.add_argument("--registry", type=Path, required=True, metavar="FILE")
    add.add_argument("--reason", default="", help="free text, e.g. the request's reference")
    add.add_argument("--date", type=_iso_day, default=None, metavar="YYYY-MM-DD", help="default: today (UTC)")
    add.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, metavar="DIR",
                     help="the versions to preview the removal against (default: ./dataset)")

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


def _iso_day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from e


def _iso_date(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not an ISO date: {text!r}") from e
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _lookup(args: argparse.Namespace) -> int:
    from pipeline.lookup import lookup_version, parse_target, render
    from pipeline.optout import load_registry
    from pipeline.versions import finished_versions, version_dir
    from pipeline.walk import repo_name

    target = parse_target(args.target)
    names = [args.version] if args.version else [m["version"] for m in finished_versions(args.output)]
    for name in names:
        if not (version_dir(args.output, name) / "manifest.json").is_file():
            raise PipelineError(f"{args.output}: no finished version {name}")
    answers = [lookup_version(version_dir(args.output, name), name, target) for name in names]
    pending = None
    if args.registry is not None and target.kind in ("url", "repo"):
        url = target.text if target.kind == "url" else ""
        entry = load_registry(args.registry).match(url, repo_name(url) if url else target.value)
        pending = entry.text() if entry is not None else None
    if args.json:
        print(json.dumps({"target": args.target, "kind": target.kind, "registry_entry": pending,
                          "versions": [{**a.summary(), "in": a.kept, "out": a.dropped} for a in answers]},
                         indent=1, default=str))
        return 0
    print(render(answers, target, args.limit))
    if args.registry is not None:
        print(f"opt-out registry {args.registry}: " + (f"applies ({pending}); the next version leaves it out"
                                                      if pending else "no entry applies"))
    return 0


def _opt_out_add(args: argparse.Namespace) -> int:
    from pipeline.lookup import lookup_version, parse_target
    from pipeline.optout import GLOB, add_entry
    from pipeline.versions import finished_versions, version_dir

    entry, covered = add_entry(args.registry, args.target, args.reason, args.date)
    if covered is not None:
        print(f"already covered by {args.registry}:{covered.line}: {covered.text()}")
        return 0
    print(f"added to {args.registry}: {entry.text()}")
    versions = finished_versions(args.output) if args.output.is_dir() else []
    if entry.kind == GLOB or not versions:
        print("the next version built with this registry leaves it out"
              + ("" if versions else f" (no version in {args.output} to preview against)"))
        return 0
    latest = versions[-1]["version"]
    answer = lookup_version(version_dir(args.output, latest), latest, parse_target(entry.target)).summary()
    repos = len(answer["repositories"])
    print(f"the next version removes {answer['files_in']} file(s) of {repos} repository(ies) that v{latest} kept")
    return 0


def _storage_options(pairs: list[str]) -> dict[str, object]:
    """``KEY=VALUE`` pairs as fsspec options (``true`` / ``false`` and integers become values)."""
    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise PipelineError(f"--storage-option {pair!r}: expected KEY=VALUE")
        lowered = value.strip().lower()
        options[key.strip()] = (lowered == "true") if lowered in ("true", "false") else (
            int(value) if value.strip().isdigit() else value)
    return options


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
        if args.threads < 1:
            raise PipelineError(f"--threads {args.threads}: must be at least 1")
        run_version(
            args.version,
            args.input or str(BUNDLED_EXPORT),
            args.content_store,
            args.output,
            load_config(args.config),
            args.workers,
            args.scheduler,
            memory_limit=args.memory_limit,
            parent=args.parent,
            as_of=args.as_of,
            opt_out=args.opt_out,
            threads=args.threads,
            storage_options=_storage_options(args.storage_option),
            repo_metadata=args.repo_metadata,
            license_cache=args.license_cache,
        )
        return 0
    if args.command == "lookup":
        return _lookup(args)
    if args.command == "opt-out":
        return _opt_out_add(args)
    if args.command == "versions":
        from manifests.manifest import verify
        from manifests.summary import human_bytes, markdown_table
        from pipeline.versions import finished_versions, version_dir

        rows = []
        for m in finished_versions(args.output):
            t = m["totals"]
            state = "not checked" if args.no_verify else (
                "ok" if not (p := verify(version_dir(args.output, m["version"]))) else f"FAILED ({len(p)} problems)")
            rows.append([m["version"], m["created_at"], m.get("parent") or "-", m["input"].get("as_of") or "-",
                         t["files_kept"], t["files_dropped"], human_bytes(t["shard_bytes"]), state])
        if not rows:
            raise PipelineError(f"{args.output}: no finished version here")
        print(markdown_table(["version", "created", "parent", "as of", "files kept", "dropped", "shards",
                              "verifies"], rows))
        return 1 if any(r[-1].startswith("FAILED") for r in rows) else 0
    if args.command == "diff":
        from manifests.changes import changelog, compare
        from manifests.manifest import MANIFEST, read_manifest
        from pipeline.versions import version_dir

        folders = [version_dir(args.output, v) for v in (args.a, args.b)]
        for v, folder in zip((args.a, args.b), folders, strict=True):
            if not (folder / MANIFEST).is_file():
                raise PipelineError(f"{folder}: no finished version {v}")
        summary_, _ = compare(folders[0], read_manifest(folders[0]), folders[1], read_manifest(folders[1]))
        print(json.dumps(summary_, indent=2, sort_keys=True) if args.json else changelog(summary_), end="\n")
        return 0
    if args.command == "query":
        from pipeline.query import scan, write
        from pipeline.versions import version_dir

        folder = version_dir(args.output, args.version)
        if args.limit is not None and args.limit < 0:
            raise PipelineError(f"--limit {args.limit}: must be at least 0")
        # no --columns: a summary of each row for a table, every column otherwise
        columns = args.columns.split(",") if args.columns else None
        batches = scan(folder, args.language, args.license, args.license_type, args.repo, args.path, args.contains,
                       columns, args.limit, summary=args.format == "table")
        count = write(batches, args.format, args.out)
        if args.out:
            print(f"{count} rows written to {args.out}", file=sys.stderr)
        return 0
    if args.command == "inspect":
        from manifests.manifest import read_manifest
        from manifests.summary import summary
        from pipeline.versions import version_dir

        version = args.version or _latest_version(args.output)
        manifest = read_manifest(version_dir(args.output, version))
        print(json.dumps(manifest, indent=2) if args.json else summary(manifest), end="" if not args.json else "\n")
        return 0
    if args.command == "verify":
        from manifests.manifest import verify
        from pipeline.versions import version_dir

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
