"""``manifest.json``: the record of a version and its commit marker (written last).

Also ``SHA256SUMS`` (``sha256sum -c`` accepts it) and ``verify``, which recomputes every checksum.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema

from pipeline.errors import PipelineError
from pipeline.writer import sha256_file
from schemas import manifest_json_schema

MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
FORMAT = "pipeline-dataset/1"
#: Folders of a version that hold shards; any file in them not in the manifest is "extra".
SHARD_DIRS = ("data", "dropped")


def validate(manifest: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``manifest`` follows schemas/manifest.schema.json."""
    jsonschema.validate(manifest, manifest_json_schema())


def write_manifest(version_dir: Path, manifest: dict[str, Any]) -> None:
    """Validate and write ``manifest.json`` atomically."""
    validate(manifest)
    _write_atomic(version_dir / MANIFEST, json.dumps(manifest, indent=2, sort_keys=False) + "\n")


def read_manifest(version_dir: Path) -> dict[str, Any]:
    """The manifest of the version in ``version_dir``, or a clear error."""
    path = version_dir / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as e:
        raise PipelineError(f"{path}: no manifest (not a finished version)") from e
    except json.JSONDecodeError as e:
        raise PipelineError(f"{path}: not valid JSON ({e})") from e


def write_sums(version_dir: Path, files: list[dict[str, Any]]) -> None:
    """``SHA256SUMS`` for ``files`` (entries with ``path`` and ``sha256``), sorted by path."""
    lines = [f"{f['sha256']}  {f['path']}\n" for f in sorted(files, key=lambda f: f["path"])]
    _write_atomic(version_dir / SUMS, "".join(lines))


def verify(version_dir: Path) -> list[str]:
    """Every problem with the version's files: missing, extra or altered shards, a bad SHA256SUMS.

    An empty list means every checksum in the manifest and in SHA256SUMS holds.
    """
    manifest = read_manifest(version_dir)
    problems = []
    listed = {entry["path"]: entry for entry in manifest["shards"] + manifest.get("files", [])}
    for relpath, entry in sorted(listed.items()):
        path = version_dir / relpath
        if not path.is_file():
            problems.append(f"{relpath}: missing")
        elif path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
            problems.append(f"{relpath}: altered (checksum differs from the manifest)")
    for folder in SHARD_DIRS:
        for path in sorted((version_dir / folder).rglob("*")):
            rel = path.relative_to(version_dir).as_posix()
            if path.is_file() and rel not in listed:
                problems.append(f"{rel}: extra (not in the manifest)")
    sums = version_dir / SUMS
    if not sums.is_file():
        problems.append(f"{SUMS}: missing")
    else:
        expected = {e["path"]: e["sha256"] for e in listed.values()}
        found = {}
        for line in sums.read_text().splitlines():
            digest, _, rel = line.partition("  ")
            found[rel] = digest
        if found != expected:
            problems.append(f"{SUMS}: does not match the manifest")
    return problems


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
