"""Dataset versions in an output folder: their folders, the finished ones, the parent of a new one.

Light on purpose: ``inspect``, ``versions``, ``diff`` and ``verify`` import this, never the stages.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from manifests.manifest import MANIFEST, read_manifest
from pipeline.errors import PipelineError

_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$")


def version_dir(output: Path, version: str) -> Path:
    """The folder of ``version`` under ``output`` (``dataset/v2.1``)."""
    if not _VERSION.match(version):
        raise PipelineError(f"--version {version!r}: use letters, digits, '.', '_' or '-' (e.g. 2.1)")
    return output / f"v{version}"


def finished_versions(output: Path) -> list[dict[str, Any]]:
    """The manifests of the finished versions in ``output``, oldest first."""
    found = [read_manifest(p) for p in output.glob("v*") if p.is_dir() and (p / MANIFEST).is_file()]
    return sorted(found, key=lambda m: (m["created_at"], m["version"]))


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
