"""Precision and recall of the redaction stage's card numbers, phone numbers, internationalised emails
and URL credentials, on real code nobody here wrote.

    PYTHONPATH=. python benchmarks/pii_quality.py [--mb 40] [--per-kind 300] [--seed 11]

The hosts are the seeded sample of real files ``benchmarks/redaction.py`` uses (the Python standard
library, installed packages, C headers, ...). Into each planted file goes one value, on its own line,
in the places such values occur: string assignments, bare numeric literals, comments, JSON and YAML
values, Markdown text, connection URLs. Planted are

- values to find: card numbers generated here (issuer prefixes and lengths, a valid Luhn digit, bare
  or in 4-4-4-4 / 4-6-5 groups with spaces or dashes), phone numbers of 24 countries (libphonenumber's
  example numbers with random subscriber digits, kept only if valid, in international, E.164 and,
  after a keyword, national formats; North American ones also national with no keyword), emails with
  non-ASCII local parts or domains, and passwords and tokens inside ``scheme://user:secret@host`` URLs;
- look-alikes that must stay: versions, ISO timestamps and dates, epoch seconds and milliseconds,
  UUIDs, git SHAs and SHA-256 digests, 18-19 digit ids, numeric constants, Luhn-invalid 16-digit
  numbers with an issuer prefix, ISBNs, private IP addresses with ports, digits of pi.

The ground truth is what was planted, never the host code. A planted value is found when it is gone
from a kept file and its line holds its kind's tag; a look-alike is a false positive when it changed
(charged to the tag its line got). A file the stage dropped (redaction_failed) counts as a miss.
Also: detections of each new kind on the untouched files (a false-positive proxy), with their
contexts printed for review. Prints Markdown. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import random
import string
import sys
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import phonenumbers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from redaction import plant, real_files, table_of  # noqa: E402

from stages.redact import Redact  # noqa: E402
from stages.redact.detectors import luhn_valid  # noqa: E402
from stages.redact.patterns import _EMAIL, TAGS, TEST_CARDS  # noqa: E402

ISSUERS = [("4", 16), ("4", 13), ("4", 19), ("51", 16), ("52", 16), ("53", 16), ("54", 16), ("55", 16), ("2221", 16),
           ("2500", 16), ("2720", 16), ("34", 15), ("37", 15), ("6011", 16), ("644", 16), ("65", 16), ("65", 19),
           ("36", 14), ("300", 14), ("305", 14), ("38", 14), ("3528", 16), ("3589", 16), ("62", 16), ("62", 19)]
PHONE_REGIONS = ["US", "CA", "GB", "DE", "FR", "IN", "BR", "JP", "CN", "AU", "ES", "IT", "NL", "RU", "MX", "KR",
                 "SE", "CH", "PL", "ZA", "NG", "AR", "SG", "TR"]
KEYWORD_REGIONS = {"US", "CA", "GB", "DE", "FR", "IN", "BR", "JP", "CN", "AU", "ES", "IT", "NL", "RU"}
IDN_LOCALS = ["josé.müller", "françois", "søren.kierkegaard", "用户", "пользователь", "δοκιμή", "ñandú", "zoë",
              "björn", "çağla", "dvořák", "θεόδωρος", "ユーザー", "андрей.иванов", "łukasz", "müller-lüdenscheidt"]
IDN_DOMAINS = ["exämple-mail.de", "bücher.com", "例子.广告", "почта.рф", "παράδειγμα.ελ", "correo-españa.es",
               "münchen-post.de", "gmail.com", "mail.ru", "outlook.com", "ｍail.jp", "xn--bcher-kva.ch"]

CONTEXTS: dict[str, list[tuple[str, str]]] = {
    "credit_card": [
        (".py", 'CARD_NUMBER = "{v}"'), (".py", "    charge(amount=1999, card={v})"), (".py", "# paid with {v}"),
        (".js", "const pan = '{v}';"), (".json", '  "card": "{v}",'), (".yaml", "  card_number: {v}"),
        (".md", "Card on file: {v}"), (".txt", "customer card {v} expires 04/27"), (".c", "/* card: {v} */"),
    ],
    "phone_number": [
        (".py", 'SUPPORT_PHONE = "{v}"'), (".py", "# call {v} for support"), (".js", "const tel = '{v}';"),
        (".json", '  "phone": "{v}",'), (".yaml", "  mobile: {v}"), (".md", "Tel.: {v}"),
        (".txt", "Fax {v}"), (".html", '<a href="tel:{v}">{v}</a>'), (".c", " * Contact: {v}"),
    ],
    "phone_unlabelled": [  # no keyword: only a phone-like format says it is one
        (".py", 'HOTLINE = "{v}"'), (".md", "Reach the front desk at {v} any time."), (".txt", "{v} (office)"),
        (".py", "# {v}"),
    ],
    "idn_email": [
        (".py", '__author_email__ = "{v}"'), (".py", "# Contact: {v}"), (".md", "Maintained by Jane Doe <{v}>."),
        (".json", '  "author": "Someone <{v}>",'), (".yaml", "  email: {v}"), (".txt", "Questions to {v} please."),
    ],
    "url_credentials": [
        (".py", 'DB_URL = "postgresql://app:{v}@db.internal:5432/main"'),
        (".env", "REDIS_URL=redis://default:{v}@cache.internal:6379"),
        (".yaml", "  url: https://deploy:{v}@git.internal/repo.git"),
        (".sh", "git clone https://ci-bot:{v}@github.com/team/repo.git"),
        (".json", '  "repository": "https://x-access-token:{v}@github.com/acme/tool.git",'),
    ],
    "look_alike": [
        (".py", 'VALUE = "{v}"'), (".py", "value = {v}"), (".py", "# {v}"), (".js", "const v = '{v}';"),
        (".json", '  "value": "{v}",'), (".yaml", "  value: {v}"), (".md", "See {v}."), (".c", "#define V {v}"),
    ],
}


class Plants:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def digits(self, n: int) -> str:
        return "".join(self.r.choice(string.digits) for _ in range(n))

    def card(self) -> str:
        while True:
            prefix, length = self.r.choice(ISSUERS)
            body = prefix + self.digits(length - len(prefix) - 1)
            card = body + next(str(d) for d in range(10) if luhn_valid(body + str(d)))
            if card not in TEST_CARDS:
                break
        style = self.r.choice(["bare", "space", "dash"])
        if style == "bare":
            return card
        sep = " " if style == "space" else "-"
        if length == 15:
            return sep.join([card[:4], card[4:10], card[10:]])
        if length == 14:
            return sep.join([card[:4], card[4:10], card[10:]])
        if length == 16:
            return sep.join(card[i:i + 4] for i in range(0, 16, 4))
        return card

    def phone(self, keyword: bool) -> str:
        while True:
            region = self.r.choice(PHONE_REGIONS)
            kind = self.r.choice([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE])
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            national = str(example.national_number)
            keep = max(2, len(national) - 4)
            candidate = national[:keep] + self.digits(len(national) - keep)
            number = phonenumbers.parse("+" + str(example.country_code) + candidate)
            if not phonenumbers.is_valid_number(number):
                continue
            if example.country_code == 1 and candidate[3:7] in {f"5550{i}" for i in range(10)} | {"5550"}:
                continue  # 555-01xx is reserved for fiction: left alone on purpose
            formats = [phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.E164]
            if region in ("US", "CA") or (keyword and region in KEYWORD_REGIONS):
                formats.append(phonenumbers.PhoneNumberFormat.NATIONAL)
            text = phonenumbers.format_number(number, self.r.choice(formats))
            if not keyword and text.isdigit():
                continue
            return text

    def idn_email(self) -> str:
        local = self.r.choice(IDN_LOCALS)
        domain = self.r.choice(IDN_DOMAINS)
        if local.isascii() and domain.isascii():
            domain = "exämple-mail.de"
        return f"{local}{self.r.randrange(100)}@{domain}"

    def url_secret(self) -> str:
        alphabet = string.ascii_letters + string.digits
        if self.r.random() < 0.3:
            return "ghp_" + "".join(self.r.choice(alphabet) for _ in range(36))
        return "".join(self.r.choice(alphabet) for _ in range(self.r.randrange(10, 24))) + self.r.choice("!*$%")

    def look_alike(self) -> tuple[str, str]:
        r = self.r
        hexd = "0123456789abcdef"
        prefix, length = r.choice(ISSUERS)
        body = prefix + self.digits(length - len(prefix) - 1)
        invalid = body + next(str(d) for d in range(10) if not luhn_valid(body + str(d)))
        options = {
            "version": f"{r.randrange(10)}.{r.randrange(30)}.{r.randrange(100)}",
            "long_version": f"{r.randrange(1, 5)}.{r.randrange(30)}.{r.randrange(100)}.{r.randrange(10000)}",
            "iso_timestamp": f"20{r.randrange(10, 30)}-{r.randrange(1, 13):02d}-{r.randrange(1, 29):02d} "
                             f"{r.randrange(24):02d}:{r.randrange(60):02d}:{r.randrange(60):02d}",
            "date": f"{r.randrange(1, 29):02d}/{r.randrange(1, 13):02d}/20{r.randrange(10, 30)}",
            "epoch_s": str(r.randrange(1_000_000_000, 1_900_000_000)),
            "epoch_ms": str(r.randrange(1_000_000_000_000, 1_900_000_000_000)),
            "uuid": str(uuid.UUID(int=r.getrandbits(128))),
            "git_sha": "".join(r.choice(hexd) for _ in range(40)),
            "sha256": "".join(r.choice(hexd) for _ in range(64)),
            "snowflake_id": str(r.randrange(10**17, 2 * 10**18)),
            "numeric_constant": r.choice([str(r.randrange(10**9, 10**12)), f"{r.random() * 1000:.12f}",
                                          f"0x{r.getrandbits(48):012x}"]),
            "luhn_invalid_16": invalid,
            "isbn": r.choice(["978-3-16-148410-0", "0-306-40615-2", "978-0-596-52068-7", "9780262033848"]),
            "ip_port": f"192.168.{r.randrange(256)}.{r.randrange(1, 255)}:{r.randrange(1024, 65536)}",
            "pi_digits": "31415926535897932384626433832795"[: r.randrange(13, 33)],
        }
        name = r.choice(list(options))
        return name, options[name]


def planted(hosts: list[tuple[str, str]], seed: int, per_kind: int) -> list[tuple[str, str, int, str, str, str]]:
    """(path, text, host index, kind, value, tag) with one planted value per file."""
    p, r = Plants(seed), random.Random(seed + 1)
    by_suffix: dict[str, list[int]] = defaultdict(list)
    for i, (path, _) in enumerate(hosts):
        by_suffix[Path(path).suffix].append(i)
    out = []
    for kind in ("credit_card", "phone_number", "phone_unlabelled", "idn_email", "url_credentials", "look_alike"):
        for n in range(per_kind):
            suffix, template = r.choice(CONTEXTS[kind])
            if kind == "credit_card":
                value, tag = p.card(), TAGS["credit_card"]
            elif kind in ("phone_number", "phone_unlabelled"):
                value, tag = p.phone(keyword=kind == "phone_number"), TAGS["phone_number"]
            elif kind == "idn_email":
                value, tag = p.idn_email(), TAGS["email"]
            elif kind == "url_credentials":
                value, tag = p.url_secret(), TAGS["key"]
            else:
                name, value = p.look_alike()
                tag = "look_alike:" + name
            host = r.choice(by_suffix.get(suffix) or range(len(hosts)))
            line = template.format(v=value)
            out.append((f"/planted/{kind}-{n}{suffix}", plant(hosts[host][1], line, r), host, kind, value, tag))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=40)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--per-kind", type=int, default=300)
    args = parser.parse_args()
    stage = Redact()
    plugins = stage.setup()
    hosts = real_files(int(args.mb * 1e6), 7)  # the same files as benchmarks/redaction.py
    mb = sum(len(t.encode()) for _, t in hosts) / 1e6

    # 1. the untouched files: speed, and what the new kinds find there
    start = time.process_time()
    base = stage.process(table_of(hosts), plugins)
    cpu = time.process_time() - start
    print(f"## Untouched real files\n{len(hosts)} files, {mb:.1f} MB: {mb / cpu:.1f} MB/s per core; "
          f"{base.dropped.num_rows} dropped (redaction_failed)\n")
    print("| kind | detections | per MB |\n|---|---|---|")
    for kind in ("credit_card", "phone_number", "email"):
        print(f"| {kind} | {base.counters[f'pii_{kind}']} | {base.counters[f'pii_{kind}'] / mb:.2f} |")
    originals = dict(hosts)
    idn_found = []
    for row in base.kept.to_pylist():
        for line in row["content"].splitlines():
            if "<CREDIT_CARD>" in line or "<PHONE>" in line:
                print(f"    {row['path']}: {line.strip()[:150]}")
        for m in _EMAIL.finditer(originals.get(row["path"][1:], "")):
            if not m.group(0).isascii() and m.group(0) not in row["content"]:
                idn_found.append(f"    {row['path']}: {m.group(0)}")
    print(f"\nnon-ASCII emails redacted in the untouched files: {len(idn_found)}")
    print("\n".join(idn_found[:30]))

    # 2. planted values and look-alikes
    plants = planted(hosts, args.seed, args.per_kind)
    out = stage.process(table_of([(p, t) for p, t, *_ in plants]), plugins)
    kept = {row["path"]: row["content"] for row in out.kept.to_pylist()}
    total, tp, dropped = Counter(), Counter(), Counter()
    fp: Counter[str] = Counter()
    fp_names: Counter[str] = Counter()
    look_total: Counter[str] = Counter()
    misses: dict[str, list[str]] = defaultdict(list)
    tag_kind = {v: k for k, v in TAGS.items()}
    for path, text, _host, kind, value, tag in plants:
        total[kind] += 1
        redacted = kept.get(path)
        if redacted is None:
            dropped[kind] += 1
            continue
        # the planted line, by its place (redaction keeps the line count, PEM blocks aside)
        at = text.splitlines().index(next(line for line in text.splitlines() if value in line))
        lines_out = redacted.splitlines()
        planted_line = lines_out[at] if at < len(lines_out) else ""
        if kind == "look_alike":
            name = tag.split(":", 1)[1]
            look_total[name] += 1
            if redacted.count(value) < text.count(value):
                got = [k for t, k in tag_kind.items() if t in planted_line] or ["other"]
                fp[got[0]] += 1
                fp_names[name] += 1
                misses["look_alike"].append(f"{name}: {planted_line.strip()[:120]}")
            continue
        if value not in redacted and tag in planted_line:
            tp[kind] += 1
        else:
            misses[kind].append(planted_line.strip()[:120] or "(line gone)")
            for t, k in tag_kind.items():
                if t in planted_line and t != tag:
                    fp[k] += 1
    print("\n## Planted values\n")
    print("| kind (tag) | planted | found with the right tag | recall | false positives (look-alikes changed) "
          "| precision | file dropped |\n|---|---|---|---|---|---|---|")
    for kind, tag_name in (("credit_card", "credit_card"), ("phone_number", "phone_number"),
                           ("phone_unlabelled", None), ("idn_email", "email"), ("url_credentials", "key")):
        false = fp[tag_name] if tag_name else 0
        found = tp[kind] + (tp["phone_unlabelled"] if kind == "phone_number" else 0)
        precision = found / (found + false) if found + false else 1.0
        label = f"{kind} (`{TAGS[tag_name]}`)" if tag_name else f"{kind} (`<PHONE>`, no keyword)"
        fp_text = str(false) if tag_name else "(with phone_number)"
        print(f"| {label} | {total[kind]} | {tp[kind]} | {tp[kind] / total[kind]:.3f} | {fp_text} "
              f"| {precision:.3f} | {dropped[kind]} |")
    changed = sum(fp_names.values())
    print(f"\nlook-alikes left intact: {total['look_alike'] - changed - dropped['look_alike']} of "
          f"{total['look_alike']} ({dropped['look_alike']} in dropped files)")
    print("| look-alike | planted | changed |\n|---|---|---|")
    for name in sorted(look_total):
        print(f"| {name} | {look_total[name]} | {fp_names[name]} |")
    for kind, lines in misses.items():
        print(f"\n{kind}: {len(lines)} missed or changed (first 15)")
        for line in lines[:15]:
            print("    " + line)
    print("\ncommand: PYTHONPATH=. python " + " ".join(sys.argv))


if __name__ == "__main__":
    main()
