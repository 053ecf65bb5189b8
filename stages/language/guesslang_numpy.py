"""guesslang's trained model run with numpy: the same weights, read from guesslang's own files, and no TensorFlow.

The SavedModel (``guesslang/data/model``) is a ``DNNLinearCombinedClassifier`` over one feature,
``content``: the first 10,000 byte bigrams of the text (``tf.strings.bytes_split`` then
``tf.strings.ngrams(..., 2)``, each token the 3 bytes ``b1 b" " b2``, padded with ``''``). Its
serving graph (read in ``saved_model.pb``):

- both parts drop the ``''`` padding (``to_sparse_input``: ``NotEqual ''``) and hash each token into
  one of 5,000 buckets (``StringToHashBucketFast``: FarmHash ``Fingerprint64(token) % 5000``);
- linear part: the sum of ``linear/linear_model/content/weights`` (5000 × 54) over the tokens
  (``SparseSegmentSum``) plus ``linear/linear_model/bias_weights`` (54);
- DNN part: the mean of the embedding rows over the tokens (``SparseSegmentMean``; zeros for a
  text of no bigram), 70 → 512 → 32 (``MatMul``, ``BiasAdd``, ``Relu``) → 54 (no activation);
- ``add`` (DNN logits + linear logits) → ``Softmax`` = ``scores``; ``classes`` is a constant, the
  label vocabulary, tiled.

A bigram is one of 65,536 tokens, so their buckets are one table computed once; a text's features
are then a lookup over its first 10,001 bytes, summed in TensorFlow's order (``features``). The
weights come from ``variables/variables.index`` (a LevelDB table of ``BundleEntryProto``) and
``variables.data-00000-of-00001`` (the raw little-endian tensors); the label order from the
``serving_default`` signature's ``classes`` constant in ``saved_model.pb``. Loading takes ~10 ms
and ~3 MB; scoring a 10 KB text ~0.5 ms of one core. The probabilities are TensorFlow's within
~1e-6: the segment sums are its bits, the softmax its formula with denormals flushed to zero, and
only the matrix products (BLAS, not Eigen) differ in the last float32 bits.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from stages.language.guesslang import GUESSLANG_BYTES, GUESSLANG_LANGUAGES, Guesslang

#: the model's hash buckets (``categorical_column_with_hash_bucket('content', 5000)``)
BUCKETS = 5000
#: the variables the model reads, by their checkpoint names
EMBEDDING = "dnn/input_from_feature_columns/input_layer/content_embedding/embedding_weights"
HIDDEN = ("dnn/hiddenlayer_0", "dnn/hiddenlayer_1")
DNN_LOGITS = "dnn/logits"
LINEAR_WEIGHTS = "linear/linear_model/content/weights"
LINEAR_BIAS = "linear/linear_model/bias_weights"

_MASK = (1 << 64) - 1
_K0 = 0xC3A5C85C97CB3127
_K2 = 0x9AE16A3B2F90404F


# --- FarmHash Fingerprint64 (farmhashna::Hash64), the short-string path -----------------------------


def _hash_len16(u: int, v: int, mul: int) -> int:
    a = ((u ^ v) * mul) & _MASK
    a ^= a >> 47
    b = ((v ^ a) * mul) & _MASK
    b ^= b >> 47
    return (b * mul) & _MASK


def _rotate(value: int, shift: int) -> int:
    return ((value >> shift) | (value << (64 - shift))) & _MASK


def fingerprint64(data: bytes) -> int:
    """FarmHash ``Fingerprint64`` of at most 16 bytes (``farmhashna::HashLen0to16``), as TensorFlow's
    ``StringToHashBucketFast`` computes it."""
    n = len(data)
    if n > 16:
        raise ValueError("fingerprint64: only strings of at most 16 bytes")
    if n >= 8:
        mul = (_K2 + n * 2) & _MASK
        a = (int.from_bytes(data[:8], "little") + _K2) & _MASK
        b = int.from_bytes(data[n - 8 :], "little")
        c = (_rotate(b, 37) * mul + a) & _MASK
        d = ((_rotate(a, 25) + b) * mul) & _MASK
        return _hash_len16(c, d, mul)
    if n >= 4:
        mul = (_K2 + n * 2) & _MASK
        a = int.from_bytes(data[:4], "little")
        return _hash_len16((n + (a << 3)) & _MASK, int.from_bytes(data[n - 4 :], "little"), mul)
    if n > 0:
        y = data[0] + (data[n >> 1] << 8)
        z = n + (data[n - 1] << 2)
        v = ((y * _K2) ^ (z * _K0)) & _MASK
        return ((v ^ (v >> 47)) * _K2) & _MASK
    return _K2


def bigram_buckets(buckets: int = BUCKETS) -> np.ndarray:
    """The bucket of each bigram token ``bytes([b1, 0x20, b2])``, at index ``b1 << 8 | b2`` (65,536 values).

    ``fingerprint64``'s 1-3 byte branch on arrays: first byte ``b1``, middle byte the space, last ``b2``.
    """
    codes = np.arange(1 << 16, dtype=np.uint64)
    first, last = codes >> np.uint64(8), codes & np.uint64(0xFF)
    y = first + (np.uint64(0x20) << np.uint64(8))
    z = np.uint64(3) + (last << np.uint64(2))
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps, as in C
        v = (y * np.uint64(_K2)) ^ (z * np.uint64(_K0))
        h = (v ^ (v >> np.uint64(47))) * np.uint64(_K2)
    return (h % np.uint64(buckets)).astype(np.intp)


# --- protobuf wire format ----------------------------------------------------------------------------


def _varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes | memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """``(field number, value)`` of a protobuf message: an int (varint, fixed32, fixed64) or the bytes."""
    buf = memoryview(buf)
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        else:
            raise ValueError(f"protobuf: unsupported wire type {wire}")
        yield number, value


# --- TensorFlow checkpoint (tensor bundle) -----------------------------------------------------------

_TABLE_MAGIC = 0xDB4775248B80FB57  # LevelDB's table magic number, the footer's last 8 bytes
_FOOTER = 48
#: TensorFlow DataType → numpy (little-endian)
_DTYPES = {1: np.dtype("<f4"), 2: np.dtype("<f8"), 3: np.dtype("<i4"), 9: np.dtype("<i8")}


def _block(table: bytes, handle: bytes | memoryview) -> memoryview:
    """The contents of the block at a BlockHandle (offset, size varints), uncompressed."""
    offset, pos = _varint(handle, 0)
    size, _ = _varint(handle, pos)
    kind = table[offset + size]  # the 5-byte trailer: compression type, masked crc32c
    if kind != 0:
        raise ValueError(f"variables.index: block compressed (type {kind}); only uncompressed tables are read")
    return memoryview(table)[offset : offset + size]


def _entries(block: memoryview) -> Iterator[tuple[bytes, memoryview]]:
    """The ``(key, value)`` entries of a table block (keys prefix-compressed against the previous one)."""
    restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * restarts
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        size, pos = _varint(block, pos)
        key = key[:shared] + bytes(block[pos : pos + unshared])
        pos += unshared
        yield key, block[pos : pos + size]
        pos += size


class BundleEntry(NamedTuple):
    """A tensor's ``BundleEntryProto`` in a checkpoint's ``.index``."""

    dtype: int  # TensorFlow DataType (1: float32, 9: int64)
    shape: tuple[int, ...]
    shard_id: int
    offset: int  # in the data file
    size: int  # bytes
    crc32c: int  # masked CRC32C of the bytes


def read_index(index: Path) -> dict[str, BundleEntry]:
    """The tensors a checkpoint's ``.index`` lists, by name.

    A LevelDB-format table: the footer's index block points to the data blocks; each entry's value
    is a ``BundleEntryProto`` (dtype = 1, shape = 2, shard_id = 3, offset = 4, size = 5, crc32c = 6,
    slices = 7). The entry of key ``''`` is the ``BundleHeaderProto``.
    """
    table = index.read_bytes()
    footer = table[-_FOOTER:]
    if int.from_bytes(footer[-8:], "little") != _TABLE_MAGIC:
        raise ValueError(f"{index}: not a TensorFlow checkpoint index (bad table magic)")
    _, pos = _varint(footer, 0)  # metaindex handle (offset, size): unused
    _, pos = _varint(footer, pos)
    tensors: dict[str, BundleEntry] = {}
    for _, handle in _entries(_block(table, footer[pos:])):
        for key, value in _entries(_block(table, handle)):
            fields: dict[int, int | memoryview] = {}
            for number, field_value in _fields(value):
                if number == 7:
                    raise ValueError(f"{index}: {key.decode()} is a sliced tensor; not read")
                fields[number] = field_value
            if not key:  # BundleHeaderProto: num_shards = 1, endianness = 2 (0: little)
                if fields.get(1, 1) != 1 or fields.get(2, 0) != 0:
                    raise ValueError(f"{index}: only single-shard little-endian checkpoints are read")
                continue
            shape = fields.get(2, b"")  # TensorShapeProto: dim = 2 (Dim: size = 1)
            dims = tuple(int(dict(_fields(dim)).get(1, 0)) for n, dim in _fields(shape) if n == 2)  # type: ignore[arg-type]
            values = [int(fields.get(n, 0)) for n in (1, 3, 4, 5, 6)]  # type: ignore[call-overload]
            tensors[key.decode()] = BundleEntry(values[0], dims, *values[1:])
    return tensors


def read_checkpoint(variables: Path) -> dict[str, np.ndarray]:
    """Every tensor of the checkpoint ``variables`` (the prefix: ``variables/variables``) as numpy arrays."""
    index = read_index(variables.with_name(variables.name + ".index"))
    data = variables.with_name(variables.name + ".data-00000-of-00001").read_bytes()
    out: dict[str, np.ndarray] = {}
    for name, entry in index.items():
        dtype = _DTYPES.get(entry.dtype)
        if dtype is None or entry.shard_id != 0:
            raise ValueError(f"checkpoint: {name}: dtype {entry.dtype}, shard {entry.shard_id}: not read")
        count = int(np.prod(entry.shape, dtype=np.int64))
        if entry.size != count * dtype.itemsize or entry.offset + entry.size > len(data):
            raise ValueError(f"checkpoint: {name}: {entry.size} bytes at {entry.offset} for shape {entry.shape}")
        out[name] = np.frombuffer(data, dtype, count, entry.offset).reshape(entry.shape)
    return out


# --- SavedModel graph: the label vocabulary ----------------------------------------------------------


def read_classes(saved_model: Path, signature: str = "serving_default", output: str = "classes") -> list[bytes]:
    """The labels of a signature's ``classes`` output, in column order: the string constant it is tiled from.

    ``saved_model.pb``: SavedModel.meta_graphs (2) → MetaGraphDef.graph_def (2), signature_def (5,
    a map: SignatureDef.outputs (2) → TensorInfo.name (1)); GraphDef.node (1) → NodeDef name (1),
    op (2), input (3), attr (5, a map: AttrValue.tensor (8) → TensorProto.string_val (8)).
    """
    meta_graph = next(value for number, value in _fields(saved_model.read_bytes()) if number == 2)
    graph: memoryview | None = None
    tensor_name = None
    for number, value in _fields(meta_graph):
        if number == 2:
            graph = value  # type: ignore[assignment]
        elif number == 5:
            entry = dict(_fields(value))
            if bytes(entry[1]).decode() == signature:
                outputs = (dict(_fields(v)) for n, v in _fields(entry[2]) if n == 2)
                info = next(o[2] for o in outputs if bytes(o[1]).decode() == output)
                tensor_name = bytes(dict(_fields(info))[1]).decode()
    if graph is None or tensor_name is None:
        raise ValueError(f"{saved_model}: no graph or no {signature}/{output} output")
    nodes: dict[str, tuple[str, list[str], memoryview | None]] = {}
    for number, node in _fields(graph):
        if number != 1:
            continue
        name, op, inputs, value = "", "", [], None
        for field, field_value in _fields(node):
            if field == 1:
                name = bytes(field_value).decode()
            elif field == 2:
                op = bytes(field_value).decode()
            elif field == 3:
                inputs.append(bytes(field_value).decode())
            elif field == 5:
                attr = dict(_fields(field_value))
                if bytes(attr[1]) == b"value":
                    value = attr.get(2)  # type: ignore[assignment]
        nodes[name] = (op, inputs, value)
    name = tensor_name.split(":")[0]
    while nodes[name][0] in ("Tile", "ExpandDims", "Identity"):  # classes = Tile(ExpandDims(Const), [n, 1])
        name = nodes[name][1][0].split(":")[0]
    op, _, value = nodes[name]
    if op != "Const" or value is None:
        raise ValueError(f"{saved_model}: {output} does not come from a constant ({name}: {op})")
    tensor = dict(_fields(value)).get(8)  # AttrValue.tensor
    if tensor is None:
        raise ValueError(f"{saved_model}: {name} holds no tensor")
    return [bytes(v) for n, v in _fields(tensor) if n == 8]  # TensorProto.string_val


def _flush(values: np.ndarray) -> np.ndarray:
    """Denormal float32 values set to 0 (the CPU's flush-to-zero mode, as TensorFlow sets it)."""
    values[np.abs(values) < np.finfo(np.float32).tiny] = 0
    return values


# --- the model ---------------------------------------------------------------------------------------


class GuesslangNumpy(Guesslang):
    """guesslang's trained model in numpy (float32, as TensorFlow): the same ``columns``, ``scores`` and ``best``."""

    def __init__(self, model_dir: Path) -> None:  # not Guesslang's: no TensorFlow
        weights = read_checkpoint(model_dir / "variables" / "variables")
        embedding, linear = weights[EMBEDDING], weights[LINEAR_WEIGHTS]
        #: one gather per text: each bucket's embedding row, then its linear weights (buckets × (70 + 54))
        self._table = np.concatenate((embedding, linear), axis=1)
        self._dim = embedding.shape[1]
        self._hidden = [(weights[f"{h}/kernel"], weights[f"{h}/bias"]) for h in HIDDEN]
        self._logits = (weights[f"{DNN_LOGITS}/kernel"], weights[f"{DNN_LOGITS}/bias"])
        self._linear_bias = weights[LINEAR_BIAS]
        self._buckets = bigram_buckets(embedding.shape[0])
        classes = read_classes(model_dir / "saved_model.pb")
        if len(classes) != self._logits[1].shape[0]:
            raise ValueError(f"{model_dir}: {len(classes)} labels for {self._logits[1].shape[0]} outputs")
        names = {ext: name for name, ext in json.loads((model_dir.parent / "languages.json").read_text()).items()}
        #: the guesslang labels (extensions) of each output column
        self.classes: list[str] = [c.decode() for c in classes]
        #: the Linguist names of each output column
        self.columns: list[tuple[str, ...]] = [GUESSLANG_LANGUAGES[names[c]] for c in self.classes]

    def features(self, text: bytes) -> tuple[np.ndarray, np.ndarray]:
        """The DNN's input (the mean embedding) and the linear part's sum of weights, float32, of one text.

        TensorFlow's ``SparseSegmentMean`` / ``SparseSegmentSum`` over the text's bigram buckets, in
        its order of float32 additions: the first ``r`` rows (``r = n % 8``, 8 for 0, 9 for 1), then
        groups of 8 summed apart and added one after the other; the mean is the first part times
        ``1 / n`` below 10 rows, the sum divided by ``n`` from 10. Its sum differs from an exact one
        by up to ~1e-3 on long texts, ~3e-5 in probability: the order is kept to give its numbers.
        """
        b = np.frombuffer(text[:GUESSLANG_BYTES], np.uint8).astype(np.intp)
        rows = np.take(self._table, self._buckets[(b[:-1] << 8) | b[1:]], axis=0)  # n × (embedding | linear)
        n, dim = len(rows), self._dim
        if n == 0:  # no bigram: TF fills the empty row with zeros
            out = np.zeros(self._table.shape[1], np.float32)
        elif n == 1:
            out = rows[0].copy()
        else:
            r = n & 7 or 8
            r = 9 if r == 1 else r
            out = rows[0] + rows[1]
            for i in range(2, r):
                out += rows[i]
            if n < 10:
                out[:dim] *= np.float32(1) / np.float32(n)
            groups = rows[r:].reshape(-1, 8, rows.shape[1])
            if len(groups):
                sums = groups[:, 0] + groups[:, 1]
                for i in range(2, 8):
                    sums += groups[:, i]
                # one after the other: numpy reduces a C-contiguous 2-D array along axis 0 row by row (not
                # pairwise, which it does only along the contiguous axis); the tests check TF's bits
                out = np.add.reduce(np.concatenate((out[None], sums)), axis=0)
            if n >= 10:
                out[:dim] /= np.float32(n)
        return out[:dim], out[dim:]

    def probabilities(self, texts: list[bytes]) -> np.ndarray:
        """The model's probabilities, float32 (texts × columns)."""
        if not texts:
            return np.zeros((0, len(self.columns)), np.float32)
        mean, linear = (np.stack(part) for part in zip(*map(self.features, texts), strict=True))
        hidden = mean
        for kernel, bias in self._hidden:
            hidden = np.maximum(hidden @ kernel + bias, np.float32(0))
        logits = (hidden @ self._logits[0] + self._logits[1]) + (linear + self._linear_bias)
        # TF's softmax: exp(logits - max) times the inverse of its sum, with denormals flushed to zero (as
        # TF runs its CPU kernels): an improbable label's probability is 0, never ~1e-40 (which ``best``
        # would turn into a share of 1 among candidates that all have 0)
        e = _flush(np.exp(logits - logits.max(axis=1, keepdims=True)))
        return _flush(e * (np.float32(1) / e.sum(axis=1, keepdims=True)))

    def scores(self, texts: list[bytes], batch: int) -> list[list[float]]:
        """The model's probabilities (one list per text, in ``columns`` order)."""
        out: list[list[float]] = []
        for start in range(0, len(texts), batch):
            out.extend(self.probabilities(texts[start : start + batch]).tolist())
        return out
