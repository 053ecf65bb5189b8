"""ScanCode's approximate matching, first step, with the rules that cannot pass left out up front.

Where ScanCode spends its time on a license file that is not a known text: ``match_set.
compute_candidates``, once per query run (a license file has one to a few dozen), compares the
run's token set with the token set of every one of ScanCode's ~35,000 rules, one rule at a time in
Python (~0.09 s per run; on a 74 KB file bundling a dozen licenses, 6.5 of its 7.4 s). Almost every
rule fails there at once: its intersection with the run has fewer tokens, or fewer "legalese"
tokens, than the rule's minimum.

``RuleSets`` holds every rule's token set as one CSR array. For a query run it counts, for all
rules at once with numpy, the tokens shared with the run and the legalese ones among them, and
keeps the rules meeting ScanCode's own conditions in ``compare_token_sets`` (an intersection, a
legalese intersection, ``len(high) >= rule.get_min_high_matched_length(True)``,
``len(intersection) >= rule.get_min_matched_length(True)``, the rule's minimum containment). Their
scores are ScanCode's, computed the way it computes them (integer counts, one IEEE division each,
Python's float power and Python's ``round``, which ``_round1`` reproduces exactly), and ordered as
its ``sort(reverse=True)`` orders its tuples (``np.lexsort`` on the same keys, the rule id last).
ScanCode's second step (multisets) runs on the ``top * 10`` first, with ScanCode's own functions,
and its de-duplication after it. The candidates, their order and everything after are the same:
tests/stages/test_license_candidates.py compares the candidate lists, and the detections, with and
without, on ScanCode's own texts altered and bundled; ``benchmarks/license_candidates.py`` on real
license files.

``install`` puts the wrapper in place of ``licensedcode.match_set.compute_candidates`` (ScanCode's
index calls it through that module attribute), for an index whose ``RuleSets`` were built;
any other index gets ScanCode's function as it is.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from functools import partial
from typing import Any

import numpy as np

_LOCK = threading.Lock()
_RULE_SETS: dict[int, RuleSets] = {}  # id(index) → its rule sets (one index per process, while loaded)
_ORIGINAL: Any = None


class RuleSets:
    """Every rule's token-id set of one ScanCode index as a CSR array (``indices``, sorted within each
    rule; ``counts``: each token's occurrences in the rule, i.e. the rule's multiset; ``rule_of``: each
    entry's rule; ``offsets``: rule ``r``'s entries are ``offsets[r]:offsets[r + 1]``), and each rule's
    minimums. ``arrays``: these arrays, stored (``stages.license.lean``); else built from the index."""

    def __init__(self, index: Any, arrays: dict[str, np.ndarray] | None = None) -> None:
        if arrays is None:
            present = getattr(index.sets_by_rid, "present", None)
            if present is None:
                present = [s is not None for s in index.sets_by_rid]
            arrays = rule_arrays(index.tids_by_rid, present)
        self.indices, self.counts = arrays["indices"], arrays["counts"]
        self.rule_of, self.offsets = arrays["rule_of"], arrays["offsets"]
        self.rules = len(self.offsets) - 1
        self.high = self.indices < index.len_legalese
        rules = index.rules_by_rid
        self.min_matched = np.array([r.get_min_matched_length(True) for r in rules], dtype=np.int64)
        self.min_high = np.array([r.get_min_high_matched_length(True) for r in rules], dtype=np.int64)
        self.length = np.array([r.get_length(True) for r in rules], dtype=np.float64)
        self.min_containment = np.array([r._minimum_containment or 0.0 for r in rules], dtype=np.float64)
        self.vocabulary = int(self.indices.max()) + 1 if len(self.indices) else 0

    def arrays(self) -> dict[str, np.ndarray]:
        return {"indices": self.indices, "counts": self.counts, "rule_of": self.rule_of, "offsets": self.offsets}

    def multiset(self, rid: int) -> defaultdict[int, int]:
        """Rule ``rid``'s token multiset, as ScanCode's ``msets_by_rid[rid]`` holds it (the same items;
        in token order, where ScanCode's are in first-occurrence order, which no result depends on)."""
        start, end = int(self.offsets[rid]), int(self.offsets[rid + 1])
        return defaultdict(int, zip(self.indices[start:end].tolist(), self.counts[start:end].tolist(), strict=True))

    def high_shared(self, rid: int, present: np.ndarray) -> Any:
        """The legalese tokens rule ``rid`` shares with the query (``present``: the query's tokens as
        flags), as ScanCode's ``high_tids_set_subset(tids_sets_intersector(qset, sets_by_rid[rid]))``."""
        from intbitset import intbitset

        start, end = int(self.offsets[rid]), int(self.offsets[rid + 1])
        tids = self.indices[start:end]
        return intbitset(tids[present[tids] & self.high[start:end]].tolist())

    def present(self, token_ids: Any) -> np.ndarray:
        """The query's token ids as flags over the rules' vocabulary."""
        query = np.fromiter(token_ids, dtype=np.int64)
        query = query[(query >= 0) & (query < self.vocabulary)]
        present = np.zeros(self.vocabulary, dtype=bool)
        present[query] = True
        return present

    def scored(self, present: np.ndarray, query_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The rules that pass ``compare_token_sets``'s tests on token *sets* against the query set
        (``present``, of ``query_length`` tokens), in increasing rule id: their ids, matched lengths,
        resemblances and containments, each computed as ScanCode computes it (integer counts, then one
        IEEE division each, which numpy and Python round alike)."""
        shared = present[self.indices]
        matched = np.bincount(self.rule_of[shared], minlength=self.rules)
        high = np.bincount(self.rule_of[shared & self.high], minlength=self.rules)
        ok = (matched > 0) & (high > 0) & (high >= self.min_high) & (matched >= self.min_matched)
        rids = np.flatnonzero(ok)
        matched = matched[rids]
        length = self.length[rids]
        containment = matched / length
        keep = ~((self.min_containment[rids] > 0) & (containment < self.min_containment[rids]))
        rids, matched, length, containment = rids[keep], matched[keep], length[keep], containment[keep]
        resemblance = matched / (query_length + length - matched)
        return rids, matched, resemblance, containment


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
    rule_of = keys // width
    return {"indices": (keys % width).astype(np.int32), "counts": counts.astype(np.int32),
            "rule_of": rule_of.astype(np.int32),
            "offsets": np.searchsorted(rule_of, np.arange(rules + 1, dtype=np.int64)).astype(np.int64)}


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
    for all rules at once (``RuleSets.scored``, ``_step1_order``); its second step (``compare_token_sets``
    on multisets for the ``top * 10`` first) and ``filter_dupes`` are ScanCode's own functions. An
    index without rule sets gets ScanCode's function itself."""
    from licensedcode import match_set as ms

    rule_sets = _RULE_SETS.get(id(idx))
    if rule_sets is None:
        return _ORIGINAL(query_run, idx, matchable_rids, top, high_resemblance, high_resemblance_threshold,
                         _use_bigrams)
    qset, qmset = ms.build_set_and_mset(query_run.matchable_tokens(), _use_bigrams=_use_bigrams)
    len_legalese, rules = idx.len_legalese, idx.rules_by_rid

    def wanted(scores: Any) -> bool:
        return not high_resemblance or (scores[0].is_highly_resemblant and scores[1].is_highly_resemblant)

    present = rule_sets.present(qset)
    rids, matched, resemblance, containment = rule_sets.scored(present, len(qset))
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
    rids = rids.tolist()

    step2 = []
    high_filter = partial(ms.high_multiset_subset, _use_bigrams=_use_bigrams)
    for i in order[: top * 10].tolist():
        rid = rids[i]
        rule = rules[rid]
        # the rule's set and multiset from the rule sets' arrays, not from the index's tables (a lean
        # index computes those only when asked): the same values
        high_set_intersection = rule_sets.high_shared(rid, present)
        scores, _ = ms.compare_token_sets(
            qset=qmset, iset=rule_sets.multiset(rid), intersector=ms.multisets_intersector,
            counter=ms.multiset_counter, high_intersection_filter=high_filter, len_legalese=len_legalese,
            unique=False, rule=rule, filter_non_matching=not _use_bigrams,
            high_resemblance_threshold=high_resemblance_threshold)
        if scores and wanted(scores):
            step2.append((scores, rid, rule, high_set_intersection))  # step one's set intersection, as ScanCode
    if not step2:
        return step2
    return sorted(ms.filter_dupes(step2), reverse=True)[:top]


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
