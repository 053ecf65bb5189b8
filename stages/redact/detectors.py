"""The redaction stage's detectors and their helpers: the candidate prefilter, PEM private key blocks,
detect-secrets' match groups, emails, public IP addresses (and their private replacements), credit-card
numbers, phone numbers, the high-entropy test, placeholder / fake-value / hash exclusions, and
detect-secrets' plugins."""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import ahocorasick
import phonenumbers

from stages.redact.patterns import (
    _CANDIDATE_PATTERNS,
    _CANDIDATE_WORDS,
    _CARD,
    _CARD_ID_BEFORE,
    _CARD_ISSUERS,
    _CARD_RUN,
    _CONFIG_KEYWORD_WORDS,
    _DATE_LIKE,
    _DIGEST_NAME,
    _DOTTED_PHONE,
    _EMAIL,
    _EXPRESSION,
    _FICTIONAL,
    _FILE_TLDS,
    _GATES,
    _HASH_LENGTHS,
    _HEX,
    _ID_NAME,
    _IPV4,
    _IPV6,
    _KEYWORD_WORDS,
    _NUMBER_PATTERNS,
    _OWN_KEY_PATTERNS,
    _PEM_BEGIN,
    _PEM_MAX_CHARS,
    _PHONE_CANDIDATE,
    _PHONE_FORMAT,
    _PHONE_GATE,
    _PHONE_KEYWORD,
    _PHONE_KEYWORD_CHARS,
    _PHONE_KEYWORD_WORDS,
    _PHONE_SEQUENCE,
    _PHONE_WORDS,
    _PLACEHOLDER_DOMAINS,
    _PLACEHOLDER_LOCAL,
    _PLACEHOLDER_VALUE,
    _REPEATED,
    _RESOURCE,
    _SECTION_BEFORE,
    _SEQUENCES,
    _SERVICE_LOCAL,
    _SRI,
    _URL_USERINFO,
    _UUID,
    _VERSION_BEFORE,
    _WORDS,
    CREDIT_CARD,
    EMAIL,
    IP,
    KEY,
    PHONE,
    PHONE_REGIONS_WITH_KEYWORD,
    PRIVATE_IPV4,
    PRIVATE_IPV6,
    PUBLIC_RESOLVERS,
    TAGS,
    TEST_CARDS,
)

_NUMBER_WINDOW = 1000  # as RedactConfig.window_chars / 2
_NOT_DIGIT = re.compile(r"[^0-9]")
_FOUR_DIGITS = re.compile(r"\d{4}")  # as _CARD's \d: any Unicode digit


class BudgetExceeded(Exception):
    """A file took longer than its time budget; it goes to the ledger, never out unredacted."""



def _word_automaton() -> ahocorasick.Automaton:
    """The prefilter's words (``_CANDIDATE_WORDS``, ``_PHONE_WORDS``) as one automaton: each value is
    (length, whether it is a phone word). Built once; only read afterwards (``iter`` is thread-safe)."""
    automaton = ahocorasick.Automaton()
    for word in _CANDIDATE_WORDS:
        automaton.add_word(word, (len(word), False))
    for word in _PHONE_WORDS:
        if word in _CANDIDATE_WORDS:
            raise ValueError(f"{word!r} is a candidate word and a phone word")
        automaton.add_word(word, (len(word), True))
    automaton.make_automaton()
    return automaton


_PREFILTER_WORDS = _word_automaton()


#: A pattern's gate: (case-insensitive, groups of words); the segment must hold a word of every group. No groups:
#: the pattern runs on every segment.
Gate = tuple[bool, tuple[frozenset[str], ...]]


def _gate_of(pattern: re.Pattern[str]) -> Gate:
    """``pattern``'s gate (``patterns._GATES``); a pattern missing there has none, and runs on every segment."""
    ignore_case, groups = _GATES.get(pattern.pattern, (False, ()))
    return ignore_case, tuple(frozenset(group) for group in groups)


def _gate_automata() -> tuple[ahocorasick.Automaton, ahocorasick.Automaton]:
    """The gates' words as two automata, the case-sensitive ones and the case-insensitive ones (looked for in
    the lowercased segment); each value is its word. Built once; only read afterwards."""
    sensitive, insensitive = ahocorasick.Automaton(), ahocorasick.Automaton()
    for ignore_case, groups in _GATES.values():
        for word in (w for group in groups for w in group):
            if ignore_case and word != word.lower():
                raise ValueError(f"{word!r}: a case-insensitive gate word must be lowercase")
            (insensitive if ignore_case else sensitive).add_word(word, word)
    for word in (*_KEYWORD_WORDS, *_CONFIG_KEYWORD_WORDS):
        insensitive.add_word(word, word)
    sensitive.make_automaton()
    insensitive.make_automaton()
    return sensitive, insensitive


_GATE_SENSITIVE, _GATE_INSENSITIVE = _gate_automata()
_KEYWORD_GATE = frozenset(_KEYWORD_WORDS)
_CONFIG_KEYWORD_GATE = frozenset(_CONFIG_KEYWORD_WORDS)


def _gate_words(segment: str) -> tuple[set[str], set[str] | None]:
    """The gates' words in ``segment``: the case-sensitive ones, and the case-insensitive ones, or None where
    ``segment`` is not ASCII (there every case-insensitive gate stays open)."""
    sensitive = {word for _, word in _GATE_SENSITIVE.iter(segment)}
    if not segment.isascii():
        return sensitive, None
    return sensitive, {word for _, word in _GATE_INSENSITIVE.iter(segment.lower())}


def _open(gated: list[tuple[Any, ...]], sensitive: set[str], insensitive: set[str] | None) -> list[tuple[Any, ...]]:
    """The entries of ``gated`` (each ending with its pattern's ``Gate``) whose pattern may match in the segment
    with these gate words (``_gate_words``), in their order."""
    out = []
    for entry in gated:
        ignore_case, groups = entry[-1]
        if groups:
            words = insensitive if ignore_case else sensitive
            if words is not None:
                if not words:
                    continue
                for group in groups:
                    if words.isdisjoint(group):
                        break
                else:
                    out.append(entry)
                continue
        out.append(entry)
    return out


_OWN_KEY_GATED = [(pattern, _gate_of(pattern)) for pattern in _OWN_KEY_PATTERNS]


def _gated_regexes(regex_plugins: list[Any]) -> list[tuple[re.Pattern[str], bool, Gate]]:
    """(pattern, whether it is basic auth's, its gate) for every pattern of detect-secrets' regex plugins."""
    return [(regex, plugin.secret_type == "Basic Auth Credentials", _gate_of(regex))
            for plugin in regex_plugins for regex in plugin.denylist]


def _candidates(text: str) -> list[int]:
    """Sorted positions in ``text`` where something to redact may start.

    Digit runs and phone keywords count only near a card or phone number the detectors find on
    their line: they are common, card and phone numbers are not.
    """
    positions = [m.start() for pattern in _CANDIDATE_PATTERNS for m in pattern.finditer(text)]
    lower = text.lower()
    number_hits = [m.start() for pattern in _NUMBER_PATTERNS for m in pattern.finditer(text)]
    for end, (length, is_phone_word) in _PREFILTER_WORDS.iter(lower):  # every word in one pass (Aho-Corasick)
        i = end - length + 1
        if is_phone_word:
            number_hits.append(i)
        # "author" is not "auth" (emails on author lines are found by their "@")
        elif not lower.startswith("author", i) or lower.startswith("authoriz", i):
            positions.append(i)
    lines: dict[int, list[int]] = {}  # line start → where its card and phone numbers start
    for pos in number_hits:
        start = text.rfind("\n", 0, pos) + 1
        if start not in lines:
            end = text.find("\n", pos)
            end = len(text) if end < 0 else end
            # most phone words are on lines with no number: _cards needs _FOUR_DIGITS, _phones _PHONE_GATE
            if _FOUR_DIGITS.search(text, start, end) is None and _PHONE_GATE.search(text, start, end) is None:
                lines[start] = []
                continue
            line = text[start:end]
            found = [*_cards(line), *(_phones(line) if _PHONE_GATE.search(line) else ())]
            lines[start] = [start + line.find(value) for value, _ in found]
        # near a number found on the line: _segments looks at the same window around this position
        if any(abs(at - pos) < _NUMBER_WINDOW for at in lines[start]):
            positions.append(pos)
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
        if time.thread_time() > deadline:
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
    for pattern, separator, lead in ((_IPV4, ".", 3), (_IPV6, ":", 4)):
        # an address's first separator is at most ``lead`` characters after its start: the search starts there
        # (the lookbehinds still see what is before it), which spares it trying every position before
        first = segment.find(separator)
        if first < 0:
            continue
        for match in pattern.finditer(segment, max(0, first - lead)):
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


def _is_high_entropy_secret(value: str, before: str, base64_entropy: float, hex_entropy: float) -> bool:
    """Whether quoted ``value`` (``before``: the text just before it) is a high-entropy secret."""
    if value.isdigit():  # digits alone (pi, ids, timestamps) are numbers, never a random token
        return False
    if _looks_like_hash_or_id(value) or _is_fake(value) or _SRI.match(value) or _ID_NAME.search(before):
        return False
    if _DIGEST_NAME.search(before):
        return False
    if _HEX.match(value):
        return _entropy(value) > hex_entropy
    has_digit = any(c.isdigit() for c in value)
    has_mixed = any(c.isupper() for c in value) and any(c.islower() for c in value)
    return has_digit and has_mixed and _entropy(value) > base64_entropy


def _emails(segment: str, keep_author_emails: bool) -> Iterator[tuple[str, str]]:
    if keep_author_emails and re.search(r"(?i)author|maintainer", segment):
        return
    at = segment.find("@")
    if at < 0:
        return
    # a local part is at most 64 characters: no address starts before that much ahead of the first "@"
    for match in _EMAIL.finditer(segment, max(0, at - 64)):
        if _URL_USERINFO.search(segment, max(0, match.start() - 200), match.start()):
            continue  # scheme://user:password@host: the password is a key, found by the basic-auth detector
        local, domain = match.group(1), match.group(2)
        tld = domain.rsplit(".", 1)[-1].lower()
        if tld in _FILE_TLDS or _PLACEHOLDER_DOMAINS.search(domain) or _SERVICE_LOCAL.match(local):
            continue
        if local.lower() in _PLACEHOLDER_LOCAL or "example" in local.lower():
            continue
        yield match.group(0), EMAIL


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check every payment card number passes."""
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = ord(c) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def is_card_number(digits: str) -> bool:
    """Whether ``digits`` is a payment card number someone may hold: an issuer's prefix and length, the
    Luhn check, and neither a provider's published test number (``TEST_CARDS``) nor a mask (8 equal
    digits in a row)."""
    if not any(prefix.match(digits) and len(digits) in lengths for prefix, lengths in _CARD_ISSUERS):
        return False
    return luhn_valid(digits) and digits not in TEST_CARDS and not _CARD_RUN.search(digits)


def _cards(segment: str) -> Iterator[tuple[str, str]]:
    # every card number starts with 4 digits: the search starts at the first 4 (_CARD's lookbehinds still see
    # what is before it), which spares it trying the lookbehinds at every position before
    first = _FOUR_DIGITS.search(segment)
    if first is None:
        return
    for match in _CARD.finditer(segment, first.start()):
        value = match.group(0)
        digits = value.replace(" ", "").replace("-", "")
        if not is_card_number(digits):
            continue
        if value.isdigit() and _CARD_ID_BEFORE.search(segment, max(0, match.start() - 30), match.start()):
            continue  # order_id = 4111...: an identifier that happens to pass the check
        yield value, CREDIT_CARD


def _phones(segment: str) -> Iterator[tuple[str, str]]:
    """Phone numbers libphonenumber finds valid, in a phone-like format or after a phone keyword.

    A number with no +country code is read as North American; after a phone keyword, also in the
    national formats of ``PHONE_REGIONS_WITH_KEYWORD`` (the first that is valid wins). Left alone:
    digit runs or two groups with no keyword (numeric literals, ids, timestamps), dates and times,
    dot-separated groups other than 3.3.4 (versions, IP addresses), anything glued to a letter, a
    digit or a dot, and the numbers reserved for fiction (US 555-01xx, Ofcom's drama ranges).
    """
    keyword_ends: list[int] | None = None
    for match in _PHONE_CANDIDATE.finditer(segment):
        raw = match.group(0)
        digits = len(_NOT_DIGIT.sub("", raw))
        if not 7 <= digits <= 15:
            continue
        if keyword_ends is None:
            keyword_ends = [m.end() for m in _PHONE_KEYWORD.finditer(segment)] if _may_hold_phone_keyword(
                segment) else []
        after_keyword = any(0 <= match.start() - end <= _PHONE_KEYWORD_CHARS for end in keyword_ends)
        if not (after_keyword or _PHONE_FORMAT.search(raw)):
            continue
        if not _phone_context_ok(segment, match.start(), match.end(), raw):
            continue
        number = _valid_number(raw, after_keyword)
        if number is None or _PHONE_SEQUENCE.search(str(number.national_number)):
            continue
        fictional = _FICTIONAL.get(number.country_code)
        if not (fictional and fictional.match(str(number.national_number))):
            yield raw, PHONE


def _may_hold_phone_keyword(segment: str) -> bool:
    """False where ``_PHONE_KEYWORD`` cannot match: an ASCII segment without any of its words (``_PHONE_KEYWORD``
    tries every position, its lookbehind first; the words are found at memchr speed). Any other segment: True."""
    if not segment.isascii():
        return True  # (?i) also matches non-ASCII letters to ASCII ones (K, the Kelvin sign, is k)
    lower = segment.lower()
    return any(word in lower for word in _PHONE_KEYWORD_WORDS)


def _valid_number(raw: str, after_keyword: bool) -> phonenumbers.PhoneNumber | None:
    regions = (None,) if raw.startswith("+") else ("US", *PHONE_REGIONS_WITH_KEYWORD) if after_keyword else ("US",)
    for region in regions:
        try:
            number = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return number
    return None


def _phone_context_ok(segment: str, start: int, end: int, raw: str) -> bool:
    before = segment[start - 1] if start else " "
    after = segment[end] if end < len(segment) else " "
    if before.isalnum() or before in "_.-/#:" and not segment[max(0, start - 4):start].lower().endswith("tel:"):
        return False  # part of a word, a path, a version, an anchor or a port
    if after.isalnum() or after == "_" or after in ".-/:" and segment[end + 1 : end + 2].isdigit():
        return False
    if "." in raw and not _DOTTED_PHONE.match(raw):
        return False
    return not _DATE_LIKE.search(segment, max(0, start - 3), end + 3)  # 2024-01-15 10, 15.01.2024


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

    return {"regex": regex_plugins, "regex_gated": _gated_regexes(regex_plugins), "keyword": KeywordDetector(),
            "keyword_regexes": keyword_regexes}
