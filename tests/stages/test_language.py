import hashlib
import inspect
import json.decoder
import posixpath
import sysconfig
import textwrap
import time
from pathlib import Path

import enry
import pyarrow as pa
import pytest

from pipeline.writer import language_slug
from schemas import DECODED_SCHEMA, LANGUAGE_SCHEMA
from stages.base import Lazy, binary_array
from stages.language import GUESSLANG_LANGUAGES, Language, LanguageConfig, classify, detect, language_type

STDLIB = Path(sysconfig.get_paths()["stdlib"])
C_HEADER = Path("/usr/include/stdio.h")
CXX_HEADERS = sorted(Path("/usr/include/c++").glob("*/bits/stl_vector.h"))
GO_SOURCE = Path("/usr/share/doc/git/contrib/persistent-https/client.go")
OBJC_SOURCE = Path("/usr/share/cmake-3.25/Modules/CMakeOBJCCompilerABI.m")
PERL = Path("/usr/share/perl")
# MATLAB's own documentation example (no MATLAB code ships on this machine)
MATLAB = b"""function y = average(x)
% AVERAGE Mean of vector elements.
%   AVERAGE(X), where X is a vector, is the mean of vector elements.
%   Nonvector input results in an error.
[m,n] = size(x);
if (~((m == 1) | (n == 1)) | (m == 1 & n == 1))
    error('Input must be a vector')
end
y = sum(x)/length(x);
end
"""


def decoded(files: list[tuple[str, bytes]]) -> pa.Table:
    """DECODED_SCHEMA rows for ``(path, UTF-8 content)`` pairs."""
    n = len(files)
    values = {
        "blob_id": [hashlib.sha1(d).hexdigest() for _, d in files],
        "content_id": [f"{i:040x}" for i in range(n)],
        "sha256": [hashlib.sha256(d).hexdigest() for _, d in files],
        "origin_url": ["https://example.org/r"] * n,
        "repo_name": ["example.org/r"] * n,
        "snapshot_id": ["s"] * n,
        "revision_id": ["r"] * n,
        "directory_id": ["d"] * n,
        "branch_name": ["HEAD"] * n,
        "path": [p for p, _ in files],
        "path_is_utf8": [True] * n,
        "extension": [posixpath.splitext(posixpath.basename(p))[1][1:] for p, _ in files],
        "length_bytes": [len(d) for _, d in files],
        "src_encoding": ["UTF-8"] * n,
    }
    arrays = [
        binary_array([d for _, d in files], pa.large_string())
        if f.name == "content"
        else pa.array(values.get(f.name, [None] * n), f.type)
        for f in DECODED_SCHEMA
    ]
    return pa.Table.from_arrays(arrays, schema=DECODED_SCHEMA)


@pytest.fixture(scope="module")
def stage() -> Language:
    """The default stage (guesslang on)."""
    return Language()


@pytest.fixture(scope="module")
def labeller() -> Language:
    """Keeps everything (unknown and prose too), so every row comes back labelled."""
    return Language(LanguageConfig(keep_unknown=True, exclude_types=()))


@pytest.fixture(scope="module")
def model_dir(stage: Language, labeller: Language) -> Lazy:
    """The resource of both stages (guesslang on): guesslang's model, loaded on first use, once for the module."""
    found = stage.setup()
    assert isinstance(found, Lazy) and not found.loaded and isinstance(labeller.setup(), Lazy)
    return found


def label(stage: Language, files: list[tuple[str, bytes]], model_dir: Lazy | None) -> list[tuple[str, str]]:
    kept = stage.process(decoded(files), model_dir).kept
    assert kept.num_rows == len(files)
    return list(zip(kept["language"].to_pylist(), kept["language_source"].to_pylist(), strict=True))


def source(module: object) -> bytes:
    return inspect.getsource(module).encode()


def test_each_rule_and_the_output_schema(labeller: Language, model_dir: Lazy) -> None:
    files = [
        ("/pkg/textwrap.py", source(textwrap)),  # extension
        ("/Makefile", b"all:\n\tcc -o main main.c\n"),  # filename
        ("/bin/wrap", b"#!/usr/bin/env python3\n" + source(textwrap)),  # shebang
        ("/notes.txt", b"# vim: set ft=ruby:\nputs 'hi'\n"),  # modeline beats the extension
        ("/conf/site.settings", b'<?xml version="1.0"?>\n<site name="x"/>\n'),  # XML declaration
        ("/tools/decoder", source(json.decoder)),  # no rule: guesslang
    ]
    result = labeller.process(decoded(files), model_dir)
    assert result.kept.schema == LANGUAGE_SCHEMA
    assert result.counters == {"in": 6, "kept": 6, "guesslang_files": 1, "guesslang_decided": 1}
    labels = zip(result.kept["language"].to_pylist(), result.kept["language_source"].to_pylist(), strict=True)
    assert list(labels) == [
        ("Python", "extension"),
        ("Makefile", "filename"),
        ("Python", "shebang"),
        ("Ruby", "modeline"),
        ("XML", "xml"),
        ("Python", "guesslang"),
    ]
    assert result.kept["content"].to_pylist()[0] == source(textwrap).decode()
    assert result.dropped.num_rows == 0


def test_enry_rules_agree_with_enry_get_language() -> None:
    # the rule chain of this module, classifier included, gives go-enry's own answer (content
    # under the cap): stdlib modules, C headers, Perl modules and scripts (.pl is ambiguous)
    paths = sorted(STDLIB.glob("*.py"))[:150] + sorted(Path("/usr/include").glob("*.h"))[:100]
    paths += sorted(PERL.rglob("*.pl"))[:60] + sorted(PERL.rglob("*.pm"))[:40]
    assert len(paths) >= 150
    for path in paths:
        data = path.read_bytes()[:30_000]
        language, _, candidates = detect(path.name, data)
        if language is None and candidates:
            language = classify(path.name, data, candidates)
        assert (language or "") == enry.get_language(path.name, data), path


@pytest.mark.skipif(not (C_HEADER.exists() and CXX_HEADERS), reason="needs /usr/include's C and C++ headers")
def test_h_is_c_or_cxx_by_heuristics(labeller: Language, model_dir: Lazy) -> None:
    cxx = CXX_HEADERS[0].read_bytes()  # libstdc++'s, which says "-*- C++ -*-" on its first line
    without_modeline = cxx.replace(b"-*- C++ -*-", b"")
    files = [
        ("/include/stdio.h", C_HEADER.read_bytes()),
        ("/include/stl_vector.h", without_modeline),
        ("/include/vector", cxx),
        ("/include/vector_impl", without_modeline),
    ]
    assert label(labeller, files, model_dir) == [
        ("C", "heuristics"),
        ("C++", "heuristics"),
        ("C++", "modeline"),
        ("C++", "guesslang"),
    ]


@pytest.mark.skipif(not OBJC_SOURCE.exists(), reason="needs CMake's Objective-C probe source")
def test_m_is_objective_c_or_matlab(labeller: Language, model_dir: Lazy) -> None:
    objc = OBJC_SOURCE.read_bytes()
    assert detect("abi.m", objc)[:2] == (None, "none")  # no heuristic decides: the candidates go on
    (objc_label, matlab_label) = label(labeller, [("/src/abi.m", objc), ("/src/average.m", MATLAB)], model_dir)
    assert objc_label[0] == "Objective-C" and objc_label[1] in ("guesslang", "classifier")
    assert matlab_label == ("MATLAB", "heuristics")


LOCALES = sorted(PERL.glob("*/Unicode/Collate/Locale/*.pl"))[:40]


@pytest.mark.skipif(len(LOCALES) < 40, reason="needs Perl's Unicode::Collate locale tables")
def test_guesslang_chooses_among_candidates_better_than_the_classifier(labeller: Language, model_dir: Lazy) -> None:
    # Perl's collation tables match none of Linguist's .pl heuristics (Perl, Prolog or Raku):
    # go-enry's classifier calls most of them Prolog
    files = [(f"/Locale/{path.name}", path.read_bytes()) for path in LOCALES]
    assert all(detect(path.name, data)[2] for path, (_, data) in zip(LOCALES, files, strict=True))
    without = Language(LanguageConfig(guesslang=False, keep_unknown=True, exclude_types=()))
    enry_only = label(without, files, without.setup())
    with_guesslang = label(labeller, files, model_dir)
    assert sum(lang == "Perl" for lang, _ in enry_only) < 10  # 4 here
    assert sum(lang == "Perl" for lang, _ in with_guesslang) >= 30  # 34 here
    assert {src for _, src in with_guesslang} <= {"guesslang", "classifier"}


def test_guesslang_labels_extensionless_code(stage: Language, model_dir: Lazy) -> None:
    files = [("/scripts/wrap", source(textwrap))]
    if GO_SOURCE.exists():
        files.append(("/cmd/client", GO_SOURCE.read_bytes()))
    result = stage.process(decoded(files), model_dir)
    assert result.kept["language"].to_pylist() == ["Python", "Go"][: len(files)]
    assert set(result.kept["language_source"].to_pylist()) == {"guesslang"}
    assert result.counters["guesslang_files"] == result.counters["guesslang_decided"] == len(files)


def test_guesslang_off_or_unsure_leaves_unknown(stage: Language, model_dir: Lazy) -> None:
    files = [("/scripts/wrap", source(textwrap)), ("/VERSION", b"1.2.3\n")]
    off = Language(LanguageConfig(guesslang=False))
    assert off.setup() is None  # no fallback: nothing to load
    result = off.process(decoded(files), None)
    assert result.kept.num_rows == 0
    assert result.dropped["reason"].to_pylist() == ["unknown_language"] * 2
    assert result.counters == {"in": 2, "kept": 0, "unknown_language": 2, "guesslang_files": 0, "guesslang_decided": 0}
    unsure = stage.process(decoded(files[1:]), model_dir)  # too little text for the model to be sure
    assert unsure.dropped["detail"].to_pylist()[0].startswith("no rule matched; guesslang ")
    assert unsure.counters["guesslang_files"] == 1 and unsure.counters["guesslang_decided"] == 0


def test_documentation_is_not_sent_to_guesslang(stage: Language, model_dir: Lazy) -> None:
    # enry calls README documentation: no language for it, even if its text looks like code
    result = stage.process(decoded([("/README", source(textwrap))]), model_dir)
    assert result.counters["guesslang_files"] == 0
    assert result.dropped["reason"].to_pylist() == ["unknown_language"]


def test_default_keeps_documentation_and_prose_is_one_line_away(model_dir: Lazy) -> None:
    config = LanguageConfig()
    assert all(config.keeps(name) for name in ("Python", "C++", "HTML", "TeX", "JSON", "YAML", "Roff Manpage", "CSV"))
    assert all(config.keeps(name) for name in ("Markdown", "Text", "reStructuredText", "AsciiDoc", "Org"))
    files = [("/README.md", b"# Title\n\nSome words.\n"), ("/LICENSE", b"Permission is hereby granted\n")]
    kept = Language().process(decoded(files), model_dir).kept
    assert dict(zip(kept["path"].to_pylist(), kept["language"].to_pylist(), strict=True)) == {
        "/README.md": "Markdown", "/LICENSE": "Text"}


def test_kept_set_excludes_prose_when_asked(model_dir: Lazy) -> None:
    stage = Language(LanguageConfig(exclude_types=("prose",)))
    assert not any(stage.config.keeps(name) for name in ("Markdown", "Text", "reStructuredText", "AsciiDoc", "Org"))
    files = [("/README.md", b"# Title\n\nSome words.\n"), ("/LICENSE", b"Permission is hereby granted\n"),
             ("/a.json", b'{"a": 1}\n')]
    result = stage.process(decoded(files), model_dir)
    assert result.kept["path"].to_pylist() == ["/a.json"]
    assert result.dropped["reason"].to_pylist() == ["excluded_language"] * 2
    assert result.dropped["detail"].to_pylist() == ["Markdown", "Text"]
    only = Language(LanguageConfig(guesslang=False, languages=("JSON",)))
    assert only.process(decoded(files), only.setup()).kept["path"].to_pylist() == ["/a.json"]
    no_data = Language(LanguageConfig(guesslang=False, exclude_types=("prose",), exclude_languages=("JSON",)))
    assert no_data.process(decoded(files), no_data.setup()).counters["excluded_language"] == 3


def test_guesslang_labels_are_linguist_names() -> None:
    assert len(GUESSLANG_LANGUAGES) == 54
    for names in GUESSLANG_LANGUAGES.values():
        for name in names:
            assert language_type(name) in ("programming", "markup", "data", "prose"), name


def test_bad_input(labeller: Language, model_dir: Lazy) -> None:
    replacement = "x = '\ufffd\ufffd'  # bytes that were not UTF-8\n".encode()
    files = [
        ("/empty.py", b""),
        ("/empty", b""),
        ("/blank", b"  \n\t\n"),
        ("/garbled.py", replacement),
        ("/noext", ("\ufffd" * 300).encode()),
        ("/run", b"#!/bin/sh\necho hi\n"),
        ("/d\u00e9j\u00e0/\u00e9t\u00e9.py", b"pass\n"),
    ]
    result = labeller.process(decoded(files), model_dir)
    assert label(labeller, files, model_dir) == [
        ("Python", "extension"),
        ("unknown", "none"),
        ("unknown", "none"),
        ("Python", "extension"),
        ("unknown", "none"),
        ("Shell", "shebang"),
        ("Python", "extension"),
    ]
    assert result.counters["guesslang_files"] == 1  # only the replacement characters: not blank, not named


def test_a_50_mb_single_line_is_quick(stage: Language, model_dir: Lazy) -> None:
    line = b"var a=" + b"x" * 50_000_000 + b";"
    start = time.process_time()
    result = stage.process(decoded([("/dist/app.min.js", line)]), model_dir)
    assert time.process_time() - start < 10
    assert result.kept["language"].to_pylist() == ["JavaScript"]
    assert result.kept["is_generated"].to_pylist() == [True]  # minified: enry's is_generated


def test_vendor_and_generated_flags(labeller: Language, model_dir: Lazy) -> None:
    files = [
        ("/node_modules/left-pad/index.js", b"module.exports = 1;\n"),
        ("/Dependencies/zlib/inflate.c", b"int x;\n"),  # enry's patterns expect paths without the leading /
        ("/src/main.c", b"int main(void) { return 0; }\n"),
        ("/package-lock.json", b"{}\n"),
    ]
    kept = labeller.process(decoded(files), model_dir).kept
    assert kept["is_vendor"].to_pylist() == [True, True, False, False]
    assert kept["is_generated"].to_pylist() == [True, False, False, True]


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="guesslang_threshold"):
        LanguageConfig(guesslang_threshold=1.5)
    with pytest.raises(ValueError, match="exclude_types"):
        LanguageConfig(exclude_types=("prose", "poetry"))
    with pytest.raises(ValueError, match="Pyhton"):
        LanguageConfig(languages=("Pyhton",))
    with pytest.raises(ValueError, match="guesslang_batch"):
        LanguageConfig(guesslang_batch=0)


def test_process_needs_the_model_dir_when_guesslang_is_on() -> None:
    # a file only guesslang can label, and no model folder (setup()'s resource) passed in
    with pytest.raises(RuntimeError, match="setup"):
        Language().process(decoded([("/tools/decoder", source(json.decoder))]), None)
    # files enry decides alone never need it
    assert Language().process(decoded([("/a.py", b"pass\n")]), None).kept.num_rows == 1


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("C++", "c++"),
        ("Objective-C++", "objective-c++"),
        ("F#", "f-sharp"),
        ("C#", "c-sharp"),
        ("F*", "f-star"),
        ("Graphviz (DOT)", "graphviz-dot"),
        ("Visual Basic .NET", "visual-basic-.net"),
        ("Cap'n Proto", "cap-n-proto"),
        ("Roff Manpage", "roff-manpage"),
        ("a/../b", "a-..-b"),
        ("..", "unknown"),
    ],
)
def test_language_slug_is_a_safe_folder_name(name: str, slug: str) -> None:
    assert language_slug(name) == slug
    assert "/" not in slug and slug not in (".", "..") and not slug.startswith(".")


def test_language_slugs_of_tricky_names_are_distinct() -> None:
    names = ["C", "C++", "C#", "Objective-C", "Objective-C++", "F#", "F*", "Q#", "HTML", "HTML+ERB", "HTML+PHP",
             "Visual Basic .NET", "Visual Basic 6.0", "Roff", "Roff Manpage", "Fortran", "Fortran Free Form"]
    assert len({language_slug(n) for n in names}) == len(names)
