"""ScanCode with its candidate step from stages/license/candidates.py against ScanCode as shipped, on
real license files: the same detections? how much CPU each?

    python -m benchmarks.license_candidates [--limit 250] [--seed 3]

The files: the distinct license files found on this machine (``benchmarks.license_exact``: the
installed Python distributions, npm packages, Debian's common licenses and copyright files; none
written by this project) that the exact recogniser does not answer, i.e. the ones a build gives to
ScanCode; ``--limit`` of them in a seeded order. Each is detected twice by ScanCode's own
``detect_licenses`` (unknown-license matching on, as the stage runs it): once with ScanCode's
``compute_candidates`` and once with ours in its place. The detections are compared whole (license
expression, and each match's rule, score, span and matcher); the ground truth is ScanCode itself.

First, the index itself, each way in a fresh process: ScanCode's ``get_index()`` as shipped; the
stage's ``Scanner()`` on a machine without the lean copy of ScanCode's cache (it loads ScanCode's
cache, checks and writes the lean copy: once per machine); the stage's ``Scanner()`` with the lean
copy, as every later load runs; then ``release_index()`` as ``after_reduce`` runs it: CPU seconds,
peak and resident memory. The lean copy goes to a fresh temporary cache folder.

The detections compared: ScanCode as shipped (its full index, its candidate step) against the stage's
way (the lean index, the candidate step of stages/license/candidates.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

from benchmarks.license_exact import license_texts
from stages.license import candidates, exact

_LOAD = """
import gc, json, resource, time
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
start = time.process_time()
if {ours}:
    from stages.license.scancode import Scanner, release_index
    from pipeline.resources import _trim_heap
    from stages.license import lean
    had_copy = (lean.root() / lean.key() / "key.json").is_file()
    scanner = Scanner()
    assert had_copy == {with_copy} and (lean.root() / lean.key() / "key.json").is_file()
else:
    from licensedcode.cache import get_index
    index = get_index()
out = {{"cpu_s": time.process_time() - start, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
       "loaded_mb": rss()}}
if {ours}:
    del scanner
    release_index()
    gc.collect()
    _trim_heap()
    out["released_mb"] = rss()
print(json.dumps(out))
"""


def index_loads(cache_dir: str) -> None:
    """The index loaded each way in a fresh process (see the module's docstring)."""
    print("| index load, fresh process | CPU s | peak RSS MB | RSS loaded MB | RSS after release_index MB |")
    print("|---|---:|---:|---:|---:|")
    for name, ours, with_copy in (("ScanCode's get_index()", False, False),
                                  ("the stage's Scanner(), no lean copy yet (writes it)", True, False),
                                  ("the stage's Scanner(), lean copy", True, True)):
        done = subprocess.run([sys.executable, "-c", _LOAD.format(ours=ours, with_copy=with_copy)],
                              capture_output=True, text=True, check=True,
                              env={**os.environ, "PIPELINE_CACHE_DIR": cache_dir})
        r = json.loads(done.stdout.strip().splitlines()[-1])
        released = f"{r['released_mb']:.0f}" if "released_mb" in r else ""
        print(f"| {name} | {r['cpu_s']:.2f} | {r['peak_mb']:.0f} | {r['loaded_mb']:.0f} | {released} |")
    print()


def detections(index, text: str) -> list:
    from licensedcode.detection import detect_licenses

    return [(d.license_expression, [(m.rule.identifier, m.score(), m.qspan.start, m.qspan.end, m.matcher)
                                    for m in d.matches])
            for d in detect_licenses(index=index, query_string=text, unknown_licenses=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=250)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    import licensedcode.cache as scancode_cache
    from licensedcode import match_set

    from stages.license import lean

    with tempfile.TemporaryDirectory() as cache_dir:
        index_loads(cache_dir)
        os.environ["PIPELINE_CACHE_DIR"] = cache_dir
        loaded = lean.load()  # the copy the runs above wrote
    if loaded is None:
        raise SystemExit("the lean copy of ScanCode's cache was not written")
    texts = sorted((sha1, where, text) for sha1, (where, text) in license_texts().items())
    unknown = [t for t in texts if exact.recognize(t[2]) is None]
    random.Random(args.seed).shuffle(unknown)
    chosen = unknown[: args.limit]
    full = scancode_cache.load_cache_file(lean.scancode_cache_file())
    lean_cache, arrays = loaded
    started = time.process_time()
    candidates.install(lean_cache.index, arrays)
    setup = time.process_time() - started
    ours_fn, theirs_fn = match_set.compute_candidates, candidates._ORIGINAL
    ways = {"ScanCode's": (full, theirs_fn), "ours": (lean_cache, ours_fn)}
    cpu = {"ScanCode's": 0.0, "ours": 0.0}
    same, differ, size = 0, [], 0
    for _, where, text in chosen:
        size += len(text.encode())
        found = {}
        for name, (cache, fn) in ways.items():
            match_set.compute_candidates = fn
            scancode_cache._LICENSE_CACHE = cache  # the licensing ScanCode's functions use
            start = time.process_time()
            found[name] = detections(cache.index, text)
            cpu[name] += time.process_time() - start
        match_set.compute_candidates = ours_fn
        if found["ours"] == found["ScanCode's"]:
            same += 1
        else:
            differ.append(where)
    print(f"{len(texts)} distinct license files on this machine, {len(unknown)} not recognised exactly (a build "
          f"gives those to ScanCode); {len(chosen)} of them (seed {args.seed}), {size / 1e6:.2f} MB.\n")
    print("| ScanCode's detection | CPU s | per file (ms) |")
    print("|---|---:|---:|")
    labels = {"ScanCode's": "as shipped: full index, its candidate step",
              "ours": "the stage's: lean index, numpy candidate step"}
    for name, seconds in cpu.items():
        print(f"| {labels[name]} | {seconds:.1f} | {seconds / max(1, len(chosen)) * 1000:.0f} |")
    speedup = cpu["ScanCode's"] / max(cpu["ours"], 1e-9)
    print(f"\nSpeed-up: {speedup:.2f}x; the rule sets from the lean copy's arrays, once per index load: "
          f"{setup:.2f} CPU s.")
    print(f"Identical detections: {same} of {len(chosen)}" + (f"; differing: {', '.join(differ[:10])}" if differ
                                                              else ""))


if __name__ == "__main__":
    main()
