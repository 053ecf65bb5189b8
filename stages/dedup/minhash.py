"""MinHash over word n-grams, as numpy over many documents at once, and LSH band keys.

Signatures use datasketch's MinHash family (scheme ``affine32``: the shingle's 32-bit hash is
pre-mixed with the MurmurHash3 finalizer, then ``a_k * h + b_k`` in uint32 for each permutation,
with datasketch's own ``a, b``), computed for a whole batch of documents at once:
``datasketch.MinHash.update_batch`` gives the same values one document at a time (tested).

The batch is tokenized without a Python object per token (bytes flags and Arrow's dictionary
encoding: each distinct token of the batch is hashed once) and its n-grams are combined, made unique
and permuted as whole-batch arrays; the values are those of ``tokens`` and ``shingle_hashes`` text by
text (tested against the per-text implementation).
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import xxhash

if TYPE_CHECKING:
    from stages.dedup import DedupConfig

_TOKEN = re.compile(r"\w+")
_MIX = np.uint64(0x9E3779B97F4A7C15)
_CHUNK = 1 << 17  # shingles per numpy block, of _ROWS permutations: 128 Ki x 8 x 4 bytes = 4 MiB
_ROWS = 8
_SHORT = 4096  # characters: ``shingle_hashes`` of a shorter text hashes its tokens one by one

@lru_cache(maxsize=4)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's permutation parameters ``(a, b)`` (uint32) for ``num_perm`` and ``seed``: the draws
    of ``MinHash(num_perm, seed, scheme="affine32")`` (odd ``a``, any ``b``, from NumPy's
    ``RandomState(seed)``), made here because importing datasketch costs ~0.6 CPU s (it imports SciPy
    for its LSH). Tests check them equal to the installed datasketch's."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def tokens(text: str) -> list[str]:
    """Lowercase word tokens: the text split on ``\\W+``, empty pieces dropped."""
    return _TOKEN.findall(text.lower())


# ``\w`` of Python's ``re`` on ASCII is ``[0-9A-Za-z_]``: as a ``bytes.translate`` table to 0/1 flags, the
# bytes deleted to keep only word bytes, and the table that lowercases ASCII (for ASCII texts only).
_ASCII_WORD = b"0123456789_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_WORD_FLAG = bytes(int(i in _ASCII_WORD) for i in range(256))
_NON_WORD = bytes(i for i in range(256) if i not in _ASCII_WORD)
_LOWER = bytes(range(256)).lower()


@cache
def _word_table() -> np.ndarray:
    """Whether each code point is a ``\\w`` character, decided by ``_TOKEN`` itself over all of Unicode
    (so the definition stays the regex's): built once per process, on the first non-ASCII text
    (~0.2 CPU s, 1.1 MB), and read-only after (threads only read it)."""
    table = np.zeros(0x110000, dtype=bool)
    every = np.arange(0x110000, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")  # one string
    for match in _TOKEN.finditer(every):
        table[match.start() : match.end()] = True
    table.setflags(write=False)
    return table


def _word_bytes(text: str) -> np.ndarray:
    """One bool per UTF-8 byte of ``text`` (``surrogatepass``): the byte is of a ``\\w`` character."""
    points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    utf8_length = 1 + (points >= 0x80).astype(np.intp) + (points >= 0x800) + (points >= 0x10000)
    return np.repeat(_word_table()[points], utf8_length)


def _token_hashes(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """xxh3_64 of every token of every text (``tokens``, UTF-8), in order, and each text's token count.

    The same tokens as ``tokens`` without a Python object per token: each lowercased text's UTF-8 bytes
    give word flags and word bytes (``bytes.translate``, numpy for a text with a non-ASCII character);
    tokens are the runs of flags (the texts' flags joined by a 0, so that no token spans two texts),
    and each distinct token of the batch is hashed once (Arrow's ``dictionary_encode``).
    """
    flags, kept = [], []
    for text in texts:
        if text.isascii():  # lowercase ASCII is ``bytes.lower``: one translate lowers and drops non-word bytes
            data = text.encode("ascii")
            flags.append(data.translate(_WORD_FLAG))
            kept.append(data.translate(_LOWER, _NON_WORD))
        else:
            lower = text.lower()
            data = lower.encode("utf-8", "surrogatepass")  # a lone surrogate is no word character: never kept
            word = _word_bytes(lower)
            flags.append(word.tobytes())
            kept.append(np.frombuffer(data, dtype=np.uint8)[word].tobytes())
    joined = np.frombuffer(b"\0" + b"\0".join(flags) + b"\0", dtype=bool)
    edges = np.flatnonzero(joined[1:] != joined[:-1])  # the ends are 0: starts and ends alternate
    lengths = edges[1::2] - edges[0::2]
    # each text's tokens start before the 0 that closes its flags (index in ``joined`` - 1, as ``edges``)
    closing = np.cumsum(np.fromiter(map(len, flags), dtype=np.int64, count=len(flags)) + 1)
    counts = np.diff(np.searchsorted(edges[0::2], closing), prepend=0)
    if not len(lengths):
        return np.empty(0, dtype=np.uint64), counts
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    words = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(lengths), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(kept))]
    ).dictionary_encode()
    distinct = words.dictionary.to_pylist()
    digests = np.fromiter(map(xxhash.xxh3_64_intdigest, distinct), dtype=np.uint64, count=len(distinct))
    return digests[words.indices.to_numpy()], counts


def _shingles(texts: list[str], ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Every text's ``shingle_hashes``, concatenated in text order, and their counts."""
    token_hashes, token_counts = _token_hashes(texts)
    n = len(token_hashes) - ngram + 1
    if n <= 0:
        return np.empty(0, dtype=np.uint32), np.zeros(len(texts), dtype=np.int64)
    # the batch's tokens in one array: n-grams that span two texts are computed, then dropped
    combined = np.zeros(n, dtype=np.uint64)
    rotated, low = np.empty(n, dtype=np.uint64), np.empty(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(ngram):  # order-sensitive mix of the n tokens: rotate, multiply, xor
            part = token_hashes[k : k + n]
            np.left_shift(part, np.uint64(k + 1), out=rotated)
            np.right_shift(part, np.uint64(63 - k), out=low)
            np.bitwise_or(rotated, low, out=rotated)
            np.multiply(combined, _MIX, out=combined)
            np.bitwise_xor(combined, rotated, out=combined)
    text_of = np.repeat(np.arange(len(texts), dtype=np.uint64), token_counts)
    within = text_of[:n] == text_of[ngram - 1 :]  # the n-gram's first and last tokens are of one text
    folded = combined[within]
    np.bitwise_xor(folded, folded >> np.uint64(32), out=folded)
    np.bitwise_and(folded, np.uint64(0xFFFFFFFF), out=folded)
    keys = text_of[:n][within]
    np.left_shift(keys, np.uint64(32), out=keys)
    np.bitwise_or(keys, folded, out=keys)  # text, then hash: sorted, unique per text
    keys.sort(kind="stable")  # runs of texts: Timsort measured 2x faster than the default here
    first = np.empty(len(keys), dtype=bool)  # of its run of equal keys (no n-gram within a text: none)
    first[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    keys = keys[first]
    counts = np.bincount((keys >> np.uint64(32)).astype(np.intp), minlength=len(texts))
    return keys.astype(np.uint32), counts.astype(np.int64)


def shingle_hashes(text: str, ngram: int) -> np.ndarray:
    """32-bit hashes of the text's word n-grams (xxh3 per token, combined in order), unique, sorted.

    A text with fewer than ``ngram`` tokens has no shingles. A short text (``exact_jaccard`` calls this
    per text) hashes its tokens one by one: the batch path costs a fixed ~0.1 ms more, which only a text
    of ~4,000 characters pays back. Both give the same values (tested).
    """
    if len(text) >= _SHORT:
        return _shingles([text], ngram)[0]
    words = tokens(text)
    if len(words) < ngram:
        return np.empty(0, dtype=np.uint32)
    digest = xxhash.xxh3_64_intdigest
    token_hashes = np.fromiter((digest(w.encode()) for w in words), dtype=np.uint64, count=len(words))
    n = len(words) - ngram + 1
    combined = np.zeros(n, dtype=np.uint64)
    for k in range(ngram):  # the same mix as ``_shingles``
        part = token_hashes[k : k + n]
        combined = (combined * _MIX) ^ ((part << np.uint64(k + 1)) | (part >> np.uint64(63 - k)))
    return np.unique((combined ^ (combined >> np.uint64(32))).astype(np.uint32))


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, as datasketch applies it before the permutations."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def signatures(texts: list[str], config: DedupConfig) -> tuple[np.ndarray, np.ndarray]:
    """MinHash signatures of ``texts``, all at once: ``(docs x num_perm uint32, shingle counts)``.

    A text without shingles gets the all-max signature and a count of 0 (it skips near dedup).
    """
    a, b = permutations(config.num_perm, config.seed)
    shingles, counts = _shingles(texts, config.ngram)
    out = np.full((len(texts), config.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    if not len(shingles):
        return out, counts
    hashes = _fmix32(shingles)
    doc_of = np.repeat(np.arange(len(texts)), counts)
    # permutations x shingles, a few permutations at a time over many shingles, in a reused buffer: in
    # place, numpy runs at ~0.1 ns per value per operation (fresh temporaries and the transposed layout
    # measured 10x slower, all 256 permutations of 16 Ki shingles at a time 1.3x)
    rows = min(_ROWS, config.num_perm)
    buffer = np.empty((rows, min(_CHUNK, len(hashes))), dtype=np.uint32)
    mins = out.T  # permutations x documents, a view: written through
    with np.errstate(over="ignore"):
        for start in range(0, len(hashes), _CHUNK):
            chunk = hashes[start : start + _CHUNK]
            docs = doc_of[start : start + _CHUNK]
            # shingles of one document are contiguous: reduce each run, then fold into the output
            runs = np.flatnonzero(np.r_[True, docs[1:] != docs[:-1]])
            docs = docs[runs]  # distinct
            for row in range(0, config.num_perm, rows):
                block = buffer[: min(rows, config.num_perm - row), : len(chunk)]
                np.multiply(a[row : row + len(block), None], chunk[None, :], out=block)
                np.add(block, b[row : row + len(block), None], out=block)
                least = np.minimum.reduceat(block, runs, axis=1)
                mins[row : row + len(block), docs] = np.minimum(mins[row : row + len(block), docs], least)
    return out, counts


def band_hashes(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """``docs x bands`` uint64 keys: each band's ``rows`` values hashed together."""
    usable = sigs[:, : bands * rows].astype(np.uint64).reshape(len(sigs), bands, rows)
    key = np.zeros((len(sigs), bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for r in range(rows):
            key = (key ^ usable[:, :, r]) * _MIX
            key ^= key >> np.uint64(29)
    return key


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Fraction of equal MinHash values, row by row."""
    return (sig_a == sig_b).mean(axis=1)


def exact_jaccard(text_a: str, text_b: str, ngram: int) -> float:
    """Jaccard similarity of the two texts' shingle sets."""
    a, b = shingle_hashes(text_a, ngram), shingle_hashes(text_b, ngram)
    union = len(np.union1d(a, b))
    return len(np.intersect1d(a, b, assume_unique=True)) / union if union else 1.0


def candidate_pairs(nodes: list[str]) -> list[tuple[str, str]]:
    """Pairs to verify within one LSH bucket, ``nodes`` sorted: each to the first, and neighbours.

    Linear in the bucket size (a bucket of 10,000 near-copies gives ~20,000 pairs, not 50 million):
    the star finds everything similar to the bucket's first member, the chain what is similar to
    a neighbour but not to the first.
    """
    pairs = [(nodes[0], n) for n in nodes[1:]]
    pairs += [(nodes[i], nodes[i + 1]) for i in range(1, len(nodes) - 1)]
    return pairs
