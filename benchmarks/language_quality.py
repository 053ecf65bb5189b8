"""Quality of the language stage on real files from this machine, labelled by their ecosystem.

    python -m benchmarks.language_quality [--per-language 200] [--seed 7]

A file's label comes from where it lives, not from enry: the Python standard library is Python,
/usr/include's C library headers are C, libstdc++'s headers are C++, the JDK's src.zip is Java,
/usr/share/perl is Perl, npm's node_modules is JavaScript, Vim's runtime is Vim Script, shell
scripts in /usr/bin are Shell (by their ``#!/bin/sh`` or ``bash`` line), man pages are Roff
Manpage, and so on (``SOURCES`` below). Up to ``--per-language`` files per label, seeded.

Each file is labelled three times by the language stage (nothing dropped: ``keep_unknown``, no
type excluded), with guesslang off and on:

1. **as named**: the file under its real name;
2. **enry undecided**: the files of 1. that enry alone cannot decide (no rule matched, or several
   candidates the heuristics could not separate, where go-enry's classifier picks one);
3. **extension stripped**: the same files named by their stem (``os.py`` → ``os``): the content path
   (shebang, modeline, guesslang), as for the extensionless files of a repository.

Then guesslang's threshold: on the files of 3. that reach it, accuracy and coverage at several
thresholds. Prints Markdown for docs/language.md. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import random
import sys
import sysconfig
import time
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pyarrow as pa

from schemas import DECODED_SCHEMA
from stages.base import binary_array
from stages.language import GUESSLANG_BYTES, Language, LanguageConfig, detect, load_guesslang

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SITE = Path(sysconfig.get_paths()["purelib"])
#: C++ in /usr/include: libstdc++, LLVM, ICU's C++ API, Node (V8), ncurses' and GnuTLS's C++ bindings
CXX_FOLDERS = {"c++", "llvm-14", "unicode", "node"}
CXX_HEADERS = {"cursesapp.h", "cursesf.h", "cursesm.h", "cursesp.h", "cursesw.h", "cursslk.h", "etip.h", "gnutlsxx.h"}
MAX_BYTES = 1_000_000

File = tuple[str, bytes]  # (path inside its tree, content)


def _files(root: Path, pattern: str, keep: Callable[[Path], bool] = lambda p: True) -> Iterator[File]:
    if not root.is_dir():
        return
    for path in sorted(root.rglob(pattern)):
        if path.is_file() and not path.is_symlink() and keep(path):
            yield str(path.relative_to(root)), path.read_bytes()


def _gz(root: Path, pattern: str) -> Iterator[File]:
    for path in sorted(root.glob(pattern)):
        if path.is_file() and not path.is_symlink():
            yield path.name[: -len(".gz")], gzip.decompress(path.read_bytes())


def _scripts(interpreters: tuple[str, ...]) -> Iterator[File]:
    """Executables in the bin folders whose ``#!`` line names one of ``interpreters``."""
    for folder in (Path("/usr/bin"), Path("/usr/sbin"), Path("/usr/local/bin")):
        for path in sorted(folder.glob("*")) if folder.is_dir() else []:
            if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_BYTES:
                continue
            data = path.read_bytes()
            words = data.split(b"\n", 1)[0].split()
            if data.startswith(b"#!") and words:
                program = words[-1] if words[0].endswith(b"env") else words[0]
                if program.rsplit(b"/", 1)[-1].decode("latin-1") in interpreters:
                    yield path.name, data


def _jdk() -> Iterator[File]:
    for src in sorted(Path("/usr/lib/jvm").glob("*/lib/src.zip")) + sorted(Path("/usr/lib/jvm").glob("*/src.zip")):
        with zipfile.ZipFile(src) as archive:
            for name in sorted(archive.namelist()):
                if name.endswith(".java"):
                    yield name, archive.read(name)
        return  # one JDK is enough


def _c_header(path: Path) -> bool:
    return not CXX_FOLDERS.intersection(path.parts) and path.name not in CXX_HEADERS


#: label → where its files come from (each a generator of (path, bytes)).
SOURCES: dict[str, Callable[[], Iterator[File]]] = {
    "Python": lambda: _files(STDLIB, "*.py", lambda p: "site-packages" not in p.parts),
    "C": lambda: _files(Path("/usr/include"), "*.h", _c_header),
    "C++": lambda: (
        f
        for root in (Path("/usr/include/c++"), Path("/usr/include/llvm-14"))
        for f in _files(root, "*", lambda p: p.suffix in ("", ".h", ".tcc", ".def", ".inc"))
    ),
    "Cython": lambda: (f for pattern in ("*.pyx", "*.pxd") for f in _files(SITE, pattern)),
    "Perl": lambda: (f for pattern in ("*.pm", "*.pl") for f in _files(Path("/usr/share/perl"), pattern)),
    "Java": _jdk,
    "JavaScript": lambda: _files(Path("/usr/lib/node_modules"), "*.js"),
    "Vim Script": lambda: _files(Path("/usr/share/vim"), "*.vim"),
    "Shell": lambda: _scripts(("sh", "bash", "dash")),
    "Roff Manpage": lambda: _gz(Path("/usr/share/man/man1"), "*.1.gz"),
    "CMake": lambda: _files(Path("/usr/share"), "*.cmake"),
    "Makefile": lambda: (f for root in (STDLIB, SITE, Path("/usr/share")) for f in _files(root, "Makefile")),
    "Fortran Free Form": lambda: _files(SITE, "*.f90"),
    "Tcl": lambda: (f for root in (Path("/usr/share"), Path("/usr/lib")) for f in _files(root, "*.tcl")),
    "PHP": lambda: _files(Path("/usr/lib/google-cloud-sdk"), "*.php"),
    "TeX": lambda: (f for root in (SITE, Path("/usr/share")) for f in _files(root, "*.tex")),
    "Markdown": lambda: _files(SITE, "*.md"),
    "JSON": lambda: _files(SITE, "*.json"),
    "YAML": lambda: _files(Path("/usr/lib/google-cloud-sdk"), "*.yaml"),
    # prose without an extension (license texts, Debian copyright files): what guesslang must not call code
    # (named as in a source tree: debian/copyright, and license texts at the top)
    "Text": lambda: (
        ("debian/copyright" if path.endswith("/copyright") else path.rpartition("/")[2], data)
        for pattern in ("common-licenses/*", "doc/*/copyright")
        for path, data in _files(Path("/usr/share"), pattern)
    ),
}


def labelled_files(per_language: int, seed: int) -> list[tuple[str, str, bytes]]:
    """(label, path, content): up to ``per_language`` UTF-8, non-empty files per label, seeded."""
    out = []
    for label, source in SOURCES.items():
        files = [(p, d) for p, d in source() if 0 < len(d) <= MAX_BYTES and b"\x00" not in d[:8192]]
        random.Random(f"{seed}:{label}").shuffle(files)
        taken = 0
        for path, data in files:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            out.append((label, path, data))
            taken += 1
            if taken == per_language:
                break
    return out


def stem_path(path: str) -> str:
    """``path`` with its base name cut at the first dot (``a/os.py`` → ``a/os``); dot files keep their name."""
    folder, _, name = path.rpartition("/")
    stem = name.split(".", 1)[0] or name
    return f"{folder}/{stem}" if folder else stem


def decoded_table(paths: list[str], contents: list[bytes]) -> pa.Table:
    """DECODED_SCHEMA rows for files ``paths`` (ids made up; only path and content matter here)."""
    n = len(paths)
    columns = {
        "blob_id": [hashlib.sha1(d).hexdigest() for d in contents],
        "content_id": [f"{i:040x}" for i in range(n)],
        "sha256": [hashlib.sha256(d).hexdigest() for d in contents],
        "origin_url": ["https://example.org/bench"] * n,
        "repo_name": ["example.org/bench"] * n,
        "snapshot_id": ["0" * 40] * n,
        "revision_id": ["0" * 40] * n,
        "directory_id": ["0" * 40] * n,
        "branch_name": ["HEAD"] * n,
        "path": ["/" + p for p in paths],
        "path_is_utf8": [True] * n,
        "extension": [p.rpartition("/")[2].rpartition(".")[2] if "." in p.rpartition("/")[2] else "" for p in paths],
        "length_bytes": [len(d) for d in contents],
        "src_encoding": ["UTF-8"] * n,
    }
    arrays = [
        binary_array(list(contents), pa.large_string())
        if f.name == "content"
        else pa.array(columns.get(f.name, [None] * n), f.type)
        for f in DECODED_SCHEMA
    ]
    return pa.Table.from_arrays(arrays, schema=DECODED_SCHEMA)


def label_all(paths: list[str], contents: list[bytes], guesslang: bool) -> tuple[list[str], list[str], float]:
    """(language, language_source) per file from the language stage, nothing dropped; and CPU seconds."""
    stage = Language(LanguageConfig(guesslang=guesslang, keep_unknown=True, exclude_types=()))
    model_dir = stage.setup()
    start = time.process_time()
    kept = stage.process(decoded_table(paths, contents), model_dir).kept
    seconds = time.process_time() - start
    return kept["language"].to_pylist(), kept["language_source"].to_pylist(), seconds


def accuracy(rows: list[int], labels: list[str], predicted: list[str]) -> str:
    if not rows:
        return "–"
    right = sum(labels[i] == predicted[i] for i in rows)
    return f"{right / len(rows):.1%}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-language", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    files = labelled_files(args.per_language, args.seed)
    labels = [label for label, _, _ in files]
    named = [path for _, path, _ in files]
    stripped = [stem_path(path) for path in named]
    contents = [data for _, _, data in files]
    runs = {}
    for variant, paths in (("named", named), ("stripped", stripped)):
        for guesslang in (False, True):
            runs[variant, guesslang] = label_all(paths, contents, guesslang)
    undecided = [i for i, s in enumerate(runs["named", False][1]) if s in ("none", "classifier")]
    undecided_stripped = [i for i, s in enumerate(runs["stripped", False][1]) if s in ("none", "classifier")]

    by_label: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    print(f"`python -m benchmarks.language_quality --per-language {args.per_language} --seed {args.seed}`: "
          f"{len(files)} files, {sum(map(len, contents)) / 1e6:.1f} MB\n")
    print("| label | files | as named: enry | + guesslang | enry undecided (files: enry → + guesslang) "
          "| stem only: enry | + guesslang |")
    print("|---|---:|---:|---:|---|---:|---:|")
    groups = sorted(by_label.items()) + [("**all**", list(range(len(files))))]
    for label, rows in groups:
        rows_undecided = [i for i in rows if i in set(undecided)]
        cells = [
            label,
            str(len(rows)),
            accuracy(rows, labels, runs["named", False][0]),
            accuracy(rows, labels, runs["named", True][0]),
            f"{len(rows_undecided)}: {accuracy(rows_undecided, labels, runs['named', False][0])} → "
            f"{accuracy(rows_undecided, labels, runs['named', True][0])}" if rows_undecided else "0",
            accuracy(rows, labels, runs["stripped", False][0]),
            accuracy(rows, labels, runs["stripped", True][0]),
        ]
        print("| " + " | ".join(cells) + " |")
    print()
    keeps = LanguageConfig().keeps
    prose = [i for i, label in enumerate(labels) if not keeps(label)]
    if prose:
        cells = []
        for variant in ("named", "stripped"):
            for guesslang in (False, True):
                predicted = runs[variant, guesslang][0]
                kept = sum(predicted[i] != "unknown" and keeps(predicted[i]) for i in prose)
                cells.append(f"{variant}{', + guesslang' if guesslang else ''} {kept / len(prose):.1%}")
        print(f"Prose ({len(prose)} files: Text, Markdown) kept as code by the default configuration: "
              + "; ".join(cells) + ".")
    print(f"Enry undecided, stem only: {len(undecided_stripped)} files; enry "
          f"{accuracy(undecided_stripped, labels, runs['stripped', False][0])}, + guesslang "
          f"{accuracy(undecided_stripped, labels, runs['stripped', True][0])}.")
    sources = Counter(runs["stripped", True][1])
    print("Deciding rule, stem only, with guesslang: " + ", ".join(f"{k} {v}" for k, v in sources.most_common()) + ".")
    for variant in ("named", "stripped"):
        seconds = runs[variant, True][2]
        print(f"CPU time ({variant}, guesslang on): {seconds:.2f} s for {len(files)} files.")
    predicted = runs["stripped", True][0]
    mistakes = Counter((labels[i], predicted[i]) for i in range(len(files)) if labels[i] != predicted[i])
    print("Most frequent mistakes, stem only, with guesslang: "
          + ", ".join(f"{a} → {b} ({n})" for (a, b), n in mistakes.most_common(12)) + ".")
    print()
    threshold_sweep(labels, stripped, contents)
    return 0


def threshold_sweep(labels: list[str], paths: list[str], contents: list[bytes]) -> None:
    """What guesslang's threshold buys, on the stem-only files that reach the model.

    Per threshold: for files in a language the model knows, the share it decides and how many of
    those it gets right; for files in other languages, the share it mislabels; for prose, the
    share it gives a language the default configuration keeps (``Text`` and ``Markdown`` are prose).
    The stage also keeps documentation paths from the model; this sweep does not.
    """
    model = load_guesslang()
    keeps = LanguageConfig().keeps
    rows, answers = [], []
    for i, (path, data) in enumerate(zip(paths, contents, strict=True)):
        language, _, candidates = detect(path.rpartition("/")[2], data)
        if language is None and data.strip():
            rows.append(i)
            answers.append(candidates)
    scores = model.scores([contents[i][:GUESSLANG_BYTES] for i in rows], 256)
    best = [model.best(s, c) for s, c in zip(scores, answers, strict=True)]
    known = {name for names in model.columns for name in names}
    prose = [k for k, i in enumerate(rows) if not LanguageConfig().keeps(labels[i])]
    inside = [k for k, i in enumerate(rows) if labels[i] in known and k not in set(prose)]
    outside = [k for k, i in enumerate(rows) if labels[i] not in known and k not in set(prose)]
    print(f"guesslang's threshold, on the {len(rows)} stem-only files that reach the model: {len(inside)} in "
          f"languages it knows, {len(outside)} in others "
          f"({', '.join(sorted({labels[rows[k]] for k in outside}))}), {len(prose)} prose.\n")
    print("| threshold | known languages: decided | accuracy | other languages: mislabelled "
          "| prose: labelled as kept code |")
    print("|---:|---:|---:|---:|---:|")
    for threshold in (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99):
        decided = [k for k in inside if best[k][1] >= threshold]
        right = sum(labels[rows[k]] == best[k][0] for k in decided)
        wrong_outside = [k for k in outside if best[k][1] >= threshold]
        kept_prose = [k for k in prose if best[k][1] >= threshold and keeps(best[k][0] or "unknown")]
        print(f"| {threshold:.2f} | {_share(decided, inside)} | {_share(range(right), decided)} "
              f"| {_share(wrong_outside, outside)} | {_share(kept_prose, prose)} |")


def _share(part: Sequence[object], whole: Sequence[object]) -> str:
    return f"{len(part) / len(whole):.1%}" if whole else "–"


if __name__ == "__main__":
    sys.exit(main())
