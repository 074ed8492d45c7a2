"""What every loader shares: the :class:`Splits` it returns, finding the publisher's files,
optional dependencies, MAF's tail split, and the errors."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

PathLike = Union[str, "os.PathLike[str]"]
#: Receives one progress message at a time (the command line prints them).
Progress = Optional[Callable[[str], None]]

#: Where the files of the MAF data sets (POWER, GAS, HEPMASS, MINIBOONE, BSDS300) are
#: published: one archive, ``data.tar.gz``, by Papamakarios et al. (2017).
MAF_ARCHIVE = "https://zenodo.org/record/1161203 (data.tar.gz)"


class DataFormatError(ValueError):
    """A publisher's file does not hold what its format promises (a truncated file, a
    bad record, a missing column): the message names the file and the place."""


@dataclass(frozen=True)
class Splits:
    """The training, validation and test rows of a data set.

    Attributes
    ----------
    name : str
        The data set's name, as :func:`relgrad.datasets.load` knows it.
    train, val, test : ndarray
        Tabular sets: float64 arrays of shape ``(n, d)``, C order. Image sets: uint8
        arrays of shape ``(n,) + shape``, the pixels as published (``0..levels-1``).
    levels : int or None
        Quantisation levels of the pixels of an image set (256), ``None`` otherwise.
    shape : tuple of int or None
        The shape of one image (``(28, 28)``, ``(32, 32, 3)``), ``None`` for tabular sets.
    info : dict
        Where the rows come from: ``source`` (the files read), ``preprocessing`` (what
        was done to them, step by step) and ``reference`` (the official code followed).
    """

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    levels: Optional[int] = None
    shape: Optional[Tuple[int, ...]] = None
    info: Dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"Splits({self.name!r}, train={self.train.shape}, val={self.val.shape}, "
            f"test={self.test.shape}, dtype={self.train.dtype})"
        )


def say(progress: Progress, message: str) -> None:
    """Passes ``message`` to ``progress`` when there is one."""
    if progress is not None:
        progress(message)


def optional_import(module: str, dataset: str, why: str) -> Any:
    """Imports an optional dependency, or raises an ``ImportError`` saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"the {dataset} data set needs {module} ({why}): pip install {module} "
            f"(or pip install 'relgrad[datasets]')"
        ) from e


def find_file(
    root: Optional[PathLike],
    candidates: Sequence[str],
    *,
    dataset: str,
    expected: str,
    where: str,
) -> Path:
    """The first of ``candidates`` (paths relative to ``root``) that exists; ``root`` may
    also be the file itself.

    Raises ``FileNotFoundError`` naming the file expected, the places looked at and where
    to download it.
    """
    if root is None:
        raise FileNotFoundError(
            f"the {dataset} data set is read from the publisher's files: give the directory "
            f"that holds {expected} (download: {where})"
        )
    base = Path(root)
    if base.is_file():
        return base
    if not base.exists():
        raise FileNotFoundError(
            f"{base} does not exist (expected a directory holding {expected}; download: {where})"
        )
    for c in candidates:
        p = base / c
        if p.is_file():
            return p
    looked = ", ".join(str(base / c) for c in candidates)
    raise FileNotFoundError(f"{dataset}: {expected} not found (looked for {looked}); download: {where}")


def load_npy(path: Path, dataset: str) -> np.ndarray:
    """``np.load`` with the file named in its errors; refuses object arrays (pickles)."""
    try:
        a = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise DataFormatError(f"{path}: not a plain .npy array of numbers ({e})") from e
    except (OSError, EOFError) as e:
        raise DataFormatError(f"{path}: cannot be read as a .npy file ({e})") from e
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "fiu":
        raise DataFormatError(
            f"{path}: expected a numeric array for {dataset}, found dtype {getattr(a, 'dtype', type(a))}"
        )
    return a


def tail_counts(n: int, dataset: str, fraction: float = 0.1) -> int:
    """``int(fraction * n)`` rows for MAF's tail splits (``data[-N:]``), refusing ``0``: MAF's
    ``data[-0:]`` would be every row and ``data[0:-0]`` none."""
    k = int(fraction * n)
    if k == 0:
        raise DataFormatError(
            f"{dataset}: {n} rows are too few to split: {fraction:g} of them rounds down to 0 "
            f"(MAF's data[-0:] would take every row)"
        )
    return k


def tail_split(data: np.ndarray, dataset: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MAF's tail split, written alike in ``power.load_data_split_with_noise``,
    ``gas.load_data_and_clean_and_split`` and ``miniboone.load_data``: test = the last
    ``int(0.1 N)`` rows, validation = the last ``int(0.1 N')`` of the ``N'`` left,
    training = the rest; returns ``(train, val, test)``."""
    n_test = tail_counts(data.shape[0], dataset)  # N_test = int(0.1*data.shape[0])
    data_test = data[-n_test:]  # data_test = data[-N_test:]
    data = data[0:-n_test]  # data = data[0:-N_test]
    n_validate = tail_counts(data.shape[0], dataset)  # N_validate = int(0.1*data.shape[0])
    data_validate = data[-n_validate:]  # data_validate = data[-N_validate:]
    data_train = data[0:-n_validate]  # data_train = data[0:-N_validate]
    return data_train, data_validate, data_test


def check_finite(name: str, arrays: Dict[str, npt.NDArray[np.floating]]) -> None:
    """Refuses NaN and infinities, naming the split, the row and the column (from 0)."""
    for split, a in arrays.items():
        bad = ~np.isfinite(a)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise DataFormatError(
                f"{name}: the {split} split has a non-finite value at row {i}, column {j} "
                f"after preprocessing ({a[i, j]}); a constant column divides by a zero "
                f"standard deviation"
            )


def as_f64(a: npt.ArrayLike) -> np.ndarray:
    """A float64 C-ordered array (a copy only when needed)."""
    return np.ascontiguousarray(a, dtype=np.float64)
