"""Quality and speed of the redaction stage, on real code nobody here wrote.

    python benchmarks/redaction.py [--mb 40] [--seed 7]

1. Speed: the redaction stage over real source files from this machine (Python standard library
   and installed packages, C headers, Perl, JavaScript, Java), one process, one core; and
   detect-secrets run line by line over a small sample of the same files, for comparison.
2. False alarms: redactions per MB on the unmodified files, per kind (emails and public addresses
   in real code are real personal data, so the figure that measures false alarms is keys and
   passwords; a sample of their contexts is printed with the value masked for review).
3. Recall: seeded, random, realistic-format fake secrets of every kind planted into real files,
   in the places they occur in real code (string assignments, .env, YAML, JSON, shell, Dockerfiles,
   notebooks, comments, INI); a planted value counts as found if it is gone from the output of a
   file the stage kept. A file the stage dropped (redaction_failed) is not written, so nothing leaks,
   but nothing was found either: it counts as a miss, and the dropped files are reported apart.
   Hex digests, UUIDs, git SHAs and ``integrity=`` values are planted too: none may be touched.

Prints Markdown for docs/quality.md and docs/performance.md. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import string
import sys
import sysconfig
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa

from stages.redact import KINDS, Redact

SOURCE_SUFFIXES = (".py", ".c", ".h", ".js", ".java", ".pl", ".pm", ".json", ".cfg", ".ini", ".toml", ".sh", ".yaml",
                   ".yml", ".txt", ".md", ".rst", ".html", ".xml")


def real_files(limit_bytes: int, seed: int) -> list[tuple[str, str]]:
    """(path, text) of real source files, a seeded sample across ecosystems, about ``limit_bytes``."""
    paths = sysconfig.get_paths()
    roots = [Path(paths["stdlib"]), Path(paths["purelib"]), Path("/usr/include"), Path("/usr/share/perl"),
             Path("/usr/lib/node_modules")]
    candidates = []
    for root in roots:
        if root.is_dir():
            candidates += [p for p in root.rglob("*") if p.suffix in SOURCE_SUFFIXES and p.is_file()
                           and not p.is_symlink() and "__pycache__" not in p.parts]
    random.Random(seed).shuffle(candidates)
    out, total = [], 0
    for path in candidates:
        try:
            text = path.read_text("utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if not text or len(text) > 2_000_000:
            continue
        out.append((str(path), text))
        total += len(text.encode())
        if total >= limit_bytes:
            break
    return out


def table_of(files: list[tuple[str, str]]) -> pa.Table:
    from schemas import DECODED_SCHEMA

    n = len(files)
    columns = {f.name: [None] * n for f in DECODED_SCHEMA}
    columns.update({
        "blob_id": ["0" * 40] * n, "content_id": ["0" * 40] * n, "sha256": ["0" * 64] * n,
        "origin_url": ["https://x.org/r"] * n, "repo_name": ["x.org/r"] * n, "snapshot_id": ["s"] * n,
        "revision_id": ["r"] * n, "directory_id": ["d"] * n, "branch_name": ["HEAD"] * n,
        "path": ["/" + p.lstrip("/") for p, _ in files], "path_is_utf8": [True] * n, "extension": [""] * n,
        "length_bytes": [len(t.encode()) for _, t in files], "src_encoding": ["UTF-8"] * n,
        "content": [t for _, t in files],
    })
    return pa.table(columns, schema=DECODED_SCHEMA)


# ---------------------------------------------------------------- fake secrets of the real shapes
class Fakes:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def chars(self, alphabet: str, n: int) -> str:
        return "".join(self.r.choice(alphabet) for _ in range(n))

    def b62(self, n: int) -> str:
        return self.chars(string.ascii_letters + string.digits, n)

    def kinds(self) -> dict[str, tuple[str, str]]:
        """kind → (value, tag) with a fresh random value each call."""
        hexd = "0123456789abcdef"
        upper_digits = string.ascii_uppercase + string.digits
        pem_body = base64.encodebytes(self.r.randbytes(600)).decode().strip()
        header = {"alg": "HS256", "typ": "JWT"}
        payload = {"sub": str(self.r.randrange(10**9)), "name": self.b62(8), "iat": self.r.randrange(10**9)}
        jwt = ".".join(base64.urlsafe_b64encode(json.dumps(x).encode()).decode().rstrip("=") for x in (header, payload))
        jwt += "." + base64.urlsafe_b64encode(self.r.randbytes(32)).decode().rstrip("=")
        first, last = self.r.choice(NAMES), self.r.choice(NAMES)
        return {
            "aws_access_key_id": ("AKIA" + self.chars(string.ascii_uppercase + "234567", 16), "<KEY>"),
            "aws_secret_key": (self.chars(string.ascii_letters + string.digits + "/+", 40), "<KEY>"),
            "github_token": (self.r.choice(["ghp_", "gho_", "ghs_"]) + self.b62(36), "<KEY>"),
            "github_pat": ("github_pat_" + self.b62(22) + "_" + self.b62(59), "<KEY>"),
            "slack_token": (f"xoxb-{self.r.randrange(10**11, 10**12)}-{self.r.randrange(10**12, 10**13)}-"
                            + self.b62(24), "<KEY>"),
            "slack_webhook": ("https://hooks.slack.com/services/T" + self.chars(upper_digits, 8)
                              + "/B" + self.chars(upper_digits, 8) + "/" + self.b62(24), "<KEY>"),
            "stripe_key": (self.r.choice(["sk_live_", "rk_live_"]) + self.b62(24), "<KEY>"),
            "twilio_sid": ("AC" + self.chars(hexd, 32), "<KEY>"),
            "sendgrid_key": ("SG." + self.chars(string.ascii_letters + string.digits + "-_", 22) + "."
                             + self.chars(string.ascii_letters + string.digits + "-_", 43), "<KEY>"),
            "mailchimp_key": (self.chars(hexd, 32) + "-us" + str(self.r.randrange(1, 20)), "<KEY>"),
            "npm_token": ("npm_" + self.b62(36), "<KEY>"),
            "azure_storage_key": ("AccountKey=" + base64.b64encode(self.r.randbytes(64)).decode(), "<KEY>"),
            "gcp_api_key": ("AIza" + self.chars(string.ascii_letters + string.digits + "-_", 35), "<KEY>"),
            "jwt": (jwt, "<KEY>"),
            "private_key": (f"-----BEGIN RSA PRIVATE KEY-----\n{pem_body}\n-----END RSA PRIVATE KEY-----", "<KEY>"),
            "basic_auth_password": (self.b62(8) + self.r.choice("!#%*") + self.b62(4), "<KEY>"),
            "high_entropy_secret": (self.chars(string.ascii_letters + string.digits + "+/", 40), "<KEY>"),
            "password": (self.r.choice(WORDS).capitalize() + self.r.choice("!#$%&*") + str(self.r.randrange(10, 9999))
                         + self.r.choice(WORDS), "<PASSWORD>"),
            "email": (f"{first}.{last}{self.r.randrange(100)}@{self.r.choice(DOMAINS)}", "<EMAIL>"),
            "ipv4": (f"{self.r.choice([23, 45, 62, 81, 104, 151, 185, 199])}.{self.r.randrange(256)}."
                     f"{self.r.randrange(256)}.{self.r.randrange(1, 255)}", "ip"),
            "ipv6": (f"2a0{self.r.randrange(1, 9)}:{self.chars(hexd, 4)}:{self.chars(hexd, 4)}::{self.chars(hexd, 3)}",
                     "ip"),
        }

    def benign(self) -> dict[str, str]:
        """Values that look random but are ordinary code: none may be redacted."""
        hexd = "0123456789abcdef"
        return {
            "sha1_git": self.chars(hexd, 40),
            "sha256": self.chars(hexd, 64),
            "md5": self.chars(hexd, 32),
            "uuid": str(uuid.UUID(int=self.r.getrandbits(128))),
            "integrity": "sha512-" + base64.b64encode(self.r.randbytes(64)).decode(),
        }


NAMES = ["alice", "bob", "chen", "dmitri", "elena", "farid", "grace", "hiro", "ines", "jamal", "kofi", "lena"]
DOMAINS = ["gmail.com", "outlook.com", "acme-corp.io", "uni-hamburg.de", "mail.ru", "protonmail.ch", "qq.com"]
WORDS = ["tiger", "orbit", "maple", "quartz", "violet", "harbor", "falcon", "ember", "nimbus", "cobalt"]

# Where secrets occur in real code: (file suffix, template). {v} is the value.
CONTEXTS: dict[str, list[tuple[str, str]]] = {
    "default": [
        (".py", 'API_TOKEN = "{v}"'),
        (".py", "    client = Client(key='{v}')"),
        (".js", 'const token = "{v}";'),
        (".json", '  "token": "{v}",'),
        (".yaml", "  token: {v}"),
        (".env", "SERVICE_TOKEN={v}"),
        (".sh", 'export TOKEN="{v}"'),
        ("Dockerfile", "ENV ACCESS_TOKEN={v}"),
        (".ipynb", '    "api_key = \\"{v}\\"\\n",'),
        (".py", "# token for the staging bot: {v}"),
        (".ini", "token = {v}"),
    ],
    "aws_secret_key": [
        (".ini", "aws_secret_access_key = {v}"),
        (".py", 'AWS_SECRET_ACCESS_KEY = "{v}"'),
        (".env", "AWS_SECRET_ACCESS_KEY={v}"),
        (".yaml", "  aws_secret_access_key: {v}"),
        (".sh", "export AWS_SECRET_ACCESS_KEY={v}"),
        (".json", '  "aws_secret_access_key": "{v}",'),
    ],
    "private_key": [
        (".py", 'KEY = """{v}"""'),
        (".pem", "{v}"),
        (".json", '  "private_key": "{v_json}",'),
        (".yaml", "  key: |\n    {v_indented}"),
    ],
    "basic_auth_password": [
        (".py", 'DB_URL = "postgresql://app:{v}@db.example.internal:5432/main"'),
        (".env", "REDIS_URL=redis://default:{v}@cache.internal:6379"),
        (".yaml", "  url: https://deploy:{v}@git.internal/repo.git"),
        (".sh", "git clone https://ci-bot:{v}@git.internal/team/repo.git"),
    ],
    "high_entropy_secret": [
        (".py", 'SECRET_KEY = "{v}"'),
        (".js", "const signingSecret = '{v}';"),
        (".json", '  "client_secret": "{v}",'),
        (".yaml", '  webhook_secret: "{v}"'),
        (".env", "APP_SECRET={v}"),
    ],
    "password": [
        (".py", 'DATABASE_PASSWORD = "{v}"'),
        (".py", "    conn = connect(user='app', password='{v}')"),
        (".js", 'const password = "{v}";'),
        (".env", "DB_PASSWORD={v}"),
        (".yaml", "  password: {v}"),
        (".yaml", "  passwd: '{v}'"),
        (".ini", "password = {v}"),
        (".json", '  "password": "{v}",'),
        ("Dockerfile", "ENV POSTGRES_PASSWORD={v}"),
        (".sh", "export MYSQL_PWD='{v}'"),
        (".properties", "spring.datasource.password={v}"),
    ],
    "email": [
        (".py", '__author_email__ = "{v}"'),
        (".py", "# Contact: {v}"),
        (".md", "Maintained by Jane Doe <{v}>."),
        (".json", '  "author": "Someone <{v}>",'),
        (".yaml", "  email: {v}"),
        (".txt", "Questions to {v} please."),
    ],
    "ipv4": [
        (".py", 'HOST = "{v}"'),
        (".yaml", "  host: {v}"),
        (".conf", "server {v}:8080;"),
        (".sh", "ssh deploy@{v}"),
        (".txt", "Connected from {v} at 10:42"),
    ],
    "benign": [
        (".py", 'EXPECTED = "{v}"'),
        (".json", '  "integrity": "{v}",'),
        (".js", "const commit = '{v}';"),
        (".yaml", "  checksum: {v}"),
        (".py", "request_id = '{v}'"),
    ],
}
CONTEXTS["ipv6"] = CONTEXTS["ipv4"]


def plant(host: str, line: str, r: random.Random) -> str:
    lines = host.splitlines(keepends=True)
    at = r.randrange(len(lines) + 1)
    return "".join(lines[:at]) + ("\n" if at and not lines[at - 1].endswith("\n") else "") + line + "\n" + "".join(
        lines[at:])


def render(template: str, value: str) -> str:
    return template.format(v=value, v_json=value.replace("\n", "\\n"), v_indented=value.replace("\n", "\n    "))


def planted_corpus(hosts: list[tuple[str, str]], seed: int, per_kind: int) -> list[tuple[str, str, str, str, str]]:
    """(path, text, kind, value, tag) with one planted value per file."""
    fakes, r = Fakes(seed), random.Random(seed + 1)
    by_suffix: dict[str, list[str]] = defaultdict(list)
    for path, text in hosts:
        by_suffix[Path(path).suffix].append(text)
    all_hosts = [t for _, t in hosts]
    out = []
    kinds = list(fakes.kinds())
    for kind in kinds + ["benign"]:
        for i in range(per_kind):
            suffix, template = r.choice(CONTEXTS.get(kind, CONTEXTS["default"]))
            if kind == "benign":
                name, value = r.choice(list(fakes.benign().items()))
                tag = "benign:" + name
            else:
                value, tag = fakes.kinds()[kind]
            if kind == "azure_storage_key":
                template = template.replace("{v}", "DefaultEndpointsProtocol=https;AccountName=prod;{v}")
            host_pool = by_suffix.get(suffix if suffix != ".ipynb" else ".json") or all_hosts
            host = r.choice(host_pool)
            name = f"/planted/{kind}-{i}{suffix if suffix.startswith('.') else '/' + suffix}"
            secret = value.split("=", 1)[1] if kind == "azure_storage_key" else value
            out.append((name, plant(host, render(template, value), r), kind, secret, tag))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--per-kind", type=int, default=200)
    args = parser.parse_args()
    stage = Redact()
    plugins = stage.setup()
    files = real_files(int(args.mb * 1e6), args.seed)
    mb = sum(len(t.encode()) for _, t in files) / 1e6

    # 1. speed (this process: one core)
    table = table_of(files)
    start = time.process_time()
    result = stage.process(table, plugins)
    cpu = time.process_time() - start
    print(f"## Speed\n{len(files)} real files, {mb:.1f} MB: redaction stage {mb / cpu:.1f} MB/s per core "
          f"({cpu:.1f} CPU s); {result.dropped.num_rows} file(s) to the ledger (redaction_failed)")
    baseline_files = files[:40]
    baseline_mb = sum(len(t.encode()) for _, t in baseline_files) / 1e6
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import default_settings

    with default_settings():
        start = time.process_time()
        for _, text in baseline_files:
            for line in text.splitlines():
                list(scan_line(line))
        base_cpu = time.process_time() - start
    print(f"detect-secrets line by line (all default plugins), {len(baseline_files)} of the files, "
          f"{baseline_mb:.2f} MB: {baseline_mb / base_cpu:.2f} MB/s per core\n")

    # 2. false alarms on unmodified code
    totals = Counter()
    for key, value in result.counters.items():
        if key.startswith("pii_"):
            totals[key[4:]] = value
    print("## Redactions on unmodified real code")
    print("| kind | redactions | per MB |\n|---|---|---|")
    for kind in KINDS:
        print(f"| {kind} | {totals[kind]} | {totals[kind] / mb:.2f} |")
    sample = []
    for row in result.kept.to_pylist():
        path = row["path"]
        if row["pii"] and any(p["kind"] in ("key", "password") for p in row["pii"]):
            for line_out in row["content"].splitlines():
                if "<KEY>" in line_out or "<PASSWORD>" in line_out:
                    sample.append(f"{path}: {line_out.strip()[:140]}")
    print(f"\nkey/password redaction contexts (first 40 of {len(sample)}):")
    for line in sample[:40]:
        print("    " + line)

    # 3. recall on planted secrets, and benign look-alikes left alone
    planted = planted_corpus(files, args.seed, args.per_kind)
    out = stage.process(table_of([(p, t) for p, t, *_ in planted]), plugins)
    kept = {row["path"]: row["content"] for row in out.kept.to_pylist()}
    found, total, tagged, dropped = Counter(), Counter(), Counter(), Counter()
    for path, text, kind, value, tag in planted:
        total[kind] += 1
        redacted = kept.get(path)
        if redacted is None:  # in the ledger: not written, so not leaked, but not found either
            dropped[kind] += 1
            continue
        if kind == "benign":
            found[kind] += value in redacted and redacted.count(value) == text.count(value)
            continue
        gone = value not in redacted
        found[kind] += gone
        expected = tag if tag != "ip" else None
        tagged[kind] += gone and (expected is None or expected in redacted)
    print("\n## Recall on planted secrets")
    print("| kind | planted | removed | recall | with the right tag | file dropped (not counted as found) |\n"
          "|---|---|---|---|---|---|")
    for kind in total:
        if kind != "benign":
            print(f"| {kind} | {total[kind]} | {found[kind]} | {found[kind] / total[kind]:.3f} "
                  f"| {tagged[kind] / total[kind]:.3f} | {dropped[kind]} |")
    print(f"\nbenign look-alikes (hex digests, git SHAs, UUIDs, integrity=) left intact: "
          f"{found['benign']} of {total['benign']} ({dropped['benign']} in dropped files)")
    print("\ncommand: python " + " ".join(sys.argv))


if __name__ == "__main__":
    main()
