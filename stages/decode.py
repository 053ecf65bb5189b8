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
from dataclasses import dataclass, field
from typing import Any, ClassVar

import charset_normalizer
import pyarrow as pa

from schemas import DECODED_SCHEMA
from stages.base import Reason, RowStage, StageResult, binary_array, binary_views, split

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class DecodeConfig:
    """The ``[decode]`` section: a NUL byte within the first ``binary_probe_bytes`` marks a file binary."""

    binary_probe_bytes: int = 8192


@dataclass(frozen=True)
class Decode(RowStage):
    """Decode stage: fetched rows (with ``data``) in, text rows (DECODED_SCHEMA) out. No resource."""

    config: DecodeConfig = field(default_factory=DecodeConfig)
    name: ClassVar[str] = "decode"
    reads_content: ClassVar[bool] = True

    def process(self, table: pa.Table, resource: Any = None) -> StageResult:
        # views into the fetched buffer: no per-file copies of the content
        values = binary_views(table["data"])
        reasons: list[Reason | None] = [None] * table.num_rows
        details: list[str | None] = [None] * table.num_rows
        texts: list[bytes | memoryview] = []
        encodings: list[str] = []
        probe = self.config.binary_probe_bytes
        for i, raw in enumerate(values):
            if b"\x00" in bytes(raw[:probe]):
                reasons[i], details[i] = Reason.BINARY, f"NUL byte in the first {probe} bytes"
                continue
            if bytes(raw[: len(_BOM)]) != _BOM:
                try:
                    str(raw, "utf-8")
                except UnicodeDecodeError:
                    pass
                else:  # UTF-8 already: the bytes are the output
                    texts.append(raw)
                    encodings.append("UTF-8")
                    continue
            decoded = decode_text(bytes(raw))
            if decoded is None:
                reasons[i], details[i] = Reason.UNDECODABLE, "not UTF-8 and no encoding detected"
                continue
            texts.append(decoded[0].encode("utf-8"))
            encodings.append(decoded[1])
        kept, dropped, counters = split(self.name, table, reasons, details)
        if all(e == "UTF-8" for e in encodings):
            content = kept["data"].cast(pa.large_string())  # zero-copy: same buffers, validated
        else:
            content = binary_array(texts, pa.large_string())
        return StageResult(dataset_rows(kept, texts, encodings, content), dropped, counters)


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


def dataset_rows(
    fetched: pa.Table, encoded: list[bytes | memoryview], encodings: list[str], content: pa.Array | pa.ChunkedArray
) -> pa.Table:
    """DECODED_SCHEMA rows from fetched rows, their text UTF-8 encoded, and the same text as an Arrow column."""
    columns = {
        "sha256": pa.array([hashlib.sha256(b).hexdigest() for b in encoded], pa.string()),
        "extension": pa.array([extension(p) for p in fetched["path"].to_pylist()], pa.string()),
        "length_bytes": pa.array([len(b) for b in encoded], pa.int64()),
        "src_encoding": pa.array(encodings, pa.string()),
        "content": content,
    }
    return pa.table(
        [columns[f.name] if f.name in columns else fetched[f.name] for f in DECODED_SCHEMA], schema=DECODED_SCHEMA
    )
