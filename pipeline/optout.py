"""The opt-out registry: repositories and owners whose files never go into the dataset.

A text file, one entry per line (docs/license.md)::

    # target                              date        reason (optional, free text)
    https://github.com/octo/hello         2024-03-01  owner's request #123
    octo/world                            2024-03-02
    someone/*                             2024-03-05  owner-wide
    https://gitlab.com/group/*            2024-04-01  glob on the origin URL

Targets: a full origin URL (exact); ``owner/name`` (the ``repo_name`` of any forge); ``owner/*``
(every repository of that owner on any forge); a glob (``*``, ``?``, ``[...]``, matched with
``fnmatch`` rules on the origin URL when it has a scheme, else on ``repo_name``). Matching ignores
case and a trailing ``/`` or ``.git`` (forges treat those names as the same repository; opting out a
little more is the safe direction). Blank lines and lines starting with ``#`` are ignored (a ``#``
later on a line is part of the reason: ``request #123``); any other line that is not ``<target>
<YYYY-MM-DD> [reason]`` fails the load with the file and line number.

Exact targets are dict lookups; globs are bucketed by their literal prefix up to a ``/``, so an
origin is tested only against the globs whose prefix it starts with.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import PipelineError

URL, REPO, OWNER, GLOB = "url", "repo", "owner", "glob"
_KIND_ORDER = {URL: 0, REPO: 1, OWNER: 2, GLOB: 3}  # which entry a match reports when several apply
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/\s]+(?:/\S*)?$")
_NAME = re.compile(r"^[^/\s]+/[^/\s]+$")
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Entry:
    """One opt-out: ``target`` as written, its ``kind`` (url, repo, owner, glob), date, reason, source line."""

    target: str
    kind: str
    date: dt.date
    reason: str = ""
    line: int = 0

    def text(self) -> str:
        """The entry as a registry line."""
        return f"{self.target} {self.date.isoformat()}" + (f" {self.reason}" if self.reason else "")


def normalize_url(url: str) -> str:
    """``url`` as matched: lowercase, without a trailing ``/`` or ``.git``."""
    url = url.strip().lower().rstrip("/")
    return url[:-4] if url.endswith(".git") else url


def normalize_name(name: str) -> str:
    """``owner/name`` as matched: lowercase, without a trailing ``/`` or ``.git``."""
    return normalize_url(name)


def parse_entry(text: str, line: int = 0) -> Entry | None:
    """The entry on one line (None for a blank or comment line); ValueError says what is wrong."""
    fields = text.split(None, 2)
    if not fields or fields[0].startswith("#"):
        return None
    if len(fields) < 2:
        raise ValueError(f"expected '<target> <YYYY-MM-DD> [reason]', got {text.strip()!r}")
    target, date_text = fields[0], fields[1]
    reason = fields[2].strip() if len(fields) > 2 else ""
    if not _DATE.match(date_text):
        raise ValueError(f"date {date_text!r} is not YYYY-MM-DD")
    try:
        date = dt.date.fromisoformat(date_text)
    except ValueError as e:
        raise ValueError(f"date {date_text!r} is not a valid date") from e
    return Entry(target, _kind(target), date, reason, line)


def _kind(target: str) -> str:
    if "://" in target:
        if not _URL.match(target):
            raise ValueError(f"target {target!r} is not a URL (scheme://host/path)")
        return GLOB if _GLOB_CHARS.search(target) else URL
    if not _NAME.match(target.rstrip("/")):
        raise ValueError(f"target {target!r} is neither a URL nor owner/name")
    owner, name = target.rstrip("/").split("/")
    if name == "*" and not _GLOB_CHARS.search(owner):
        return OWNER
    return GLOB if _GLOB_CHARS.search(target) else REPO


class Registry:
    """The opt-out entries, indexed for matching. ``sha256``: of the file's bytes, or of ``text()``."""

    def __init__(self, entries: Iterable[Entry], sha256: str | None = None, path: str | None = None) -> None:
        self.entries: tuple[Entry, ...] = tuple(entries)
        self.path = path
        self._urls: dict[str, Entry] = {}
        self._repos: dict[str, Entry] = {}
        self._owners: dict[str, Entry] = {}
        # literal prefix (cut at its last "/") → [(compiled glob, entry)]; separately for URLs and names
        self._url_globs: dict[str, list[tuple[re.Pattern[str], Entry]]] = {}
        self._name_globs: dict[str, list[tuple[re.Pattern[str], Entry]]] = {}
        for entry in self.entries:
            if entry.kind == URL:
                self._urls.setdefault(normalize_url(entry.target), entry)
            elif entry.kind == REPO:
                self._repos.setdefault(normalize_name(entry.target), entry)
            elif entry.kind == OWNER:
                self._owners.setdefault(entry.target.split("/")[0].lower(), entry)
            else:
                pattern = entry.target.lower().rstrip("/")
                buckets = self._url_globs if "://" in pattern else self._name_globs
                literal = _GLOB_CHARS.split(pattern, 1)[0]
                prefix = literal[: literal.rfind("/") + 1]
                compiled = re.compile(fnmatch.translate(pattern), re.DOTALL)
                buckets.setdefault(prefix, []).append((compiled, entry))
        self.sha256 = sha256 or hashlib.sha256(self.text().encode()).hexdigest()

    @classmethod
    def from_entries(cls, entries: Iterable[Entry]) -> Registry:
        """A registry of ``entries`` (its ``sha256`` is that of its canonical ``text()``)."""
        return cls(entries)

    def __len__(self) -> int:
        return len(self.entries)

    # a registry is a value: stages that hold one are keyed by it (pipeline.resources)
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Registry) and self.entries == other.entries

    def __hash__(self) -> int:
        return hash(self.entries)

    def text(self) -> str:
        """The registry in its file format, one line per entry, in order."""
        return "".join(entry.text() + "\n" for entry in self.entries)

    def union(self, origin_urls: Iterable[str], date: dt.date, reason: str = "carried over") -> Registry:
        """This registry plus exact-URL entries for ``origin_urls`` (e.g. the opt-outs of a parent version)."""
        known = set(self._urls)
        extra = []
        for url in sorted(set(origin_urls)):
            if normalize_url(url) not in known:
                extra.append(Entry(url, URL, date, reason))
                known.add(normalize_url(url))
        return Registry([*self.entries, *extra])

    def match(self, origin_url: str, repo_name: str | None = None) -> Entry | None:
        """The entry that opts this repository out, or None. Exact URL, then owner/name, owner, glob."""
        url = normalize_url(origin_url)
        entry = self._urls.get(url)
        if entry is not None:
            return entry
        name = normalize_name(repo_name) if repo_name else None
        if name:
            entry = self._repos.get(name)
            if entry is not None:
                return entry
            entry = self._owners.get(name.split("/", 1)[0])
            if entry is not None:
                return entry
        found = _glob_match(self._url_globs, url)
        if name:
            by_name = _glob_match(self._name_globs, name)
            if by_name is not None and (found is None or by_name.line < found.line):
                found = by_name
        return found

    def matches(self, origin_urls: Sequence[str], repo_names: Sequence[str | None]) -> list[Entry | None]:
        """``match`` for each (origin, repo_name) pair; each distinct pair is matched once."""
        seen: dict[tuple[str, str | None], Entry | None] = {}
        out = []
        for url, name in zip(origin_urls, repo_names, strict=True):
            key = (url, name)
            if key not in seen:
                seen[key] = self.match(url, name)
            out.append(seen[key])
        return out


def _glob_match(buckets: dict[str, list[tuple[re.Pattern[str], Entry]]], value: str) -> Entry | None:
    """The earliest-line glob entry matching ``value``, looking only in buckets whose prefix ``value`` has."""
    if not buckets:
        return None
    best: Entry | None = None
    cut = 0
    while True:
        bucket = buckets.get(value[:cut])
        if bucket:
            for pattern, entry in bucket:
                if (best is None or entry.line < best.line) and pattern.match(value):
                    best = entry
        if cut >= len(value):
            return best
        next_slash = value.find("/", cut)
        cut = len(value) if next_slash < 0 else next_slash + 1


def load_registry(path: Path | str) -> Registry:
    """The registry in the file at ``path``; PipelineError naming the file and line of the first bad line."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise PipelineError(f"{path}: cannot read the opt-out registry ({e.strerror or e})") from e
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PipelineError(f"{path}: the opt-out registry is not UTF-8 text") from e
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            entry = parse_entry(line, number)
        except ValueError as e:
            raise PipelineError(f"{path}:{number}: {e}") from e
        if entry is not None:
            entries.append(entry)
    return Registry(entries, sha256=hashlib.sha256(data).hexdigest(), path=str(path))
