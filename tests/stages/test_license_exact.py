"""Exact recognition of license texts before ScanCode (stages/license/exact.py), on ScanCode's own data."""

import json
import textwrap
from importlib import metadata

import pytest
from license_expression import Licensing

from stages.license import exact
from stages.license.policy import LicensePolicy

_LICENSING = Licensing()


@pytest.fixture(scope="module")
def shipped() -> list[tuple[str, str, bool, str]]:
    """Every license text and rule ScanCode ships (39,000 files)."""
    found = exact.reference_texts()
    assert len(found) > 30_000
    return found


@pytest.fixture(scope="module")
def categories(shipped) -> dict[str, str]:
    """ScanCode's category of each license key, from its license files (not from the code under test)."""
    from licensedcode.models import load_licenses

    return {key: lic.category for key, lic in load_licenses(with_deprecated=True).items()}


def test_the_table_is_for_the_installed_scancode() -> None:
    table = json.loads(exact.TABLE.read_text())
    assert table["scancode_version"] == metadata.version("scancode-toolkit")
    assert len(table["texts"]) > 500 and tuple(table["keys"]) == exact.KEYS


def test_no_shipped_text_that_is_not_permissive_is_ever_recognised_as_permissive(shipped, categories) -> None:
    """The issue's condition: on every license text ScanCode ships (licenses and rules, notices and
    references included), a text whose own license is not wholly permissive never gets an answer
    that is permissive."""
    policy = LicensePolicy()
    permissive = {"Permissive", "Public Domain"}
    recognised = wrong = 0
    for name, expression, _is_text, text in shipped:
        answer = exact.recognize(text)
        if answer is None or not expression:
            continue
        recognised += 1
        try:
            keys = _LICENSING.license_keys(expression)
        except Exception:  # noqa: BLE001 - a rule expression license-expression cannot parse: count as unknown
            keys = ["unknown"]
        own_permissive = all(categories.get(k) in permissive for k in keys)
        if policy.license_type(answer) == "permissive" and not own_permissive:
            wrong += 1
            print("copyleft or other text recognised as permissive:", name, expression, answer)
    assert recognised > 700
    assert wrong == 0


def test_real_files_with_copyright_lines_and_names_are_recognised(shipped) -> None:
    mit = next(t for n, _, _, t in shipped if n == "mit.LICENSE")
    with_header = "MIT License\n\nCopyright (c) 2019-2024 Jane Doe <jane@example.org>\n\n" + mit
    assert exact.recognize(with_header) == ("MIT",)
    assert exact.recognize(textwrap.fill(" ".join(mit.split()), 60)) == ("MIT",)  # re-wrapped
    bsd = next(t for n, _, _, t in shipped if n == "bsd-new.LICENSE")
    named = bsd.replace("the ORGANIZATION", "Acme Widgets, Inc.")
    assert named != bsd
    assert exact.recognize("Copyright 2001 Acme Widgets, Inc.\nAll rights reserved.\n\n" + named) == (
        "BSD-3-Clause",)
    gpl = next(t for n, _, _, t in shipped if n == "gpl-3.0.LICENSE")
    assert exact.recognize(gpl) == ("GPL-3.0-only",)


def test_anything_added_or_hidden_in_a_name_goes_to_scancode(shipped) -> None:
    mit = next(t for n, _, _, t in shipped if n == "mit.LICENSE")
    assert exact.recognize(mit + "\nParts of this file are under the GPL-3.0.\n") is None
    assert exact.recognize("Copyright 2020 Foo, licensed under the GPL\n" + mit) is None  # the line is kept
    bsd = next(t for n, _, _, t in shipped if n == "bsd-new.LICENSE")
    hidden = bsd.replace("the ORGANIZATION", "Foo (this file is GPL licensed)")
    assert exact.recognize(hidden) is None
    assert exact.recognize(mit.replace("without restriction", "with restrictions")) is None


@pytest.mark.parametrize("name", ["mit.LICENSE", "apache-2.0.LICENSE", "bsd-new.LICENSE", "isc.LICENSE",
                                  "gpl-2.0.LICENSE", "lgpl-2.1.LICENSE", "mpl-2.0.LICENSE"])
def test_the_answer_is_scancodes_own_on_a_real_looking_file(shipped, name: str) -> None:
    from licensedcode.cache import get_index
    from licensedcode.detection import detect_licenses

    text = next(t for n, _, _, t in shipped if n == name)
    file = "Copyright (c) 2021 The Example Project Authors\n\n" + text
    detections = detect_licenses(index=get_index(), query_string=file, unknown_licenses=True)
    assert exact.recognize(file) == tuple(sorted({d.license_expression_spdx for d in detections}))


def test_the_license_db_table_is_scancodes_own() -> None:
    """The policy reads ScanCode's license db from a table written for the installed ScanCode: it
    must be what ScanCode's own license files give."""
    from stages.license.policy import scancode_licenses

    table = scancode_licenses()
    assert len(table) > 2000 and table == scancode_licenses(use_table=False)
