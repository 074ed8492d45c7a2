"""The functional layer: update directions and log-densities of a bare network.

For people with their own training loop (NumPy, JAX, PyTorch): the network is given as
plain arrays, there is no preprocessing and no state. Layer ``l`` maps row vectors as
``y = h @ W[l] + b[l]``; the activation is applied after every layer but the last, whose
output ``z`` has the factorised base density. With ``activation="spline"`` the activation
of hidden layer ``l`` is one learnable spline per unit, whose parameters are the rows of
``splines[l]``.
"""

from __future__ import annotations

from typing import List, Literal, Optional, Sequence, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

from . import _relgrad
from ._config import ACTIVATIONS, BASES, DEFAULT_BINS, GRADIENTS, MAX_BINS, check_bound

F64Array = npt.NDArray[np.float64]
FixedActivation = Literal["smooth-leaky-relu", "leaky-relu", "tanh-linear"]
Gradient = Tuple[List[F64Array], List[F64Array], float]
SplineGradient = Tuple[List[F64Array], List[F64Array], float, List[F64Array]]


def _choice(name: str, value: object, allowed: "tuple[str, ...]") -> str:
    if not isinstance(value, str) or value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def _network(
    weights: Sequence[npt.ArrayLike], biases: Sequence[npt.ArrayLike], X: npt.ArrayLike
) -> Tuple[List[F64Array], List[F64Array], F64Array]:
    """Checks the shapes (weights ``D x D``, biases ``D``, ``X`` 2-D with ``D`` columns)
    and returns float64 C-ordered copies or views."""
    if isinstance(weights, np.ndarray) and weights.ndim == 2:
        raise ValueError("weights must be a sequence of (D, D) arrays, one per layer, not a single array")
    if isinstance(biases, np.ndarray) and biases.ndim == 1:
        raise ValueError("biases must be a sequence of (D,) arrays, one per layer, not a single array")
    ws = [np.ascontiguousarray(w, dtype=np.float64) for w in weights]
    bs = [np.ascontiguousarray(b, dtype=np.float64) for b in biases]
    if not ws:
        raise ValueError("weights must hold at least one layer")
    if len(ws) != len(bs):
        raise ValueError(f"expected one bias per weight, got {len(ws)} weights and {len(bs)} biases")
    d = ws[0].shape[0] if ws[0].ndim == 2 else -1
    for i, (w, b) in enumerate(zip(ws, bs)):
        if w.ndim != 2 or w.shape[0] != w.shape[1]:
            raise ValueError(f"weights[{i}] must be a square (D, D) matrix, got shape {w.shape}")
        if w.shape[0] != d:
            raise ValueError(f"weights[{i}] has shape {w.shape}, but weights[0] has shape {(d, d)}")
        if b.shape != (d,):
            raise ValueError(f"biases[{i}] must have shape ({d},), got {b.shape}")
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise ValueError(f"layer {i} holds a non-finite weight or bias")
    x = np.ascontiguousarray(X, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"X must be a 2-D array (rows x {d} columns), got {x.ndim} dimensions")
    if x.shape[1] != d:
        raise ValueError(f"X has {x.shape[1]} columns, but the network has dimension {d}")
    if x.shape[0] == 0:
        raise ValueError("X has no rows")
    if not np.all(np.isfinite(x)):
        raise ValueError("X contains NaN or infinity")
    return ws, bs, x


def _spline_setup(
    activation: str,
    alpha: float,
    splines: Optional[Sequence[npt.ArrayLike]],
    bins: Optional[int],
    bound: float,
    n_layers: int,
    d: int,
) -> Tuple[Optional[List[F64Array]], float, int]:
    """The native arguments of the activation: the spline parameters (float64, checked:
    one ``(D, 3 K - 1)`` matrix per hidden layer), the activation's parameter (``alpha``,
    or a spline's ``bound``) and the bins ``K``."""
    if activation != "spline":
        if splines is not None:
            raise ValueError(f"splines are the parameters of activation='spline', not of {activation!r}")
        return None, float(alpha), 2
    b = check_bound(bound)
    if bins is not None and (
        isinstance(bins, (bool, np.bool_)) or not isinstance(bins, (int, np.integer)) or not 2 <= bins <= MAX_BINS
    ):
        raise ValueError(f"bins must be None or an integer from 2 to {MAX_BINS}, got {bins!r}")
    if splines is None:
        # Every spline starts as the identity (the library's start).
        return None, b, DEFAULT_BINS if bins is None else int(bins)
    if isinstance(splines, np.ndarray) and splines.ndim == 2:
        raise ValueError("splines must be a sequence of (D, 3 K - 1) arrays, one per hidden layer, not a single array")
    ss = [np.ascontiguousarray(m, dtype=np.float64) for m in splines]
    if len(ss) != n_layers - 1:
        raise ValueError(
            f"splines must hold one array per hidden layer: {n_layers - 1} for {n_layers} layers, got {len(ss)}"
        )
    k = bins
    for i, m in enumerate(ss):
        if m.ndim != 2 or m.shape[0] != d or m.shape[1] % 3 != 2 or not 2 <= (m.shape[1] + 1) // 3 <= MAX_BINS:
            raise ValueError(
                f"splines[{i}] must have shape ({d}, 3 K - 1) with K from 2 to {MAX_BINS} bins, got shape {m.shape}"
            )
        got = (m.shape[1] + 1) // 3
        if k is None:
            k = got
        elif got != k:
            raise ValueError(f"splines[{i}] has shape {m.shape}, {got} bins, expected ({d}, {3 * k - 1}) for {k} bins")
        if not np.all(np.isfinite(m)):
            raise ValueError(f"splines[{i}] holds a non-finite value")
    return ss, b, DEFAULT_BINS if k is None else int(k)


@overload
def gradient(
    weights: Sequence[npt.ArrayLike],
    biases: Sequence[npt.ArrayLike],
    X: npt.ArrayLike,
    kind: str = ...,
    activation: FixedActivation = ...,
    alpha: float = ...,
    base: str = ...,
    *,
    splines: None = ...,
    bins: Optional[int] = ...,
    bound: float = ...,
) -> Gradient: ...
@overload
def gradient(
    weights: Sequence[npt.ArrayLike],
    biases: Sequence[npt.ArrayLike],
    X: npt.ArrayLike,
    kind: str,
    activation: Literal["spline"],
    alpha: float = ...,
    base: str = ...,
    *,
    splines: Optional[Sequence[npt.ArrayLike]] = ...,
    bins: Optional[int] = ...,
    bound: float = ...,
) -> SplineGradient: ...
@overload
def gradient(
    weights: Sequence[npt.ArrayLike],
    biases: Sequence[npt.ArrayLike],
    X: npt.ArrayLike,
    kind: str = ...,
    *,
    activation: Literal["spline"],
    alpha: float = ...,
    base: str = ...,
    splines: Optional[Sequence[npt.ArrayLike]] = ...,
    bins: Optional[int] = ...,
    bound: float = ...,
) -> SplineGradient: ...
@overload
def gradient(
    weights: Sequence[npt.ArrayLike],
    biases: Sequence[npt.ArrayLike],
    X: npt.ArrayLike,
    kind: str = ...,
    activation: str = ...,
    alpha: float = ...,
    base: str = ...,
    *,
    splines: Optional[Sequence[npt.ArrayLike]] = ...,
    bins: Optional[int] = ...,
    bound: float = ...,
) -> Union[Gradient, SplineGradient]: ...


def gradient(
    weights: Sequence[npt.ArrayLike],
    biases: Sequence[npt.ArrayLike],
    X: npt.ArrayLike,
    kind: str = "relative",
    activation: str = "smooth-leaky-relu",
    alpha: float = 0.01,
    base: str = "normal",
    *,
    splines: Optional[Sequence[npt.ArrayLike]] = None,
    bins: Optional[int] = None,
    bound: float = 3.0,
) -> Union[Gradient, SplineGradient]:
    """Update directions of the mean log-likelihood of the rows of ``X``.

    Parameters
    ----------
    weights : sequence of array-like of shape (D, D)
        The weight of every layer, applied to row vectors (``y = h @ W + b``); each must
        be invertible.
    biases : sequence of array-like of shape (D,)
        The bias of every layer.
    X : array-like of shape (n_samples, D)
        A batch of rows in the network's space (no preprocessing).
    kind : {"relative", "naive"}, default="relative"
        ``"relative"``: the relative gradient of Gresele et al. (2020), the Euclidean
        gradient multiplied by ``A A^T`` with ``A = [[W, 0], [b^T, 1]]`` per layer, at
        ``O(B D^2)`` cost and with no inverse. ``"naive"``: the Euclidean gradient
        ``dJ/dW``, ``dJ/db`` (an LU inverse per layer).
    activation : {"smooth-leaky-relu", "leaky-relu", "tanh-linear", "spline"}, default="smooth-leaky-relu"
        Activation between layers; ``"spline"``: learnable monotone rational-quadratic
        splines, one per unit and hidden layer (see ``splines``).
    alpha : float, default=0.01
        The fixed activations' parameter (not used by ``"spline"``).
    base : {"normal", "laplace", "logistic"}, default="normal"
        Base density of the latents.
    splines : sequence of array-like of shape (D, 3 * K - 1), optional
        With ``activation="spline"``: the spline parameters of every hidden layer
        (``len(weights) - 1`` arrays), one row per unit: ``K`` width logits, ``K`` height
        logits and ``K - 1`` interior slope parameters, the layout of
        :attr:`Flow.splines_ <relgrad.Flow>`. ``None`` (the default) starts every spline at the
        identity, the library's start (all logits 0, every slope 1).
    bins : int, optional
        With ``activation="spline"``: the bins ``K`` of every spline, from 2 to 256;
        ``None`` takes them from ``splines`` (16 without).
    bound : float, default=3.0
        With ``activation="spline"``: every spline maps ``[-bound, bound]`` onto itself
        and is the identity outside.

    Returns
    -------
    dW : list of ndarray of shape (D, D)
        The direction for every weight (float64).
    db : list of ndarray of shape (D,)
        The direction for every bias.
    mean_ll : float
        The mean log-likelihood ``J`` of the rows (nats).
    dS : list of ndarray of shape (D, 3 * K - 1)
        Only with ``activation="spline"`` (a fourth element): the Euclidean gradient
        ``dJ/dS`` of every hidden layer's spline parameters, whatever ``kind`` (the
        relative gradient concerns the weights and biases).

    Notes
    -----
    All are ascent directions of ``J``: ``W += lr * dW``, ``b += lr * db`` (and ``S +=
    lr_s * dS``). With ``G_W``, ``G_b`` the naive gradient of a layer (``b`` and ``G_b``
    as columns), the relative one is ``dW = W W^T G_W + W b G_b^T`` and
    ``db^T = b^T W^T G_W + (1 + b^T b) G_b^T``.

    Examples
    --------
    >>> import numpy as np, relgrad
    >>> rng = np.random.default_rng(0)
    >>> W = [np.eye(3) + 0.1 * rng.normal(size=(3, 3)) for _ in range(2)]
    >>> b = [np.zeros(3), np.zeros(3)]
    >>> dW, db, ll = relgrad.gradient(W, b, rng.normal(size=(64, 3)))
    >>> [w.shape for w in dW]
    [(3, 3), (3, 3)]

    With spline activations (identity splines of 8 bins to start), a fourth element:

    >>> dW, db, ll, dS = relgrad.gradient(W, b, rng.normal(size=(64, 3)), activation="spline", bins=8)
    >>> [s.shape for s in dS]
    [(3, 23)]
    """
    kind = _choice("kind", kind, GRADIENTS)
    activation = _choice("activation", activation, ACTIVATIONS)
    base = _choice("base", base, BASES)
    ws, bs, x = _network(weights, biases, X)
    ss, parameter, k = _spline_setup(activation, alpha, splines, bins, bound, len(ws), x.shape[1])
    dw, db, ds, ll = _relgrad.gradient(ws, bs, ss, x, kind, activation, parameter, k, base)
    if activation == "spline":
        return list(dw), list(db), float(ll), list(ds)
    return list(dw), list(db), float(ll)


def log_prob(
    weights: Sequence[npt.ArrayLike],
    biases: Sequence[npt.ArrayLike],
    X: npt.ArrayLike,
    activation: str = "smooth-leaky-relu",
    alpha: float = 0.01,
    base: str = "normal",
    *,
    splines: Optional[Sequence[npt.ArrayLike]] = None,
    bins: Optional[int] = None,
    bound: float = 3.0,
) -> F64Array:
    """Exact log-density of every row under a bare network (no preprocessing).

    ``log p(x) = sum_j log p(z_j) + sum_{l<L} sum_j log sigma'(y_lj) + sum_l log|det W_l|``,
    in float64.

    Parameters
    ----------
    weights : sequence of array-like of shape (D, D)
        The weight of every layer (``y = h @ W + b``).
    biases : sequence of array-like of shape (D,)
        The bias of every layer.
    X : array-like of shape (n_samples, D)
        Rows in the network's space.
    activation : {"smooth-leaky-relu", "leaky-relu", "tanh-linear", "spline"}, default="smooth-leaky-relu"
        Activation between layers.
    alpha : float, default=0.01
        The fixed activations' parameter (not used by ``"spline"``).
    base : {"normal", "laplace", "logistic"}, default="normal"
        Base density of the latents.
    splines : sequence of array-like of shape (D, 3 * K - 1), optional
        With ``activation="spline"``: the spline parameters of every hidden layer, as in
        :func:`gradient`; ``None`` is the identity.
    bins : int, optional
        With ``activation="spline"``: the bins ``K``; ``None`` takes them from
        ``splines`` (16 without).
    bound : float, default=3.0
        With ``activation="spline"``: the splines' interval ``[-bound, bound]``.

    Returns
    -------
    log_density : ndarray of shape (n_samples,)
        The log-density of every row (nats); its mean is ``gradient(...)[2]``.

    Examples
    --------
    A fitted spline :class:`~relgrad.Flow` is a bare network after its preprocessing:

    >>> import numpy as np, relgrad
    >>> X = np.random.default_rng(0).normal(size=(300, 2))
    >>> flow = relgrad.Flow(activation="spline", bins=8, max_epochs=5, random_state=0).fit(X)
    >>> Z = (X - flow.preprocess_["mean"]) / flow.preprocess_["std"]
    >>> ll = relgrad.log_prob(flow.weights_, flow.biases_, Z, activation="spline",
    ...                       splines=flow.splines_, bound=flow.bound)
    >>> bool(np.allclose(ll, flow.score_samples(X) + np.log(flow.preprocess_["std"]).sum(), atol=1e-4))
    True
    """
    activation = _choice("activation", activation, ACTIVATIONS)
    base = _choice("base", base, BASES)
    ws, bs, x = _network(weights, biases, X)
    ss, parameter, k = _spline_setup(activation, alpha, splines, bins, bound, len(ws), x.shape[1])
    return _relgrad.network_log_prob(ws, bs, ss, x, activation, parameter, k, base)
