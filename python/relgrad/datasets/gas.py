"""GAS: gas sensor array under dynamic gas mixtures (UCI, ethylene and CO), as MAF
prepared it.

The file is ``gas/ethylene_CO.pickle`` of MAF's data archive
(https://zenodo.org/record/1161203, ``data.tar.gz``): a pickled pandas ``DataFrame`` with
the columns ``Time``, ``Meth``, ``Eth`` and 16 sensor readings (1,052,065 rows, a quarter of
the UCI file, sampled by MAF when writing it). Reading it needs pandas
(``pip install pandas``). MAF's ``datasets/gas.py`` (``load_data``,
``get_correlation_numbers``, ``load_data_and_clean``, ``load_data_and_clean_and_split``) is
reproduced step by step with pandas' own operations, so the result equals MAF's arrays
before its final ``astype(np.float32)``:

1. drop the columns ``Meth``, ``Eth`` and ``Time``;
2. while some column has a Pearson correlation above 0.98 with another
   (``DataFrame.corr() > 0.98`` counted per row, the diagonal included, exceeds 1), drop
   the first such column and recompute (8 sensor columns remain on MAF's file);
3. subtract the mean and divide by pandas' standard deviation (``ddof=1``), both over
   every row, the test rows included;
4. test = the last ``int(0.1 N)`` rows, validation = the last ``int(0.1 N')`` of the
   ``N'`` rows left, training = the rest (852,174 / 94,685 / 105,206 rows); no shuffle.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

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
    optional_import,
    say,
    tail_split,
)

NAME = "gas"
#: Columns MAF drops before anything else.
DROPPED = ("Meth", "Eth", "Time")


def _correlation_numbers(data: Any) -> np.ndarray:
    """MAF's ``get_correlation_numbers``: per column, how many columns (itself included)
    it correlates with above 0.98."""
    C = data.corr()  # C = data.corr()
    A = C > 0.98  # A = C > 0.98
    return A.values.sum(axis=1)  # B = A.values.sum(axis=1)


def clean(data: Any, progress: Progress = None) -> Tuple[Any, List[str]]:
    """MAF's ``load_data`` (after ``read_pickle``) and ``load_data_and_clean`` on a
    ``DataFrame`` (not modified): the normalised frame and the correlated columns dropped."""
    missing = [c for c in DROPPED if c not in data.columns]
    if missing:
        raise DataFormatError(
            f"gas: the DataFrame has no column {', '.join(repr(c) for c in missing)} "
            f"(MAF's ethylene_CO.pickle has Time, Meth, Eth and 16 sensors; found {list(data.columns)})"
        )
    # (MAF drops in place; pandas 3.1 deprecates inplace=True, a new frame is the same.)
    data = data.drop("Meth", axis=1)  # load_data: data.drop("Meth", axis=1, inplace=True)
    data = data.drop("Eth", axis=1)  # data.drop("Eth", axis=1, inplace=True)
    data = data.drop("Time", axis=1)  # data.drop("Time", axis=1, inplace=True)
    non_numeric = [c for c in data.columns if data[c].dtype.kind not in "fiu"]
    if non_numeric:
        raise DataFormatError(f"gas: the sensor columns must be numeric; {non_numeric} are not")
    dropped: List[str] = []
    B = _correlation_numbers(data)  # load_data_and_clean: B = get_correlation_numbers(data)
    while np.any(B > 1):  # while np.any(B > 1):
        col_to_remove = np.where(B > 1)[0][0]  # col_to_remove = np.where(B > 1)[0][0]
        col_name = data.columns[col_to_remove]  # col_name = data.columns[col_to_remove]
        say(progress, f"dropping column {col_name!r} (correlation > 0.98 with another)")
        dropped.append(str(col_name))
        data = data.drop(col_name, axis=1)  # data.drop(col_name, axis=1, inplace=True)
        B = _correlation_numbers(data)  # B = get_correlation_numbers(data)
    data = (data - data.mean()) / data.std()  # data = (data-data.mean())/data.std()
    return data, dropped


def split(data: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MAF's ``load_data_and_clean_and_split`` after ``.values``: the tail splits."""
    return tail_split(data, NAME)  # the same tail splits, written with data_train


def load(root: Optional[PathLike], progress: Progress = None) -> Splits:
    """GAS from MAF's ``gas/ethylene_CO.pickle`` (needs pandas).

    Parameters
    ----------
    root : path
        The extracted archive's ``data/`` directory, its ``gas/`` directory, or the
        pickle itself.
    progress : callable, optional
        Receives progress messages.

    Returns
    -------
    Splits
        float64 arrays (8 columns on MAF's file).
    """
    pd = optional_import("pandas", "GAS", "its file is a pickled pandas DataFrame")
    path = find_file(
        root,
        ["gas/ethylene_CO.pickle", "ethylene_CO.pickle"],
        dataset="GAS",
        expected="gas/ethylene_CO.pickle",
        where=MAF_ARCHIVE,
    )
    say(progress, f"reading {path} (a pickled DataFrame: only read files you trust)")
    try:
        frame = pd.read_pickle(path)  # load_data: data = pd.read_pickle(file)
    except Exception as e:  # pickles fail in many ways (EOFError, UnpicklingError, ...)
        raise DataFormatError(
            f"{path}: pandas {pd.__version__} cannot read it as a pickled DataFrame "
            f"({type(e).__name__}: {e}); is the file complete?"
        ) from e
    if not isinstance(frame, pd.DataFrame):
        raise DataFormatError(f"{path}: expected a pickled pandas DataFrame, found {type(frame).__name__}")
    say(progress, f"{frame.shape[0]} rows, {frame.shape[1]} columns; filtering correlated columns")
    data, dropped = clean(frame, progress)
    columns = [str(c) for c in data.columns]
    train, val, test = split(as_f64(data.values))  # data = load_data_and_clean(file).values
    train, val, test = as_f64(train), as_f64(val), as_f64(test)
    check_finite(NAME, {"train": train, "val": val, "test": test})
    return Splits(
        NAME,
        train,
        val,
        test,
        info={
            "source": [str(path)],
            "reference": "MAF datasets/gas.py: load_data, load_data_and_clean, load_data_and_clean_and_split",
            "preprocessing": [
                "drop the columns Meth, Eth, Time",
                f"drop columns correlated above 0.98 with another, the first first, recomputing: {dropped}",
                "standardise by the mean and std (pandas, ddof=1) of every row, test rows included",
                "test: last 10 % of the rows; validation: last 10 % of the rest (no shuffle)",
            ],
            "columns": columns,
        },
    )
