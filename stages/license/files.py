"""Which paths are license files: LICENSE, COPYING, NOTICE, ... (one pattern for Python's re and RE2)."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# One pattern for Python's re and for RE2 (pyarrow), so the vectorised mask and is_license_file agree.
_WORD = r"(?:un)?licen[cs]es?|licensing|copying|copyrights?|notices?|legal"
_TOKEN = r"[a-z0-9+]{1,20}"
_NAME = rf"(?:{_TOKEN}[-_.]){{0,3}}(?:{_WORD})(?:v?[0-9][0-9.]*)?(?:[-_.]{_TOKEN}){{0,4}}"
#: License families whose name alone names a file that holds their text: GPL.txt, gpl-3.0.txt, MIT.txt,
#: Apache-2.0.txt, BSD-3-Clause.md, LGPL, CC-BY-SA-4.0.txt (a repository's only license file, often).
_FAMILY = (r"(?:[al]?gpl|gfdl|mit|mit-0|0bsd|apache|bsd|mpl|epl|isc|cc0|artistic|zlib|eupl|cddl|wtfpl|bsl|ofl"
           r"|cc-by(?:-sa|-nc|-nd)*)")
_SPDX_NAMED = (rf"{_FAMILY}(?:[-_.]?v?[0-9][0-9.]*)?(?:[-_.](?:only|or[-_.]later|clause|[0-9]+|new|simplified"
               r"|modified|patent|sa|nc|nd|license))*\+?(?:\.(?:txt|md|markdown|rst|html?))?")
#: LICENSE, COPYING.LESSER, MIT-LICENSE, LICENSE-2.0.txt, GPL.txt, ...; or any file under a REUSE-style
#: LICENSES/ folder.
LICENSE_FILE_PATTERN = rf"(?:^|/)(?:{_NAME}|{_SPDX_NAMED}|licen[cs]es?/(?:[^/]+/)?[^/]+)$"
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
    # project documents a licenses/ folder also holds (PEP 639 wheels list README, CHANGELOG, AUTHORS as
    # "license files"): not license texts, and long (ScanCode took 15 s on one CHANGELOG)
    r"|(?:^|/)licen[cs]es?/(?:[^/]+/)?[^/]*(?:changelog|changes|history|readme|authors|contributors|code.of.conduct"
    r"|contributing|news|todo|security|maintainers|thanks)[^/]*$"
    # pages and lists about licenses: templates/license_list.html, license-details.html
    r"|(?:^|/)[^/]*licen[cs]es?[-_.]?(?:list|details|page|form|dialog|widget|template|report|summary|overview)"
    r"(?:[-_.][^/]*)?$"
    # tools named by what they do to licenses: get_license_types.slurm, update-copyright, check_licenses
    r"|(?:^|/)(?:get|set|check|update|add|gen|generate|scan|find|fetch|parse|print|show|list|make|build|test|validate"
    r"|verify|extract|detect|count|write|read|load|save|collect|sync|fix|strip|insert|apply)[-_.][^/]*"
    r"(?:licen[cs]|copy|notice|legal)[^/]*$"
)
#: What every license file path has (a superset of both patterns' matches), for the vectorised prefilter.
_CANDIDATE = rf"(?:licen|copy|notice|legal)[^/]*(?:/[^/]*){{0,2}}$|(?:^|/){_FAMILY}[^/]*$"
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
