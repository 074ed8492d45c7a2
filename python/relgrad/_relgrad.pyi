"""Type stubs of the native module ``relgrad._relgrad`` (Rust, PyO3).

The native module holds no policy: no defaults, no validation of shapes beyond what the
library checks, no estimator logic. Every function is stateless: a model is passed as
``(weights, biases, splines, meta)`` where ``weights`` is a list of ``(D, D)`` arrays
(row-major, applied as ``y = x @ W + b``), ``biases`` a list of ``(D,)`` arrays,
``splines`` a list of ``(D, 3 K - 1)`` arrays, one per hidden layer, for the
``"spline"`` activation (each row one unit's ``K`` width logits, ``K`` height logits and
``K - 1`` slope parameters; an empty list for the other activations) followed, when
``meta["base"]`` is ``"mixture"``, by the base's ``(D, 3 K)`` array (each row one latent
coordinate's ``K`` locations, ``K`` log-scales and ``K`` weight logits), and ``meta`` a JSON
string with the keys ``activation`` (``"smooth-leaky-relu"``, ``"leaky-relu"``,
``"tanh-linear"``, ``"spline"``), ``alpha`` (float: the activation's parameter, a
spline's bound ``T``), ``bins`` (a spline's ``K``; null or absent otherwise), ``base``
(``"normal"``, ``"laplace"``, ``"logistic"``, ``"mixture"``; ``components``, the
mixture's ``K``, is taken from its array), ``precision`` (``"f32"``/``"f64"``),
``preprocess`` (an object:
``{"kind": "none"}``, ``{"kind": "standardize", "mean": [...], "std": [...]}`` or
``{"kind": "logit", "levels": L, "lambda": 1e-6}``), ``seed`` (int, the dequantisation
noise seed) and optionally ``train_log_prob_quantiles`` (``[[q, v], ...]``), ``image``
(``{"height": h, "width": w}`` or null), ``training``, ``data``, ``metrics`` (objects).

Arrays: ``float64`` C-contiguous input is read in place; ``float32`` and other layouts are
accepted and converted once. Outputs are ``float64`` except weights and biases, which
come in the model's precision (``float32`` or ``float64``).

Errors: ``ValueError`` for invalid data, settings or model files (the message names what
is wrong), ``OSError`` for files that cannot be read or written, ``RuntimeError`` for an
internal error (a Rust panic is caught and reported as one).
"""

from typing import Callable, Optional, Sequence

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.floating]

__version__: str

SPLINE_MAX_DIM: int
"""The widest data (columns) that ``automatic_architecture`` gives spline activations
(``relgrad_model::SPLINE_MAX_DIM``)."""

SPLINE_LAYERS: int
"""The layers ``automatic_architecture`` gives a spline model
(``relgrad_model::SPLINE_LAYERS``)."""

def default_config() -> str:
    """The fit settings' defaults (those of ``relgrad train``) as a JSON object string with
    the keys of ``fit``'s ``config``."""

def automatic_architecture(dim: int) -> Optional[tuple[str, int, Optional[int], float]]:
    """The architecture ``relgrad train`` chooses, when no activation is named, for data of
    ``dim`` columns (``relgrad_model::automatic_architecture``): ``(activation, layers,
    bins, parameter)`` (``bins`` is ``None`` for a fixed activation; ``parameter`` is its
    ``alpha``, a spline's bound), or ``None`` to keep ``default_config()``'s activation
    and layers. The CLI, and ``relgrad.Flow``, keep the user's bins and bound."""

def fit(
    x: Array,
    x_val: Optional[Array],
    config: str,
    callback: Optional[Callable[[int, Optional[float], Optional[float]], Optional[bool]]],
    verbose: int,
) -> tuple[
    list[Array],
    list[Array],
    list[Array],
    str,
    list[tuple[int, Optional[float], Optional[float], float]],
    str,
    Optional[BaseException],
]:
    """Fits a model with the GIL released.

    ``config`` is a JSON object with the keys ``preprocess`` (``"auto"``, ``"none"``,
    ``"standardize"``, ``"logit"``), ``levels`` (int or null), ``layers``, ``activation``,
    ``alpha`` (the activation's parameter: a spline's bound), ``bins`` (a spline's bins),
    ``base``, ``init`` (``{"kind": "data", "shift": s}``, ``{"kind":
    "orthogonal"}``, ``{"kind": "identity"}``), ``optimizer`` (``{"name": "sgd", "lr": lr,
    "momentum": m}`` or ``{"name": "adam", "lr": lr}``), ``spline_optimizer`` (the spline
    parameters' optimizer, as ``optimizer``), ``batch_size`` (int or ``"full"``),
    ``epochs`` (maximum), ``look_ahead`` (0: none), ``lr_decays``, ``lr_decay``, ``seed``, ``shuffle``, ``gradient``
    (``"relative"``/``"naive"``), ``precision`` (``"f32"``/``"f64"``), ``threads`` (int, 0 for
    automatic). Missing keys take ``default_config()``'s values.

    ``callback(epoch, train_ll, val_ll)`` is called after every epoch (epoch 0 is the start);
    returning ``False`` stops training. With ``verbose >= 1`` one line per epoch is printed
    to ``sys.stdout`` (log-likelihoods and rows/s). Signals are checked after every epoch and
    every few steps: Ctrl-C stops training.

    Returns ``(weights, biases, splines, meta, history, stop, exception)``: the best
    parameters found,
    ``meta`` (as above, with ``training``, ``data`` and ``metrics`` filled in), one
    ``(epoch, train_ll, val_ll, seconds)`` per evaluated epoch (after a divergence the last
    entry is the diverged epoch, with a NaN or missing log-likelihood), ``stop`` (``"max_epochs"``,
    ``"early_stopped"``, ``"diverged"``, ``"cancelled"``), and the exception to re-raise
    after keeping the parameters (a ``KeyboardInterrupt`` from Ctrl-C, or the exception a
    callback raised), else ``None``."""

def log_prob(
    weights: Sequence[Array], biases: Sequence[Array], splines: Sequence[Array], meta: str, x: Array, part: str
) -> npt.NDArray[np.float64]:
    """Log-density of every row in the data's units (nats). ``part`` (``"train"``, ``"val"``,
    ``"test"``, ``"all"``) selects the dequantisation noise stream of logit models."""

def log_prob_model_space(
    weights: Sequence[Array], biases: Sequence[Array], splines: Sequence[Array], meta: str, x: Array, part: str
) -> npt.NDArray[np.float64]:
    """Log-density of every row in the network's space (after preprocessing), nats."""

def forward(
    weights: Sequence[Array], biases: Sequence[Array], splines: Sequence[Array], meta: str, x: Array
) -> npt.NDArray[np.float64]:
    """The latents of every row (preprocessing, then the network)."""

def inverse(
    weights: Sequence[Array], biases: Sequence[Array], splines: Sequence[Array], meta: str, z: Array
) -> npt.NDArray[np.float64]:
    """Latents mapped back to the data's units."""

def sample(
    weights: Sequence[Array], biases: Sequence[Array], splines: Sequence[Array], meta: str, n: int, seed: int
) -> npt.NDArray[np.float64]:
    """``n`` exact samples in the data's units, from a seeded generator."""

def save(weights: Sequence[Array], biases: Sequence[Array], splines: Sequence[Array], meta: str, path: str) -> None:
    """Writes the model file (the same format as ``relgrad train``), atomically."""

def load(path: str) -> tuple[list[Array], list[Array], list[Array], str]:
    """Reads and validates a model file: ``(weights, biases, splines, meta)``."""

def gradient(
    weights: Sequence[Array],
    biases: Sequence[Array],
    splines: Optional[Sequence[Array]],
    x: Array,
    kind: str,
    activation: str,
    alpha: float,
    bins: int,
    base: str,
) -> tuple[list[npt.NDArray[np.float64]], list[npt.NDArray[np.float64]], list[npt.NDArray[np.float64]], float]:
    """Update directions of the mean log-likelihood of the rows ``x`` (network space, no
    preprocessing), in float64: ``kind="relative"`` gives ``W W^T dJ/dW``-style directions
    (the relative gradient, ``O(B D^2)``), ``kind="naive"`` the Euclidean gradient.
    ``alpha`` is the activation's parameter (a spline's bound), ``bins`` a spline's bins
    (ignored otherwise); ``splines`` the spline parameters of every hidden layer (spline
    activation only; ``None``: every spline the identity). Returns ``(dW per layer, db per
    layer, dS per hidden layer, mean log-likelihood)``; ``dS`` is the Euclidean gradient of
    the spline parameters whatever ``kind`` (empty without splines)."""

def network_log_prob(
    weights: Sequence[Array],
    biases: Sequence[Array],
    splines: Optional[Sequence[Array]],
    x: Array,
    activation: str,
    alpha: float,
    bins: int,
    base: str,
) -> npt.NDArray[np.float64]:
    """Exact log-density of every row under the bare network (no preprocessing), float64;
    the arguments as ``gradient``'s."""

def split_rows(n: int, n_val: int, n_test: int, seed: int) -> tuple[list[int], list[int], list[int]]:
    """The seeded split of ``relgrad train``: ``(train, val, test)`` row indices, each
    increasing."""

def holdout_rows(n: int, fraction: float) -> int:
    """Rows a fraction of ``n`` rows holds out (as ``relgrad train`` rounds)."""
