"""The opt-out registry through whole builds: removed before fetch, counted, and sticky across versions."""

import hashlib
import json
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from manifests.manifest import read_manifest, verify
from pipeline.cli import main
from tests.conftest import STDLIB_PACKAGES, stdlib_origin


def origins(version: Path) -> set[str]:
    table = ds.dataset(version / "data", format="parquet").to_table(columns=["origin_url"])
    return set(table["origin_url"].to_pylist())


def ledger(version: Path) -> list[dict]:
    return ds.dataset(version / "dropped", format="parquet").to_table().to_pylist()


@pytest.fixture
def output(tmp_path: Path) -> Path:
    return tmp_path / "dataset"


def build(export: Path, output: Path, version: str, *extra: str) -> int:
    return main(["run", "--version", version, "--input", str(export), "--output", str(output), "--workers", "1",
                 "--config", str(export.parent / "config.toml"), *extra])


def test_opted_out_repositories_stay_out_of_every_later_version(stdlib_export: Path, output: Path,
                                                                  tmp_path: Path) -> None:
    repos = {name: stdlib_origin(name) for name in STDLIB_PACKAGES}
    registry = tmp_path / "opt-out.txt"
    registry.write_text(f"# requests\n{repos['json']} 2024-05-01 owner asked\n"
                        f"stdlib/x*  2024-05-02\n")
    assert build(stdlib_export, output, "1", "--opt-out", str(registry)) == 0
    v1 = output / "v1"
    kept = origins(v1)
    assert repos["json"] not in kept and repos["xml"] not in kept and repos["email"] in kept
    dropped = [r for r in ledger(v1) if r["reason"] == "opted_out"]
    assert {r["origin_url"] for r in dropped} == {repos["json"], repos["xml"]}
    assert all(r["stage"] == "opt_out" and r["detail"].endswith("(2024-05-01)") for r in dropped
               if r["origin_url"] == repos["json"])
    m = read_manifest(v1)
    assert m["opt_out"]["registry_sha256"] == hashlib.sha256(registry.read_bytes()).hexdigest()
    assert m["opt_out"]["repositories_removed"] == 2 and m["opt_out"]["files_removed"] == len(dropped)
    assert m["opt_out"]["repositories"] == sorted([repos["json"], repos["xml"]])
    fetch = next(s for s in m["stages"] if s["name"] == "fetch")
    assert fetch["in"] == m["totals"]["files_in"] - len(dropped)  # never fetched
    assert "2 repositories" in (v1 / "README.md").read_text()

    # the file loses its json line by mistake: json stays out, via the manifest chain
    registry.write_text("stdlib/x*  2024-05-02\n")
    assert build(stdlib_export, output, "2", "--opt-out", str(registry)) == 0
    assert repos["json"] not in origins(output / "v2")
    m2 = read_manifest(output / "v2")
    assert m2["opt_out"]["carried_repositories"] == 2 and repos["json"] in m2["opt_out"]["repositories"]
    # carried entries are dated by the version that first removed them
    carried = {r["detail"] for r in ledger(output / "v2") if r["origin_url"] == repos["json"]}
    assert carried == {f"{repos['json']} ({read_manifest(v1)['created_at'][:10]})"}
    # and without any registry at all
    assert build(stdlib_export, output, "3") == 0
    assert repos["json"] not in origins(output / "v3") and repos["xml"] not in origins(output / "v3")
    changes = json.loads((output / "v3" / "changes.json").read_text())
    assert changes["files"]["removed"] == 0 and changes["repositories"]["added"] == []
    assert verify(output / "v3") == []


def test_a_version_built_without_opt_out_then_with_it_reports_the_removal(stdlib_export: Path, output: Path,
                                                                          tmp_path: Path) -> None:
    repos = {name: stdlib_origin(name) for name in STDLIB_PACKAGES}
    assert build(stdlib_export, output, "1") == 0
    registry = tmp_path / "opt-out.txt"
    registry.write_text(f"{repos['http']} 2024-06-01\n")
    assert build(stdlib_export, output, "2", "--opt-out", str(registry)) == 0
    changes = json.loads((output / "v2" / "changes.json").read_text())
    assert changes["repositories"]["removed"] == [repos["http"]]
    assert set(changes["files"]["removed_by_reason"]) == {"opted_out"}
    # the same version again, same registry: up to date; another registry: refused
    assert build(stdlib_export, output, "2", "--opt-out", str(registry)) == 0
    registry.write_text(f"{repos['email']} 2024-06-01\n")
    assert build(stdlib_export, output, "2", "--opt-out", str(registry)) == 2


def test_a_malformed_registry_line_fails_fast_with_its_line_number(stdlib_export: Path, output: Path,
                                                                    tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    registry = tmp_path / "opt-out.txt"
    registry.write_text("# fine\nhttps://github.com/a/b 2024-01-01\nhttps://github.com/c/d yesterday\n")
    assert build(stdlib_export, output, "1", "--opt-out", str(registry)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {registry}:3: ") and "YYYY-MM-DD" in err[0]
    assert not output.exists() or not any(output.iterdir())
