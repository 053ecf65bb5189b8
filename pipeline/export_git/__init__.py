"""Export local git repositories as a Software Heritage graph export.

:func:`export_repositories` writes, for a list of local git repositories, the same files
that Software Heritage's exporter (``swh.export``, fed by the git-to-model converters of
``swh.loader.git``) writes for the public graph dataset:

- ``out/orc/<table>/<table>-<uuid>.orc``: one ZSTD-compressed ORC file per table (origin,
  origin_visit, origin_visit_status, snapshot, snapshot_branch, release, revision,
  revision_history, revision_extra_headers, directory, directory_entry, content,
  skipped_content), with the column names and types of the public dataset;
- ``out/content_store/content/<sha1>``: every exported blob, gzip-compressed, named by the
  plain SHA-1 of its bytes (the layout of ``s3://softwareheritage/content/<sha1>``).

Every object is built with ``swh.model`` and every id is computed by it. As in
``swh.loader.git``, when the id that ``swh.model`` computes for a commit, tree or tag
differs from git's own hash (unusual modes, unsorted or duplicated tree entries, odd
headers...), the raw git object (``b"<type> <len>\\0" + body``) is recorded as
``raw_manifest`` so that the id stays git's.

Choices, following what Software Heritage does:

- Objects are read with the git CLI: ``git for-each-ref`` for the refs, then
  ``git rev-list --objects`` piped into one ``git cat-file --batch`` process; blobs are
  hashed, compressed and written to the content store as they stream by (in a small
  thread pool), only metadata rows stay in memory and tables are flushed in batches.
- Persons (author, committer, tagger) are pseudonymised as in the public dataset: the
  ``author``/``committer`` columns hold ``sha256(fullname)`` (``Person.anonymize()``).
- Branches: every ref of ``git for-each-ref`` except ``refs/pull/*/merge`` (GitHub's
  auto-merge refs, which ``swh.loader.git`` ignores). A ref to a tag object is a
  ``release`` branch, to a commit a ``revision`` branch (to a tree or blob:
  ``directory``/``content``). ``HEAD`` is an ``alias`` branch to the branch it names when
  it is a symbolic ref to an exported branch, a ``revision`` branch when detached, and
  absent when unborn (like ``git upload-pack``, which does not advertise it then).
- An empty repository (no refs) gives an origin, a visit and a ``full`` visit status whose
  snapshot has no branches (id ``1a8893e6a86f444e8be8e7bda6cb34fb1735a00e``).
- Submodule entries (mode 160000) are ``rev`` directory entries; the commit they point to
  is not in the repository and is not read.
- ``max_content_size``: blobs whose length is ``>=`` it (the loader's test) go to
  ``skipped_content`` (status ``absent``, reason ``Content too large``) and not to the
  content store. Default ``None``: no limit.
- ``visit_date`` default: the latest committer (or tagger) date of the repository, so that
  re-exports are reproducible (Unix epoch for an empty repository); ``status_date``
  defaults to the visit date. Naive datetimes are taken as UTC.
- Timestamps are written as ORC timestamps (UTC, no time zone): pyarrow reads them back as
  naive ``timestamp[ns]`` values. Dates outside pyarrow's nanosecond range (before 1677 or
  after 2262) are still written exactly; read them with pyorc. Dates that ``swh.model``
  cannot represent (unparseable, or outside years 1..9999) are null, and the
  ``raw_manifest`` keeps the object's id.
- Output file names use a uuid5 of the table name and the sorted origin URLs, so exporting
  the same repositories again gives byte-identical ORC files; sub-tables share the uuid of
  their main table (directory_entry with directory, ...) as in ``swh.export``. Existing
  ``*.orc`` files in the table folders are replaced; the content store is added to.

The package's modules: :mod:`.git` reads a repository with the git CLI, :mod:`.convert` turns
its objects into ``swh.model`` objects, :mod:`.orc` writes the ORC tables and the content
store; this module walks the repositories and fills the tables.
"""

from __future__ import annotations

import collections
import os
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from swh.model.model import (
    Content,
    DirectoryEntry,
    Origin,
    OriginVisit,
    OriginVisitStatus,
    SkippedContent,
    Snapshot,
    SnapshotBranch,
    SnapshotTargetType,
)

from .convert import _TARGET_TYPES, _commit_to_revision, _tag_to_release, _tree_to_directory
from .git import _check_repository, _object_type, _ObjectStream, _read_refs, _skip
from .orc import (
    _EPOCH,
    _MAIN_TABLE,
    TABLES,
    _aware,
    _dt_micros,
    _OrcTable,
    _pseudonym,
    _store_content,
    _stream_content,
    _ts,
)

__all__ = ["TABLES", "export_repositories"]

_STREAM_BLOB_SIZE = 32 * 2**20  # larger blobs are hashed/compressed chunk by chunk
_MAX_PENDING_BYTES = 128 * 2**20  # bound on blob bytes queued for the thread pool
_ENTRY_CACHE_SIZE = 1_000_000  # cleared when full: bounds memory on huge repositories


class _Exporter:
    def __init__(self, out: Path, table_uuids: dict[str, str], max_content_size: int | None) -> None:
        self.store = out / "content_store" / "content"
        self.store.mkdir(parents=True, exist_ok=True)
        self.max_content_size = max_content_size
        self.tables: dict[str, _OrcTable] = {}
        for name in TABLES:
            folder = out / "orc" / name
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{name}-{table_uuids[_MAIN_TABLE.get(name, name)]}.orc"
            self.tables[name] = _OrcTable(name, path)
        # ids already written (dedupe across repositories); revisions/releases map to
        # their committer/tagger time (to default the visit date of each repository)
        self.seen_contents: set[bytes] = set()
        self.seen_dirs: set[bytes] = set()
        self.entry_cache: dict[bytes, DirectoryEntry] = {}
        self.seen_dated: dict[bytes, int | None] = {}
        self.seen_snapshots: set[bytes] = set()
        self.visits: dict[str, int] = {}  # origin URL → visits written so far
        self.pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))
        self.pending: collections.deque[Future[Content | SkippedContent]] = collections.deque()
        self.pending_sizes: collections.deque[int] = collections.deque()
        self.pending_bytes = 0

    # -- contents

    def _add_content(self, content: Content | SkippedContent) -> None:
        hashes = (content.sha1.hex(), content.sha1_git.hex(), content.sha256.hex(), content.blake2s256.hex())
        if isinstance(content, SkippedContent):
            self.tables["skipped_content"].add(*hashes, content.length, content.status, content.reason)
        else:
            self.tables["content"].add(*hashes, content.length, content.status, None)

    def _wait_pending(self, max_bytes: int) -> None:
        while self.pending and self.pending_bytes > max_bytes:
            self._add_content(self.pending.popleft().result())
            self.pending_bytes -= self.pending_sizes.popleft()

    def _blob(self, git_id: bytes, size: int, stream: IO[bytes]) -> None:
        if size >= _STREAM_BLOB_SIZE:
            self._wait_pending(0)  # keep rows in object order
            self._add_content(
                _stream_content(git_id, size, stream, self.store, self.max_content_size)
            )
            return
        data = stream.read(size)
        if len(data) != size:
            raise RuntimeError(f"git cat-file: short read for blob {git_id.hex()}")
        # hashlib and zlib release the GIL: hash+compress+write in parallel, rows in order
        self.pending.append(self.pool.submit(_store_content, git_id, data, self.store, self.max_content_size))
        self.pending_sizes.append(size + 1)
        self.pending_bytes += size + 1
        self._wait_pending(_MAX_PENDING_BYTES)

    # -- other objects

    def _directory(self, git_id: bytes, body: bytes) -> None:
        if len(self.entry_cache) > _ENTRY_CACHE_SIZE:
            self.entry_cache.clear()
        directory = _tree_to_directory(git_id, body, self.entry_cache)
        dir_hex = git_id.hex()
        self.tables["directory"].add(dir_hex, directory.raw_manifest)
        entries = directory.entries
        self.tables["directory_entry"].extend(
            [dir_hex] * len(entries),
            [e.name for e in entries],
            [e.type for e in entries],
            [e.target.hex() for e in entries],
            [e.perms for e in entries],
        )

    def _revision(self, git_id: bytes, body: bytes) -> int | None:
        rev = _commit_to_revision(git_id, body)
        rev_hex = git_id.hex()
        date, date_offset, date_raw = _ts(rev.date)
        cdate, cdate_offset, cdate_raw = _ts(rev.committer_date)
        self.tables["revision"].add(
            rev_hex,
            rev.message,
            _pseudonym(rev.author),
            date,
            date_offset,
            date_raw,
            _pseudonym(rev.committer),
            cdate,
            cdate_offset,
            cdate_raw,
            rev.directory.hex(),
            rev.type.value,
            rev.raw_manifest,
        )
        for rank, parent in enumerate(rev.parents):
            self.tables["revision_history"].add(rev_hex, parent.hex(), rank)
        for key, value in rev.extra_headers:
            self.tables["revision_extra_headers"].add(rev_hex, key, value)
        return cdate

    def _release(self, git_id: bytes, body: bytes) -> int | None:
        rel = _tag_to_release(git_id, body)
        date, date_offset, date_raw = _ts(rel.date)
        self.tables["release"].add(
            git_id.hex(),
            rel.name,
            rel.message,
            rel.target.hex() if rel.target is not None else None,
            rel.target_type.value,
            _pseudonym(rel.author),
            date,
            date_offset,
            date_raw,
            rel.raw_manifest,
        )
        return date

    def _objects(self, repo: Path, tips: list[bytes]) -> int | None:
        """Export every object reachable from ``tips``; return the latest commit/tag time."""
        latest: int | None = None
        stream = _ObjectStream(repo, tips)
        try:
            out = stream.stdout
            for git_id, otype, size in stream:
                if otype == b"blob":
                    if git_id in self.seen_contents:
                        _skip(out, size)
                    else:
                        self.seen_contents.add(git_id)
                        self._blob(git_id, size, out)
                    continue
                body = out.read(size)
                if len(body) != size:
                    raise RuntimeError(f"git cat-file: short read for {git_id.hex()}")
                try:
                    if otype == b"tree":
                        if git_id not in self.seen_dirs:
                            self.seen_dirs.add(git_id)
                            self._directory(git_id, body)
                        continue
                    if git_id not in self.seen_dated:
                        if otype == b"commit":
                            self.seen_dated[git_id] = self._revision(git_id, body)
                        elif otype == b"tag":
                            self.seen_dated[git_id] = self._release(git_id, body)
                        else:
                            raise ValueError(f"unknown object type {otype!r}")
                except (ValueError, KeyError, TypeError) as exc:
                    raise ValueError(
                        f"{repo}: cannot convert {otype.decode()} {git_id.hex()}: {exc}"
                    ) from exc
                when = self.seen_dated[git_id]
                if when is not None and (latest is None or when > latest):
                    latest = when
        finally:
            stream.close()
        self._wait_pending(0)
        return latest

    # -- origins

    def export_repository(
        self, repo: Path, url: str, visit_date: datetime | None, status_date: datetime | None
    ) -> None:
        refs, head_ref, head_id = _read_refs(repo)
        branches: dict[bytes, SnapshotBranch] = {}
        for name, (oid, otype) in refs.items():
            branches[name] = SnapshotBranch(target=oid, target_type=SnapshotTargetType(_TARGET_TYPES[otype]))
        if head_ref is not None and head_ref in branches:
            branches[b"HEAD"] = SnapshotBranch(target=head_ref, target_type=SnapshotTargetType.ALIAS)
        elif head_id is not None:
            otype = _object_type(repo, head_id)
            branches[b"HEAD"] = SnapshotBranch(
                target=head_id, target_type=SnapshotTargetType(_TARGET_TYPES[otype])
            )
        snapshot = Snapshot(branches=branches)

        tips = sorted({b.target for b in branches.values() if b.target_type != SnapshotTargetType.ALIAS})
        latest = self._objects(repo, tips) if tips else None

        if snapshot.id not in self.seen_snapshots:
            self.seen_snapshots.add(snapshot.id)
            snap_hex = snapshot.id.hex()
            self.tables["snapshot"].add(snap_hex)
            for name in sorted(snapshot.branches):
                branch = snapshot.branches[name]
                assert branch is not None
                self.tables["snapshot_branch"].add(
                    snap_hex, name, branch.target.hex(), branch.target_type.value
                )

        if visit_date is None:
            visit_date = _EPOCH + timedelta(microseconds=latest or 0)
        status_date = status_date or visit_date
        origin = Origin(url=url)
        number = self.visits.get(url, 0) + 1
        self.visits[url] = number
        visit = OriginVisit(origin=url, date=visit_date, type="git", visit=number)
        status = OriginVisitStatus(
            origin=url, visit=number, date=status_date, status="full", snapshot=snapshot.id, type="git"
        )
        if number == 1:
            self.tables["origin"].add(origin.id.hex(), origin.url)
        self.tables["origin_visit"].add(visit.origin, visit.visit, _dt_micros(visit.date), visit.type)
        self.tables["origin_visit_status"].add(
            status.origin,
            status.visit,
            _dt_micros(status.date),
            status.status,
            snapshot.id.hex(),
            status.type,
        )

    def close(self) -> dict[str, int]:
        self.pool.shutdown()
        for table in self.tables.values():
            table.close()
        return {name: table.rows for name, table in self.tables.items()}

    def abort(self) -> None:
        for fut in self.pending:
            fut.cancel()
        self.pool.shutdown()
        for table in self.tables.values():
            table.abort()



def export_repositories(
    repo_dirs: list[Path],
    out: Path,
    origin_urls: list[str] | None = None,
    visit_date: datetime | None = None,
    status_date: datetime | None = None,
    max_content_size: int | None = None,
) -> dict[str, int]:
    """Write a Software Heritage graph export (ORC tables + content store) of git repositories.

    Args:
        repo_dirs: local git repositories (work trees or bare), one origin each; a URL given
            more than once makes one origin with a visit per repository, numbered in order
            (the same project seen at several times).
        out: export folder; ``out/orc/<table>/`` and ``out/content_store/content/`` are
            created (existing ``*.orc`` files in the table folders are replaced).
        origin_urls: origin URL of each repository (same order); default
            ``file://<absolute path>``.
        visit_date: date of visit 1 of every origin (naive means UTC); default: the latest
            commit/tag date of each repository (Unix epoch for an empty one).
        status_date: date of the ``full`` visit status; default: the visit date.
        max_content_size: blobs of this length or more go to ``skipped_content`` instead
            of the content store; default no limit.

    Returns:
        The number of rows written per table, e.g. ``{"content": 6, "directory": 7, ...}``.

    Raises:
        ValueError: a directory is not a git repository, the URLs do not match the
            directories one to one, or an object cannot be converted.
    """
    repos = [Path(d).resolve() for d in repo_dirs]
    if origin_urls is None:
        urls = [r.as_uri() for r in repos]
    else:
        urls = list(origin_urls)
        if len(urls) != len(repos):
            raise ValueError(f"{len(urls)} origin urls for {len(repos)} repositories")
    for repo in repos:
        _check_repository(repo)
    visit_date = _aware(visit_date)
    status_date = _aware(status_date)

    key = "\n".join(sorted(set(urls)))
    table_uuids = {
        name: str(uuid.uuid5(uuid.NAMESPACE_URL, f"swh-export-git:{name}:{key}")) for name in TABLES
    }
    out = Path(out)
    exporter = _Exporter(out, table_uuids, max_content_size)
    try:
        for repo, url in zip(repos, urls, strict=True):
            exporter.export_repository(repo, url, visit_date, status_date)
    except BaseException:
        exporter.abort()
        raise
    return exporter.close()
