"""Shared fixtures: the bundled exports, and helpers that build small exports and datasets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_EXPORT = ROOT / "examples" / "sample-export"
GRAPH_EXAMPLE = ROOT / "tests" / "data" / "swh-graph-example"
SAMPLE_REPO_TGZ = ROOT / "tests" / "data" / "sample-repo.tgz"


@pytest.fixture
def sample_export(tmp_path: Path) -> Path:
    """A writable copy of the bundled sample export (tests may damage it)."""
    target = tmp_path / "export"
    shutil.copytree(SAMPLE_EXPORT, target)
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


@pytest.fixture(scope="session")
def built_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample export built once as version 2.1 (one worker); returns the output folder."""
    from pipeline.cli import main

    output = tmp_path_factory.mktemp("built") / "dataset"
    assert main(["run", "--version", "2.1", "--output", str(output), "--workers", "1"]) == 0
    return output


def copy_version(built: Path, tmp_path: Path) -> Path:
    """A writable copy of a built output folder."""
    target = tmp_path / "dataset"
    shutil.copytree(built, target)
    return target
