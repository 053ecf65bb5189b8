"""go-enry's ``.h`` heuristics run through RE2 (``stages.language.enry.header_languages``) give libenry's
own answers: on every header file this machine has (C and C++ from /usr/include and the installed
packages) and on texts made to hit the places where regex engines differ."""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import pytest

from stages.language import enry
from stages.language.enry import (
    CONTENT_BYTES,
    _encoded,
    _strategy,
    detect,
    header_languages,
    header_rules_hold,
    is_header,
    lib,
)


def go_enry(name: str, text: bytes) -> tuple[str, ...]:
    """libenry's content heuristics on ``text``, as the stage called them before."""
    return _strategy(lib.GetLanguagesByContent, _encoded(name), text)


def machine_headers(limit: int = 3000) -> list[Path]:
    """Up to ``limit`` header files of this machine, spread evenly over all of them (sorted: the same
    choice every run on one machine)."""
    found = []
    for root in ("/usr/include", sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]):
        for folder, _, names in os.walk(root):
            found += [Path(folder) / n for n in names if is_header(n)]
    found = sorted({p for p in found if p.is_file() and not p.is_symlink()})
    step = max(1, len(found) // limit)
    return found[::step][:limit]


def test_the_rules_are_libenrys_own() -> None:
    assert header_rules_hold()


def test_the_answers_are_go_enrys_on_the_headers_of_this_machine() -> None:
    headers = machine_headers()
    assert len(headers) >= 300  # the installed packages alone ship thousands (numpy, tensorflow)
    texts = [p.read_bytes()[:CONTENT_BYTES] for p in headers]
    ours = header_languages(texts)
    theirs = [go_enry(p.name, t) for p, t in zip(headers, texts, strict=True)]
    assert ours is not None
    assert [(a,) for a in ours] == theirs
    assert {"C", "C++"} <= set(ours)


EDGES = [
    b"", b"int x;\n", b"#include <vector>\n", b"#  include <iostream>", b"#include <vector.h>\n",
    b"#include <string>", b"\n\n   template <typename T>", b"template<class T>", b"\x0btemplate <", b"\x0ctemplate <",
    b"int x;\r\ntemplate <class T>", b"int x;\rtemplate <class T>", b"\ttry {", b"  constexpr int x = 1;", b"entry",
    b"retry:", b"catch (x)", b"  catch(x)", b"catch x", b"class Foo", b"class\nFoo", b"namespace\tfoo",
    b"using  namespace std;", b"using namespace\n", b"public:\n", b"public:\r\n", b"  private:", b"protected: x",
    b"__has_cpp_attribute(x)", b"#if __cplusplus > 199711L", b"#if __cplusplus>1", b"std::vector<int> v;",
    b"std:: x", b"x = std::", b"@interface Foo : NSObject", b"  @end", b"@endfoo", b"@class Foo;", b"@property x",
    b"#import <Foundation/Foundation.h>", b'#import "x.h"', b"#import x.hpp>", b"#import \xff\xfe.h>",
    b"#import <a.h", b"/* @interface */", b"  \n  @protocol P", b"\xe2\x80\x83template <", b"caf\xc3\xa9 std::x",
    b"x" * 40000 + b"\nclass Foo", b"@interface A\nclass B", b"#include <vector>\n@implementation X",
]


@pytest.mark.parametrize("text", EDGES, ids=range(len(EDGES)))
def test_the_answers_are_go_enrys_where_regex_engines_differ(text: bytes) -> None:
    cut = text[:CONTENT_BYTES]
    assert [(a,) for a in header_languages([cut]) or []] == [go_enry("x.h", cut)]


def test_detect_uses_the_answer_only_for_headers() -> None:
    data = b"#include <vector>\nstd::string s;\n"
    for name in ("a.h", "A.H", "x.upb.h"):
        assert detect(name, data, header="C++") == detect(name, data) == ("C++", "heuristics", ())
    # a name whose heuristics are not the .h ones never takes it
    assert detect("a.m", b"function x = f()\nend\n", header="C++") == detect("a.m", b"function x = f()\nend\n")


def test_another_libenry_leaves_headers_to_go_enry(monkeypatch: pytest.MonkeyPatch) -> None:
    header_rules_hold.cache_clear()
    monkeypatch.setattr(enry, "H_CPP", enry.H_CPP + "|a rule this libenry does not have")
    try:
        assert not header_rules_hold()
        assert header_languages([b"#include <vector>"]) is None
    finally:
        monkeypatch.undo()
        header_rules_hold.cache_clear()
    assert header_rules_hold()
