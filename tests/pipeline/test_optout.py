import datetime as dt
import hashlib
from pathlib import Path

import pytest

from pipeline.errors import PipelineError
from pipeline.optout import GLOB, OWNER, REPO, URL, Entry, Registry, load_registry, parse_entry

REGISTRY = """\
# BigCode-style opt-out list
https://github.com/octo/hello        2024-03-01  owner's request #123

octo/World                           2024-03-02
someone/*                            2024-03-05  all of their repositories
https://gitlab.com/group/*           2024-04-01
https://git.example.org/team-?/app   2024-04-02  glob with ?
bot-*/tools                          2024-04-03  glob on repo_name
   # an indented comment
https://github.com/Octo/Hello.git    2024-05-01  a later duplicate of line 2
"""


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    path = tmp_path / "optout.txt"
    path.write_text(REGISTRY)
    return load_registry(path)


def test_parse_and_sha256(registry: Registry, tmp_path: Path) -> None:
    assert [e.kind for e in registry.entries] == [URL, REPO, OWNER, GLOB, GLOB, GLOB, URL]
    assert [e.line for e in registry.entries] == [2, 4, 5, 6, 7, 8, 10]
    first = registry.entries[0]
    assert first == Entry("https://github.com/octo/hello", URL, dt.date(2024, 3, 1), "owner's request #123", 2)
    assert registry.entries[1].reason == ""
    assert registry.sha256 == hashlib.sha256(REGISTRY.encode()).hexdigest()
    assert len(registry) == 7


@pytest.mark.parametrize(
    ("origin", "repo_name", "line"),
    [
        ("https://github.com/octo/hello", "octo/hello", 2),  # exact URL
        ("https://github.com/OCTO/hello.git/", "octo/hello", 2),  # case, .git and / do not matter
        ("https://gitlab.com/octo/world", "octo/world", 4),  # owner/name on any forge
        ("https://github.com/octo/world", "Octo/World", 4),
        ("https://github.com/someone/anything", "someone/anything", 5),  # owner-wide
        ("https://bitbucket.org/someone/x", "someone/x", 5),
        ("https://gitlab.com/group/project", "group/project", 6),  # URL glob
        ("https://gitlab.com/group/sub/project", "group/sub/project", 6),  # * crosses '/' (GitLab subgroups)
        ("https://git.example.org/team-a/app", "git.example.org/team-a/app", 7),
        ("https://github.com/bot-7/tools", "bot-7/tools", 8),  # repo_name glob
        ("https://github.com/octo/other", "octo/other", None),
        ("https://gitlab.com/groupie/project", "groupie/project", None),
        ("https://git.example.org/team-ab/app", "git.example.org/team-ab/app", None),
        ("https://github.com/someone2/x", "someone2/x", None),
        ("https://github.com/bot-7/tools-extra", "bot-7/tools-extra", None),
    ],
)
def test_match_each_kind(registry: Registry, origin: str, repo_name: str, line: int | None) -> None:
    entry = registry.match(origin, repo_name)
    assert (entry.line if entry else None) == line


def test_matches_is_match_per_row(registry: Registry) -> None:
    origins = ["https://github.com/octo/hello", "https://github.com/x/y", "https://github.com/octo/hello"]
    names = ["octo/hello", "x/y", "octo/hello"]
    assert [e and e.line for e in registry.matches(origins, names)] == [2, None, 2]
    assert registry.match("https://github.com/someone/z") is None  # owner entries need the repo_name


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("just-a-name", "neither a URL nor owner/name"),
        ("https://github.com/a/b 01-03-2024", "not YYYY-MM-DD"),
        ("https://github.com/a/b 2024-02-30", "not a valid date"),
        ("just-a-name 2024-01-01", "neither a URL nor owner/name"),
        ("a/b/c 2024-01-01", "neither a URL nor owner/name"),
        ("https:///nohost 2024-01-01", "is not a URL"),
    ],
)
def test_a_malformed_line_fails_with_file_and_line_number(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "optout.txt"
    path.write_text(f"# header\nowner/ok 2024-01-01\n\n{line}\n")
    with pytest.raises(PipelineError) as error:
        load_registry(path)
    assert str(error.value).startswith(f"{path}:4: ")
    assert message in str(error.value)


def test_bare_targets_are_undated_entries(tmp_path: Path) -> None:
    path = tmp_path / "optout.txt"
    path.write_text("https://github.com/a/b\nowner/name\n")
    registry = load_registry(path)
    assert [(e.target, e.date) for e in registry.entries] == [("https://github.com/a/b", None), ("owner/name", None)]
    assert registry.match("https://github.com/a/b").described() == "https://github.com/a/b (undated)"
    assert registry.entries[1].text() == "owner/name"


def test_unreadable_registry(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="cannot read"):
        load_registry(tmp_path / "absent.txt")
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9/x 2024-01-01\n")
    with pytest.raises(PipelineError, match="not UTF-8"):
        load_registry(tmp_path / "latin.txt")


def test_union_with_origins_carried_from_a_previous_version(registry: Registry) -> None:
    carried = {"https://github.com/gone/one", "https://github.com/octo/hello"}  # one already listed
    merged = registry.union(carried, dt.date(2024, 6, 1), "opted out in v2.0")
    assert len(merged) == len(registry) + 1
    assert merged.match("https://github.com/gone/one", "gone/one").reason == "opted out in v2.0"
    assert merged.sha256 != registry.sha256
    again = Registry.from_entries(merged.entries)
    assert again.sha256 == merged.sha256 and again.text() == merged.text()
    assert parse_entry(again.text().splitlines()[-1]).target == "https://github.com/gone/one"


def test_many_entries_and_origins(tmp_path: Path) -> None:
    lines = [f"https://github.com/o{i}/n{i} 2024-01-01" for i in range(20_000)]
    lines += [f"owner{i}/* 2024-01-01" for i in range(5_000)] + [f"https://gitlab.com/g{i}/* 2024-01-01"
                                                                  for i in range(5_000)]
    path = tmp_path / "big.txt"
    path.write_text("\n".join(lines) + "\n")
    registry = load_registry(path)
    origins = [f"https://github.com/o{i}/n{i}" for i in range(0, 40_000, 2)] + ["https://gitlab.com/g4999/x"]
    names = [o.removeprefix("https://github.com/") for o in origins[:-1]] + ["g4999/x"]
    found = registry.matches(origins, names)
    assert sum(e is not None for e in found) == 10_000 + 1
    assert found[-1].line == 30_000
