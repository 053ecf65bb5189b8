"""Reading a git repository with the git CLI: refs, object types, and the stream of every
object reachable from some tips (``git rev-list --objects | git cat-file --batch``)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

_CHUNK = 2**20  # bytes read at a time from the cat-file stream (and its pipe buffer size)


def _git_env() -> dict[str, str]:
    # Drop GIT_DIR & co. inherited from a hook or a caller: they would override -C.
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}


def _git_cmd(repo: Path, *args: str) -> list[str]:
    # safe.directory: the repositories may belong to another user (e.g. extracted tarballs);
    # we only read them.
    # --no-replace-objects: export the objects as stored, whatever refs/replace/ says.
    return ["git", "--no-replace-objects", "-c", "safe.directory=*", "-C", str(repo), *args]


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(_git_cmd(repo, *args), capture_output=True, env=_git_env())
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"git {' '.join(args)} failed in {repo}: {proc.stderr.decode(errors='replace').strip()}"
        )
    return proc


def _check_repository(repo: Path) -> None:
    """Raise ValueError unless ``repo`` itself is a git repository (work tree or bare)."""
    if not repo.is_dir():
        raise ValueError(f"not a git repository (no such directory): {repo}")
    env = _git_env()
    # Do not let git find a repository in a parent folder of ``repo``.
    env["GIT_CEILING_DIRECTORIES"] = str(repo.parent)
    proc = subprocess.run(_git_cmd(repo, "rev-parse", "--git-dir"), capture_output=True, env=env)
    if proc.returncode != 0:
        raise ValueError(f"not a git repository: {repo}")


def _read_refs(repo: Path) -> tuple[dict[bytes, tuple[bytes, bytes]], bytes | None, bytes | None]:
    """Return ``({ref name: (object id, object type)}, HEAD symref target, detached HEAD id)``."""
    out = _git(repo, "for-each-ref", "--format=%(objectname) %(objecttype) %(refname)").stdout
    refs: dict[bytes, tuple[bytes, bytes]] = {}
    for line in out.splitlines():
        oid, otype, name = line.split(b" ", 2)
        if name.startswith(b"refs/pull/") and name.endswith(b"/merge"):
            continue  # swh.loader.git ignores GitHub's auto-merge refs
        refs[name] = (bytes.fromhex(oid.decode()), otype)
    head_ref = head_id = None
    sym = _git(repo, "symbolic-ref", "-q", "HEAD", check=False)
    if sym.returncode == 0:
        head_ref = sym.stdout.rstrip(b"\n")
    else:
        rev = _git(repo, "rev-parse", "-q", "--verify", "HEAD", check=False)
        if rev.returncode == 0:
            head_id = bytes.fromhex(rev.stdout.strip().decode())
    return refs, head_ref, head_id


def _object_type(repo: Path, oid: bytes) -> bytes:
    return _git(repo, "cat-file", "-t", oid.hex()).stdout.strip()


class _ObjectStream:
    """``git rev-list --objects <tips> | git cat-file --batch``: iterating yields every object
    reachable from the tips, once each, as ``(id, type, size)``; the caller must read the
    ``size`` bytes of the object from ``self.stdout`` before asking for the next one."""

    def __init__(self, repo: Path, tips: list[bytes]) -> None:
        self.repo = repo
        # files, not pipes, for stderr: nobody reads it until the end (closed in close())
        self._err_revlist: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self._err_catfile: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        env = _git_env()
        self._revlist = subprocess.Popen(
            _git_cmd(repo, "rev-list", "--objects", "--no-object-names", "--stdin"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err_revlist,
            env=env,
        )
        self._catfile = subprocess.Popen(
            _git_cmd(repo, "cat-file", "--batch", "--buffer"),
            stdin=self._revlist.stdout,
            stdout=subprocess.PIPE,
            stderr=self._err_catfile,
            env=env,
            bufsize=_CHUNK,
        )
        assert self._revlist.stdin is not None and self._revlist.stdout is not None
        self._revlist.stdout.close()  # cat-file owns the read end now
        # rev-list reads all its stdin before printing anything: no deadlock here.
        self._revlist.stdin.write(b"".join(t.hex().encode() + b"\n" for t in tips))
        self._revlist.stdin.close()
        assert self._catfile.stdout is not None
        self.stdout: IO[bytes] = self._catfile.stdout

    def __iter__(self) -> Iterator[tuple[bytes, bytes, int]]:
        readline = self.stdout.readline
        while True:
            header = readline()
            if not header:
                break
            parts = header.split()
            if len(parts) != 3:
                raise RuntimeError(f"git cat-file: object missing in {self.repo}: {header!r}")
            yield bytes.fromhex(parts[0].decode()), parts[1], int(parts[2])
            if self.stdout.read(1) != b"\n":
                raise RuntimeError(f"git cat-file: unexpected output in {self.repo}")
        self._finish()

    def _finish(self) -> None:
        for proc, err, name in (
            (self._catfile, self._err_catfile, "cat-file"),
            (self._revlist, self._err_revlist, "rev-list"),
        ):
            if proc.wait() != 0:
                err.seek(0)
                msg = err.read().decode(errors="replace").strip()
                raise RuntimeError(f"git {name} failed in {self.repo}: {msg}")

    def close(self) -> None:
        for proc in (self._catfile, self._revlist):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.stdout.close()
        self._err_revlist.close()
        self._err_catfile.close()


def _skip(stream: IO[bytes], size: int) -> None:
    while size:
        chunk = stream.read(min(_CHUNK, size))
        if not chunk:
            raise RuntimeError("git cat-file: short read")
        size -= len(chunk)


def _parse_headers(body: bytes) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
    """Split a commit/tag body into headers (continuation lines joined) and message,
    like dulwich's ``_parse_message``; message is None when there is no blank line."""
    headers: list[tuple[bytes, bytes]] = []
    pos = 0
    n = len(body)
    while pos < n:
        end = body.find(b"\n", pos)
        if end == -1:
            end = n
        line = body[pos:end]
        pos = end + 1
        if line == b"":
            return headers, body[pos:]
        if line.startswith(b" ") and headers:
            key, value = headers[-1]
            headers[-1] = (key, value + b"\n" + line[1:])
        else:
            key, _, value = line.partition(b" ")
            headers.append((key, value))
    return headers, None
