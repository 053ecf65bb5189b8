"""guesslang's model in numpy (stages.language.guesslang_numpy) against the same model in TensorFlow:
the hash buckets, the weights, the label order, the summation order and the probabilities."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stages.language.guesslang import GUESSLANG_BYTES, Guesslang, guesslang_model_dir
from stages.language.guesslang_numpy import (
    BUCKETS,
    GuesslangNumpy,
    bigram_buckets,
    fingerprint64,
    read_checkpoint,
    read_classes,
    read_index,
)

ROOT = Path(__file__).resolve().parents[2]
ROOTS = [Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])]
SUFFIXES = (".py", ".c", ".h", ".js", ".json", ".sh", ".html", ".css", ".md", ".toml", ".yaml", ".txt",
            ".pyi", ".cfg", ".rst", ".xml", ".csv", ".ini", ".cpp", ".pyx")
PER_SUFFIX = 25
BIGRAMS = [bytes((a, 0x20, b)) for a in range(256) for b in range(256)]  # index a << 8 | b


def real_files(per_suffix: int, seed: int) -> list[tuple[str, bytes]]:
    """A seeded sample of up to ``per_suffix`` files of each suffix from the stdlib and site-packages."""
    found: dict[str, list[Path]] = {s: [] for s in SUFFIXES}
    for root in ROOTS:
        for folder, _, names in os.walk(root):
            for name in names:
                suffix = os.path.splitext(name)[1]
                if suffix in found:
                    found[suffix].append(Path(folder, name))
    out = []
    for suffix, paths in found.items():
        paths.sort()
        random.Random(f"{seed}:{suffix}").shuffle(paths)
        taken = 0
        for path in paths:
            if taken == per_suffix:
                break
            if path.is_symlink() or not path.is_file() or path.stat().st_size > 2_000_000:
                continue
            out.append((str(path), path.read_bytes()))
            taken += 1
    return out


def edge_texts() -> list[bytes]:
    rng = random.Random(3)
    return [
        b"",  # no bigram
        b"x",  # no bigram
        b"xy",  # one bigram
        *(b"ab" * (k // 2) + b"a" * (k % 2) for k in range(3, 40)),  # 2..38 bigrams: every summation branch
        bytes(rng.randrange(256) for _ in range(50_000)),  # random bytes, over 10,001
        "é ü ß — ½ façade naïve".encode("latin-1", "replace") * 40,  # Latin-1, not UTF-8
        b"\xff\xfe" + "def f(x):\n    return x\n".encode("utf-16-le") * 200,  # UTF-16
        b"\x00" * 20_000,
        b"int main(void) { return 0; }\n" * 500,  # over 10,001 bytes
        b"int main(void) { return 0; }\n" * 345,  # 10,005 bytes: cut at 10,001
    ]


@pytest.fixture(scope="module")
def model_dir() -> Path:
    try:
        return guesslang_model_dir()
    except RuntimeError:
        pytest.skip("guesslang is not installed")


@pytest.fixture(scope="module")
def tf() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def reference(model_dir: Path, tf: Any) -> Guesslang:
    """The model as the stage runs it now (TensorFlow)."""
    return Guesslang(model_dir)


@pytest.fixture(scope="module")
def port(model_dir: Path) -> GuesslangNumpy:
    return GuesslangNumpy(model_dir)


def test_buckets_are_tensorflows_for_every_bigram(tf: Any) -> None:
    expected = tf.strings.to_hash_bucket_fast(tf.constant(BIGRAMS), BUCKETS).numpy()
    assert expected.shape == (65_536,)
    assert np.array_equal(bigram_buckets(), expected)
    assert [fingerprint64(t) % BUCKETS for t in BIGRAMS] == expected.tolist()
    # and the whole 64 bits, for every length the short path takes
    rng = random.Random(5)
    strings = [bytes(rng.randrange(256) for _ in range(n)) for n in range(17) for _ in range(40)]
    fingerprints = tf.fingerprint(tf.constant(strings), method="farmhash64").numpy()
    assert [fingerprint64(s) for s in strings] == [int.from_bytes(f.tobytes(), "little") for f in fingerprints]
    with pytest.raises(ValueError):
        fingerprint64(b"x" * 17)


def test_tokens_are_byte_bigrams_and_padding_is_ignored(tf: Any, reference: Guesslang) -> None:
    """What the model's preprocessing makes of a text: the byte bigrams joined by a space."""
    tokens = tf.strings.ngrams(tf.strings.bytes_split(tf.constant(b"a\xffb c")), 2, separator=" ").numpy().tolist()
    assert tokens == [b"a \xff", b"\xff b", b"b  ", b"  c"]
    # no bigram (0 or 1 byte): the model sees only '' padding and answers with the biases alone
    empty, one = reference.scores([b"", b"x"], 2)
    assert empty == one


def test_weights_are_the_saved_models_variables(model_dir: Path, tf: Any) -> None:
    weights = read_checkpoint(model_dir / "variables" / "variables")
    variables = {v.name.removesuffix(":0"): v.numpy() for v in tf.saved_model.load(str(model_dir)).variables}
    assert set(weights) == set(variables)
    for name, value in variables.items():
        assert weights[name].dtype == value.dtype and weights[name].shape == value.shape, name
        assert np.array_equal(weights[name], value), name
    shapes = {name: entry.shape for name, entry in read_index(model_dir / "variables" / "variables.index").items()}
    assert shapes == {
        "global_step": (),
        "dnn/input_from_feature_columns/input_layer/content_embedding/embedding_weights": (5000, 70),
        "dnn/hiddenlayer_0/kernel": (70, 512),
        "dnn/hiddenlayer_0/bias": (512,),
        "dnn/hiddenlayer_1/kernel": (512, 32),
        "dnn/hiddenlayer_1/bias": (32,),
        "dnn/logits/kernel": (32, 54),
        "dnn/logits/bias": (54,),
        "linear/linear_model/content/weights": (5000, 54),
        "linear/linear_model/bias_weights": (54,),
    }


def test_labels_are_tensorflows_classes(model_dir: Path, tf: Any, reference: Guesslang, port: GuesslangNumpy) -> None:
    classes = reference._predict(inputs=tf.constant([b"", b"x = 1\n"]))["classes"].numpy()
    assert read_classes(model_dir / "saved_model.pb") == classes[0].tolist() == classes[1].tolist()
    assert port.columns == reference.columns
    assert len(port.columns) == 54


def test_sums_are_tensorflows_bits(tf: Any, port: GuesslangNumpy) -> None:
    """The embedding mean and the linear sum: TensorFlow's SparseSegmentMean / Sum, bit for bit."""
    embedding = tf.constant(port._table[:, : port._dim])
    linear = tf.constant(port._table[:, port._dim :])
    for text in [*edge_texts(), *(data for _, data in real_files(2, seed=11))]:
        b = np.frombuffer(text[:GUESSLANG_BYTES], np.uint8).astype(np.intp)
        ids = bigram_buckets()[(b[:-1] << 8) | b[1:]]
        mean, total = port.features(text)
        if len(ids) == 0:
            assert not mean.any() and not total.any()
            continue
        segments = np.zeros(len(ids), np.int32)
        assert np.array_equal(mean, tf.sparse.segment_mean(embedding, ids, segments).numpy()[0]), len(ids)
        assert np.array_equal(total, tf.sparse.segment_sum(linear, ids, segments).numpy()[0]), len(ids)


def test_probabilities_are_tensorflows_on_real_files(reference: Guesslang, port: GuesslangNumpy) -> None:
    files = real_files(PER_SUFFIX, seed=7)
    texts = [data for _, data in files] + edge_texts()
    assert len(files) >= 300 and len({Path(p).suffix for p, _ in files}) >= 12
    assert any(len(t) > GUESSLANG_BYTES for t in texts) and b"" in texts
    expected = np.array(reference.scores(texts, 64))
    got = np.array(port.scores(texts, 64))
    assert got.shape == expected.shape == (len(texts), 54)
    assert np.abs(got - expected).max() <= 1e-5
    assert np.array_equal(got.argmax(axis=1), expected.argmax(axis=1))
    assert np.allclose(got.sum(axis=1), 1, atol=1e-5)
    assert np.array_equal(got == 0, expected == 0)  # underflows: 0 in both (TF flushes denormals)
    # the batch size changes nothing
    assert port.scores(texts[:50], 7) == port.scores(texts[:50], 64)
    for p_got, p_expected in zip(got.tolist(), expected.tolist(), strict=True):
        assert port.best(p_got)[0] == reference.best(p_expected)[0]
        assert port.best(p_got, ("Python", "C", "Perl"))[0] == reference.best(p_expected, ("Python", "C", "Perl"))[0]
    assert port.scores([], 8) == []


def test_scoring_does_not_import_tensorflow() -> None:
    script = textwrap.dedent("""
        import sys, textwrap, time
        from stages.language.guesslang import guesslang_model_dir
        start = time.perf_counter()
        from stages.language.guesslang_numpy import GuesslangNumpy
        model = GuesslangNumpy(guesslang_model_dir())
        loaded = time.perf_counter() - start
        scores = model.scores([open(textwrap.__file__, "rb").read(), b""], 8)
        assert "tensorflow" not in sys.modules, "tensorflow imported"
        print(model.best(scores[0])[0], loaded)
    """)
    try:
        guesslang_model_dir()
    except RuntimeError:
        pytest.skip("guesslang is not installed")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    language, seconds = done.stdout.split()
    assert language == "Python"
    assert float(seconds) < 1.0  # ~0.02 s here; TensorFlow: ~3 s
