import json
import subprocess
from pathlib import Path

import jsonschema
import pytest

from manifests.manifest import read_manifest, validate, verify
from pipeline.cli import main
from tests.conftest import copy_version


def test_the_built_manifest_validates_and_verifies(built_sample: Path) -> None:
    version = built_sample / "v2.1"
    manifest = read_manifest(version)
    validate(manifest)
    assert verify(version) == []
    # sha256sum itself accepts SHA256SUMS
    done = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=version, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": OK") == len(manifest["shards"]) + len(manifest["files"])


def test_an_invalid_manifest_is_rejected(built_sample: Path) -> None:
    manifest = read_manifest(built_sample / "v2.1")
    manifest["shards"][0]["sha256"] = "not-a-digest"
    with pytest.raises(jsonschema.ValidationError):
        validate(manifest)


def test_verify_names_missing_extra_and_altered_shards(built_sample: Path, tmp_path: Path, capsys) -> None:
    output = copy_version(built_sample, tmp_path)
    version = output / "v2.1"
    manifest = read_manifest(version)
    data_shard = next(s["path"] for s in manifest["shards"] if s["kind"] == "data")
    ledger_shard = next(s["path"] for s in manifest["shards"] if s["kind"] == "dropped")
    raw = bytearray((version / data_shard).read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (version / data_shard).write_bytes(bytes(raw))
    (version / ledger_shard).unlink()
    (version / "data" / "python" / "part-99999.parquet").write_bytes(b"extra")
    problems = verify(version)
    assert f"{data_shard}: altered (checksum differs from the manifest)" in problems
    assert f"{ledger_shard}: missing" in problems
    assert "data/python/part-99999.parquet: extra (not in the manifest)" in problems
    assert main(["verify", "2.1", "--output", str(output)]) == 1
    err = capsys.readouterr().err
    assert data_shard in err and ledger_shard in err and "part-99999" in err


def test_verify_catches_an_edited_sums_file(built_sample: Path, tmp_path: Path) -> None:
    version = copy_version(built_sample, tmp_path) / "v2.1"
    sums = version / "SHA256SUMS"
    sums.write_text(sums.read_text().replace("README.md", "README.txt"))
    assert verify(version) == ["SHA256SUMS: does not match the manifest"]


def test_inspect_prints_summary_and_json(built_sample: Path, capsys) -> None:
    assert main(["inspect", "--output", str(built_sample)]) == 0
    text = capsys.readouterr().out
    assert "version 2.1" in text and "skipped_content: 1" in text and "data/python/part-00000.parquet" in text
    assert "| stage " in text and "MB / cpu s" in text and "phases (wall): walk" in text
    assert main(["inspect", "2.1", "--output", str(built_sample), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["version"] == "2.1"
    timings = manifest["timings"]
    # every stage of the flow timed, its input bytes what its in-rows hold, shares adding up to one
    assert list(timings["stages"]) == [s["name"] for s in manifest["stages"]]
    assert timings["stages"]["fetch"]["bytes"] > timings["stages"]["decode"]["bytes"] > 0
    assert timings["stages"]["near_dedup"]["bytes"] == timings["stages"]["exact_dedup"]["bytes"]
    assert abs(sum(t["cpu_share"] for t in timings["stages"].values()) - 1) < 0.01
    assert set(timings["phases_wall_s"]) >= {"walk", "license reduce", "row flow", "near_dedup reduce", "write"}


def test_inspect_without_versions(tmp_path: Path, capsys) -> None:
    assert main(["inspect", "--output", str(tmp_path)]) == 2
    assert "no finished version here" in capsys.readouterr().err
