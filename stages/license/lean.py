"""ScanCode's license cache stored without the three per-rule tables it can recompute.

ScanCode's index holds, beside each rule's token ids (``tids_by_rid``), three tables computed from
them when the index is built: ``high_postings_by_rid`` (each legalese token's positions in the
rule), ``sets_by_rid`` and ``msets_by_rid`` (the rule's token set and multiset). Unpickled, they are
a large part of the index's memory: millions of small Python objects, made and freed on every load
(docs/performance.md, "ScanCode's candidate step and index", loads the index each way).
The stage needs only a few rules' values per query run (the candidates), so a lean copy of the
cache leaves them out:

- ``sets_by_rid`` and ``msets_by_rid``: the candidate step (``stages.license.candidates``) works on
  ``RuleSets``, numpy arrays of every rule's tokens and counts, stored here as ``.npy`` files (read
  memory-mapped: processes on one machine share the pages).
- ``high_postings_by_rid``: computed for a rule when ScanCode's sequence matching asks for it
  (``Derived``), exactly as ScanCode's ``LicenseIndex._add_rules`` computes it.
- The two Aho-Corasick automata are pickled on their own and loaded first, so that their transient
  copy (the automaton's pickled bytes) is not on top of the rest of the index.

**The same answers.** The lean copy is written from a loaded full cache only after every derived
value has been compared with the stored one, for every rule (``verify``); if one differs, no copy is
written and the stage keeps loading ScanCode's cache. The copy is keyed by ScanCode's version and
its cache file's size and modification time: a rebuilt ScanCode index (new version, additional
licenses) gets a new copy. tests/stages/test_license_lean.py compares detections through both.

**Where.** ``$PIPELINE_CACHE_DIR`` or ``$XDG_CACHE_HOME/pipeline`` or ``~/.cache/pipeline``, under
``scancode-lean/<key>``: a per-machine software cache, like ScanCode's own, not part of any dataset.
Written once per machine (the first load of the index writes it: a few seconds more, once);
written to a temporary folder and renamed, so concurrent writers never leave a half-written copy.
Writing a copy removes the copies of earlier states of the same ScanCode cache file.
Where it cannot be written, the stage says so in one log line and uses ScanCode's cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import shutil
import tempfile
from array import array
from collections import defaultdict
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FORMAT = 2
#: The per-rule tables left out of the lean copy (computed from ``tids_by_rid``).
DERIVED = ("high_postings_by_rid", "sets_by_rid", "msets_by_rid")
#: Pickled on their own, loaded first.
AUTOMATA = ("rules_automaton", "unknown_automaton")
#: The ``RuleSets`` arrays stored as .npy files.
ARRAYS = ("indices", "counts", "rule_of", "offsets", "by_token", "token_offsets")


def scancode_cache_file() -> Path:
    """ScanCode's own cache file (``LicenseCache`` pickled; built by ScanCode on first use)."""
    from licensedcode.cache import LICENSE_INDEX_DIR, LICENSE_INDEX_FILENAME
    from scancode_config import licensedcode_cache_dir

    return Path(licensedcode_cache_dir) / LICENSE_INDEX_DIR / LICENSE_INDEX_FILENAME


def root() -> Path:
    """The folder of the lean copies (see the module's docstring)."""
    if base := os.environ.get("PIPELINE_CACHE_DIR"):
        return Path(base) / "scancode-lean"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "pipeline" / "scancode-lean"


def key() -> str | None:
    """The lean copy's name for the installed ScanCode cache, or None when there is no such file yet."""
    source = scancode_cache_file()
    try:
        stat = source.stat()
    except OSError:
        return None
    described = json.dumps({"format": FORMAT, "scancode": metadata.version("scancode-toolkit"), "size": stat.st_size,
                            "mtime_ns": stat.st_mtime_ns, "path": str(source)}, sort_keys=True)
    return hashlib.sha256(described.encode()).hexdigest()[:20]


def derive(kind: str, tids: array, len_legalese: int) -> Any:
    """Rule table ``kind``'s value for a rule of token ids ``tids``, computed as ScanCode's index
    computes it when it is built (same values, same key order)."""
    if kind == "high_postings_by_rid":
        postings: defaultdict[int, list[int]] = defaultdict(list)
        for pos, tid in enumerate(tids):
            if tid < len_legalese:
                postings[tid].append(pos)
        return {tid: array("h", positions) for tid, positions in postings.items()}
    from licensedcode.match_set import build_set_and_tids_mset

    tids_set, mset = build_set_and_tids_mset(tids)
    return tids_set if kind == "sets_by_rid" else mset


class Derived(Sequence):
    """A per-rule table of ScanCode's index, each value computed when asked (``derive``); None for the
    rules ScanCode gives none (``present``). Holds nothing it computes."""

    __slots__ = ("kind", "tids", "present", "len_legalese")

    def __init__(self, kind: str, tids: list[array], present: np.ndarray, len_legalese: int) -> None:
        self.kind, self.tids, self.present, self.len_legalese = kind, tids, present, len_legalese

    def __len__(self) -> int:
        return len(self.tids)

    def __getitem__(self, rid: Any) -> Any:
        if isinstance(rid, slice):
            return [self[i] for i in range(*rid.indices(len(self)))]
        if not self.present[rid]:
            return None
        return derive(self.kind, self.tids[rid], self.len_legalese)


def verify(index: Any, arrays: dict[str, np.ndarray] | None = None) -> str | None:
    """None when every value of the three tables of a loaded full ``index`` equals ``derive``'s, and
    every rule's set and multiset equals its entries in the ``RuleSets`` ``arrays`` (when given); else
    the first difference found."""
    tids, len_legalese = index.tids_by_rid, index.len_legalese
    if arrays is not None:
        indices, counts, offsets = arrays["indices"], arrays["counts"], arrays["offsets"]
        if len(offsets) != len(tids) + 1:
            return f"rule sets: {len(offsets) - 1} rules, tids_by_rid {len(tids)}"
        for rid, mset in enumerate(index.msets_by_rid):
            start, end = int(offsets[rid]), int(offsets[rid + 1])
            mine = dict(zip(indices[start:end].tolist(), counts[start:end].tolist(), strict=True))
            theirs = _counted(mset or {})
            if (mset is None and mine) or (mset is not None and (mine != theirs or list(mine) != sorted(theirs))):
                return f"rule sets: rule {rid} differs"
    for kind in DERIVED:
        stored = getattr(index, kind)
        if len(stored) != len(tids):
            return f"{kind}: {len(stored)} rules, tids_by_rid {len(tids)}"
        for rid, value in enumerate(stored):
            if value is None:
                continue
            mine = derive(kind, tids[rid], len_legalese)
            if kind == "msets_by_rid":
                value = _counted(value)
            if mine != value or (isinstance(value, dict) and list(mine) != list(value)):
                return f"{kind}[{rid}] differs"
    return None


def _counted(mset: dict[int, int]) -> dict[int, int]:
    # ScanCode's multiset intersector reads a missing token of a stored multiset (a defaultdict) as 0
    # and thereby adds it: an index that has matched holds such zero counts, which count for nothing
    return {tid: count for tid, count in mset.items() if count}


def presence(index: Any) -> dict[str, np.ndarray]:
    """Which rules have a value in each table, as boolean arrays."""
    return {kind: np.fromiter((v is not None for v in getattr(index, kind)), dtype=bool, count=len(index.tids_by_rid))
            for kind in DERIVED}


def save(cache: Any, arrays: dict[str, np.ndarray]) -> Path | None:
    """Write the lean copy of the loaded full ScanCode ``cache`` (``arrays``: its ``RuleSets``'
    arrays); its folder, or None (logged in one line) when it could not be written or a derived value
    differs. Never raises."""
    name = key()
    if name is None:
        return None
    index = cache.index
    problem = verify(index, arrays)
    if problem is not None:
        log.warning("ScanCode's index cannot be stored lean (%s): the full index is used", problem)
        return None
    target = root() / name
    present = presence(index)
    kept = {name_: getattr(index, name_) for name_ in (*AUTOMATA, *DERIVED)}
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
        try:
            for automaton in AUTOMATA:
                with open(temporary / f"{automaton}.pkl", "wb") as f:
                    pickle.dump(kept[automaton], f, protocol=pickle.HIGHEST_PROTOCOL)
            for attribute in (*AUTOMATA, *DERIVED):
                setattr(index, attribute, None)
            try:
                with open(temporary / "cache.pkl", "wb") as f:
                    pickle.dump(cache, f, protocol=pickle.HIGHEST_PROTOCOL)
            finally:
                for attribute, value in kept.items():
                    setattr(index, attribute, value)
            for kind, flags in present.items():
                np.save(temporary / f"present-{kind}.npy", flags)
            for array_name in ARRAYS:
                np.save(temporary / f"{array_name}.npy", arrays[array_name])
            (temporary / "key.json").write_text(json.dumps({"key": name, "format": FORMAT,
                                                            "source": str(scancode_cache_file())}))
            try:
                temporary.rename(target)  # atomic; another writer may have won: theirs is the same
            except OSError:
                if not (target / "key.json").is_file():
                    raise
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
    except OSError as e:
        log.warning("ScanCode's lean index cannot be written to %s (%s): the full index is used",
                    target.parent, type(e).__name__)
        return None
    _remove_stale(target)
    return target


def _remove_stale(current: Path) -> None:
    """Remove the copies made for earlier states of the same ScanCode cache file (an upgrade or a
    re-index leaves one of ~0.4 GB behind): no process can ask for them any more, as the key is the
    file's present state."""
    source = str(scancode_cache_file())
    for folder in current.parent.iterdir():
        if folder == current or folder.name.startswith("."):
            continue
        try:
            described = json.loads((folder / "key.json").read_text())
        except (OSError, ValueError):
            continue
        if described.get("source") == source:
            shutil.rmtree(folder, ignore_errors=True)


def load() -> tuple[Any, dict[str, np.ndarray]] | None:
    """The lean copy for the installed ScanCode cache, as a ``LicenseCache`` whose index has the three
    tables as ``Derived``, and the ``RuleSets`` arrays (memory-mapped); None when there is none, or it
    is unreadable (then it is ignored, and rewritten by the next full load)."""
    name = key()
    if name is None:
        return None
    folder = root() / name
    if not (folder / "key.json").is_file():
        return None
    try:
        automata = {}
        for automaton in AUTOMATA:  # first: their pickled bytes are briefly in memory beside them
            with open(folder / f"{automaton}.pkl", "rb") as f:
                automata[automaton] = pickle.load(f)
        with open(folder / "cache.pkl", "rb") as f:
            cache = pickle.load(f)
        present = {kind: np.load(folder / f"present-{kind}.npy") for kind in DERIVED}
        arrays = {a: np.load(folder / f"{a}.npy", mmap_mode="r") for a in ARRAYS}
    except Exception as e:  # noqa: BLE001 - a damaged copy is ignored, never fatal
        log.warning("ScanCode's lean index in %s is unreadable (%s): the full index is used", folder,
                    type(e).__name__)
        return None
    index = cache.index
    for automaton, value in automata.items():
        setattr(index, automaton, value)
    for kind in DERIVED:
        setattr(index, kind, Derived(kind, index.tids_by_rid, present[kind], index.len_legalese))
    return cache, arrays


def main() -> int:
    """``python -m stages.license.lean``: write this machine's lean copy now (for a worker image, or
    before a cluster's first run), from ScanCode's cache; prints its folder. Exit 1, with one line,
    when it cannot be written."""
    import gc
    import sys

    import licensedcode.cache as scancode_cache

    from stages.license.candidates import RuleSets

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    name = key()
    folder = root() / name if name else None
    if folder is not None and (folder / "key.json").is_file():
        print(folder)
        return 0
    gc.disable()  # millions of objects unpickled: see stages/license/scancode.py
    cache = scancode_cache.get_cache()  # builds ScanCode's own cache first if it has none
    written = save(cache, RuleSets(cache.index).arrays())
    if written is None:
        print("error: ScanCode's lean index was not written (see the line above)", file=sys.stderr)
        return 1
    print(written)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
