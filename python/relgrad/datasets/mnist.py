"""MNIST: 70,000 handwritten digits of 28x28 pixels (LeCun et al.), from the IDX files.

The files are ``train-images-idx3-ubyte.gz`` and ``t10k-images-idx3-ubyte.gz``, gzipped or
not (http://yann.lecun.com/exdb/mnist/; the paper's code downloads them from the CVDF
mirror https://storage.googleapis.com/cvdf-datasets/mnist/). Fashion-MNIST's files have
the same names and format and are read too. An IDX image file is the magic number
``0x00000803`` (unsigned bytes, 3 dimensions), the big-endian 32-bit counts of images,
rows and columns, then the pixels, image after image, row by row.

The splits follow the paper's code (``experiments/datasets/dataloaders.py``, ``MNIST``):
validation = the *last* ``VAL_IMAGES = 10000`` training images
(``train_data[-VAL_IMAGES:]``), training = the first 50,000, test = the 10,000 ``t10k``
images. The pixels stay uint8 (``(n, 28, 28)``, 256 levels); ``relgrad train`` and
:class:`relgrad.Flow` dequantise and logit-transform them themselves and report bits per
dimension as ``-LL / (784 ln 2)`` of the dequantised pixels on ``[0, 256)^784`` (the
paper's code used ``(x/255 + U/255) / max`` and a logit with ``alpha = 1e-6``).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import Optional

import numpy as np

from ._common import DataFormatError, PathLike, Progress, Splits, say

NAME = "mnist"
URL = "http://yann.lecun.com/exdb/mnist/ (mirror: https://storage.googleapis.com/cvdf-datasets/mnist/)"
#: The paper's ``VAL_IMAGES``: the last training images, held out for validation.
VAL_IMAGES = 10000
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


def read_images(path: Path) -> np.ndarray:
    """The images of an IDX image file (gzipped or not), ``(n, rows, cols)`` uint8."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:
        raise DataFormatError(f"{path}: truncated or damaged gzip file ({type(e).__name__}: {e})") from e
    magic = struct.unpack(">I", raw[:4])[0] if len(raw) >= 4 else None
    if magic == LABELS_MAGIC:
        raise DataFormatError(f"{path}: an IDX label file (idx1); expected the images (idx3-ubyte)")
    if magic is not None and magic != IMAGES_MAGIC:
        raise DataFormatError(
            f"{path}: magic number 0x{magic:08x}, expected 0x{IMAGES_MAGIC:08x} (IDX, unsigned bytes, 3 dimensions)"
        )
    if len(raw) < 16:
        raise DataFormatError(f"{path}: truncated header: {len(raw)} bytes, an IDX image file starts with 16")
    n, rows, cols = struct.unpack(">III", raw[4:16])
    per_image = rows * cols
    size = 16 + n * per_image
    if per_image == 0:
        raise DataFormatError(f"{path}: images of {rows} x {cols} pixels")
    if len(raw) < size:
        full = (len(raw) - 16) // per_image
        raise DataFormatError(
            f"{path}: truncated at image {full + 1} of {n}: an image is {rows} x {cols} = {per_image} bytes, "
            f"so the data should have {size} bytes (16 of header); it has {len(raw)}"
        )
    if len(raw) > size:
        raise DataFormatError(f"{path}: {len(raw) - size} bytes after its {n} images (expected {size} bytes)")
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows, cols).copy()


def _find(root: Path, stem: str) -> Path:
    names = [stem, f"{stem}.gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"]
    dirs = [root, root / "mnist", root / "MNIST" / "raw"]
    for d in dirs:
        for n in names:
            if (d / n).is_file():
                return d / n
    raise FileNotFoundError(
        f"MNIST: {stem}[.gz] not found in {', '.join(str(d) for d in dirs)}; download: {URL}"
    )


def load(root: Optional[PathLike], progress: Progress = None) -> Splits:
    """MNIST from its IDX image files.

    Parameters
    ----------
    root : path
        The directory holding ``train-images-idx3-ubyte[.gz]`` and
        ``t10k-images-idx3-ubyte[.gz]`` (or its ``mnist/`` or ``MNIST/raw/`` subdirectory).
    progress : callable, optional
        Receives progress messages.

    Returns
    -------
    Splits
        uint8 arrays of shape ``(n, 28, 28)``: 50,000 training, 10,000 validation (the
        last training images) and 10,000 test images; ``levels`` 256.
    """
    if root is None or not Path(root).is_dir():
        raise FileNotFoundError(
            f"MNIST: give the directory holding train-images-idx3-ubyte.gz and t10k-images-idx3-ubyte.gz"
            f"{'' if root is None else f' ({root} is not a directory)'}; download: {URL}"
        )
    train_path = _find(Path(root), "train-images-idx3-ubyte")
    test_path = _find(Path(root), "t10k-images-idx3-ubyte")
    say(progress, f"reading {train_path}")
    train_all = read_images(train_path)
    say(progress, f"reading {test_path}")
    test = read_images(test_path)
    if train_all.shape[1:] != test.shape[1:]:
        raise DataFormatError(
            f"MNIST: training images are {train_all.shape[1:]}, test images {test.shape[1:]}"
        )
    if train_all.shape[0] <= VAL_IMAGES:
        raise DataFormatError(
            f"MNIST: {train_all.shape[0]} training images, fewer than VAL_IMAGES + 1 = {VAL_IMAGES + 1}"
        )
    val = train_all[-VAL_IMAGES:]  # dataloaders.py: val_data = train_data[-VAL_IMAGES:]
    train = train_all[:-VAL_IMAGES]  # train_data = train_data[:-VAL_IMAGES]
    return Splits(
        NAME,
        np.ascontiguousarray(train),
        np.ascontiguousarray(val),
        test,
        levels=256,
        shape=tuple(int(s) for s in train_all.shape[1:]),
        info={
            "source": [str(train_path), str(test_path)],
            "reference": "relative-gradient-jacobian experiments/datasets/dataloaders.py: MNIST, VAL_IMAGES = 10000",
            "preprocessing": [
                f"validation: the last {VAL_IMAGES} training images; training: the first {train.shape[0]}",
                "test: the t10k images; pixels uint8, no dequantisation (relgrad's logit preprocessing dequantises)",
            ],
        },
    )
