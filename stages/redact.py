"""Redact: emails, keys and tokens, passwords and public IP addresses, replaced in place.

- email → ``<EMAIL>``: regex + validation (placeholder domains, ``noreply``-style senders and
  image names like ``icon@2x.png`` are skipped).
- key → ``<KEY>``: detect-secrets' regex plugins; patterns of ours where a plugin is missing or
  partial (GitHub fine-grained and classic tokens, npm, GCP, Azure client secrets, whole JWTs,
  AWS secret keys in config files); whole PEM private key blocks; high-entropy strings in
  assignments, minus hex digests, UUIDs, ``integrity=`` values and lock files.
- password → ``<PASSWORD>``: detect-secrets' keyword detector on code, a config-style keyword
  pattern on other files, minus placeholders (``changeme``, ``${VAR}``, ``os.environ[...]``).
- ip_address → a private address picked by a hash of the value: global addresses only, minus
  documentation ranges, public DNS resolvers and version numbers.

Speed: detect-secrets line by line is ~0.05 MB/s. Here one compiled prefilter pass over each file
finds candidate positions; the detectors run only on the lines around them (a bounded window on
long lines), and the values they confirm are then replaced everywhere in the file in one pass, so
the same value always gets the same replacement. Values never leave this module: not in counters,
ledger details, logs or exceptions.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import posixpath
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from schemas import PII_TYPE, with_pii
from stages.base import Reason, StageResult, binary_array, split

EMAIL, KEY, PASSWORD, IP = "email", "key", "password", "ip_address"
KINDS = (EMAIL, IP, KEY, PASSWORD)
TAGS = {EMAIL: "<EMAIL>", KEY: "<KEY>", PASSWORD: "<PASSWORD>"}

#: Private addresses that public ones are mapped to (by a hash of the value: the same address
#: always gets the same replacement, in every file and every run).
PRIVATE_IPV4 = ("10.0.0.42", "10.12.34.56", "172.16.31.10", "172.20.1.7", "192.168.0.17", "192.168.101.3")
PRIVATE_IPV6 = ("fd00:1234:5678::1", "fd12:3456:789a::7", "fdab:cdef:1234::42", "fd9e:21a7:a92c:2323::1")
#: Well-known public DNS resolvers: configuration, not personal data.
PUBLIC_RESOLVERS = frozenset({
    "8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1", "9.9.9.9", "149.112.112.112", "208.67.222.222",
    "208.67.220.220", "2001:4860:4860::8888", "2001:4860:4860::8844", "2606:4700:4700::1111",
    "2606:4700:4700::1001", "2620:fe::fe", "2620:fe::9",
})

# The prefilter finds every place worth a closer look. Each pattern starts with a literal, so the
# regex engine skips to it at memchr speed (one big alternation measured 4 MB/s); keywords are
# found with str.find on the lowercased text. Every quantifier is bounded: no input makes a
# pattern backtrack more than a constant per position.
_CANDIDATE_PATTERNS = [
    re.compile(r"@[\w-]{1,63}\."),  # email domains
    re.compile(r"\.\d{1,3}\.\d{1,3}\.\d"),  # dotted quads, from the first dot
    re.compile(r":[0-9A-Fa-f]{1,4}:"),  # IPv6 (not C++'s "::")
    re.compile(r"::[0-9A-Fa-f]{1,4}\b"),  # IPv6 ending in a compressed group
    re.compile(r"://[^\s/:@]{1,128}:[^\s/@]{1,256}@"),  # scheme://user:password@
    # long quoted tokens with a digit (high-entropy candidates; random 20+ char tokens have digits)
    re.compile(r"\"(?=[A-Za-z+/=_-]{0,60}\d)[A-Za-z0-9+/=_-]{20}"),
    re.compile(r"'(?=[A-Za-z+/=_-]{0,60}\d)[A-Za-z0-9+/=_-]{20}"),
    re.compile(r"-us\d"),  # Mailchimp
    re.compile(r"AC[0-9a-f]{32}|SK[0-9a-f]{32}"),  # Twilio
    re.compile(r"\dQ~"),  # Azure client secrets
]
_CANDIDATE_WORDS = (
    # token prefixes
    "akia", "asia", "abia", "acca", "a3t", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-",
    "xox", "hooks.slack", "sk_live", "rk_live", "sk_test", "rk_test", "sg.", "npm_", "_authtoken", "aiza",
    "accountkey", "eyj", "-----begin", "pypi-", "sk-",
    # secret-sounding names (not bare "pass": it is a Python statement)
    "passw", "pwd", "_pass", "pass_", "pass=", "pass:", "secret", "token", "api_key", "apikey", "api-key",
    "access_key", "accesskey", "private_key", "privatekey", "credential", "auth",
)

# Patterns for kinds detect-secrets has no plugin for (or only a partial one).
_OWN_KEY_PATTERNS = [
    re.compile(r"github_pat_[0-9A-Za-z_]{82}"),
    re.compile(r"glpat-[0-9A-Za-z_-]{20}"),
    re.compile(r"(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])"),
    re.compile(r"AIza[0-9A-Za-z_-]{35}"),
    re.compile(r"(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])"),
    re.compile(r"(?:r|s)k_test_[0-9a-zA-Z]{24,99}"),
    re.compile(r"(?:r|s)k_live_[0-9a-zA-Z]{24,99}"),
    re.compile(r"eyJ[A-Za-z0-9_-]{8,2000}\.eyJ[A-Za-z0-9_-]{8,4000}\.[A-Za-z0-9_-]{16,1000}"),
    re.compile(r"(?i:aws.{0,20}?(?:secret|key).{0,20}?[=:]\s{0,4}[\"']?)([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"),
    re.compile(r"(?i:xox[abposr]-)[0-9A-Za-z-]{10,200}"),
]
#: scheme://user:password@host. RFC 3986 allows sub-delimiters (!$&'()*+,;=) in the password, which
#: detect-secrets' basic-auth plugin refuses; a raw '#' is taken too, since people paste them.
_BASIC_AUTH = re.compile(r"://[^\s/?#@:]{1,128}:([^\s/@]{1,256})@(?=[\w.\[-])")
_PEM_BEGIN = re.compile(r"-----BEGIN ((?:[A-Z0-9]{1,20} ){0,3})PRIVATE KEY((?: BLOCK)?)-----")
_PEM_MAX_CHARS = 20_000
_EMAIL = re.compile(
    r"(?<![\w.+%-])([A-Za-z0-9](?:[A-Za-z0-9_%-]|[.+](?=[A-Za-z0-9])){0,63})@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}"
    r"[A-Za-z]{2,24})(?![\w-])"
)
_IPV4 = re.compile(r"(?<![\w.-])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")  # not name-1.2.3.4 versions
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_SECTION_BEFORE = re.compile(r"(?i)(?:sections?|clause|chapter|§|\d{4,5}:)[^\n]{0,30}$")  # "section 6.2.2.3"
_URL_USERINFO = re.compile(r"://[^\s/@]{0,128}:[^\s/@]{0,256}$")
_VERSION_BEFORE = re.compile(r"(?i)(?<![a-z])(?:version|ver|v|release|rev)\w{0,12}[\s:=\"'(]{0,4}$")
_CONFIG_KEYWORD = re.compile(
    r"(?i)(?<![A-Za-z0-9])(?P<name>[A-Za-z0-9_.-]{0,40}(?:passw(?:or)?d|passwd|pwd|pass|secret|token|api[_-]?key"
    r"|apikey|access[_-]?key|auth[_-]?key|private[_-]?key|client[_-]?secret|credentials?)[A-Za-z0-9_.-]{0,20})"
    r"[\"']?\s{0,4}[:=]\s{0,4}(?P<quote>[\"']?)(?P<value>[^\s\"']{1,200})(?P=quote)"
)
_PASSWORD_WORD = re.compile(r"(?i)passw|passwd|pwd|\bpass\b|_pass\b")

_CODE_EXTENSIONS = frozenset(
    "py pyi js jsx mjs cjs ts tsx java kt kts scala groovy c h cc cpp cxx hpp hh cs go rs rb php swift m mm "
    "pl pm lua r jl dart ex exs erl hs ml fs clj vb ipynb".split()
)
_LOCK_FILES = frozenset({
    "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "poetry.lock", "pipfile.lock", "cargo.lock",
    "composer.lock", "gemfile.lock", "go.sum", "npm-shrinkwrap.json", "uv.lock", "pdm.lock",
})
_PLACEHOLDER_DOMAINS = re.compile(
    r"(?i)(?:^|\.)(?:example\.(?:com|org|net|edu)|example|test|invalid|localhost|local|domain\.com|email\.com"
    r"|yourdomain\.com|company\.com|users\.noreply\.github\.com|noreply\.github\.com)$"
)
_PLACEHOLDER_LOCAL = frozenset(
    {"user", "username", "name", "email", "someone", "you", "your.name", "firstname.lastname"}
)
#: Senders of automated mail: not personal data.
_SERVICE_LOCAL = re.compile(r"(?i)^(?:no-?reply|do-?not-?reply|notifications?|mailer-daemon|postmaster)(?:[+.-]|$)")
_FILE_TLDS = frozenset(
    "png jpg jpeg gif svg webp ico bmp js css ts map json xml html htm md txt py rb php java go rs c h o so "
    "dll exe zip gz tar whl pdf".split()
)
_PLACEHOLDER_VALUE = re.compile(
    r"(?i)^(?:changeme|change_?me|password\d*|passwd|secret|token|xxx+|\*+|\.+|-+|_+|x+|none|null|nil|true|false"
    r"|empty|undefined|example|dummy|test|testing|sample|foo|bar|baz|your[_-]?\w*|my[_-]?\w*|\w*here|placeholder"
    r"|redacted|hidden|masked|todo|tbd|fixme|default|admin|root|user(?:name)?|pass|p@ssw0rd|1234\d*|abc\d*)$"
)
_EXPRESSION = re.compile(r"^[A-Za-z_][\w.]*[\[(]")
_WORDS = re.compile(r"^[A-Za-z]+(?:[-_. /:][A-Za-z]+)*$")
_RESOURCE = re.compile(r"^(?:arn|urn|https?|s3|gs|file|ftp):", re.IGNORECASE)
_REPEATED = re.compile(r"(.)\1{5,}")
_SEQUENCES = ("abcdefgh", "12345678", "01234567", "qwertyui")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
#: "AWS::AppSync::ApiKey": "3d104ea0...": a type name (CloudFormation, C++, Perl), not a variable holding a key
_TYPE_NAME = re.compile(r"::[A-Za-z]*[\"']?\s{0,4}[:=]>?\s{0,4}[\"']?$")
_DIGEST_NAME = re.compile(r"(?i)integrity|sha\d{0,3}|md5|checksum|digest|hash|etag|fingerprint")
_ID_NAME = re.compile(r"(?:id|Id|ID|_ids?|Ids?)[\"']?\s{0,4}$")  # "Id": "dt_2wjDZ...": an identifier
_SRI = re.compile(r"^(?:sha(?:1|256|384|512)|md5)-[A-Za-z0-9+/]{20,}={0,2}$")  # Subresource Integrity
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z_.]*$")
_HASH_LENGTHS = frozenset({32, 40, 56, 64, 96, 128})
_HIGH_ENTROPY = re.compile(r"[=:]\s{0,8}([\"'])([A-Za-z0-9+/=_-]{20,1000})\1")


class BudgetExceeded(Exception):
    """A file took longer than its time budget; it goes to the ledger, never out unredacted."""


@dataclass(frozen=True)
class Redact:
    """Redaction stage: replaces what it finds in ``content``, fills ``pii``, updates ``sha256``/length.

    ``keep_author_emails`` keeps emails on package-author lines (``author_email=``, ``"author":``,
    ``Maintainer:``). ``time_budget_s`` + ``time_budget_s_per_mb`` bound the time spent on a file.
    """

    keep_author_emails: bool = False
    window_chars: int = 2000
    base64_entropy: float = 4.5
    hex_entropy: float = 3.0
    time_budget_s: float = 2.0
    time_budget_s_per_mb: float = 4.0
    name: str = "redact"

    def setup(self) -> None:
        object.__setattr__(self, "_plugins", _load_plugins())

    def process(self, table: pa.Table) -> StageResult:
        """Dataset rows in (with ``content``); the same rows redacted, with ``pii``, out. Needs ``setup()``."""
        texts = table["content"].to_pylist()
        paths = table["path"].to_pylist()
        reasons: list[Reason | None] = [None] * table.num_rows
        details: list[str | None] = [None] * table.num_rows
        redacted: list[bytes] = []
        pii: list[list[dict[str, Any]]] = []
        totals: Counter[str] = Counter()
        for i, text in enumerate(texts):
            try:
                new_text, counts = self.redact(text, paths[i])
            except BudgetExceeded:
                reasons[i], details[i] = Reason.REDACTION_FAILED, "time budget exceeded"
                continue
            except Exception as e:  # noqa: BLE001 - any failure must keep the file out; its message may quote it
                reasons[i], details[i] = Reason.REDACTION_FAILED, f"redaction raised {type(e).__name__}"
                continue
            redacted.append(new_text.encode("utf-8"))
            pii.append([{"kind": k, "count": counts[k]} for k in KINDS if counts[k]])
            totals.update(counts)
        kept, dropped, counters = split(self.name, table, reasons, details)
        counters.update({f"pii_{k}": totals[k] for k in KINDS})
        counters["files_with_pii"] = sum(1 for p in pii if p)
        return StageResult(_with_redactions(kept, redacted, pii), dropped, counters)

    def redact(self, text: str, path: str) -> tuple[str, Counter[str]]:
        """``text`` with everything found replaced, and the number of replacements per kind."""
        budget = self.time_budget_s + self.time_budget_s_per_mb * len(text) / 1e6
        deadline = time.perf_counter() + budget
        counts: Counter[str] = Counter()
        text = _redact_pem_blocks(text, counts, deadline)
        found: dict[str, str] = {}
        for segment in self._segments(text, deadline):
            for value, kind in self._find(segment, path):
                found.setdefault(value, kind)  # detectors run keys first: a key in a password field stays a key
        if not found:
            return text, counts
        return _replace_all(text, found, counts)

    def _segments(self, text: str, deadline: float) -> Iterator[str]:
        """The text around every prefilter hit: whole lines, or a window on long lines."""
        last_end = -1
        half = self.window_chars // 2
        for pos in _candidates(text):
            if pos < last_end:
                continue
            if time.perf_counter() > deadline:
                raise BudgetExceeded
            start = text.rfind("\n", 0, pos) + 1
            end = text.find("\n", pos)
            end = len(text) if end < 0 else end
            if end - start > self.window_chars:
                start, end = max(start, pos - half), min(end, pos + half)
            last_end = end
            yield text[start:end]

    def _find(self, segment: str, path: str) -> Iterator[tuple[str, str]]:
        """(value, kind) for everything to redact in ``segment``."""
        plugins = self._plugins  # type: ignore[attr-defined]
        lock_file = posixpath.basename(path).lower() in _LOCK_FILES
        for plugin in plugins["regex"]:
            basic_auth = plugin.secret_type == "Basic Auth Credentials"
            for regex in plugin.denylist:
                for match in regex.finditer(segment):
                    value = _secret_of(match, basic_auth)
                    # basic-auth passwords can be short; other tokens have a fixed, long shape
                    if basic_auth and _is_placeholder(value) or len(value) < 8 and not basic_auth:
                        continue
                    if not _is_fake(value):
                        yield value, KEY
        for match in _BASIC_AUTH.finditer(segment):
            if not _is_placeholder(match.group(1)):
                yield match.group(1), KEY
        for pattern in _OWN_KEY_PATTERNS:
            for match in pattern.finditer(segment):
                value = match.group(match.lastindex or 0)
                if not _is_fake(value):
                    yield value, KEY
        yield from self._keywords(segment, path, plugins)
        if not lock_file:
            for match in _HIGH_ENTROPY.finditer(segment):
                value = match.group(2)
                if self._is_high_entropy_secret(value, segment[max(0, match.start() - 30) : match.start()]):
                    yield value, KEY
        yield from self._emails(segment)
        yield from _public_ips(segment)

    def _keywords(self, segment: str, path: str, plugins: dict[str, Any]) -> Iterator[tuple[str, str]]:
        extension = posixpath.splitext(path)[1][1:].lower()
        if extension in _CODE_EXTENSIONS:
            regexes = plugins["keyword_regexes"](path)
            candidates = [(v, segment) for v in plugins["keyword"].analyze_string(segment, regexes)]
        else:
            # a value runs to the next space or quote (YAML and .env allow '#' inside); drop a list's trailing comma
            matches = _CONFIG_KEYWORD.finditer(segment)
            candidates = [(m.group("value").rstrip(",;)]}"), m.group("name")) for m in matches]
        for value, context in candidates:
            if _is_placeholder(value) or _TYPE_NAME.search(segment, 0, max(0, segment.find(value))):
                continue
            yield value, PASSWORD if _PASSWORD_WORD.search(context) else KEY

    def _is_high_entropy_secret(self, value: str, before: str) -> bool:
        if _looks_like_hash_or_id(value) or _is_fake(value) or _SRI.match(value) or _ID_NAME.search(before):
            return False
        if _DIGEST_NAME.search(before):
            return False
        if _HEX.match(value):
            return _entropy(value) > self.hex_entropy
        has_digit = any(c.isdigit() for c in value)
        has_mixed = any(c.isupper() for c in value) and any(c.islower() for c in value)
        return has_digit and has_mixed and _entropy(value) > self.base64_entropy

    def _emails(self, segment: str) -> Iterator[tuple[str, str]]:
        if self.keep_author_emails and re.search(r"(?i)author|maintainer", segment):
            return
        for match in _EMAIL.finditer(segment):
            if _URL_USERINFO.search(segment, max(0, match.start() - 200), match.start()):
                continue  # scheme://user:password@host: the password is a key, found by the basic-auth detector
            local, domain = match.group(1), match.group(2)
            tld = domain.rsplit(".", 1)[-1].lower()
            if tld in _FILE_TLDS or _PLACEHOLDER_DOMAINS.search(domain) or _SERVICE_LOCAL.match(local):
                continue
            if local.lower() in _PLACEHOLDER_LOCAL or "example" in local.lower():
                continue
            yield match.group(0), EMAIL


def _candidates(text: str) -> list[int]:
    """Sorted positions in ``text`` where something to redact may start."""
    positions = [m.start() for pattern in _CANDIDATE_PATTERNS for m in pattern.finditer(text)]
    lower = text.lower()
    for word in _CANDIDATE_WORDS:
        i = lower.find(word)
        while i >= 0:
            # "author" is not "auth" (emails on author lines are found by their "@")
            if word != "auth" or not lower.startswith("author", i) or lower.startswith("authoriz", i):
                positions.append(i)
            i = lower.find(word, i + 1)
    return sorted(set(positions))


def _redact_pem_blocks(text: str, counts: Counter[str], deadline: float) -> str:
    """Replace each whole PEM private key block (BEGIN line to END line) with ``<KEY>``.

    The END marker is looked for with ``str.find`` within a bounded distance of its BEGIN, so a file
    of many BEGIN lines with no END costs linear time, not a regex's quadratic backtracking.
    """
    pieces, position = [], 0
    for begin in _PEM_BEGIN.finditer(text):
        if begin.start() < position:
            continue
        if time.perf_counter() > deadline:
            raise BudgetExceeded
        end_marker = f"-----END {begin.group(1)}PRIVATE KEY{begin.group(2)}-----"
        end = text.find(end_marker, begin.end(), begin.end() + _PEM_MAX_CHARS)
        if end < 0:
            continue
        pieces += [text[position : begin.start()], TAGS[KEY]]
        position = end + len(end_marker)
        counts[KEY] += 1
    return "".join(pieces) + text[position:] if pieces else text


def _secret_of(match: re.Match[str], basic_auth: bool) -> str:
    """The secret in a detect-secrets plugin's match.

    Their ``analyze_string`` yields capture groups when a pattern has any, which for some
    (GitHub: ``(ghp|gho|...)_...``) is only the prefix: take the longest group only when it is
    token-sized, else the whole match.
    """
    if basic_auth:
        return match.group(1)
    groups = [g for g in match.groups() if g]
    longest = max(groups, key=len) if groups else ""
    return longest if len(longest) >= 16 else match.group(0)


def _public_ips(segment: str) -> Iterator[tuple[str, str]]:
    for pattern in (_IPV4, _IPV6):
        for match in pattern.finditer(segment):
            value = match.group(0)
            # slices ([::2], [1:2:3]) parse as IPv6: ask for three groups, as real addresses have
            if pattern is _IPV6 and sum(1 for group in value.split(":") if group) < 3:
                continue
            if pattern is _IPV4 and (
                _VERSION_BEFORE.search(segment[max(0, match.start() - 30) : match.start()])
                or _SECTION_BEFORE.search(segment[max(0, match.start() - 40) : match.start()])
                or (value.endswith(".0") and segment.startswith("/", match.end()))  # a network: 15.0.0.0/24
            ):
                continue
            try:
                address = ipaddress.ip_address(value)
            except ValueError:
                continue
            if address.is_multicast or address.is_reserved or not address.is_global:
                continue
            if value not in PUBLIC_RESOLVERS and str(address) not in PUBLIC_RESOLVERS:
                yield value, IP


def private_address(value: str) -> str:
    """The private address that replaces public address ``value`` (same value, same replacement)."""
    digest = int.from_bytes(hashlib.sha256(value.encode()).digest()[:8], "big")
    pool = PRIVATE_IPV6 if ":" in value else PRIVATE_IPV4
    return pool[digest % len(pool)]


def _replace_all(text: str, found: dict[str, str], counts: Counter[str]) -> tuple[str, Counter[str]]:
    """Replace every occurrence of every found value, longest first, in one pass over ``text``.

    Keys and emails are replaced wherever they occur (a leak is worse than a mangled token);
    passwords only as whole tokens and addresses only as whole addresses, since short passwords
    and addresses can occur inside longer words and numbers. A value that still remains after
    that (inside a longer token) is replaced raw, unless it is a short password.
    """

    def replacement(match: re.Match[str]) -> str:
        value = match.group(0)
        kind = found[value]
        counts[kind] += 1
        return private_address(value) if kind == IP else TAGS[kind]

    alternatives = []
    for value in sorted(found, key=lambda v: (-len(v), v)):
        escaped = re.escape(value)
        if found[value] == PASSWORD:
            escaped = rf"(?<![A-Za-z0-9]){escaped}(?![A-Za-z0-9])"
        elif found[value] == IP:
            escaped = rf"(?<![\w.:]){escaped}(?![\w:])" if ":" in value else rf"(?<![\w.]){escaped}(?!\w|\.\d)"
        alternatives.append(escaped)
    text = re.compile("|".join(alternatives)).sub(replacement, text)
    remaining = [v for v in found if v in text and (found[v] != PASSWORD or len(v) >= 8)]
    if remaining:
        raw = "|".join(re.escape(v) for v in sorted(remaining, key=lambda v: (-len(v), v)))
        text = re.compile(raw).sub(replacement, text)
    return text, counts


def _is_placeholder(value: str) -> bool:
    """A value in a secret's place that is not a secret: a placeholder, a reference, a name."""
    stripped = value.strip("\"'`:=")
    if len(stripped) < 4 or _PLACEHOLDER_VALUE.match(stripped) or _is_fake(stripped):
        return True
    # references, not values: ${VAR}, {{ var }}, %(var)s, $VAR, os.environ[...], <your-token>
    if re.search(r"\$\{|\{\{|%\(|^\$\w|environ|getenv|process\.env|^<.*>$|^\[.*\]$|\(\)?$", stripped):
        return True
    # code, not a value: yaml.safe_load(f), secrets['key'], config.get(
    if _EXPRESSION.match(stripped):
        return True
    # words are names, not secrets: NextToken, db_password, your-api-key, "GitLab Token", resource/Name
    if _WORDS.match(stripped) or _looks_like_hash_or_id(stripped):
        return True
    # patterns and elisions: [a-z0-9-]+:secret, \d{4}, hf_...
    if re.search(r"\[[^\]]{0,40}\]|\\[dwsS]|\.\*|\.\.\.", stripped):
        return True
    # resource names: arn:aws:iam::..., https://host/path (credentials inside URLs are found separately)
    return bool(_RESOURCE.match(stripped))


def _is_fake(value: str) -> bool:
    """Documentation keys (AKIAIOSFODNN7EXAMPLE), masks (SKxxxxxxxx...), sequences (abcdef123456)."""
    lowered = value.lower()
    return "example" in lowered or bool(_REPEATED.search(value)) or any(s in lowered for s in _SEQUENCES)


def _looks_like_hash_or_id(value: str) -> bool:
    """Hex digests (MD5, SHA-1/git SHAs, SHA-2), UUIDs: ordinary code, never secrets to redact."""
    return bool(_UUID.match(value)) or (bool(_HEX.match(value)) and len(value) in _HASH_LENGTHS)


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _load_plugins() -> dict[str, Any]:
    """detect-secrets' plugins, instantiated once per worker."""
    from detect_secrets.plugins import (
        artifactory,
        aws,
        azure_storage_key,
        basic_auth,
        cloudant,
        discord,
        github_token,
        gitlab_token,
        ibm_cloud_iam,
        ibm_cos_hmac,
        jwt,
        mailchimp,
        npm,
        openai,
        pypi_token,
        sendgrid,
        slack,
        softlayer,
        square_oauth,
        stripe,
        telegram_token,
        twilio,
    )
    from detect_secrets.plugins.keyword import REGEX_BY_FILETYPE, KeywordDetector
    from detect_secrets.util.filetype import determine_file_type

    regex_plugins = [
        aws.AWSKeyDetector(), artifactory.ArtifactoryDetector(), azure_storage_key.AzureStorageKeyDetector(),
        basic_auth.BasicAuthDetector(), cloudant.CloudantDetector(), discord.DiscordBotTokenDetector(),
        github_token.GitHubTokenDetector(), gitlab_token.GitLabTokenDetector(), ibm_cloud_iam.IbmCloudIamDetector(),
        ibm_cos_hmac.IbmCosHmacDetector(), jwt.JwtTokenDetector(), mailchimp.MailchimpDetector(), npm.NpmDetector(),
        openai.OpenAIDetector(), pypi_token.PypiTokenDetector(), sendgrid.SendGridDetector(), slack.SlackDetector(),
        softlayer.SoftlayerDetector(), square_oauth.SquareOAuthDetector(), stripe.StripeDetector(),
        telegram_token.TelegramBotTokenDetector(), twilio.TwilioKeyDetector(),
    ]

    def keyword_regexes(path: str) -> Any:
        return REGEX_BY_FILETYPE.get(determine_file_type(path))

    return {"regex": regex_plugins, "keyword": KeywordDetector(), "keyword_regexes": keyword_regexes}


def _with_redactions(kept: pa.Table, redacted: list[bytes], pii: list[list[dict[str, Any]]]) -> pa.Table:
    """The rows with ``pii`` (``with_pii``): the redacted content, its new sha256 and length, and the counts."""
    columns = {name: kept[name] for name in kept.column_names}
    columns["content"] = binary_array(redacted, pa.large_string())
    columns["sha256"] = pa.array([hashlib.sha256(b).hexdigest() for b in redacted], pa.string())
    columns["length_bytes"] = pa.array([len(b) for b in redacted], pa.int64())
    columns["pii"] = pa.array(pii, PII_TYPE)
    schema = with_pii(kept.schema)
    return pa.table([columns[f.name] for f in schema], schema=schema)
