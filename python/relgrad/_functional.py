"""The functional layer: update directions and log-densities of a bare network.

For people with their own training loop (NumPy, JAX, PyTorch): the network is given as
plain arrays, there is no preprocessing and no state. Layer ``l`` maps row vectors as
``y = h @ W[l] + b[l]``; the activation is applied after every layer but the last, whose
output ``z`` has the factorised base density.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np
import numpy.typing as npt

from . import _relgrad
from ._config import ACTIVATIONS, BASES, GRADIENTS

F64Array = npt.NDArray[np.float64]


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


def gradient(
    weights: Sequence[npt.ArrayLike],
    biases: Sequence[npt.ArrayLike],
    X: npt.ArrayLike,
    kind: str = "relative",
    activation: str = "smooth-leaky-relu",
    alpha: float = 0.01,
    base: str = "normal",
) -> Tuple[List[F64Array], List[F64Array], float]:
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
    activation : {"smooth-leaky-relu", "leaky-relu", "tanh-linear"}, default="smooth-leaky-relu"
        Activation between layers.
    alpha : float, default=0.01
        The activation's parameter.
    base : {"normal", "laplace", "logistic"}, default="normal"
        Base density of the latents.

    Returns
    -------
    dW : list of ndarray of shape (D, D)
        The direction for every weight (float64).
    db : list of ndarray of shape (D,)
        The direction for every bias.
    mean_ll : float
        The mean log-likelihood ``J`` of the rows (nats).

    Notes
    -----
    Both are ascent directions of ``J``: ``W += lr * dW``, ``b += lr * db``. With
    ``G_W``, ``G_b`` the naive gradient of a layer (``b`` and ``G_b`` as columns), the
    relative one is ``dW = W W^T G_W + W b G_b^T`` and
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
    """
    kind = _choice("kind", kind, GRADIENTS)
    activation = _choice("activation", activation, ACTIVATIONS)
    base = _choice("base", base, BASES)
    ws, bs, x = _network(weights, biases, X)
    dw, db, ll = _relgrad.gradient(ws, bs, x, kind, activation, float(alpha), base)
    return list(dw), list(db), float(ll)


def log_prob(
    weights: Sequence[npt.ArrayLike],
    biases: Sequence[npt.ArrayLike],
    X: npt.ArrayLike,
    activation: str = "smooth-leaky-relu",
    alpha: float = 0.01,
    base: str = "normal",
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
    activation : {"smooth-leaky-relu", "leaky-relu", "tanh-linear"}, default="smooth-leaky-relu"
        Activation between layers.
    alpha : float, default=0.01
        The activation's parameter.
    base : {"normal", "laplace", "logistic"}, default="normal"
        Base density of the latents.

    Returns
    -------
    log_density : ndarray of shape (n_samples,)
        The log-density of every row (nats); its mean is ``gradient(...)[2]``.
    """
    activation = _choice("activation", activation, ACTIVATIONS)
    base = _choice("base", base, BASES)
    ws, bs, x = _network(weights, biases, X)
    return _relgrad.network_log_prob(ws, bs, x, activation, float(alpha), base)
