import re
import sysconfig
import time
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import LANGUAGE_SCHEMA
from stages.filters import ENCODED, Filters, FiltersConfig, TextStats, encoded_runs, has_encoded
from stages.language import Language, LanguageConfig, first_lines
from tests.stages.test_language import decoded

STDLIB = Path(sysconfig.get_paths()["stdlib"])
# the reference: Python's engine on the same alternation (same leftmost-first semantics as RE2)
_REFERENCE = re.compile(ENCODED.encode())
FILLER = "the quick brown fox jumps over the lazy dog; "  # prose-like: no encoded run, 80% letters


def labelled(rows: list[tuple[str, str, str]], vendor: bool = False, generated: bool = False) -> pa.Table:
    """LANGUAGE_SCHEMA rows for ``(path, text, language)``, with the same enry flags on all."""
    table = decoded([(p, t.encode()) for p, t, _ in rows])
    added = {
        "language": pa.array([lang for _, _, lang in rows], pa.string()),
        "language_source": pa.array(["extension"] * len(rows), pa.string()),
        "is_vendor": pa.array([vendor] * len(rows), pa.bool_()),
        "is_generated": pa.array([generated] * len(rows), pa.bool_()),
    }
    columns = [added[f.name] if f.name in added else table[f.name] for f in LANGUAGE_SCHEMA]
    return pa.Table.from_arrays(columns, schema=LANGUAGE_SCHEMA)


def outcome(texts: list[str], language: str = "Python", config: FiltersConfig | None = None) -> list[str | None]:
    """The detail of each text's ledger row, or None when it is kept."""
    table = labelled([(f"/f{i}.py", t, language) for i, t in enumerate(texts)])
    result = Filters(config or FiltersConfig()).process(table, None)
    assert result.kept.schema == LANGUAGE_SCHEMA
    assert result.counters["in"] == result.counters["kept"] + result.dropped.num_rows == len(texts)
    details = dict(zip(result.dropped["path"].to_pylist(), result.dropped["detail"].to_pylist(), strict=True))
    return [details.get(f"/f{i}.py") for i in range(len(texts))]


def lines_of(length: int, count: int) -> str:
    """``count`` lines of ``length`` characters of prose-like text."""
    line = (FILLER * (length // len(FILLER) + 1))[:length]
    return (line + "\n") * count


def test_too_many_lines_at_the_threshold() -> None:
    assert outcome([lines_of(6, 100_000), lines_of(6, 100_001)]) == [None, "100001 lines > 100000"]
    assert outcome([lines_of(6, 11)], config=FiltersConfig(max_lines=10)) == ["11 lines > 10"]
    assert outcome([lines_of(6, 11)], config=FiltersConfig(max_lines=10, too_many_lines=False)) == [None]


def test_mean_and_longest_line_at_the_threshold() -> None:
    mean_100 = lines_of(100, 50)
    mean_over = lines_of(101, 50)
    longest_1000 = lines_of(1000, 1) + lines_of(10, 20)
    longest_1001 = lines_of(1001, 1) + lines_of(10, 20)
    assert outcome([mean_100, mean_over, longest_1000, longest_1001]) == [
        None,
        "mean line length 101.0 > 100",
        None,
        "longest line 1001 chars > 1000",
    ]
    assert outcome([mean_over], config=FiltersConfig(long_lines=False)) == [None]


def test_markup_and_data_are_only_held_to_a_100k_longest_line() -> None:
    texts = [lines_of(5000, 3), lines_of(100_000, 1), lines_of(100_001, 1)]
    for language in ("HTML", "JSON", "Markdown", "Roff", "Roff Manpage", "SMT", "TeX", "Text", "XML"):
        assert outcome(texts, language) == [None, None, "longest line 100001 chars > 100000"]
    assert outcome(texts[:1], "Python") == ["mean line length 5000.0 > 100"]


def test_line_lengths_count_characters_not_bytes() -> None:
    # 600 two-byte characters: 1200 bytes, 600 characters
    assert outcome([("é" * 600 + "\n") + lines_of(10, 10)]) == [None]
    assert outcome([("é" * 1001 + "\n") + lines_of(10, 20)]) == ["longest line 1001 chars > 1000"]


def test_alphabetic_share_at_the_threshold() -> None:
    quarter = ("a;;;" * 20 + "\n") * 10  # 200 letters in 810 characters: 24.7%
    exact = ("a;;;" * 20 + "\n") * 10 + "abcdefghij" + "\n"  # 210 / 821 = 25.6%
    assert outcome([quarter, exact]) == ["alphabetic 24.7% < 25%", None]
    assert outcome([quarter], config=FiltersConfig(low_alphabetic=False)) == [None]
    assert outcome([quarter], config=FiltersConfig(min_alphabetic=0.24)) == [None]


def test_assembly_counts_digits_as_well() -> None:
    # an assembly listing is mostly numbers: 4 letters and 8 digits per 16 characters
    listing = "\tdc.b $12,$34 ; 0x5678 9a\n" * 40
    share = TextStats(pa.array([listing.encode()], pa.large_binary())).alphabetic_share(0)
    assert share < 0.25
    assert outcome([listing], "Motorola 68K Assembly") == [None]
    assert outcome([listing], "C") == [f"alphabetic {share:.1%} < 25%"]


def test_non_ascii_letters_count_and_replacement_characters_do_not() -> None:
    chinese = "# 这是一个中文注释，说明下面的函数做什么。\nx = 1\n" * 20
    replaced = ("\ufffd" * 50 + "\n") * 10
    assert outcome([chinese, replaced]) == [None, "alphabetic 0.0% < 25%"]


def test_empty_and_blank_files_have_no_letters() -> None:
    assert outcome(["", "   \n\t\n"]) == ["alphabetic 0.0% < 25%", "alphabetic 0.0% < 25%"]


def base64_lines(chars: int) -> str:
    """A base64 block of ``chars`` characters, newlines included, wrapped at 64 like PEM: one match."""
    wrapped = "\n".join("QUJD" * 16 for _ in range(chars // 65 + 1))
    return wrapped[:chars]


def test_an_encoded_run_at_the_threshold() -> None:
    prose = lines_of(60, 60)  # 3660 characters, no encoded run
    run_1024 = prose + "key = '" + base64_lines(1024) + "'\n"
    run_1025 = prose + "key = '" + base64_lines(1025) + "'\n"
    assert outcome([run_1024, run_1025]) == [None, "longest encoded run 1025 chars > 1024"]
    assert outcome([run_1025], config=FiltersConfig(encoded_data=False)) == [None]


def test_hex_and_unicode_escape_runs() -> None:
    prose = lines_of(60, 60)
    dump = prose + "\n".join(" ".join(["1f"] * 16) for _ in range(30)) + "\n"  # a hex dump: 1439 characters
    longest = max(m.end() - m.start() for m in _REFERENCE.finditer(dump.encode()))
    assert longest > 1024
    # JSON's long lines are allowed: a line of \u escapes can be long enough
    escapes = prose + '{"s": "' + "\\u00e9" * 200 + '"}\n'  # 1200 characters
    short = prose + '{"s": "' + "\\u00e9" * 7 + '"}\n'  # under the 8 escapes a match needs
    assert outcome([dump, escapes, short], "JSON") == [
        f"longest encoded run {longest} chars > 1024",
        "longest encoded run 1200 chars > 1024",
        None,
    ]


def test_encoded_share_at_the_threshold() -> None:
    # one base64 run, then short lines of 9 letters (runs of 10 with the newline: under 64)
    def text(run: int) -> str:
        head = ("QUJD" * 26)[:run] + " ;\n"
        rest = "xxxxxxxxx;\n" * 8
        return head + rest + "x" * (200 - len(head) - len(rest) - 2) + ";\n"

    assert len(text(100)) == len(text(101)) == 200
    assert outcome([text(100), text(101)]) == [None, "encoded data 50.5% of the file > 50%"]
    assert outcome([text(101)], config=FiltersConfig(max_encoded_fraction=0.51)) == [None]


def test_a_50_mb_single_line_is_quick() -> None:
    base64 = "QUJD" * 12_500_000
    words = ("lorem ipsum dolor " * 2_800_000)[:50_000_000]
    hexes = "0x12," * 10_000_000
    start = time.process_time()
    result = outcome([base64, words, hexes], config=FiltersConfig(long_lines=False, low_alphabetic=False))
    assert time.process_time() - start < 20
    assert result == [
        "longest encoded run 50000000 chars > 1024",
        None,
        "longest encoded run 50000000 chars > 1024",
    ]
    assert outcome([words], "Python") == ["mean line length 50000000.0 > 100"]


def test_generated_markers_in_the_first_five_lines() -> None:
    on_line_5 = "a = 1\n" * 4 + "# This file is AUTOMATICALLY GENERATED, do not change\n" + lines_of(20, 5)
    on_line_6 = "a = 1\n" * 5 + "# autogenerated\n" + lines_of(20, 5)
    dont_edit = "/* DO NOT EDIT */\n" + lines_of(20, 5)
    assert outcome([on_line_5, on_line_6, dont_edit]) == [
        "marker 'automatically generated' in the first 5 lines",
        None,
        "marker 'do not edit' in the first 5 lines",
    ]
    assert outcome([on_line_5], config=FiltersConfig(auto_generated=False)) == [None]
    assert outcome([on_line_6], config=FiltersConfig(generated_marker_lines=6)) == [
        "marker 'autogenerated' in the first 6 lines"
    ]


def test_enry_flags_generated_and_vendored() -> None:
    text = lines_of(30, 10)
    generated = Filters().process(labelled([("/a.py", text, "Python")], generated=True), None)
    assert generated.dropped["detail"].to_pylist() == ["enry is_generated"]
    vendored = labelled([("/vendor/a.py", text, "Python")], vendor=True)
    assert Filters().process(vendored, None).dropped["reason"].to_pylist() == ["vendored"]
    kept = Filters(FiltersConfig(vendored="keep")).process(vendored, None).kept
    assert kept["is_vendor"].to_pylist() == [True]


def test_ledger_and_counters() -> None:
    table = labelled([("/a.py", lines_of(20, 5), "Python"), ("/b.py", "", "Python"), ("/c.py", lines_of(101, 3), "C")])
    result = Filters().process(table, None)
    assert result.counters == {"in": 3, "kept": 1, "long_lines": 1, "low_alphabetic": 1}
    assert result.dropped["stage"].to_pylist() == ["filters", "filters"]
    assert result.dropped["path"].to_pylist() == ["/b.py", "/c.py"]
    assert result.kept.column("content").to_pylist() == [lines_of(20, 5)]


def test_no_row_to_filter() -> None:
    result = Filters().process(labelled([]), None)
    assert result.kept.num_rows == 0 and result.counters == {"in": 0, "kept": 0}


def test_real_code_passes() -> None:
    paths = sorted(STDLIB.glob("*.py"))
    files = [("/" + p.name, p.read_bytes()) for p in paths]
    language = Language(LanguageConfig(guesslang=False))
    table = language.process(decoded(files), language.setup()).kept
    result = Filters().process(table, None)
    assert result.counters["kept"] >= 0.95 * len(paths)
    assert set(result.dropped["reason"].to_pylist()) <= {"auto_generated"}  # token.py, keyword.py ...


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="vendored"):
        FiltersConfig(vendored="flag")
    with pytest.raises(ValueError, match="min_alphabetic"):
        FiltersConfig(min_alphabetic=25)
    with pytest.raises(ValueError, match="max_lines"):
        FiltersConfig(max_lines=0)


def reference_stats(text: str) -> dict[str, int | float]:
    """The per-file statistics by their definitions, on a str."""
    lines = text.split("\n")
    count = len(lines) - (1 if lines[-1] == "" else 0)
    return {
        "chars": len(text),
        "newlines": text.count("\n"),
        "lines": count,
        "mean": (len(text) - text.count("\n")) / count if count else 0.0,
        "longest": max(map(len, lines)),
        "alphabetic": sum(c.isalpha() for c in text) / len(text) if text else 0.0,
        "alphanumeric": sum(c.isalnum() for c in text) / len(text) if text else 0.0,
    }


def measured_stats(stats: TextStats, i: int) -> dict[str, int | float]:
    longest = stats.longest_line(i)
    assert longest <= stats.longest_bytes[i]
    return {
        "chars": stats.chars[i],
        "newlines": stats.newlines[i],
        "lines": stats.lines[i],
        "mean": stats.mean_line_length(i),
        "longest": longest,
        "alphabetic": stats.alphabetic_share(i),
        "alphanumeric": stats.alphabetic_share(i, True),
    }


EDGE_TEXTS = [
    "", "\n", "\n\n\n", "x", "abc", "abc\n", "abc\ndef", "\nabc", "a\r\nb\r\n", "\r\n", "\r\n\r\n\r",
    "é", "é\n", "中文注释\nx = 1\n", "😀abc\n😀", "\ufffd" * 5, "٣٤ digits ², ½\n", "ǅungla Ⅻ ª º\n",
    "x" * 5000, "x" * 5000 + "\n", "é" * 1500 + "\nab", "ab\n" + "é" * 1001, "中" * 999 + "\n" + "a" * 1000,
    "\n" * 1000, " " * 64 + "\n", "\t\tZz\x00\x7f\x80",
]


def test_text_stats_on_edge_cases() -> None:
    # one column of them all, so no text's bytes may leak into its neighbours'
    column = pa.array([t.encode() for t in EDGE_TEXTS], pa.large_binary())
    for array in (column, column.slice(3), pa.chunked_array([column.slice(0, 7), column.slice(7)])):
        stats = TextStats(array)
        first = len(EDGE_TEXTS) - len(array)
        for i, text in enumerate(EDGE_TEXTS[first:]):
            assert measured_stats(stats, i) == reference_stats(text), text
            for lines, limit in ((1, 65_536), (2, 65_536), (5, 65_536), (5, 3), (1, 0)):
                assert stats.head(i, lines, limit) == first_lines(text.encode()[:limit], lines)


def test_text_stats_on_no_text_and_empty_texts() -> None:
    for values in ([], [b""], [b"", b""]):
        stats = TextStats(pa.array(values, pa.large_binary()))
        assert [measured_stats(stats, i) for i in range(len(values))] == [reference_stats("")] * len(values)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="ab Zé中😀\n\r\t٣\ufffd", max_size=60) | st.text(max_size=60), max_size=8))
def test_text_stats_match_their_definitions(texts: list[str]) -> None:
    stats = TextStats(pa.array([t.encode() for t in texts], pa.large_binary()))
    for i, text in enumerate(texts):
        assert measured_stats(stats, i) == reference_stats(text)
        assert stats.head(i, 2, 20) == first_lines(text.encode()[:20], 2)


def reference_runs(text: str) -> tuple[int, int]:
    """Characters matched and the longest match, by Python's engine."""
    matches = [m.end() - m.start() for m in _REFERENCE.finditer(text.encode())]
    return sum(matches), max(matches, default=0)


def check_runs(texts: list[str]) -> None:
    column = pa.array([t.encode() for t in texts], pa.large_binary())
    expected = [reference_runs(t) for t in texts]
    assert has_encoded(column) == [matched > 0 for matched, _ in expected]
    matched, longest = encoded_runs(column)
    assert list(zip(matched, longest, strict=True)) == expected


def test_encoded_runs_at_the_boundaries() -> None:
    b64 = "QUJD" * 20  # 80 characters: one run
    hexes = ", ".join(["0x1f"] * 9)
    escapes = "\\u00e9" * 9
    texts = [
        b64, b64 + "\n", "\n" + b64, "x = '" + b64 + "'", b64[:40], b64[40:], hexes, hexes + "\n" + hexes, " " + hexes,
        escapes, "s = '" + escapes + "'", escapes[:-1], "", "\x00" + b64 + "\x00", "é" + b64 + "é",
        (b64[:64] + "\n") * 3 + "QUJD", "\n".join(["ab"] * 40), "1f " * 8, "1f " * 7 + "1f",
    ]
    check_runs(texts)
    check_runs([])
    # a run split across two neighbouring texts is two short pieces, not one run
    assert has_encoded(pa.array([b64[:40].encode(), b64[40:].encode()], pa.large_binary())) == [False, False]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="AQ09fx,\\u \n=+/;\x00", max_size=400), max_size=4))
def test_encoded_runs_match_pythons_engine(texts: list[str]) -> None:
    check_runs(texts)


def test_a_chunked_table_filters_like_its_rows() -> None:
    texts = [lines_of(20, 5), "", lines_of(101, 3), "é" * 1001 + "\n" + lines_of(10, 20), "QUJD" * 300 + "\n"]
    table = labelled([(f"/f{i}.py", t, "Python") for i, t in enumerate(texts)])
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=2))
    assert chunked["content"].num_chunks > 1
    whole, parts = Filters().process(table, None), Filters().process(chunked, None)
    assert whole.counters == parts.counters
    assert whole.dropped.to_pylist() == parts.dropped.to_pylist()
    assert whole.kept.to_pylist() == parts.kept.to_pylist()
    assert [outcome([t])[0] for t in texts] == outcome(texts)


def test_one_word_per_line_is_not_base64_but_wrapped_base64_is() -> None:
    import base64
    import importlib.metadata

    # a real requirements list (this environment's distributions), one name per line: StarCoder2's
    # base64 class crossed newlines and called such a file 100% encoded
    names = sorted({n for d in importlib.metadata.distributions() if (n := d.metadata["Name"]).isalnum()})
    requirements = "\n".join(names[:200]) + "\n"
    assert re.fullmatch(r"[a-zA-Z0-9+/\n=]+", requirements) and len(requirements) > 1024
    wrapped = base64.encodebytes(Path(sysconfig.get_paths()["stdlib"], "json", "decoder.py").read_bytes()).decode()
    assert outcome([requirements, "data = '''\n" + wrapped + "'''\n"], language="Text") == [
        None, f"longest encoded run {len(wrapped)} chars > 1024"]
