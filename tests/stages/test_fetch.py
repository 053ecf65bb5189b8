import gzip
import hashlib
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.content_store import ContentStore
from schemas import LEDGER_SCHEMA, WALK_SCHEMA
from stages.fetch import Fetch, FetchConfig


def _row(blob_id: str | None, status: str | None = "visible", length: int = 5, skip_reason: str | None = None):
    return {
        "content_id": "c" * 40, "blob_id": blob_id, "origin_url": "https://example.org/r", "repo_name": "example.org/r",
        "snapshot_id": "s" * 40, "revision_id": "r" * 40, "directory_id": "d" * 40, "branch_name": "refs/heads/main",
        "visit_date": None, "revision_date": None, "committer_date": None,
        "path": f"/{blob_id}", "path_is_utf8": True, "length": length, "status": status, "skip_reason": skip_reason,
    }


def _store(tmp_path: Path, blobs: dict[str, bytes]) -> Path:
    (tmp_path / "content").mkdir(parents=True, exist_ok=True)
    for name, raw in blobs.items():
        (tmp_path / "content" / name).write_bytes(raw)
    return tmp_path


@pytest.fixture
def fetch(tmp_path: Path) -> Fetch:
    good = b"hello"
    sha = hashlib.sha1(good).hexdigest()
    _store(tmp_path, {
        sha: gzip.compress(good),
        "1" * 40: b"not gzip at all",
        "2" * 40: gzip.compress(b"bytes of another blob"),
        "3" * 40: gzip.compress(b"truncated blob")[:-6],
    })
    return Fetch(str(tmp_path), config=FetchConfig(max_file_bytes=100), threads=2)


@pytest.fixture
def store(fetch: Fetch) -> ContentStore:
    """The fetch stage's resource: its opened content store."""
    return fetch.setup()


def test_fetch_keeps_verified_bytes_and_ledgers_every_other_row(fetch: Fetch, store: ContentStore) -> None:
    good = hashlib.sha1(b"hello").hexdigest()
    rows = [
        _row(good),
        _row("1" * 40),
        _row("2" * 40),
        _row("3" * 40),
        _row("4" * 40),
        _row(None, status=None),
        _row("5" * 40, status="absent", skip_reason="Content too large"),
        _row("6" * 40, status="hidden"),
        _row("7" * 40, length=101),
    ]
    result = fetch.process(pa.Table.from_pylist(rows, schema=WALK_SCHEMA), store)
    assert result.kept["data"].to_pylist() == [b"hello"]
    assert result.dropped.schema == LEDGER_SCHEMA
    got = dict(zip(result.dropped["blob_id"].to_pylist(), result.dropped["reason"].to_pylist(), strict=True))
    assert got == {
        "1" * 40: "content_corrupt", "2" * 40: "content_corrupt", "3" * 40: "content_corrupt",
        "4" * 40: "content_missing", None: "content_missing", "5" * 40: "skipped_content",
        "6" * 40: "skipped_content", "7" * 40: "too_large",
    }
    details = dict(zip(result.dropped["blob_id"].to_pylist(), result.dropped["detail"].to_pylist(), strict=True))
    assert details["2" * 40].startswith("sha1 mismatch")
    assert details["1" * 40].startswith("bad gzip")
    assert details["5" * 40] == "Content too large"
    assert result.counters["in"] == 9 and result.counters["kept"] == 1
    assert result.counters["content_corrupt"] == 3
    assert set(result.dropped["stage"].to_pylist()) == {"fetch"}


def test_fetch_does_not_mutate_its_input(fetch: Fetch, store: ContentStore) -> None:
    table = pa.Table.from_pylist([_row(hashlib.sha1(b"hello").hexdigest())], schema=WALK_SCHEMA)
    before = table.to_pylist()
    fetch.process(table, store)
    assert table.to_pylist() == before and "data" not in table.column_names


def test_fetch_through_fsspec_from_a_remote_style_store() -> None:
    """A non-local fsspec store (memory://) takes the concurrent path, like s3://softwareheritage."""
    import fsspec

    fs = fsspec.filesystem("memory")
    blobs = {hashlib.sha1(f"blob {i}".encode()).hexdigest(): f"blob {i}".encode() for i in range(20)}
    for sha1, payload in blobs.items():
        fs.pipe(f"/remote-store/content/{sha1}", gzip.compress(payload))
    stage = Fetch("memory://remote-store", threads=4)
    remote = stage.setup()
    assert not remote.is_local
    rows = [_row(sha1) for sha1 in blobs] + [_row("f" * 40)]
    result = stage.process(pa.Table.from_pylist(rows, schema=WALK_SCHEMA), remote)
    assert dict(zip(result.kept["blob_id"].to_pylist(), result.kept["data"].to_pylist(), strict=True)) == blobs
    assert result.dropped["reason"].to_pylist() == ["content_missing"]
