"""Shared fixtures: the bundled exports, and helpers that build small exports and datasets."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
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


STDLIB_PACKAGES = ["email", "json", "asyncio", "unittest", "xml", "http", "concurrent", "importlib"]  # real code


def git_repo(source: Path, repo: Path, date: str = "2024-01-01T00:00:00Z") -> None:
    """A one-commit git repository of the tree at ``source`` (tests and caches left out)."""
    shutil.copytree(source, repo, ignore=shutil.ignore_patterns("__pycache__", "test*"))
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "c"], check=True, env=env)


def stdlib_origin(name: str) -> str:
    """The origin URL of standard-library package ``name`` in ``stdlib_export``."""
    return f"https://github.com/stdlib/{name}"


@pytest.fixture(scope="session")
def stdlib_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An export of 8 standard-library packages as repositories (2 MB), with ``config.toml`` next to
    it that cuts it into ~8 partitions."""
    from pipeline.cli import main

    root = tmp_path_factory.mktemp("stdlib")
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name in STDLIB_PACKAGES:
        git_repo(stdlib / name, root / "repos" / name)
    urls = [arg for n in STDLIB_PACKAGES for arg in ("--origin-url", stdlib_origin(n))]
    assert main(["export-git", *[str(root / "repos" / n) for n in STDLIB_PACKAGES], *urls,
                 "--out", str(root / "export")]) == 0
    (root / "config.toml").write_text("[output]\npartition_bytes = 262144\n")
    return root / "export"


def run_command(export: Path, output: Path, workers: int | None = 1, scheduler: str | None = None,
                version: str = "1") -> list[str]:
    """``python -m pipeline run`` of ``version`` of ``export`` with its config."""
    where = ["--scheduler", scheduler] if scheduler else ["--workers", str(workers)]
    return [sys.executable, "-m", "pipeline", "run", "--version", version, "--input", str(export), "--output",
            str(output), "--config", str(export.parent / "config.toml"), *where]


@pytest.fixture(scope="session")
def stdlib_reference(stdlib_export: Path) -> dict:
    """The manifest of an uninterrupted LocalCluster build of ``stdlib_export``."""
    from manifests.manifest import read_manifest

    output = stdlib_export.parent / "reference"
    subprocess.run(run_command(stdlib_export, output), check=True, capture_output=True)
    manifest = read_manifest(output / "v1")
    assert manifest["walk"]["partitions"] >= 6
    return manifest
