"""Credentials inside origin URLs (``https://user:token@host/...``) never reach a shard, the ledger, the
manifest, the card, the site page or the log: the walk removes the userinfo when it reads the origins."""

import contextlib
import io
import json
import os
import subprocess
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from manifests.manifest import read_manifest, verify
from pipeline.cli import main
from pipeline.optout import load_registry
from pipeline.walk import repo_name, strip_url_credentials

# made up here; none is live
TOKEN = "ghp_" + "Q7wErT9yUi2oP4aS6dF8gH0jK1lZ3xC5vB7n"
GITLAB_TOKEN = "glpat-" + "Xy7Kq2Lm9Np4Rt8Vw3Zb"
PASSWORD = "s3cr3t-" + "Pa55w0rd"
ORIGINS = {
    "widgets": f"https://ci-bot:{TOKEN}@github.com/acme/widgets.git",
    "tools": f"https://oauth2:{GITLAB_TOKEN}@gitlab.com/team/sub/tools",
    "plain": f"https://{TOKEN[::-1]}@codeberg.org/someone/plain",  # a token alone, as the user
    "clean": "https://github.com/acme/clean",
}
SECRETS = (TOKEN, TOKEN[::-1], GITLAB_TOKEN, PASSWORD, "ci-bot", "oauth2:")
ENV = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@example.org", "GIT_COMMITTER_NAME": "a",
       "GIT_COMMITTER_EMAIL": "a@example.org", "GIT_AUTHOR_DATE": "2024-03-01T10:00:00Z",
       "GIT_COMMITTER_DATE": "2024-03-01T10:00:00Z"}


def make_repo(path: Path, files: dict[str, str]) -> Path:
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    subprocess.run(["git", "-C", str(path), "add", "-A"], check=True, env=ENV)
    subprocess.run(["git", "-C", str(path), "commit", "-q", "-m", "c"], check=True, env=ENV)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("credentials")
    repos = [make_repo(root / name, {"src/main.py": f"def {name}():\n    return {i}\n",
                                     "notes.txt": "", "img.bin": "\x00" * 10})
             for i, name in enumerate(ORIGINS)]
    export = root / "export"
    urls = [arg for url in ORIGINS.values() for arg in ("--origin-url", url)]
    assert main(["export-git", *map(str, repos), "--out", str(export), *urls]) == 0
    # the export itself holds the URLs as given (as Software Heritage's would)
    origin_files = list((export / "orc" / "origin").glob("*.orc"))
    assert origin_files
    output = root / "dataset"
    log = io.StringIO()
    with contextlib.redirect_stderr(log), contextlib.redirect_stdout(log):
        assert main(["run", "--version", "1", "--input", str(export), "--output", str(output), "--workers", "1"]) == 0
    return output, log.getvalue()


def test_no_credential_reaches_any_output_or_the_log(built: tuple[Path, str]) -> None:
    output, log = built
    assert not any(secret in log for secret in SECRETS)
    files = [p for p in output.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files) and any(p.name == "manifest.json" for p in files)
    for path in files:
        if path.suffix == ".parquet":  # compressed: look at the values
            text = json.dumps(pq.read_table(path).to_pylist(), default=str)
        else:
            text = path.read_bytes().decode("utf-8", errors="replace")
        for secret in SECRETS:
            assert secret not in text, (path.relative_to(output), secret)


def test_origins_are_the_urls_without_userinfo_and_are_counted(built: tuple[Path, str]) -> None:
    output, log = built
    version = output / "v1"
    data = ds.dataset(version / "data", format="parquet").to_table()
    ledger = ds.dataset(version / "dropped", format="parquet").to_table()
    expected = {"https://github.com/acme/widgets.git", "https://gitlab.com/team/sub/tools",
                "https://codeberg.org/someone/plain", "https://github.com/acme/clean"}
    assert set(data["origin_url"].to_pylist()) == expected
    assert set(ledger["origin_url"].to_pylist()) == expected  # notes.txt and img.bin of each
    assert set(data["repo_name"].to_pylist()) == {"acme/widgets", "gitlab.com/team/sub/tools", "someone/plain",
                                                  "acme/clean"}
    manifest = read_manifest(version)
    assert manifest["walk"]["origins"] == 4 and manifest["walk"]["origins_walked"] == 4
    assert manifest["walk"]["origins_with_credentials"] == 3
    assert "3 origin URL(s) held credentials" in log
    assert verify(version) == []


def test_lookup_and_opt_out_match_the_sanitised_origin(built: tuple[Path, str], tmp_path: Path) -> None:
    output, _ = built
    for target in ("acme/widgets", "https://github.com/acme/widgets", ORIGINS["widgets"]):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["lookup", target, "--output", str(output), "--json"]) == 0
        answer = json.loads(out.getvalue())
        assert "/src/main.py" in json.dumps(answer), target
        assert TOKEN not in json.dumps(answer["versions"]), target  # only the target as typed is echoed
    registry = tmp_path / "opt-out.txt"
    registry.write_text(f"{ORIGINS['tools']} 2024-01-01 asked by mail\nacme/widgets 2024-01-01\n")
    loaded = load_registry(registry)
    url = strip_url_credentials(ORIGINS["tools"])
    assert loaded.match(url, repo_name(url)) is not None
    url = strip_url_credentials(ORIGINS["widgets"])
    assert loaded.match(url, repo_name(url)) is not None
    assert loaded.match("https://github.com/acme/clean", "acme/clean") is None
