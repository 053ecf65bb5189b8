import hashlib
import re
import time
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import DECODED_SCHEMA, with_pii
from stages.redact import PRIVATE_IPV4, Redact, RedactConfig, detectors, private_address
from stages.redact.patterns import _CANDIDATE_PATTERNS, _NUMBER_PATTERNS, _PHONE_GATE, _PHONE_KEYWORD

# Fake secrets of the real shapes (made up here; none is live).
AWS_ID = "AKIAQX5E7PLMNB3KT2RW"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Hd93kLp"
GITHUB = "ghp_" + "Zq8xK2mP4vN7bR1tY5wL9cH3jF6dS0aG2eU4"
GITHUB_PAT = (
    "github_pat_11ABCDEFG0" + "x7Yq2Lm9Np4Rt8Vw3Zb6Cd1Fg5Hj0Kk2Mm4Nn6Pp8Qq0Rr2Ss4Tt6Uu8Vv0Ww2Xx4Yy6Zz8Aa0Bb2Cc4"
)
SLACK = "xoxb-2431234567-7654321098123-Zq8xK2mP4vN7bR1tY5wL9cH3"
SLACK_HOOK = "https://hooks.slack.com/services/T01ABCDEF/B02GHIJKL/Zq8xK2mP4vN7bR1tY5wL9cH3"
STRIPE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
SENDGRID = "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"
NPM = "npm_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
GCP = "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0"
       ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
DJANGO = "q8Zx2Kp4Vm7Nb1Rt5Yw9Lc3Hj6Fd0Sa8Ge4Uq"
PEM = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAzq8xK2mP4vN7bR1tY5wL9cH3jF6dS0aG2eU4\n"
       "Zq8xK2mP4vN7bR1tY5wL9cH3jF6dS0aG2eU4Zq8xK2mP4vN7bR1tY5wL9c\n-----END RSA PRIVATE KEY-----")


@pytest.mark.parametrize(
    ("path", "line", "secret", "tag"),
    [
        ("/a.py", f'AWS_ACCESS_KEY_ID = "{AWS_ID}"', AWS_ID, "<KEY>"),
        ("/.aws/credentials", f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET, "<KEY>"),
        ("/ci.yml", f"  token: {GITHUB}", GITHUB, "<KEY>"),
        ("/a.js", f'const t = "{GITHUB_PAT}";', GITHUB_PAT, "<KEY>"),
        ("/bot.py", f'client = WebClient("{SLACK}")', SLACK, "<KEY>"),
        ("/notify.sh", f"curl -X POST {SLACK_HOOK}", SLACK_HOOK, "<KEY>"),
        ("/pay.rb", f"Stripe.api_key = '{STRIPE}'", STRIPE, "<KEY>"),
        ("/mail.py", f"sg = SendGridAPIClient('{SENDGRID}')", SENDGRID, "<KEY>"),
        ("/.npmrc", f"//registry.npmjs.org/:_authToken={NPM}", NPM, "<KEY>"),
        ("/maps.html", f'<script src="https://maps.googleapis.com/maps/api/js?key={GCP}"></script>', GCP, "<KEY>"),
        ("/api.ts", f"headers.Authorization = `Bearer {JWT}`", JWT, "<KEY>"),
        ("/db.py", 'engine = create_engine("postgresql://admin:Tr0ub4dor3x@db.internal:5432/app")', "Tr0ub4dor3x",
         "<KEY>"),
        ("/settings.py", 'DATABASE_PASSWORD = "Tr0ub4dor&3xK"', "Tr0ub4dor&3xK", "<PASSWORD>"),
        ("/.env", "DB_PASSWORD=c0rrectH0rseBatt", "c0rrectH0rseBatt", "<PASSWORD>"),
        ("/config.yaml", "  passwd: Xk9#mQ2$vL7p", "Xk9#mQ2$vL7p", "<PASSWORD>"),
        ("/Dockerfile", "ENV API_KEY=8fK2mQ9xLp4RtZ7w", "8fK2mQ9xLp4RtZ7w", "<KEY>"),
        ("/app.py", f'SECRET_KEY = "{DJANGO}"', DJANGO, "<KEY>"),
        ("/AUTHORS", "Jane Q. Developer <jane.developer@corp-mail.io>", "jane.developer@corp-mail.io", "<EMAIL>"),
    ],
)
def test_each_kind_is_replaced_by_its_tag(
    redact: Redact, plugins: dict[str, Any], path: str, line: str, secret: str, tag: str
) -> None:
    text = f"# header\n{line}\nprint('done')\n"
    out, counts = redact.redact(text, path, plugins)
    assert secret not in out
    assert tag in out
    assert out.startswith("# header\n") and out.endswith("print('done')\n")


def test_pem_private_key_block_is_removed_whole(redact: Redact, plugins: dict[str, Any]) -> None:
    text = f'KEY = """\n{PEM}\n"""\n'
    out, counts = redact.redact(text, "/k.py", plugins)
    assert out == 'KEY = """\n<KEY>\n"""\n'
    assert counts["key"] == 1
    escaped = PEM.replace("\n", "\\n")  # as in a GCP service-account JSON file
    out, _ = redact.redact(f'{{"private_key": "{escaped}\\n"}}', "/sa.json", plugins)
    assert "MIIEow" not in out and "<KEY>" in out


def test_same_value_same_replacement_and_ip_mapping(redact: Redact, plugins: dict[str, Any]) -> None:
    text = "server 93.184.216.34\nbackup 93.184.216.34\nother 151.101.1.69\nlocal 192.168.1.10\ndns 8.8.8.8\n"
    out, counts = redact.redact(text, "/hosts.conf", plugins)
    first = private_address("93.184.216.34")
    assert first in PRIVATE_IPV4
    assert out.count(first) >= 2
    assert "93.184.216.34" not in out and "151.101.1.69" not in out
    assert "192.168.1.10" in out and "8.8.8.8" in out
    assert counts["ip_address"] == 3
    assert private_address("93.184.216.34") == first  # deterministic across calls


def test_ipv6_public_redacted_private_and_docs_kept(redact: Redact, plugins: dict[str, Any]) -> None:
    text = "a = '2a00:1450:4001:81d::200e'\nb = '2001:db8::1'\nc = 'fe80::1'\nd = '::1'\n"
    out, _ = redact.redact(text, "/n.py", plugins)
    assert "2a00:1450:4001:81d::200e" not in out
    assert "2001:db8::1" in out and "fe80::1" in out and "'::1'" in out


def test_ordinary_code_is_left_alone(redact: Redact, plugins: dict[str, Any]) -> None:
    text = "\n".join([
        'sha = "da39a3ee5e6b4b0d3255bfef95601890afd80709"',  # git SHA / SHA-1
        'digest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"',  # SHA-256
        'md5 = "d41d8cd98f00b204e9800998ecf8427e"',
        'request_id = "123e4567-e89b-12d3-a456-426614174000"',  # UUID
        '<script integrity="sha384-oqVuAfXRKap7fdgcCY5uykM6+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC"></script>',
        '"integrity": "sha512-v2kDEe57lecTulaDIuNTPy3Ry4gLGJ6Z1O3vE1krgXZNrsQ+LFTGHVxVjcXPs7ed7Gf9ooYp2aKGCaVnZ3k9bg=='
        '"',
        "__version__ = '1.2.3.4'",
        "version: 10.0.0.1",
        "def getUserPasswordHash(self): return self._passwordHash",
        "password = os.environ['DB_PASSWORD']",
        'password = "${DB_PASSWORD}"',
        'password: "changeme"',
        "user@example.com and noreply@github.com",
        "icon@2x.png",
        "@decorator",
        "x = a @ b",
        "std::vector<int> v;",
        "token = tokenize.generate_tokens(readline)",
        "# normalised output as per sections 5.2.4 and 6.2.2.3 of rfc3986",
        "// From linux-2.6.8.1/include/linux/types.h",
        "x = r[::2] + a[1:2:3] + graph.flat[::6]",
        '"Cidr": "15.0.0.0/24",',
        '"GroupIpAddress": "224.0.1.0"',
        '"input_token": "NextToken",',
        '"CodeSha256": "YFgDgEKG3ugvF1+pX64gV6tu9qNuIYNUdgJm8nCxsSc=",',
        '"AWS::AppSync::ApiKey": "3d104ea0be48564b",',
        '"Id": "dt_2wjDZi3hD1ivOXf6rpZJOSNE1AB",',
        'api_key="your-replicate-api-key",',
        "AWS_SECRET_ACCESS_KEY = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'",
        "# Auth token (SKxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx)",
    ]) + "\n"
    out, counts = redact.redact(text, "/code.py", plugins)
    assert out == text, [a for a, b in zip(text.splitlines(), out.splitlines(), strict=True) if a != b]
    assert sum(counts.values()) == 0


def test_lock_files_keep_their_hashes(redact: Redact, plugins: dict[str, Any]) -> None:
    text = '"resolved": "https://r.example.org/x.tgz",\n"shasum": "Zq8xK2mP4vN7bR1tY5wL9cH3jF6dS0aG2eU4Zq8x"\n'
    assert redact.redact(text, "/package-lock.json", plugins)[0] == text


def test_crlf_and_non_ascii(redact: Redact, plugins: dict[str, Any]) -> None:
    text = "# Привет, мир — ünïcödé\r\npassword = \"Tr0ub4dor&3xK\"\r\nemail = 'jörg.müller@firma-beispiel.de'\r\n"
    out, counts = redact.redact(text, "/s.py", plugins)
    assert "Tr0ub4dor&3xK" not in out and out.count("\r\n") == 3 and "Привет" in out
    assert counts["password"] == 1


@pytest.mark.parametrize(
    "text",
    [
        "a" * 2_000_000,
        "@" * 1_000_000,
        "1." * 1_000_000,
        ":" * 1_000_000,
        "f:" * 500_000,
        "://" + "a:" * 300_000,
        "-----BEGIN RSA PRIVATE KEY-----\n" * 50_000,
        "password=" * 200_000,
        "x=\"" + "A1b2" * 250_000,
        "eyJ" + "a" * 1_000_000,
        "var a=" + ";".join(f"f{i}=\"{i}\"" for i in range(150_000)),  # minified one-liner
    ],
    ids=["letters", "at", "dots", "colons", "hexcolons", "basicauth", "pem", "keyword", "base64", "jwt", "minified"],
)
def test_pathological_input_takes_bounded_time(redact: Redact, plugins: dict[str, Any], text: str) -> None:
    table = _rows([text])
    start = time.perf_counter()
    result = redact.process(table, plugins)
    elapsed = time.perf_counter() - start
    budget = redact.config.time_budget_s + redact.config.time_budget_s_per_mb * len(text) / 1e6
    assert elapsed < budget + 5  # the budget, plus the one detector call in flight when it ran out
    assert result.kept.num_rows + result.dropped.num_rows == 1
    if result.dropped.num_rows:
        assert result.dropped["reason"].to_pylist() == ["redaction_failed"]


def test_the_budget_counts_this_threads_cpu_not_the_wall_clock(plugins: dict[str, Any]) -> None:
    """Other threads holding the GIL (a dask worker's other tasks) stretch the wall clock, not the
    CPU time of the thread redacting: the same file passes or fails whatever else runs."""
    import argparse
    import email.message  # real code nobody here wrote, below
    import http.client
    import inspect
    import json.decoder
    import threading

    code = "".join(inspect.getsource(m) for m in (email.message, http.client, json.decoder, argparse))
    # real code with, every few lines, something to look at closely (the budget is checked per segment)
    lines = code.splitlines()
    text = "\n".join(f"{line}  # mail user{i}@corp.example.com" if i % 4 == 0 else line for i, line in enumerate(lines))
    start = time.thread_time()
    Redact().process(_rows([text]), plugins)
    cpu = time.thread_time() - start
    budget = 1.6 * cpu  # room for the cache misses of a busy process
    stage = Redact(RedactConfig(time_budget_s=budget, time_budget_s_per_mb=0.0))
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(1000))

    spinners = [threading.Thread(target=spin) for _ in range(16)]
    for thread in spinners:
        thread.start()
    try:
        wall = time.perf_counter()
        result = stage.process(_rows([text]), plugins)
        wall = time.perf_counter() - wall
    finally:
        stop.set()
        for thread in spinners:
            thread.join()
    assert wall > budget  # on the wall clock the budget would have run out: the test means something
    assert result.kept.num_rows == 1 and result.dropped.num_rows == 0


def test_a_file_over_its_budget_goes_to_the_ledger_without_its_values() -> None:
    stage = Redact(RedactConfig(time_budget_s=1e-9, time_budget_s_per_mb=1e-9))
    result = stage.process(_rows([f'password = "Tr0ub4dor&3xK"\nkey = "{AWS_ID}"\n']), stage.setup())
    assert result.kept.num_rows == 0
    assert result.dropped.select(["reason", "detail"]).to_pylist() == [
        {"reason": "redaction_failed", "detail": "time budget exceeded"}
    ]
    assert "Tr0ub4dor" not in str(result.dropped.to_pylist()) and AWS_ID not in str(result.counters)


def test_process_fills_pii_and_recomputes_hash(redact: Redact, plugins: dict[str, Any]) -> None:
    texts = [f'k = "{AWS_ID}"\nmail = "bob.smith@acme-corp.net"\n', "print('clean')\n"]
    result = redact.process(_rows(texts), plugins)
    assert result.kept.schema == with_pii(DECODED_SCHEMA)
    rows = result.kept.to_pylist()
    assert rows[0]["pii"] == [{"kind": "email", "count": 1}, {"kind": "key", "count": 1}]
    assert rows[1]["pii"] == []
    assert rows[0]["sha256"] == hashlib.sha256(rows[0]["content"].encode()).hexdigest()
    assert rows[0]["length_bytes"] == len(rows[0]["content"].encode())
    assert rows[1]["content"] == texts[1]
    assert result.counters["pii_key"] == 1 and result.counters["pii_email"] == 1
    assert result.counters["files_with_pii"] == 1


def _rows(texts: list[str]) -> pa.Table:
    n = len(texts)
    base = {f.name: [None] * n for f in DECODED_SCHEMA}
    base.update({
        "blob_id": [f"{i:040x}" for i in range(n)], "content_id": [f"{i:040x}" for i in range(n)],
        "sha256": ["0" * 64] * n, "origin_url": ["https://x.org/r"] * n, "repo_name": ["x.org/r"] * n,
        "snapshot_id": ["s"] * n, "revision_id": ["r"] * n, "directory_id": ["d"] * n, "branch_name": ["HEAD"] * n,
        "path": [f"/f{i}.py" for i in range(n)], "path_is_utf8": [True] * n, "extension": ["py"] * n,
        "length_bytes": [len(t.encode()) for t in texts], "src_encoding": ["UTF-8"] * n, "content": texts,
    })
    return pa.table(base, schema=DECODED_SCHEMA)


def test_every_gate_matches_its_pattern_and_case(plugins: dict[str, Any]) -> None:
    """A gate (patterns._GATES) names the pattern it is for by its exact text, and is case-insensitive exactly
    when that pattern is; detect-secrets' patterns that have none run everywhere (a few are left so on purpose)."""
    import re

    from stages.redact.detectors import _OWN_KEY_GATED
    from stages.redact.patterns import _GATES

    gated = plugins["regex_gated"] + [(p, False, g) for p, g in _OWN_KEY_GATED]
    assert sum(1 for _, _, (_, groups) in gated if groups) >= 40
    for regex, _, (ignore_case, groups) in gated:
        if regex.pattern in _GATES:
            assert ignore_case == bool(regex.flags & re.IGNORECASE) or regex.pattern.startswith("(?i"), regex.pattern
        for group in groups:
            assert group and all(word == word.lower() for word in group) or not ignore_case


def _token(alphabet: str, n: int, seed: int) -> str:
    """A made-up token of ``n`` characters of ``alphabet`` (random, so no detector takes it for a mask)."""
    import random

    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


_LOWER, _HEX = "abcdefghijklmnopqrstuvwxyz", "0123456789abcdef"
_ALNUM = _LOWER + _LOWER.upper() + "0123456789"
LOWER24, LOWER_ALNUM64, HEX48, HEX64, TOKEN44 = (_token(_LOWER, 24, 1), _token(_LOWER + "0123456789", 64, 2),
                                                  _token(_HEX, 48, 3), _token(_HEX, 64, 4), _token(_ALNUM, 44, 5))
# Lines for the gate tests: every detector's shapes, in other cases, and with letters that Unicode case folding
# matches but str.lower() does not find (long s, Kelvin sign, dotted and dotless i).
GATE_LINES = [
    f'AWS_ACCESS_KEY_ID = "{AWS_ID}"', f"aws_secret_access_key = {AWS_SECRET}", f"AWS_SECRET_KEY: '{AWS_SECRET}'",
    f"Aws_Key = '{AWS_SECRET}'", f"token: {GITHUB}", f"t = '{GITHUB_PAT}'", SLACK, SLACK.upper(), SLACK_HOOK,
    SLACK_HOOK.upper(), f"key='{STRIPE}'", SENDGRID, f"//registry.npmjs.org/:_authToken={NPM}", GCP, JWT,
    "glpat-" + TOKEN44[:20], "GR1348941" + TOKEN44[:25], "AC" + HEX64[:32], "SK" + HEX48[:32], HEX64[:32] + "-us12",
    "AccountKey=" + TOKEN44 * 2, ' "AKC' + TOKEN44[:12] + '"', " AP6" + TOKEN44[:10] + " ", "sq0csp-" + TOKEN44[:43],
    "sk-" + TOKEN44[:20] + "T3BlbkFJ" + TOKEN44[20:40], "pypi-AgEIcHlwaS5vcmc" + TOKEN44 * 2,
    "abc8Q~" + TOKEN44[:32], "MNO" + TOKEN44[:22] + ".abQ1_x." + TOKEN44[:27], "123456789:" + TOKEN44[:35],
    f"cloudant_password = '{LOWER24}'", f"CL_API_KEY: {HEX64}", f"https://u:{LOWER24}@h.cloudant.com",
    f"ibm_cloud_iam_key = {TOKEN44}", f"IBM_COS_HMAC_SECRET_ACCESS_KEY: {HEX48}", f"softlayer_api_key = {HEX64}",
    f"SL_TOKEN: {LOWER_ALNUM64}", f"https://api.softlayer.com/soap/v3/{LOWER_ALNUM64}",
    f"cloudant_ſecret = '{LOWER24}'", f"cl_\u212aey = '{LOWER24}'", f"ıbm_cloud_ıam_\u212aey = {TOKEN44}",
    "\u212aey: Xk9#mQ2$vL7p", 'paſſword = "Tr0ub4dor&3xK"', 'İ_password = "Tr0ub4dor&3xK"', "ſecret: hunter2hunter",
    'DATABASE_PASSWORD = "Tr0ub4dor&3xK"', "  passwd: Xk9#mQ2$vL7p", "ENV API_KEY=8fK2mQ9xLp4RtZ7w",
    'contrasena = "Tr0ub4dor&3xK"', 'contraseña = "Tr0ub4dor&3xK"', "Credentials: c0rrectH0rseBatt",
    f'SECRET_KEY = "{DJANGO}"', 'engine = create_engine("postgresql://admin:Tr0ub4dor3x@db.internal:5432/app")',
    "mail jane.developer@corp-mail.io or " + _token(_LOWER, 70, 6) + "@gmail.com", "josé.müller@exämple.de",
    "host 23.45.67.89 and 2a01:4f8:abcd::1234, v1.2.3.4", "card 4539 1488 0343 6467, tel: (415) 867-5309",
    "int x = 0; // nothing here", "",
]


@pytest.mark.parametrize("path", ["/a.py", "/b.js", "/c.yaml", "/.env", "/d.json", "/e.go", "/f.cpp", "/yarn.lock"])
def test_gates_change_no_finding(
    redact: Redact, plugins: dict[str, Any], monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """The gates and the searches started after the first separator (emails, addresses, cards) only skip
    work: with every gate open and every search from the start, each line gives the same findings."""
    import random
    import re

    import stages.redact as stage_module
    from stages.redact import detectors

    rng = random.Random(path)
    lines = GATE_LINES + ["  ".join(rng.sample(GATE_LINES, 3)) for _ in range(60)]
    gated = [list(redact._find(line, path, plugins)) for line in lines]
    assert sum(1 for found in gated if found) > len(GATE_LINES) // 2
    monkeypatch.setattr(stage_module, "_gate_words", lambda segment: (set(), None))
    monkeypatch.setattr(stage_module, "_open", lambda entries, sensitive, insensitive: list(entries))
    monkeypatch.setattr(detectors, "_FOUR_DIGITS", re.compile(""))
    real_find = str.find

    class FromStart(str):
        """A segment whose first "@", "." and ":" are reported at 0: every search starts at the beginning."""

        def find(self, sub: str, *args: Any) -> int:
            return 0 if sub in ("@", ".", ":") and not args and sub in self else real_find(self, sub, *args)

    ungated = [list(redact._find(FromStart(line), path, plugins)) for line in lines]
    assert gated == ungated


def test_the_keyword_gate_holds_a_word_of_each_detect_secrets_keyword() -> None:
    """detect-secrets' keyword detector runs only on segments with one of _KEYWORD_WORDS: each of its names has one
    (a version that adds a name without one must extend the gate)."""
    from detect_secrets.plugins.keyword import DENYLIST

    from stages.redact.patterns import _KEYWORD_WORDS

    for name in DENYLIST:
        assert any(word in name for word in _KEYWORD_WORDS), name


# ---------------------------------------------------------------- speed changes that must not change a position
# The code as it was before each change, kept verbatim as the reference.

_OLD_QUOTED = [re.compile(r"\"(?=[A-Za-z+/=_-]{0,60}\d)[A-Za-z0-9+/=_-]{20}"),
               re.compile(r"'(?=[A-Za-z+/=_-]{0,60}\d)[A-Za-z0-9+/=_-]{20}")]


def _old_candidates(text: str) -> list[int]:
    patterns = [p for p in _CANDIDATE_PATTERNS if "{0,60}" not in p.pattern]  # all but the two quoted-token ones
    assert len(patterns) == len(_CANDIDATE_PATTERNS) - 2
    patterns += _OLD_QUOTED
    positions = [m.start() for pattern in patterns for m in pattern.finditer(text)]
    lower = text.lower()
    number_hits = [m.start() for pattern in _NUMBER_PATTERNS for m in pattern.finditer(text)]
    for end, (length, is_phone_word) in detectors._PREFILTER_WORDS.iter(lower):
        i = end - length + 1
        if is_phone_word:
            number_hits.append(i)
        elif not lower.startswith("author", i) or lower.startswith("authoriz", i):
            positions.append(i)
    lines: dict[int, list[int]] = {}
    for pos in number_hits:
        start = text.rfind("\n", 0, pos) + 1
        if start not in lines:
            end = text.find("\n", pos)
            line = text[start : len(text) if end < 0 else end]
            found = [*detectors._cards(line), *(detectors._phones(line) if _PHONE_GATE.search(line) else ())]
            lines[start] = [start + line.find(value) for value, _ in found]
        if any(abs(at - pos) < detectors._NUMBER_WINDOW for at in lines[start]):
            positions.append(pos)
    return sorted(set(positions))


# pieces that reach every branch: phone words with and without numbers on their line, cards, phone numbers in
# their formats (some with no four digits in a row), Unicode digits (\d: Arabic-Indic, fullwidth), case-folded
# look-alikes of the phone keywords (K: the Kelvin sign, ſ: long s), quoted tokens with and without a digit
_PIECES = ["call", "Callback", "TEL", "tel:", "fax", "mobile", "contact", "phone", "☎", "\U0001f4de", "ſms",
           "Whats_App", "handy", "cell", "\u212a", " ", "  ", "\n", "\t", "-", ".", "(", ")", "+", "+1 ",
           "+44 20 7946 0958", "+33 1 42 68 53 00", "+49 30 901 820", "(415) 555-2671", "415-555-2671",
           "415.555.2671", "8675309", "4111 1111 1111 1111", "5555555555554444", "4012888888881881", "378282246310005",
           "2024-01-15", "10:30", "1.2.3.4", "٣٤٥٦٧٨٩", "１２３４", "0", "7", "12", "1234", "\"", "'",
           "AbCdEfGhIjKlMnOpQrSt", "abcdefghij0123456789xyz", "Q9", "token = ", "password", "x", "é"]


@pytest.mark.parametrize("quote", ["\"", "'"])
def test_quoted_token_candidates_are_the_positions_they_were(quote: str) -> None:
    runs = ["a" * n + "7" + "b" * m for n in range(0, 64, 3) for m in (0, 10, 18, 19, 20, 40)]
    runs += ["x" * n for n in (19, 20, 21)] + ["Ab+/=_-9" * 3, "é1" * 12, "a9" * 9 + "\"" + "b" * 30]
    for run in runs:
        for text in (quote + run, f"k = {quote}{run}{quote}; {quote}{run[:19]}{quote}", quote + quote + run):
            assert detectors._candidates(text) == _old_candidates(text), text


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=40))
def test_candidates_are_the_positions_they_were(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert detectors._candidates(text) == _old_candidates(text)


def test_candidates_are_the_positions_they_were_on_real_code() -> None:
    import inspect
    import textwrap

    import phonenumbers.phonenumberutil

    for module in (textwrap, inspect, phonenumbers.phonenumberutil, re):
        text = inspect.getsource(module)
        assert detectors._candidates(text) == _old_candidates(text)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=30))
def test_phone_keywords_are_looked_for_only_where_they_cannot_be_missed(pieces: list[str]) -> None:
    segment = "".join(pieces)
    if not detectors._may_hold_phone_keyword(segment):
        assert _PHONE_KEYWORD.search(segment) is None


def test_the_phone_keyword_words_are_those_of_the_pattern() -> None:
    # each alternative of _PHONE_KEYWORD holds one of the words (its text, lowercased)
    alternatives = ["tel", "telephone", "telefon", "teléfono", "téléfone", "telefono", "fax", "mobil", "mobile",
                    "cell", "cellphone", "cellular", "call", "sms", "whatsapp", "whats_app", "contact", "handy",
                    "phone", "☎", "\U0001f4de"]
    for word in alternatives:
        for text in (word, word.upper(), f" {word.title()} "):
            if _PHONE_KEYWORD.search(text):
                assert detectors._may_hold_phone_keyword(text), text
