"""HEPMASS: particle collisions at mass 1000 (UCI), as MAF prepared it.

The files are ``hepmass/1000_train.csv`` and ``hepmass/1000_test.csv`` of MAF's data
archive (https://zenodo.org/record/1161203, ``data.tar.gz``; the UCI repository also has
them, gzipped, which is read too): comma-separated, a header line (``# label,f0,...``),
the class label in the first column. MAF's ``datasets/hepmass.py`` (``load_data``,
``load_data_no_discrete``, ``load_data_no_discrete_normalised``,
``load_data_no_discrete_normalised_as_array``) is reproduced step by step with NumPy, no
pandas needed:

1. read each file as ``pd.read_csv(..., index_col=False)`` does: the header line names the
   columns, and a row's fields beyond them are dropped;
2. keep the rows whose first column (the label) is 1 and drop that column; drop the test
   file's last column as well (MAF: "Because the data set is messed up!");
3. subtract the training rows' mean and divide by their standard deviation (pandas',
   ``ddof=1``; the sums are taken column by column as pandas takes them, so the values are
   pandas' to the last bit, unless pandas is set to use bottleneck, whose naive sums
   may differ in the last bits);
4. drop every feature whose *smallest* training value occurs more than 5 times: MAF's
   ``Counter`` test takes the count of the first key after sorting, which is the
   smallest value, not the most common one (MAF's HEPMASS has 21 dimensions left);
5. validation = the last ``int(0.1 N)`` training rows (315,123 / 35,013 training and
   validation rows, 174,987 test rows). No shuffle.

MAF's pandas arithmetic aligns the test columns with the training columns by *name*, so
its code is only sound when, after step 2, both files have the same column names in the
same order: a training header ``# label,f0,...,f26`` (any fields beyond it are dropped)
and a test header ``# label,f0,...,f26,mass``, say. This module checks that and refuses
other files, naming both lists (MAF's code would silently give columns of NaN, or
reorder them), and it refuses a constant training column (its standard deviation is 0,
MAF's division would give NaN).
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import List, NoReturn, Optional, Tuple

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
    say,
    tail_counts,
)

NAME = "hepmass"
#: MAF's threshold: a feature whose smallest value occurs more often is dropped.
MAX_REPEATS = 5


def _open_text(path: Path):  # type: ignore[no-untyped-def]
    if path.suffix == ".gz":
        return gzip.open(path, "rt", newline="")
    return open(path, "rt", newline="")


def _locate_error(path: Path, names: List[str], error: Exception) -> NoReturn:
    """Finds the first line NumPy could not read and raises a message naming it."""
    k = len(names)
    with _open_text(path) as f:
        f.readline()
        for line_no, line in enumerate(f, start=2):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split(",")
            if len(fields) < k:
                raise DataFormatError(
                    f"{path}, line {line_no}: {len(fields)} fields, but the header line names {k} columns"
                )
            for j, text in enumerate(fields[:k]):
                try:
                    float(text)
                except ValueError:
                    raise DataFormatError(
                        f"{path}, line {line_no}, column {j + 1} ({names[j]!r}): {text!r} is not a number"
                    ) from None
    raise DataFormatError(f"{path}: {error}") from error


def read_csv(path: Path) -> Tuple[List[str], np.ndarray]:
    """The column names and values of a HEPMASS CSV file, as
    ``pd.read_csv(path, index_col=False)`` reads them (fields beyond the header's names are
    dropped); refuses short rows and non-numbers, naming the line."""
    with _open_text(path) as f:
        header = f.readline().rstrip("\r\n")
    if not header:
        raise DataFormatError(f"{path}: empty file (expected a header line such as '# label,f0,f1,...')")
    names = header.split(",")
    try:
        values = np.loadtxt(
            path,
            delimiter=",",
            skiprows=1,
            usecols=range(len(names)),
            comments=None,
            ndmin=2,
            dtype=np.float64,
        )
    except ValueError as e:
        _locate_error(path, names, e)
    return names, values


def _pandas_mean_std(a: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``DataFrame.mean()`` and ``DataFrame.std()`` (``ddof=1``) of the columns of ``a``,
    computed as pandas computes them: on the columns stored contiguously (pandas' block
    layout), a two-pass variance."""
    cols = np.ascontiguousarray(a.T)  # one row per column, like a pandas float block
    n = cols.shape[1]
    mu = cols.sum(axis=1, dtype=np.float64) / n  # nanops.nanmean: values.sum(axis) / count
    sqr = (mu[:, None] - cols) ** 2  # nanops.nanvar: (avg - values) ** 2
    var = sqr.sum(axis=1, dtype=np.float64) / (n - 1)  # ... .sum(axis) / (count - ddof)
    return mu, np.sqrt(var)


def smallest_value_count(feature: np.ndarray) -> int:
    """MAF's ``np.array([v for k, v in sorted(Counter(feature).items())])[0]``: how often the
    smallest value occurs (``-0.0`` and ``0.0`` count as one value, as in a ``Counter``)."""
    return int(np.count_nonzero(feature == feature.min()))


def preprocess(
    train_names: List[str], train: np.ndarray, test_names: List[str], test: np.ndarray, where: str = "hepmass"
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, List[str]]:
    """MAF's HEPMASS steps on the two files' names and values: the training, validation and
    test arrays and the names of the features kept."""
    if train.shape[1] < 2 or test.shape[1] < 3:
        raise DataFormatError(f"{where}: too few columns (training {train.shape[1]}, test {test.shape[1]})")
    # load_data_no_discrete: data_train = data_train[data_train[data_train.columns[0]] == 1],
    # then data_train.drop(data_train.columns[0], axis=1); the same for data_test.
    train = train[train[:, 0] == 1][:, 1:]
    test = test[test[:, 0] == 1][:, 1:]
    test = test[:, :-1]  # data_test = data_test.drop(data_test.columns[-1], axis=1)
    names, test_kept = train_names[1:], test_names[1:-1]
    if names != test_kept:
        raise DataFormatError(
            f"{where}: after dropping the label column (and the test file's last column) the files' "
            f"columns differ: training {names}, test {test_kept}. MAF's pandas code aligns them by "
            "name, which here would give NaN columns or reorder them; expected the same names"
        )
    if train.shape[0] < 2:
        raise DataFormatError(f"{where}: {train.shape[0]} training rows of class 1; at least 2 are needed")
    # load_data_no_discrete_normalised: mu = data_train.mean(); s = data_train.std()
    mu, s = _pandas_mean_std(train)
    constant = [names[j] for j in np.flatnonzero(s == 0)]
    if constant:
        raise DataFormatError(
            f"{where}: the training column(s) {constant} are constant over the class-1 rows; "
            "MAF's normalisation would divide by a zero standard deviation"
        )
    train = (train - mu) / s  # data_train = (data_train - mu)/s
    test = (test - mu) / s  # data_test = (data_test - mu)/s
    check_finite(NAME, {"train": train, "test": test})
    # load_data_no_discrete_normalised_as_array: drop features whose smallest value repeats > 5 times.
    features_to_remove = [j for j in range(train.shape[1]) if smallest_value_count(train[:, j]) > MAX_REPEATS]
    keep = np.array([j for j in range(train.shape[1]) if j not in features_to_remove], dtype=np.intp)
    train, test = train[:, keep], test[:, keep]
    n_validate = tail_counts(train.shape[0], NAME)  # N_validate = int(N*0.1)
    data_validate = train[-n_validate:]  # data_validate = data_train[-N_validate:]
    data_train = train[0:-n_validate]  # data_train = data_train[0:-N_validate]
    return data_train, data_validate, test, [names[j] for j in keep]


def load(root: Optional[PathLike], progress: Progress = None) -> Splits:
    """HEPMASS from MAF's ``hepmass/1000_train.csv`` and ``hepmass/1000_test.csv``.

    Parameters
    ----------
    root : path
        The extracted archive's ``data/`` directory or its ``hepmass/`` directory (the
        files may also be gzipped: ``1000_train.csv.gz``).
    progress : callable, optional
        Receives progress messages.

    Returns
    -------
    Splits
        float64 arrays (21 columns on MAF's files).
    """
    found = []
    for stem in ("1000_train.csv", "1000_test.csv"):
        if root is not None and Path(root).is_file():
            raise FileNotFoundError(
                f"HEPMASS needs two files: give the directory that holds hepmass/{stem} "
                f"and its companion, not the file {root}"
            )
        found.append(
            find_file(
                root,
                [f"hepmass/{stem}", stem, f"hepmass/{stem}.gz", f"{stem}.gz"],
                dataset="HEPMASS",
                expected=f"hepmass/{stem}",
                where=MAF_ARCHIVE,
            )
        )
    train_path, test_path = found
    say(progress, f"reading {train_path}")
    train_names, train = read_csv(train_path)
    say(progress, f"reading {test_path}")
    test_names, test = read_csv(test_path)
    say(progress, "keeping class 1, standardising, dropping features with repeated smallest values")
    train, val, test, kept = preprocess(train_names, train, test_names, test, where=f"{train_path.parent}")
    train, val, test = as_f64(train), as_f64(val), as_f64(test)
    return Splits(
        NAME,
        train,
        val,
        test,
        info={
            "source": [str(train_path), str(test_path)],
            "reference": "MAF datasets/hepmass.py: load_data_no_discrete_normalised_as_array",
            "preprocessing": [
                "keep the rows of label 1 (first column); drop the label column and the test file's last column",
                "standardise by the training rows' mean and std (pandas, ddof=1)",
                f"drop features whose smallest training value occurs more than {MAX_REPEATS} times",
                "validation: last 10 % of the training rows (no shuffle)",
            ],
            "columns": kept,
        },
    )
