"""License: what licenses apply to each file, and whether the file may go into the dataset.

Two steps per input partition (one repository's files are all in one partition, but a partition is
processed in batches, and a batch need not hold the repository's license files):

1. ``License.prepare(license_files)``, once per partition, before its batches: ScanCode detects the
   licenses of every distinct license-file blob (memoised by ``blob_id`` + ScanCode version in a
   persistent ``LicenseCache``), and each origin gets a map directory → SPDX expressions found in
   the license files of that directory.
2. ``License.process(batch)``: a file's licenses are those of the license files in its directory
   and in every ancestor directory, plus the ``SPDX-License-Identifier`` expressions in the head of
   the file itself (a regex; no ScanCode per file). ``license_type`` is ``permissive`` when every
   expression that applies is permissive (``A OR B``: either side; ``A AND B``: both; ``A WITH
   exception``: as ``A``), ``no_license`` when none applies, else ``non_permissive``.

Permissive: ScanCode's categories "Permissive" and "Public Domain", plus ``allow``, minus ``deny``.
Everything else is not: copyleft, source-available, proprietary, "Unstated License" (ScanCode's
unknown-license keys), custom ``LicenseRef-*`` ids. Unreadable license files (binary, too large,
missing), ScanCode failures and invalid SPDX expressions become ``LicenseRef-scancode-unknown`` or
``LicenseRef-scancode-unknown-spdx``, so the files they cover are treated as non-permissive: the
stage never calls a file permissive on evidence it could not read. An empty license file states no
license and adds nothing. See docs/license.md.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.errors import PipelineError
from schemas import CLASSIFIED_SCHEMA
from stages.base import Reason, StageResult, split

log = logging.getLogger(__name__)

PERMISSIVE, NO_LICENSE, NON_PERMISSIVE = "permissive", "no_license", "non_permissive"
#: ScanCode license categories that count as permissive (The Stack v2's choice).
PERMISSIVE_CATEGORIES = frozenset({"Permissive", "Public Domain"})
#: What a license file that could not be read or scanned contributes: ScanCode's own "unknown".
UNKNOWN = "LicenseRef-scancode-unknown"
#: What an SPDX-License-Identifier line that is not a valid SPDX expression contributes.
UNKNOWN_SPDX = "LicenseRef-scancode-unknown-spdx"
#: Columns ``License.prepare`` reads (others are ignored).
LICENSE_FILE_COLUMNS = ("origin_url", "path", "blob_id", "content", "problem")
SCANCODE_VERSION = metadata.version("scancode-toolkit")
#: ScanCode's unknown-license matching (license-like text no rule explains → ``unknown``).
DETECT_UNKNOWN_TEXT = True

# ---------------------------------------------------------------- which files are license files
# One pattern for Python's re and for RE2 (pyarrow), so the vectorised mask and is_license_file agree.
_WORD = r"(?:un)?licen[cs]es?|licensing|copying|copyrights?|notices?|legal"
_TOKEN = r"[a-z0-9+]{1,20}"
_NAME = rf"(?:{_TOKEN}[-_.]){{0,3}}(?:{_WORD})(?:v?[0-9][0-9.]*)?(?:[-_.]{_TOKEN}){{0,4}}"
#: LICENSE, COPYING.LESSER, MIT-LICENSE, LICENSE-2.0.txt, ...; or any file under a REUSE-style LICENSES/ folder.
LICENSE_FILE_PATTERN = rf"(?:^|/)(?:{_NAME}|licen[cs]es?/(?:[^/]+/)?[^/]+)$"
_CODE_EXTENSIONS = (
    "py pyc pyo pyi go js mjs cjs ts tsx jsx java kt kts scala groovy c h cc cpp cxx hpp hh hxx cs fs vb rs rb php "
    "swift m mm pl pm lua r jl dart ex exs erl hrl hs ml mli clj cljs el lisp scm sh bash zsh fish ps1 psm1 bat cmd "
    "json jsonc yaml yml xml toml ini cfg conf properties gradle sbt cmake mk make sql css scss sass less vue svelte "
    "erb ejs hbs mustache twig jinja j2 tmpl tpl template proto graphql lock csv tsv ipynb png jpg jpeg gif svg ico "
    "webp bmp pdf doc docx odt xls xlsx zip gz tgz bz2 xz zst tar jar war class o a so dylib dll exe bin wasm snap "
    "bak orig swp in am ac sig asc pem crt key tf nix bzl"
).split()
#: Not license files although the name fits: code and data (license.go, licenses.json), third-party
#: notices (they describe bundled code, which has its own license files) and tools (license-checker).
NOT_LICENSE_FILE_PATTERN = (
    rf"(?:^|/)[^/]*\.(?:{'|'.join(_CODE_EXTENSIONS)})$"
    r"|(?:^|/)[^/]*(?:third.?party|3rd.?party)[^/]*$"
    r"|(?:^|/)[^/]*licen[cs]es?[-_.]?(?:check|checker|checks|manager|util|utils|helper|helpers|service|plugin|tool"
    r"|tools|key|keys|server|client|api|model|view|controller|generator|parser|validator|scanner|detector|finder)"
    r"(?:[-_.][^/]*)?$"
)
#: What every license file path has (a superset of both patterns' matches), for the vectorised prefilter.
_CANDIDATE = r"(?:licen|copy|notice|legal)[^/]*(?:/[^/]*){0,2}$"
_CANDIDATE_RE = re.compile(_CANDIDATE, re.IGNORECASE)
_LICENSE_FILE = re.compile(LICENSE_FILE_PATTERN, re.IGNORECASE)
_NOT_LICENSE_FILE = re.compile(NOT_LICENSE_FILE_PATTERN, re.IGNORECASE)


def is_license_file(path: str) -> bool:
    """True when ``path`` (a repository path, any case) names a license file: LICENSE, COPYING, NOTICE, ..."""
    return (
        _CANDIDATE_RE.search(path) is not None
        and _LICENSE_FILE.search(path) is not None
        and _NOT_LICENSE_FILE.search(path) is None
    )


def license_file_mask(paths: pa.Array | pa.ChunkedArray) -> pa.BooleanArray:
    """``is_license_file`` over a string column at once (RE2 in pyarrow; a null path gives null).

    A cheap pattern picks the candidates (a license word in the last three path components); the
    full patterns run on those only. Each call compiles the patterns (~2 ms): call it on large
    arrays (the walk's whole path column: ~0.2 µs a path here), not on small batches.
    """
    if isinstance(paths, pa.ChunkedArray):
        paths = paths.combine_chunks()
    candidates = pc.indices_nonzero(pc.fill_null(pc.match_substring_regex(paths, _CANDIDATE, ignore_case=True), False))
    chosen = paths.take(candidates)
    found = pc.match_substring_regex(chosen, LICENSE_FILE_PATTERN, ignore_case=True)
    excluded = pc.match_substring_regex(chosen, NOT_LICENSE_FILE_PATTERN, ignore_case=True)
    mask = np.zeros(len(paths), dtype=bool)
    mask[candidates.to_numpy()] = pc.and_(found, pc.invert(excluded)).to_numpy(zero_copy_only=False)
    nulls = paths.is_null().to_numpy(zero_copy_only=False) if paths.null_count else None
    return pa.array(mask, pa.bool_(), mask=nulls)


# ---------------------------------------------------------------- configuration and policy
@dataclass(frozen=True)
class LicenseConfig:
    """The ``[license]`` section.

    ``permissive_only``: drop ``no_license`` files too (default: keep them, as The Stack v2 did).
    ``allow`` / ``deny``: SPDX ids (or ``LicenseRef-scancode-*``) counted permissive / not permissive
    whatever their ScanCode category; ``deny`` wins. ``max_scan_bytes``: at most this many bytes of a
    license file go to ScanCode; a longer file is scanned up to there and also gets
    ``LicenseRef-scancode-unknown`` (its rest was not read). ``timeout_s``: ScanCode's matching
    deadline per license file. ``spdx_head_bytes``: how much of the start of each file is searched
    for ``SPDX-License-Identifier:`` lines. ``ignore``: ids that are not licenses and count for
    nothing (left out of ``detected_licenses`` and out of ``A AND B`` / ``A OR B``): ScanCode's
    warranty disclaimers and references to a license that do not say which ("see the LICENSE file").
    """

    permissive_only: bool = False
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    ignore: tuple[str, ...] = (
        "LicenseRef-scancode-warranty-disclaimer",
        "LicenseRef-scancode-unknown-license-reference",
    )
    max_scan_bytes: int = 1_000_000
    timeout_s: float = 30.0
    spdx_head_bytes: int = 4096


class LicensePolicy:
    """SPDX expressions: validation, normalisation, and the permissive decision (memoised).

    The symbols are the installed ScanCode's license db (SPDX ids, their aliases such as ``GPL-2.0``
    for ``GPL-2.0-only``, and ``LicenseRef-scancode-*`` ids), loaded with license-expression's
    ``build_spdx_licensing`` (what ``get_spdx_licensing()`` does with its vendored copy of the same
    db), so every id this ScanCode version emits is known.
    """

    def __init__(self, allow: Sequence[str] = (), deny: Sequence[str] = (), ignore: Sequence[str] = ()) -> None:
        from license_expression import build_spdx_licensing
        from licensedcode.models import load_licenses

        licenses = load_licenses(with_deprecated=True).values()
        self.licensing = build_spdx_licensing([
            {
                "spdx_license_key": lic.spdx_license_key,
                "other_spdx_license_keys": lic.other_spdx_license_keys,
                "is_exception": lic.is_exception,
                "is_deprecated": lic.is_deprecated,
            }
            for lic in licenses
            if lic.spdx_license_key
        ])
        self.category = {lic.spdx_license_key: lic.category for lic in licenses if lic.spdx_license_key}
        self._normal: dict[tuple[str, bool], str | None] = {}
        self.allow, self.deny = self._known(allow, "allow"), self._known(deny, "deny")
        self.ignore = self._known(ignore, "ignore")
        self._permissive: dict[str, bool | None] = {}
        self._ids: dict[str, tuple[str, ...]] = {}

    def _known(self, ids: Sequence[str], key: str) -> frozenset[str]:
        out = set()
        for spdx_id in ids:
            normal = self.normalize(spdx_id, detected=True)
            if normal is None or " " in normal:
                raise PipelineError(f"[license] {key}: {spdx_id!r} is not an SPDX license id")
            out.add(normal)
        return frozenset(out)

    def normalize(self, expression: str, detected: bool = False) -> str | None:
        """``expression`` with canonical ids (``mit or GPL-2.0`` → ``MIT OR GPL-2.0-only``); None if invalid.

        Custom ``LicenseRef-*`` / ``DocumentRef-*:LicenseRef-*`` ids are valid SPDX and kept as written.
        ``detected``: an expression ScanCode detected, where an exception may stand alone (a file
        holding only the text of an exception, ``LLVM-exception``); SPDX itself allows that only after
        ``WITH``.
        """
        key = (expression, detected)
        if key not in self._normal:
            self._normal[key] = self._normalize(expression, detected)
        return self._normal[key]

    def _normalize(self, expression: str, detected: bool) -> str | None:
        try:
            info = self.licensing.validate(expression)
            if not info.errors:
                return str(info.normalized_expression)
            # validate() reports one kind of error only: re-check what it would have said next
            tolerated = ("Unknown license key", "A license exception symbol can only") if detected else (
                "Unknown license key",)
            if not all(e.startswith(tolerated) for e in info.errors):
                return None
            parsed = self.licensing.parse(expression)
        except Exception:  # noqa: BLE001 - license-expression raises odd errors (AttributeError) on some bad input
            return None
        if not all(_CUSTOM_REF.match(key) for key in self.licensing.unknown_license_keys(parsed)):
            return None
        if not detected and _has_standalone_exception(parsed):
            return None
        return str(parsed)

    def ids(self, expression: str) -> tuple[str, ...]:
        """The license and exception ids of a normalised expression, less the ignored ones."""
        if expression not in self._ids:
            keys = self.licensing.license_keys(self.licensing.parse(expression))
            self._ids[expression] = tuple(k for k in keys if k not in self.ignore)
        return self._ids[expression]

    def is_permissive(self, expression: str) -> bool | None:
        """Whether a normalised expression is permissive: OR if one side is, AND if all are, WITH as its
        license. None when it names only ignored ids (it counts for nothing)."""
        if expression not in self._permissive:
            self._permissive[expression] = self._node_permissive(self.licensing.parse(expression))
        return self._permissive[expression]

    def _node_permissive(self, node: Any) -> bool | None:
        from license_expression import AND, OR, LicenseWithExceptionSymbol

        if isinstance(node, AND | OR):
            values = [v for v in (self._node_permissive(arg) for arg in node.args) if v is not None]
            if not values:
                return None
            return any(values) if isinstance(node, OR) else all(values)
        if isinstance(node, LicenseWithExceptionSymbol):
            return self.id_permissive(node.license_symbol.key)
        return self.id_permissive(node.key)

    def id_permissive(self, spdx_id: str) -> bool | None:
        """One id: ``deny`` → no, ``ignore`` → None, ``allow`` → yes, else whether its ScanCode category is."""
        if spdx_id in self.deny:
            return False
        if spdx_id in self.ignore:
            return None
        return spdx_id in self.allow or self.category.get(spdx_id) in PERMISSIVE_CATEGORIES

    def license_type(self, expressions: Iterable[str]) -> str:
        """``no_license`` when nothing (but ignored ids) applies, ``permissive`` if every expression is,
        else ``non_permissive``."""
        values = [v for v in (self.is_permissive(e) for e in expressions) if v is not None]
        if not values:
            return NO_LICENSE
        return PERMISSIVE if all(values) else NON_PERMISSIVE


_CUSTOM_REF = re.compile(r"^(?:DocumentRef-[A-Za-z0-9.-]+:)?LicenseRef-[A-Za-z0-9.-]+$")


def _has_standalone_exception(node: Any) -> bool:
    """Whether an exception appears in ``node`` other than after ``WITH``."""
    from license_expression import LicenseSymbol, LicenseWithExceptionSymbol

    if isinstance(node, LicenseWithExceptionSymbol):
        return False
    if isinstance(node, LicenseSymbol):
        return bool(node.is_exception)
    return any(_has_standalone_exception(arg) for arg in node.args)


def validate_config(config: LicenseConfig) -> None:
    """Raise PipelineError if ``allow`` / ``deny`` / ``ignore`` name an id that is not an SPDX license id."""
    LicensePolicy(config.allow, config.deny, config.ignore)


# ---------------------------------------------------------------- SPDX-License-Identifier lines
SPDX_TAG = "SPDX-License-Identifier"
_SPDX_LINE = re.compile(r"SPDX-License-Identifier[ \t]*:[ \t]*([^\r\n]*)")
#: what ends the expression on a comment line: */  -->  *)  #}  %}  quotes, commas, semicolons
_SPDX_TAIL = re.compile(r"(?:\*/|-->|\*\)|#\}|%\}|\"\"\"|'''|[\"',;\\])[ \t]*$")


def spdx_expressions(head: str) -> list[str]:
    """The raw expressions of the ``SPDX-License-Identifier:`` lines in ``head``, comment syntax removed."""
    out = []
    for match in _SPDX_LINE.finditer(head):
        value = match.group(1).strip()
        while True:
            stripped = _SPDX_TAIL.sub("", value).strip()
            if stripped == value:
                break
            value = stripped
        out.append(value)
    return out


# ---------------------------------------------------------------- the persistent detection cache
CACHE_SCHEMA = pa.schema([
    pa.field("sha1", pa.string(), nullable=False),
    pa.field("scancode_version", pa.string(), nullable=False),
    pa.field("expressions", pa.list_(pa.string()), nullable=False),
])
_CACHE_GLOB = "licenses-*.parquet"
_SHA1 = re.compile(r"^[0-9a-f]{40}$")


class LicenseCache:
    """What ScanCode found in each license blob: ``(sha1, scancode_version) → SPDX expressions``.

    Persisted as small Parquet files under ``directory`` (kept across dataset versions; entries of
    other ScanCode versions are ignored). Each ``flush`` writes its new entries as one new file,
    named by the SHA-256 of its entries (so two writers can never collide, and the same entries give
    the same name), written to a temporary name and renamed. Reading recomputes that hash: a file
    that cannot be read, has another schema or does not hash to its name is ignored with a warning.
    Only complete scans are stored (never a timeout, a failure or a truncated file).
    ``directory=None``: in memory only.
    """

    def __init__(self, directory: Path | str | None, scancode_version: str = SCANCODE_VERSION) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.scancode_version = scancode_version
        self.ignored_files = 0
        self._ignored_reported = 0
        self._bad: set[str] = set()
        self._entries: dict[str, tuple[str, ...]] = {}
        self._pending: dict[str, tuple[str, ...]] = {}
        self._read: set[str] = set()
        self._lock = threading.Lock()
        self.refresh()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, sha1: str) -> tuple[str, ...] | None:
        """The expressions stored for ``sha1`` under this ScanCode version, or None."""
        return self._entries.get(sha1)

    def put(self, sha1: str, expressions: Sequence[str]) -> None:
        """Remember a complete scan; written by the next ``flush``. Keys that are not SHA-1 hex are not kept."""
        if not _SHA1.match(sha1):
            return
        value = tuple(expressions)
        with self._lock:
            if self._entries.get(sha1) != value:
                self._entries[sha1] = value
                self._pending[sha1] = value

    def refresh(self) -> int:
        """Read cache files written since the last look (by this or other workers); returns the entries added."""
        if self.directory is None or not self.directory.is_dir():
            return 0
        added = 0
        for path in sorted(self.directory.glob(_CACHE_GLOB)):
            if path.name in self._read:
                continue
            self._read.add(path.name)
            entries = self._load(path)
            for sha1, version, expressions in entries:
                if version == self.scancode_version and sha1 not in self._entries:
                    self._entries[sha1] = expressions
                    added += 1
        return added

    def _load(self, path: Path) -> list[tuple[str, str, tuple[str, ...]]]:
        try:
            table = pq.read_table(path)
            if not table.schema.equals(CACHE_SCHEMA, check_metadata=False):
                raise ValueError(f"schema {table.schema} is not the cache's")
            entries = [
                (sha1, version, tuple(expressions))
                for sha1, version, expressions in zip(
                    table["sha1"].to_pylist(),
                    table["scancode_version"].to_pylist(),
                    table["expressions"].to_pylist(),
                    strict=True,
                )
            ]
            if any(not isinstance(s, str) or not _SHA1.match(s) or not isinstance(v, str) for s, v, _ in entries):
                raise ValueError("a row is not a (sha1, version, expressions) entry")
            if path.name != _cache_file_name(entries):
                raise ValueError("its content does not hash to its name")
        except Exception as e:  # noqa: BLE001 - any damage: the file is not trusted, the run goes on
            self.ignored_files += 1
            self._bad.add(path.name)
            log.warning("license cache file %s ignored: %s", path, e)
            return []
        return entries

    def ignored_since_last_call(self) -> int:
        """How many cache files were ignored (damaged) since the previous call."""
        count, self._ignored_reported = self.ignored_files - self._ignored_reported, self.ignored_files
        return count

    def flush(self) -> Path | None:
        """Write the entries added since the last flush as one new file; returns its path (None if none)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if self.directory is None or not pending:
            return None
        entries = [(sha1, self.scancode_version, pending[sha1]) for sha1 in sorted(pending)]
        return self._write(entries)

    def compact(self) -> Path | None:
        """Merge every readable cache file into one (for the driver, at the end of a run)."""
        if self.directory is None or not self.directory.is_dir():
            return None
        merged: dict[tuple[str, str], tuple[str, ...]] = {}
        paths = sorted(self.directory.glob(_CACHE_GLOB))
        for path in paths:
            for sha1, version, expressions in self._load(path):
                merged.setdefault((sha1, version), expressions)
        if not merged:
            return None
        target = self._write([(sha1, version, merged[sha1, version]) for sha1, version in sorted(merged)])
        for path in paths:
            if path != target:
                path.unlink(missing_ok=True)
        return target

    def _write(self, entries: list[tuple[str, str, tuple[str, ...]]]) -> Path:
        assert self.directory is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        name = _cache_file_name(entries)
        target = self.directory / name
        self._read.add(name)
        if target.exists() and name not in self._bad:
            return target  # the same entries, already written (by another worker, or an earlier run)
        self._bad.discard(name)
        table = pa.table(
            {
                "sha1": [e[0] for e in entries],
                "scancode_version": [e[1] for e in entries],
                "expressions": [list(e[2]) for e in entries],
            },
            schema=CACHE_SCHEMA,
        )
        tmp = self.directory / f".tmp-{name}-{os.getpid()}-{threading.get_ident()}"
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, target)
        return target


def _cache_file_name(entries: Iterable[tuple[str, str, tuple[str, ...]]]) -> str:
    digest = hashlib.sha256()
    for sha1, version, expressions in entries:
        digest.update("\t".join([sha1, version, *expressions]).encode() + b"\n")
    return f"licenses-{digest.hexdigest()[:32]}.parquet"


# ---------------------------------------------------------------- ScanCode
class _Scanner:
    """ScanCode's license index (loaded once per process, on the first license blob not in the cache)."""

    def __init__(self) -> None:
        from licensedcode.cache import get_index

        self.index = get_index()

    def scan(self, text: str, timeout_s: float) -> tuple[list[str], bool]:
        """SPDX expressions of the detections in ``text`` and whether the deadline passed.

        ScanCode checks its ``deadline`` between matching steps (a Dask worker runs tasks in threads,
        where a signal-based alarm cannot be used): it may overrun, but always returns.
        """
        from licensedcode.detection import detect_licenses

        deadline = time.time() + timeout_s
        detections = detect_licenses(
            index=self.index, query_string=text, deadline=deadline, unknown_licenses=DETECT_UNKNOWN_TEXT
        )
        expressions = [d.license_expression_spdx for d in detections if d.license_expression is not None]
        return [e for e in expressions if e], time.time() > deadline


_SCANNER: list[_Scanner] = []
_SCANNER_LOCK = threading.Lock()


def _scanner() -> _Scanner:
    with _SCANNER_LOCK:
        if not _SCANNER:
            _SCANNER.append(_Scanner())
        return _SCANNER[0]


# ---------------------------------------------------------------- the stage
@dataclass(frozen=True)
class License:
    """License stage: LANGUAGE_SCHEMA rows in, CLASSIFIED_SCHEMA rows out (``detected_licenses``, ``license_type``).

    Drops ``non_permissive`` files (detail: the licenses found) and, with ``permissive_only``,
    ``no_license`` files. Call ``prepare`` with the partition's license files before its batches.
    ``cache_dir``: where the ScanCode results persist (None: memory only).
    """

    config: LicenseConfig = field(default_factory=LicenseConfig)
    cache_dir: str | None = None
    name: str = "license"

    def setup(self) -> None:
        """Load the license db and the cache. ScanCode's index (~4 s, ~1.4 GiB) loads on the first cache miss."""
        object.__setattr__(self, "_policy", LicensePolicy(self.config.allow, self.config.deny, self.config.ignore))
        object.__setattr__(self, "_cache", LicenseCache(self.cache_dir))
        object.__setattr__(self, "_dirs", None)

    # -- step 1: once per partition
    def cached(self, blob_ids: list[str | None]) -> list[bool]:
        """Which blobs the cache already knows: ``prepare`` needs no content for them. Needs ``setup()``."""
        cache: LicenseCache = self._cache  # type: ignore[attr-defined]
        cache.refresh()
        return [b is not None and cache.get(b) is not None for b in blob_ids]

    def prepare(self, license_files: pa.Table) -> dict[str, int]:
        """Detect the licenses of a partition's license files; returns counters. Needs ``setup()``.

        ``license_files``: one row per license file of every repository in the partition, with
        ``origin_url``, ``path``, ``blob_id`` (SHA-1 hex of the original bytes), ``content`` (the
        decoded text, or null) and ``problem`` (why ``content`` is null: ``binary``, ``too_large``,
        ...; null otherwise). Replaces the directory map of the previous partition.
        """
        missing = [c for c in LICENSE_FILE_COLUMNS if c not in license_files.column_names]
        if missing:
            raise ValueError(f"license files table lacks column(s) {', '.join(missing)}")
        cache: LicenseCache = self._cache  # type: ignore[attr-defined]
        policy: LicensePolicy = self._policy  # type: ignore[attr-defined]
        counters: Counter[str] = Counter()
        cache.refresh()
        found_by_blob: dict[str, tuple[str, ...]] = {}
        dirs: dict[str, dict[str, set[str]]] = {}
        columns = [license_files[c].to_pylist() for c in LICENSE_FILE_COLUMNS]
        for origin, path, blob_id, content, problem in zip(*columns, strict=True):
            counters["license_files"] += 1
            known = cache.get(blob_id) if content is None and problem is None and blob_id is not None else None
            if known is not None:  # left unread because the cache has it (see ``cached``)
                counters["scancode_cache_hits"] += 1
                expressions = _from_cache(known, policy)
            elif content is None or blob_id is None:
                expressions: tuple[str, ...] = (UNKNOWN,)
                counters["license_file_problems"] += 1
                counters[f"license_file_problem_{_problem_slug(problem)}"] += 1
            elif blob_id in found_by_blob:
                expressions = found_by_blob[blob_id]
            else:
                expressions = self._detect(blob_id, content, cache, policy, counters)
                found_by_blob[blob_id] = expressions
            if expressions:
                dirs.setdefault(origin, {}).setdefault(_directory(path), set()).update(expressions)
        cache.flush()
        counters["license_blobs"] = len(found_by_blob)
        counters["license_cache_files_ignored"] = cache.ignored_since_last_call()
        frozen = {o: {d: tuple(sorted(e)) for d, e in by_dir.items()} for o, by_dir in dirs.items()}
        object.__setattr__(self, "_dirs", frozen)
        object.__setattr__(self, "_memo", {})
        return dict(sorted(counters.items()))

    def _detect(
        self, blob_id: str, content: str, cache: LicenseCache, policy: LicensePolicy, counters: Counter[str]
    ) -> tuple[str, ...]:
        """Normalised SPDX expressions of one license file (cache, else ScanCode)."""
        if not content.strip():
            counters["license_file_problems"] += 1
            counters["license_file_problem_empty"] += 1
            return ()  # an empty file states no license: it adds nothing
        data = content.encode("utf-8")
        truncated = len(data) > self.config.max_scan_bytes
        if truncated:
            content = data[: self.config.max_scan_bytes].decode("utf-8", errors="ignore")
            counters["license_files_truncated"] += 1
        else:
            cached = cache.get(blob_id)
            if cached is not None:
                counters["scancode_cache_hits"] += 1
                return _from_cache(cached, policy)
        if not _SCANNER:
            counters["scancode_index_loads"] += 1
        scanner = _scanner()
        counters["scancode_runs"] += 1
        start = time.process_time()
        try:
            raw, timed_out = scanner.scan(content, self.config.timeout_s)
        except Exception as e:  # noqa: BLE001 - one bad file must not stop the run
            counters["scancode_failures"] += 1
            log.warning("ScanCode raised %s on license blob %s", type(e).__name__, blob_id)
            return (UNKNOWN,)
        finally:
            counters["scancode_cpu_ms"] += int((time.process_time() - start) * 1000)
        expressions = set()
        for expression in raw:
            normal = policy.normalize(expression, detected=True)
            if normal is None:
                counters["scancode_invalid_expressions"] += 1
                normal = UNKNOWN_SPDX
            expressions.add(normal)
        if timed_out:
            counters["scancode_failures"] += 1
            counters["scancode_timeouts"] += 1
            expressions.add(UNKNOWN)
        elif truncated:
            expressions.add(UNKNOWN)
        else:
            cache.put(blob_id, sorted(expressions))
        return tuple(sorted(expressions))

    # -- step 2: per batch
    def process(self, table: pa.Table) -> StageResult:
        """LANGUAGE_SCHEMA rows in; CLASSIFIED_SCHEMA rows kept, the others to the ledger. Needs ``prepare()``."""
        ids_column, type_column, counters = self.classify(table)
        reasons: list[Reason | None] = [None] * table.num_rows
        details: list[str | None] = [None] * table.num_rows
        non_permissive = pc.indices_nonzero(pc.equal(type_column, NON_PERMISSIVE))
        for i, ids in zip(non_permissive.to_pylist(), ids_column.take(non_permissive).to_pylist(), strict=True):
            reasons[i], details[i] = Reason.NON_PERMISSIVE, " ".join(ids)
        if self.config.permissive_only:
            for i in pc.indices_nonzero(pc.equal(type_column, NO_LICENSE)).to_pylist():
                reasons[i] = Reason.NO_LICENSE
        at = table.schema.get_field_index("content")
        classified = table.add_column(at, "detected_licenses", ids_column)
        classified = classified.add_column(at + 1, "license_type", type_column)
        kept, dropped, split_counters = split(self.name, classified, reasons, details)
        return StageResult(kept.cast(CLASSIFIED_SCHEMA), dropped, {**split_counters, **counters})

    def classify(self, table: pa.Table) -> tuple[pa.Array, pa.Array, dict[str, int]]:
        """``detected_licenses`` and ``license_type`` of each row of ``table`` (``origin_url``, ``path``,
        ``content``), and counters. Drops nothing. Needs ``prepare()`` for the partition of these rows.

        Vectorised: Python touches each distinct (origin, folder) once, and only the rows whose head
        holds an SPDX tag one by one."""
        dirs: dict[str, dict[str, tuple[str, ...]]] | None = self._dirs  # type: ignore[attr-defined]
        if dirs is None:
            raise RuntimeError("License.classify called before License.prepare for this partition")
        policy: LicensePolicy = self._policy  # type: ignore[attr-defined]
        inherited: dict[str, dict[str, tuple[str, ...]]] = self._memo  # type: ignore[attr-defined]
        counters: Counter[str] = Counter()
        results: dict[tuple[str, ...], int] = {}  # distinct expression sets of this batch → output index

        # licenses of the license files in each row's folder and its ancestors, once per (origin, folder)
        folders = pc.replace_substring_regex(table["path"], r"(^|/)[^/]*$", "")
        keys = pc.binary_join_element_wise(table["origin_url"], folders, "\x00")
        encoded = pc.dictionary_encode(keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys)
        key_expressions = []
        for key in encoded.dictionary.to_pylist():
            origin, folder = key.split("\x00", 1)
            by_dir = dirs.get(origin)
            if not by_dir:
                key_expressions.append(())  # no license file anywhere in the repository
                continue
            memo = inherited.get(origin)
            if memo is None:
                memo = inherited[origin] = {}
            found = memo.get(folder)
            key_expressions.append(found if found is not None else _inherited(by_dir, memo, folder))
        key_result = np.array([results.setdefault(e, len(results)) for e in key_expressions], dtype=np.int32)
        row_result = key_result[encoded.indices.to_numpy(zero_copy_only=False)] if len(key_result) else key_result

        # plus the file's own SPDX-License-Identifier lines
        row_keys = encoded.indices
        for i, head in self._spdx_heads(table):
            own = []
            for raw in spdx_expressions(head):
                normal = policy.normalize(raw)
                if normal is None:
                    counters["spdx_invalid"] += 1
                    normal = UNKNOWN_SPDX
                own.append(normal)
            if own:
                counters["spdx_files"] += 1
                expressions = tuple(sorted(set(key_expressions[row_keys[i].as_py()]) | set(own)))
                row_result[i] = results.setdefault(expressions, len(results))

        # one decision per distinct set of expressions, spread over the rows with take()
        ids = [sorted({i for e in expressions for i in policy.ids(e)}) for expressions in results]
        types = [policy.license_type(expressions) for expressions in results]
        take = pa.array(row_result, pa.int32())
        type_column = pa.array(types, pa.string()).take(take)
        for value, count in zip(*pc.value_counts(type_column).flatten(), strict=True):
            counters[f"license_type_{value.as_py()}"] = count.as_py()
        return pa.array(ids, pa.list_(pa.string())).take(take), type_column, dict(sorted(counters.items()))

    def _spdx_heads(self, table: pa.Table) -> list[tuple[int, str]]:
        """(row, head of its content) for the rows whose first ``spdx_head_bytes`` hold an SPDX tag."""
        if table.num_rows == 0:
            return []
        content = table["content"]
        binary = content.cast(pa.large_binary()) if content.type != pa.large_binary() else content
        head = pc.binary_slice(binary, 0, self.config.spdx_head_bytes)
        # RE2 finds a literal with memchr: ~15x faster here than match_substring (measured)
        hits = pc.match_substring_regex(head, SPDX_TAG)
        rows = pc.indices_nonzero(pc.fill_null(hits, False)).to_pylist()
        if not rows:
            return []
        out = []
        for i, h in zip(rows, head.take(pa.array(rows, pa.int64())).to_pylist(), strict=True):
            if len(h) == self.config.spdx_head_bytes and b"\n" in h:
                h = h[: h.rindex(b"\n") + 1]  # the head was cut: its last line may be cut too
            out.append((i, h.decode("utf-8", errors="ignore")))
        return out


def _from_cache(expressions: Sequence[str], policy: LicensePolicy) -> tuple[str, ...]:
    """A cached detection, validated like fresh output (never trusted as is)."""
    return tuple(sorted({policy.normalize(e, detected=True) or UNKNOWN_SPDX for e in expressions}))


def _directory(path: str) -> str:
    """The folder of ``path`` without a leading slash ("" for the root): ``/a/b/LICENSE`` → ``a/b``."""
    cut = path.rfind("/")
    return path[:cut].lstrip("/") if cut > 0 else ""


def _inherited(by_dir: dict[str, tuple[str, ...]], memo: dict[str, tuple[str, ...]], folder: str) -> tuple[str, ...]:
    """The expressions of license files in ``folder`` and each of its ancestors, in one repository.

    ``by_dir``: the repository's folder → expressions; ``memo``: its folders already resolved, so a
    new folder costs one step up to its nearest resolved ancestor.
    """
    chain = []  # this folder and its ancestors not resolved yet, deepest first
    found: tuple[str, ...] = ()
    while True:
        known = memo.get(folder)
        if known is not None:
            found = known
            break
        chain.append(folder)
        if not folder or folder == "/":
            break
        cut = folder.rfind("/")
        folder = folder[:cut] if cut > 0 else ""
    for folder in reversed(chain):
        own = by_dir.get(folder.lstrip("/"))
        if own:
            found = tuple(sorted(set(found) | set(own)))
        memo[folder] = found
    return found


def _problem_slug(problem: str | None) -> str:
    """A counter-name-safe word for a ``problem`` (its first word, e.g. ``binary``, ``too_large``)."""
    words = (problem or "").split(maxsplit=1)
    word = re.sub(r"[^a-z0-9_]", "", words[0].lower())[:32] if words else ""
    return word or "unknown"
