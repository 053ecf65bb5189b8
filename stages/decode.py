"""Decode: bytes to UTF-8 text, dropping binary files and files no encoding explains.

Reasons: ``binary`` (a NUL byte in the first ``probe_bytes``), ``undecodable``. UTF-8 is tried
first (a UTF-8 byte-order mark is removed, ``src_encoding = UTF-8-SIG``), then the encoding the
file declares (``# -*- coding: latin-1 -*-``), then charset-normalizer's best guess; the
encoding used is recorded in ``src_encoding``.
"""

from __future__ import annotations

import codecs
import hashlib
import posixpath
import re
from dataclasses import dataclass

import charset_normalizer
import pyarrow as pa

from schemas import ROW_SCHEMA
from stages.base import Reason, StageResult, split

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Decode:
    """Decode stage: fetched rows (with ``data``) in, dataset rows (ROW_SCHEMA) out."""

    probe_bytes: int = 8192
    name: str = "decode"

    def setup(self) -> None:
        """Nothing to load."""

    def process(self, table: pa.Table) -> StageResult:
        data = table["data"].to_pylist()
        reasons: list[Reason | None] = [None] * table.num_rows
        details: list[str | None] = [None] * table.num_rows
        texts: list[bytes] = []
        encodings: list[str] = []
        for i, payload in enumerate(data):
            if b"\x00" in payload[: self.probe_bytes]:
                reasons[i], details[i] = Reason.BINARY, f"NUL byte in the first {self.probe_bytes} bytes"
                continue
            decoded = decode_text(payload)
            if decoded is None:
                reasons[i], details[i] = Reason.UNDECODABLE, "not UTF-8 and no encoding detected"
                continue
            # UTF-8 input is already the output: keep its bytes rather than re-encode
            texts.append(payload if decoded[1] == "UTF-8" else decoded[0].encode("utf-8"))
            encodings.append(decoded[1])
        kept, dropped, counters = split(self.name, table, reasons, details)
        return StageResult(dataset_rows(kept, texts, encodings), dropped, counters)


def decode_text(payload: bytes) -> tuple[str, str] | None:
    """``(text, source encoding)`` of ``payload``, or None when no encoding explains it."""
    try:
        if payload.startswith(_BOM):
            return payload[len(_BOM) :].decode("utf-8"), "UTF-8-SIG"
        return payload.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    declared = declared_encoding(payload)
    if declared is not None:
        try:
            return payload.decode(declared), codecs.lookup(declared).name.upper().replace("_", "-")
        except (UnicodeDecodeError, LookupError):
            pass
    best = charset_normalizer.from_bytes(payload).best()
    if best is None:
        return None
    return str(best), best.encoding.upper().replace("_", "-")


_DECLARATION = re.compile(rb"coding[:=][ \t]*([-\w.]+)")


def declared_encoding(payload: bytes) -> str | None:
    """The encoding a file declares in its first two lines (PEP 263, Emacs and Vim modelines).

    Source files that say what they are beat any statistical guess on short texts.
    """
    head = b"\n".join(payload.split(b"\n", 2)[:2])
    match = _DECLARATION.search(head)
    return match.group(1).decode("ascii") if match else None


def extension(path: str) -> str:
    """The file extension without its dot (``"py"``), ``""`` for none (``Makefile``, ``.bashrc``)."""
    return posixpath.splitext(posixpath.basename(path))[1][1:]


def dataset_rows(fetched: pa.Table, encoded: list[bytes], encodings: list[str]) -> pa.Table:
    """ROW_SCHEMA rows from fetched rows and their text, UTF-8 encoded."""
    columns = {
        "sha256": pa.array([hashlib.sha256(b).hexdigest() for b in encoded], pa.string()),
        "extension": pa.array([extension(p) for p in fetched["path"].to_pylist()], pa.string()),
        "length_bytes": pa.array([len(b) for b in encoded], pa.int64()),
        "src_encoding": pa.array(encodings, pa.string()),
        "content": pa.array(encoded, pa.large_binary()).cast(pa.large_string()),
    }
    return pa.table(
        [columns[f.name] if f.name in columns else fetched[f.name] for f in ROW_SCHEMA], schema=ROW_SCHEMA
    )
