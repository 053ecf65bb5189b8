"""The redaction stage's compiled patterns and word lists: the prefilter's, the detectors' and the
exclusions' (placeholders, hashes, identifiers, lock files). Every quantifier is bounded."""

from __future__ import annotations

import re

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
