"""SPDX expressions: validation against the installed ScanCode's license db, and the permissive decision."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError

PERMISSIVE, NO_LICENSE, NON_PERMISSIVE = "permissive", "no_license", "non_permissive"

#: license-expression's parser and ScanCode's matching are not safe across threads (measured: under 8
#: threads ScanCode raised InvalidLicenseKeyError on the ISC text now and then, and the run's output
#: changed). Every use in a process takes this lock; both hold the GIL anyway, so little is lost.
PARSER_LOCK = threading.RLock()
#: ScanCode license categories that count as permissive (The Stack v2's choice).
PERMISSIVE_CATEGORIES = frozenset({"Permissive", "Public Domain"})


#: The installed ScanCode's license db, the fields the policy reads (``python -m stages.license.exact``
#: writes it): reading it takes ~10 ms, ScanCode's own ~2,600 license files ~0.4 s.
LICENSE_DB = Path(__file__).with_name("scancode_licenses.json")


def scancode_licenses(use_table: bool = True) -> list[dict[str, Any]]:
    """SPDX key, other SPDX keys, exception and deprecated flags and category of every license of the
    installed ScanCode that has an SPDX key: from ``LICENSE_DB`` when it was written for this ScanCode
    version, else from ScanCode's license files."""
    if use_table:
        try:
            table = json.loads(LICENSE_DB.read_text())
        except (OSError, ValueError):
            table = {}
        if table.get("scancode_version") == metadata.version("scancode-toolkit"):
            return [dict(zip(table["fields"], row, strict=True)) for row in table["licenses"]]
    from licensedcode.models import load_licenses

    return [
        {"spdx_license_key": lic.spdx_license_key, "other_spdx_license_keys": list(lic.other_spdx_license_keys),
         "is_exception": bool(lic.is_exception), "is_deprecated": bool(lic.is_deprecated), "category": lic.category}
        for lic in load_licenses(with_deprecated=True).values()  # ScanCode's order, as before the table
        if lic.spdx_license_key
    ]


class LicensePolicy:
    """SPDX expressions: validation, normalisation, and the permissive decision (memoised).

    The symbols are the installed ScanCode's license db (SPDX ids, their aliases such as ``GPL-2.0``
    for ``GPL-2.0-only``, and ``LicenseRef-scancode-*`` ids), loaded with license-expression's
    ``build_spdx_licensing`` (what ``get_spdx_licensing()`` does with its vendored copy of the same
    db), so every id this ScanCode version emits is known.
    """

    def __init__(self, allow: Sequence[str] = (), deny: Sequence[str] = (), ignore: Sequence[str] = ()) -> None:
        from license_expression import build_spdx_licensing

        licenses = scancode_licenses()
        self.licensing = build_spdx_licensing([
            {k: lic[k] for k in ("spdx_license_key", "other_spdx_license_keys", "is_exception", "is_deprecated")}
            for lic in licenses
        ])
        self.category = {lic["spdx_license_key"]: lic["category"] for lic in licenses}
        self._normal: dict[tuple[str, bool], str | None] = {}
        self.allow, self.deny = self._known(allow, "allow"), self._known(deny, "deny")
        self.ignore = self._known(ignore, "ignore")
        self._permissive: dict[str, bool | None] = {}
        self._ids: dict[str, tuple[str, ...]] = {}
        self._or: dict[str, bool] = {}

    def _known(self, ids: Sequence[str], key: str) -> frozenset[str]:
        out = set()
        for spdx_id in ids:
            normal = self.normalize(spdx_id, detected=True)
            if normal is None or " " in normal:
                raise PipelineError(f"[license] {key}: {spdx_id!r} is not an SPDX license id")
            out.add(normal)
        return frozenset(out)

    def normalize(self, expression: str, detected: bool = False) -> str | None:
        """``expression`` with canonical ids (``mit or GPL-2.0`` → ``MIT OR GPL-2.0-only``); None if invalid.

        Custom ``LicenseRef-*`` / ``DocumentRef-*:LicenseRef-*`` ids are valid SPDX and kept as written.
        ``detected``: an expression ScanCode detected, where an exception may stand alone (a file
        holding only the text of an exception, ``LLVM-exception``); SPDX itself allows that only after
        ``WITH``.
        """
        key = (expression, detected)
        if key not in self._normal:
            with PARSER_LOCK:  # license-expression's parser is not safe across threads
                self._normal[key] = self._normalize(expression, detected)
        return self._normal[key]

    def _normalize(self, expression: str, detected: bool) -> str | None:
        try:
            info = self.licensing.validate(expression)
            if not info.errors:
                return str(info.normalized_expression)
            # validate() reports one kind of error only: re-check what it would have said next
            tolerated = ("Unknown license key", "A license exception symbol can only") if detected else (
                "Unknown license key",)
            if not all(e.startswith(tolerated) for e in info.errors):
                return None
            parsed = self.licensing.parse(expression)
        except Exception:  # noqa: BLE001 - license-expression raises odd errors (AttributeError) on some bad input
            return None
        if not all(_CUSTOM_REF.match(key) for key in self.licensing.unknown_license_keys(parsed)):
            return None
        if not detected and _has_standalone_exception(parsed):
            return None
        return str(parsed)

    def ids(self, expression: str) -> tuple[str, ...]:
        """The license and exception ids of a normalised expression, less the ignored ones."""
        if expression not in self._ids:
            with PARSER_LOCK:
                keys = self.licensing.license_keys(self.licensing.parse(expression))
            self._ids[expression] = tuple(k for k in keys if k not in self.ignore)
        return self._ids[expression]

    def has_or(self, expression: str) -> bool:
        """Whether a normalised expression offers a choice (an OR anywhere in it)."""
        from license_expression import OR

        def walk(node: Any) -> bool:
            return isinstance(node, OR) or any(walk(a) for a in getattr(node, "args", ()))

        if expression not in self._or:
            with PARSER_LOCK:
                parsed = self.licensing.parse(expression)
            self._or[expression] = walk(parsed)
        return self._or[expression]

    def is_permissive(self, expression: str) -> bool | None:
        """Whether a normalised expression is permissive: OR if one side is, AND if all are, WITH as its
        license. None when it names only ignored ids (it counts for nothing)."""
        if expression not in self._permissive:
            with PARSER_LOCK:
                parsed = self.licensing.parse(expression)
            self._permissive[expression] = self._node_permissive(parsed)
        return self._permissive[expression]

    def _node_permissive(self, node: Any) -> bool | None:
        from license_expression import AND, OR, LicenseWithExceptionSymbol

        if isinstance(node, AND | OR):
            values = [v for v in (self._node_permissive(arg) for arg in node.args) if v is not None]
            if not values:
                return None
            return any(values) if isinstance(node, OR) else all(values)
        if isinstance(node, LicenseWithExceptionSymbol):
            return self.id_permissive(node.license_symbol.key)
        return self.id_permissive(node.key)

    def id_permissive(self, spdx_id: str) -> bool | None:
        """One id: ``deny`` → no, ``ignore`` → None, ``allow`` → yes, else whether its ScanCode category is."""
        if spdx_id in self.deny:
            return False
        if spdx_id in self.ignore:
            return None
        return spdx_id in self.allow or self.category.get(spdx_id) in PERMISSIVE_CATEGORIES

    def license_type(self, expressions: Iterable[str]) -> str:
        """``no_license`` when nothing (but ignored ids) applies, ``permissive`` if every expression is,
        else ``non_permissive``."""
        values = [v for v in (self.is_permissive(e) for e in expressions) if v is not None]
        if not values:
            return NO_LICENSE
        return PERMISSIVE if all(values) else NON_PERMISSIVE


_CUSTOM_REF = re.compile(r"^(?:DocumentRef-[A-Za-z0-9.-]+:)?LicenseRef-[A-Za-z0-9.-]+$")


def _has_standalone_exception(node: Any) -> bool:
    """Whether an exception appears in ``node`` other than after ``WITH``."""
    from license_expression import LicenseSymbol, LicenseWithExceptionSymbol

    if isinstance(node, LicenseWithExceptionSymbol):
        return False
    if isinstance(node, LicenseSymbol):
        return bool(node.is_exception)
    return any(_has_standalone_exception(arg) for arg in node.args)
