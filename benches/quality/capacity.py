#!/usr/bin/env python3
"""Does capacity pay? relgrad.Flow with learnable spline activations against GMM and KDE.

Fits ``relgrad.Flow`` with its defaults and with learnable per-unit monotone
rational-quadratic spline activations (a few settings, in ``VARIANTS`` below) on

- the seven 2-D generators of the ``relgrad`` command-line tool (moons, 2spirals,
  checkerboard, rings, 8gaussians, sine, trimodal: the formulas of
  ``crates/relgrad-cli/src/data/generators.rs`` in numpy),
- the 8x8 digits (pixel-space nats, ``levels=17``, the logit preprocessing, as
  ``study.py`` and ``benches/python/compare.py`` prepare them),
- four small real data sets of scikit-learn (breast cancer, wine, diabetes, iris),

and compares the held-out log-likelihood with a full-covariance Gaussian, a
GaussianMixture and a KernelDensity chosen on the same validation rows (and, on the
digits, FlowJAX's rational-quadratic spline MAF of ``compare.py``).

It writes ``docs/quality-capacity.md`` (the report, generated: do not edit it by hand)
and the figure ``docs/quality-capacity-2d.png``. Run it from the repository's root, in an
environment with relgrad installed (``maturin develop --release``) and the packages of
``benches/quality/requirements.txt``::

    python benches/quality/capacity.py            # the full study
    python benches/quality/capacity.py --quick    # a smoke test: small sizes, one seed

See README.md beside this file.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# study.py puts benches/python on the path and imports compare.py from there.
import study  # noqa: E402
from study import Baseline, fmt, git_head, mean_2se, paired, per_row  # noqa: E402
from compare import cpu_model, logit_transform, version  # noqa: E402

ROOT = study.ROOT
DOCS = study.DOCS
SPLIT_SEED = study.SPLIT_SEED  # the seed of every train/val/test split
DATA_SEED = study.DATA_SEED  # numpy seed of the generated data and of the digits baselines' noise
SEEDS = study.SEEDS  # relgrad.Flow's random_state; 0 is the main one
N_TEST_DRAWS = study.N_TEST_DRAWS  # dequantisation draws per digits image

# 2-D sets: rows generated = train + val + test, split with relgrad's seeded split.
SIZES_2D = (5000, 5000, 5000)
QUICK_SIZES_2D = (1000, 500, 1000)
SMALL_FRACTIONS = (0.2, 0.2)  # small real sets: validation and test fractions (train: the rest)

GMM_MAX_2D = 256  # the 2-D grid doubles past its end while its largest count is the best, up to this
GMM_INITS = 3  # GaussianMixture restarts (n_init) per n_components; the best of them is kept
GMM_GRID = {"2d": (1, 2, 4, 8, 16, 32, 64), "small": (1, 2, 3, 4, 6, 8), "digits": study.DIGITS_GMM}
# The bandwidth search's coarse stride (see run_baselines): on the 2-D sets, whose 5000 x
# 5000 kernel sums are the slow part, every 4th bandwidth first; elsewhere every one (the
# digits' validation LL is not unimodal in the bandwidth).
KDE_STRIDE = {"2d": 4, "small": 1, "digits": 1}
KDE_GRID = {
    "2d": study.TOY_KDE,  # 41 values in [0.01, 1], units of the train standard deviation
    "small": np.logspace(-1.5, 0.5, 41),  # [0.03, 3.2]: higher dimensions want wider kernels
    "digits": study.DIGITS_KDE,  # logit units, as compare.py
}

# relgrad variants: (key, description, Flow keyword arguments). Everything not given is at
# Flow's default. "default" is the reference; edit the table to compare other settings.
# The spline variants name every setting, so that they keep their meaning when Flow's
# defaults change: the first default of the splines was 8 layers, bound 4, spline rate
# 1e-2; the present one is 16 layers, bound 3, spline rate 3e-3.
OLD_SPLINE = {"activation": "spline", "bound": 4.0, "spline_learning_rate": 1e-2}
NEW_SPLINE = {"activation": "spline", "bound": 3.0, "spline_learning_rate": 3e-3}
VARIANTS: List[Tuple[str, str, Dict[str, object]]] = [
    (
        "default",
        "relgrad.Flow() with its defaults (with activation and n_layers \"auto\", what they resolve to is in each "
        "data set's table)",
        {},
    ),
    ("tanh-L3", "the fixed activation: tanh-linear, alpha 0.1, 3 layers", {"activation": "tanh-linear", "n_layers": 3}),
    (
        "spline-L8-K16-b4",
        "the splines' first default: 8 layers, 16 bins on [-4, 4], spline rate 1e-2",
        {**OLD_SPLINE, "n_layers": 8, "bins": 16},
    ),
    (
        "spline-L16-K16-b4",
        "spline activation, 16 layers, 16 bins on [-4, 4], spline rate 1e-2",
        {**OLD_SPLINE, "n_layers": 16, "bins": 16},
    ),
    (
        "spline-L8-K16-b3",
        "spline activation, 8 layers, 16 bins on [-3, 3], spline rate 3e-3",
        {**NEW_SPLINE, "n_layers": 8, "bins": 16},
    ),
    (
        "spline-L16-K32-b3",
        "spline activation, 16 layers, 32 bins on [-3, 3], spline rate 3e-3",
        {**NEW_SPLINE, "n_layers": 16, "bins": 32},
    ),
    # The learnable mixture base (relgrad_core::mixture): K logistic components per latent
    # coordinate, trained by Adam at the spline rate.
    (
        "mixture-L1-K3-adam",
        "one layer (no activation) and a mixture base of 3 components; Adam at 3e-3 for the weights",
        {"activation": "tanh-linear", "n_layers": 1, "base": "mixture", "components": 3,
         "optimizer": "adam", "learning_rate": 3e-3, "spline_learning_rate": 3e-3},
    ),
    (
        "tanh-L3-mixture-K3",
        "tanh-linear activation, 3 layers, a mixture base of 3 components; SGD at 1e-3 for the weights",
        {"activation": "tanh-linear", "n_layers": 3, "base": "mixture", "components": 3,
         "optimizer": "sgd", "learning_rate": 1e-3, "spline_learning_rate": 3e-3},
    ),
    (
        "spline-L16-mixture-K3",
        "spline activation, 16 layers, 16 bins on [-3, 3], a mixture base of 3 components",
        {**NEW_SPLINE, "n_layers": 16, "bins": 16, "base": "mixture", "components": 3},
    ),
]

# The seven generators of the CLI, in the order `relgrad datasets` lists them.
NAMES_2D = ("moons", "2spirals", "checkerboard", "rings", "8gaussians", "sine", "trimodal")
NAMES_SMALL = ("breast_cancer", "wine", "diabetes", "iris")
ALL_NAMES = NAMES_2D + ("digits",) + NAMES_SMALL
TEXT_2D = {
    "moons": "two interleaved half circles, noise sd 0.1 (scaled x2)",
    "2spirals": "two interleaved spiral arms, noise sd 0.1",
    "checkerboard": "uniform on the dark squares of a 4x4 checkerboard on [-4, 4]^2",
    "rings": "four concentric circles of radius 0.75..3, noise sd 0.08",
    "8gaussians": "eight Gaussians (sd 0.5/sqrt 2) on a circle of radius 2 sqrt 2",
    "sine": "y = 2 sin(x) + noise sd 0.25, x uniform on [-4, 4]",
    "trimodal": "a mixture of three differently shaped Gaussians",
}
TEXT_SMALL = {
    "breast_cancer": ("breast cancer (30 dimensions)", "`sklearn.datasets.load_breast_cancer().data`, 569 x 30"),
    "wine": ("wine (13 dimensions)", "`sklearn.datasets.load_wine().data`, 178 x 13"),
    "diabetes": (
        "diabetes (10 dimensions)",
        "`sklearn.datasets.load_diabetes().data` (scikit-learn's scaled features; the target is not used), "
        "442 x 10; one column (sex) takes only two values",
    ),
    "iris": ("iris (4 dimensions)", "`sklearn.datasets.load_iris().data` (the labels are not used), 150 x 4"),
}
HEAD_AT_START = "unknown"  # git HEAD when the run started (set by main)
TARGET_2D = 0.1  # nats per row: the 2-D target is "within this of the better of GMM and KDE, or better"


# --------------------------------------------------------------------------- data


def generate_2d(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` rows of the CLI generator ``name``, with the formulas and constants of
    ``crates/relgrad-cli/src/data/generators.rs`` (row ``i``'s branch, where it depends on
    ``i``, as there); the random numbers come from numpy, not from Rust's ``StdRng``."""
    i = np.arange(n)
    u = lambda: rng.random(n)  # noqa: E731  uniform [0, 1)
    g = lambda: rng.standard_normal(n)  # noqa: E731
    pi = math.pi
    if name == "moons":
        t = pi * u()
        even = i % 2 == 0
        x = np.where(even, np.cos(t), 1.0 - np.cos(t))
        y = np.where(even, np.sin(t), 0.5 - np.sin(t))
        return np.stack([2.0 * (x + 0.1 * g()) - 1.0, 2.0 * (y + 0.1 * g()) - 0.2], axis=1)
    if name == "2spirals":
        t = np.sqrt(u()) * 540.0 * (2.0 * pi) / 360.0
        sign = np.where(i % 2 == 0, 1.0, -1.0)
        x = -np.cos(t) * t + u() * 0.5
        y = np.sin(t) * t + u() * 0.5
        return np.stack([sign * x / 3.0 + 0.1 * g(), sign * y / 3.0 + 0.1 * g()], axis=1)
    if name == "checkerboard":
        x1 = u() * 4.0 - 2.0
        x2 = u() - rng.integers(0, 2, n).astype(np.float64) * 2.0
        x2 = x2 + np.mod(np.floor(x1), 2.0)  # rem_euclid(2): in [0, 2)
        return np.stack([2.0 * x1, 2.0 * x2], axis=1)
    if name == "rings":
        radius = np.array([0.25, 0.5, 0.75, 1.0])[i % 4] * 3.0
        a = 2.0 * pi * u()
        return np.stack([radius * np.cos(a) + 0.08 * g(), radius * np.sin(a) + 0.08 * g()], axis=1)
    if name == "8gaussians":
        a = rng.integers(0, 8, n).astype(np.float64) * pi / 4.0
        cx, cy = 2.0 * np.cos(a), 2.0 * np.sin(a)
        s = math.sqrt(2.0)
        return np.stack([(2.0 * cx + 0.5 * g()) / s, (2.0 * cy + 0.5 * g()) / s], axis=1)
    if name == "sine":
        x = u() * 8.0 - 4.0
        return np.stack([x, 2.0 * np.sin(x) + 0.25 * g()], axis=1)
    if name == "trimodal":
        z1, z2 = g(), g()
        k = rng.integers(0, 3, n)
        x = np.select([k == 0, k == 1], [-2.0 + 0.3 * z1, 2.0 + 0.8 * z1 + 0.5 * z2], 0.6 * z1)
        y = np.select([k == 0, k == 1], [1.5 + 0.3 * z2, 1.0 + 0.3 * z2], -2.0 + 0.4 * z2 + 0.3 * z1)
        return np.stack([x, y], axis=1)
    raise ValueError(f"unknown generator {name!r}; expected one of {', '.join(NAMES_2D)}")


@dataclass
class Set:
    """A data set of this study: study.py's ``Data`` plus what this study needs besides."""

    d: study.Data
    kind: str  # "2d", "digits" or "small"
    b_logjac_val: np.ndarray  # ln |db/dx| of every validation row (baselines' validation LL in data units)
    b_mean: Optional[np.ndarray] = None  # standardisation of the baselines' space (2-D and small sets)
    b_std: Optional[np.ndarray] = None

    @property
    def name(self) -> str:
        return self.d.name

    @property
    def nd(self) -> int:
        return 2 if self.kind == "digits" else 3


def split_counts(n: int, n_val: int, n_test: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    from relgrad import _relgrad

    return tuple(np.asarray(a, dtype=np.intp) for a in _relgrad.split_rows(n, n_val, n_test, SPLIT_SEED))


def standardised(name: str, title: str, x: np.ndarray, train, val, test, kind: str, description: str) -> Set:
    """A set whose baselines fit train-standardised rows (the constant log-Jacobian added back)."""
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    std = np.where(std > 0, std, 1.0)  # as relgrad: a constant column keeps scale 1
    b = (x - mean) / std
    logjac = -float(np.sum(np.log(std)))
    d = study.Data(
        name=name,
        title=title,
        x=x,
        train=train,
        val=val,
        test=test,
        flow_kwargs={},
        n_draws=1,
        b_train=b[train],
        b_val=b[val],
        b_test=b[test],
        b_logjac_test=np.full(len(test), logjac),
        gmm_grid=GMM_GRID[kind],
        kde_grid=KDE_GRID[kind],
        kde_space="train-standardised rows (bandwidth in units of the train standard deviation; the constant "
        "log-Jacobian is added back)",
        units="nats per row: log-density of the rows in their own units",
        curve_units="nats per row in the data's units",
        description=description,
    )
    return Set(d, kind, np.full(len(val), logjac), mean, std)


def load_2d(name: str, sizes: Tuple[int, int, int]) -> Set:
    stream = NAMES_2D.index(name) + 1
    rng = np.random.default_rng([DATA_SEED, 100 + stream])
    n_train, n_val, n_test = sizes
    x = generate_2d(name, n_train + n_val + n_test, rng)
    train, val, test = split_counts(len(x), n_val, n_test)
    return standardised(
        name,
        f"{name} (2-D generator of the CLI)",
        x,
        train,
        val,
        test,
        "2d",
        f"`{name}`: {TEXT_2D[name]}; the formulas of `crates/relgrad-cli/src/data/generators.rs` in numpy, "
        f"`default_rng([{DATA_SEED}, {100 + stream}])`, {len(x)} rows",
    )


def load_small(name: str) -> Set:
    import sklearn.datasets as ds

    x = getattr(ds, f"load_{name}")().data.astype(np.float64)
    from relgrad import _relgrad

    n = x.shape[0]
    n_val, n_test = (_relgrad.holdout_rows(n, f) for f in SMALL_FRACTIONS)
    train, val, test = split_counts(n, n_val, n_test)
    title, text = TEXT_SMALL[name]
    return standardised(name, title, x, train, val, test, "small", text)


def load_digits() -> Set:
    d = study.load_digits_data()
    d.gmm_grid = GMM_GRID["digits"]
    d.kde_grid = KDE_GRID["digits"]
    # study.load_digits_data draws the baselines' noise for all 1797 images first, from
    # default_rng(DATA_SEED): the same draw again gives the validation rows' log-Jacobian.
    rng = np.random.default_rng(DATA_SEED)
    _, logjac_all = logit_transform(d.x, rng.random(d.x.shape))
    return Set(d, "digits", logjac_all[d.val])


def load(name: str, quick: bool) -> Set:
    if name in NAMES_2D:
        return load_2d(name, QUICK_SIZES_2D if quick else SIZES_2D)
    if name == "digits":
        return load_digits()
    if name in NAMES_SMALL:
        return load_small(name)
    raise SystemExit(f"unknown data set {name!r}; expected some of {', '.join(ALL_NAMES)}")


# --------------------------------------------------------------------------- methods


@dataclass
class Run:
    variant: str
    seed: int
    val: float  # mean validation LL, data units (score_samples of the val rows)
    test: np.ndarray  # per test row (digits: mean over N_TEST_DRAWS draws), data units
    best_epoch: int
    n_epochs: int
    stop: str
    seconds: float
    arch: str  # the fitted architecture (what "auto" settings resolved to)
    flow: object = None  # the fitted Flow (seed 0 of the 2-D sets only, for the figure)


def check_variants(variants) -> None:
    """Fail fast, before any long fit, when this relgrad does not take a variant's arguments."""
    import relgrad

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    for key, _, kw in variants:
        try:
            relgrad.Flow(**{**kw, "max_epochs": 1, "random_state": 0}).fit(x)
        except Exception as e:  # noqa: BLE001 - report any failure with the variant's name
            raise SystemExit(
                f"variant {key!r} ({kw}): relgrad.Flow rejects it: {type(e).__name__}: {e}\n"
                "install a relgrad that has these parameters (maturin develop --release), or choose other "
                "variants with --variants"
            )


def fit_flow(s: Set, key: str, kwargs: Dict[str, object], seed: int, keep: bool) -> Run:
    """``Flow`` on exactly the train rows with early stopping on exactly the val rows (as
    study.py's ``fit_flow``: fitted on train+val with ``validation_fraction = n_val / (n_train
    + n_val)``, the rows placed where its own seeded split puts its train and val rows)."""
    import relgrad
    from relgrad import _relgrad
    from sklearn.exceptions import ConvergenceWarning

    d = s.d
    m = len(d.train) + len(d.val)
    frac = len(d.val) / m
    n_val = _relgrad.holdout_rows(m, frac)
    if n_val != len(d.val):
        raise SystemExit(f"validation_fraction {frac} holds out {n_val} rows, not {len(d.val)}")
    inner_train, inner_val, _ = (np.asarray(a, dtype=np.intp) for a in _relgrad.split_rows(m, n_val, 0, seed))
    x = np.empty((m, d.x.shape[1]))
    x[inner_train] = d.x[d.train]
    x[inner_val] = d.x[d.val]
    flow = relgrad.Flow(random_state=seed, validation_fraction=frac, **{**d.flow_kwargs, **kwargs})
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # divergence: recorded in stop_reason_
        flow.fit(x)
    seconds = time.perf_counter() - t

    params = flow.get_params()
    activation = str(getattr(flow, "activation_", params.get("activation")))
    arch = f"{activation}" + (f" ({params.get('bins')} bins on ±{params.get('bound'):g})" if activation == "spline" else "")
    n_layers = getattr(flow, "n_layers_", len(flow.weights_))
    arch += f", {n_layers} layer{'s' if n_layers != 1 else ''}"
    if params.get("base") == "mixture":
        arch += f", mixture base ({params.get('components')} components)"

    def score(rows: np.ndarray) -> np.ndarray:
        tiled = np.tile(d.x[rows], (d.n_draws, 1))  # logit models: each copy gets its own noise
        return per_row(flow.score_samples(tiled), d.n_draws, len(rows))

    return Run(
        key,
        seed,
        float(np.mean(score(d.val))),
        score(d.test),
        int(flow.best_epoch_),
        int(flow.n_epochs_),
        str(flow.stop_reason_),
        seconds,
        arch,
        flow if keep else None,
    )


@dataclass
class Fitted:
    """A baseline with its fitted model (for the figure)."""

    b: Baseline
    model: object = None
    seconds: float = 0.0


def run_baselines(s: Set) -> Dict[str, Fitted]:
    """Gaussian, GaussianMixture and KernelDensity, chosen on the validation rows, as
    study.py's ``run_baselines`` but with ``GMM_INITS`` restarts per GaussianMixture and
    every validation LL in the data's units."""
    from sklearn.mixture import GaussianMixture
    from sklearn.neighbors import KernelDensity

    d = s.d
    n_test = len(d.test)

    def val_of(model) -> float:
        return float(np.mean(model.score_samples(d.b_val) + s.b_logjac_val))

    def test_of(model) -> np.ndarray:
        return per_row(model.score_samples(d.b_test) + d.b_logjac_test, d.n_draws, n_test)

    out: Dict[str, Fitted] = {}
    fits = {}
    t = time.perf_counter()
    cap = len(d.train) // 2
    grid = [k for k in d.gmm_grid if k <= cap]
    j = 0
    while j < len(grid):
        k = grid[j]
        g = GaussianMixture(n_components=k, covariance_type="full", n_init=GMM_INITS, random_state=SPLIT_SEED)
        g.fit(d.b_train)
        fits[k] = (g, val_of(g))
        j += 1
        # The 2-D sets: while the largest count is the best, double it (up to GMM_MAX_2D).
        if j == len(grid) and s.kind == "2d" and max(fits, key=lambda c: fits[c][1]) == k and 2 * k <= min(cap, GMM_MAX_2D):
            grid.append(2 * k)
    gmm_seconds = time.perf_counter() - t
    out["Gaussian"] = Fitted(Baseline("Gaussian", "1 full-covariance component", test_of(fits[1][0]), fits[1][1]),
                             fits[1][0])
    best = max(fits, key=lambda k: fits[k][1])
    gm = Baseline(
        "GaussianMixture",
        f"{best} components" + (" (edge of the grid)" if best == grid[-1] and best != 1 else ""),
        test_of(fits[best][0]),
        fits[best][1],
    )
    gm.notes.append("validation LL by n_components: " + ", ".join(f"{k}: {fits[k][1]:.3f}" for k in grid))
    out["GaussianMixture"] = Fitted(gm, fits[best][0], gmm_seconds)
    t = time.perf_counter()
    # Coarse to fine: every KDE_STRIDE-th bandwidth of the grid, then every one within
    # KDE_STRIDE - 1 steps of the best of those (the validation LL is unimodal in the
    # bandwidth here; the note lists what was evaluated near the best).
    scores: Dict[int, float] = {}

    def evaluate(j: int) -> None:
        if j not in scores and 0 <= j < len(d.kde_grid):
            kde = KernelDensity(kernel="gaussian", bandwidth=float(d.kde_grid[j])).fit(d.b_train)
            scores[j] = val_of(kde)

    last = len(d.kde_grid) - 1
    stride = KDE_STRIDE[s.kind]
    for j in sorted(set(range(0, last + 1, stride)) | {last}):
        evaluate(j)
    i = max(scores, key=scores.get)
    for j in range(i - stride + 1, i + stride):
        evaluate(j)
    i = max(scores, key=scores.get)
    h = float(d.kde_grid[i])
    kde = KernelDensity(kernel="gaussian", bandwidth=h).fit(d.b_train)
    kb = Baseline(
        "KernelDensity",
        f"bandwidth {h:.3g}" + (" (edge of the grid)" if i in (0, last) else ""),
        test_of(kde),
        scores[i],
    )
    kb.notes.append(
        "validation LL by bandwidth (near the best): "
        + ", ".join(f"{d.kde_grid[j]:.3g}: {scores[j]:.3f}" for j in sorted(scores) if abs(j - i) <= 3)
    )
    out["KernelDensity"] = Fitted(kb, kde, time.perf_counter() - t)
    return out


def run_flowjax_spline(s: Set) -> Tuple[Optional[Baseline], str]:
    """compare.py's FlowJAX rational-quadratic spline MAF on the digits (same split, same
    baseline noise), or ``None`` and the reason it could not run."""
    try:
        import compare

        cd = compare.Data(s.d.x, s.d.train, s.d.val, s.d.test, s.d.b_train, s.d.b_val, s.d.b_test,
                          s.d.b_logjac_test)
        r = compare.run_flowjax(cd, spline=True)
    except Exception as e:  # noqa: BLE001 - a missing or broken FlowJAX is reported, not fatal
        return None, f"{type(e).__name__}: {e}"
    b = Baseline("FlowJAX MAF (spline)", r.short, r.ll_pixel, float("nan"))
    b.notes += [r.settings] + list(r.notes) + [f"fit {r.fit_seconds:.1f} s, the same fit again {r.warm_seconds:.1f} s"]
    return b, ""


# --------------------------------------------------------------------------- results


@dataclass
class Result:
    s: Set
    runs: Dict[Tuple[str, int], Run]
    baselines: Dict[str, Fitted]
    flowjax: Optional[Baseline]
    flowjax_error: str
    seconds: float
    notes: List[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.s.name

    def variants(self) -> List[str]:
        return [k for k, _, _ in VARIANTS if (k, 0) in self.runs]

    def best_variant(self, among: Optional[Sequence[str]] = None) -> Optional[str]:
        """The variant with the best validation LL at seed 0 (non-finite counts as worst)."""
        keys = [k for k in (among if among is not None else self.variants()) if (k, 0) in self.runs]
        if not keys:
            return None
        return max(keys, key=lambda k: self.runs[(k, 0)].val if np.isfinite(self.runs[(k, 0)].val) else -np.inf)

    def reference(self) -> Baseline:
        """The better of GaussianMixture and KernelDensity, by validation LL."""
        g, k = self.baselines["GaussianMixture"].b, self.baselines["KernelDensity"].b
        return g if g.val >= k.val else k

    def other_reference(self) -> Baseline:
        g, k = self.baselines["GaussianMixture"].b, self.baselines["KernelDensity"].b
        return k if self.reference() is g else g


def finite_paired(a: np.ndarray, b: np.ndarray) -> Tuple[float, float]:
    v = np.asarray(a) - np.asarray(b)
    if not np.all(np.isfinite(v)):
        return float("nan"), float("nan")
    return paired(a, b)


def pm(m: float, e: float, nd: int) -> str:
    return "n/a" if not np.isfinite(m) else f"{m:+.{nd}f} ± {e:.{nd}f}"


def judged(r: Result) -> Optional[str]:
    """The variant a data set's target is judged on (seed 0): the best by validation; on the
    digits, whose target compares the new activations with the default, the best non-default
    variant by validation (the default itself only when it is the only one run)."""
    if r.s.kind == "digits":
        splines = [k for k, _, kw in VARIANTS if kw.get("activation") == "spline" and (k, 0) in r.runs]
        others = [v for v in r.variants() if v != "default"]
        if splines or others:
            return r.best_variant(splines or others)
    return r.best_variant()


def verdict(r: Result) -> Tuple[str, str]:
    """(short verdict, the sentence behind it) for the data set's target, from seed 0."""
    k = judged(r)
    if k is None:
        return "n/a", "no relgrad variant ran"
    nd = r.s.nd
    best = r.runs[(k, 0)]
    ref = r.reference()
    m, e = finite_paired(best.test, ref.test)
    if r.s.kind == "2d":
        ok = np.isfinite(m) and m >= -TARGET_2D
        how = (
            "ahead by more than 2 s.e." if m > e else "behind by more than 2 s.e." if m < -e else "within 2 s.e."
        )
        return (
            ("met" if ok else "not met"),
            f"{k} minus {ref.name} = {pm(m, e, nd)} nats/row ({how}); target: at least -{TARGET_2D:g}",
        )
    if r.s.kind == "small":
        ok = np.isfinite(m) and m > e
        return (
            ("met" if ok else "not met"),
            f"{k} minus {ref.name} = {pm(m, e, nd)} nats/row; target: ahead by more than 2 s.e.",
        )
    # digits: the best non-default variant at least as good as the default (paired) and
    # ahead of FlowJAX's spline MAF by more than 2 s.e.
    parts, ok = [], True
    overall = r.best_variant()
    if overall != k:
        parts.append(f"judged on {k}, the best spline variant by validation ({overall} is the best of all)")
    if ("default", 0) not in r.runs:
        parts.append("the default was not run")
    elif k == "default":
        parts.append("only the default was run")
    else:
        m2, e2 = finite_paired(best.test, r.runs[("default", 0)].test)
        ok = ok and np.isfinite(m2) and m2 >= -e2
        parts.append(f"{k} minus default = {pm(m2, e2, nd)} (target: not worse beyond 2 s.e.)")
    if r.flowjax is not None:
        m3, e3 = finite_paired(best.test, r.flowjax.test)
        ok = ok and np.isfinite(m3) and m3 > e3
        parts.append(f"{k} minus FlowJAX MAF (spline) = {pm(m3, e3, nd)} (target: ahead by more than 2 s.e.)")
    else:
        ok = False
        parts.append(f"FlowJAX did not run ({r.flowjax_error or 'skipped'})")
    return ("met" if ok else "not met"), "; ".join(parts)


# --------------------------------------------------------------------------- figure


def plot_2d(results: List[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results if r.s.kind == "2d"]
    if not rows:
        return
    n_grid = 160
    fig, axes = plt.subplots(len(rows), 4, figsize=(8.4, 2.15 * len(rows)), squeeze=False)
    for ax_row, r in zip(axes, rows):
        d = r.s.d
        x = d.x[d.train]
        lo, hi = np.percentile(d.x, 0.2, axis=0), np.percentile(d.x, 99.8, axis=0)
        pad = 0.08 * (hi - lo)
        lo, hi = lo - pad, hi + pad
        gx = np.linspace(lo[0], hi[0], n_grid)
        gy = np.linspace(lo[1], hi[1], n_grid)
        xx, yy = np.meshgrid(gx, gy)
        pts = np.stack([xx.ravel(), yy.ravel()], axis=1)
        b_pts = (pts - r.s.b_mean) / r.s.b_std
        logjac = float(d.b_logjac_test[0])
        hist, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=[np.linspace(lo[0], hi[0], 81), np.linspace(lo[1], hi[1], 81)],
                                    density=True)
        panels = [("train rows (histogram)", hist.T)]
        k = r.best_variant()
        if k is not None and r.runs[(k, 0)].flow is not None:
            with np.errstate(over="ignore", invalid="ignore"):
                dens = np.exp(np.asarray(r.runs[(k, 0)].flow.score_samples(pts), dtype=np.float64))
            title = f"relgrad {k}" + (f" ({r.runs[(k, 0)].arch.split(' (')[0].split(',')[0]}, "
                                      f"{r.runs[(k, 0)].arch.rsplit(', ', 1)[1]})" if k == "default" else "")
            panels.append((title, np.nan_to_num(dens, nan=0.0, posinf=0.0).reshape(n_grid, n_grid)))
        for name in ("GaussianMixture", "KernelDensity"):
            f = r.baselines[name]
            dens = np.exp(f.model.score_samples(b_pts) + logjac).reshape(n_grid, n_grid)
            panels.append((f"{'GMM' if name == 'GaussianMixture' else 'KDE'} ({f.b.choice})", dens))
        vmax = max(float(np.percentile(p, 99.5)) for _, p in panels[1:])  # the models' panels
        for ax, (title, img) in zip(ax_row, panels):
            ax.imshow(img, origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]), cmap="magma", vmin=0.0, vmax=vmax,
                      aspect="auto", interpolation="nearest")
            ax.set_title(title, fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
        for ax in ax_row[len(panels):]:
            ax.axis("off")
        ax_row[0].set_ylabel(r.name, fontsize=9)
    fig.tight_layout(pad=0.4)
    fig.savefig(path, dpi=80)
    plt.close(fig)


# --------------------------------------------------------------------------- report


def seeds_cell(r: Result, key: str, seeds: Sequence[int], nd: int) -> str:
    vals = [float(np.mean(r.runs[(key, s)].test)) if (key, s) in r.runs else float("nan") for s in seeds]
    return " / ".join(fmt(v, nd=nd) for v in vals)


def dataset_section(r: Result, seeds: Sequence[int]) -> List[str]:
    d, nd = r.s.d, r.s.nd
    ref = r.reference()
    best = r.best_variant()
    target_key = judged(r)
    short, why = verdict(r)
    lines = [
        f"## {d.title}",
        "",
        f"- Data: {d.description}. Split: {len(d.train)} train / {len(d.val)} validation / {len(d.test)} test rows.",
        f"- Test LL: {d.units}"
        + (
            f"; each test image is scored under {d.n_draws} dequantisation draws and its value is their mean "
            "(as compare.py)."
            if d.n_draws > 1
            else "."
        ),
        f"- Better of GaussianMixture and KernelDensity (by validation LL): **{ref.name}**.",
        "",
    ]
    head = ["method", "setting (chosen on validation)", "val LL", "test LL ± 2 s.e. (seed 0)"]
    head += [f"test LL, seeds {', '.join(map(str, seeds))}", f"minus {ref.name} (paired, seed 0)"]
    head += ["epochs (best / run), stop", "fit s", "target"]
    lines += ["| " + " | ".join(head) + " |", "| " + " | ".join(["---", "---"] + ["---:"] * (len(head) - 3) + ["---"]) + " |"]
    for name in ("Gaussian", "GaussianMixture", "KernelDensity"):
        b = r.baselines[name].b
        m, e = finite_paired(b.test, ref.test)
        cells = [name, b.choice, fmt(b.val, nd=nd), fmt(*mean_2se(b.test), nd=nd), "", pm(m, e, nd) if b is not ref else "",
                 "", f"{r.baselines[name].seconds:.1f}" if name != "Gaussian" else "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    if r.flowjax is not None:
        b = r.flowjax
        m, e = finite_paired(b.test, ref.test)
        lines.append("| " + " | ".join([b.name, b.choice, "n/a", fmt(*mean_2se(b.test), nd=nd), "", pm(m, e, nd), "", "", ""]) + " |")
    for k in r.variants():
        run = r.runs[(k, 0)]
        m, e = finite_paired(run.test, ref.test)
        label = f"**relgrad {k}**" if k == best else f"relgrad {k}"
        cells = [
            label,
            "; ".join(
                x for x in ("best by validation" if k == best else "", "judged (best spline by validation)"
                            if k == target_key and k != best else "", run.arch) if x
            ),
            fmt(run.val, nd=nd),
            fmt(*mean_2se(run.test), nd=nd),
            seeds_cell(r, k, seeds, nd),
            pm(m, e, nd),
            f"{run.best_epoch} / {run.n_epochs}, {run.stop.replace('_', ' ')}",
            f"{run.seconds:.1f}",
            short if k == target_key else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Target: {why}.", ""]
    if best is not None and len(seeds) > 1:
        diffs = [float(np.mean(r.runs[(best, s)].test - ref.test)) for s in seeds if (best, s) in r.runs]
        lines += [
            f"The best variant ({best}) minus {ref.name}, mean over the test rows, per seed "
            f"({', '.join(map(str, seeds))}): " + ", ".join(f"{v:+.{nd}f}" for v in diffs) + ".",
            "",
        ]
    notes = []
    for name in ("Gaussian", "GaussianMixture", "KernelDensity"):
        notes += [f"- {name}: {n}" for n in r.baselines[name].b.notes]
    if r.flowjax is not None:
        notes += [f"- {n}" if n.startswith(r.flowjax.name) else f"- {r.flowjax.name}: {n}" for n in r.flowjax.notes]
    elif r.s.kind == "digits":
        notes.append(f"- FlowJAX MAF (spline): not run ({r.flowjax_error or 'skipped with --skip-flowjax'}).")
    notes += [f"- {n}" for n in r.notes]
    return lines + notes + [""]


def brief(results: List[Result], seeds: Sequence[int]) -> List[str]:
    out = []
    groups = [("2d", "2-D sets"), ("digits", "digits"), ("small", "small real sets")]
    for kind, label in groups:
        rs = [r for r in results if r.s.kind == kind]
        if not rs:
            continue
        met = [r.name for r in rs if verdict(r)[0] == "met"]
        target = {
            "2d": f"within {TARGET_2D:g} nats/row of the better of GMM and KDE, or better",
            "digits": "at least as good as the default (paired) and ahead of FlowJAX's spline MAF by more than 2 s.e.",
            "small": "ahead of the better of GMM and KDE by more than 2 s.e.",
        }[kind]
        out.append(
            f"**{label}**: target ({target}) met on {len(met)} of {len(rs)}"
            + (f" ({', '.join(met)})" if met and len(met) < len(rs) else "")
            + "."
        )
        for r in rs:
            k = judged(r)
            if k is None:
                continue
            nd = r.s.nd
            run = r.runs[(k, 0)]
            ref = r.reference()
            m, e = finite_paired(run.test, ref.test)
            txt = (
                f"{r.name}: {'best spline' if k != r.best_variant() else 'best'} relgrad variant by validation "
                f"**{k}**, test {fmt(*mean_2se(run.test), nd=nd)}; "
                f"{ref.name} ({ref.choice}) {fmt(*mean_2se(ref.test), nd=nd)}; difference {pm(m, e, nd)} "
                f"({verdict(r)[0]})"
            )
            if ("default", 0) in r.runs and k != "default":
                md, ed = finite_paired(run.test, r.runs[("default", 0)].test)
                txt += f"; it minus the default {pm(md, ed, nd)}"
            g = r.baselines["Gaussian"].b
            mg, eg = finite_paired(run.test, g.test)
            txt += f"; minus the Gaussian {pm(mg, eg, nd)}"
            if len(seeds) > 1:
                per = [float(np.mean(r.runs[(k, s)].test - ref.test)) for s in seeds if (k, s) in r.runs]
                txt += f"; difference per seed {', '.join(f'{v:+.{nd}f}' for v in per)}"
            if r.s.kind == "digits":
                txt += f". The digits' target: {verdict(r)[1]}"
            out.append("  - " + txt + ".")
    # The default and the fixed activation against the Gaussian, everywhere.
    for key, what in (("tanh-L3", "the fixed activation (tanh-L3)"), ("default", "`Flow()` with its defaults")):
        rs = [r for r in results if (key, 0) in r.runs]
        if not rs:
            continue
        ahead = [r.name for r in rs if (lambda me: me[0] > me[1])(finite_paired(r.runs[(key, 0)].test,
                                                                             r.baselines["Gaussian"].b.test))]
        archs = sorted({r.runs[(key, 0)].arch for r in rs})
        out.append(
            f"**{what} against the Gaussian**: beats the best Gaussian by more than 2 s.e. on {len(ahead)} of "
            f"{len(rs)} sets" + (f" ({', '.join(ahead)})" if ahead else "") + f"; fitted as: {'; '.join(archs)}."
        )
    return out


def report(results: List[Result], seeds: Sequence[int], sizes_2d, quick: bool, load_before, load_after,
           total: float, command: str) -> str:
    now = _dt.datetime.now().isoformat(timespec="seconds")
    lines = [
        "# Does capacity pay? Spline activations against GMM and KDE",
        "",
        "<!-- Generated by benches/quality/capacity.py: do not edit by hand, rerun the script. -->",
        "",
        "This report is written by [`benches/quality/capacity.py`](../benches/quality/capacity.py). It fits "
        "`relgrad.Flow` with its defaults and with learnable per-unit monotone rational-quadratic spline "
        "activations on the seven 2-D generators of the command-line tool, the 8x8 digits and four small real "
        "data sets, and compares the held-out log-likelihood (LL) with a full-covariance Gaussian, a "
        "GaussianMixture and a KernelDensity chosen on the same validation rows (on the digits also FlowJAX's "
        "spline MAF). Rerun it from the repository's root (this run took "
        f"{total / 60:.1f} min of wall time on a shared machine; see "
        "[`benches/quality/README.md`](../benches/quality/README.md)):",
        "",
        "```bash",
        command,
        "```",
        "",
    ]
    if quick:
        lines += ["**This is a --quick smoke test (small sizes, one seed): not the study's numbers.**", ""]
    lines += [
        "## Setup",
        "",
        f"- Run: {now}, git HEAD {HEAD_AT_START} at the start (the working tree may have had uncommitted changes); "
        "total wall "
        f"time {total / 60:.1f} min under load",
        f"- Machine: {cpu_model()}, {os.cpu_count()} logical cores "
        f"({len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'} usable), shared with "
        f"other jobs; 1-minute load average {load_before[0]:.2f} before, {load_after[0]:.2f} after. Wall "
        "times are wall time under load; this report makes no speed claims.",
        f"- Python {platform.python_version()}; relgrad {version('relgrad')}; numpy {version('numpy')}; "
        f"scikit-learn {version('scikit-learn')}; matplotlib {version('matplotlib')}; flowjax {version('flowjax')}; "
        f"jax {version('jax')}",
        "",
        "**relgrad variants** (`relgrad.Flow` keyword arguments; everything not given at Flow's default):",
        "",
    ]
    lines += [f"- {k}: {label}: `{kw or '{}'}`" for k, label, kw in VARIANTS if any((k, 0) in r.runs for r in results)]
    lines += [
        "",
        "**Data and splits.** Every split is relgrad's own seeded split "
        f"(`relgrad._relgrad.split_rows(n, n_val, n_test, seed={SPLIT_SEED})`). The 2-D sets: "
        f"{sizes_2d[0]} train / {sizes_2d[1]} validation / {sizes_2d[2]} test rows, drawn with the formulas and "
        "constants of `crates/relgrad-cli/src/data/generators.rs` (the CLI has no export of its generated "
        "rows) from numpy streams, so the rows are not the ones `relgrad train --data NAME` draws, but come from "
        "the same distributions. The digits: the split of `relgrad train` (1437 / 180 / 180), `Flow(levels=17)` "
        "(the logit preprocessing), numbers in pixel-space nats per image as in study.py and compare.py. The "
        f"small real sets: {SMALL_FRACTIONS[0]:.0%} validation, {SMALL_FRACTIONS[1]:.0%} test, the rest train; "
        "Flow standardises them itself (`preprocess=\"auto\"`), the baselines fit the train-standardised rows and "
        "the constant log-Jacobian is added back, so every number is in the data's own units. Every method fits "
        "on the train rows and chooses what it chooses (early stopping, variant, components, bandwidth) on the "
        "validation rows; the test rows give only the reported numbers.",
        "",
        "**How Flow gets the validation rows.** As in study.py: each Flow is fitted on the train+validation "
        "rows with `validation_fraction = n_val / (n_train + n_val)`, the rows placed so that its own seeded "
        "split lands exactly on the common train and validation rows (for every seed). Its early stopping is "
        "its default one on exactly those rows. Its validation LL in the tables is `score_samples` of the "
        f"validation rows (digits: the mean over {N_TEST_DRAWS} dequantisation draws), in the test LL's units.",
        "",
        "**Seeds.** The main numbers are for `random_state=0`; "
        + (
            f"'test LL, seeds' repeats every fit with `random_state` in {{{', '.join(map(str, seeds))}}} (same "
            "split; other shuffles and, for the digits, other dequantisation noise), the spread that the ± 2 s.e. "
            "over test rows does not include. The best variant is chosen by validation at seed 0."
            if len(seeds) > 1
            else "only one seed was run."
        ),
        "",
        "**Uncertainty.** ± 2 s.e.: two standard errors of the mean over the test rows. Differences are paired "
        "over the same test rows (mean of the per-row differences ± 2 s.e.). 'Within 2 s.e.' means no detectable "
        "difference, not equality.",
        "",
        "**Baselines** (scikit-learn, fitted on the train rows, chosen on the validation rows):",
        "",
        "- Gaussian: `GaussianMixture(n_components=1, covariance_type='full')`.",
        f"- GaussianMixture: `covariance_type='full'`, default `reg_covar`, `n_init={GMM_INITS}`, `random_state=0`; "
        f"`n_components` with the best validation LL among {{{', '.join(map(str, GMM_GRID['2d']))}}} (2-D sets; "
        f"doubled past {GMM_GRID['2d'][-1]} while the largest count is the best, up to {GMM_MAX_2D}), "
        f"{{{', '.join(map(str, GMM_GRID['digits']))}}} (digits, as compare.py) or "
        f"{{{', '.join(map(str, GMM_GRID['small']))}}} (small real sets; at most half the train rows).",
        "- KernelDensity: Gaussian kernel; bandwidth with the best validation LL among 41 log-spaced values in "
        f"[{KDE_GRID['2d'][0]:g}, {KDE_GRID['2d'][-1]:g}] (2-D sets) or [{KDE_GRID['small'][0]:.3g}, "
        f"{KDE_GRID['small'][-1]:.3g}] (small real sets) on the train-standardised rows, or "
        f"[{KDE_GRID['digits'][0]:g}, {KDE_GRID['digits'][-1]:g}] on the digits' logit-space rows (as compare.py); on the 2-D sets searched coarse to "
        f"fine (every {KDE_STRIDE['2d']}th value, then all within {KDE_STRIDE['2d'] - 1} steps of the best of "
        "those), elsewhere all 41.",
        "- Digits: as compare.py, the baselines fit dequantised (one numpy draw, `default_rng(0)`), "
        "logit-transformed rows, with the transform's log-Jacobian added back (pixel-space nats); FlowJAX's "
        "spline MAF is compare.py's `run_flowjax(spline=True)` on the same rows (one seed).",
        "- The reference of every target is the better of GaussianMixture and KernelDensity by validation LL.",
        "",
        "## Findings in brief",
        "",
        "Computed from the numbers below (seed 0; paired differences over the test rows ± 2 s.e.).",
        "",
    ]
    lines += [f"- {x}" if not x.startswith("  ") else x for x in brief(results, seeds)]
    lines += [
        "",
        "| data set | relgrad variant judged (validation) | test LL | better of GMM/KDE | test LL | relgrad minus it "
        "(paired) | target |",
        "| --- | --- | ---: | --- | ---: | ---: | --- |",
    ]
    for r in results:
        k = judged(r)
        ref = r.reference()
        nd = r.s.nd
        if k is None:
            continue
        run = r.runs[(k, 0)]
        lines.append(
            f"| {r.name} | {k} | {fmt(*mean_2se(run.test), nd=nd)} | {ref.name} ({ref.choice}) | "
            f"{fmt(*mean_2se(ref.test), nd=nd)} | {pm(*finite_paired(run.test, ref.test), nd)} | {verdict(r)[0]} |"
        )
    lines += [
        "",
        "The variant judged is the best by validation LL (seed 0); on the digits, whose target compares the new "
        "activation with the default, the best spline variant by validation. The digits' verdict is about "
        "the default and FlowJAX (see the findings above), not about the column 'relgrad minus it'.",
        "",
    ]
    if any(r.s.kind == "2d" for r in results):
        lines += [
            "## Figure",
            "",
            "Each 2-D set (rows): a histogram of the train rows, the density of the best relgrad variant (by "
            "validation, seed 0) on a grid (`Flow.score_samples`), the GaussianMixture's and the KernelDensity's; "
            "one colour scale per row (clipped at the 99.5th percentile of the models' panels' values):",
            "",
            "![2-D densities](quality-capacity-2d.png)",
            "",
        ]
    for r in results:
        lines += dataset_section(r, seeds)
    return "\n".join(lines).replace("s.e..", "s.e.") + "\n"


# --------------------------------------------------------------------------- main


def main(argv: Optional[List[str]] = None) -> int:
    global VARIANTS, GMM_INITS, HEAD_AT_START
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default=None,
                   help="Flow random_state values, comma-separated; the first must be 0 (default: 0,1,2; --quick: 0)")
    p.add_argument("--variants", default=",".join(k for k, _, _ in VARIANTS),
                   help="relgrad variants to run, from VARIANTS (default: %(default)s)")
    p.add_argument("--datasets", default=",".join(ALL_NAMES), help="(default: %(default)s)")
    p.add_argument("--out-dir", default=None,
                   help="where quality-capacity.md and the figure go (default: docs/; with --quick: a temporary "
                   "directory, so that a smoke test never overwrites the committed report)")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke test: 2-D sets of {'/'.join(map(str, QUICK_SIZES_2D))} train/val/test rows, one "
                   "seed, one GaussianMixture start per n_components")
    p.add_argument("--skip-flowjax", action="store_true", help="do not fit FlowJAX's spline MAF on the digits")
    args = p.parse_args(argv)

    seeds = [int(s) for s in (args.seeds or ("0" if args.quick else ",".join(map(str, SEEDS)))).split(",") if s.strip()]
    if not seeds or seeds[0] != 0:
        raise SystemExit("--seeds must start with 0 (the main seed)")
    wanted = [v for v in args.variants.split(",") if v]
    unknown = [v for v in wanted if v not in {k for k, _, _ in VARIANTS}]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {', '.join(k for k, _, _ in VARIANTS)}")
    VARIANTS = [v for v in VARIANTS if v[0] in wanted]
    names = [n for n in args.datasets.split(",") if n]
    for n in names:
        if n not in ALL_NAMES:
            raise SystemExit(f"unknown data set {n!r}; expected some of {', '.join(ALL_NAMES)}")
    out_dir = Path(args.out_dir) if args.out_dir else (
        Path(tempfile.gettempdir()) / "relgrad-capacity-quick" if args.quick else DOCS)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = "python benches/quality/capacity.py" + (
        " " + " ".join(sys.argv[1:]) if argv is None and len(sys.argv) > 1 else "")
    command = (
        "pip install -r benches/quality/requirements.txt maturin\n"
        "maturin develop --release   # relgrad from this checkout, into the active virtual environment\n" + run
    )
    if args.quick:
        GMM_INITS = 1
    check_variants(VARIANTS)

    HEAD_AT_START = git_head()
    t_all = time.perf_counter()
    load_before = os.getloadavg()
    results: List[Result] = []
    for name in names:
        t_d = time.perf_counter()
        s = load(name, args.quick)
        bl = run_baselines(s)
        print(
            f"{name}: " + ", ".join(f"{k} {np.mean(f.b.test):.3f} ({f.b.choice})" for k, f in bl.items())
            + f"; {time.perf_counter() - t_d:.0f}s",
            file=sys.stderr,
            flush=True,
        )
        fj, fj_err = (None, "")
        if name == "digits":
            if args.skip_flowjax:
                fj_err = "skipped with --skip-flowjax"
            else:
                fj, fj_err = run_flowjax_spline(s)
                print(f"{name}: FlowJAX spline MAF " + (f"{np.mean(fj.test):.2f}" if fj else f"failed: {fj_err}"),
                      file=sys.stderr, flush=True)
        runs: Dict[Tuple[str, int], Run] = {}
        for seed in seeds:
            for key, _, kw in VARIANTS:
                r = fit_flow(s, key, kw, seed, keep=(seed == seeds[0] and s.kind == "2d"))
                runs[(key, seed)] = r
                print(
                    f"{name:14s} {key:14s} seed={seed}: val {r.val:9.3f} test {np.mean(r.test):9.3f} epochs "
                    f"{r.n_epochs:4d} best {r.best_epoch:4d} {r.stop:13s} {r.seconds:6.1f}s",
                    file=sys.stderr,
                    flush=True,
                )
        results.append(Result(s, runs, bl, fj, fj_err, time.perf_counter() - t_d))
    plot_2d(results, out_dir / "quality-capacity-2d.png")
    total = time.perf_counter() - t_all
    sizes = QUICK_SIZES_2D if args.quick else SIZES_2D
    text = report(results, seeds, sizes, args.quick, load_before, os.getloadavg(), total, command)
    (out_dir / "quality-capacity.md").write_text(text)
    print(f"written {out_dir / 'quality-capacity.md'} and the figure; total {total:.0f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
