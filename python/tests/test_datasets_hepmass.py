"""relgrad.datasets: HEPMASS. Small CSV files in the layout MAF's code implies; the loader
(NumPy only) must give what MAF's pandas code, written out here, gives on them, to the last bit."""

from __future__ import annotations

import gzip
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from relgrad import datasets
from relgrad.datasets import DataFormatError

NAMES = ["# label"] + [f"f{i}" for i in range(27)]


def _hepmass_rows(rng, n: int) -> np.ndarray:
    x = rng.normal(size=(n, 27)).round(6)
    x[:, 3] = rng.integers(0, 3, size=n)  # discrete: smallest value repeats > 5 times -> dropped
    x[:, 12] = rng.normal(size=n).round(6)
    x[:6, 12] = -9.0  # smallest value exactly 6 times -> dropped
    x[:, 7] = rng.normal(size=n).round(6)
    x[:5, 7] = -9.0  # smallest value 5 times -> kept
    x[:, 9] = rng.normal(size=n).round(6)
    x[:40, 9] = 2.5  # a value repeated 40 times, but not the smallest -> kept (MAF's Counter quirk)
    x[-1, 9] = -9.0
    return x


def _write_hepmass(path: Path, labels, x, header, extra=None) -> None:
    cols = [labels[:, None], x] + ([extra[:, None]] if extra is not None else [])
    body = np.hstack(cols)
    np.savetxt(path, body, delimiter=",", fmt="%.6f", header=",".join(header), comments="")


@pytest.fixture
def hepmass_root(tmp_path: Path) -> Path:
    """MAF's layout as its code implies: the test file has one trailing column (mass) more
    than the training file; the training rows carry an extra trailing field beyond the
    header's names, which pd.read_csv(index_col=False) drops."""
    rng = np.random.default_rng(4)
    d = tmp_path / "hepmass"
    d.mkdir()
    lab_train = np.ones(160)
    lab_train[rng.choice(np.arange(6, 159), 50, replace=False)] = 0  # 110 rows of class 1,
    x_train = _hepmass_rows(rng, 160)  # among them the rows set to -9.0
    _write_hepmass(d / "1000_train.csv", lab_train, x_train, NAMES, extra=np.full(160, 1000.0))
    lab_test = np.r_[np.ones(30), np.zeros(20)]
    _write_hepmass(
        d / "1000_test.csv", lab_test, rng.normal(size=(50, 27)), NAMES + ["mass"], extra=np.full(50, 1000.0)
    )
    return tmp_path


def maf_hepmass(pd, path: Path):
    """MAF's datasets/hepmass.py (load_data ... load_data_no_discrete_normalised_as_array), verbatim."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas' ParserWarning on the extra fields
        data_train = pd.read_csv(filepath_or_buffer=path / "1000_train.csv", index_col=False)
        data_test = pd.read_csv(filepath_or_buffer=path / "1000_test.csv", index_col=False)
    data_train = data_train[data_train[data_train.columns[0]] == 1]
    data_train = data_train.drop(data_train.columns[0], axis=1)
    data_test = data_test[data_test[data_test.columns[0]] == 1]
    data_test = data_test.drop(data_test.columns[0], axis=1)
    data_test = data_test.drop(data_test.columns[-1], axis=1)
    mu = data_train.mean()
    s = data_train.std()
    data_train = (data_train - mu) / s
    data_test = (data_test - mu) / s
    data_train, data_test = data_train.values, data_test.values
    i = 0
    features_to_remove = []
    for feature in data_train.T:
        c = Counter(feature)
        max_count = np.array([v for k, v in sorted(c.items())])[0]
        if max_count > 5:
            features_to_remove.append(i)
        i += 1
    data_train = data_train[
        :, np.array([i for i in range(data_train.shape[1]) if i not in features_to_remove])
    ]
    data_test = data_test[:, np.array([i for i in range(data_test.shape[1]) if i not in features_to_remove])]
    N = data_train.shape[0]
    N_validate = int(N * 0.1)
    data_validate = data_train[-N_validate:]
    data_train = data_train[0:-N_validate]
    return data_train, data_validate, data_test


def test_hepmass_equals_maf(hepmass_root: Path):
    s = datasets.load("hepmass", hepmass_root)
    kept = [f"f{i}" for i in range(27) if i not in (3, 12)]
    assert s.info["columns"] == kept
    assert (s.train.shape, s.val.shape, s.test.shape) == ((99, 25), (11, 25), (30, 25))  # 110 of class 1
    pd = pytest.importorskip("pandas")
    for got, want in zip((s.train, s.val, s.test), maf_hepmass(pd, hepmass_root / "hepmass")):
        np.testing.assert_array_equal(got, want)  # pandas' sums, to the last bit


def test_hepmass_reads_gzip_and_refuses_misaligned_columns(hepmass_root: Path, tmp_path: Path):
    d = hepmass_root / "hepmass"
    gz = tmp_path / "gz"
    gz.mkdir()
    for f in ("1000_train.csv", "1000_test.csv"):
        (gz / f"{f}.gz").write_bytes(gzip.compress((d / f).read_bytes()))
    np.testing.assert_array_equal(
        datasets.load("hepmass", gz).train, datasets.load("hepmass", hepmass_root).train
    )
    # Both headers ending in "mass": after MAF's drops the names differ, and MAF's pandas
    # arithmetic (aligning by name) would give NaN; refused, naming both lists.
    text = (d / "1000_train.csv").read_text().splitlines()
    text[0] += ",mass"
    (d / "1000_train.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(DataFormatError, match="columns differ.*'mass'"):
        datasets.load("hepmass", hepmass_root)
    pd = pytest.importorskip("pandas")
    train, _, test = maf_hepmass(pd, d)
    assert np.isnan(train).any() or np.isnan(test).any()


def test_hepmass_bad_lines_are_named(hepmass_root: Path):
    d = hepmass_root / "hepmass"
    lines = (d / "1000_test.csv").read_text().splitlines()
    lines[5] = lines[5].replace(",", ",x", 1)
    (d / "1000_test.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DataFormatError, match=r"1000_test.csv, line 6, column 2 \('f0'\): 'x.*' is not a number"
    ):
        datasets.load("hepmass", hepmass_root)
    lines[5] = "1.0,2.0"
    (d / "1000_test.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match="line 6: 2 fields, but the header line names 29 columns"):
        datasets.load("hepmass", hepmass_root)
    (d / "1000_test.csv").unlink()
    with pytest.raises(FileNotFoundError, match="hepmass/1000_test.csv not found.*zenodo"):
        datasets.load("hepmass", hepmass_root)
