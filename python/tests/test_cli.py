"""Files and numbers shared with the command-line tool (`relgrad train`)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import correlated, write_csv

import relgrad
from relgrad import Flow


@pytest.fixture(scope="module")
def data():
    return correlated(400, d=3, seed=1)


@pytest.fixture(scope="module")
def cli_run(cli, data, tmp_path_factory):
    """`relgrad train` on a CSV of ``data``: 3 epochs in f64, 10 % validation, no test; the
    architecture is the automatic one (3 columns: splines at 16 layers)."""
    d = tmp_path_factory.mktemp("cli")
    csv = write_csv(d / "data.csv", data)
    out = d / "run"
    cli(
        "train",
        "--data",
        str(csv),
        "--precision",
        "f64",
        "--epochs",
        "3",
        "--val-fraction",
        "0.1",
        "--test-fraction",
        "0",
        "--out",
        str(out),
        "--quiet",
    )
    return out / "model.safetensors"


def test_python_fit_equals_the_cli_fit(cli_run, data):
    # Neither names an architecture: both choose it by the data's width.
    ours = Flow(dtype="float64", max_epochs=3, validation_fraction=0.1, random_state=0).fit(data)
    theirs = relgrad.load(cli_run)
    assert (ours.activation_, ours.n_layers_) == (theirs.activation_, theirs.n_layers_) == ("spline", 16)
    assert len(ours.weights_) == len(theirs.weights_) == 16 and len(ours.splines_) == len(theirs.splines_) == 15
    for a, b in zip(ours.weights_ + ours.biases_ + ours.splines_, theirs.weights_ + theirs.biases_ + theirs.splines_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    assert ours.preprocess_["kind"] == theirs.preprocess_["kind"] == "standardize"
    np.testing.assert_allclose(ours.preprocess_["mean"], theirs.preprocess_["mean"], rtol=1e-12)
    np.testing.assert_allclose(ours.preprocess_["std"], theirs.preprocess_["std"], rtol=1e-12)
    assert ours.best_epoch_ == theirs.best_epoch_


def test_cli_file_loads_with_its_recipe(cli_run, data):
    f = relgrad.load(cli_run)
    p = f.get_params()
    assert p["dtype"] == "float64" and p["max_epochs"] == 3 and p["validation_fraction"] == 0.1
    assert p["random_state"] == 0 and p["preprocess"] == "standardize" and p["levels"] is None
    # The CLI's automatic architecture, explicit (a refit keeps it).
    assert (p["activation"], p["n_layers"], p["bins"], p["bound"]) == ("spline", 16, 16, 3.0)
    assert f.n_features_in_ == 3 and f.stop_reason_ == "max_epochs"
    assert np.all(np.isfinite(f.score_samples(data)))


def test_cli_scores_a_python_model(cli, data, tmp_path):
    f = Flow(max_epochs=3, dtype="float64", random_state=2).fit(data)
    model = tmp_path / "model.safetensors"
    f.save(model)
    points = write_csv(tmp_path / "points.csv", data[:20])
    scores = tmp_path / "scores.csv"
    cli("score", str(model), "--data", str(points), "--out", str(scores))
    theirs = np.loadtxt(scores, delimiter=",", skiprows=1)[:, 1]
    np.testing.assert_allclose(f.score_samples(data[:20]), theirs, rtol=1e-12)
    # and samples with the same seed
    out = tmp_path / "s.csv"
    cli("sample", str(model), "-n", "5", "--seed", "3", "--out", str(out))
    np.testing.assert_allclose(np.loadtxt(out, delimiter=",", ndmin=2), f.sample(5, random_state=3), rtol=1e-10)


def test_cli_digits_model_loads_as_logit(cli, tmp_path):
    out = tmp_path / "digits"
    cli("train", "--epochs", "1", "--out", str(out), "--quiet")
    f = relgrad.load(out / "model.safetensors")
    assert f.preprocess_["kind"] == "logit" and f.levels == 17 and f.preprocess == "logit"
    assert f.n_features_in_ == 64
    # 64 columns: the automatic architecture is tanh-linear at 3 layers.
    assert (f.activation, f.n_layers) == (f.activation_, f.n_layers_) == ("tanh-linear", 3)
    s = f.sample(4, random_state=0)
    assert s.shape == (4, 64) and np.all((0 <= s) & (s <= 16))
