"""The redaction stage's compiled patterns and word lists: the prefilter's, the detectors' and the
exclusions' (placeholders, hashes, identifiers, lock files). Every quantifier is bounded."""

from __future__ import annotations

import re

EMAIL, KEY, PASSWORD, IP = "email", "key", "password", "ip_address"
CREDIT_CARD, PHONE = "credit_card", "phone_number"
KINDS = (CREDIT_CARD, EMAIL, IP, KEY, PASSWORD, PHONE)
TAGS = {CREDIT_CARD: "<CREDIT_CARD>", EMAIL: "<EMAIL>", KEY: "<KEY>", PASSWORD: "<PASSWORD>", PHONE: "<PHONE>"}

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
# found in one Aho-Corasick pass over the lowercased text (``detectors._PREFILTER_WORDS``). Every
# quantifier is bounded: no input makes a pattern backtrack more than a constant per position.
_CANDIDATE_PATTERNS = [
    re.compile(r"@[\w-]{1,63}\."),  # email domains
    re.compile(r"\.\d{1,3}\.\d{1,3}\.\d"),  # dotted quads, from the first dot
    re.compile(r":[0-9A-Fa-f]{1,4}:"),  # IPv6 (not C++'s "::")
    re.compile(r"::[0-9A-Fa-f]{1,4}\b"),  # IPv6 ending in a compressed group
    re.compile(r"://[^\s/:@]{1,128}:[^\s/@]{1,256}@"),  # scheme://user:password@
    # long quoted tokens with a digit (high-entropy candidates; random 20+ char tokens have digits); the
    # 20 characters are looked at before the digit, which fails sooner on most quotes (the same positions:
    # no quote is among the 20)
    re.compile(r"\"(?=[A-Za-z0-9+/=_-]{20})(?=[A-Za-z+/=_-]{0,60}\d)"),
    re.compile(r"'(?=[A-Za-z0-9+/=_-]{20})(?=[A-Za-z+/=_-]{0,60}\d)"),
    re.compile(r"-us\d"),  # Mailchimp
    re.compile(r"AC[0-9a-f]{32}"),  # Twilio (two patterns, each led by its literal: an alternation is 6x slower)
    re.compile(r"SK[0-9a-f]{32}"),
    re.compile(r"Q~(?<=\dQ~)"),  # Azure client secrets: led by the literal, the digit checked behind it
]
#: Card and phone numbers' prefilter: hits the card and phone detectors confirm on their line before the
#: line is looked at by every detector (digit runs are common; cards and phone numbers are not).
_NUMBER_PATTERNS = [
    # one scan for digits: card numbers (13+ digits, bare or in 4-4-4-4 groups split by a space or a
    # dash) and 3+ separated digit groups (4-6-5 cards, phone numbers); [0-9] is faster than \d
    re.compile(r"[0-9](?:[0-9]{3}[ -]?[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]|[0-9]{1,4}[ .-][0-9]{2,6}[ .-][0-9]{2,5})"),
    # phone numbers with a +country code or an (area code)
    re.compile(r"\+[0-9]{1,3}[ .(-]{0,2}[0-9]"),
    re.compile(r"\([0-9]{2,5}\)[ .-]?[0-9]"),
]
#: Phone keywords: a number written bare is a phone number only after one of them (confirmed the same way).
_PHONE_WORDS = ("phone", "tel", "fax", "mobil", "call", "contact", "\u260e")
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
#: The literals each key pattern (ours and detect-secrets' plugins', by pattern text) cannot match without:
#: (case-insensitive, groups), where every group must have one of its words in the text. A pattern is run on a
#: segment only if its words are there (``detectors._gates``), which leaves its matches as they are: a pattern
#: missing here always runs. Case-insensitive words are lowercase and looked for in an ASCII segment's
#: ``lower()``; on any other segment those patterns always run, as Unicode case folding matches more than
#: ``str.lower`` finds (``ſ`` is ``s``, the Kelvin sign is ``k``). Key-sounding names: ``api_key``, ``pwd``, ...
_KEY_NAME = ("key", "pw", "pass", "token")
_GATES: dict[str, tuple[bool, tuple[tuple[str, ...], ...]]] = {
    # ours (_OWN_KEY_PATTERNS)
    _OWN_KEY_PATTERNS[0].pattern: (False, (("github_pat_",),)),
    _OWN_KEY_PATTERNS[1].pattern: (False, (("glpat-",),)),
    _OWN_KEY_PATTERNS[2].pattern: (False, (("npm_",),)),
    _OWN_KEY_PATTERNS[3].pattern: (False, (("AIza",),)),
    _OWN_KEY_PATTERNS[4].pattern: (False, (("Q~",),)),
    _OWN_KEY_PATTERNS[5].pattern: (False, (("k_test_",),)),
    _OWN_KEY_PATTERNS[6].pattern: (False, (("k_live_",),)),
    _OWN_KEY_PATTERNS[7].pattern: (False, (("eyJ",),)),
    _OWN_KEY_PATTERNS[8].pattern: (True, (("aws",), ("secret", "key"))),
    _OWN_KEY_PATTERNS[9].pattern: (True, (("xox",),)),
    # detect-secrets 1.5's plugins (a pattern of another version that is not here runs on every segment)
    r"(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}": (False, (("A3T", "ABIA", "ACCA", "AKIA", "ASIA"),)),
    r"aws.{0,20}?(?:key|pwd|pw|password|pass|token).{0,20}?[\'\"]([0-9a-zA-Z/+]{40})[\'\"]": (True, (("aws",),
                                                                                                 _KEY_NAME)),
    r'(?:\s|=|:|"|^)AKC[a-zA-Z0-9]{10,}(?:\s|"|$)': (False, (("AKC",),)),
    r'(?:\s|=|:|"|^)AP[\dABCDEF][a-zA-Z0-9]{8,}(?:\s|"|$)': (False, (("AP",),)),
    r"AccountKey=[a-zA-Z0-9+\/=]{88}": (False, (("AccountKey=",),)),
    r"://[^:/\?\#\[\]@!\$\&'\(\)\*\+,;=\s]+:([^:/\?\#\[\]@!\$\&'\(\)\*\+,;=\s]+)@": (False, (("://",),)),
    r'(?:(?<=\W)|(?<=^))(?:\[|)(?:"|\'|)(?:cloudant|cl|clou)(?:_|-|)(?:api|)(?:key|pwd|pw|password|pass|token)'
    r'(?:"|\'|)(?:\]|)(?: *)(?:=|:|:=|=>| +|::)(?: *)(?:"|\'|)([0-9a-f]{64})(?:"|\'|)': (True, (("cl",), _KEY_NAME)),
    r'(?:(?<=\W)|(?<=^))(?:\[|)(?:"|\'|)(?:cloudant|cl|clou)(?:_|-|)(?:api|)(?:key|pwd|pw|password|pass|token)'
    r'(?:"|\'|)(?:\]|)(?: *)(?:=|:|:=|=>| +|::)(?: *)(?:"|\'|)([a-z]{24})(?:"|\'|)': (True, (("cl",), _KEY_NAME)),
    r"(?:https?\:\/\/)[\w\-]+\:([0-9a-f]{64})\@[\w\-]+\.cloudant\.com": (True, (("://",), ("cloudant.com",))),
    r"(?:https?\:\/\/)[\w\-]+\:([a-z]{24})\@[\w\-]+\.cloudant\.com": (True, (("://",), ("cloudant.com",))),
    r"(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9_]{36}": (False, (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),)),
    r"(glpat|gldt|glft|glsoat|glrt)-[A-Za-z0-9_\-]{20,50}(?!\w)": (False, (("glpat-", "gldt-", "glft-", "glsoat-",
                                                                             "glrt-"),)),
    r"GR1348941[A-Za-z0-9_\-]{20,50}(?!\w)": (False, (("GR1348941",),)),
    r"glcbt-([0-9a-fA-F]{2}_)?[A-Za-z0-9_\-]{20,50}(?!\w)": (False, (("glcbt-",),)),
    r"glimt-[A-Za-z0-9_\-]{25}(?!\w)": (False, (("glimt-",),)),
    r"glptt-[A-Za-z0-9_\-]{40}(?!\w)": (False, (("glptt-",),)),
    r"glagent-[A-Za-z0-9_\-]{50,1024}(?!\w)": (False, (("glagent-",),)),
    r"gloas-[A-Za-z0-9_\-]{64}(?!\w)": (False, (("gloas-",),)),
    r'(?:(?<=\W)|(?<=^))(?:\[|)(?:"|\'|)(?:ibm(?:_|-|)cloud(?:_|-|)iam|cloud(?:_|-|)iam|ibm(?:_|-|)cloud|ibm(?:_|-|)iam'
    r'|ibm|iam|cloud|)(?:_|-|)(?:api|)(?:_|-|)(?:key|pwd|password|pass|token)(?:"|\'|)(?:\]|)(?: *)(?:=|:|:=|=>| +|::)'
    r'(?: *)(?:"|\'|)([a-zA-Z0-9_\-]{44}(?![a-zA-Z0-9_\-]))(?:"|\'|)': (True, (_KEY_NAME,)),
    r'(?:(?<=\W)|(?<=^))(?:\[|)(?:"|\'|)(?:(?:ibm)?[-_]?cos[-_]?(?:hmac)?|)(?:_|-|)(?:secret[-_]?(?:access)?[-_]?key)'
    r'(?:"|\'|)(?:\]|)(?: *)(?:=|:|:=|=>| +|::)(?: *)(?:"|\'|)([a-f0-9]{48}(?![a-f0-9]))(?:"|\'|)': (True, (("secret",),
                                                                                                       ("key",))),
    r"eyJ[A-Za-z0-9-_=]+\.[A-Za-z0-9-_=]+\.?[A-Za-z0-9-_.+/=]*?": (False, (("eyJ",),)),
    r"[0-9a-z]{32}-us[0-9]{1,2}": (False, (("-us",),)),
    r"\/\/.+\/:_authToken=\s*((npm_.+)|([A-Fa-f0-9-]{36})).*": (False, (("/:_authToken=",),)),
    r"sk-[A-Za-z0-9-_]*[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}": (False, (("sk-",), ("T3BlbkFJ",))),
    r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9-_]{70,}": (False, (("pypi-AgEIcHlwaS5vcmc",),)),
    r"pypi-AgENdGVzdC5weXBpLm9yZw[A-Za-z0-9-_]{70,}": (False, (("pypi-AgENdGVzdC5weXBpLm9yZw",),)),
    r"SG\.[a-zA-Z0-9_-]{22}\.[a-zA-Z0-9_-]{43}": (False, (("SG.",),)),
    r"xox(?:a|b|p|o|s|r)-(?:\d+-)+[a-z0-9]+": (True, (("xox",),)),
    r"https://hooks\.slack\.com/services/T[a-zA-Z0-9_]+/B[a-zA-Z0-9_]+/[a-zA-Z0-9_]+": (True, (
        ("https://hooks.slack.com/services/",),)),
    r'(?:(?<=\W)|(?<=^))(?:\[|)(?:"|\'|)(?:softlayer|sl)(?:_|-|)(?:api|)(?:_|-|)(?:key|pwd|password|pass|token)'
    r'(?:"|\'|)(?:\]|)(?: *)(?:=|:|:=|=>| +|::)(?: *)(?:"|\'|)([a-z0-9]{64})(?:"|\'|)': (True, (("sl", "softlayer"),
                                                                                                 _KEY_NAME)),
    r"(?:http|https)://api.softlayer.com/soap/(?:v3|v3.1)/([a-z0-9]{64})": (True, (("://",), ("softlayer",))),
    r"sq0csp-[0-9A-Za-z\\\-_]{43}": (False, (("sq0csp-",),)),
    r"(?:r|s)k_live_[0-9a-zA-Z]{24}": (False, (("k_live_",),)),
    r"AC[a-z0-9]{32}": (False, (("AC",),)),
    r"SK[a-z0-9]{32}": (False, (("SK",),)),
}
#: The words without which detect-secrets' keyword detector finds nothing (each of its DENYLIST names holds one:
#: api_?key, db_?pass, password, pwd, secret, contraseña, ...), and _CONFIG_KEYWORD (ours, on other files).
_KEYWORD_WORDS = ("key", "pass", "pwd", "secret", "contrase")
_CONFIG_KEYWORD_WORDS = ("pass", "pwd", "secret", "token", "key", "credential")
#: scheme://user:password@host. RFC 3986 allows sub-delimiters (!$&'()*+,;=) in the password, which
#: detect-secrets' basic-auth plugin refuses; a raw '#' is taken too, since people paste them.
_BASIC_AUTH = re.compile(r"://[^\s/?#@:]{1,128}:([^\s/@]{1,256})@(?=[\w.\[-])")
_PEM_BEGIN = re.compile(r"-----BEGIN ((?:[A-Z0-9]{1,20} ){0,3})PRIVATE KEY((?: BLOCK)?)-----")
_PEM_MAX_CHARS = 20_000
#: Emails, internationalised too (RFC 6531: ``José.Müller@exämple.de``, ``用户@例子.广告``): a local part
#: and domain labels of Unicode letters and digits; the TLD letters (any script) or punycode.
_EMAIL = re.compile(
    r"(?<![\w.+%-])([^\W_](?:[\w%-]|[.+](?=[^\W_])){0,63})@((?:[^\W_](?:[\w-]{0,61}[^\W_])?\.){1,8}"
    r"(?:[^\W\d_]{2,24}|xn--[a-z0-9-]{1,59}))(?![\w-])"
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

# ---------------------------------------------------------------- credit cards
#: A card number: 13-19 bare digits, or groups of 4 (4-4-4-4, 4-4-4-4-3) or Amex/Diners' 4-6-5 / 4-6-4,
#: one separator (space or dash) throughout; not part of a longer number, a decimal, a word or a run of groups.
_CARD = re.compile(
    r"(?<![\w.+-])(?<!\d[ -])(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{3})?|\d{4}([ -])\d{6}\2\d{4,5})"
    r"(?!\w|[.,][0-9]|[ -]\d|\s?(?:\*(?!/)|/(?![*/])|\^))"  # not a term of arithmetic: 4828147466240000*t**12
)
#: Issuer prefixes and lengths (the IIN ranges the networks publish).
_CARD_ISSUERS: tuple[tuple[re.Pattern[str], frozenset[int]], ...] = (
    (re.compile(r"4"), frozenset({13, 16, 19})),  # Visa
    (re.compile(r"5[1-5]|222[1-9]|22[3-9]\d|2[3-6]\d\d|27[01]\d|2720"), frozenset({16})),  # Mastercard
    (re.compile(r"3[47]"), frozenset({15})),  # American Express
    (re.compile(r"6011|64[4-9]|65"), frozenset({16, 17, 18, 19})),  # Discover
    (re.compile(r"36|30[0-5]|3[89]"), frozenset({14, 16})),  # Diners Club
    (re.compile(r"35(?:2[89]|[3-8]\d)"), frozenset({16, 17, 18, 19})),  # JCB 3528-3589
    (re.compile(r"62"), frozenset({16, 17, 18, 19})),  # UnionPay
)
#: Payment providers' published test numbers (the test-card pages of Stripe, Adyen, Braintree, PayPal,
#: Authorize.net, Worldpay, Checkout.com): nobody's card, and common in payment code and its tests: they stay.
TEST_CARDS = frozenset({
    # Stripe
    "4242424242424242", "4000056655665556", "5555555555554444", "2223003122003222", "5200828282828210",
    "5105105105105100", "378282246310005", "371449635398431", "6011111111111117", "6011000990139424",
    "6011981111111113", "3056930009020004", "36227206271667", "6555900000604105", "3566002020360505",
    "6200000000000005", "6205500000000000004", "4000002500003155", "4000002760003184", "4000003800000446",
    "4000000000003220", "4000000000009995", "4000000000000002", "4000000000000077", "4000000000000341",
    "4000000000000069", "4000000000000127", "4000000000000119", "4100000000000019", "4000000000000101",
    "4000000000003063", "4000008400001629", "4000000760000002", "4000001240000000", "4000004840008001",
    # Adyen
    "4111111111111111", "4988438843884305", "4166676667666746", "4646464646464644", "5555444433331111",
    "5454545454545454", "2222400070000005", "2222400010000008", "2223000048410010", "370000000000002",
    "6011601160116611", "36006666333344", "3569990010095841", "6250946000000016", "4917610000000000",
    "4400000000000008", "5101180000000007", "5577000055770004", "5136333333333335", "4035501000000008",
    # Braintree
    "4005519200000004", "4009348888881881", "4012000033330026", "4012000077777777", "4012888888881881",
    "4217651111111119", "4500600000000061", "3530111333300000", "6304000000000000", "4000111111111115",
    "378734493671000", "6011000991300009", "36259600000004",
    # PayPal, Authorize.net, Worldpay, Checkout.com
    "30569309025904", "38520000023237", "4222222222222", "4007000000027", "4012888818888", "5424000000000015",
    "3088000000000017", "38000000000006", "4444333322221111", "5436031030606378", "345678901234564",
    "4543474002249996", "5588686116426417", "4484070000035519", "4263970000005262",
})
_CARD_RUN = re.compile(r"(\d)\1{7}")  # 8 equal digits in a row: a mask or a made-up test number
#: "order_id": 4111..., userId = ..., timestamp=...: an identifier's or a counter's digits, not a card
_CARD_ID_BEFORE = re.compile(
    r"(?:(?:_id|Id|ID|_ids|Ids|\bid|_no|_num|Num|_seq|_ts|timestamp|_time|Time|seed|Seed|SEED)[\"']?\s{0,4}[:=]"
    r"|(?i:rng|seed|random_state|RandomState|Random))\s{0,4}[\"'\[(]?$"
)

# ---------------------------------------------------------------- phone numbers
#: A phone keyword before a number: telephone, phone_number, Tel.:, fax, mobile, cell, call, SMS,
#: WhatsApp, contact, ☎, 📞 (not "hotel", "intel", "cellar" or "callback": whole words, or "phone" anywhere).
_PHONE_KEYWORD = re.compile(
    r"(?i)(?<![a-z])(?:tel(?:ephone|efon|éfono|éfone|efono)?|fax|mobile?|cell(?:phone|ular)?|call|sms"
    r"|whats_?app|contact|handy)(?![a-z])|phone|☎|📞"
)
_PHONE_KEYWORD_CHARS = 40
#: What ``_PHONE_KEYWORD`` cannot match without, lowercase: one of these is in every match's lowercased text.
_PHONE_KEYWORD_WORDS = ("tel", "fax", "mobil", "cell", "call", "sms", "whats", "contact", "handy", "phone", "☎", "📞")
#: A segment worth handing to libphonenumber: a +, an opening parenthesis or a separator before digits,
#: or 7 digits in a row.
_PHONE_GATE = re.compile(r"\+\d|\(\d|\d[ .\-/]\d\d|\d{7}")  # how far before a number its keyword may be
#: What a phone number's match must not be or touch: dates (2024-01-15, 15/01/2024, 15.01.2024) and times.
_DATE_LIKE = re.compile(r"(?<!\d)(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})(?!\d)|\d:\d\d")
#: Dot-separated is a phone format only in the North American 3.3.4 shape, or after a +country code
#: (1.2.3.4, 10.15.7, 192.168.100.200 are versions and addresses).
_DOTTED_PHONE = re.compile(r"^(?:\+|\(?\d{3}\)?\.\d{3}\.\d{4}$)")
#: A phone number's candidate: an optional +country code and (area code), then 1-6 groups of digits split
#: by a space, a dash, a dot or a slash.
_PHONE_CANDIDATE = re.compile(
    r"(?<![\w+])(?:\+[0-9]{1,3}[ .-]?)?(?:\([0-9]{1,5}\)[ .-]?)?[0-9]{1,15}(?:[ .-][0-9]{1,12}){0,5}"
)
#: A phone-like format with no keyword: a +country code, or North America's (415) 867-5309, 415-867-5309,
#: 415.867.5309, 415 867 5309, 1-800-...: not any run of separated numbers (21 0 22 23 24 in a data file).
_PHONE_FORMAT = re.compile(r"^(?:\+|(?:1[ .-])?(?:\([0-9]{3}\) ?|[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}$)")
#: Made-up numbers: +1 234 567 8900, 0123456789, 9876543210 (8 digits in sequence), 5 000000.
_PHONE_SEQUENCE = re.compile(r"12345678|23456789|98765432|87654321|(\d)\1{5}")
#: Numbers reserved for fiction and documentation: US 555-0100..0199, the UK's Ofcom drama ranges
#: (020 7946 0xxx, 0113 496 0xxx, ..., 07700 900xxx): nobody's phone, so they stay.
_FICTIONAL = {
    1: re.compile(r"^\d{3}55501\d\d$"),
    44: re.compile(r"^(?:2079460|1134960|1144960|1154960|1164960|1174960|1184960|1214960|1314960|1414960"
                   r"|1514960|1614960|2890180|2920180|7700900)\d{3}$"),
}
#: Regions tried for a number with no +country code: North America's everywhere; next to a phone
#: keyword, also these (national formats of the countries with the most developers).
PHONE_REGIONS_WITH_KEYWORD = ("GB", "DE", "FR", "IN", "BR", "JP", "CN", "AU", "ES", "IT", "NL", "RU")
