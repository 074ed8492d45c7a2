"""CIFAR-10: 60,000 colour images of 32x32 pixels (Krizhevsky, 2009).

Download from https://www.cs.toronto.edu/~kriz/cifar.html either distributed form, as the
archive or extracted:

- the binary version, ``cifar-10-binary.tar.gz`` (``cifar-10-batches-bin/``:
  ``data_batch_1.bin`` ... ``data_batch_5.bin``, ``test_batch.bin``): 10,000 records per
  file, each 1 label byte then 3,072 pixel bytes, channel-major (1,024 red, 1,024 green,
  1,024 blue, each row by row);
- the Python version, ``cifar-10-python.tar.gz`` (``cifar-10-batches-py/``:
  ``data_batch_1`` ... ``data_batch_5``, ``test_batch``; MAF's archive has the same files
  in ``cifar10/``): pickled dicts whose ``b'data'`` is a 10000 x 3072 uint8 array in the
  same layout. They are unpickled by a restricted unpickler that builds nothing but NumPy
  arrays and plain Python values.

Archives are read with ``tarfile`` without extracting anything to disk.

The splits follow the paper's code (``experiments/datasets/dataloaders.py``, ``CIFAR``):
validation = the *first* ``VAL_IMAGES = 5000`` training images (``train_data[0:VAL_IMAGES]``),
test = ``test_batch``. The paper's training set is ``train_data[0:len - VAL_IMAGES]``,
which *includes* the validation images (and was drawn from a shuffled TFDS stream, then
doubled with horizontal flips); here the training set is the other 45,000 images, in file
order, disjoint from the validation images, with no flips (``x[:, :, ::-1]`` adds them).

The pixels stay uint8, each image ``32 x 32 x 3`` (height, width, channel: TFDS's layout,
which the paper's code flattened), 256 levels. ``relgrad train`` and :class:`relgrad.Flow`
dequantise and logit-transform 8-bit pixels themselves (``--preprocess auto``) and report
the log-likelihood of the dequantised pixels on ``[0, 256)^3072`` and bits per dimension
``-LL / (3072 ln 2)``, the usual measure. (The paper's code used its own transform:
``(x/255 + U/255) / max``, then a logit with ``alpha = 0.05``.)
"""

from __future__ import annotations

import codecs
import io
import pickle
import tarfile
import zlib
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ._common import DataFormatError, PathLike, Progress, Splits, say

NAME = "cifar10"
URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
#: Images in every distributed batch file.
IMAGES_PER_BATCH = 10000
#: The paper's ``VAL_IMAGES``: the first training images, held out for validation.
VAL_IMAGES = 5000
#: Bytes of one image and one record of the binary version.
PIXELS = 3 * 32 * 32
RECORD = 1 + PIXELS
TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
TEST = "test_batch"

try:  # NumPy >= 2
    from numpy._core.multiarray import _reconstruct, scalar
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import _reconstruct, scalar  # type: ignore[no-redef]

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): scalar,
    ("numpy._core.multiarray", "scalar"): scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # how protocol 2 stores bytes
}


class _Refused(pickle.UnpicklingError):
    """The pickle asks for something a CIFAR batch does not hold."""


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles NumPy arrays and plain values, nothing else (no code runs)."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"refusing to unpickle {module}.{name} (not part of a CIFAR batch)") from None


def parse_binary(buf: bytes, where: str) -> np.ndarray:
    """The images of one batch of the binary version, ``(n, 32, 32, 3)`` uint8."""
    n, size = IMAGES_PER_BATCH, IMAGES_PER_BATCH * RECORD
    if len(buf) < size:
        full = len(buf) // RECORD
        raise DataFormatError(
            f"{where}: truncated at record {full + 1} of {n}: a record is {RECORD} bytes (1 label "
            f"byte, then {PIXELS} pixel bytes), so the file should have {size} bytes; it has {len(buf)}"
        )
    if len(buf) > size:
        raise DataFormatError(
            f"{where}: {len(buf) - size} bytes after its {n} records of {RECORD} bytes (expected {size} bytes)"
        )
    records = np.frombuffer(buf, dtype=np.uint8).reshape(n, RECORD)
    labels = records[:, 0]
    if labels.max() > 9:
        i = int(np.argmax(labels > 9))
        raise DataFormatError(
            f"{where}: record {i + 1} of {n} starts with the label byte {labels[i]}, expected 0..9 "
            "(a damaged file, or CIFAR-100's binary format, whose records have two label bytes)"
        )
    return np.ascontiguousarray(records[:, 1:].reshape(n, 3, 32, 32).transpose(0, 2, 3, 1))


def parse_pickle(buf: bytes, where: str) -> np.ndarray:
    """The images of one batch of the Python version, ``(n, 32, 32, 3)`` uint8."""
    try:
        batch = _ArrayUnpickler(io.BytesIO(buf), encoding="bytes").load()
    except _Refused as e:
        raise DataFormatError(f"{where}: not a CIFAR-10 batch: {e}") from e
    except Exception as e:  # a damaged pickle fails in many ways (EOFError, KeyError, ...)
        raise DataFormatError(f"{where}: truncated or damaged pickle ({type(e).__name__}: {e})") from e
    data = batch.get(b"data", batch.get("data")) if isinstance(batch, dict) else None
    if data is None:
        raise DataFormatError(
            f"{where}: expected a pickled dict with the key b'data', found {type(batch).__name__}"
        )
    if not (
        isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.shape == (IMAGES_PER_BATCH, PIXELS)
    ):
        found = (
            f"{data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else type(data).__name__
        )
        raise DataFormatError(
            f"{where}: b'data' should be a uint8 array of shape ({IMAGES_PER_BATCH}, {PIXELS}), found {found}"
        )
    return np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def _read_archive(path: Path, progress: Progress) -> Tuple[Dict[str, bytes], str]:
    """The batch files of a distributed archive, by base name, and the format."""
    wanted = set(TRAIN + [TEST]) | {f"{b}.bin" for b in TRAIN + [TEST]}
    found: Dict[str, bytes] = {}
    say(progress, f"reading {path} (without extracting it)")
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted:
                    f = tar.extractfile(member)
                    assert f is not None
                    found[base] = f.read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise DataFormatError(f"{path}: truncated or damaged archive ({type(e).__name__}: {e})") from e
    binary = any(k.endswith(".bin") for k in found)
    names = [f"{b}.bin" for b in TRAIN + [TEST]] if binary else TRAIN + [TEST]
    missing = [n for n in names if n not in found]
    if missing:
        raise DataFormatError(
            f"{path}: the archive lacks {', '.join(missing)} (expected cifar-10-binary.tar.gz or "
            f"cifar-10-python.tar.gz from {URL})"
        )
    return {n.replace(".bin", ""): found[n] for n in names}, "binary" if binary else "python"


def _locate(root: Optional[PathLike]) -> Tuple[Path, str]:
    """The archive or directory to read and its format ("archive", "binary", "python")."""
    if root is None:
        raise FileNotFoundError(
            f"CIFAR-10 is read from its distributed files: give their directory (download: {URL})"
        )
    base = Path(root)
    if base.is_file():
        return base, "archive"
    if not base.is_dir():
        raise FileNotFoundError(f"{base} does not exist (download CIFAR-10 from {URL})")
    dirs = [
        ("cifar-10-batches-bin", "binary"),
        (".", "binary"),
        ("cifar-10-batches-py", "python"),
        (".", "python"),
        ("cifar10", "python"),
    ]
    for sub, kind in dirs:
        first = base / sub / ("data_batch_1.bin" if kind == "binary" else "data_batch_1")
        if first.is_file():
            return base / sub, kind
    for archive in ("cifar-10-binary.tar.gz", "cifar-10-python.tar.gz"):
        if (base / archive).is_file():
            return base / archive, "archive"
    raise FileNotFoundError(
        f"CIFAR-10: no batch files in {base} (looked for cifar-10-batches-bin/data_batch_1.bin, "
        f"cifar-10-batches-py/data_batch_1, data_batch_1[.bin], cifar10/data_batch_1, "
        f"cifar-10-binary.tar.gz, cifar-10-python.tar.gz); download: {URL}"
    )


def load(root: Optional[PathLike], progress: Progress = None) -> Splits:
    """CIFAR-10 from either distributed form, extracted or as the archive.

    Parameters
    ----------
    root : path
        An archive (``cifar-10-binary.tar.gz``, ``cifar-10-python.tar.gz``), or a directory
        holding one, or holding ``cifar-10-batches-bin/``, ``cifar-10-batches-py/``, MAF's
        ``cifar10/``, or the batch files themselves.
    progress : callable, optional
        Receives progress messages.

    Returns
    -------
    Splits
        uint8 arrays of shape ``(n, 32, 32, 3)``: 45,000 training, 5,000 validation (the
        first training images) and 10,000 test images; ``levels`` 256.
    """
    where, kind = _locate(root)
    if kind == "archive":
        blobs, kind = _read_archive(where, progress)
        label = {b: f"{where}:{b}" for b in blobs}
    else:
        blobs, label = {}, {}
        for b in TRAIN + [TEST]:
            p = where / (f"{b}.bin" if kind == "binary" else b)
            if not p.is_file():
                raise FileNotFoundError(
                    f"CIFAR-10: {p} is missing (the {kind} version has 6 batch files; download: {URL})"
                )
            say(progress, f"reading {p}")
            blobs[b], label[b] = p.read_bytes(), str(p)
    parse = parse_binary if kind == "binary" else parse_pickle
    batches: List[np.ndarray] = [parse(blobs[b], label[b]) for b in TRAIN]
    train_all = np.concatenate(batches)
    test = parse(blobs[TEST], label[TEST])
    if train_all.shape[0] <= VAL_IMAGES:
        raise DataFormatError(
            f"CIFAR-10: {train_all.shape[0]} training images, fewer than VAL_IMAGES + 1 = {VAL_IMAGES + 1}"
        )
    val = train_all[:VAL_IMAGES]  # dataloaders.py: val_data = train_data[0:VAL_IMAGES]
    train = train_all[VAL_IMAGES:]  # (the paper's train_data[0:len - VAL_IMAGES] overlaps val)
    return Splits(
        NAME,
        np.ascontiguousarray(train),
        np.ascontiguousarray(val),
        test,
        levels=256,
        shape=(32, 32, 3),
        info={
            "source": [str(where)] if where.is_file() else [label[b] for b in TRAIN + [TEST]],
            "format": f"CIFAR-10 {kind} version",
            "reference": "relative-gradient-jacobian experiments/datasets/dataloaders.py: CIFAR, VAL_IMAGES = 5000",
            "preprocessing": [
                "images in file order, batches 1 to 5; pixels uint8, laid out height x width x channel",
                f"validation: the first {VAL_IMAGES} training images; training: the other "
                f"{train.shape[0]} (disjoint; the paper's training set overlapped its validation set)",
                "test: test_batch; no dequantisation, no flips (relgrad's logit preprocessing dequantises)",
            ],
        },
    )
