"""ScanCode's candidate step (approximate matching), for all rules at once with numpy.

Where ScanCode spends its time on a license file that is not a known text: ``match_set.
compute_candidates``, once per query run (a license file has one to a few dozen), compares the
run's token set with the token set of every one of ScanCode's ~35,000 rules, one rule at a time in
Python (~0.09 s per run; on a 74 KB file bundling a dozen licenses, 6.5 of its 7.4 s). Almost every
rule fails there at once: its intersection with the run has fewer tokens, or fewer "legalese"
tokens, than the rule's minimum.

``RuleSets`` holds every rule's token set and multiset as one CSR array, and the same entries by
token. For a query run it counts, for all rules at once, the tokens shared with the run and the
legalese ones among them (from the run's side: the rules of each of its tokens), and
keeps the rules meeting ScanCode's own conditions in ``compare_token_sets`` (an intersection, a
legalese intersection, ``len(high) >= rule.get_min_high_matched_length(True)``,
``len(intersection) >= rule.get_min_matched_length(True)``, the rule's minimum containment). Their
scores are ScanCode's, computed the way it computes them (integer counts, one IEEE division each,
Python's float power and Python's ``round``, which ``_round1`` reproduces exactly), and ordered as
its ``sort(reverse=True)`` orders its tuples (``np.lexsort`` on the same keys, the rule id last).
ScanCode's second step (``compare_token_sets`` on multisets) runs on the ``top * 10`` first: the
multiset intersections' cardinalities, all tokens and legalese ones, from the same arrays, then
ScanCode's tests and scores in its arithmetic (``_multiset_scores``), one rule at a time; its
de-duplication (``filter_dupes``) after it. The candidates, their order and everything after are the same:
tests/stages/test_license_candidates.py compares the candidate lists, and the detections, with and
without, on ScanCode's own texts altered and bundled; ``benchmarks/license_candidates.py`` on real
license files.

``install`` puts the wrapper in place of ``licensedcode.match_set.compute_candidates`` (ScanCode's
index calls it through that module attribute), for an index whose ``RuleSets`` were built;
any other index gets ScanCode's function as it is.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

_LOCK = threading.Lock()
_RULE_SETS: dict[int, RuleSets] = {}  # id(index) → its rule sets (one index per process, while loaded)
_ORIGINAL: Any = None


class RuleSets:
    """Every rule's token-id set of one ScanCode index as a CSR array (``indices``, sorted within each
    rule; ``counts``: each token's occurrences in the rule, i.e. the rule's multiset; ``rule_of``: each
    entry's rule; ``offsets``: rule ``r``'s entries are ``offsets[r]:offsets[r + 1]``), the same entries
    by token (``by_token``: the rules having token ``t`` are ``by_token[token_offsets[t]:token_offsets[t +
    1]]``), and each rule's minimums. ``arrays``: these arrays, stored (``stages.license.lean``); else
    built from the index."""

    def __init__(self, index: Any, arrays: dict[str, np.ndarray] | None = None) -> None:
        if arrays is None:
            present = getattr(index.sets_by_rid, "present", None)
            if present is None:
                present = [s is not None for s in index.sets_by_rid]
            arrays = rule_arrays(index.tids_by_rid, present)
        self.indices, self.counts = arrays["indices"], arrays["counts"]
        self.rule_of, self.offsets = arrays["rule_of"], arrays["offsets"]
        self.by_token, self.token_offsets = arrays["by_token"], arrays["token_offsets"]
        self.rules = len(self.offsets) - 1
        self.len_legalese = index.len_legalese
        self.high = self.indices < index.len_legalese
        rules = index.rules_by_rid
        for unique in (True, False):  # step one compares sets, step two multisets
            suffix = "" if unique else "_multi"
            setattr(self, "min_matched" + suffix,
                    np.array([r.get_min_matched_length(unique) for r in rules], dtype=np.int64))
            setattr(self, "min_high" + suffix,
                    np.array([r.get_min_high_matched_length(unique) for r in rules], dtype=np.int64))
            setattr(self, "length" + suffix, np.array([r.get_length(unique) for r in rules], dtype=np.float64))
        self.min_containment = np.array([r._minimum_containment or 0.0 for r in rules], dtype=np.float64)
        self.vocabulary = len(self.token_offsets) - 1

    def arrays(self) -> dict[str, np.ndarray]:
        return {"indices": self.indices, "counts": self.counts, "rule_of": self.rule_of, "offsets": self.offsets,
                "by_token": self.by_token, "token_offsets": self.token_offsets}

    def query(self, token_ids: Any) -> np.ndarray:
        """The distinct token ids of a query set that some rule has (the others match nothing)."""
        query = np.unique(np.fromiter(token_ids, dtype=np.int64))
        return query[(query >= 0) & (query < self.vocabulary)]

    def present(self, query: np.ndarray) -> np.ndarray:
        """The query's token ids as flags over the rules' vocabulary."""
        present = np.zeros(self.vocabulary, dtype=bool)
        present[query] = True
        return present

    def scored(self, query: np.ndarray, query_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The rules that pass ``compare_token_sets``'s tests on token *sets* against the query set
        (``query``: its distinct token ids, from ``query``; ``query_length`` tokens in all), in increasing
        rule id: their ids, matched lengths, resemblances and containments, each computed as ScanCode
        computes it (integer counts, then one IEEE division each, which numpy and Python round alike).
        The shared tokens are counted from the query's side: the rules of each of its tokens."""
        rules = self.by_token[_ranges(self.token_offsets[query], self.token_offsets[query + 1])]
        lengths = self.token_offsets[query + 1] - self.token_offsets[query]
        matched = np.bincount(rules, minlength=self.rules)
        high = np.bincount(rules[np.repeat(query < self.len_legalese, lengths)], minlength=self.rules)
        ok = (matched > 0) & (high > 0) & (high >= self.min_high) & (matched >= self.min_matched)
        rids = np.flatnonzero(ok)
        matched = matched[rids]
        length = self.length[rids]
        containment = matched / length
        keep = ~((self.min_containment[rids] > 0) & (containment < self.min_containment[rids]))
        rids, matched, length, containment = rids[keep], matched[keep], length[keep], containment[keep]
        resemblance = matched / (query_length + length - matched)
        return rids, matched, resemblance, containment

    def multiset_matches(self, rids: np.ndarray, query_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each rule of ``rids``, the cardinality of its multiset's intersection with the query's
        (``query_counts``: each token's count in the query, over the vocabulary), all tokens and
        legalese tokens: ScanCode's ``multiset_counter`` of ``multisets_intersector``, and of its
        ``high_multiset_subset``."""
        starts, ends = self.offsets[rids], self.offsets[rids + 1]
        positions = _ranges(starts, ends)
        shared = np.minimum(query_counts[self.indices[positions]], self.counts[positions])
        segment = np.repeat(np.arange(len(rids)), ends - starts)
        matched = np.bincount(segment, weights=shared, minlength=len(rids)).astype(np.int64)
        high = np.bincount(segment, weights=shared * self.high[positions], minlength=len(rids)).astype(np.int64)
        return matched, high

    def high_shared(self, rid: int, present: np.ndarray) -> Any:
        """The legalese tokens rule ``rid`` shares with the query (``present``: the query's tokens as
        flags), as ScanCode's ``high_tids_set_subset(tids_sets_intersector(qset, sets_by_rid[rid]))``."""
        from intbitset import intbitset

        start, end = int(self.offsets[rid]), int(self.offsets[rid + 1])
        tids = self.indices[start:end]
        return intbitset(tids[present[tids] & self.high[start:end]].tolist())


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The positions ``starts[i]:ends[i]`` for every ``i``, concatenated."""
    lengths = ends - starts
    total = int(lengths.sum())
    return np.arange(total, dtype=np.int64) + np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)


def rule_arrays(tids_by_rid: Any, present: Any) -> dict[str, np.ndarray]:
    """``RuleSets``' arrays from each rule's token ids (ScanCode's ``tids_by_rid``: ``array('h')``s), for
    the rules ``present`` flags (those ScanCode gives a set): per rule, its distinct token ids in
    increasing order and each one's count (as ``build_set_and_tids_mset`` counts: -1 left out)."""
    lengths = np.fromiter((len(t) if p else 0 for t, p in zip(tids_by_rid, present, strict=True)), dtype=np.int64,
                          count=len(tids_by_rid))
    rules = len(tids_by_rid)
    parts = [np.frombuffer(t, dtype=np.int16) for t, p in zip(tids_by_rid, present, strict=True) if p and len(t)]
    flat = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
    rule_of = np.repeat(np.arange(rules, dtype=np.int64), lengths)
    valid = flat >= 0
    flat, rule_of = flat[valid], rule_of[valid]
    width = int(flat.max()) + 1 if len(flat) else 1
    keys, counts = np.unique(rule_of * width + flat, return_counts=True)
    rule_of, indices = keys // width, keys % width
    by_token = np.argsort(indices, kind="stable")  # by token, then rule
    return {"indices": indices.astype(np.int32), "counts": counts.astype(np.int32),
            "rule_of": rule_of.astype(np.int32),
            "offsets": np.searchsorted(rule_of, np.arange(rules + 1, dtype=np.int64)).astype(np.int64),
            "by_token": rule_of[by_token].astype(np.int32),
            "token_offsets": np.searchsorted(indices[by_token], np.arange(width + 1, dtype=np.int64)).astype(np.int64)}


def _round1(values: np.ndarray) -> np.ndarray:
    """Python's ``round(x, 1)`` for each value: ``rint(10x) / 10``, except where ``10x`` is within
    rounding error of a half (there the correctly rounded decimal may be the other neighbour), which
    Python's ``round`` decides."""
    scaled = values * 10
    out = np.rint(scaled) / 10
    near_half = np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-9)
    for i in near_half.tolist():
        out[i] = round(float(values[i]), 1)
    return out


def _step1_order(rids: np.ndarray, ml: np.ndarray, res: np.ndarray, con: np.ndarray, amp: np.ndarray,
                 threshold: float, high_resemblance: bool) -> np.ndarray:
    """Positions of the scored rules in ScanCode's step-one order: its ``(ScoresVector rounded,
    ScoresVector full)`` tuples, then the rule id, all descending (``sort(reverse=True)``), the ones
    ``high_resemblance`` excludes left out. The keys are the same doubles ScanCode's tuples hold."""
    keys = (
        rids,  # lexsort: the last key is the first compared
        ml, amp, con, res >= threshold,
        _round1(ml / 20), _round1(amp), _round1(con), _round1(res) >= threshold,
    )
    order = np.lexsort(keys)[::-1]  # all tuples differ (the rule ids do): descending = ascending reversed
    if high_resemblance:
        wanted = (keys[-1] & keys[4])[order]
        order = order[wanted]
    return order


def compute_candidates(query_run: Any, idx: Any, matchable_rids: Any, top: int = 50, high_resemblance: bool = False,
                       high_resemblance_threshold: float = 0.8, _use_bigrams: bool = False) -> Any:
    """ScanCode's ``match_set.compute_candidates`` (same arguments, same result), its first step done
    for all rules at once (``RuleSets.scored``, ``_step1_order``), its second step's intersections for
    the ``top * 10`` first at once (``RuleSets.multiset_matches``, ``_multiset_scores``);
    ``filter_dupes`` is ScanCode's. An index without rule sets gets ScanCode's function itself."""
    from licensedcode import match_set as ms

    rule_sets = _RULE_SETS.get(id(idx))
    if rule_sets is None or _use_bigrams:  # bigram multisets: off in ScanCode (USE_BIGRAM_MULTISETS)
        return _ORIGINAL(query_run, idx, matchable_rids, top, high_resemblance, high_resemblance_threshold,
                         _use_bigrams)
    qset, qmset = ms.build_set_and_mset(query_run.matchable_tokens())
    rules = idx.rules_by_rid

    def wanted(scores: Any) -> bool:
        return not high_resemblance or (scores[0].is_highly_resemblant and scores[1].is_highly_resemblant)

    query = rule_sets.query(qset)
    rids, matched, resemblance, containment = rule_sets.scored(query, len(qset))
    keep = np.fromiter((rid in matchable_rids for rid in rids.tolist()), dtype=bool, count=len(rids))
    rids, matched, resemblance, containment = rids[keep], matched[keep], resemblance[keep], containment[keep]
    if not len(rids):
        return []
    # compare_token_sets' amplified resemblance, in its arithmetic (Python's float power)
    amplified = np.array([r**2 for r in resemblance.tolist()], dtype=np.float64)
    order = _step1_order(rids, matched, resemblance, containment, amplified, high_resemblance_threshold,
                         high_resemblance)
    if not len(order):
        return []

    # step two: compare_token_sets on multisets for the top * 10 of step one, in that order; the
    # intersections' cardinalities from the rule sets' arrays (not from the index's tables, which a
    # lean index computes only when asked: the same values), the rest in ScanCode's arithmetic
    chosen = rids[order[: top * 10]]
    tokens = np.fromiter(qmset.keys(), dtype=np.int64, count=len(qmset))
    occurrences = np.fromiter(qmset.values(), dtype=np.int64, count=len(qmset))
    inside = (tokens >= 0) & (tokens < rule_sets.vocabulary)
    query_counts = np.zeros(rule_sets.vocabulary, dtype=np.int64)
    query_counts[tokens[inside]] = occurrences[inside]
    matched_lengths, high_lengths = rule_sets.multiset_matches(chosen, query_counts)
    query_length = ms.multiset_counter(qmset)
    present = rule_sets.present(query)
    step2 = []
    for rid, matched_length, high_length in zip(chosen.tolist(), matched_lengths.tolist(), high_lengths.tolist(),
                                                strict=True):
        rule = rules[rid]
        scores = _multiset_scores(rule, matched_length, high_length, query_length, high_resemblance_threshold)
        if scores and wanted(scores):
            # step one's set intersection, as ScanCode keeps it
            step2.append((scores, rid, rule, rule_sets.high_shared(rid, present)))
    if not step2:
        return step2
    return sorted(ms.filter_dupes(step2), reverse=True)[:top]


def _multiset_scores(rule: Any, matched_length: int, high_matched_length: int, query_length: int,
                     high_resemblance_threshold: float) -> Any:
    """ScanCode's ``compare_token_sets`` on multisets (``unique=False``, ``filter_non_matching=True``)
    from its intersection's cardinalities: its scores, or None where it returns ``(None, None)``."""
    from licensedcode.match_set import ScoresVector

    if not matched_length or not high_matched_length:  # an empty intersection, or no legalese in it
        return None
    if high_matched_length < rule.get_min_high_matched_length(False):
        return None
    if matched_length < rule.get_min_matched_length(False):
        return None
    rule_length = rule.get_length(False)
    resemblance = matched_length / (query_length + rule_length - matched_length)
    containment = matched_length / rule_length
    amplified_resemblance = resemblance**2
    minimum_containment = rule._minimum_containment
    if minimum_containment and containment < minimum_containment:
        return None
    return (
        ScoresVector(is_highly_resemblant=round(resemblance, 1) >= high_resemblance_threshold,
                     containment=round(containment, 1), resemblance=round(amplified_resemblance, 1),
                     matched_length=round(matched_length / 20, 1)),
        ScoresVector(is_highly_resemblant=resemblance >= high_resemblance_threshold, containment=containment,
                     resemblance=amplified_resemblance, matched_length=matched_length),
    )


def install(index: Any, arrays: dict[str, np.ndarray] | None = None) -> RuleSets:
    """Build ``index``'s rule sets (from ``arrays`` when given) and route ScanCode's candidate step
    through ``compute_candidates``; the rule sets."""
    global _ORIGINAL
    from licensedcode import match_set

    rule_sets = RuleSets(index, arrays)
    with _LOCK:
        if _ORIGINAL is None:
            _ORIGINAL = match_set.compute_candidates
            match_set.compute_candidates = compute_candidates
        _RULE_SETS.clear()  # one index per process: a reloaded one replaces the last
        _RULE_SETS[id(index)] = rule_sets
    return rule_sets


def forget() -> None:
    """Drop the rule sets (with the index they describe); ScanCode's function stays wrapped, which
    for an index without rule sets is ScanCode's own."""
    with _LOCK:
        _RULE_SETS.clear()
