"""Redaction of card numbers, phone numbers and internationalised emails, and the look-alikes left alone."""

import random
from typing import Any

import phonenumbers
import pyarrow as pa
import pytest

from schemas import DECODED_SCHEMA
from stages.redact import KINDS, TEST_CARDS, Redact
from stages.redact.detectors import is_card_number, luhn_valid

# Card numbers made up here with a valid check digit (none is anyone's card).
VISA = "4539 1488 0343 6467"
VISA_BARE = "4916338506082832"
MASTERCARD = "5425-2334-3010-9903"
MASTERCARD_2 = "2221000010000015"
AMEX = "3782 822463 10013"  # 4-6-5
DISCOVER = "6011 5140 0346 1781"
DINERS = "30123456789019"
JCB = "3530 1113 3330 0018"
UNIONPAY = "6212345678901265"


def run(redact: Redact, plugins: dict[str, Any], text: str, path: str = "app.py") -> tuple[str, dict[str, int]]:
    out, counts = redact.redact(text, path, plugins)
    return out, dict(counts)


def with_check_digit(body: str) -> str:
    """``body`` plus the Luhn check digit that makes it valid."""
    return body + next(str(d) for d in range(10) if luhn_valid(body + str(d)))


def test_the_made_up_cards_are_valid_card_numbers() -> None:
    for card in (VISA, VISA_BARE, MASTERCARD, MASTERCARD_2, AMEX, DISCOVER, DINERS, JCB, UNIONPAY):
        digits = card.replace(" ", "").replace("-", "")
        assert is_card_number(digits), card
        assert digits not in TEST_CARDS


@pytest.mark.parametrize("line, card", [
    ('CARD = "{}"', VISA), ("card_number = {}", VISA_BARE), ("# charged {} on 3 May", MASTERCARD),
    ('{{"pan": "{}"}}', MASTERCARD_2), ("amex: {}", AMEX), ("const cc = '{}';", DISCOVER),
    ("diners={}", DINERS), ("  <td>{}</td>", JCB), ("pay({})", UNIONPAY),
])
def test_card_numbers_are_redacted_in_code_strings_and_comments(redact, plugins, line, card) -> None:
    text = "def f():\n    " + line.format(card) + "\n    return 1\n"
    out, counts = run(redact, plugins, text)
    assert card not in out
    assert "<CREDIT_CARD>" in out
    assert counts == {"credit_card": 1}


@pytest.mark.parametrize("card", sorted(TEST_CARDS)[:25] + ["4242 4242 4242 4242", "4111-1111-1111-1111"])
def test_payment_providers_test_cards_stay(redact, plugins, card) -> None:
    text = f'STRIPE_TEST_CARD = "{card}"\n'
    assert run(redact, plugins, text) == (text, {})


def test_every_test_card_is_luhn_valid_and_listed_on_purpose() -> None:
    # a typo in the list would silently leave a real-looking card out of it
    assert all(luhn_valid(card) for card in TEST_CARDS)


@pytest.mark.parametrize("text", [
    "n = 4539148803436468\n",  # Luhn-invalid 16 digits (check digit off by one)
    "x = 4539 1488 0343 6468\n",
    "order_id = 4539148803436467\n",  # an identifier's digits, even if they pass
    "TIMESTAMP_MS = 1718035200123\n",  # 13 digits, no issuer starts with 1
    "snowflake = 1234567890123456789\n",
    'PI_DIGITS = "31415926535897932384"\n',  # 20 digits: no card is that long
    "pi = 3.1415926535897932384626\n",  # decimals
    "ISBN 978-3-16-148410-0\n", "isbn13 = 9783161484100\n",
    "ip = 192.168.100.200\n", "uuid = 550e8400-e29b-41d4-a716-446655440000\n",
    "sha = 4539148803436467a9c0e2b1f0d3c4e5a6b7c8d9\n",  # digits at the start of a hash
    "MASK = 4000000000000000\n",
    "phone = +1 415 867 5309 x 4539148803436467000\n".replace("x 4539148803436467000", ""),
])
def test_card_look_alikes_stay(redact, plugins, text) -> None:
    out, counts = run(redact, plugins, text)
    assert "credit_card" not in counts
    assert "<CREDIT_CARD>" not in out


def test_generated_cards_of_every_issuer_are_found(redact, plugins) -> None:
    r = random.Random(3)
    prefixes = [("4", 16), ("4", 13), ("4", 19), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16), ("34", 15),
                ("37", 15), ("6011", 16), ("644", 16), ("65", 19), ("36", 14), ("300", 14), ("38", 14),
                ("3528", 16), ("3589", 19), ("62", 16), ("62", 19)]
    for prefix, length in prefixes:
        card = with_check_digit(prefix + "".join(str(r.randrange(10)) for _ in range(length - len(prefix) - 1)))
        out, counts = run(redact, plugins, f"card = '{card}'\n")
        assert card not in out and counts == {"credit_card": 1}, (prefix, length)
        # the same digits one off: the check digit fails, nothing changes
        wrong = card[:-1] + str((int(card[-1]) + 1) % 10)
        assert run(redact, plugins, f"card = '{wrong}'\n")[1] == {}


@pytest.mark.parametrize("text, number", [
    ("Call us at (415) 867-5309 today.\n", "(415) 867-5309"),
    ('SUPPORT = "+44 20 8123 4567"\n', "+44 20 8123 4567"),
    ("# phone: 415-867-5309\n", "415-867-5309"),
    ("Tel.: +33 1 42 68 53 00\n", "+33 1 42 68 53 00"),
    ('"phone_number": "4158675309",\n', "4158675309"),  # bare, after a keyword
    ("mobile: 0151 29416780\n", "0151 29416780"),  # German mobile, national format, after a keyword
    ("☎ 03-3264-5178\n", "03-3264-5178"),  # Japanese, national format
    ("Fax: 415.867.5309\n", "415.867.5309"),
    ("contact = '+91 98712 43310'\n", "+91 98712 43310"),
    ("<a href=\"tel:+14158675309\">call</a>\n", "+14158675309"),
])
def test_phone_numbers_are_redacted(redact, plugins, text, number) -> None:
    out, counts = run(redact, plugins, text)
    assert number not in out
    assert "<PHONE>" in out
    assert counts == {"phone_number": 1}


@pytest.mark.parametrize("text", [
    "__version__ = '1.2.3'\n", "VERSION = (10, 15, 7)\n", "release 2.4.1-20240115\n",
    'created = "2024-01-15 10:42:00"\n', "date: 15/01/2024 10:42\n", "on 15.01.2024 at 10:42\n",
    "x = 4158675309\n",  # a numeric literal, no keyword
    "values = [4158675309, 2125551234, 3125550199]\n", "ids = (1234567, 7654321)\n",
    "epoch = 1718035200\n", "host = '192.168.100.200'\n", "server 203.0.113.195:8080;\n",
    "uuid = 'f47ac10b-58cc-4372-a567-0e02b2c3d479'\n", "commit 9fceb02d0ae598e95dc970b74767f19372d61af8\n",
    "md5 = 'd41d8cd98f00b204e9800998ecf8427e'\n", "port = 8080\n", "see 4.15.867.5309\n",
    "ISBN 0-306-40615-2\n", "ssn = 123-45-6789\n", "x = 123-456-7890\n",
    "Call 415-555-0123 for the demo.\n",  # reserved for fiction
    "tel: 020 7946 0958\n",  # Ofcom's drama range
    "shape = (1, 3, 224, 224)\n", "matrix = [[415, 867], [5309, 1]]\n",
])
def test_phone_look_alikes_stay(redact, plugins, text) -> None:
    out, counts = run(redact, plugins, text)
    assert "phone_number" not in counts, text
    assert out == text


def test_numbers_of_many_regions_are_found(redact, plugins) -> None:
    found, r = 0, random.Random(5)
    regions = ["CA", "GB", "DE", "FR", "IN", "BR", "JP", "AU", "ES", "IT", "NL", "MX", "ZA", "SE", "KR", "SG"]
    for region in regions:
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        while True:  # libphonenumber's example with other subscriber digits (its own are sequences: made up)
            national = str(example.national_number)
            national = national[:-4] + "".join(r.choice("0123456789") for _ in range(4))
            number = phonenumbers.parse(f"+{example.country_code}{national}")
            if phonenumbers.is_valid_number(number):
                break
        text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        out, counts = run(redact, plugins, f"owner_contact = '{text}'\n")
        found += text not in out and counts == {"phone_number": 1}
    assert found == len(regions)
    # libphonenumber's US example, +1 201-555-0123, is in the range reserved for fiction: it stays
    us = phonenumbers.example_number_for_type("US", phonenumbers.PhoneNumberType.MOBILE)
    text = f"owner_contact = '{phonenumbers.format_number(us, phonenumbers.PhoneNumberFormat.INTERNATIONAL)}'\n"
    assert run(redact, plugins, text) == (text, {})


@pytest.mark.parametrize("email", [
    "José.Müller@exämple.de", "用户@例子.广告", "δοκιμή@παράδειγμα.δοκιμή", "pelé@bücher.com",
    "info@xn--bcher-kva.de", "ñandú@correo.es",
])
def test_internationalised_emails_are_redacted(redact, plugins, email) -> None:
    out, counts = run(redact, plugins, f"# Contact: {email}\n")
    assert email not in out and "<EMAIL>" in out
    assert counts == {"email": 1}


@pytest.mark.parametrize("text", [
    "icon@2x.png\n", "logo@3x.webp\n", "mailto:noreply@société.fr\n", "José@exämple.example.com\n",
    "user@example.org\n", "x = a@b\n",
])
def test_email_exclusions_still_hold(redact, plugins, text) -> None:
    assert run(redact, plugins, text)[1] == {}


@pytest.mark.parametrize("text", [
    'PI_DIGITS = "31415926535897932384"\n', "E_DIGITS = '27182818284590452353602874713527'\n",
    'ID = "12345678901234567890123"\n',
])
def test_all_digit_strings_are_not_keys(redact, plugins, text) -> None:
    assert run(redact, plugins, text) == (text, {})


def test_real_keys_are_still_found_next_to_digit_strings(redact, plugins) -> None:
    text = 'PI_DIGITS = "31415926535897932384"\nSECRET_KEY = "q8Zx2Kp4Vm7Nb1Rt5Yw9Lc3Hj6Fd0Sa8Ge4Uq"\n'
    out, counts = run(redact, plugins, text)
    assert out == 'PI_DIGITS = "31415926535897932384"\nSECRET_KEY = "<KEY>"\n'
    assert counts == {"key": 1}


def test_pii_column_and_counters_carry_the_new_kinds(redact, plugins) -> None:
    text = f"# Tel. +44 20 8123 4567, card {VISA}, José.Müller@exämple.de\n"
    n = 1
    columns = {f.name: [None] * n for f in DECODED_SCHEMA}
    columns.update({"path": ["/a.py"], "content": [text], "path_is_utf8": [True], "length_bytes": [len(text)]})
    result = redact.process(pa.table(columns, schema=DECODED_SCHEMA), plugins)
    row = result.kept.to_pylist()[0]
    assert row["content"] == "# Tel. <PHONE>, card <CREDIT_CARD>, <EMAIL>\n"
    assert row["pii"] == [{"kind": "credit_card", "count": 1}, {"kind": "email", "count": 1},
                          {"kind": "phone_number", "count": 1}]
    assert {k: v for k, v in result.counters.items() if k.startswith("pii_")} == {
        f"pii_{k}": int(k in ("credit_card", "email", "phone_number")) for k in KINDS}
    # values never leave the stage
    for value in ("8123", "4539", "José"):
        assert value not in repr(result.counters)


def test_the_same_card_everywhere_in_a_file_gets_the_same_tag(redact, plugins) -> None:
    bare = VISA.replace(" ", "")
    text = f"a = '{bare}'\nb = '{bare}'\nc = '{bare}00'\n"
    out, counts = run(redact, plugins, text)
    assert out == f"a = '<CREDIT_CARD>'\nb = '<CREDIT_CARD>'\nc = '{bare}00'\n"
    assert counts == {"credit_card": 2}


def test_the_shared_prefilter_automaton_gives_each_thread_its_own_answer() -> None:
    """The prefilter's word automaton is one module-level, read-only value used by every thread of a
    worker: eight threads at once get what one thread alone gets."""
    from concurrent.futures import ThreadPoolExecutor

    from stages.redact.detectors import _candidates

    texts = [f"token = 'x{i}'\npassword: hunter{i}\ncall (415) 867-53{i:02d}\nauthor: a{i}\n" * (i + 1)
             for i in range(40)]
    alone = [_candidates(t) for t in texts]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(5):
            assert list(pool.map(_candidates, texts)) == alone
