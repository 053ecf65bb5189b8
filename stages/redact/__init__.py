"""Redact: emails, keys and tokens, passwords, public IP addresses, card and phone numbers, replaced in place.

- email → ``<EMAIL>``: regex + validation, internationalised addresses too (``José.Müller@exämple.de``,
  ``用户@例子.广告``); placeholder domains, ``noreply``-style senders and image names like
  ``icon@2x.png`` are skipped.
- key → ``<KEY>``: detect-secrets' regex plugins; patterns of ours where a plugin is missing or
  partial (GitHub fine-grained and classic tokens, npm, GCP, Azure client secrets, whole JWTs,
  AWS secret keys in config files); whole PEM private key blocks; high-entropy strings in
  assignments, minus hex digests, UUIDs, all-digit strings (``PI_DIGITS = "3141..."``),
  ``integrity=`` values and lock files.
- password → ``<PASSWORD>``: detect-secrets' keyword detector on code, a config-style keyword
  pattern on other files, minus placeholders (``changeme``, ``${VAR}``, ``os.environ[...]``).
- ip_address → a private address picked by a hash of the value: global addresses only, minus
  documentation ranges, public DNS resolvers and version numbers.
- credit_card → ``<CREDIT_CARD>``: 13-19 digits, bare or in 4-4-4-4 / 4-6-5 groups split by spaces or
  dashes, with an issuer's prefix and length (Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay)
  and a valid Luhn check digit. Payment providers' published test numbers (``TEST_CARDS`` in
  ``patterns``: Stripe's 4242424242424242, 4111111111111111, 378282246310005, ...) and masks
  (8 equal digits in a row) stay: nobody's card. Bare digits after an identifier's name
  (``order_id = ...``) stay too.
- phone_number → ``<PHONE>``: numbers that libphonenumber (``phonenumbers``) validates, only in a
  phone-like format (``+44 20 7946 0958``, ``(415) 555-2671``, ``415-555-2671``) or after a phone
  keyword (tel, phone, fax, mobile, cell, call, ☎); national formats are read as North American,
  and after a keyword also as those of ``PHONE_REGIONS_WITH_KEYWORD``. Versions, dates, times, IP
  addresses, bare numeric literals, ids, hashes and UUIDs are left alone, and so are the numbers
  reserved for fiction (US 555-0100..0199, Ofcom's drama ranges).

Speed: detect-secrets line by line is ~0.05 MB/s. Here one compiled prefilter pass over each file
finds candidate positions; the detectors run only on the lines around them (a bounded window on
long lines), each of their patterns only where the literals it cannot match without are
(``patterns._GATES``, found with one Aho-Corasick pass over the segment), and the values they
confirm are then replaced everywhere in the file in one pass, so the same value always gets the
same replacement. Values never leave this package: not in counters,
ledger details, logs or exceptions.

Layout: ``patterns`` holds the compiled patterns and word lists, ``detectors`` the prefilter, the
detectors and their exclusions, and detect-secrets' plugins; this module the stage.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa

from schemas import PII_TYPE, with_pii
from stages.base import Reason, RowStage, StageResult, binary_array, split
from stages.redact.detectors import (
    _CONFIG_KEYWORD_GATE,
    _KEYWORD_GATE,
    _OWN_KEY_GATED,
    BudgetExceeded,
    _candidates,
    _cards,
    _emails,
    _gate_words,
    _gated_regexes,
    _is_fake,
    _is_high_entropy_secret,
    _is_placeholder,
    _load_plugins,
    _open,
    _phones,
    _public_ips,
    _redact_pem_blocks,
    _secret_of,
    private_address,
)
from stages.redact.patterns import (
    _BASIC_AUTH,
    _CODE_EXTENSIONS,
    _CONFIG_KEYWORD,
    _HIGH_ENTROPY,
    _LOCK_FILES,
    _PASSWORD_WORD,
    _PHONE_GATE,
    _TYPE_NAME,
    CREDIT_CARD,
    EMAIL,
    IP,
    KEY,
    KINDS,
    PASSWORD,
    PHONE,
    PRIVATE_IPV4,
    PRIVATE_IPV6,
    PUBLIC_RESOLVERS,
    TAGS,
    TEST_CARDS,
)

__all__ = [
    "CREDIT_CARD", "EMAIL", "IP", "KEY", "KINDS", "PASSWORD", "PHONE", "PRIVATE_IPV4", "PRIVATE_IPV6",
    "PUBLIC_RESOLVERS", "TAGS", "TEST_CARDS", "BudgetExceeded", "Redact", "RedactConfig", "private_address",
]


@dataclass(frozen=True)
class RedactConfig:
    """The ``[redact]`` section.

    ``enabled``: off is for corpora that are redacted elsewhere (the dataset card says so).
    ``keep_author_emails`` keeps emails on package-author lines (``author_email=``, ``"author":``,
    ``Maintainer:``). ``time_budget_s`` + ``time_budget_s_per_mb`` bound the CPU time of the thread
    redacting a file (``time.thread_time``, not the wall clock: a worker's other threads holding the
    GIL, or a loaded machine, must not change which files pass): one that runs out goes to the
    ledger (redaction_failed), never out unredacted.
    ``window_chars``: the text looked at around a prefilter hit on a long line. ``base64_entropy``
    and ``hex_entropy``: the Shannon entropy a quoted value needs to count as a secret.
    """

    enabled: bool = True
    keep_author_emails: bool = False
    time_budget_s: float = 2.0
    time_budget_s_per_mb: float = 4.0
    window_chars: int = 2000
    base64_entropy: float = 4.5
    hex_entropy: float = 3.0


@dataclass(frozen=True)
class Redact(RowStage):
    """Redaction stage: replaces what it finds in ``content``, fills ``pii``, updates ``sha256``/length.

    The resource is detect-secrets' plugins (``setup()``), read-only once built.
    """

    config: RedactConfig = field(default_factory=RedactConfig)
    name: ClassVar[str] = "redact"
    reads_content: ClassVar[bool] = True

    def setup(self) -> dict[str, Any]:
        return _load_plugins()

    def process(self, table: pa.Table, plugins: dict[str, Any]) -> StageResult:
        """Dataset rows in (with ``content``); the same rows redacted, with ``pii``, out."""
        texts = table["content"].to_pylist()
        paths = table["path"].to_pylist()
        reasons: list[Reason | None] = [None] * table.num_rows
        details: list[str | None] = [None] * table.num_rows
        redacted: list[bytes] = []
        pii: list[list[dict[str, Any]]] = []
        totals: Counter[str] = Counter()
        for i, text in enumerate(texts):
            try:
                new_text, counts = self.redact(text, paths[i], plugins)
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

    def redact(self, text: str, path: str, plugins: dict[str, Any]) -> tuple[str, Counter[str]]:
        """``text`` with everything found replaced, and the number of replacements per kind."""
        budget = self.config.time_budget_s + self.config.time_budget_s_per_mb * len(text) / 1e6
        deadline = time.thread_time() + budget  # this thread's CPU seconds (see RedactConfig)
        counts: Counter[str] = Counter()
        text = _redact_pem_blocks(text, counts, deadline)
        found: dict[str, str] = {}
        for segment in self._segments(text, deadline):
            for value, kind in self._find(segment, path, plugins):
                found.setdefault(value, kind)  # detectors run keys first: a key in a password field stays a key
        if not found:
            return text, counts
        return _replace_all(text, found, counts)

    def _segments(self, text: str, deadline: float) -> Iterator[str]:
        """The text around every prefilter hit: whole lines, or a window on long lines."""
        last_end = -1
        half = self.config.window_chars // 2
        for pos in _candidates(text):
            if pos < last_end:
                continue
            if time.thread_time() > deadline:
                raise BudgetExceeded
            start = text.rfind("\n", 0, pos) + 1
            end = text.find("\n", pos)
            end = len(text) if end < 0 else end
            if end - start > self.config.window_chars:
                start, end = max(start, pos - half), min(end, pos + half)
            last_end = end
            yield text[start:end]

    def _find(self, segment: str, path: str, plugins: dict[str, Any]) -> Iterator[tuple[str, str]]:
        """(value, kind) for everything to redact in ``segment``.

        A pattern runs only where its gate's words are (``detectors._open``): the others cannot match there.
        """
        lock_file = posixpath.basename(path).lower() in _LOCK_FILES
        sensitive, insensitive = _gate_words(segment)
        gated = plugins.get("regex_gated") or _gated_regexes(plugins["regex"])
        for regex, basic_auth, _ in _open(gated, sensitive, insensitive):
            for match in regex.finditer(segment):
                value = _secret_of(match, basic_auth)
                # basic-auth passwords can be short; other tokens have a fixed, long shape
                if basic_auth and _is_placeholder(value) or len(value) < 8 and not basic_auth:
                    continue
                if not _is_fake(value):
                    yield value, KEY
        if "://" in segment:
            for match in _BASIC_AUTH.finditer(segment):
                if not _is_placeholder(match.group(1)):
                    yield match.group(1), KEY
        for pattern, _ in _open(_OWN_KEY_GATED, sensitive, insensitive):
            for match in pattern.finditer(segment):
                value = match.group(match.lastindex or 0)
                if not _is_fake(value):
                    yield value, KEY
        # before the keyword detectors: a card or a phone number in a "token" field keeps its own tag
        yield from _cards(segment)
        if _PHONE_GATE.search(segment):
            yield from _phones(segment)
        yield from self._keywords(segment, path, plugins, insensitive)
        if not lock_file and ('"' in segment or "'" in segment):
            for match in _HIGH_ENTROPY.finditer(segment):
                value = match.group(2)
                before = segment[max(0, match.start() - 30) : match.start()]
                if _is_high_entropy_secret(value, before, self.config.base64_entropy, self.config.hex_entropy):
                    yield value, KEY
        yield from _emails(segment, self.config.keep_author_emails)
        yield from _public_ips(segment)

    def _keywords(
        self, segment: str, path: str, plugins: dict[str, Any], insensitive: set[str] | None = None
    ) -> Iterator[tuple[str, str]]:
        """Keyword detections; ``insensitive``: the case-insensitive gate words in ``segment``
        (``detectors._gate_words``; None: not known, or not an ASCII segment)."""
        extension = posixpath.splitext(path)[1][1:].lower()
        if extension in _CODE_EXTENSIONS:
            if insensitive is not None and insensitive.isdisjoint(_KEYWORD_GATE):
                return  # none of detect-secrets' keywords (api_key, password, secret, ...) is there
            regexes = plugins["keyword_regexes"](path)
            candidates = [(v, segment) for v in plugins["keyword"].analyze_string(segment, regexes)]
        else:
            if insensitive is not None and insensitive.isdisjoint(_CONFIG_KEYWORD_GATE):
                return
            # a value runs to the next space or quote (YAML and .env allow '#' inside); drop a list's trailing comma
            matches = _CONFIG_KEYWORD.finditer(segment)
            candidates = [(m.group("value").rstrip(",;)]}"), m.group("name")) for m in matches]
        for value, context in candidates:
            if _is_placeholder(value) or _TYPE_NAME.search(segment, 0, max(0, segment.find(value))):
                continue
            yield value, PASSWORD if _PASSWORD_WORD.search(context) else KEY


def _replace_all(text: str, found: dict[str, str], counts: Counter[str]) -> tuple[str, Counter[str]]:
    """Replace every occurrence of every found value, longest first, in one pass over ``text``.

    Keys and emails are replaced wherever they occur (a leak is worse than a mangled token);
    passwords only as whole tokens, addresses only as whole addresses, and card and phone numbers
    only where no digit or word character touches them, since these can occur inside longer words
    and numbers. A value that still remains after that (inside a longer token) is replaced raw,
    unless it is a short password, a card or a phone number (digits inside a longer number are not
    that number).
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
        elif found[value] in (CREDIT_CARD, PHONE):
            escaped = rf"(?<![\w+]){escaped}(?!\w)"
        elif found[value] == IP:
            escaped = rf"(?<![\w.:]){escaped}(?![\w:])" if ":" in value else rf"(?<![\w.]){escaped}(?!\w|\.\d)"
        alternatives.append(escaped)
    text = re.compile("|".join(alternatives)).sub(replacement, text)
    remaining = [v for v in found if v in text and found[v] not in (CREDIT_CARD, PHONE)
                 and (found[v] != PASSWORD or len(v) >= 8)]
    if remaining:
        raw = "|".join(re.escape(v) for v in sorted(remaining, key=lambda v: (-len(v), v)))
        text = re.compile(raw).sub(replacement, text)
    return text, counts


def _with_redactions(kept: pa.Table, redacted: list[bytes], pii: list[list[dict[str, Any]]]) -> pa.Table:
    """The rows with ``pii`` (``with_pii``): the redacted content, its new sha256 and length, and the counts."""
    columns = {name: kept[name] for name in kept.column_names}
    columns["content"] = binary_array(redacted, pa.large_string())
    columns["sha256"] = pa.array([hashlib.sha256(b).hexdigest() for b in redacted], pa.string())
    columns["length_bytes"] = pa.array([len(b) for b in redacted], pa.int64())
    columns["pii"] = pa.array(pii, PII_TYPE)
    schema = with_pii(kept.schema)
    return pa.table([columns[f.name] for f in schema], schema=schema)
