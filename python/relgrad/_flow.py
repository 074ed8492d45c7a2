"""The scikit-learn estimator :class:`Flow` and :func:`load`."""

from __future__ import annotations

import json
import os
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt
import sklearn
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_array, check_is_fitted

from . import _relgrad
from ._config import (
    RandomStateLike,
    check_params,
    fit_config,
    params_from_meta,
    record_settings,
    resolve_architecture,
    seed_of,
    stop_reason_from_training,
)

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    _validate_data = None

_SKLEARN_VERSION = tuple(int(p) for p in sklearn.__version__.split(".")[:2] if p.isdigit())
# `force_all_finite` was renamed `ensure_all_finite` in scikit-learn 1.6.
_FINITE = "ensure_all_finite" if _SKLEARN_VERSION >= (1, 6) else "force_all_finite"

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.floating]
Callback = Callable[[int, Optional[float], Optional[float]], Optional[bool]]
PathLike = Union[str, "os.PathLike[str]"]


def _check_pixels(X: FloatArray, p: Dict[str, Any], name: str = "X") -> None:
    """For the logit preprocessing, every value must be an integer pixel in
    ``0..levels-1``: a ``ValueError`` names the first one that is not, counting rows and
    columns of ``X`` (called ``name``) from 1 (before the validation rows are split off)."""
    levels = p.get("levels")
    if levels is None or p.get("preprocess") not in ("auto", "logit"):
        return
    bad = ~((X >= 0) & (X <= levels - 1) & (X == np.floor(X)))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(
            f"{name}: row {i + 1}, column {j + 1}: expected an integer pixel value in 0..={levels - 1} "
            f"for the logit preprocessing (levels={levels}), found {X[i, j]}"
        )


class Flow(DensityMixin, BaseEstimator):
    """A deep density model trained by exact maximum likelihood with the relative gradient.

    An invertible, fully connected network maps each row ``x`` to latents ``z`` with a
    factorised base density; the log-density of ``x`` is exact (change of variables).
    Training follows Gresele et al. (NeurIPS 2020): the relative gradient makes a step
    cost ``O(B D^2)``, with no matrix inverse. The work is done by the Rust library
    (``relgrad``) with the GIL released; the parameters below are ``relgrad train``'s
    options, with the same defaults, and a model saved here is a model file of the
    command-line tool (and the reverse).

    By default the architecture follows the data's width, as ``relgrad train`` chooses
    it when ``--activation`` is not given (``relgrad_model::automatic_architecture``,
    measured on held-out data in ``docs/quality-capacity.md``): data of at most 4 columns get
    learnable spline activations at 16 layers, wider data tanh-linear activations at 3
    layers. ``fit`` resolves ``"auto"``; ``activation_`` and ``n_layers_`` say what it
    chose.

    Parameters
    ----------
    n_layers : int or "auto", default="auto"
        Number of layers ``L``, each ``D x D`` with a bias, an activation between layers
        (``relgrad train --layers``). ``"auto"`` is 8 with spline activations (named, or
        chosen by ``activation="auto"``) and 3 with the others, the CLI's defaults; the
        number used is ``n_layers_``.
    activation : {"auto", "tanh-linear", "smooth-leaky-relu", "leaky-relu", "spline"}, default="auto"
        Activation between layers (``--activation``). ``"auto"`` chooses by the number
        of columns ``D`` of the data ``fit`` sees, like ``relgrad train`` without
        ``--activation``: ``"spline"`` (with this estimator's ``bins`` and ``bound``)
        when ``D <= 4``, ``"tanh-linear"`` above; measured on held-out data
        (``docs/quality-capacity.md``): on the seven built-in 2-D sets splines at 16
        layers come within 0.1 nats per row of a tuned Gaussian mixture or KDE, where
        tanh-linear stays 0.7 to 1.5 nats below; on diabetes, breast cancer and the
        digits (``D`` = 10, 30, 64) tanh-linear at 3 layers is ahead, on wine (13)
        behind. The activation used is ``activation_``.
        The named ones: ``"tanh-linear"`` is ``tanh(x) + alpha x``,
        ``"smooth-leaky-relu"`` the paper's ``alpha x + (1 - alpha) softplus(x)``,
        ``"leaky-relu"`` the leaky ReLU, and ``"spline"`` learnable monotone
        rational-quadratic splines (Durkan et al., 2019), one per unit and hidden layer,
        with ``bins`` bins on ``[-bound, bound]`` and the identity outside. Each starts as the identity and is trained
        with the network (by Adam at ``spline_learning_rate``). Splines add capacity
        where the dimension is small (2-D data, a few columns), where a fixed activation
        leaves little room between the layers.
    alpha : float, default=0.1
        The fixed activations' parameter, the slope of their linear part (``--alpha``;
        not used by splines, named or chosen).
    bins : int, default=16
        Bins ``K`` of every spline, from 2 to 256 (``--bins``; used with
        spline activations, named or chosen by ``"auto"``). Each unit's spline has ``3 K - 1`` parameters.
    bound : float, default=3.0
        Every spline maps ``[-bound, bound]`` onto itself and is the identity outside
        (``--bound``; used with spline activations, named or chosen): positive and finite, at most
        ``1e6``. It is on the scale of the hidden units' inputs, which the
        data-dependent start (``init="data"``) whitens (unit variance, centred at
        ``init_shift``), so the default covers nearly every row at the start.
    base : {"normal", "laplace", "logistic", "mixture"}, default="normal"
        Base density of the latents (``--base``). ``"mixture"`` is learnable: for every
        latent coordinate a mixture of ``components`` logistic densities whose
        locations, scales and weights are trained with the network (by Adam at
        ``spline_learning_rate``; ``relgrad_core::mixture``). It starts with unit
        variance, its locations spread over ``[-0.75, 0.75]``, and adds what a Gaussian
        mixture has where the layers have little room: clustered or discrete columns,
        few rows.
    components : int, default=3
        Components ``K`` of a ``"mixture"`` base per coordinate, from 1 to 64
        (``--components``; not used by the fixed bases). Each coordinate has ``3 K``
        parameters.
    init : {"data", "orthogonal", "identity"}, default="data"
        Starting parameters (``--init-scheme``): ``"data"`` starts near the best
        full-covariance Gaussian of the training rows (it needs more training rows than
        columns, else ``fit`` raises ``ValueError``; there is no silent fallback: use
        ``"orthogonal"`` or ``"identity"`` for such data), ``"orthogonal"`` draws random
        orthogonal weights from the seed, ``"identity"`` starts at the identity.
    init_shift : float or "auto", default=0.0
        The data-dependent start's placement of each hidden layer's whitened input
        (``--init-shift``; only with ``init="data"``): a number centres it there at unit
        scale (larger is more nearly linear); ``"auto"`` keeps it centred at a nearly
        linear scale chosen per layer, which starts within half a nat per row of the best
        Gaussian at any depth but trains slowly from there with the default optimizer.
    optimizer : {"sgd", "adam"}, default="sgd"
        Optimizer (``--optimizer``). SGD with momentum keeps the relative gradient's
        equivariance; Adam rescales each coordinate and works best with
        ``gradient="naive"``.
    learning_rate : float, default=1e-3
        Learning rate (``--lr``).
    spline_learning_rate : float, default=3e-3
        Adam's learning rate for the spline parameters and a mixture base's (``--spline-lr``;
        used with spline activations, named or chosen, and with ``base="mixture"``,
        whatever ``optimizer`` the weights use). It decays with
        ``learning_rate``: every decay multiplies both by ``lr_decay``.
    momentum : float, default=0.9
        Heavy-ball momentum of SGD, in ``[0, 1)`` (``--momentum``; ignored by Adam).
    batch_size : int or "full", default=100
        Rows per mini-batch, or ``"full"`` for the whole training set (``--batch-size``).
    max_epochs : int, default=1000
        Maximum number of epochs (``--epochs``).
    n_iter_no_change : int, default=30
        Stop after this many epochs without a better validation log-likelihood; the best
        parameters are kept (``--look-ahead``; 0: never stop early). Without validation
        rows the training log-likelihood decides.
    lr_decays : int, default=2
        How many of those plateaus (or diverged epochs) decay the learning rate instead of
        ending training: training goes on from the best parameters with the rate times
        ``lr_decay`` and fresh optimizer moments (``--lr-decays``; 0: the first plateau or
        divergence ends training).
    lr_decay : float, default=0.3
        What a decay multiplies the learning rate by, in ``(0, 1)`` (``--lr-decay``).
    validation_fraction : float, default=0.1
        Fraction of the rows held out for validation, in ``[0, 1)``
        (``--val-fraction``). The rows are chosen exactly as ``relgrad train --seed
        SEED --test-fraction 0`` chooses them, from the same seed; 0 holds out none.
    preprocess : {"auto", "none", "standardize", "logit"}, default="auto"
        Preprocessing fitted on the training rows (``--preprocess``): ``"auto"`` is
        ``"logit"`` when ``levels`` is given and ``"standardize"`` otherwise;
        ``"standardize"`` centres and scales every column (a constant column keeps scale
        1); ``"logit"`` dequantises integer pixels ``0 .. levels - 1`` with seeded
        uniform noise and applies the logit.
    levels : int or None, default=None
        Quantisation levels of integer pixel data (17 for the 8x8 digits, 256 for 8-bit
        images), for ``"logit"`` (``--levels``).
    gradient : {"relative", "naive"}, default="relative"
        The update direction (``--gradient``): the relative gradient (no inverse) or the
        Euclidean gradient (an LU inverse per layer and step).
    dtype : {"float32", "float64"}, default="float32"
        Precision of the network's parameters and arithmetic (``--precision f32/f64``).
    shuffle : bool, default=True
        Visit the training rows in a new seeded order every epoch (``--no-shuffle``
        turns it off).
    n_threads : int or None, default=None
        Threads for the matrix products; ``None`` lets the library decide
        (``--threads auto``).
    random_state : int, RandomState instance or None, default=None
        Seed of the validation split, the shuffles, the dequantisation noise and random
        starts (``--seed``). An integer is the seed itself, so ``random_state=s`` fits
        exactly what ``relgrad train --seed s`` fits; ``None`` is seed 0 (the CLI's
        default), so repeated fits are identical; a ``RandomState`` (or NumPy
        ``Generator``) instance is drawn from once per fit.
    verbose : int, default=0
        With ``verbose >= 1``, one line per epoch (log-likelihoods and rows/s) is printed
        to ``sys.stdout``.

    Attributes
    ----------
    activation_ : str
        The activation of the fitted model: ``activation``, or what ``"auto"`` chose
        for the data's width (``"spline"`` or ``"tanh-linear"``).
    n_layers_ : int
        The number of layers of the fitted model: ``n_layers``, or what ``"auto"``
        chose (8 for splines, 3 otherwise).
    weights_ : list of ndarray of shape (n_features_in_, n_features_in_)
        The weight of every layer, applied to row vectors as ``y = x @ W + b``, in the
        model's ``dtype``: the best parameters found (by validation log-likelihood).
    biases_ : list of ndarray of shape (n_features_in_,)
        The bias of every layer.
    splines_ : list of ndarray of shape (n_features_in_, 3 * bins - 1)
        With ``activation="spline"``, the spline parameters of every hidden layer
        (``n_layers - 1`` of them), in the model's ``dtype``: one row per unit, its
        ``bins`` width logits, ``bins`` height logits and ``bins - 1`` interior slope
        parameters (``relgrad_core::spline``); empty for the fixed activations.
    base_params_ : ndarray of shape (n_features_in_, 3 * components) or None
        With ``base="mixture"``, the base's parameters in the model's ``dtype``: one row
        per latent coordinate, its ``components`` locations, log-scales and weight
        logits; ``None`` for the fixed bases.
    preprocess_ : dict
        The fitted preprocessing: ``{"kind": "none"}``, ``{"kind": "standardize",
        "mean": [...], "std": [...]}`` or ``{"kind": "logit", "levels": L, "lambda":
        1e-6}``.
    history_ : dict of ndarray
        The learning curve, one entry per evaluated epoch (epoch 0 is the start):
        ``"epoch"`` (int), ``"train_ll"`` and ``"val_ll"`` (mean log-likelihood in the
        network's space, nats; NaN where not evaluated) and ``"seconds"`` (the epoch's
        training time). Empty for a model read by :func:`relgrad.load` (the model file
        does not keep the curve; ``relgrad train`` writes it to ``metrics.csv``).
    best_epoch_ : int
        The epoch whose parameters were kept.
    n_epochs_ : int
        Epochs run.
    stop_reason_ : {"max_epochs", "early_stopped", "diverged", "cancelled"}
        Why training stopped.
    n_features_in_ : int
        Number of columns seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names seen in ``fit``, when ``X`` has string column names (a pandas
        DataFrame). Not stored in model files.

    See Also
    --------
    relgrad.load : A fitted ``Flow`` from a model file.
    relgrad.gradient : The update directions of a bare network, for your own loop.
    sklearn.mixture.GaussianMixture, sklearn.neighbors.KernelDensity

    Notes
    -----
    Fitting releases the GIL. Ctrl-C (``KeyboardInterrupt``) stops training within a
    fraction of a second; the estimator then holds the best parameters found so far
    before the exception propagates, as it does when a ``callback`` raises.

    Examples
    --------
    >>> import numpy as np
    >>> from relgrad import Flow
    >>> X = np.random.default_rng(0).normal(size=(500, 3))
    >>> flow = Flow(max_epochs=20, random_state=0).fit(X)
    >>> flow.score_samples(X[:2]).shape
    (2,)
    >>> flow.sample(4, random_state=1).shape
    (4, 3)

    The architecture follows the data's width: 3 columns get learnable spline
    activations at 16 layers, 6 columns tanh-linear at 3 layers.

    >>> flow.activation_, flow.n_layers_
    ('spline', 16)
    >>> wide = Flow(max_epochs=5, random_state=0).fit(np.random.default_rng(1).normal(size=(500, 6)))
    >>> wide.activation_, wide.n_layers_
    ('tanh-linear', 3)

    Explicit settings are kept as given:

    >>> spline = Flow(activation="spline", n_layers=3, bins=8, max_epochs=20, random_state=0).fit(X[:, :2])
    >>> [s.shape for s in spline.splines_]  # one (D, 3 * bins - 1) array per hidden layer
    [(2, 23), (2, 23)]
    """

    def __init__(
        self,
        n_layers: Union[int, str] = "auto",
        activation: str = "auto",
        alpha: float = 0.1,
        bins: int = 16,
        bound: float = 3.0,
        base: str = "normal",
        components: int = 3,
        init: str = "data",
        init_shift: Union[float, str] = 0.0,
        optimizer: str = "sgd",
        learning_rate: float = 1e-3,
        spline_learning_rate: float = 3e-3,
        momentum: float = 0.9,
        batch_size: Union[int, str] = 100,
        max_epochs: int = 1000,
        n_iter_no_change: int = 30,
        lr_decays: int = 2,
        lr_decay: float = 0.3,
        validation_fraction: float = 0.1,
        preprocess: str = "auto",
        levels: Optional[int] = None,
        gradient: str = "relative",
        dtype: str = "float32",
        shuffle: bool = True,
        n_threads: Optional[int] = None,
        random_state: RandomStateLike = None,
        verbose: int = 0,
    ) -> None:
        self.n_layers = n_layers
        self.activation = activation
        self.alpha = alpha
        self.bins = bins
        self.bound = bound
        self.base = base
        self.components = components
        self.init = init
        self.init_shift = init_shift
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.spline_learning_rate = spline_learning_rate
        self.momentum = momentum
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.n_iter_no_change = n_iter_no_change
        self.lr_decays = lr_decays
        self.lr_decay = lr_decay
        self.validation_fraction = validation_fraction
        self.preprocess = preprocess
        self.levels = levels
        self.gradient = gradient
        self.dtype = dtype
        self.shuffle = shuffle
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ validation

    def _check_X(self, X: ArrayLike, *, reset: bool, min_samples: int = 1) -> FloatArray:
        """Validates rows: a finite 2-D float array (float64, or float32 kept as is) in C
        order; ``reset=False`` also checks the columns against ``fit``'s."""
        kwargs: Dict[str, Any] = {
            "dtype": [np.float64, np.float32],
            "order": "C",
            "ensure_min_samples": min_samples,
            _FINITE: True,
        }
        if _validate_data is not None:
            checked: FloatArray = _validate_data(self, X, reset=reset, **kwargs)
        else:  # pragma: no cover - scikit-learn < 1.6
            checked = self._validate_data(X, reset=reset, **kwargs)
        return checked

    def _model(self) -> Tuple[List[FloatArray], List[FloatArray], List[FloatArray], str]:
        check_is_fitted(self, ["weights_", "biases_"])
        # Estimators pickled before spline activations (or the mixture base) existed have
        # no `splines_` (`base_params_`). The native module takes a mixture base's
        # parameters after the splines'.
        elementwise = list(getattr(self, "splines_", []))
        base = getattr(self, "base_params_", None)
        if base is not None:
            elementwise.append(base)
        return self.weights_, self.biases_, elementwise, self._meta

    # ------------------------------------------------------------------ fitting

    def fit(
        self,
        X: ArrayLike,
        y: Any = None,
        callback: Optional[Callback] = None,
        X_val: Optional[ArrayLike] = None,
    ) -> "Flow":
        """Fit the model to the rows of ``X`` by maximum likelihood.

        A fraction ``validation_fraction`` of the rows is held out, chosen from the seed
        exactly as ``relgrad train`` chooses its validation rows; the rest are trained
        on, and the parameters with the best validation log-likelihood are kept. With
        ``X_val``, every row of ``X`` is trained on and ``X_val`` is the validation set
        (as ``relgrad train --val FILE``).
        ``activation="auto"`` and ``n_layers="auto"`` are resolved here, from the number
        of columns of ``X`` (see the class's parameters); ``activation_`` and
        ``n_layers_`` record the result.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows, one sample per row, in the data's own units; finite, at least
            2 rows (and, with ``init="data"``, more training rows than columns).
            Integer and float32 input is accepted.
        y : None
            Ignored; present for API consistency.
        callback : callable, optional
            ``callback(epoch, train_ll, val_ll)`` is called after every epoch (epoch 0 is
            the start) with the mean log-likelihoods in the network's space (``None``
            when not evaluated). Returning ``False`` stops training (``stop_reason_ ==
            "cancelled"``); an exception it raises stops training, the best parameters
            are kept, and the exception propagates.
        X_val : array-like of shape (n_val, n_features), optional
            Validation rows (early stopping, the learning-rate decays and the kept
            parameters follow their log-likelihood) instead of holding out
            ``validation_fraction`` of ``X``. Fitting ``X_train`` with ``X_val`` fits
            exactly what fitting their rows together does when the seeded split holds out
            the ``X_val`` rows.

        Returns
        -------
        self : Flow
            The fitted estimator.

        Raises
        ------
        ValueError
            For invalid parameters or data (NaN or infinite values, a 1-D array, too few
            rows).
        KeyboardInterrupt
            On Ctrl-C, after the best parameters found so far are stored.

        Warns
        -----
        sklearn.exceptions.ConvergenceWarning
            When training diverges (a non-finite log-likelihood or gradient); the best
            parameters found before are kept.
        """
        if callback is not None and not callable(callback):
            raise ValueError(f"callback must be callable or None, got {callback!r}")
        p = check_params(self.get_params(deep=False))
        X = self._check_X(X, reset=True, min_samples=2)
        p["activation"], p["n_layers"] = resolve_architecture(p["activation"], p["n_layers"], X.shape[1])
        seed = seed_of(self.random_state)
        _check_pixels(X, p)
        n = X.shape[0]
        n_val = _relgrad.holdout_rows(n, p["validation_fraction"])
        x_train: FloatArray
        x_val: Optional[FloatArray]
        if X_val is not None:
            x_train, x_val = X, self._check_X(X_val, reset=False)
            _check_pixels(x_val, p, "X_val")
        elif n - n_val < 2:
            raise ValueError(
                f"validation_fraction={p['validation_fraction']} holds out {n_val} of the {n} rows, "
                "leaving fewer than 2 to train on; use more rows or a smaller validation_fraction"
            )
        elif n_val > 0:
            train, val, _ = _relgrad.split_rows(n, n_val, 0, seed)
            x_train = X[np.asarray(train, dtype=np.intp)]
            x_val = X[np.asarray(val, dtype=np.intp)]
        else:
            x_train, x_val = X, None
        config = fit_config(p, seed)
        weights, biases, splines, meta, history, stop, exc = _relgrad.fit(
            x_train, x_val, config, callback, min(p["verbose"], 1)
        )
        given = None if X_val is None or x_val is None else int(x_val.shape[0])
        self._set_fitted(weights, biases, splines, record_settings(meta, p, seed, stop, given), history, stop)
        if stop == "diverged":
            # The diverged epoch is the last one recorded (with a NaN log-likelihood).
            epoch = int(self.history_["epoch"][-1]) if len(history) else self.n_epochs_
            warnings.warn(
                f"training diverged at epoch {epoch} (non-finite log-likelihood or "
                f"gradient); the best parameters (epoch {self.best_epoch_}) were kept; try a "
                f"lower learning_rate than {p['learning_rate']:g}",
                ConvergenceWarning,
                stacklevel=2,
            )
        if exc is not None:
            raise exc
        return self

    def _set_fitted(
        self,
        weights: Sequence[FloatArray],
        biases: Sequence[FloatArray],
        splines: Sequence[FloatArray],
        meta: str,
        history: Sequence[Tuple[int, Optional[float], Optional[float], float]],
        stop: str,
    ) -> None:
        """Stores a model's parameters, metadata and learning curve as fitted attributes."""
        m = json.loads(meta)
        training = m.get("training") if isinstance(m.get("training"), dict) else {}
        self.weights_ = [np.asarray(w) for w in weights]
        self.biases_ = [np.asarray(b) for b in biases]
        # The native module returns a mixture base's parameters after the splines'.
        elementwise = [np.asarray(s) for s in splines]
        self.base_params_ = elementwise.pop() if m.get("base") == "mixture" else None
        self.splines_ = elementwise
        self.activation_ = str(m["activation"])
        self.n_layers_ = len(self.weights_)
        self.preprocess_ = dict(m.get("preprocess") or {"kind": "none"})
        nan = float("nan")
        self.history_ = {
            "epoch": np.array([h[0] for h in history], dtype=np.int64),
            "train_ll": np.array([nan if h[1] is None else h[1] for h in history], dtype=np.float64),
            "val_ll": np.array([nan if h[2] is None else h[2] for h in history], dtype=np.float64),
            "seconds": np.array([h[3] for h in history], dtype=np.float64),
        }
        last = int(self.history_["epoch"][-1]) if len(history) else 0
        self.best_epoch_ = int(training.get("best_epoch", last))
        self.n_epochs_ = int(training.get("epochs_run", last))
        self.stop_reason_ = stop
        self._meta = meta

    # ------------------------------------------------------------------ using

    def score_samples(self, X: ArrayLike) -> npt.NDArray[np.float64]:
        """Log-density of every row, in the data's own units (nats).

        The density includes the preprocessing's Jacobian, so it is the density of ``X``
        itself. For a ``"logit"`` model, the rows are dequantised with noise seeded from
        the model's seed (the stream ``relgrad score`` uses for new data), so a score
        depends on the row's position in ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
            ``log p(x)`` of every row.
        """
        w, b, s, meta = self._model()
        X = self._check_X(X, reset=False)
        return _relgrad.log_prob(w, b, s, meta, X, "all")

    def score(self, X: ArrayLike, y: Any = None) -> float:
        """Mean log-density of the rows of ``X`` (nats per sample).

        The mean, as :meth:`sklearn.mixture.GaussianMixture.score` computes it (note that
        :meth:`sklearn.neighbors.KernelDensity.score` is the *sum*). Higher is better, so
        it works with :class:`~sklearn.model_selection.GridSearchCV` as is.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        score : float
            ``mean(score_samples(X))``.
        """
        return float(np.mean(self.score_samples(X)))

    def sample(self, n_samples: int = 1, random_state: RandomStateLike = None) -> npt.NDArray[np.float64]:
        """Draw exact samples, in the data's own units.

        Latents from the base density are pushed through the inverse network, then the
        preprocessing is undone (for ``"logit"`` models: integer pixels).

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance or None, default=None
            An integer seeds the generator (the samples of ``relgrad sample --seed s``);
            ``None`` draws a seed from NumPy's global random state; a ``RandomState`` or
            ``Generator`` is drawn from.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            The samples. Like :meth:`sklearn.neighbors.KernelDensity.sample`, only ``X``
            is returned (:meth:`sklearn.mixture.GaussianMixture.sample` returns ``(X,
            y)``).
        """
        w, b, s, meta = self._model()
        if isinstance(n_samples, (bool, np.bool_)) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        seed = seed_of(random_state, default=None)
        return _relgrad.sample(w, b, s, meta, int(n_samples), seed)

    def transform(self, X: ArrayLike) -> npt.NDArray[np.float64]:
        """Map rows to their latents (preprocessing, then the network).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows in the data's units.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features)
            The latents, distributed as the base density under the model. For
            ``"logit"`` models the rows are dequantised first (noise as in
            :meth:`score_samples`).
        """
        w, b, s, meta = self._model()
        X = self._check_X(X, reset=False)
        return _relgrad.forward(w, b, s, meta, X)

    def fit_transform(
        self, X: ArrayLike, y: Any = None, callback: Optional[Callback] = None
    ) -> npt.NDArray[np.float64]:
        """Fit the model to ``X``, then map ``X`` to its latents.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows.
        y : None
            Ignored; present for API consistency.
        callback : callable, optional
            As in :meth:`fit`.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features)
            ``self.fit(X).transform(X)``.
        """
        return self.fit(X, callback=callback).transform(X)

    def inverse_transform(self, Z: ArrayLike) -> npt.NDArray[np.float64]:
        """Map latents back to the data's units (the inverse network, then the
        preprocessing undone).

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_features)
            Latents.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Rows in the data's units.
        """
        w, b, s, meta = self._model()
        z: FloatArray = check_array(
            Z, dtype=[np.float64, np.float32], order="C", estimator=self, input_name="Z", **{_FINITE: True}
        )
        if z.shape[1] != self.n_features_in_:
            raise ValueError(
                f"Z has {z.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return _relgrad.inverse(w, b, s, meta, z)

    def save(self, path: PathLike) -> None:
        """Write the model file (safetensors, atomically), the format of ``relgrad train``.

        The file holds the network, the preprocessing and the training settings;
        ``relgrad eval``, ``relgrad score`` and ``relgrad sample`` read it, and
        :func:`relgrad.load` reads it back. The learning curve and column names are not
        stored (pickle the estimator to keep them).

        Parameters
        ----------
        path : str or path-like
            Where to write, conventionally ``*.safetensors``.
        """
        w, b, s, meta = self._model()
        _relgrad.save(w, b, s, meta, os.fspath(path))

    # ------------------------------------------------------------------ tags

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.target_tags.required = False
        # `transform` maps rows to latents; the latents are float64 whatever the input.
        from sklearn.utils import TransformerTags

        tags.transformer_tags = TransformerTags(preserves_dtype=["float64"])
        return tags

    def _more_tags(self) -> Dict[str, Any]:  # scikit-learn < 1.6
        return {"allow_nan": False, "requires_y": False, "X_types": ["2darray"], "preserves_dtype": [np.float64]}


def load(path: PathLike) -> Flow:
    """Read a model file written by :meth:`Flow.save` or by ``relgrad train``.

    Parameters
    ----------
    path : str or path-like
        The model file (``model.safetensors``).

    Returns
    -------
    flow : Flow
        A fitted estimator. Its constructor parameters are those recorded in the file's
        training metadata (so ``sklearn.base.clone(flow).fit(X)`` trains the same
        recipe): ``activation`` and ``n_layers`` are the model's own (``"spline"`` and
        8, say, for a model fitted with ``"auto"``), never ``"auto"``, so a refit keeps
        the architecture whatever the width of the data; ``n_threads`` and ``verbose``
        are not recorded and keep their defaults,
        as do the parameters the model's activation does not use (``alpha`` of a spline
        model; ``bins`` and ``bound`` of the others), and ``history_`` is empty.

    Raises
    ------
    OSError
        When the file cannot be read.
    ValueError
        When it is not a valid model file (the message names what is wrong).
    """
    weights, biases, splines, meta = _relgrad.load(os.fspath(path))
    m = json.loads(meta)
    defaults = Flow().get_params(deep=False)
    # The file's architecture, explicit (the metadata's "layers" agrees when recorded).
    defaults["n_layers"] = len(weights)
    params = params_from_meta(m, defaults)
    flow = Flow(**params)
    training = m.get("training") if isinstance(m.get("training"), dict) else {}
    flow._set_fitted(weights, biases, splines, meta, [], stop_reason_from_training(training))
    flow.n_features_in_ = int(np.asarray(weights[0]).shape[0])
    return flow
