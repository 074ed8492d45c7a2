"""POWER: household electric power consumption (UCI), as MAF prepared it.

The file is ``power/data.npy`` of MAF's data archive (Papamakarios et al., 2017:
https://zenodo.org/record/1161203, ``data.tar.gz``): 2,049,280 rows of 8 columns. MAF's
``datasets/power.py`` (``load_data_split_with_noise``, ``load_data_normalised``) is
reproduced step by step, with its legacy ``np.random.RandomState(42)`` and the same order
of draws, so the result equals MAF's arrays before its final ``astype(np.float32)``:

1. shuffle the rows (``rng.shuffle``);
2. delete column 3, then column 1 (6 columns remain);
3. add noise: ``0.01 U`` (drawn first) to column 1, ``0.001 U`` (drawn second) to column 0,
   ``U`` (drawn third, 3 columns) to columns 2-4, nothing to column 5;
4. test = the last ``int(0.1 N)`` rows, validation = the last ``int(0.1 N')`` of the
   ``N'`` rows left, training = the rest (1,659,917 / 184,435 / 204,928 rows);
5. subtract the mean and divide by the standard deviation (NumPy's, ``ddof=0``) of the
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

NAME = "power"
#: Columns of ``power/data.npy``: two are deleted and the 6 left get MAF's noise.
COLUMNS = 8


def split_with_noise(data: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MAF's ``load_data_split_with_noise`` on the array of ``data.npy`` (not modified)."""
    if data.ndim != 2 or data.shape[1] != COLUMNS:
        raise DataFormatError(
            f"power: expected the {COLUMNS}-column array of MAF's power/data.npy, got shape {data.shape}"
        )
    rng = np.random.RandomState(42)  # load_data_split_with_noise: rng = np.random.RandomState(42)
    data = data.copy()  # (MAF shuffles the array np.load gave it; the caller's stays as it is)
    rng.shuffle(data)  # rng.shuffle(data)
    n = data.shape[0]
    data = np.delete(data, 3, axis=1)  # data = np.delete(data, 3, axis=1)
    data = np.delete(data, 1, axis=1)  # data = np.delete(data, 1, axis=1)
    voltage_noise = 0.01 * rng.rand(n, 1)  # voltage_noise = 0.01*rng.rand(N, 1)
    gap_noise = 0.001 * rng.rand(n, 1)  # gap_noise = 0.001*rng.rand(N, 1)
    sm_noise = rng.rand(n, 3)  # sm_noise = rng.rand(N, 3)
    time_noise = np.zeros((n, 1))  # time_noise = np.zeros((N, 1))
    noise = np.hstack((gap_noise, voltage_noise, sm_noise, time_noise))  # noise = np.hstack(...)
    data = data + noise  # data = data + noise
    return tail_split(data, NAME)  # N_test, N_validate: the tail splits


def normalise(
    train: np.ndarray, val: np.ndarray, test: np.ndarray
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MAF's ``load_data_normalised`` (power and miniboone): the mean and standard deviation
    (``ddof=0``) of the training and validation rows together."""
    data = np.vstack((train, val))  # data = np.vstack((data_train, data_validate))
    mu = data.mean(axis=0)  # mu = data.mean(axis=0)
    s = data.std(axis=0)  # s = data.std(axis=0)
    return (train - mu) / s, (val - mu) / s, (test - mu) / s


def load(root: Optional[PathLike], progress: Progress = None) -> Splits:
    """POWER from MAF's ``power/data.npy``.

    Parameters
    ----------
    root : path
        The extracted archive's ``data/`` directory, its ``power/`` directory, or the
        ``data.npy`` file itself.
    progress : callable, optional
        Receives progress messages.

    Returns
    -------
    Splits
        float64 arrays with 6 columns.
    """
    path = find_file(
        root, ["power/data.npy", "data.npy"], dataset="POWER", expected="power/data.npy", where=MAF_ARCHIVE
    )
    say(progress, f"reading {path}")
    data = load_npy(path, "POWER")
    say(progress, f"shuffling {data.shape[0]} rows and adding MAF's noise (RandomState(42))")
    train, val, test = normalise(*split_with_noise(data))
    train, val, test = as_f64(train), as_f64(val), as_f64(test)
    check_finite(NAME, {"train": train, "val": val, "test": test})
    return Splits(
        NAME,
        train,
        val,
        test,
        info={
            "source": [str(path)],
            "reference": "MAF datasets/power.py: load_data_split_with_noise, load_data_normalised",
            "preprocessing": [
                "shuffle the rows with np.random.RandomState(42)",
                "delete column 3, then column 1",
                "add uniform noise (0.001 U to column 0, 0.01 U to column 1, U to columns 2-4), "
                "drawn from the same RandomState in MAF's order",
                "test: last 10 % of the rows; validation: last 10 % of the rest",
                "standardise by the mean and std (ddof=0) of training + validation rows",
            ],
        },
    )
