"""Checkpoints: what a killed run left behind, and which of it a rerun may reuse.

A build works in ``<output>/.v<version>.partial/``. Its ``.work/identity.json`` records what the
build is of (input fingerprint, config hash, software); each input partition that finished its
per-file stages leaves ``.work/done/part-NNNNN.json``: its stage report and the size and SHA-256 of
every file it wrote (rows, keys, ledger), written last and atomically. A rerun of the same command
finds the staging folder, checks the identity, re-hashes every file a marker names, and reuses the
partitions whose files are all intact; a truncated file or a wrong checksum makes that partition be
redone, never trusted. The global steps (dedup, final shards) are cheap next to the stages and are
always redone, from a clean state.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.writer import sha256_file

IDENTITY = "identity.json"
DONE = "done"


def _atomic_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, sort_keys=True, indent=1))
    os.replace(tmp, path)


def done_marker(work: Path, bucket: int) -> Path:
    return work / DONE / f"part-{bucket:05d}.json"


def mark_done(work: Path, bucket: int, report: dict[str, Any], files: list[dict[str, Any]]) -> None:
    """Record that partition ``bucket`` finished, with the checksums of the ``files`` it wrote."""
    entries = [{"path": f["path"], "bytes": f["bytes"], "sha256": f["sha256"]} for f in files]
    _atomic_json(done_marker(work, bucket), {"report": report, "files": entries})


def open_staging(staging: Path, identity: dict[str, Any], work: Path, log: Callable[[str], None],
                 resume: bool = True) -> None:
    """Make ``staging`` ready for a build of ``identity``: keep it if a killed build of the same
    identity left it and ``resume`` (its checkpoints are checked later), otherwise start it afresh."""
    recorded = work / IDENTITY
    if staging.exists() and not resume:
        shutil.rmtree(staging)
    if staging.exists():
        try:
            same = json.loads(recorded.read_text()) == json.loads(json.dumps(identity))
        except (OSError, ValueError):
            same = False
        if same:
            log(f"{staging}: resuming an interrupted build of this version")
            for stale in (staging / "data", staging / "dropped", work / "reduced"):
                shutil.rmtree(stale, ignore_errors=True)
            return
        log(f"{staging}: left by an interrupted build of a different input, config or software; starting afresh")
        shutil.rmtree(staging)
    work.mkdir(parents=True)
    _atomic_json(recorded, identity)


def reusable(work: Path, log: Callable[[str], None]) -> dict[int, dict[str, Any]]:
    """The stage reports of the partitions whose checkpoints are intact, by bucket. A marker that
    cannot be read, or names a file that is missing, truncated or different, is removed (its
    partition is redone)."""
    found: dict[int, dict[str, Any]] = {}
    folder = work / DONE
    if not folder.is_dir():
        return found
    for marker in sorted(folder.glob("part-*.json")):
        problem = None
        try:
            data = json.loads(marker.read_text())
            bucket = int(data["report"]["bucket"])
            for entry in data["files"]:
                path = work / entry["path"]
                if not path.is_file() or path.stat().st_size != entry["bytes"]:
                    problem = f"{entry['path']} is missing or truncated"
                    break
                if sha256_file(path) != entry["sha256"]:
                    problem = f"{entry['path']} does not match its checksum"
                    break
        except (OSError, ValueError, KeyError, TypeError) as e:
            problem = f"unreadable checkpoint ({e.__class__.__name__})"
        if problem is None and marker.name == done_marker(work, bucket).name:
            found[bucket] = data["report"]
        else:
            log(f"checkpoint {marker.name}: {problem or 'misnamed'}; that partition is redone")
            marker.unlink(missing_ok=True)
    return found
