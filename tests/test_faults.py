"""A disk that fills up, an output folder that cannot be written: a clear error, nothing damaged."""

import resource
import signal
import subprocess
import sys
from pathlib import Path

from manifests.manifest import read_manifest, verify
from tests.conftest import run_command


def _small_disk() -> None:
    """In the child: files may not grow past 100 kB (writes fail with EFBIG, as on a full disk)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))


def test_a_write_that_fails_mid_run_leaves_no_version_and_earlier_ones_intact(
        stdlib_export: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    subprocess.run(run_command(stdlib_export, output, version="0"), check=True, capture_output=True)
    sums = (output / "v0" / "SHA256SUMS").read_bytes()
    done = subprocess.run(run_command(stdlib_export, output), preexec_fn=_small_disk, capture_output=True, text=True)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "write failed" in last and "File too large" in last
    assert "version not written" in last
    assert not (output / "v1").exists()
    assert list(output.rglob("manifest.json")) == [output / "v0" / "manifest.json"]
    assert verify(output / "v0") == [] and (output / "v0" / "SHA256SUMS").read_bytes() == sums
    assert read_manifest(output / "v0")["version"] == "0"


def test_an_output_folder_that_cannot_be_created_is_a_one_line_error(stdlib_export: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = subprocess.run(run_command(stdlib_export, blocker / "out"), capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {blocker / 'out'}: cannot write the output folder (Not a directory)"]


def test_workers_that_die_of_memory_are_a_one_line_error(tmp_path: Path) -> None:
    """A license text only ScanCode can read, on workers capped under what its index needs: Dask's nanny
    kills each worker that loads it, the task fails on every worker, and the user reads one line."""
    from licensedcode.models import load_licenses

    from pipeline.cli import main
    from tests.test_dedup_graph import commit

    text = load_licenses()["mit"].text + "\nThis file is part of the project's distribution.\n"
    commit(tmp_path / "repo", {"LICENSE": text, "a.py": "print('hello')\n"}, "2024-01-01T00:00:00Z")
    assert main(["export-git", str(tmp_path / "repo"), "--out", str(tmp_path / "export")]) == 0
    command = [sys.executable, "-m", "pipeline", "run", "--version", "1", "--input", str(tmp_path / "export"),
               "--output", str(tmp_path / "out"), "--workers", "2", "--memory-limit", "700MiB"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2
    assert "Dask workers died running the same task several times, most likely out of memory" in done.stderr
    assert "Traceback" not in done.stderr and "--memory-limit 700MiB" in done.stderr
    assert not (tmp_path / "out" / "v1").exists()
