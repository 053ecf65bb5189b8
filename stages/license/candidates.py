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
from functools import partial
from typing import Any

import numpy as np

_LOCK = threading.Lock()
_RULE_SETS: dict[int, RuleSets] = {}  # id(index) → its rule sets (one index per process, while loaded)
_ORIGINAL: Any = None


class RuleSets:
    """Every rule's token-id set of one ScanCode index, as a CSR array, and each rule's minimums."""

    def __init__(self, index: Any) -> None:
        sets = index.sets_by_rid
        lengths = np.fromiter((len(s) if s is not None else 0 for s in sets), dtype=np.int64, count=len(sets))
        self.rules = len(sets)
        self.indices = np.fromiter((tid for s in sets if s is not None for tid in s), dtype=np.int64,
                                   count=int(lengths.sum()))
        self.rule_of = np.repeat(np.arange(self.rules, dtype=np.int64), lengths)
        self.high = self.indices < index.len_legalese
        rules = index.rules_by_rid
        self.min_matched = np.array([r.get_min_matched_length(True) for r in rules], dtype=np.int64)
        self.min_high = np.array([r.get_min_high_matched_length(True) for r in rules], dtype=np.int64)
        self.length = np.array([r.get_length(True) for r in rules], dtype=np.float64)
        self.min_containment = np.array([r._minimum_containment or 0.0 for r in rules], dtype=np.float64)
        self.vocabulary = int(self.indices.max()) + 1 if len(self.indices) else 0

    def scored(self, token_ids: Any, query_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The rules that pass ``compare_token_sets``'s tests on token *sets* against the query set
        ``token_ids`` (of ``query_length`` tokens), in increasing rule id: their ids, matched lengths,
        resemblances and containments, each computed as ScanCode computes it (integer counts, then one
        IEEE division each, which numpy and Python round alike)."""
        query = np.fromiter(token_ids, dtype=np.int64)
        query = query[(query >= 0) & (query < self.vocabulary)]
        present = np.zeros(self.vocabulary, dtype=bool)
        present[query] = True
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
    len_legalese, sets_by_rid, rules = idx.len_legalese, idx.sets_by_rid, idx.rules_by_rid

    def wanted(scores: Any) -> bool:
        return not high_resemblance or (scores[0].is_highly_resemblant and scores[1].is_highly_resemblant)

    rids, matched, resemblance, containment = rule_sets.scored(qset, len(qset))
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
        high_set_intersection = ms.high_tids_set_subset(ms.tids_sets_intersector(qset, sets_by_rid[rid]), len_legalese)
        scores, _ = ms.compare_token_sets(
            qset=qmset, iset=idx.msets_by_rid[rid], intersector=ms.multisets_intersector, counter=ms.multiset_counter,
            high_intersection_filter=high_filter, len_legalese=len_legalese, unique=False, rule=rule,
            filter_non_matching=not _use_bigrams, high_resemblance_threshold=high_resemblance_threshold)
        if scores and wanted(scores):
            step2.append((scores, rid, rule, high_set_intersection))  # step one's set intersection, as ScanCode
    if not step2:
        return step2
    return sorted(ms.filter_dupes(step2), reverse=True)[:top]


def install(index: Any) -> None:
    """Build ``index``'s rule sets and route ScanCode's candidate step through ``compute_candidates``."""
    global _ORIGINAL
    from licensedcode import match_set

    rule_sets = RuleSets(index)
    with _LOCK:
        if _ORIGINAL is None:
            _ORIGINAL = match_set.compute_candidates
            match_set.compute_candidates = compute_candidates
        _RULE_SETS.clear()  # one index per process: a reloaded one replaces the last
        _RULE_SETS[id(index)] = rule_sets


def forget() -> None:
    """Drop the rule sets (with the index they describe); ScanCode's function stays wrapped, which
    for an index without rule sets is ScanCode's own."""
    with _LOCK:
        _RULE_SETS.clear()
