"""Storage options, read-error classes and retries; a content store behind a real HTTP server on
127.0.0.1 that fails some reads (fsspec's HTTP filesystem reads it like any other store)."""

import gzip
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.config import load_config
from pipeline.content_store import ContentStore, StoreUnreadable
from pipeline.storage import (
    FAILED,
    FORBIDDEN,
    MISSING,
    UNREACHABLE,
    StorageConfig,
    classify,
    fsspec_options,
    with_retries,
)
from schemas import WALK_SCHEMA
from stages.fetch import Fetch


def test_s3_is_anonymous_unless_credentials_are_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    assert fsspec_options("s3://softwareheritage", StorageConfig())["anon"] is True
    assert "anon" not in fsspec_options("s3://b", StorageConfig(profile="mine"))
    assert fsspec_options("s3://b", StorageConfig(profile="mine"))["profile"] == "mine"
    assert fsspec_options("s3://b", StorageConfig(anon=False))["anon"] is False
    assert fsspec_options("s3://b", StorageConfig(requester_pays=True))["requester_pays"] is True
    assert "endpoint_url" not in fsspec_options("s3://b", StorageConfig())
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    assert fsspec_options("s3://b", StorageConfig())["endpoint_url"] == "http://127.0.0.1:9000"
    assert fsspec_options("s3://b", StorageConfig(endpoint_url="http://mirror"))["endpoint_url"] == "http://mirror"
    assert fsspec_options("s3://b", StorageConfig(), {"anon": False})["anon"] is False  # the command line wins
    assert fsspec_options("/local/folder", StorageConfig()) == {}


def test_storage_section_of_the_config(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[storage]\nendpoint_url = "http://127.0.0.1:9000"\nretries = 2\n')
    loaded = load_config(config)
    assert loaded.storage.endpoint_url == "http://127.0.0.1:9000" and loaded.storage.retries == 2
    assert loaded.digest() == load_config(None).digest()  # how bytes are read is not what they are


def test_read_errors_are_classified() -> None:
    assert classify(FileNotFoundError("x")) == MISSING
    assert classify(PermissionError("Forbidden")) == FORBIDDEN
    assert classify(ConnectionRefusedError()) == UNREACHABLE
    assert classify(TimeoutError()) == FAILED
    assert classify(OSError("An error occurred (SlowDown) ... 503")) == FAILED


def test_retries_until_success_but_never_for_an_answer() -> None:
    calls: list[int] = []
    waits: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TimeoutError("read timed out")
        return "ok"

    assert with_retries(flaky, StorageConfig(retries=4), sleep=waits.append) == "ok"
    assert len(calls) == 3 and len(waits) == 2 and waits[1] > waits[0] * 0.9  # backoff grows

    calls.clear()

    def gone() -> str:
        calls.append(1)
        raise FileNotFoundError("no such blob")

    with pytest.raises(FileNotFoundError):
        with_retries(gone, StorageConfig(retries=4), sleep=waits.append)
    assert len(calls) == 1  # a 404 is an answer, not an accident

    calls.clear()

    def down() -> str:
        calls.append(1)
        raise TimeoutError("read timed out")

    with pytest.raises(TimeoutError):
        with_retries(down, StorageConfig(retries=2), sleep=lambda _: None)
    assert len(calls) == 3  # the first try and two retries


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``content/<sha1>`` from ``root``; ``broken`` blobs answer 500, ``flaky`` ones 503 twice."""

    root: Path
    broken: set[str] = set()
    flaky: dict[str, int] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        name = self.path.rsplit("/", 1)[-1]
        if name in self.broken:
            self.send_response(500)
            self.end_headers()
            return
        if self.flaky.get(name, 0) > 0:
            self.flaky[name] -= 1
            self.send_response(503)
            self.end_headers()
            return
        path = self.root / "content" / name
        if not path.is_file():
            self.send_response(404)
            self.end_headers()
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_store(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    blobs = {}
    (tmp_path / "content").mkdir()
    for text in ("ok", "broken", "flaky"):
        data = f"print('{text}')\n".encode()
        sha1 = hashlib.sha1(data).hexdigest()
        (tmp_path / "content" / sha1).write_bytes(gzip.compress(data))
        blobs[text] = sha1
    Handler.root, Handler.broken, Handler.flaky = tmp_path, {blobs["broken"]}, {blobs["flaky"]: 2}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", blobs
    finally:
        server.shutdown()


def _rows(blobs: list[str]) -> pa.Table:
    rows = [{"content_id": b, "blob_id": b, "origin_url": "https://x.org/r", "repo_name": "x.org/r",
             "snapshot_id": "s", "revision_id": "r", "directory_id": "d", "branch_name": "HEAD",
             "path": f"/{i}.py", "path_is_utf8": True, "length": 10, "status": "visible"} for i, b in enumerate(blobs)]
    return pa.Table.from_pylist(rows, schema=WALK_SCHEMA)


def test_transient_errors_are_retried_and_persistent_ones_are_ledger_rows(
        http_store: tuple[str, dict[str, str]]) -> None:
    url, blobs = http_store
    stage = Fetch(url, storage=StorageConfig(retries=3, backoff_s=0.01), threads=1)
    result = stage.process(_rows([blobs["ok"], blobs["broken"], blobs["flaky"], "0" * 40]), stage.setup())
    assert sorted(result.kept["blob_id"].to_pylist()) == sorted([blobs["ok"], blobs["flaky"]])  # 503 twice, then 200
    dropped = {r["blob_id"]: (r["reason"], r["detail"]) for r in result.dropped.to_pylist()}
    assert dropped[blobs["broken"]][0] == "fetch_failed"
    assert dropped[blobs["broken"]][1].startswith("read failed after 3 retries")
    assert dropped["0" * 40][0] == "content_missing"


def test_an_unreachable_store_stops_with_one_line() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = ContentStore(f"http://127.0.0.1:{port}", storage=StorageConfig(retries=1, backoff_s=0.01))
    with pytest.raises(StoreUnreadable, match="content store cannot be read"):
        store.check()
    stage = Fetch(f"http://127.0.0.1:{port}", storage=StorageConfig(retries=1, backoff_s=0.01), threads=1)
    with pytest.raises(StoreUnreadable, match="unreachable"):
        stage.process(_rows(["1" * 40]), stage.setup())
