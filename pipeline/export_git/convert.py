"""Git objects -> ``swh.model`` objects, as ``swh.loader.git``'s converters do (commits to
revisions, tags to releases, trees to directories), keeping the raw git object as
``raw_manifest`` when ``swh.model``'s id differs from git's."""

from __future__ import annotations

import re
from typing import Any

import attr
from swh.model.hashutil import git_object_header
from swh.model.model import (
    Directory,
    DirectoryEntry,
    Person,
    Release,
    ReleaseTargetType,
    Revision,
    RevisionType,
    Timestamp,
    TimestampWithTimezone,
)

from .git import _parse_headers

# Same masks and regexp as swh.loader.git.converters.
_COMMIT_MODE_MASK = 0o160000
_TREE_MODE_MASK = 0o040000
_AUTHORSHIP_LINE_RE = re.compile(rb"^.*> (?P<timestamp>\S+) (?P<timezone>\S+)$")
_TREE_ENTRY_RE = re.compile(rb"([0-7]+) ([^\0]*)\0.{20}", re.DOTALL)  # mode, name, 20-byte id

_TARGET_TYPES = {
    b"blob": "content",
    b"tree": "directory",
    b"commit": "revision",
    b"tag": "release",
}


def _person_date(value: bytes | None) -> tuple[Person | None, TimestampWithTimezone | None]:
    """Parse ``Name <email> 1234567890 +0200`` as dulwich + swh.loader.git do."""
    if value is None:
        return None, None
    sep = value.rfind(b"> ")
    if sep == -1:
        return Person.from_fullname(value), None
    person = Person.from_fullname(value[: sep + 1])
    m = _AUTHORSHIP_LINE_RE.match(value)
    if not m:
        return person, None
    try:
        date = TimestampWithTimezone(
            timestamp=Timestamp(seconds=int(m.group("timestamp")), microseconds=0),
            offset_bytes=m.group("timezone"),
        )
        date.offset_minutes()  # the export needs it; fails on garbage offsets
    except (ValueError, AssertionError, UnicodeDecodeError):
        return person, None  # not representable: raw_manifest will keep the id
    return person, date


def _with_manifest(obj: Any, git_type: str, git_id: bytes, body: bytes) -> Any:
    """Like swh.loader.git: keep the raw git object when swh.model's id differs from git's."""
    if obj.compute_hash() == git_id:  # the usual case: swh.model re-serializes it exactly
        return obj
    obj = attr.evolve(obj, raw_manifest=git_object_header(git_type, len(body)) + body)
    if obj.compute_hash() != git_id:
        raise ValueError(f"{git_type} {git_id.hex()}: hash mismatch")
    return obj


def _commit_to_revision(git_id: bytes, body: bytes) -> Revision:
    headers, message = _parse_headers(body)
    tree = b""
    parents: list[bytes] = []
    author = committer = None
    encoding = gpgsig = None
    mergetags: list[bytes] = []
    extra: list[tuple[bytes, bytes]] = []
    for key, value in headers:
        if key == b"tree":
            tree = value
        elif key == b"parent":
            parents.append(value)
        elif key == b"author":
            author = value
        elif key == b"committer":
            committer = value
        elif key == b"encoding":
            encoding = value
        elif key == b"mergetag":
            mergetags.append(value)
        elif key == b"gpgsig":
            gpgsig = value
        else:
            extra.append((key, value))
    # dulwich's (hence swh.loader.git's) order of extra headers
    extra_headers = [(b"encoding", encoding)] if encoding is not None else []
    extra_headers += [(b"mergetag", v) for v in mergetags]
    extra_headers += extra
    if gpgsig is not None:
        extra_headers.append((b"gpgsig", gpgsig))
    author_p, date = _person_date(author)
    committer_p, committer_date = _person_date(committer)
    rev = Revision(
        id=git_id,
        message=message,
        author=author_p,
        date=date,
        committer=committer_p,
        committer_date=committer_date,
        type=RevisionType.GIT,
        directory=bytes.fromhex(tree.decode()),
        synthetic=False,
        metadata=None,
        parents=tuple(bytes.fromhex(p.decode()) for p in parents),
        extra_headers=tuple(extra_headers),
    )
    return _with_manifest(rev, "commit", git_id, body)


def _tag_to_release(git_id: bytes, body: bytes) -> Release:
    headers, message = _parse_headers(body)
    fields = dict(headers)
    tagger, date = _person_date(fields.get(b"tagger"))
    rel = Release(
        id=git_id,
        name=fields.get(b"tag", b""),
        message=message,
        target=bytes.fromhex(fields[b"object"].decode()),
        target_type=ReleaseTargetType(_TARGET_TYPES[fields[b"type"]]),
        synthetic=False,
        author=tagger,
        date=date if tagger is not None else None,
        metadata=None,
    )
    return _with_manifest(rel, "tag", git_id, body)


def _tree_to_directory(git_id: bytes, body: bytes, cache: dict[bytes, DirectoryEntry]) -> Directory:
    """Convert a git tree; ``cache`` maps raw entries to DirectoryEntry objects, since most
    entries of a tree reappear unchanged in the next versions of that tree."""
    entries = []
    pos = 0
    for m in _TREE_ENTRY_RE.finditer(body):
        if m.start() != pos:
            break
        pos = m.end()
        raw = m.group(0)
        entry = cache.get(raw)
        if entry is None:
            mode = int(m.group(1), 8)
            if mode & _COMMIT_MODE_MASK == _COMMIT_MODE_MASK:
                type_ = "rev"
            elif mode & _TREE_MODE_MASK == _TREE_MODE_MASK:
                type_ = "dir"
            else:
                type_ = "file"
            # '/' is invalid in swh.model names; swh.loader.git replaces it (raw_manifest keeps it)
            name = m.group(2).replace(b"/", b"_")
            entry = DirectoryEntry(name=name, type=type_, target=raw[-20:], perms=mode)
            cache[raw] = entry
        entries.append(entry)
    if pos != len(body):
        raise ValueError(f"tree {git_id.hex()}: malformed entry at byte {pos}")
    _, directory = Directory.from_possibly_duplicated_entries(id=git_id, entries=tuple(entries))
    return _with_manifest(directory, "tree", git_id, body)
