"""How many real license files the exact recogniser answers (stages/license/exact.py), and whether
its answers are ScanCode's on the same files.

    python -m benchmarks.license_exact

The files: every distinct license file (by ``is_license_file``) of the Python distributions
installed here, of the npm packages under /usr/lib/node_modules, Debian's
/usr/share/common-licenses and /usr/share/doc/*/copyright. None was written by this project. The
ground truth for each file the recogniser answers is ScanCode run on that same file (the
recogniser's table holds ScanCode's answers on ScanCode's own reference texts, never on these files).
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

from benchmarks.license_speed import npm_repositories, python_repositories
from stages.license import exact, is_license_file
from stages.license.policy import LicensePolicy


def license_texts() -> dict[str, tuple[str, str]]:
    """sha1 → (where, text) of every distinct license file found on this machine."""
    found: dict[str, tuple[str, str]] = {}
    paths: list[tuple[str, Path]] = []
    for origin, files in python_repositories() + npm_repositories():
        paths += [(f"{origin}{p}", f) for p, f in files if is_license_file(p)]
    common = Path("/usr/share/common-licenses")
    if common.is_dir():
        paths += [(str(p), p) for p in sorted(common.iterdir()) if p.is_file()]
    paths += [(str(p), p) for p in sorted(Path("/usr/share/doc").glob("*/copyright"))]
    for where, path in paths:
        try:
            data = path.read_bytes()
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        found.setdefault(hashlib.sha1(data).hexdigest(), (where, text))
    return found


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    from licensedcode.cache import get_index
    from licensedcode.detection import detect_licenses

    texts = license_texts()
    start = time.process_time()
    answers = {sha1: exact.recognize(text) for sha1, (_, text) in texts.items()}
    exact_cpu = time.process_time() - start
    hits = {sha1: a for sha1, a in answers.items() if a is not None}
    start = time.process_time()
    index = get_index()
    load_cpu = time.process_time() - start
    policy = LicensePolicy()
    agree = type_agree = 0
    scancode_cpu = 0.0
    for sha1, answer in sorted(hits.items()):
        where, text = texts[sha1]
        start = time.process_time()
        detections = list(detect_licenses(index=index, query_string=text, unknown_licenses=True))
        scancode_cpu += time.process_time() - start
        truth = tuple(sorted({d.license_expression_spdx for d in detections if d.license_expression_spdx}))
        agree += answer == truth
        type_agree += policy.license_type(answer) == policy.license_type(truth)
        if answer != truth:
            print(f"differs: {where}: exact {answer}, ScanCode {truth}")
    by_answer: dict[tuple[str, ...], int] = {}
    for answer in hits.values():
        by_answer[answer] = by_answer.get(answer, 0) + 1
    print("\n| | value |\n|---|---|")
    print(f"| distinct license files | {len(texts)} |")
    print(f"| recognised exactly | {len(hits)} ({len(hits) / max(len(texts), 1):.1%}) |")
    print(f"| same expressions as ScanCode on the same file | {agree} of {len(hits)} |")
    print(f"| same license type as ScanCode | {type_agree} of {len(hits)} |")
    print(f"| CPU: exact recogniser, all {len(texts)} files | {exact_cpu:.3f} s |")
    print(f"| CPU: ScanCode on the {len(hits)} recognised files (index load excluded) | {scancode_cpu:.1f} s |")
    print(f"| CPU: ScanCode index load | {load_cpu:.1f} s |")
    ranked = sorted(by_answer.items(), key=lambda x: -x[1])
    print("\nrecognised as:", ", ".join(f"{' '.join(a)} {n}" for a, n in ranked))


if __name__ == "__main__":
    main()
