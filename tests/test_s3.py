"""``s3://`` exports and content stores through a real S3-protocol server (moto's) on 127.0.0.1.

The bucket holds the bundled export in the public archive's layout: ``graph/<date>/orc/<table>/``
and ``content/<sha1>`` at the bucket root, public-read by bucket policy. Every run is a
``python -m pipeline`` process with no AWS credentials in its environment and no ``~/.aws``; the
endpoint comes from ``AWS_ENDPOINT_URL``, as the AWS SDKs read it.
"""

import gzip
import hashlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from manifests.manifest import read_manifest, verify

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample-export"
BUCKET = "softwareheritage-test"
GRAPH = "graph/2024-05-16"


def _policy(denied: list[str]) -> str:
    statements = [{"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"],
                   "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]}]
    statements += [{"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{BUCKET}/{key}"} for key in denied]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


class Server:
    """moto's S3 server on loopback with the sample export uploaded; ``admin`` has credentials."""

    def __init__(self) -> None:
        import boto3
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        self.admin = boto3.client("s3", endpoint_url=self.url, aws_access_key_id="admin",
                                  aws_secret_access_key="admin", region_name="us-east-1")
        self.admin.create_bucket(Bucket=BUCKET)
        for path in sorted((SAMPLE / "orc").rglob("*.orc")):
            self.admin.upload_file(str(path), BUCKET, f"{GRAPH}/orc/{path.relative_to(SAMPLE / 'orc')}")
        self.blobs = sorted(p.name for p in (SAMPLE / "content_store" / "content").iterdir())
        for name in self.blobs:
            self.admin.upload_file(str(SAMPLE / "content_store" / "content" / name), BUCKET, f"content/{name}")
        self.admin.put_bucket_policy(Bucket=BUCKET, Policy=_policy([]))

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    try:
        yield s
    finally:
        s.stop()


def run(output: Path, home: Path, endpoint: str, *args: str, workers: int = 1) -> subprocess.CompletedProcess:
    """A build in a process with no credentials: no AWS_* variables but the endpoint, an empty HOME
    (``workers``: 1 builds in that process, without Dask; more are Dask worker processes)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(home), AWS_ENDPOINT_URL=endpoint, AWS_EC2_METADATA_DISABLED="true")
    home.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "pipeline", "run", "--version", "1", "--output", str(output), "--workers",
               str(workers), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def shards(version: Path) -> dict[str, str]:
    return {s["path"]: s["sha256"] for s in read_manifest(version)["shards"]}


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same export built from the local folder."""
    output = tmp_path_factory.mktemp("local")
    done = run(output, tmp_path_factory.mktemp("home"), "http://127.0.0.1:9", "--input", str(SAMPLE))
    assert done.returncode == 0, done.stderr[-2000:]
    return output / "v1"


def test_an_s3_export_and_store_read_anonymously_give_the_same_shards(
        server: Server, local: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="werkzeug")  # the server's request log
    done = run(tmp_path / "out", tmp_path / "home", server.url, "--input", f"s3://{BUCKET}/{GRAPH}",
               "--content-store", f"s3://{BUCKET}")
    assert done.returncode == 0, done.stderr[-3000:]
    version = tmp_path / "out" / "v1"
    assert verify(version) == []
    assert shards(version) == shards(local)  # data and ledger shards, byte for byte
    requests = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    blob_gets = [m for m in requests if "GET /softwareheritage-test/content/" in m]
    assert len(blob_gets) > 40  # the blobs of the walked trees were read ...
    assert not [m for m in requests if '"HEAD ' in m]  # ... with one GET each: no HEAD, blobs or ORC files


def test_an_s3_build_on_dask_worker_processes_gives_the_same_shards(server: Server, local: Path,
                                                                     tmp_path: Path) -> None:
    """The same bucket read by two Dask worker processes, each with its own s3fs clients."""
    done = run(tmp_path / "out", tmp_path / "home", server.url, "--input", f"s3://{BUCKET}/{GRAPH}",
               "--content-store", f"s3://{BUCKET}", workers=2)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "engine: this process" not in done.stderr
    assert shards(tmp_path / "out" / "v1") == shards(local)


def test_a_missing_a_truncated_and_a_denied_blob_are_three_ledger_rows(server: Server, local: Path,
                                                                         tmp_path: Path) -> None:
    missing, truncated, denied = server.blobs[:3]
    server.admin.delete_object(Bucket=BUCKET, Key=f"content/{missing}")
    raw = (SAMPLE / "content_store" / "content" / truncated).read_bytes()
    server.admin.put_object(Bucket=BUCKET, Key=f"content/{truncated}", Body=raw[: len(raw) // 2])
    server.admin.put_bucket_policy(Bucket=BUCKET, Policy=_policy([f"content/{denied}"]))
    done = run(tmp_path / "out", tmp_path / "home", server.url, "--input", f"s3://{BUCKET}/{GRAPH}",
               "--content-store", f"s3://{BUCKET}")
    assert done.returncode == 0, done.stderr[-3000:]
    version = tmp_path / "out" / "v1"
    assert verify(version) == []
    ledger = ds.dataset(version / "dropped", format="parquet").to_table().to_pylist()
    fetch = {r["blob_id"]: (r["reason"], r["detail"]) for r in ledger if r["stage"] == "fetch"}
    reference = {r["blob_id"] for r in ds.dataset(local / "dropped", format="parquet").to_table().to_pylist()
                 if r["stage"] == "fetch"}
    new = {b: why for b, why in fetch.items() if b not in reference}
    assert new[missing][0] == "content_missing"
    assert new[truncated][0] == "content_corrupt" and "gzip" in new[truncated][1]
    assert new[denied][0] == "fetch_failed" and new[denied][1].startswith("forbidden")
    assert len(new) == 3
    manifest = read_manifest(version)
    assert manifest["totals"]["files_in"] == manifest["totals"]["files_kept"] + manifest["totals"]["files_dropped"]


def test_a_stopped_server_is_one_clear_line(server: Server, tmp_path: Path) -> None:
    url = server.url
    server.stop()
    for args in (["--input", f"s3://{BUCKET}/{GRAPH}", "--content-store", f"s3://{BUCKET}"],
                 ["--input", str(SAMPLE), "--content-store", f"s3://{BUCKET}"]):
        done = run(tmp_path / "out", tmp_path / "home", url, *args)
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in done.stderr, done.stderr
        assert "read" in lines[0] and ("export" in lines[0] or "content store" in lines[0])
    assert not (tmp_path / "out" / "v1").exists()


def test_blob_names_are_their_sha1() -> None:
    """The layout the server holds is the archive's: each blob's name is the SHA-1 of its bytes."""
    name = sorted(p.name for p in (SAMPLE / "content_store" / "content").iterdir())[0]
    data = gzip.decompress((SAMPLE / "content_store" / "content" / name).read_bytes())
    assert hashlib.sha1(data).hexdigest() == name
