"""MinHash over word n-grams, as numpy over many documents at once, and LSH band keys.

Signatures use datasketch's MinHash family (scheme ``affine32``: the shingle's 32-bit hash is
pre-mixed with the MurmurHash3 finalizer, then ``a_k * h + b_k`` in uint32 for each permutation,
with datasketch's own ``a, b``), computed for a whole batch of documents at once:
``datasketch.MinHash.update_batch`` gives the same values one document at a time (tested).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import xxhash

if TYPE_CHECKING:
    from stages.dedup import DedupConfig

_TOKEN = re.compile(r"\w+")
_MIX = np.uint64(0x9E3779B97F4A7C15)
_CHUNK = 1 << 14  # shingles per numpy block: 16 Ki x 256 x 4 bytes = 16 MiB, cache-friendly

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


def shingle_hashes(text: str, ngram: int) -> np.ndarray:
    """32-bit hashes of the text's word n-grams (xxh3 per token, combined in order), unique.

    A text with fewer than ``ngram`` tokens has no shingles.
    """
    words = tokens(text)
    if len(words) < ngram:
        return np.empty(0, dtype=np.uint32)
    digest = xxhash.xxh3_64_intdigest
    token_hashes = np.fromiter((digest(w.encode()) for w in words), dtype=np.uint64, count=len(words))
    n = len(words) - ngram + 1
    combined = np.zeros(n, dtype=np.uint64)
    for k in range(ngram):  # order-sensitive mix of the n tokens: rotate, multiply, xor
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
    per_doc = [shingle_hashes(t, config.ngram) for t in texts]
    counts = np.array([len(h) for h in per_doc], dtype=np.int64)
    out = np.full((len(texts), config.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    if not counts.sum():
        return out, counts
    hashes = _fmix32(np.concatenate(per_doc))
    doc_of = np.repeat(np.arange(len(texts)), counts)
    # permutations x shingles, in a reused buffer: in place, numpy runs at ~0.15 ns per value
    # (fresh temporaries and the transposed layout measured 10x slower)
    buffer = np.empty((config.num_perm, min(_CHUNK, len(hashes))), dtype=np.uint32)
    with np.errstate(over="ignore"):
        for start in range(0, len(hashes), _CHUNK):
            chunk = hashes[start : start + _CHUNK]
            block = buffer[:, : len(chunk)]
            np.multiply(a[:, None], chunk[None, :], out=block)
            np.add(block, b[:, None], out=block)
            docs = doc_of[start : start + _CHUNK]
            # shingles of one document are contiguous: reduce each run, then fold into the output
            starts = np.flatnonzero(np.r_[True, docs[1:] != docs[:-1]])
            np.minimum.at(out, docs[starts], np.minimum.reduceat(block, starts, axis=1).T)
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
