"""Save/load, pickle, deepcopy and clone keep a fitted model exactly."""

from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pytest
from sklearn.base import clone

import relgrad
from relgrad import Flow


@pytest.fixture(scope="module")
def fitted():
    from conftest import correlated

    X = correlated(300)
    return (
        Flow(
            max_epochs=3, n_layers=3, activation="tanh-linear", init_shift=0.5, learning_rate=1e-3, random_state=5
        ).fit(X),
        X,
    )


def assert_same_model(a: Flow, b: Flow, X: np.ndarray) -> None:
    assert len(a.weights_) == len(b.weights_)
    for wa, wb in zip(a.weights_ + a.biases_, b.weights_ + b.biases_):
        assert wa.dtype == wb.dtype
        np.testing.assert_array_equal(wa, wb)
    assert a.preprocess_ == b.preprocess_
    assert a.n_features_in_ == b.n_features_in_
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    np.testing.assert_array_equal(a.sample(5, random_state=1), b.sample(5, random_state=1))
    np.testing.assert_array_equal(a.transform(X[:7]), b.transform(X[:7]))


def test_save_load(fitted, tmp_path):
    f, X = fitted
    path = tmp_path / "model.safetensors"
    f.save(path)
    g = relgrad.load(path)
    assert isinstance(g, Flow)
    assert_same_model(f, g, X)
    assert g.get_params() == f.get_params()
    assert (g.activation_, g.n_layers_) == (f.activation_, f.n_layers_) == ("tanh-linear", 3)
    assert g.best_epoch_ == f.best_epoch_ and g.n_epochs_ == f.n_epochs_
    assert g.stop_reason_ == f.stop_reason_ == "max_epochs"
    assert len(g.history_["epoch"]) == 0
    # str paths too, and saving the loaded model again gives the same model.
    g.save(str(tmp_path / "again.safetensors"))
    assert_same_model(f, relgrad.load(str(tmp_path / "again.safetensors")), X)


@pytest.mark.parametrize("d, activation, layers", [(2, "spline", 16), (6, "tanh-linear", 3)])
def test_auto_models_load_with_their_resolved_architecture(tmp_path, d, activation, layers):
    from conftest import correlated

    X = correlated(200, d=d)
    f = Flow(max_epochs=2, random_state=1).fit(X)
    assert (f.activation, f.n_layers) == ("auto", "auto")
    f.save(tmp_path / "m.safetensors")
    g = relgrad.load(tmp_path / "m.safetensors")
    assert_same_model(f, g, X)
    # The loaded parameters are the model's own architecture, never "auto" ...
    assert (g.activation, g.n_layers) == (g.activation_, g.n_layers_) == (activation, layers)
    assert g.get_params() == {**f.get_params(), "activation": activation, "n_layers": layers}
    # ... so the recipe refits the same model, and keeps it whatever the data's width.
    h = clone(g).fit(X)
    for a, b in zip(f.weights_ + f.splines_, h.weights_ + h.splines_):
        np.testing.assert_array_equal(a, b)
    # Pickles keep the parameters as given ("auto") and the fitted attributes.
    p = pickle.loads(pickle.dumps(f))
    assert (p.activation, p.n_layers, p.activation_, p.n_layers_) == ("auto", "auto", activation, layers)


def test_load_recovers_every_recorded_parameter(tmp_path):
    from conftest import correlated

    X = correlated(200, d=2)
    params = dict(
        n_layers=3,
        activation="tanh-linear",
        alpha=0.3,
        base="laplace",
        init="orthogonal",
        optimizer="adam",
        learning_rate=2e-3,
        spline_learning_rate=2e-2,  # recorded whatever the activation
        batch_size="full",
        max_epochs=2,
        n_iter_no_change=5,
        lr_decays=3,
        lr_decay=0.5,
        validation_fraction=0.2,
        preprocess="none",
        gradient="naive",
        dtype="float64",
        shuffle=False,
        random_state=11,
    )
    f = Flow(**params).fit(X)
    f.save(tmp_path / "m.safetensors")
    g = relgrad.load(tmp_path / "m.safetensors")
    got = g.get_params()
    for key, value in params.items():
        assert got[key] == value, key
    assert got["n_threads"] is None and got["verbose"] == 0
    # Refitting the recovered recipe gives the same model.
    h = clone(g).fit(X)
    for wa, wb in zip(f.weights_, h.weights_):
        np.testing.assert_array_equal(wa, wb)


def test_cancelled_runs_load_as_cancelled(tmp_path):
    from conftest import correlated

    X = correlated(200)
    f = Flow(max_epochs=10, levels=None).fit(X, callback=lambda e, t, v: e < 1)
    assert f.stop_reason_ == "cancelled"
    f.save(tmp_path / "m.safetensors")
    assert relgrad.load(tmp_path / "m.safetensors").stop_reason_ == "cancelled"


def test_load_errors(tmp_path):
    with pytest.raises(OSError):
        relgrad.load(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model file")
    with pytest.raises(ValueError):
        relgrad.load(bad)


def test_pickle(fitted):
    f, X = fitted
    g = pickle.loads(pickle.dumps(f))
    assert_same_model(f, g, X)
    for k in f.history_:
        np.testing.assert_array_equal(f.history_[k], g.history_[k])
    assert g._meta == f._meta


def test_deepcopy(fitted):
    f, X = fitted
    g = copy.deepcopy(f)
    assert_same_model(f, g, X)
    g.weights_[0][0, 0] += 1
    assert f.weights_[0][0, 0] != g.weights_[0][0, 0]


def test_clone_is_unfitted_with_the_same_parameters(fitted):
    f, X = fitted
    g = clone(f)
    assert g.get_params() == f.get_params()
    assert not hasattr(g, "weights_")
    # Same parameters and seed: the same fit.
    g.fit(X)
    for wa, wb in zip(f.weights_, g.weights_):
        np.testing.assert_array_equal(wa, wb)


def test_saved_metadata_is_the_cli_layout(fitted, tmp_path):
    pytest.importorskip("safetensors")
    from safetensors import safe_open

    f, _ = fitted
    f.save(tmp_path / "m.safetensors")
    with safe_open(str(tmp_path / "m.safetensors"), "np") as h:
        meta = h.metadata()
        keys = set(h.keys())
    assert meta["format"] == "relgrad-invertible-mlp"
    assert keys == {f"layers.{i}.{t}" for i in range(3) for t in ("weight", "bias")}
    training = json.loads(meta["training"])
    assert training["layers"] == 3 and training["init"] == {"kind": "data", "shift": 0.5}
    assert json.loads(meta["data"])["split"]["val_fraction"] == 0.1
