"""The walk on exports that export-git writes from repositories made here, shaped to hit each case."""

import os
import subprocess
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from manifests.manifest import read_manifest, verify
from pipeline.cli import main
from stages.redact import private_address

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "A U Thor", "GIT_AUTHOR_EMAIL": "author@example.org",
    "GIT_COMMITTER_NAME": "C O Mitter", "GIT_COMMITTER_EMAIL": "committer@example.org",
    "GIT_AUTHOR_DATE": "2024-03-01T10:00:00+01:00", "GIT_COMMITTER_DATE": "2024-03-01T10:00:00+01:00",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], env=GIT_ENV, check=True, capture_output=True)
    return done.stdout.decode().strip()


def make_repo(path: Path, files: dict[bytes, bytes]) -> Path:
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    for name, data in files.items():
        target = os.path.join(os.fsencode(path), name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(data)
    git(path, "add", "-A")
    return path


# fake values of real shapes: none is live
FAKE_AWS_ID = "AKIA" + "QX5E7PLMNB3KT2RW"
FAKE_PASSWORD = "Tr0ub4dor&3xK-" + "horse"
FAKE_EMAIL = "maria.gonzalez" + "@acme-mail.io"
SECRETS_FILE = (
    f'AWS_ACCESS_KEY_ID = "{FAKE_AWS_ID}"\nDB_PASSWORD = "{FAKE_PASSWORD}"\n'
    f"# maintainer: {FAKE_EMAIL}\nBACKUP_HOST = '93.184.216.34'\n"
)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Three repositories exported together, and the dataset built from them."""
    root = tmp_path_factory.mktemp("generated")
    latin = "# -*- coding: latin-1 -*-\n# Données élève château\nx = 'façade'\n"
    shapes = make_repo(root / "shapes", {
        b"empty.txt": b"",
        b"caf\xe9.py": b"print('not a UTF-8 name')\n",
        b"a/b/c/d/deep.py": b"DEPTH = 4\n",
        b"img.bin": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
        b"latin.py": latin.encode("latin-1"),
        b"deploy/settings.py": SECRETS_FILE.encode(),
    })
    # a submodule entry: a gitlink to a commit that is not in this repository
    git(shapes, "update-index", "--add", "--cacheinfo", "160000," + "1" * 40 + ",vendor/lib")
    git(shapes, "commit", "-q", "-m", "shapes")
    git(shapes, "tag", "-a", "v1.0", "-m", "release 1.0")

    # HEAD dangles; the config falls back to refs/tags/v2.0, an annotated tag (a release)
    released = make_repo(root / "released", {b"src/lib.py": b"def f():\n    return 2\n"})
    git(released, "commit", "-q", "-m", "lib")
    git(released, "tag", "-a", "v2.0", "-m", "release 2.0")
    git(released, "checkout", "-q", "--detach")
    git(released, "branch", "-q", "-D", "main")
    git(released, "symbolic-ref", "HEAD", "refs/heads/gone")

    empty = root / "empty"
    subprocess.run(["git", "init", "-q", "-b", "main", str(empty)], check=True)

    export = root / "export"
    assert main(["export-git", str(shapes), str(released), str(empty), "--out", str(export),
                 "--origin-url", "https://github.com/test/shapes", "--origin-url", "https://github.com/test/released",
                 "--origin-url", "https://github.com/test/empty", "--visit-date", "2024-04-01T00:00:00Z"]) == 0
    config = root / "config.toml"
    config.write_text('[walk]\ndefault_branches = ["refs/heads/main", "refs/tags/v2.0"]\n')
    output = root / "dataset"
    import contextlib
    import io

    log = io.StringIO()
    with contextlib.redirect_stderr(log), contextlib.redirect_stdout(log):
        assert main(["run", "--version", "1", "--input", str(export), "--output", str(output),
                     "--config", str(config), "--workers", "1"]) == 0
    (root / "run.log").write_text(log.getvalue())
    return export, output / "v1"


def test_every_shape_is_walked_and_accounted_for(generated: tuple[Path, Path]) -> None:
    _, version = generated
    manifest = read_manifest(version)
    data = ds.dataset(version / "data", format="parquet").to_table()
    ledger = ds.dataset(version / "dropped", format="parquet").to_table()
    assert manifest["totals"]["files_in"] == data.num_rows + ledger.num_rows
    rows = {(r["origin_url"].rsplit("/", 1)[1], r["path"]): r for r in data.to_pylist()}
    assert set(rows) == {
        ("shapes", "/caf\\xe9.py"), ("shapes", "/a/b/c/d/deep.py"),
        ("shapes", "/latin.py"), ("shapes", "/deploy/settings.py"), ("released", "/src/lib.py"),
    }
    assert rows[("shapes", "/caf\\xe9.py")]["path_is_utf8"] is False
    assert rows[("shapes", "/latin.py")]["src_encoding"] == "ISO8859-1"
    assert "façade" in rows[("shapes", "/latin.py")]["content"]
    assert rows[("shapes", "/a/b/c/d/deep.py")]["branch_name"] == "refs/heads/main"
    assert rows[("released", "/src/lib.py")]["branch_name"] == "refs/tags/v2.0"
    # an empty .txt file is Text (kept by language), with no letters at all: the filters drop it
    assert ledger.select(["path", "stage", "reason", "detail"]).to_pylist() == [
        {"path": "/empty.txt", "stage": "filters", "reason": "low_alphabetic", "detail": "alphabetic 0.0% < 25%"},
        {"path": "/img.bin", "stage": "decode", "reason": "binary", "detail": "NUL byte in the first 8192 bytes"}]
    walk = manifest["walk"]
    assert walk["submodules_skipped"] == 1
    assert (walk["origins"], walk["origins_walked"]) == (3, 2)
    assert sum(walk["origin_problems"].values()) == 1
    assert verify(version) == []


def test_provenance_matches_git(generated: tuple[Path, Path]) -> None:
    export, version = generated
    data = ds.dataset(version / "data", format="parquet").to_table()
    shapes = export.parent / "shapes"
    row = next(r for r in data.to_pylist() if r["path"] == "/a/b/c/d/deep.py")
    assert row["revision_id"] == git(shapes, "rev-parse", "HEAD")
    assert row["directory_id"] == git(shapes, "rev-parse", "HEAD^{tree}")
    assert row["content_id"] == git(shapes, "rev-parse", "HEAD:a/b/c/d/deep.py")
    assert str(row["revision_date"]) == "2024-03-01 09:00:00+00:00"
    assert str(row["visit_date"]) == "2024-04-01 00:00:00+00:00"


def test_secrets_are_redacted_and_appear_nowhere(generated: tuple[Path, Path]) -> None:
    export, version = generated
    data = ds.dataset(version / "data", format="parquet").to_table()
    row = next(r for r in data.to_pylist() if r["path"] == "/deploy/settings.py")
    assert row["content"] == (
        'AWS_ACCESS_KEY_ID = "<KEY>"\nDB_PASSWORD = "<PASSWORD>"\n# maintainer: <EMAIL>\n'
        f"BACKUP_HOST = '{private_address('93.184.216.34')}'\n"
    )
    assert row["pii"] == [
        {"kind": "email", "count": 1}, {"kind": "ip_address", "count": 1},
        {"kind": "key", "count": 1}, {"kind": "password", "count": 1},
    ]
    counters = next(s for s in read_manifest(version)["stages"] if s["name"] == "redact")["counters"]
    assert (counters["pii_key"], counters["pii_password"], counters["pii_email"]) == (1, 1, 1)
    # not in any file of the version (shards, ledger, manifest, card, sums), nor in the run's log
    files = [p for p in version.rglob("*") if p.is_file()] + [export.parent / "run.log"]
    for secret in (FAKE_AWS_ID, FAKE_PASSWORD, FAKE_EMAIL, "93.184.216.34"):
        for path in files:
            raw = path.read_bytes()
            if path.suffix == ".parquet":
                raw = str(pq.read_table(path).to_pylist()).encode()
            assert secret.encode() not in raw, path
