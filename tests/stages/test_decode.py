import hashlib

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from schemas import DECODED_SCHEMA, WALK_SCHEMA
from stages.decode import Decode, DecodeConfig, decode_text, extension


def _fetched(payloads: list[bytes], paths: list[str] | None = None) -> pa.Table:
    rows = []
    for i, payload in enumerate(payloads):
        rows.append({
            "content_id": f"{i:040x}", "blob_id": hashlib.sha1(payload).hexdigest(), "origin_url": "https://x.org/r",
            "repo_name": "x.org/r", "snapshot_id": "s", "revision_id": "r", "directory_id": "d",
            "branch_name": "HEAD", "visit_date": None, "revision_date": None, "committer_date": None,
            "path": (paths or [f"/f{i}.py" for i in range(len(payloads))])[i], "path_is_utf8": True,
            "length": len(payload), "status": "visible", "skip_reason": None,
        })
    table = pa.Table.from_pylist(rows, schema=WALK_SCHEMA)
    return table.append_column("data", pa.array(payloads, pa.large_binary()))


def test_decode_utf8_latin1_bom_binary_and_row_columns() -> None:
    latin = (
        "# -*- coding: latin-1 -*-\n"
        "# Ce module gère les données de la bibliothèque : très utilisé, déjà testé.\n"
        "# Les élèves à l'école préfèrent les fenêtres ouvertes. Où est le château ?\n"
        'def résumé(): return "façade, naïve, garçon"\n'
    )
    payloads = [b"print('hi')\n", b"\xef\xbb\xbfx = 1\n", latin.encode("latin-1"), b"\x7fELF\x00\x00\x01"]
    result = Decode().process(_fetched(payloads, ["/a.py", "/b.py", "/c.py", "/bin/tool"]), None)
    kept = result.kept
    assert kept.schema == DECODED_SCHEMA
    assert kept["content"].to_pylist() == ["print('hi')\n", "x = 1\n", latin]
    encodings = kept["src_encoding"].to_pylist()
    assert encodings[:2] == ["UTF-8", "UTF-8-SIG"]
    assert encodings[2] == "ISO8859-1"
    assert kept["sha256"].to_pylist()[2] == hashlib.sha256(latin.encode()).hexdigest()
    assert kept["length_bytes"].to_pylist() == [12, 6, len(latin.encode())]
    assert result.dropped["reason"].to_pylist() == ["binary"]
    assert result.dropped["path"].to_pylist() == ["/bin/tool"]


def test_nul_after_the_probe_window_is_not_binary() -> None:
    payload = b"a" * 100 + b"\x00"
    assert Decode(DecodeConfig(binary_probe_bytes=50)).process(_fetched([payload]), None).kept.num_rows == 1
    wide = Decode(DecodeConfig(binary_probe_bytes=200))
    assert wide.process(_fetched([payload]), None).dropped["reason"].to_pylist() == ["binary"]


@given(st.text(min_size=0, max_size=200).filter(lambda s: "\x00" not in s and not s.startswith("\ufeff")))
def test_any_utf8_text_round_trips(text: str) -> None:
    assert decode_text(text.encode("utf-8")) == (text, "UTF-8")


def test_extension() -> None:
    assert extension("/src/a.py") == "py"
    assert extension("/Makefile") == ""
    assert extension("/.bashrc") == ""
    assert extension("/a/b.tar.gz") == "gz"
    assert extension("/dir.d/file") == ""


def test_shift_jis_is_detected_and_converted() -> None:
    text = "// 日本語のコメントです。このファイルはテスト用です。\nint main() { return 0; }\n"
    assert decode_text(text.encode("shift_jis")) == (text, "CP932")


def test_undecodable_bytes_go_to_the_ledger() -> None:
    # bytes that are not UTF-8 and that no single-byte or multi-byte encoding explains as text
    payload = bytes(range(0x80, 0x100)) * 8 + b"\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0e\x0f" * 50
    result = Decode().process(_fetched([payload]), None)
    assert result.kept.num_rows == 0
    assert result.dropped["reason"].to_pylist() == ["undecodable"]
