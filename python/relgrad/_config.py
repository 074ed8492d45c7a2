"""The estimator's settings as the native module's fit configuration, and back.

:class:`relgrad.Flow` stores its constructor arguments unchanged; this module checks
them (naming the bad one), turns them into the JSON object that
``relgrad._relgrad.fit`` reads (the keys of ``relgrad train``'s options, see
``_relgrad.default_config()``), and reads a model file's ``training`` metadata back
into constructor arguments for :func:`relgrad.load`. ``"auto"`` architectures are
resolved by :func:`resolve_architecture` in ``fit``, with the data's width, by the
library's rule.
"""

from __future__ import annotations

import json
import math
import numbers
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from . import _relgrad

ACTIVATIONS = ("smooth-leaky-relu", "leaky-relu", "tanh-linear", "spline")
#: What ``activation="auto"`` and ``n_layers="auto"`` leave to :func:`resolve_architecture`.
AUTO = "auto"
DEFAULT_BINS = 16  # relgrad_core::activation::DEFAULT_BINS
MAX_BINS = 256  # relgrad_core::spline::MAX_BINS
MAX_BOUND = 1e6  # relgrad_core::spline::validate
BASES = ("normal", "laplace", "logistic", "mixture")
DEFAULT_COMPONENTS = 3  # relgrad_core::mixture::DEFAULT_COMPONENTS
MAX_COMPONENTS = 64  # relgrad_core::mixture::MAX_COMPONENTS
MAX_LR_DECAYS = 50  # relgrad_model::MAX_LR_DECAYS
INITS = ("data", "orthogonal", "identity")
OPTIMIZERS = ("sgd", "adam")
PREPROCESSES = ("auto", "none", "standardize", "logit")
GRADIENTS = ("relative", "naive")
DTYPES = {"float32": "f32", "float64": "f64"}
STOP_REASONS = ("max_epochs", "early_stopped", "diverged", "cancelled")

#: Largest seed the native module takes (an unsigned 64-bit integer).
MAX_SEED = 2**64 - 1

RandomStateLike = Union[None, int, np.integer, np.random.RandomState, np.random.Generator]


def _choice(name: str, value: Any, allowed: "tuple[str, ...]") -> str:
    if not isinstance(value, str) or value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def _int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _float(name: str, value: Any, low: float, high: float, *, low_open: bool, high_open: bool) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    ok = math.isfinite(v) or (not high_open and high == math.inf)
    ok = ok and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
        raise ValueError(f"{name} must be a finite number in {lo}{low}, {high}{hi}, got {value!r}")
    return v


def check_bound(value: Any, name: str = "bound") -> float:
    """A spline's bound ``T`` (its interval ``[-T, T]``): a positive finite number, at most
    ``MAX_BOUND``."""
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Real)
    if not (ok and 0.0 < float(value) <= MAX_BOUND):
        raise ValueError(f"{name} must be a positive finite number (at most 1e6), got {value!r}")
    return float(value)


def resolve_architecture(activation: str, n_layers: Union[int, str], dim: int) -> Tuple[str, int]:
    """The activation and number of layers a fit on data of ``dim`` columns uses, given
    checked ``activation`` and ``n_layers`` parameters (either may be ``"auto"``).

    The rule is the library's (``relgrad_model::automatic_architecture``, which
    ``relgrad train`` follows when ``--activation`` is not given; measured in
    ``docs/quality-capacity.md``): ``"auto"`` activation is ``"spline"`` for data of at most
    ``_relgrad.SPLINE_MAX_DIM`` (4) columns and the library's default (``"tanh-linear"``)
    above; ``"auto"`` layers are ``_relgrad.SPLINE_LAYERS`` (16) for a spline activation,
    explicit or chosen, and the library's default (3) otherwise. A spline keeps the
    estimator's own ``bins`` and ``bound`` (as the CLI keeps ``--bins`` and ``--bound``).

    >>> resolve_architecture("auto", "auto", 2)
    ('spline', 16)
    >>> resolve_architecture("auto", "auto", 5)
    ('tanh-linear', 3)
    >>> resolve_architecture("spline", "auto", 64), resolve_architecture("auto", 4, 2)
    (('spline', 16), ('spline', 4))
    """
    if activation == AUTO:
        chosen = _relgrad.automatic_architecture(dim)
        activation = _native_defaults()["activation"] if chosen is None else chosen[0]
    if n_layers == AUTO:
        n_layers = _relgrad.SPLINE_LAYERS if activation == "spline" else _native_defaults()["layers"]
    return str(activation), int(n_layers)


_NATIVE_DEFAULTS: Optional[Dict[str, Any]] = None


def _native_defaults() -> Dict[str, Any]:
    """``_relgrad.default_config()``, parsed once."""
    global _NATIVE_DEFAULTS
    if _NATIVE_DEFAULTS is None:
        _NATIVE_DEFAULTS = json.loads(_relgrad.default_config())
    return _NATIVE_DEFAULTS


def seed_of(random_state: RandomStateLike, name: str = "random_state", default: Optional[int] = 0) -> int:
    """The native seed (an unsigned 64-bit integer) of a ``random_state`` argument.

    ``None`` gives ``default`` (when ``default`` is ``None``: a seed drawn from NumPy's
    global random state, as scikit-learn's ``check_random_state(None)`` does); an integer
    is the seed itself (``relgrad train --seed``); a ``RandomState`` or ``Generator``
    instance is drawn from (which advances it).
    """
    if random_state is None:
        if default is not None:
            return default
        random_state = np.random.mtrand._rand
    if isinstance(random_state, (bool, np.bool_)):
        raise ValueError(f"{name} must be None, an integer, a RandomState or a Generator, got {random_state!r}")
    if isinstance(random_state, numbers.Integral):
        seed = int(random_state)
        if not 0 <= seed <= MAX_SEED:
            raise ValueError(f"{name} must be an integer in [0, 2**64 - 1], got {seed}")
        return seed
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, np.iinfo(np.int64).max, dtype=np.int64))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, np.iinfo(np.int64).max, dtype=np.int64))
    raise ValueError(f"{name} must be None, an integer, a RandomState or a Generator, got {random_state!r}")


def check_params(p: Mapping[str, Any]) -> Dict[str, Any]:
    """Checks the estimator's parameters and returns them normalised (plain Python
    types), raising ``ValueError`` naming the first bad one."""
    out: Dict[str, Any] = {}
    n_layers = p["n_layers"]
    if isinstance(n_layers, str) and n_layers == AUTO:
        out["n_layers"] = AUTO
    else:
        integer = not isinstance(n_layers, (bool, np.bool_)) and isinstance(n_layers, numbers.Integral)
        if not (integer and int(n_layers) >= 1):
            raise ValueError(f"n_layers must be a positive integer or 'auto', got {n_layers!r}")
        out["n_layers"] = int(n_layers)
    out["activation"] = _choice("activation", p["activation"], (AUTO,) + ACTIVATIONS)
    out["alpha"] = _float("alpha", p["alpha"], -math.inf, math.inf, low_open=True, high_open=True)
    bins = p["bins"]
    if isinstance(bins, (bool, np.bool_)) or not isinstance(bins, numbers.Integral) or not 2 <= int(bins) <= MAX_BINS:
        raise ValueError(f"bins must be an integer from 2 to {MAX_BINS}, got {bins!r}")
    out["bins"] = int(bins)
    out["bound"] = check_bound(p["bound"])
    out["base"] = _choice("base", p["base"], BASES)
    components = p["components"]
    if (
        isinstance(components, (bool, np.bool_))
        or not isinstance(components, numbers.Integral)
        or not 1 <= int(components) <= MAX_COMPONENTS
    ):
        raise ValueError(f"components must be an integer from 1 to {MAX_COMPONENTS}, got {components!r}")
    out["components"] = int(components)
    out["init"] = _choice("init", p["init"], INITS)
    shift = p["init_shift"]
    out["init_shift"] = (
        "auto"
        if isinstance(shift, str) and shift == "auto"
        else _float("init_shift", shift, -math.inf, math.inf, low_open=True, high_open=True)
    )
    out["optimizer"] = _choice("optimizer", p["optimizer"], OPTIMIZERS)
    out["learning_rate"] = _float("learning_rate", p["learning_rate"], 0.0, math.inf, low_open=True, high_open=True)
    out["spline_learning_rate"] = _float(
        "spline_learning_rate", p["spline_learning_rate"], 0.0, math.inf, low_open=True, high_open=True
    )
    out["momentum"] = _float("momentum", p["momentum"], 0.0, 1.0, low_open=False, high_open=True)
    bs = p["batch_size"]
    out["batch_size"] = "full" if isinstance(bs, str) and bs == "full" else None
    if out["batch_size"] is None:
        if isinstance(bs, str):
            raise ValueError(f"batch_size must be a positive integer or 'full', got {bs!r}")
        out["batch_size"] = _int("batch_size", bs, 1)
    out["max_epochs"] = _int("max_epochs", p["max_epochs"], 0)
    out["n_iter_no_change"] = _int("n_iter_no_change", p["n_iter_no_change"], 0)
    out["lr_decays"] = _int("lr_decays", p["lr_decays"], 0)
    if out["lr_decays"] > MAX_LR_DECAYS:
        raise ValueError(f"lr_decays must be at most {MAX_LR_DECAYS}, got {out['lr_decays']}")
    out["lr_decay"] = _float("lr_decay", p["lr_decay"], 0.0, 1.0, low_open=True, high_open=True)
    out["validation_fraction"] = _float(
        "validation_fraction", p["validation_fraction"], 0.0, 1.0, low_open=False, high_open=True
    )
    out["preprocess"] = _choice("preprocess", p["preprocess"], PREPROCESSES)
    out["levels"] = None if p["levels"] is None else _int("levels", p["levels"], 2)
    out["gradient"] = _choice("gradient", p["gradient"], GRADIENTS)
    dtype = p["dtype"]
    if isinstance(dtype, type) or isinstance(dtype, np.dtype):
        dtype = np.dtype(dtype).name
    out["dtype"] = _choice("dtype", dtype, tuple(DTYPES))
    out["shuffle"] = bool(p["shuffle"])
    out["n_threads"] = None if p["n_threads"] is None else _int("n_threads", p["n_threads"], 1)
    verbose = p["verbose"]
    out["verbose"] = int(verbose) if isinstance(verbose, (bool, np.bool_)) else _int("verbose", verbose, 0)
    return out


def fit_config(p: Mapping[str, Any], seed: int) -> str:
    """The native fit configuration (a JSON object string) of checked parameters whose
    architecture is resolved (no ``"auto"``: see :func:`resolve_architecture`)."""
    if p["activation"] == AUTO or p["n_layers"] == AUTO:
        raise ValueError("internal: resolve activation and n_layers before fit_config")
    if p["init"] == "data":
        init: Dict[str, Any] = {"kind": "data", "shift": p["init_shift"]}
    else:
        init = {"kind": p["init"]}
    if p["optimizer"] == "sgd":
        optimizer: Dict[str, Any] = {"name": "sgd", "lr": p["learning_rate"], "momentum": p["momentum"]}
    else:
        optimizer = {"name": "adam", "lr": p["learning_rate"]}
    spline = p["activation"] == "spline"
    config = {
        "preprocess": p["preprocess"],
        "levels": p["levels"],
        "layers": p["n_layers"],
        "activation": p["activation"],
        # The library's "alpha" is the activation's parameter: a spline's bound.
        "alpha": p["bound"] if spline else p["alpha"],
        "bins": p["bins"],
        "base": p["base"],
        "components": p["components"] if p["base"] == "mixture" else None,
        "init": init,
        "optimizer": optimizer,
        "spline_optimizer": {"name": "adam", "lr": p["spline_learning_rate"]},
        "batch_size": p["batch_size"],
        "epochs": p["max_epochs"],
        "look_ahead": p["n_iter_no_change"],
        "lr_decays": p["lr_decays"],
        "lr_decay": p["lr_decay"],
        "seed": seed,
        "shuffle": p["shuffle"],
        "gradient": p["gradient"],
        "precision": DTYPES[p["dtype"]],
        "threads": 0 if p["n_threads"] is None else p["n_threads"],
    }
    return json.dumps(config, allow_nan=False)


def record_settings(meta: str, p: Mapping[str, Any], seed: int, stop: str, given_val: Optional[int] = None) -> str:
    """Adds what the Python layer decided to a fitted model's metadata, where
    ``relgrad train`` keeps such things: the requested preprocessing and why training
    stopped in ``training``, the validation split in ``data.split`` (so that
    :func:`relgrad.load` recovers them; ``given_val`` rows of validation data passed to
    ``fit`` are recorded as ``data.split.val_given``)."""
    m = json.loads(meta)
    training = m.get("training")
    if not isinstance(training, dict):
        training = {}
    training["preprocess"] = p["preprocess"]
    training["stop"] = stop
    m["training"] = training
    data = m.get("data")
    if not isinstance(data, dict):
        data = {}
    data["split"] = {
        "seed": seed,
        "val_fraction": p["validation_fraction"],
        "test_fraction": 0.0,
        "val": None,
        "test": None,
    }
    if given_val is not None:
        data["split"]["val_given"] = {"rows": given_val}
    m["data"] = data
    return json.dumps(m, allow_nan=False)


def params_from_meta(meta: Mapping[str, Any], defaults: Mapping[str, Any]) -> Dict[str, Any]:
    """Constructor arguments recovered from a model file's metadata (``training``,
    ``preprocess``, ``data``); what the file does not record keeps ``defaults``."""
    p = dict(defaults)
    t = meta.get("training") or {}
    if not isinstance(t, dict):
        t = {}
    p["activation"] = meta.get("activation", p["activation"])
    # "alpha" is the activation's parameter: a spline's bound. Parameters the file's
    # activation does not use (alpha for a spline; bins and bound otherwise) are not
    # recorded and keep their defaults.
    if p["activation"] == "spline":
        p["bound"] = float(meta.get("alpha", p["bound"]))
        bins = meta.get("bins", t.get("bins"))
        if bins is not None:
            p["bins"] = int(bins)
    else:
        p["alpha"] = float(meta.get("alpha", p["alpha"]))
    p["base"] = meta.get("base", p["base"])
    if p["base"] == "mixture" and meta.get("components") is not None:
        p["components"] = int(meta["components"])
    precision = meta.get("precision", t.get("precision"))
    p["dtype"] = {"f32": "float32", "f64": "float64"}.get(precision, p["dtype"])
    if "layers" in t:
        p["n_layers"] = int(t["layers"])
    init = t.get("init")
    if isinstance(init, dict):
        kind = init.get("kind")
        # A run started from another model ("model") is recorded as such; refitting
        # starts from the data.
        p["init"] = kind if kind in INITS else "data"
        shift = init.get("shift", 0.0)
        p["init_shift"] = "auto" if shift == "auto" else float(shift or 0.0)
    opt = t.get("optimizer")
    if isinstance(opt, dict) and opt.get("name") in OPTIMIZERS:
        p["optimizer"] = opt["name"]
        p["learning_rate"] = float(opt.get("lr", p["learning_rate"]))
        if "momentum" in opt:
            p["momentum"] = float(opt["momentum"])
    spline_opt = t.get("spline_optimizer")
    if isinstance(spline_opt, dict) and spline_opt.get("name") == "adam" and "lr" in spline_opt:
        p["spline_learning_rate"] = float(spline_opt["lr"])
    if "batch_size" in t:
        p["batch_size"] = t["batch_size"] if t["batch_size"] == "full" else int(t["batch_size"])
    if "epochs" in t:
        p["max_epochs"] = int(t["epochs"])
    if "look_ahead" in t:
        p["n_iter_no_change"] = int(t["look_ahead"])
    # Files from before decays on plateau existed stopped at the first plateau.
    p["lr_decays"] = int(t.get("lr_decays", 0))
    if "lr_decay" in t:
        p["lr_decay"] = float(t["lr_decay"])
    if t.get("gradient") in GRADIENTS:
        p["gradient"] = t["gradient"]
    if "shuffle" in t:
        p["shuffle"] = bool(t["shuffle"])
    seed = t.get("seed", meta.get("seed"))
    if seed is not None:
        p["random_state"] = int(seed)
    pre = meta.get("preprocess") or {}
    kind = pre.get("kind") if isinstance(pre, dict) else None
    requested = t.get("preprocess")
    if requested in PREPROCESSES:
        p["preprocess"] = requested
    elif kind in PREPROCESSES:
        p["preprocess"] = kind
    data = meta.get("data") or {}
    if not isinstance(data, dict):
        data = {}
    levels = pre.get("levels") if kind == "logit" else data.get("levels")
    p["levels"] = None if levels is None else int(levels)
    split = data.get("split")
    if isinstance(split, dict) and split.get("val") is None and split.get("val_fraction") is not None:
        p["validation_fraction"] = float(split["val_fraction"])
    return p


def stop_reason_from_training(training: Mapping[str, Any]) -> str:
    """Why a saved run stopped, from its ``training`` metadata."""
    stop = training.get("stop")
    if stop in STOP_REASONS:
        return str(stop)
    if training.get("diverged"):
        return "diverged"
    if training.get("stopped_early"):
        return "early_stopped"
    run, epochs = training.get("epochs_run"), training.get("epochs")
    if run is not None and epochs is not None and int(run) < int(epochs):
        return "cancelled"
    return "max_epochs"
