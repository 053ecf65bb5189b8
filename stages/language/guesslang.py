"""guesslang's trained model, the language stage's content fallback: its labels as Linguist names,
what it reads of a file, where its SavedModel lies, and the model itself (loaded once per process)."""

from __future__ import annotations

import importlib.util
import json
import os
from functools import lru_cache
from pathlib import Path

#: guesslang's 54 labels (its ``languages.json`` names) → Linguist names. The first name is the
#: answer when enry had no candidates; with candidates, any of the names may match one.
#: Fortran is trained on ``.f90`` (Linguist: Fortran Free Form); "Visual Basic" on ``.vba``, but
#: GitHub's Visual Basic is mostly VB.NET; "Objective-C" on ``.mm`` (Objective-C++ in Linguist).
GUESSLANG_LANGUAGES: dict[str, tuple[str, ...]] = {
    "Assembly": ("Assembly", "Unix Assembly", "Motorola 68K Assembly"),
    "Batchfile": ("Batchfile",),
    "C": ("C",),
    "C#": ("C#",),
    "C++": ("C++",),
    "Clojure": ("Clojure",),
    "CMake": ("CMake",),
    "COBOL": ("COBOL",),
    "CoffeeScript": ("CoffeeScript",),
    "CSS": ("CSS",),
    "CSV": ("CSV",),
    "Dart": ("Dart",),
    "DM": ("DM",),
    "Dockerfile": ("Dockerfile",),
    "Elixir": ("Elixir",),
    "Erlang": ("Erlang",),
    "Fortran": ("Fortran Free Form", "Fortran"),
    "Go": ("Go",),
    "Groovy": ("Groovy",),
    "Haskell": ("Haskell",),
    "HTML": ("HTML",),
    "INI": ("INI",),
    "Java": ("Java",),
    "JavaScript": ("JavaScript",),
    "JSON": ("JSON", "JSON with Comments"),
    "Julia": ("Julia",),
    "Kotlin": ("Kotlin",),
    "Lisp": ("Common Lisp", "Emacs Lisp", "NewLisp"),
    "Lua": ("Lua",),
    "Makefile": ("Makefile",),
    "Markdown": ("Markdown",),
    "Matlab": ("MATLAB",),
    "Objective-C": ("Objective-C", "Objective-C++"),
    "OCaml": ("OCaml",),
    "Pascal": ("Pascal",),
    "Perl": ("Perl",),
    "PHP": ("PHP",),
    "PowerShell": ("PowerShell",),
    "Prolog": ("Prolog",),
    "Python": ("Python",),
    "R": ("R",),
    "Ruby": ("Ruby",),
    "Rust": ("Rust",),
    "Scala": ("Scala",),
    "Shell": ("Shell",),
    "SQL": ("SQL", "PLSQL", "PLpgSQL", "TSQL", "SQLPL"),
    "Swift": ("Swift",),
    "TeX": ("TeX",),
    "TOML": ("TOML",),
    "TypeScript": ("TypeScript", "TSX"),
    "Verilog": ("Verilog", "SystemVerilog"),
    "Visual Basic": ("Visual Basic .NET", "VBA", "Visual Basic 6.0", "VBScript"),
    "XML": ("XML",),
    "YAML": ("YAML",),
}

#: guesslang's feature: the first 10,000 byte bigrams of the text, i.e. its first 10,001 bytes.
GUESSLANG_BYTES = 10_001


class Guesslang:
    """guesslang's trained model through TensorFlow (its SavedModel's ``serving_default`` signature).

    The stage runs ``GuesslangNumpy`` (``guesslang_numpy``): the same weights, read from the same
    files, without TensorFlow (~3.5 CPU s and ~800 MB less per process). This class is the reference
    that port is tested and benchmarked against (TensorFlow is a test dependency), and the base
    that gives both ``best``.
    """

    def __init__(self, model_dir: Path) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # the same numbers on every x86 CPU
        import tensorflow as tf  # only here: the stage imports without TensorFlow when the fallback is off

        try:  # workers are one-thread processes
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # TensorFlow already started in this process: its threads stay as they are
            pass
        self._tf = tf
        self._predict = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
        names = {ext: name for name, ext in json.loads((model_dir.parent / "languages.json").read_text()).items()}
        classes = self._predict(inputs=tf.constant([b""]))["classes"].numpy()[0]
        #: the Linguist names of each output column
        self.columns: list[tuple[str, ...]] = [GUESSLANG_LANGUAGES[names[c.decode()]] for c in classes]

    def scores(self, texts: list[bytes], batch: int) -> list[list[float]]:
        """The model's probabilities (one list per text, in ``columns`` order)."""
        out: list[list[float]] = []
        for start in range(0, len(texts), batch):
            result = self._predict(inputs=self._tf.constant(texts[start : start + batch]))
            out.extend(result["scores"].numpy().tolist())
        return out

    def best(self, scores: list[float], candidates: tuple[str, ...] = ()) -> tuple[str | None, float]:
        """The most probable language and its probability.

        With ``candidates``, only the labels that name one count, and the probability is the
        label's share of theirs (how sure the model is *between* the candidates); None when the
        model knows none of them.
        """
        if not candidates:
            column = max(range(len(scores)), key=scores.__getitem__)
            return self.columns[column][0], scores[column]
        best, top, total = None, -1.0, 0.0
        for names, p in zip(self.columns, scores, strict=True):
            match = next((c for c in names if c in candidates), None)
            if match is None:
                continue
            total += p
            if p > top:
                best, top = match, p
        return best, (top / total if total > 0 else 0.0)


def guesslang_model_dir() -> Path:
    """Where guesslang's SavedModel lies in its installed package (installed ``--no-deps``; never imported)."""
    spec = importlib.util.find_spec("guesslang")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("[language] guesslang = true needs the guesslang package "
                           "(pip install --no-deps guesslang==2.2.1), or set guesslang = false")
    return Path(spec.submodule_search_locations[0]) / "data" / "model"


@lru_cache(maxsize=1)
def load_guesslang(model_dir: Path | None = None) -> Guesslang:
    """guesslang's model in ``model_dir`` (default: the installed package's), loaded once per process,
    run with numpy (``GuesslangNumpy``: TensorFlow's probabilities within 1e-6, no TensorFlow)."""
    from stages.language.guesslang_numpy import GuesslangNumpy

    return GuesslangNumpy(model_dir or guesslang_model_dir())
