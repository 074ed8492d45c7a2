"""MINIBOONE: MiniBooNE particle identification (UCI), as MAF prepared it.

The file is ``miniboone/data.npy`` of MAF's data archive (https://zenodo.org/record/1161203,
``data.tar.gz``): 36,488 rows of 43 columns (MAF already removed outliers and features
with many repeated values when writing it). MAF's ``datasets/miniboone.py``
(``load_data``, ``load_data_normalised``) is reproduced step by step:

1. test = the last ``int(0.1 N)`` rows, validation = the last ``int(0.1 N')`` of the
   ``N'`` rows left, training = the rest (29,556 / 3,284 / 3,648 rows); no shuffle;
2. subtract the mean and divide by the standard deviation (NumPy's, ``ddof=0``) of the
   training and validation rows together.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from ._common import (
    MAF_ARCHIVE,
    DataFormatError,
    PathLike,
    Progress,
    Splits,
    as_f64,
    check_finite,
    find_file,
    load_npy,
    say,
    tail_split,
)
from .power import normalise

NAME = "miniboone"


def split(data: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MAF's ``load_data`` (miniboone) after ``np.load``: the tail splits, no shuffle."""
    if data.ndim != 2:
        raise DataFormatError(f"miniboone: expected a 2-D array (rows x features), got shape {data.shape}")
    return tail_split(data, NAME)


def load(root: Optional[PathLike], progress: Progress = None) -> Splits:
    """MINIBOONE from MAF's ``miniboone/data.npy``.

    Parameters
    ----------
    root : path
        The extracted archive's ``data/`` directory, its ``miniboone/`` directory, or the
        ``data.npy`` file itself.
    progress : callable, optional
        Receives progress messages.

    Returns
    -------
    Splits
        float64 arrays with 43 columns.
    """
    path = find_file(
        root,
        ["miniboone/data.npy", "data.npy"],
        dataset="MINIBOONE",
        expected="miniboone/data.npy",
        where=MAF_ARCHIVE,
    )
    say(progress, f"reading {path}")
    data = load_npy(path, "MINIBOONE")
    train, val, test = normalise(*split(data))  # load_data_normalised
    train, val, test = as_f64(train), as_f64(val), as_f64(test)
    check_finite(NAME, {"train": train, "val": val, "test": test})
    return Splits(
        NAME,
        train,
        val,
        test,
        info={
            "source": [str(path)],
            "reference": "MAF datasets/miniboone.py: load_data, load_data_normalised",
            "preprocessing": [
                "test: last 10 % of the rows; validation: last 10 % of the rest (no shuffle)",
                "standardise by the mean and std (ddof=0) of training + validation rows",
            ],
        },
    )
