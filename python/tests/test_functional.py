"""relgrad.gradient and relgrad.log_prob against finite differences and the spec's
relation between the relative and the naive gradient."""

from __future__ import annotations

import numpy as np
import pytest

import relgrad

ACTIVATIONS = ["smooth-leaky-relu", "leaky-relu", "tanh-linear"]
BASES = ["normal", "laplace", "logistic"]


def network(d=3, n_layers=2, seed=0):
    rng = np.random.default_rng(seed)
    W = [np.eye(d) + 0.3 * rng.normal(size=(d, d)) for _ in range(n_layers)]
    b = [0.3 * rng.normal(size=d) for _ in range(n_layers)]
    X = rng.normal(size=(50, d))
    return W, b, X


def mean_ll(W, b, X, activation, base):
    return relgrad.log_prob(W, b, X, activation=activation, alpha=0.1, base=base).mean()


@pytest.mark.parametrize("activation", ["smooth-leaky-relu", "tanh-linear"])
@pytest.mark.parametrize("base", BASES)
def test_naive_gradient_is_the_finite_difference_gradient(activation, base):
    # (leaky-relu and the Laplace base are not smooth everywhere; central differences
    # still agree away from the kinks, which random data avoid with probability 1.)
    W, b, X = network()
    dW, db, ll = relgrad.gradient(W, b, X, kind="naive", activation=activation, alpha=0.1, base=base)
    assert ll == pytest.approx(mean_ll(W, b, X, activation, base), rel=1e-12)
    eps = 1e-6
    for params, grads in ((W, dW), (b, db)):
        for p, g in zip(params, grads):
            assert g.shape == p.shape and g.dtype == np.float64
            fd = np.zeros_like(p)
            for idx in np.ndindex(p.shape):
                old = p[idx]
                p[idx] = old + eps
                up = mean_ll(W, b, X, activation, base)
                p[idx] = old - eps
                down = mean_ll(W, b, X, activation, base)
                p[idx] = old
                fd[idx] = (up - down) / (2 * eps)
            err = np.linalg.norm(g - fd) / np.linalg.norm(fd)
            assert err < 1e-6, (activation, base, err)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_relative_gradient_is_A_At_times_the_naive_one(activation, base, n_layers):
    W, b, X = network(d=4, n_layers=n_layers, seed=n_layers)
    GW, Gb, ll_naive = relgrad.gradient(W, b, X, kind="naive", activation=activation, alpha=0.1, base=base)
    RW, Rb, ll = relgrad.gradient(W, b, X, kind="relative", activation=activation, alpha=0.1, base=base)
    assert ll == ll_naive
    for w, bb, gw, gb, rw, rb in zip(W, b, GW, Gb, RW, Rb):
        # R_W = W W^T G_W + W b G_b^T ;  R_b^T = b^T W^T G_W + (1 + b^T b) G_b^T
        expect_w = w @ w.T @ gw + w @ np.outer(bb, gb)
        expect_b = bb @ w.T @ gw + (1 + bb @ bb) * gb
        np.testing.assert_allclose(rw, expect_w, rtol=1e-9, atol=1e-10 * np.abs(expect_w).max())
        np.testing.assert_allclose(rb, expect_b, rtol=1e-9, atol=1e-10 * np.abs(expect_b).max())


def test_log_prob_of_one_linear_layer_is_a_gaussian():
    rng = np.random.default_rng(1)
    W = rng.normal(size=(3, 3))
    b = rng.normal(size=3)
    X = rng.normal(size=(10, 3))
    z = X @ W + b
    expect = -0.5 * (z**2).sum(1) - 1.5 * np.log(2 * np.pi) + np.linalg.slogdet(W)[1]
    np.testing.assert_allclose(relgrad.log_prob([W], [b], X), expect, rtol=1e-12)


def test_inputs_may_be_lists_and_float32():
    W, b, X = network()
    a = relgrad.log_prob(W, b, X)
    c = relgrad.log_prob([w.tolist() for w in W], [v.tolist() for v in b], X.tolist())
    np.testing.assert_array_equal(a, c)
    d = relgrad.log_prob([w.astype(np.float32) for w in W], b, X.astype(np.float32))
    np.testing.assert_allclose(a, d, rtol=1e-4)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda W, b, X: ([w[:, :2] for w in W], b, X), "square"),
        (lambda W, b, X: ([W[0], np.eye(4)], b, X), "weights\\[1\\] has shape"),
        (lambda W, b, X: (W, [b[0], b[1][:2]], X), "biases\\[1\\]"),
        (lambda W, b, X: (W, b[:1], X), "one bias per weight"),
        (lambda W, b, X: ([], [], X), "at least one layer"),
        (lambda W, b, X: (W, b, X[:, :2]), "2 columns"),
        (lambda W, b, X: (W, b, X[0]), "2-D"),
        (lambda W, b, X: (W, b, X[:0]), "no rows"),
        (lambda W, b, X: (W, b, np.full_like(X, np.nan)), "NaN"),
        (lambda W, b, X: ([np.full((3, 3), np.inf), W[1]], b, X), "non-finite"),
        (lambda W, b, X: (W[0], b, X), "sequence"),
    ],
)
def test_shapes_are_checked(mutate, match):
    W, b, X = network()
    W2, b2, X2 = mutate(W, b, X)
    with pytest.raises(ValueError, match=match):
        relgrad.gradient(W2, b2, X2)
    with pytest.raises(ValueError, match=match):
        relgrad.log_prob(W2, b2, X2)


def test_bad_names():
    W, b, X = network()
    with pytest.raises(ValueError, match="kind"):
        relgrad.gradient(W, b, X, kind="natural")
    with pytest.raises(ValueError, match="activation"):
        relgrad.log_prob(W, b, X, activation="relu")
    with pytest.raises(ValueError, match="base"):
        relgrad.log_prob(W, b, X, base="cauchy")


def test_singular_weight_is_a_value_error():
    W, b, X = network()
    W[0] = np.zeros((3, 3))
    with pytest.raises(ValueError):
        relgrad.gradient(W, b, X, kind="naive")


# ----------------------------------------------------------------- spline activations


def spline_network(d=3, n_layers=3, bins=5, seed=0):
    """A network with random (non-identity) splines on [-2, 2]: most rows' hidden units
    fall inside the splines' interval, some in the linear tails."""
    W, b, X = network(d=d, n_layers=n_layers, seed=seed)
    rng = np.random.default_rng(seed + 100)
    S = [0.5 * rng.normal(size=(d, 3 * bins - 1)) for _ in range(n_layers - 1)]
    return W, b, S, X


def spline_ll(W, b, S, X, base="normal"):
    return relgrad.log_prob(W, b, X, activation="spline", splines=S, bound=2.0, base=base).mean()


@pytest.mark.parametrize("base", ["normal", "logistic"])
def test_spline_gradients_are_the_finite_difference_gradients(base):
    W, b, S, X = spline_network()
    dW, db, ll, dS = relgrad.gradient(W, b, X, kind="naive", activation="spline", splines=S, bound=2.0, base=base)
    assert ll == pytest.approx(spline_ll(W, b, S, X, base), rel=1e-12)
    assert [s.shape for s in dS] == [(3, 14), (3, 14)]
    eps = 1e-6
    for params, grads in ((W, dW), (b, db), (S, dS)):
        for p, g in zip(params, grads):
            assert g.shape == p.shape and g.dtype == np.float64
            fd = np.zeros_like(p)
            for idx in np.ndindex(p.shape):
                old = p[idx]
                p[idx] = old + eps
                up = spline_ll(W, b, S, X, base)
                p[idx] = old - eps
                down = spline_ll(W, b, S, X, base)
                p[idx] = old
                fd[idx] = (up - down) / (2 * eps)
            err = np.linalg.norm(g - fd) / np.linalg.norm(fd)
            assert err < 1e-6, (base, err)


def test_spline_relative_gradient_scales_the_weights_only():
    W, b, S, X = spline_network(d=4, seed=2)
    GW, Gb, ll_naive, GS = relgrad.gradient(W, b, X, kind="naive", activation="spline", splines=S, bound=2.0)
    RW, Rb, ll, RS = relgrad.gradient(W, b, X, kind="relative", activation="spline", splines=S, bound=2.0)
    assert ll == ll_naive
    for w, bb, gw, gb, rw, rb in zip(W, b, GW, Gb, RW, Rb):
        expect_w = w @ w.T @ gw + w @ np.outer(bb, gb)
        expect_b = bb @ w.T @ gw + (1 + bb @ bb) * gb
        np.testing.assert_allclose(rw, expect_w, rtol=1e-9, atol=1e-10 * np.abs(expect_w).max())
        np.testing.assert_allclose(rb, expect_b, rtol=1e-9, atol=1e-10 * np.abs(expect_b).max())
    # The splines' direction is their Euclidean gradient under both kinds.
    for gs, rs in zip(GS, RS):
        np.testing.assert_allclose(rs, gs, rtol=1e-12, atol=1e-15)


def test_identity_splines_are_a_linear_network():
    # splines=None starts every spline at the identity; leaky-relu with alpha=1 is the
    # identity too.
    W, b, X = network(n_layers=3)
    linear = relgrad.log_prob(W, b, X, activation="leaky-relu", alpha=1.0)
    np.testing.assert_allclose(relgrad.log_prob(W, b, X, activation="spline", bins=7), linear, rtol=1e-12)
    out = relgrad.gradient(W, b, X, activation="spline", bins=7)
    assert len(out) == 4 and [s.shape for s in out[3]] == [(3, 20), (3, 20)]
    # Fixed activations keep their 3-tuple.
    assert len(relgrad.gradient(W, b, X, activation="tanh-linear")) == 3


def test_splines_given_set_the_bins():
    W, b, S, X = spline_network(bins=5)
    a = relgrad.log_prob(W, b, X, activation="spline", splines=S, bound=2.0)
    np.testing.assert_array_equal(a, relgrad.log_prob(W, b, X, activation="spline", splines=S, bins=5, bound=2.0))
    # Other splines, other densities.
    assert not np.allclose(a, relgrad.log_prob(W, b, X, activation="spline", bound=2.0, bins=5))
    c = relgrad.log_prob(W, b, X, activation="spline", splines=[s.tolist() for s in S], bound=2.0)
    np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda S: dict(activation="tanh-linear"), "splines are the parameters of activation='spline'"),
        (lambda S: dict(splines=S[:1]), "one array per hidden layer: 2 for 3 layers, got 1"),
        (lambda S: dict(splines=[s[:, :13] for s in S]), "splines\\[0\\] must have shape \\(3, 3 K - 1\\)"),
        (lambda S: dict(splines=[s[:2] for s in S]), "splines\\[0\\] must have shape"),
        (lambda S: dict(bins=6), "splines\\[0\\] has shape \\(3, 14\\), 5 bins, expected \\(3, 17\\) for 6 bins"),
        (lambda S: dict(bins=1), "bins"),
        (lambda S: dict(bins=300), "bins"),
        (lambda S: dict(bound=0.0), "bound"),
        (lambda S: dict(bound=float("nan")), "bound"),
        (lambda S: dict(splines=[S[0], np.full_like(S[1], np.inf)]), "splines\\[1\\] holds a non-finite value"),
        (lambda S: dict(splines=S[0]), "sequence"),
    ],
)
def test_spline_arguments_are_checked(change, match):
    W, b, S, X = spline_network(bins=5)
    kw = dict(activation="spline", splines=S, bound=2.0)
    kw.update(change(S))
    with pytest.raises(ValueError, match=match):
        relgrad.log_prob(W, b, X, **kw)
    with pytest.raises(ValueError, match=match):
        relgrad.gradient(W, b, X, **kw)


def test_a_fitted_spline_flow_is_a_bare_network_after_its_preprocessing():
    X = np.random.default_rng(3).normal(size=(300, 2)) @ np.array([[1.0, 0.5], [0.0, 2.0]])
    flow = relgrad.Flow(activation="spline", bins=6, bound=3.0, max_epochs=10, dtype="float64", random_state=0).fit(X)
    Z = (X - flow.preprocess_["mean"]) / flow.preprocess_["std"]
    ll = relgrad.log_prob(flow.weights_, flow.biases_, Z, activation="spline", splines=flow.splines_, bound=3.0)
    np.testing.assert_allclose(ll - np.log(flow.preprocess_["std"]).sum(), flow.score_samples(X), rtol=1e-10)
