"""The estimator: defaults, fitted attributes, the verbs, errors, callbacks, interrupts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import correlated
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import relgrad
from relgrad import Flow, _relgrad


def test_defaults_are_the_cli_defaults():
    from relgrad._config import resolve_architecture

    d = json.loads(_relgrad.default_config())
    f = Flow()
    # Without --activation and --layers, `relgrad train` chooses the architecture by the
    # data's width (relgrad_model::automatic_architecture); so does "auto".
    assert f.n_layers == "auto" and f.activation == "auto"
    # Wider than SPLINE_MAX_DIM: the library's default configuration.
    wide = _relgrad.SPLINE_MAX_DIM + 1
    assert _relgrad.automatic_architecture(wide) is None
    assert resolve_architecture("auto", "auto", wide) == (d["activation"], d["layers"]) == ("tanh-linear", 3)
    # Up to it: splines at SPLINE_LAYERS, with the library's bins and bound, which are
    # the defaults of `bins` and `bound` (the CLI's --bins and --bound).
    act, layers, bins, bound = _relgrad.automatic_architecture(_relgrad.SPLINE_MAX_DIM)
    assert (act, layers) == ("spline", _relgrad.SPLINE_LAYERS)
    for dim in (1, 2, _relgrad.SPLINE_MAX_DIM):
        assert resolve_architecture("auto", "auto", dim) == (act, layers)
    assert f.bins == bins == d["bins"]  # the library's DEFAULT_BINS
    assert f.bound == bound  # relgrad train --bound
    assert f.alpha == d["alpha"]
    assert d["spline_optimizer"]["name"] == "adam"
    assert f.spline_learning_rate == d["spline_optimizer"]["lr"]
    assert f.base == d["base"]
    assert d["init"] == {"kind": f.init, "shift": f.init_shift}
    assert d["optimizer"] == {"name": f.optimizer, "lr": f.learning_rate, "momentum": f.momentum}
    assert f.batch_size == d["batch_size"]
    assert f.max_epochs == d["epochs"]
    assert f.n_iter_no_change == d["look_ahead"]
    assert f.lr_decays == d["lr_decays"] and f.lr_decay == d["lr_decay"]
    assert f.random_state is None and d["seed"] == 0  # None is seed 0
    assert f.shuffle == d["shuffle"]
    assert f.gradient == d["gradient"]
    assert {"float32": "f32", "float64": "f64"}[f.dtype] == d["precision"]
    assert f.preprocess == d["preprocess"]
    assert f.levels is None and d.get("levels") is None
    assert f.n_threads is None and d["threads"] == 0
    assert f.validation_fraction == 0.1  # relgrad train --val-fraction


def test_config_json_round_trips_through_the_default_parameters():
    from relgrad._config import check_params, fit_config, resolve_architecture

    p = check_params(Flow().get_params())
    with pytest.raises(ValueError, match="resolve"):
        fit_config(p, 0)
    # Wide data: every default is the library's FitConfig::default().
    p["activation"], p["n_layers"] = resolve_architecture(p["activation"], p["n_layers"], 10)
    ours = json.loads(fit_config(p, 0))
    native = json.loads(_relgrad.default_config())
    for key, value in ours.items():
        if isinstance(value, dict):
            # Only what we set: the library adds its own (e.g. Adam's betas).
            assert {k: native[key].get(k) for k in value} == value, key
        else:
            assert native[key] == value, key


def test_fit_sets_the_fitted_attributes(X):
    f = Flow(max_epochs=4, n_iter_no_change=0, random_state=3)
    assert f.fit(X) is f
    assert f.n_features_in_ == 3
    # 3 columns: the automatic architecture is splines at 16 layers.
    assert f.activation_ == "spline" and f.n_layers_ == 16
    assert len(f.weights_) == 16 and len(f.biases_) == 16 and len(f.splines_) == 15
    assert all(w.shape == (3, 3) and w.dtype == np.float32 for w in f.weights_)
    assert all(b.shape == (3,) and b.dtype == np.float32 for b in f.biases_)
    assert all(s.shape == (3, 3 * 16 - 1) and s.dtype == np.float32 for s in f.splines_)
    assert f.preprocess_["kind"] == "standardize"
    np.testing.assert_allclose(f.preprocess_["mean"], X.mean(axis=0), atol=0.5)
    assert set(f.history_) == {"epoch", "train_ll", "val_ll", "seconds"}
    np.testing.assert_array_equal(f.history_["epoch"], np.arange(5))
    assert np.all(np.isfinite(f.history_["val_ll"]))
    assert f.stop_reason_ == "max_epochs" and f.n_epochs_ == 4
    assert 0 <= f.best_epoch_ <= 4
    assert isinstance(f._meta, str) and json.loads(f._meta)["precision"] == "f32"
    assert not hasattr(f, "feature_names_in_")


def test_dtype_float64_and_no_validation(X):
    f = Flow(dtype="float64", max_epochs=2, validation_fraction=0.0).fit(X)
    assert all(w.dtype == np.float64 for w in f.weights_)
    assert np.all(np.isnan(f.history_["val_ll"]))
    assert np.all(np.isfinite(f.history_["train_ll"]))


def test_verbs(X):
    f = Flow(activation="tanh-linear", max_epochs=5, random_state=0).fit(X)
    s = f.score_samples(X[:50])
    assert s.shape == (50,) and s.dtype == np.float64 and np.all(np.isfinite(s))
    assert f.score(X[:50]) == pytest.approx(s.mean())
    # Subset invariance and order: a row's score does not depend on the others.
    np.testing.assert_allclose(f.score_samples(X[10:20]), s[10:20], rtol=1e-12)
    z = f.transform(X[:50])
    assert z.shape == (50, 3)
    # float32: each saturated tanh-linear unit (slope down to alpha = 0.1) amplifies the
    # forward pass's rounding tenfold on the way back.
    np.testing.assert_allclose(f.inverse_transform(z), X[:50], rtol=5e-5, atol=5e-5)
    x1 = f.sample(100, random_state=7)
    assert x1.shape == (100, 3)
    np.testing.assert_array_equal(x1, f.sample(100, random_state=7))
    assert not np.array_equal(x1, f.sample(100, random_state=8))
    rs = np.random.RandomState(0)
    assert not np.array_equal(f.sample(3, random_state=rs), f.sample(3, random_state=rs))
    assert f.sample().shape == (1, 3)
    # float32 and integer input give the same scores as float64.
    np.testing.assert_allclose(
        f.score_samples(X[:5].astype(np.float32)), f.score_samples(X[:5].astype(np.float32).astype(np.float64))
    )
    assert f.score_samples(np.round(X[:5]).astype(np.int64)).shape == (5,)


def test_fits_are_reproducible_and_seeded(X):
    a = Flow(max_epochs=3, random_state=1).fit(X)
    b = Flow(max_epochs=3, random_state=1).fit(X)
    c = Flow(max_epochs=3, random_state=2).fit(X)
    for wa, wb in zip(a.weights_, b.weights_):
        np.testing.assert_array_equal(wa, wb)
    assert not all(np.array_equal(wa, wc) for wa, wc in zip(a.weights_, c.weights_))
    # A RandomState is drawn from: the same state gives the same fit.
    d = Flow(max_epochs=3, random_state=np.random.RandomState(5)).fit(X)
    e = Flow(max_epochs=3, random_state=np.random.RandomState(5)).fit(X)
    np.testing.assert_array_equal(d.weights_[0], e.weights_[0])


def test_validation_rows_are_the_cli_split(X):
    n_val = _relgrad.holdout_rows(len(X), 0.25)
    train, val, _ = _relgrad.split_rows(len(X), n_val, 0, 4)
    f = Flow(max_epochs=0, validation_fraction=0.25, random_state=4).fit(X)
    data = json.loads(f._meta)["data"]
    assert data["rows"]["train"] == len(train) and data["rows"]["val"] == len(val) == n_val
    # The standardisation is fitted on exactly the training rows.
    np.testing.assert_allclose(f.preprocess_["mean"], X[train].mean(axis=0), rtol=1e-12)


def test_other_options_fit(X):
    for params in [
        dict(init="orthogonal", optimizer="adam", gradient="naive", learning_rate=1e-3),
        dict(init="identity", activation="leaky-relu", base="laplace", batch_size="full"),
        dict(activation="tanh-linear", alpha=0.5, base="logistic", n_layers=3, shuffle=False, n_threads=1),
        dict(preprocess="none", init_shift=0.5),
    ]:
        f = Flow(max_epochs=2, **params).fit(X)
        assert np.all(np.isfinite(f.score_samples(X[:10]))), params
        t = json.loads(f._meta)["training"]
        assert t["layers"] == f.n_layers_ == len(f.weights_)
        assert f.n_layers_ == (3 if "n_layers" in params or f.activation_ != "spline" else 16)


def test_logit_preprocessing_with_levels():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 17, size=(300, 4))
    f = Flow(levels=17, max_epochs=3).fit(X)
    assert f.preprocess_["kind"] == "logit" and f.preprocess_["levels"] == 17
    s = f.sample(20, random_state=0)
    assert np.all((s >= 0) & (s <= 16)) and np.array_equal(s, np.round(s))
    assert np.all(np.isfinite(f.score_samples(X)))


def test_feature_names_are_checked(X):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    f = Flow(max_epochs=1).fit(df)
    np.testing.assert_array_equal(f.feature_names_in_, ["a", "b", "c"])
    with pytest.warns(UserWarning, match="feature names"):
        f.score_samples(X)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda X: np.where(np.arange(len(X))[:, None] == 3, np.nan, X), "NaN"),
        (lambda X: np.where(np.arange(len(X))[:, None] == 3, np.inf, X), "infinity"),
        (lambda X: X[:, 0], "2D array"),
        (lambda X: X[:1], "minimum of 2"),
        (lambda X: X[:0], "minimum of 2"),
        (lambda X: np.array([["a", "b", "c"]] * 5), "convert|string"),
    ],
)
def test_fit_rejects_bad_data(X, bad, match):
    with pytest.raises(ValueError, match=match):
        Flow(max_epochs=1).fit(bad(X))


def test_data_start_needs_enough_rows():
    X = correlated(4, d=6)
    with pytest.raises(ValueError):
        Flow(max_epochs=1, validation_fraction=0).fit(X)
    # 6 training rows for 6 columns: still too few; starts that ignore the data work.
    with pytest.raises(ValueError, match="more rows than columns"):
        Flow(max_epochs=1, validation_fraction=0).fit(correlated(6, d=6))
    f = Flow(max_epochs=1, validation_fraction=0, init="identity").fit(X)
    assert f.score_samples(X).shape == (4,)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(n_layers=0), "n_layers"),
        (dict(n_layers=2.0), "n_layers"),
        (dict(n_layers=True), "n_layers"),
        (dict(n_layers="deep"), "n_layers"),
        (dict(n_layers="Auto"), "n_layers"),
        (dict(n_layers=None), "n_layers"),
        (dict(activation="relu"), "activation"),
        (dict(activation="AUTO"), "activation"),
        (dict(activation=None), "activation"),
        (dict(alpha=float("nan")), "alpha"),
        (dict(activation="spline", bins=1), "bins"),
        (dict(activation="spline", bins=257), "bins"),
        (dict(activation="spline", bins=16.0), "bins"),
        (dict(activation="spline", bins=True), "bins"),
        (dict(activation="spline", bound=0.0), "bound"),
        (dict(activation="spline", bound=-1.0), "bound"),
        (dict(activation="spline", bound=float("inf")), "bound"),
        (dict(activation="spline", bound=float("nan")), "bound"),
        (dict(activation="spline", bound="4"), "bound"),
        (dict(activation="spline", spline_learning_rate=0.0), "spline_learning_rate"),
        (dict(activation="spline", spline_learning_rate=-1e-2), "spline_learning_rate"),
        (dict(bins=1), "bins"),  # checked whatever the activation, like every parameter
        (dict(base="cauchy"), "base"),
        (dict(init="random"), "init"),
        (dict(optimizer="lbfgs"), "optimizer"),
        (dict(learning_rate=0), "learning_rate"),
        (dict(momentum=1.0), "momentum"),
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size="half"), "batch_size"),
        (dict(max_epochs=-1), "max_epochs"),
        (dict(n_iter_no_change=1.5), "n_iter_no_change"),
        (dict(lr_decays=-1), "lr_decays"),
        (dict(lr_decays=51), "lr_decays"),
        (dict(lr_decay=1.0), "lr_decay"),
        (dict(lr_decay=0), "lr_decay"),
        (dict(validation_fraction=1.0), "validation_fraction"),
        (dict(preprocess="whiten"), "preprocess"),
        (dict(levels=1), "levels"),
        (dict(gradient="natural"), "gradient"),
        (dict(dtype="float16"), "dtype"),
        (dict(n_threads=0), "n_threads"),
        (dict(random_state=-1), "random_state"),
        (dict(random_state="x"), "random_state"),
    ],
)
def test_bad_parameters_are_named(X, params, match):
    with pytest.raises(ValueError, match=match):
        Flow(**params).fit(X)


def test_wrong_number_of_columns(X):
    f = Flow(max_epochs=1).fit(X)
    for method in (f.score_samples, f.score, f.transform, f.inverse_transform):
        with pytest.raises(ValueError, match="3 features"):
            method(X[:, :2])


def test_scoring_rejects_nan_and_1d(X):
    f = Flow(max_epochs=1).fit(X)
    bad = X[:5].copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        f.score_samples(bad)
    with pytest.raises(ValueError, match="2D array"):
        f.score_samples(X[0])
    with pytest.raises(ValueError, match="n_samples"):
        f.sample(0)


def test_unfitted():
    f = Flow()
    for call in (
        lambda: f.score_samples(np.zeros((2, 3))),
        lambda: f.score(np.zeros((2, 3))),
        lambda: f.sample(2),
        lambda: f.transform(np.zeros((2, 3))),
        lambda: f.inverse_transform(np.zeros((2, 3))),
        lambda: f.save("never-written.safetensors"),
    ):
        with pytest.raises(NotFittedError):
            call()
    assert not os.path.exists("never-written.safetensors")


# ---------------------------------------------------------------- callbacks, verbose


def test_callback_sees_every_epoch_and_can_stop(X):
    seen = []

    def cb(epoch, train_ll, val_ll):
        seen.append((epoch, train_ll, val_ll))
        return epoch < 2

    f = Flow(max_epochs=50, random_state=0).fit(X, callback=cb)
    assert [e for e, _, _ in seen] == [0, 1, 2]
    assert all(isinstance(t, float) and isinstance(v, float) for _, t, v in seen)
    assert f.stop_reason_ == "cancelled" and f.n_epochs_ == 2
    np.testing.assert_allclose(f.history_["val_ll"], [v for _, _, v in seen])
    assert f.score_samples(X).shape == (400,)


def test_callback_returning_none_continues(X):
    f = Flow(max_epochs=3).fit(X, callback=lambda *a: None)
    assert f.stop_reason_ == "max_epochs" and f.n_epochs_ == 3


def test_callback_keyboard_interrupt_keeps_the_best_parameters(X):
    def cb(epoch, train_ll, val_ll):
        if epoch == 3:
            raise KeyboardInterrupt

    f = Flow(max_epochs=100, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        f.fit(X, callback=cb)
    assert f.n_epochs_ == 3 and f.stop_reason_ == "cancelled"
    assert len(f.weights_) == f.n_layers_ and 0 <= f.best_epoch_ <= 3
    assert np.all(np.isfinite(f.score_samples(X)))
    # The kept parameters are the best epoch's: its validation log-likelihood is the best.
    assert f.history_["val_ll"][f.best_epoch_] == np.nanmax(f.history_["val_ll"])


def test_callback_exception_propagates(X):
    class Boom(Exception):
        pass

    def cb(epoch, train_ll, val_ll):
        if epoch == 1:
            raise Boom("from the callback")

    f = Flow(max_epochs=10)
    with pytest.raises(Boom, match="from the callback"):
        f.fit(X, callback=cb)
    assert f.n_epochs_ == 1 and hasattr(f, "weights_")


def test_verbose_prints_one_line_per_epoch(X, capsys):
    Flow(max_epochs=4, verbose=1).fit(X)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("epoch")]
    assert len(lines) == 5, out  # epochs 0..4
    Flow(max_epochs=4, verbose=0).fit(X)
    assert capsys.readouterr().out == ""


def test_divergence_warns_and_keeps_the_best(X):
    f = Flow(learning_rate=1e3, max_epochs=20, random_state=0)
    with pytest.warns(ConvergenceWarning, match=r"diverged at epoch \d+") as record:
        f.fit(X)
    assert f.stop_reason_ == "diverged"
    # The diverged epoch is recorded with a NaN log-likelihood and named in the warning.
    assert np.isnan(f.history_["train_ll"][-1])
    messages = [str(w.message) for w in record if issubclass(w.category, ConvergenceWarning)]
    assert f"diverged at epoch {f.history_['epoch'][-1]} " in messages[0]
    assert f.best_epoch_ < f.history_["epoch"][-1]
    assert np.all(np.isfinite(f.score_samples(X)))
    assert all(np.all(np.isfinite(w)) for w in f.weights_)


def test_sigint_stops_a_fit_promptly(tmp_path):
    script = textwrap.dedent(
        """
        import sys, numpy as np, relgrad
        X = np.random.default_rng(0).normal(size=(20000, 16))
        flow = relgrad.Flow(max_epochs=100000, n_iter_no_change=0)
        print("fitting", flush=True)
        try:
            flow.fit(X)
        except KeyboardInterrupt:
            # The best parameters found so far are kept.
            ok = flow.stop_reason_ == "cancelled" and np.isfinite(flow.score(X[:100]))
            print("kept", flow.n_epochs_, ok, flush=True)
            raise
        print("not interrupted", flush=True)
        """
    )
    # The child imports the package this process tested.
    env = dict(os.environ)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(relgrad.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    p = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    try:
        first = p.stdout.readline().strip()
        if first != "fitting":
            p.kill()
            pytest.fail(f"the child did not start fitting: {first!r}\n{p.communicate()[1]}")
        time.sleep(1.0)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert "KeyboardInterrupt" in err, err
    assert "not interrupted" not in out
    kept = out.split()
    assert kept[0] == "kept" and int(kept[1]) >= 1 and kept[2] == "True", out
    assert p.returncode != 0
    assert elapsed < 3.0, f"took {elapsed:.1f} s to stop"


def test_pixels_out_of_range_are_named_by_their_row_in_X():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 17, size=(200, 4)).astype(float)
    X[137, 2] = 17.0
    with pytest.raises(ValueError, match=r"X: row 138, column 3: expected an integer pixel value in 0..=16"):
        Flow(levels=17, max_epochs=1).fit(X)
    X[137, 2] = 2.5
    with pytest.raises(ValueError, match=r"row 138, column 3"):
        Flow(levels=17, max_epochs=1).fit(X)
    X[137, 2] = 3.0
    assert Flow(levels=17, max_epochs=1).fit(X).preprocess_["kind"] == "logit"


def test_verbose_above_one_prints_one_line_per_epoch(X, capsys):
    Flow(max_epochs=2, verbose=5).fit(X)
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("epoch")]
    assert len(lines) == 3


# ---------------------------------------------------------------- the automatic architecture


@pytest.mark.parametrize("d", [1, 2, 4])
def test_auto_fits_splines_at_16_layers_on_narrow_data(d):
    X = correlated(200, d=d, seed=d)
    f = Flow(max_epochs=2, random_state=0).fit(X)
    # The parameters stay as given; what fit chose is in the fitted attributes.
    assert f.activation == "auto" and f.n_layers == "auto"
    assert d <= _relgrad.SPLINE_MAX_DIM == 4
    assert f.activation_ == "spline" and f.n_layers_ == _relgrad.SPLINE_LAYERS == 16
    assert len(f.weights_) == 16 and len(f.splines_) == 15
    assert all(s.shape == (d, 3 * 16 - 1) for s in f.splines_)
    meta = json.loads(f._meta)
    assert meta["activation"] == "spline" and meta["bins"] == 16 and meta["alpha"] == 3.0
    assert meta["training"]["layers"] == 16
    assert np.all(np.isfinite(f.score_samples(X)))


@pytest.mark.parametrize("d", [5, 8])
def test_auto_fits_tanh_linear_at_3_layers_on_wide_data(d):
    X = correlated(200, d=d, seed=d)
    f = Flow(max_epochs=2, random_state=0).fit(X)
    assert f.activation == "auto" and f.n_layers == "auto"
    assert f.activation_ == "tanh-linear" and f.n_layers_ == 3
    assert len(f.weights_) == 3 and f.splines_ == []
    meta = json.loads(f._meta)
    assert meta["activation"] == "tanh-linear" and meta["alpha"] == 0.1
    # The same fit as naming the architecture.
    g = Flow(activation="tanh-linear", n_layers=3, max_epochs=2, random_state=0).fit(X)
    for a, b in zip(f.weights_ + f.biases_, g.weights_ + g.biases_):
        np.testing.assert_array_equal(a, b)


def test_auto_splines_take_the_estimators_bins_and_bound():
    X = correlated(200, d=2)
    f = Flow(bins=5, bound=2.5, spline_learning_rate=5e-3, max_epochs=2, random_state=0).fit(X)
    assert f.activation_ == "spline" and all(s.shape == (2, 14) for s in f.splines_)
    meta = json.loads(f._meta)
    assert meta["bins"] == 5 and meta["alpha"] == 2.5
    assert meta["training"]["spline_optimizer"]["lr"] == 5e-3
    g = Flow(activation="spline", n_layers=16, bins=5, bound=2.5, spline_learning_rate=5e-3, max_epochs=2)
    g.fit(X)
    for a, b in zip(f.weights_ + f.splines_, g.weights_ + g.splines_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "d, params, activation, layers",
    [
        (2, dict(activation="tanh-linear"), "tanh-linear", 3),
        (2, dict(activation="leaky-relu", alpha=0.3), "leaky-relu", 3),
        (2, dict(n_layers=2), "spline", 2),
        (2, dict(activation="tanh-linear", n_layers=5), "tanh-linear", 5),
        (6, dict(activation="spline"), "spline", 16),  # named splines: 16 layers, as "auto" gives them
        (6, dict(activation="spline", n_layers=2), "spline", 2),
        (6, dict(n_layers=np.int64(4)), "tanh-linear", 4),
        (6, dict(activation="smooth-leaky-relu", n_layers="auto"), "smooth-leaky-relu", 3),
    ],
)
def test_explicit_architecture_is_respected(d, params, activation, layers):
    X = correlated(200, d=d, seed=1)
    f = Flow(max_epochs=1, random_state=0, **params).fit(X)
    for key, value in params.items():
        assert f.get_params()[key] is value, key  # stored unchanged
    assert f.activation_ == activation and f.n_layers_ == layers == len(f.weights_)
    assert json.loads(f._meta)["activation"] == activation
    assert len(f.splines_) == (layers - 1 if activation == "spline" else 0)


def test_auto_is_resolved_at_every_fit():
    f = Flow(max_epochs=1, random_state=0)
    f.fit(correlated(200, d=2))
    assert (f.activation_, f.n_layers_, f.n_features_in_) == ("spline", 16, 2)
    f.fit(correlated(200, d=6))
    assert (f.activation_, f.n_layers_, f.n_features_in_) == ("tanh-linear", 3, 6)
    assert f.splines_ == [] and f.activation == "auto" and f.n_layers == "auto"


def test_auto_through_set_params_and_clone():
    f = Flow(activation="spline", n_layers=3)
    assert f.set_params(activation="auto", n_layers="auto") is f
    assert f.get_params()["activation"] == "auto" and f.get_params()["n_layers"] == "auto"
    g = clone(f)
    assert g.get_params() == f.get_params()
    X = correlated(200, d=2)
    f.set_params(max_epochs=2).fit(X)
    h = clone(f)
    assert h.activation == "auto" and h.n_layers == "auto" and not hasattr(h, "activation_")
    h.fit(X)
    assert (h.activation_, h.n_layers_) == (f.activation_, f.n_layers_) == ("spline", 16)
    for a, b in zip(f.weights_ + f.splines_, h.weights_ + h.splines_):
        np.testing.assert_array_equal(a, b)
    # Back to explicit values.
    f.set_params(activation="tanh-linear", n_layers=2).fit(X)
    assert (f.activation_, f.n_layers_) == ("tanh-linear", 2)


def test_invalid_auto_strings_name_the_parameter():
    X = correlated(50, d=2)
    with pytest.raises(ValueError, match="n_layers must be a positive integer or 'auto', got 'automatic'"):
        Flow(n_layers="automatic").fit(X)
    with pytest.raises(ValueError, match="activation must be one of 'auto', .*got 'splines'"):
        Flow(activation="splines").fit(X)
    with pytest.raises(ValueError, match="n_layers"):
        Flow().set_params(n_layers="8").fit(X)


def test_fit_with_X_val_equals_the_seeded_split_of_the_same_rows():
    # Rows placed where Flow's own seeded split puts its train and validation rows fit the
    # same model as the train rows with X_val.
    from relgrad import _relgrad

    rng = np.random.default_rng(3)
    train, val = rng.normal(size=(180, 3)), rng.normal(size=(45, 3)) + 0.2
    m, frac, seed = 225, 45 / 225, 4
    assert _relgrad.holdout_rows(m, frac) == 45
    tr, va, _ = (np.asarray(a, dtype=np.intp) for a in _relgrad.split_rows(m, 45, 0, seed))
    X = np.empty((m, 3))
    X[tr], X[va] = train, val
    kw = dict(activation="tanh-linear", n_layers=2, max_epochs=15, random_state=seed, dtype="float64")
    a = Flow(**kw, validation_fraction=frac).fit(X)
    b = Flow(**kw).fit(train, X_val=val)
    for u, v in zip(a.weights_ + a.biases_, b.weights_ + b.biases_):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(a.history_["val_ll"], b.history_["val_ll"])
    assert json.loads(b._meta)["data"]["split"]["val_given"] == {"rows": 45}
    # The validation rows must have the training rows' columns.
    with pytest.raises(ValueError, match="features"):
        Flow(**kw).fit(train, X_val=val[:, :2])
