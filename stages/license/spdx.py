"""``SPDX-License-Identifier:`` lines in the head of a file."""

from __future__ import annotations

import re

SPDX_TAG = "SPDX-License-Identifier"
_SPDX_LINE = re.compile(r"SPDX-License-Identifier[ \t]*:[ \t]*([^\r\n]*)")
#: what ends the expression on a comment line: */  -->  *)  #}  %}  quotes, commas, semicolons
_SPDX_TAIL = re.compile(r"(?:\*/|-->|\*\)|#\}|%\}|\"\"\"|'''|[\"',;\\])[ \t]*$")


def spdx_expressions(head: str) -> list[str]:
    """The raw expressions of the ``SPDX-License-Identifier:`` lines in ``head``, comment syntax removed."""
    out = []
    for match in _SPDX_LINE.finditer(head):
        value = match.group(1).strip()
        while True:
            stripped = _SPDX_TAIL.sub("", value).strip()
            if stripped == value:
                break
            value = stripped
        out.append(value)
    return out
