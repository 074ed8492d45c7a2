"""relgrad.datasets, the tabular sets of MAF: each loader reads a small file written in the
publisher's format and must give what MAF's code gives on it, computed here independently
(MAF's own code, written out in the test, or an independent NumPy computation). Also
load/prepare and the command line. HEPMASS: test_datasets_hepmass.py; image and toy sets:
test_datasets_images.py."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
from relgrad import datasets
from relgrad.datasets import DataFormatError
from relgrad.datasets import __main__ as cli_main

# ---------------------------------------------------------------- POWER and MINIBOONE


def maf_power(data: np.ndarray):
    """MAF's datasets/power.py (load_data_split_with_noise + load_data_normalised), verbatim."""
    rng = np.random.RandomState(42)
    data = data.copy()
    rng.shuffle(data)
    N = data.shape[0]
    data = np.delete(data, 3, axis=1)
    data = np.delete(data, 1, axis=1)
    voltage_noise = 0.01 * rng.rand(N, 1)
    gap_noise = 0.001 * rng.rand(N, 1)
    sm_noise = rng.rand(N, 3)
    time_noise = np.zeros((N, 1))
    noise = np.hstack((gap_noise, voltage_noise, sm_noise, time_noise))
    data = data + noise
    N_test = int(0.1 * data.shape[0])
    data_test = data[-N_test:]
    data = data[0:-N_test]
    N_validate = int(0.1 * data.shape[0])
    data_validate = data[-N_validate:]
    data_train = data[0:-N_validate]
    data = np.vstack((data_train, data_validate))
    mu = data.mean(axis=0)
    s = data.std(axis=0)
    return (data_train - mu) / s, (data_validate - mu) / s, (data_test - mu) / s


def maf_miniboone(data: np.ndarray):
    """MAF's datasets/miniboone.py (load_data + load_data_normalised), verbatim."""
    N_test = int(0.1 * data.shape[0])
    data_test = data[-N_test:]
    data = data[0:-N_test]
    N_validate = int(0.1 * data.shape[0])
    data_validate = data[-N_validate:]
    data_train = data[0:-N_validate]
    data = np.vstack((data_train, data_validate))
    mu = data.mean(axis=0)
    s = data.std(axis=0)
    return (data_train - mu) / s, (data_validate - mu) / s, (data_test - mu) / s


@pytest.fixture
def power_root(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    (tmp_path / "power").mkdir()
    data = rng.normal(size=(200, 8)) * np.arange(1, 9) + np.arange(8)
    data[:, 7] = np.arange(200.0)  # a "time" column
    np.save(tmp_path / "power" / "data.npy", data)
    return tmp_path


def test_power_equals_maf(power_root: Path):
    s = datasets.load("power", power_root)
    ref = maf_power(np.load(power_root / "power" / "data.npy"))
    assert (s.train.shape, s.val.shape, s.test.shape) == ((162, 6), (18, 6), (20, 6))
    for got, want in zip((s.train, s.val, s.test), ref):
        assert got.dtype == np.float64 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, want)
    # standardised by training + validation rows
    both = np.vstack((s.train, s.val))
    np.testing.assert_allclose(both.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(both.std(0), 1, rtol=1e-12)
    # the root may also be the power/ directory or the file
    np.testing.assert_array_equal(datasets.load("POWER", power_root / "power" / "data.npy").test, s.test)


def test_power_refuses_other_widths(tmp_path: Path):
    np.save(tmp_path / "data.npy", np.zeros((50, 7)))
    with pytest.raises(DataFormatError, match="8-column"):
        datasets.load("power", tmp_path)


def test_miniboone_equals_maf(tmp_path: Path):
    data = np.random.default_rng(2).normal(size=(120, 5)) * [1, 2, 3, 4, 5]
    (tmp_path / "miniboone").mkdir()
    np.save(tmp_path / "miniboone" / "data.npy", data)
    s = datasets.load("miniboone", tmp_path)
    assert (s.train.shape, s.val.shape, s.test.shape) == ((98, 5), (10, 5), (12, 5))
    for got, want in zip((s.train, s.val, s.test), maf_miniboone(data)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(s.test, (data[-12:] - data[:-12].mean(0)) / data[:-12].std(0))


def test_too_few_rows_for_maf_split(tmp_path: Path):
    np.save(tmp_path / "data.npy", np.ones((9, 3)))
    with pytest.raises(DataFormatError, match="too few to split"):
        datasets.load("miniboone", tmp_path)


# ---------------------------------------------------------------- GAS


def _gas_frame(pd, n: int = 300):
    rng = np.random.default_rng(3)
    s = {f"S{i}": rng.normal(size=n) for i in range(1, 8)}
    s["S2"] = 2 * s["S1"] + 0.01 * rng.normal(size=n)  # correlated with S1 above 0.98
    s["S5"] = s["S3"] + 0.01 * rng.normal(size=n)  # S3, S5, S6: a group of three
    s["S6"] = s["S3"] + 0.01 * rng.normal(size=n)
    s["S7"] = -s["S1"] + 0.01 * rng.normal(size=n)  # anti-correlated: not filtered
    cols = {"Time": np.arange(n, dtype=float), "Meth": rng.uniform(size=n), "Eth": rng.uniform(size=n)}
    cols.update({k: s[k] * (i + 1) + 10 for i, k in enumerate(sorted(s))})
    return pd.DataFrame(cols)


def test_gas_filters_correlated_columns_and_normalises(tmp_path: Path):
    pd = pytest.importorskip("pandas")
    frame = _gas_frame(pd)
    (tmp_path / "gas").mkdir()
    frame.to_pickle(tmp_path / "gas" / "ethylene_CO.pickle")
    s = datasets.load("gas", tmp_path)
    # Independent computation: MAF drops the first column of a correlated pair, iteratively.
    x = frame.drop(columns=["Meth", "Eth", "Time"])
    names = list(x.columns)
    values = x.to_numpy()
    while True:
        count = (np.corrcoef(values, rowvar=False) > 0.98).sum(axis=1)
        if not (count > 1).any():
            break
        j = int(np.flatnonzero(count > 1)[0])
        values, names = np.delete(values, j, axis=1), names[:j] + names[j + 1 :]
    assert names == ["S2", "S4", "S6", "S7"] == s.info["columns"]
    z = (values - values.mean(0)) / values.std(0, ddof=1)  # pandas' std: ddof=1
    assert (s.train.shape, s.val.shape, s.test.shape) == ((243, 4), (27, 4), (30, 4))
    np.testing.assert_allclose(np.vstack((s.train, s.val, s.test)), z, rtol=1e-12, atol=1e-12)
    assert np.vstack((s.train, s.val, s.test)).std(0, ddof=1) == pytest.approx(1, rel=1e-12)


def test_gas_missing_columns_and_pandas_message(tmp_path: Path, monkeypatch):
    pd = pytest.importorskip("pandas")
    pd.DataFrame({"Time": [0.0] * 20, "S1": np.arange(20.0)}).to_pickle(tmp_path / "ethylene_CO.pickle")
    with pytest.raises(DataFormatError, match="'Meth', 'Eth'"):
        datasets.load("gas", tmp_path)
    (tmp_path / "ethylene_CO.pickle").write_bytes(b"\x80\x04not a pickle")
    with pytest.raises(DataFormatError, match="ethylene_CO.pickle: pandas"):
        datasets.load("gas", tmp_path)
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if pandas were not installed
    with pytest.raises(ImportError, match="pip install pandas"):
        datasets.load("gas", tmp_path)


# ---------------------------------------------------------------- BSDS300


def test_bsds300_reads_the_three_datasets(tmp_path: Path, monkeypatch):
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(5)
    arrays = {
        k: rng.normal(size=(n, 63)).astype(np.float32)
        for k, n in (("train", 50), ("validation", 10), ("test", 20))
    }
    (tmp_path / "BSDS300").mkdir()
    with h5py.File(tmp_path / "BSDS300" / "BSDS300.hdf5", "w") as f:
        for k, a in arrays.items():
            f.create_dataset(k, data=a)
    s = datasets.load("bsds300", tmp_path)
    for got, key in zip((s.train, s.val, s.test), ("train", "validation", "test")):
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, arrays[key].astype(np.float64))
    with h5py.File(tmp_path / "BSDS300" / "BSDS300.hdf5", "a") as f:
        del f["validation"]
    with pytest.raises(DataFormatError, match="no data set 'validation'"):
        datasets.load("bsds300", tmp_path)
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match="pip install h5py"):
        datasets.load("bsds300", tmp_path)


# ---------------------------------------------------------------- prepare and the command line


def test_prepare_writes_npy_and_info(power_root: Path, tmp_path: Path):
    out = tmp_path / "prepared" / "power"
    messages = []
    info = datasets.prepare("power", power_root, out, progress=messages.append)
    s = datasets.load("power", power_root)
    for split in ("train", "val", "test"):
        a = np.load(out / f"{split}.npy")
        assert a.dtype == np.float64 and a.flags.c_contiguous
        np.testing.assert_array_equal(a, getattr(s, split))
    on_disk = json.loads((out / "info.json").read_text())
    assert on_disk == info
    assert on_disk["name"] == "power" and on_disk["splits"]["train"]["shape"] == [162, 6]
    assert on_disk["source"] == [str((power_root / "power" / "data.npy").resolve())]
    assert any("RandomState(42)" in p for p in on_disk["preprocessing"])
    assert any("writing" in m for m in messages)
    with pytest.raises(FileExistsError, match="train.npy exists"):
        datasets.prepare("power", power_root, out)
    datasets.prepare("power", power_root, out, overwrite=True)


def test_load_rejects_unknown_names_and_options(power_root: Path):
    with pytest.raises(ValueError, match="unknown data set 'nope'; known: power"):
        datasets.load("nope")
    with pytest.raises(TypeError, match="takes no options"):
        datasets.load("power", power_root, seed=1)
    with pytest.raises(FileNotFoundError, match="zenodo.org/record/1161203"):
        datasets.load("power")


def test_cli_prepare_and_errors(power_root: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    assert cli_main.main(["prepare", "power", str(power_root), str(out)]) == 0
    captured = capsys.readouterr()
    assert "reading" in captured.err and "writing" in captured.err
    assert (
        f"--data {out}/train.npy --val {out}/val.npy --test {out}/test.npy --preprocess none" in captured.out
    )
    assert cli_main.main(["prepare", "power", str(tmp_path / "empty"), str(tmp_path / "o2")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert cli_main.main(["prepare", "power", str(power_root), str(out)]) == 1
    assert "--force" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli_main.main(["prepare", "power", str(out)])
    assert e.value.code == 2 and "give SRC and OUT" in capsys.readouterr().err
    assert cli_main.main(["list"]) == 0
    assert "zenodo.org/record/1161203" in capsys.readouterr().out


def test_cli_module_runs(tmp_path: Path, monkeypatch, capsys):
    # python -m relgrad.datasets, in this process (a subprocess would import relgrad again)
    monkeypatch.setattr(
        sys, "argv", ["relgrad.datasets", "prepare", "2spirals", str(tmp_path / "s"), "--n-train", "3"]
    )
    monkeypatch.delitem(sys.modules, "relgrad.datasets.__main__")  # run it afresh, as -m does
    with pytest.raises(SystemExit) as e:
        runpy.run_module("relgrad.datasets", run_name="__main__")
    assert e.value.code == 1 and "n must be even" in capsys.readouterr().err


def test_prepared_files_train_with_the_cli(cli, power_root: Path, tmp_path: Path):
    out = tmp_path / "power"
    datasets.prepare("power", power_root, out)
    cli(
        "train",
        "--data",
        str(out / "train.npy"),
        "--val",
        str(out / "val.npy"),
        "--test",
        str(out / "test.npy"),
        "--preprocess",
        "none",
        "--epochs",
        "2",
        "--quiet",
        "--out",
        str(tmp_path / "run"),
    )
    assert (tmp_path / "run" / "model.safetensors").is_file()
