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
later on a line is part of the reason: ``request #123``); a line that is a target alone (a pasted
URL or ``owner/name``) is an undated entry; any other line that is not ``<target> <YYYY-MM-DD>
[reason]`` fails the load with the file and line number. ``python -m pipeline opt-out add`` writes
dated lines.

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
    date: dt.date | None
    reason: str = ""
    line: int = 0

    def text(self) -> str:
        """The entry as a registry line."""
        date = f" {self.date.isoformat()}" if self.date is not None else ""
        return f"{self.target}{date}" + (f" {self.reason}" if self.reason else "")

    def described(self) -> str:
        """What the ledger says of it: the target and its date."""
        return f"{self.target} ({self.date.isoformat()})" if self.date is not None else f"{self.target} (undated)"


def normalize_url(url: str) -> str:
    """``url`` as matched: lowercase, without credentials (as the walk removes them), a trailing ``/`` or ``.git``."""
    from pipeline.walk import strip_url_credentials

    url = strip_url_credentials(url.strip()).lower().rstrip("/")
    return url[:-4] if url.endswith(".git") else url


def normalize_name(name: str) -> str:
    """``owner/name`` as matched: lowercase, without a trailing ``/`` or ``.git``."""
    return normalize_url(name)


def parse_entry(text: str, line: int = 0) -> Entry | None:
    """The entry on one line (None for a blank or comment line); ValueError says what is wrong."""
    fields = text.split(None, 2)
    if not fields or fields[0].startswith("#"):
        return None
    if len(fields) < 2:  # a bare URL or owner/name, as people paste them: undated
        return Entry(fields[0], _kind(fields[0]), None, "", line)
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


def covering_entry(registry: Registry, entry: Entry) -> Entry | None:
    """The entry of ``registry`` that already opts out everything ``entry`` names, if any."""
    for existing in registry.entries:
        if existing.kind == entry.kind and normalize_url(existing.target) == normalize_url(entry.target):
            return existing
    if entry.kind == URL:
        from pipeline.walk import repo_name

        return registry.match(entry.target, repo_name(entry.target))
    if entry.kind == REPO:
        from pipeline.walk import repo_name

        name = normalize_name(entry.target)
        by_url = next((e for e in registry.entries if e.kind == URL and normalize_name(repo_name(e.target)) == name),
                      None)
        return by_url or registry.match("", entry.target)
    if entry.kind == OWNER:
        owner = entry.target.split("/")[0].lower()
        return next((e for e in registry.entries if e.kind == OWNER and e.target.split("/")[0].lower() == owner),
                    None)
    return None


def add_entry(path: Path, target: str, reason: str = "", date: dt.date | None = None) -> tuple[Entry, Entry | None]:
    """Append ``target`` to the registry at ``path`` (created if absent), dated ``date`` (today by
    default), unless an entry already covers it. Returns the entry and the covering one (None when
    the line was appended). PipelineError when the target or reason cannot make a valid line."""
    date = date or dt.datetime.now(dt.UTC).date()
    if not target.strip() or len(target.split()) != 1:
        raise PipelineError(f"{target!r}: a target is one word: a repository URL, owner/name, owner/* or a glob")
    if any(c in reason for c in "\r\n"):
        raise PipelineError("--reason: one line of text")
    line = f"{target.strip()} {date.isoformat()}" + (f" {reason.strip()}" if reason.strip() else "")
    try:
        entry = parse_entry(line)
    except ValueError as e:
        raise PipelineError(f"{target!r}: {e}") from e
    if entry is None or entry.target.startswith("#"):
        raise PipelineError(f"{target!r}: not an opt-out target")
    registry = load_registry(path) if path.exists() else Registry([])
    covered = covering_entry(registry, entry)
    if covered is None:
        existing = path.read_bytes() if path.exists() else b""
        with open(path, "ab") as f:
            if existing and not existing.endswith(b"\n"):
                f.write(b"\n")
            f.write((entry.text() + "\n").encode())
    return entry, covered
