#!/usr/bin/env python3
"""Does depth pay? Held-out log-likelihood of relgrad.Flow against depth.

Fits ``relgrad.Flow`` at depths 1, 2, 3, 4, 6 and 8 for a few variants (the defaults; the
``init_shift="auto"`` start; the ``tanh-linear`` activation with ``alpha=0.1``; the smooth
leaky ReLU with ``alpha`` 0.1 and 0.3), everything else at its default, on the 8x8 digits
(as ``benches/python/compare.py`` prepares them) and on three 2-D toy sets (two moons,
two spirals, checkerboard), and puts the held-out log-likelihoods beside a full-covariance
Gaussian, a GaussianMixture and a KernelDensity fitted on the same splits.

It writes ``docs/quality.md`` (the report, generated: do not edit it by hand) and the
figures ``docs/quality-*.png``. Run it from the repository's root, in an environment with
relgrad installed (``maturin develop --release``) and the packages of
``benches/quality/requirements.txt``::

    python benches/quality/study.py

See README.md beside this file.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import platform
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DOCS = ROOT / "docs"

# Shared with the comparison script (same digits preprocessing, same report helpers).
sys.path.insert(0, str(ROOT / "benches" / "python"))
from compare import cpu_model, logit_transform, version  # noqa: E402

SPLIT_SEED = 0  # the seed of every train/val/test split (relgrad train's default)
DATA_SEED = 0  # numpy seed of the toy data and of the baselines' dequantisation noise
SEEDS = (0, 1, 2)  # relgrad.Flow's random_state (shuffles, dequantisation noise); 0 is the main one
DEPTHS = (1, 2, 3, 4, 6, 8)
LEVELS = 17  # the digits' pixels are integers 0..16
LAMBDA = 1e-6  # relgrad's logit transform's lambda
N_TEST_DRAWS = 10  # dequantisation draws per test image (digits only), as in compare.py
N_TOY = 2000  # rows generated per 2-D set, before the split
DIGITS_GMM = (1, 2, 3, 5, 8, 12)  # as compare.py
TOY_GMM = (1, 2, 4, 8, 16, 32, 64)
DIGITS_KDE = np.logspace(-1.0, 1.0, 41)  # logit units, as compare.py
TOY_KDE = np.logspace(-2.0, 0.0, 41)  # units of the train rows' standard deviation

# (key, label, Flow keyword arguments); the first is the reference ("default").
VARIANTS: List[Tuple[str, str, Dict[str, object]]] = [
    (
        "default",
        "the paper's activation and relgrad's default until this study (smooth leaky ReLU, alpha 0.01, init_shift 0)",
        {"activation": "smooth-leaky-relu", "alpha": 0.01},
    ),
    (
        "auto",
        'init_shift="auto" (smooth leaky ReLU, alpha 0.01)',
        {"activation": "smooth-leaky-relu", "alpha": 0.01, "init_shift": "auto"},
    ),
    (
        "tanh",
        "tanh-linear, alpha 0.1 (the default since this study, at 3 layers)",
        {"activation": "tanh-linear", "alpha": 0.1},
    ),
    ("slrelu0.1", "smooth leaky ReLU, alpha 0.1", {"activation": "smooth-leaky-relu", "alpha": 0.1}),
    ("slrelu0.3", "smooth leaky ReLU, alpha 0.3", {"activation": "smooth-leaky-relu", "alpha": 0.3}),
]
# A diagnostic for the 2-D sets only (cheap there): is the default's result limited by its
# learning rate and epoch budget?
TOY_EXTRA: List[Tuple[str, str, Dict[str, object]]] = [
    (
        "lr3e-3",
        "diagnostic, 2-D sets only: the previous default with a 10x learning rate and up to 3000 epochs",
        {"activation": "smooth-leaky-relu", "alpha": 0.01, "learning_rate": 3e-3, "max_epochs": 3000},
    ),
]
SHORT = {"default": "default", "auto": "auto start", "tanh": "tanh a=0.1", "slrelu0.1": "slrelu a=0.1",
         "slrelu0.3": "slrelu a=0.3", "lr3e-3": "lr 3e-3 (diag.)"}


def all_variants() -> List[Tuple[str, str, Dict[str, object]]]:
    return VARIANTS + TOY_EXTRA


def variants_for(d: "Data") -> List[Tuple[str, str, Dict[str, object]]]:
    return VARIANTS + (TOY_EXTRA if d.name != "digits" else [])


# --------------------------------------------------------------------------- data


@dataclass
class Data:
    """One data set, its split, and what the baselines fit on.

    ``x`` is the data in its own units (integer pixels for the digits). The baselines work
    in a space ``b`` (logit space for the digits, train-standardised rows for the 2-D sets);
    ``b_logjac_*`` is ``ln |db/dx|`` per row, added to a baseline's log-density to get the
    log-density of ``x`` in the data's units.
    """

    name: str
    title: str
    x: np.ndarray
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    flow_kwargs: Dict[str, object]
    n_draws: int  # test rows are scored n_draws times (dequantisation draws)
    b_train: np.ndarray
    b_val: np.ndarray
    b_test: np.ndarray  # (n_draws * n_test, D), draw-major
    b_logjac_test: np.ndarray  # (n_draws * n_test,)
    gmm_grid: Sequence[int]
    kde_grid: np.ndarray
    kde_space: str
    units: str  # what a test number is
    curve_units: str  # what a validation number (curves, start) is
    description: str


def split(n: int):
    from relgrad import _relgrad

    n_val = _relgrad.holdout_rows(n, 0.1)
    n_test = _relgrad.holdout_rows(n, 0.1)
    return tuple(np.asarray(a, dtype=np.intp) for a in _relgrad.split_rows(n, n_val, n_test, SPLIT_SEED))


def load_digits_data() -> Data:
    from sklearn.datasets import load_digits

    pixels = load_digits().data.astype(np.float64)
    train, val, test = split(pixels.shape[0])
    rng = np.random.default_rng(DATA_SEED)
    y_all, _ = logit_transform(pixels, rng.random(pixels.shape))
    test_rows = np.tile(pixels[test], (N_TEST_DRAWS, 1))
    y_test, logjac_test = logit_transform(test_rows, rng.random(test_rows.shape))
    return Data(
        name="digits",
        title="8x8 digits (64 dimensions)",
        x=pixels,
        train=train,
        val=val,
        test=test,
        flow_kwargs={"levels": LEVELS},
        n_draws=N_TEST_DRAWS,
        b_train=y_all[train],
        b_val=y_all[val],
        b_test=y_test,
        b_logjac_test=logjac_test,
        gmm_grid=DIGITS_GMM,
        kde_grid=DIGITS_KDE,
        kde_space="logit-space rows, as compare.py",
        units="nats per image: log-density of the dequantised pixels `pixel + U(0,1)` on `[0,17)^64` "
        "(pixel space, the units of compare.py)",
        curve_units="nats per image in logit space (the network's space: after dequantisation and the logit, "
        "before its log-Jacobian), on relgrad's own dequantisation draw of the validation rows",
        description="`sklearn.datasets.load_digits()`, 1797 x 64 integer pixels 0..16; `Flow(levels=17)`, "
        "i.e. the logit preprocessing",
    )


def make_toy(name: str, rng: np.random.Generator) -> np.ndarray:
    n = N_TOY
    if name == "moons":
        from sklearn.datasets import make_moons

        x, _ = make_moons(n_samples=n, noise=0.05, random_state=int(rng.integers(2**31)))
        return x
    if name == "spirals":
        # Two interleaved spirals (as in the FFJORD toy sets), with Gaussian noise 0.1.
        h = n // 2
        t = np.sqrt(rng.random(h)) * 3 * np.pi  # 540 degrees
        arm = np.stack([-np.cos(t) * t + rng.random(h) * 0.5, np.sin(t) * t + rng.random(h) * 0.5], axis=1)
        x = np.concatenate([arm, -arm]) / 3.0 + rng.normal(scale=0.1, size=(2 * h, 2))
        return x[rng.permutation(2 * h)]
    if name == "checkerboard":
        # Uniform on 8 of the 16 unit squares of [-4, 4]^2 (a checkerboard), as FFJORD's.
        x1 = rng.random(n) * 4 - 2
        x2 = rng.random(n) - rng.integers(0, 2, n) * 2.0
        x2 = x2 + np.floor(x1) % 2
        return np.stack([x1, x2], axis=1) * 2.0
    raise ValueError(name)


TOY_STREAM = {"moons": 1, "spirals": 2, "checkerboard": 3}  # numpy stream of each set: default_rng([DATA_SEED, k])

TOY_TEXT = {
    "moons": ("two moons (2 dimensions)", "`sklearn.datasets.make_moons(2000, noise=0.05)`"),
    "spirals": (
        "two spirals (2 dimensions)",
        "two interleaved spirals of 3/2 turns (radius ~ sqrt(U)), uniform jitter 0.5, scaled by 1/3, plus "
        "Gaussian noise of s.d. 0.1 (2000 rows)",
    ),
    "checkerboard": (
        "checkerboard (2 dimensions)",
        "uniform on the 8 black squares of a 4 x 4 checkerboard on [-4, 4]^2 (2000 rows)",
    ),
}


def load_toy(name: str, seed_offset: int) -> Data:
    rng = np.random.default_rng([DATA_SEED, seed_offset])
    x = make_toy(name, rng)
    train, val, test = split(x.shape[0])
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    b = (x - mean) / std
    logjac = -float(np.sum(np.log(std)))
    return Data(
        name=name,
        title=TOY_TEXT[name][0],
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
        gmm_grid=TOY_GMM,
        kde_grid=TOY_KDE,
        kde_space="train-standardised rows (bandwidth in units of the train standard deviation; "
        "the constant log-Jacobian is added back)",
        units="nats per row: log-density of the rows in their own units",
        curve_units="nats per row in the data's units (relgrad's curve in its standardised space plus the "
        "standardisation's log-Jacobian)",
        description=TOY_TEXT[name][1] + f", numpy `default_rng([{DATA_SEED}, {seed_offset}])`; "
        "`Flow()` standardises automatically (preprocess auto)",
    )


# --------------------------------------------------------------------------- results


def mean_2se(v: np.ndarray) -> Tuple[float, float]:
    v = np.asarray(v, dtype=np.float64)
    return float(np.mean(v)), float(2.0 * np.std(v, ddof=1) / math.sqrt(len(v)))


@dataclass
class FlowRun:
    variant: str
    depth: int
    seed: int
    test: np.ndarray  # per test row (mean over draws), data units
    test_logit: Optional[np.ndarray]  # digits: per image, logit space
    test_cli_logit: Optional[float]  # digits: logit-space test LL on relgrad train's own test draw
    val_curve: np.ndarray  # validation LL per epoch (curve units), epoch 0 = start
    train_curve: np.ndarray
    best_val: float
    start_val: float
    best_epoch: int
    n_epochs: int
    stop: str
    seconds: float


@dataclass
class Baseline:
    name: str
    choice: str
    test: np.ndarray  # per test row, data units
    val: float  # validation LL: data units (2-D sets), logit space on the baselines' draw (digits)
    notes: List[str] = field(default_factory=list)


def per_row(values: np.ndarray, n_draws: int, n_test: int) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(n_draws, n_test).mean(axis=0)


def fit_flow(d: Data, key: str, kwargs: Dict[str, object], depth: int, seed: int) -> FlowRun:
    """``Flow`` on exactly the train rows with early stopping on exactly the val rows.

    Flow holds out its validation rows itself (``validation_fraction``, chosen from
    ``random_state`` as ``relgrad train`` chooses them). As in compare.py, it is fitted on
    the train+val rows with ``validation_fraction = n_val / (n_train + n_val)``, the rows
    placed so that its own split lands exactly on the common train and val rows.
    """
    import relgrad
    from relgrad import _relgrad
    from sklearn.exceptions import ConvergenceWarning

    m = len(d.train) + len(d.val)
    frac = len(d.val) / m
    n_val = _relgrad.holdout_rows(m, frac)
    if n_val != len(d.val):
        raise SystemExit(f"validation_fraction {frac} holds out {n_val} rows, not {len(d.val)}")
    inner_train, inner_val, _ = (np.asarray(a, dtype=np.intp) for a in _relgrad.split_rows(m, n_val, 0, seed))
    x = np.empty((m, d.x.shape[1]))
    x[inner_train] = d.x[d.train]
    x[inner_val] = d.x[d.val]
    flow = relgrad.Flow(n_layers=depth, random_state=seed, validation_fraction=frac, **d.flow_kwargs, **kwargs)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # divergence: recorded in stop_reason_
        flow.fit(x)
    seconds = time.perf_counter() - t

    n_test = len(d.test)
    rows = np.tile(d.x[d.test], (d.n_draws, 1))  # logit models: each copy gets its own noise
    test = per_row(flow.score_samples(rows), d.n_draws, n_test)
    test_logit = cli_logit = None
    offset = 0.0
    if flow.preprocess_.get("kind") == "standardize":
        offset = -float(np.sum(np.log(np.asarray(flow.preprocess_["std"], dtype=np.float64))))
    meta = getattr(flow, "_meta", None)  # private; only for the digits' logit-space numbers
    if flow.preprocess_.get("kind") == "logit" and meta is not None:
        test_logit = per_row(
            _relgrad.log_prob_model_space(flow.weights_, flow.biases_, flow.splines_, meta, rows, "all"), d.n_draws, n_test
        )
        cli_logit = float(
            np.mean(_relgrad.log_prob_model_space(flow.weights_, flow.biases_, flow.splines_, meta, d.x[d.test], "test"))
        )
    h = flow.history_
    val_curve = np.asarray(h["val_ll"], dtype=np.float64) + offset
    train_curve = np.asarray(h["train_ll"], dtype=np.float64) + offset
    if len(h["epoch"]) == 0 or int(h["epoch"][0]) != 0:
        raise SystemExit("Flow.history_ does not start at epoch 0")
    best_idx = np.flatnonzero(np.asarray(h["epoch"]) == flow.best_epoch_)
    best_val = float(val_curve[best_idx[0]]) if len(best_idx) else float("nan")
    return FlowRun(
        key,
        depth,
        seed,
        test,
        test_logit,
        cli_logit,
        val_curve,
        train_curve,
        best_val,
        float(val_curve[0]),
        int(flow.best_epoch_),
        int(flow.n_epochs_),
        str(flow.stop_reason_),
        seconds,
    )


def run_baselines(d: Data) -> List[Baseline]:
    from sklearn.mixture import GaussianMixture
    from sklearn.neighbors import KernelDensity

    n_test = len(d.test)
    out = []
    fits = {}
    for k in d.gmm_grid:
        g = GaussianMixture(n_components=k, covariance_type="full", random_state=SPLIT_SEED).fit(d.b_train)
        fits[k] = (g, float(g.score(d.b_val)))
    # The baselines' own validation LL in the data's units (toys: + constant log-Jacobian).
    toy_offset = float(d.b_logjac_test[0]) if d.n_draws == 1 else 0.0

    def test_of(model) -> np.ndarray:
        return per_row(model.score_samples(d.b_test) + d.b_logjac_test, d.n_draws, n_test)

    gauss = Baseline("Gaussian", "1 full-covariance component", test_of(fits[1][0]), fits[1][1] + toy_offset)
    out.append(gauss)
    best = max(fits, key=lambda k: fits[k][1])
    gm = Baseline(
        "GaussianMixture",
        f"{best} components" + (" (edge of the grid)" if best in (d.gmm_grid[0], d.gmm_grid[-1]) else ""),
        test_of(fits[best][0]),
        fits[best][1] + toy_offset,
    )
    gm.notes.append(
        "validation LL by n_components: " + ", ".join(f"{k}: {fits[k][1] + toy_offset:.3f}" for k in d.gmm_grid)
    )
    out.append(gm)
    scores = []
    for h in d.kde_grid:
        kde = KernelDensity(kernel="gaussian", bandwidth=float(h)).fit(d.b_train)
        scores.append(float(kde.score_samples(d.b_val).mean()))
    i = int(np.argmax(scores))
    h = float(d.kde_grid[i])
    kde = KernelDensity(kernel="gaussian", bandwidth=h).fit(d.b_train)
    kb = Baseline(
        "KernelDensity",
        f"bandwidth {h:.3g}" + (" (edge of the grid)" if i in (0, len(d.kde_grid) - 1) else ""),
        test_of(kde),
        scores[i] + toy_offset,
    )
    kb.notes.append(
        "validation LL by bandwidth (near the best): "
        + ", ".join(
            f"{b:.3g}: {s + toy_offset:.3f}"
            for b, s in list(zip(d.kde_grid, scores))[max(0, i - 3) : i + 4]
        )
    )
    out.append(kb)
    return out


# --------------------------------------------------------------------------- figures


def plot_curves(d: Data, runs: Dict[Tuple[str, int, int], FlowRun], gauss_val: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [k for k in ("default", "tanh", "auto") if any(r[0] == k for r in runs)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.0), sharey=True, squeeze=False)
    cmap = plt.get_cmap("viridis")
    best_all = max(np.nanmax(runs[(k, L, 0)].val_curve) for k in panels for L in DEPTHS if (k, L, 0) in runs)
    span = max(best_all - gauss_val, 0.5 if d.name == "digits" else 0.1)
    lo, hi = gauss_val - 2.5 * span, best_all + 0.4 * span
    for ax, key in zip(axes[0], panels):
        for i, depth in enumerate(DEPTHS):
            r = runs.get((key, depth, 0))
            if r is None:
                continue
            ep = np.arange(len(r.val_curve))
            ax.plot(ep, r.val_curve, color=cmap(i / max(len(DEPTHS) - 1, 1)), lw=1.2, label=layers(depth))
            ax.plot([r.best_epoch], [r.best_val], "o", color=cmap(i / max(len(DEPTHS) - 1, 1)), ms=4)
        ax.axhline(gauss_val, color="k", ls="--", lw=1, label="best Gaussian")
        ax.set_title(f"{d.name}: {SHORT[key]}")
        ax.set_xlabel("epoch")
        ax.set_ylim(lo, hi)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("validation LL" + (" (logit space)" if d.name == "digits" else " (nats/row)"))
    axes[0][-1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_depth(
    datasets: List[Data],
    runs: Dict[str, Dict[Tuple[str, int, int], FlowRun]],
    baselines: Dict[str, List[Baseline]],
    path: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(datasets)
    cols = 2 if n > 1 else 1
    rows_ = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows_, cols, figsize=(6.2 * cols, 4.2 * rows_), squeeze=False)
    keys = [k for k, _, _ in all_variants()]
    colors = dict(zip(keys, ["C0", "C3", "C2", "C1", "C4", "C7"]))
    styles = {"Gaussian": ":", "GaussianMixture": "--", "KernelDensity": "-."}
    for ax, d in zip(axes.flat, datasets):
        rr = runs[d.name]
        bl = baselines[d.name]
        present = [k for k in keys if any((k, L, 0) in rr for L in DEPTHS)]
        top = max(max(mean_2se(rr[(k, L, 0)].test)[0] for k in present for L in DEPTHS if (k, L, 0) in rr),
                  max(mean_2se(b.test)[0] for b in bl))
        g = mean_2se(bl[0].test)[0]
        span = max(top - g, 0.3)
        for j, k in enumerate(present):
            xs, ms, es = [], [], []
            for L in DEPTHS:
                if (k, L, 0) in rr:
                    m, e = mean_2se(rr[(k, L, 0)].test)
                    xs.append(L + (j - (len(present) - 1) / 2) * 0.09)
                    ms.append(m)
                    es.append(e)
            ax.errorbar(xs, ms, yerr=es, marker="o", ms=3.5, lw=1.1, capsize=2, color=colors[k], label=SHORT[k])
        for b in bl:
            ax.axhline(mean_2se(b.test)[0], color="k", ls=styles[b.name], lw=1, label=f"{b.name} ({b.choice})")
        low = min(mean_2se(rr[(k, L, 0)].test)[0] - mean_2se(rr[(k, L, 0)].test)[1]
                  for k in present for L in DEPTHS if (k, L, 0) in rr)
        low = min(low, min(mean_2se(b.test)[0] for b in bl))
        ax.set_ylim(max(low - 0.1 * span, g - 4 * span), top + 0.3 * span)
        ax.set_xticks(DEPTHS)
        ax.set_xlabel("layers")
        ax.set_ylabel("test LL (nats/image, pixel space)" if d.name == "digits" else "test LL (nats/row)")
        ax.set_title(d.title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5, loc="best", ncol=2, framealpha=0.8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- report


def git_head() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or "unknown"
    except Exception:
        return "unknown"


def fmt(m: float, e: Optional[float] = None, nd: int = 2) -> str:
    if not np.isfinite(m):
        return "n/a"
    return f"{m:.{nd}f}" if e is None else f"{m:.{nd}f} ± {e:.{nd}f}"


def paired(a: np.ndarray, b: np.ndarray) -> Tuple[float, float]:
    """Mean of a - b over test rows, ± 2 s.e. of the paired difference."""
    return mean_2se(np.asarray(a) - np.asarray(b))


def verdict(m: float, e: float, what_pos: str, what_neg: str) -> str:
    if abs(m) <= e:
        return "within 2 s.e."
    return what_pos if m > 0 else what_neg


def layers(n: int) -> str:
    return f"{n} layer" + ("" if n == 1 else "s")


def table(d: Data, rr: Dict[Tuple[str, int, int], FlowRun], seeds: Sequence[int], nd: int) -> List[str]:
    digits = d.name == "digits"
    multi = len(seeds) > 1
    head = ["variant", "layers", "start val LL", "best val LL", "test LL ± 2se"]
    if digits:
        head += ["test LL, logit space", "test LL, logit, CLI draw"]
    if multi:
        head += [f"test LL, seeds {', '.join(map(str, seeds))}"]
    head += ["best epoch", "epochs", "stop", "wall s (under load)"]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + " |"]
    for k, _, _ in all_variants():
        for L in DEPTHS:
            r = rr.get((k, L, 0))
            if r is None:
                continue
            cells = [SHORT[k], str(L), fmt(r.start_val, nd=nd), fmt(r.best_val, nd=nd), fmt(*mean_2se(r.test), nd=nd)]
            if digits:
                cells += [fmt(*mean_2se(r.test_logit), nd=nd), fmt(r.test_cli_logit, nd=nd)]
            if multi:
                vals = [float(np.mean(rr[(k, L, s)].test)) for s in seeds if (k, L, s) in rr]
                cells.append(" / ".join(fmt(v, nd=nd) for v in vals))
            cells += [str(r.best_epoch), str(r.n_epochs), r.stop.replace("_", " "), f"{r.seconds:.1f}"]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def findings(
    d: Data,
    rr: Dict[Tuple[str, int, int], FlowRun],
    bl: List[Baseline],
    g_line: float,
    seeds: Sequence[int],
    nd: int,
) -> List[str]:
    out = []
    keys = [k for k, _, _ in all_variants() if any((k, L, 0) in rr for L in DEPTHS)]
    gauss, gmm, kde = bl
    unit = "nats/image" if d.name == "digits" else "nats/row"

    # Depth: 4 (and the best deeper) against 2, per variant, paired on the test rows.
    for k in keys:
        if (k, 2, 0) not in rr or (k, 4, 0) not in rr:
            continue
        m, e = paired(rr[(k, 4, 0)].test, rr[(k, 2, 0)].test)
        per_seed = [
            float(np.mean(rr[(k, 4, s)].test - rr[(k, 2, s)].test))
            for s in seeds
            if (k, 4, s) in rr and (k, 2, s) in rr
        ]
        within = abs(m) <= 0.5
        txt = (
            f"**{SHORT[k]}**: 4 layers minus 2 layers = {m:+.{nd}f} ± {e:.{nd}f} {unit} (paired, seed 0): "
            + verdict(m, e, "4 layers better", "4 layers worse").replace("within 2 s.e.", "within 2 s.e., no detectable difference")
            + f"; {'within' if within else 'not within'} 0.5 nats of 2 layers"
        )
        if len(per_seed) > 1:
            txt += (
                f"; mean difference per seed ({', '.join(map(str, seeds))}): "
                + ", ".join(f"{v:+.{nd}f}" for v in per_seed)
            )
        # Best depth of the variant by validation LL (seed 0), compared with 2 layers.
        bestL = max((L for L in DEPTHS if (k, L, 0) in rr), key=lambda L: rr[(k, L, 0)].best_val)
        if bestL != 2:
            m2, e2 = paired(rr[(k, bestL, 0)].test, rr[(k, 2, 0)].test)
            txt += (
                f". Its best depth by validation is {layers(bestL)}: {m2:+.{nd}f} ± {e2:.{nd}f} on test against 2 "
                f"layers: {verdict(m2, e2, 'better', 'worse')}"
            )
            ps = [
                float(np.mean(rr[(k, bestL, s)].test - rr[(k, 2, s)].test))
                for s in seeds
                if (k, bestL, s) in rr and (k, 2, s) in rr
            ]
            if len(ps) > 1:
                txt += "; mean difference per seed: " + ", ".join(f"{v:+.{nd}f}" for v in ps)
        else:
            txt += ". Its best depth by validation is 2 layers"
        out.append(txt + ".")

    # Auto start: what happened.
    if "auto" in keys:
        starts = [rr[("auto", L, 0)].start_val - g_line for L in DEPTHS if ("auto", L, 0) in rr]
        gains = [rr[("auto", L, 0)].best_val - rr[("auto", L, 0)].start_val for L in DEPTHS if ("auto", L, 0) in rr]
        stops = [f"{L}: {rr[('auto', L, 0)].stop.replace('_', ' ')} (best epoch {rr[('auto', L, 0)].best_epoch})"
                 for L in DEPTHS if ("auto", L, 0) in rr]
        out.append(
            f"**auto start**: its start is {min(starts):+.{nd}f} to {max(starts):+.{nd}f} {unit} from the best "
            f"Gaussian's validation LL over depths {DEPTHS[0]}-{DEPTHS[-1]}; training then gains "
            f"{min(gains):.{nd}f} to {max(gains):.{nd}f} on validation. Stops by depth: " + "; ".join(stops) + "."
        )
        cmp = {L: paired(rr[("auto", L, 0)].test, rr[("default", L, 0)].test)
               for L in DEPTHS if ("auto", L, 0) in rr and ("default", L, 0) in rr}
        worse = [L for L, (m, e) in cmp.items() if m < -e]
        better = [L for L, (m, e) in cmp.items() if m > e]
        out.append(
            f"After training, the auto start's test LL is worse than the default start's (beyond 2 s.e.) at "
            f"{len(worse)} of {len(cmp)} depths" + (f" ({', '.join(map(str, worse))} layers)" if worse else "")
            + f" and better at {len(better)}" + (f" ({', '.join(map(str, better))} layers)" if better else "")
            + "."
        )

    # The epoch budget.
    main_keys = [k for k, _, _ in VARIANTS if k in keys]
    fits = [rr[(k, L, 0)] for k in main_keys for L in DEPTHS if (k, L, 0) in rr]
    capped = [r for r in fits if r.stop == "max_epochs"]
    rising = [r for r in capped if r.best_epoch >= r.n_epochs - 30]
    div = [r for r in fits if r.stop == "diverged"]
    # The start against depth (the default start, init_shift 0, for the variants other than auto).
    st = []
    monotone = True
    for k in main_keys:
        if k == "auto":
            continue
        sv = [rr[(k, L, 0)].start_val for L in DEPTHS if L >= 2 and (k, L, 0) in rr]
        monotone = monotone and all(x > y for x, y in zip(sv, sv[1:]))
        st.append(
            f"{SHORT[k]} "
            + ", ".join(f"{rr[(k, L, 0)].start_val - g_line:+.{nd}f}" for L in DEPTHS if (k, L, 0) in rr)
        )
    if st:
        out.append(
            f"**start against depth** (start val LL minus the best Gaussian's, at {', '.join(map(str, DEPTHS))} "
            "layers): " + "; ".join(st) + "."
            + (
                " With init_shift 0 the start lies further below the Gaussian the deeper the network (from 2 "
                "layers on, for every variant here)."
                if monotone
                else ""
            )
        )
    out.append(
        f"**budget and divergence** (seed 0, the {len(main_keys)} main variants, {len(fits)} fits): "
        + (
            f"{len(capped)} stopped at the epoch limit, {len(rising)} of them still improving (best epoch within "
            "the last 30)"
            if capped
            else "none stopped at the epoch limit"
        )
        + (" (" + ", ".join(f"{SHORT[r.variant]} {r.depth}" for r in capped) + ")" if capped else "")
        + f"; {len(div)} diverged"
        + (" (" + ", ".join(f"{SHORT[r.variant]} {r.depth}" for r in div) + ")" if div else "")
        + "; the others stopped early."
    )
    if "lr3e-3" in keys:
        dg = [rr[("lr3e-3", L, 0)] for L in DEPTHS if ("lr3e-3", L, 0) in rr]
        b = max(dg, key=lambda r: r.best_val)
        mg, eg = paired(b.test, gauss.test)
        out.append(
            f"**diagnostic** (10x learning rate, up to 3000 epochs): its best depth by validation is "
            f"{layers(b.depth)} (best validation {b.best_val:.{nd}f} against the Gaussian's {g_line:.{nd}f}; "
            f"{sum(r.stop == 'max_epochs' for r in dg)} of {len(dg)} fits at the epoch limit); on test it is "
            f"{mg:+.{nd}f} ± {eg:.{nd}f} from the Gaussian: {verdict(mg, eg, 'better', 'worse')}. "
            + (
                "So a larger budget does not take relgrad clear of the Gaussian here either."
                if mg <= eg
                else "So the default's budget limits it here."
            )
        )
    if d.name == "digits" and ("tanh", 4, 0) in rr and ("default", 2, 0) in rr:
        t4, d2 = rr[("tanh", 4, 0)], rr[("default", 2, 0)]
        m, e = paired(t4.test, d2.test)
        out.append(
            f"**the earlier quick measurement** (tanh 4 layers about -108.1 against the default 2 layers' -109.9, "
            f"logit space, on `relgrad train`'s test draw): here {t4.test_cli_logit:.2f} against "
            f"{d2.test_cli_logit:.2f} on that draw; on 10 draws in pixel space, tanh 4 layers minus default 2 "
            f"layers = {m:+.2f} ± {e:.2f}: {verdict(m, e, 'tanh 4 layers better', 'tanh 4 layers worse')}."
        )

    # Overall best (chosen by validation LL, seed 0) vs baselines.
    cands = [(k, L) for k in keys for L in DEPTHS if (k, L, 0) in rr]
    k, L = max(cands, key=lambda c: rr[(c[0], c[1], 0)].best_val)
    best = rr[(k, L, 0)]
    kt, Lt = max(cands, key=lambda c: float(np.mean(rr[(c[0], c[1], 0)].test)))
    txt = (
        f"**best relgrad model** (chosen by validation LL among all variants and depths, seed 0): {SHORT[k]}, "
        f"{layers(L)}, test {fmt(*mean_2se(best.test), nd=nd)}"
    )
    if (kt, Lt) != (k, L):
        txt += (
            f" (the highest test LL is {SHORT[kt]}, {layers(Lt)}, "
            f"{fmt(*mean_2se(rr[(kt, Lt, 0)].test), nd=nd)}: choosing by test would be optimistic)"
        )
    txt += ". Against the baselines (paired differences, relgrad minus baseline): "
    parts = []
    for b in (gauss, gmm, kde):
        m, e = paired(best.test, b.test)
        parts.append(
            f"{b.name} ({b.choice}) {m:+.{nd}f} ± {e:.{nd}f}: "
            + verdict(m, e, "relgrad better", f"{b.name} better")
        )
    out.append(txt + "; ".join(parts) + ".")
    return out


def summary(d: Data, rr: Dict[Tuple[str, int, int], FlowRun], bl: List[Baseline]) -> str:
    """One line per data set: does depth pay, what is best, against the baselines."""
    nd = 2 if d.name == "digits" else 3
    keys = [k for k, _, _ in all_variants() if any((k, L, 0) in rr for L in DEPTHS)]
    pays, hurts = [], []
    for k in keys:
        if (k, 2, 0) not in rr:
            continue
        deeper = [L for L in DEPTHS if L > 2 and (k, L, 0) in rr]
        if not deeper:
            continue
        bestL = max(deeper, key=lambda L: rr[(k, L, 0)].best_val)  # the best deeper model, by validation
        m, e = paired(rr[(k, bestL, 0)].test, rr[(k, 2, 0)].test)
        if m > e:
            mg = float(np.mean(rr[(k, bestL, 0)].test - bl[0].test))
            pays.append(
                f"{SHORT[k]} ({bestL} layers: {m:+.{nd}f} ± {e:.{nd}f} over its 2 layers, {mg:+.{nd}f} over the "
                "Gaussian)"
            )
        elif m < -e:
            hurts.append(SHORT[k])
    cands = [(k, L) for k in keys for L in DEPTHS if (k, L, 0) in rr]
    k, L = max(cands, key=lambda c: rr[(c[0], c[1], 0)].best_val)
    best = rr[(k, L, 0)]
    vs = []
    for b in bl:
        m, e = paired(best.test, b.test)
        vs.append(f"{b.name} {m:+.{nd}f} ± {e:.{nd}f} ({'better' if m > e else 'worse' if m < -e else 'within 2 s.e.'})")
    g = bl[0]
    deep = [float(np.mean(rr[(k2, L2, 0)].test - g.test)) for k2 in keys for L2 in DEPTHS if L2 >= 2 and (k2, L2, 0) in rr]
    txt = f"**{d.name}**: "
    if pays:
        txt += (
            "more than 2 layers pays (the best deeper model by validation beats 2 layers on test by more than "
            "2 s.e.) for " + "; ".join(pays)
        )
    else:
        txt += "no variant's best deeper model (by validation) beats its 2 layers on test by more than 2 s.e"
    if hurts:
        txt += f"; even the best deeper model is worse than 2 layers for {', '.join(hurts)}"
    txt += (
        f". Best by validation: {SHORT[k]}, {layers(L)}, test {fmt(*mean_2se(best.test), nd=nd)}; against the "
        "baselines (paired, relgrad minus baseline): " + ", ".join(vs) + "."
    )
    if deep:
        txt += (
            f" All {len(deep)} fits with 2 or more layers lie between {min(deep):+.{nd}f} and {max(deep):+.{nd}f} "
            f"of the Gaussian's test LL."
        )
    return txt


def report(
    datasets: List[Data],
    runs: Dict[str, Dict[Tuple[str, int, int], FlowRun]],
    baselines: Dict[str, List[Baseline]],
    gauss_lines: Dict[str, float],
    seeds: Sequence[int],
    load_before,
    load_after,
    total_seconds: float,
    command: str,
) -> str:
    now = _dt.datetime.now().isoformat(timespec="seconds")
    lines = [
        "# Does depth pay? relgrad.Flow's held-out log-likelihood against depth",
        "",
        "<!-- Generated by benches/quality/study.py: do not edit by hand, rerun the script. -->",
        "",
        "This report is written by [`benches/quality/study.py`](../benches/quality/study.py). It fits "
        "`relgrad.Flow` at "
        f"{', '.join(map(str, DEPTHS))} layers for a few variants, with every other setting at its default, "
        "on the 8x8 digits and three 2-D toy sets, and compares the held-out log-likelihood (LL) with "
        "a full-covariance Gaussian, a GaussianMixture and a KernelDensity fitted on the same splits. "
        f"Rerun it from the repository's root (this run took {total_seconds / 60:.1f} min of wall time on a "
        "shared machine; see [`benches/quality/README.md`](../benches/quality/README.md)):",
        "",
        "```bash",
        command,
        "```",
        "",
        "## Low-dimensional data: spline activations",
        "",
        "The variants below have *fixed* activations, and on 2-D data they stay near the best Gaussian "
        "at any depth. For data of at most 4 columns `relgrad train` and `relgrad.Flow()` now take "
        "learnable spline activations (one monotone rational-quadratic spline per unit and layer, "
        "16 layers; `docs/algorithm.md`). Their held-out likelihood on all seven built-in 2-D sets, the "
        "digits and four small real sets, against a validation-tuned GaussianMixture and KernelDensity, "
        "is measured by [`benches/quality/capacity.py`](../benches/quality/capacity.py) in "
        "[`quality-capacity.md`](quality-capacity.md), with three seeds. Its figure, per 2-D set: a "
        "histogram of the training rows, the best relgrad variant's density (by validation), the "
        "GaussianMixture's and the KernelDensity's:",
        "",
        "![seven 2-D sets: data, relgrad splines, GMM, KDE](quality-capacity-2d.png)",
        "",
        "## Setup",
        "",
        f"- Run: {now}, git HEAD {git_head()} (the working tree may have had uncommitted changes); total wall "
        f"time {total_seconds / 60:.1f} min under load",
        f"- Machine: {cpu_model()}, {os.cpu_count()} logical cores "
        f"({len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'} usable), shared with "
        f"other heavy jobs; 1-minute load average {load_before[0]:.2f} before, {load_after[0]:.2f} after. "
        "Wall times in the tables are given only as wall time under load; this report makes no speed claims.",
        f"- Python {platform.python_version()}; relgrad {version('relgrad')}; numpy {version('numpy')}; "
        f"scikit-learn {version('scikit-learn')}; matplotlib {version('matplotlib')}",
        "",
        "**Variants** (`relgrad.Flow` keyword arguments; everything else at its default: SGD lr 1e-3 with "
        "momentum 0.9, batch 100, at most 1000 epochs, early stopping after 30 epochs without a better "
        "validation LL with the best parameters kept, the first two such plateaus decaying the learning rate "
        "(times 0.3, from the best parameters) instead of stopping, data-dependent start, float32):",
        "",
    ]
    lines += [f"- {SHORT[k]}: {label}: `{kw or '{}'}`" for k, label, kw in all_variants()]
    lines += [
        "",
        "**Splits.** Every data set is split with relgrad's own seeded split "
        f"(`relgrad._relgrad.split_rows(n, n_val, n_test, seed={SPLIT_SEED})`, 10% validation, 10% test, the "
        "split `relgrad train` uses). Every method fits on the train rows and chooses everything it chooses "
        "(early stopping, components, bandwidth) on the validation rows; the test rows are used only for the "
        "reported numbers.",
        "",
        "**How Flow gets the validation rows.** `Flow.fit` takes no explicit validation set: it holds out "
        "`validation_fraction` of the rows it is given, chosen from `random_state` as `relgrad train` "
        "chooses them. As in `benches/python/compare.py`, each Flow is fitted on the train+validation rows "
        "with `validation_fraction = n_val / (n_train + n_val)`, the rows placed so that its own split lands "
        "exactly on the common train and validation rows (for every seed). Its early stopping is then its "
        "default one on exactly those validation rows.",
        "",
        f"**Seeds.** The main numbers (± 2 s.e., best epoch, epochs, stop, curves, figures, findings) are for "
        f"`random_state=0`. "
        + (
            f"The column 'test LL, seeds ...' repeats the fit with `random_state` in {{{', '.join(map(str, seeds))}}} "
            "(same split; different shuffles and, for the digits, different dequantisation noise) to show "
            "the spread due to training randomness, which the ± 2 s.e. over test rows does not include."
            if len(seeds) > 1
            else "Only one seed was run."
        ),
        "",
        "**Uncertainty.** ± 2 s.e.: two standard errors of the mean over the test rows (test images for the "
        "digits). Differences between two models are paired over the same test rows (mean of the "
        "per-row differences ± 2 s.e.), much tighter than the two intervals. 'Within 2 s.e.' means no "
        "detectable difference, not equality.",
        "",
        "**Columns.** start val LL: validation LL at epoch 0 (the start, before any step), from "
        "`Flow.history_['val_ll'][0]`; best val LL: at the best epoch (`best_epoch_`), whose parameters "
        "are kept; epochs: `n_epochs_`; stop: `stop_reason_` ('diverged': a non-finite LL or gradient; the "
        "best parameters found before are kept and scored). Validation numbers are in the units of the "
        "curves (see each data set). A 1-layer network has no activation (it is affine, i.e. a Gaussian "
        "model), so the 1-layer rows of the default, tanh and smooth leaky ReLU variants are one and the same "
        "fit, and the auto start's 1-layer start is the same too.",
        "",
        "**Baselines** (scikit-learn, fitted on the train rows, chosen on the validation rows):",
        "",
        "- Gaussian: `GaussianMixture(n_components=1, covariance_type='full')`, the maximum-likelihood "
        "full-covariance Gaussian of the train rows.",
        "- GaussianMixture: `covariance_type='full'`, default `reg_covar`, `random_state=0`; `n_components` "
        f"with the best validation LL among {{{', '.join(map(str, DIGITS_GMM))}}} (digits, as compare.py) or "
        f"{{{', '.join(map(str, TOY_GMM))}}} (2-D sets).",
        "- KernelDensity: Gaussian kernel; bandwidth with the best validation LL among 41 log-spaced values "
        f"in [{DIGITS_KDE[0]:g}, {DIGITS_KDE[-1]:g}] on the logit-space rows (digits, as compare.py) or in "
        f"[{TOY_KDE[0]:g}, {TOY_KDE[-1]:g}] on the train-standardised rows (2-D sets; the standardisation's "
        "constant log-Jacobian is added back).",
        "- Digits: as compare.py, the baselines are fitted on dequantised (`pixel + U(0,1)`, one numpy draw, "
        f"`default_rng({DATA_SEED})`), logit-transformed rows (`lambda = 1e-6`) and the transform's "
        "log-Jacobian is added back, so that their numbers are in the same pixel-space units as relgrad's.",
        "",
    ]
    lines += [
        "## Findings in brief",
        "",
        "Computed from the numbers below (seed 0; paired differences over the test rows ± 2 s.e.; "
        "'within 2 s.e.' means no detectable difference). Each data set's section has the details.",
        "",
    ]
    lines += [f"- {summary(d, runs[d.name], baselines[d.name])}".replace("s.e..", "s.e.") for d in datasets]
    lines += ["", "## Figures", ""]
    lines += [
        "Held-out LL against depth (seed 0; error bars ± 2 s.e. over test rows; baselines as horizontal "
        "lines; points far below the baselines may be off the axis, the tables have every number):",
        "",
        "![test LL against depth](quality-depth.png)",
        "",
    ]
    for d in datasets:
        lines += [
            f"Validation LL per epoch, {d.name} (seed 0; dots: best epochs; dashed: best Gaussian; starts far "
            "below are clipped, the tables give them):",
            "",
            f"![validation curves, {d.name}](quality-curves-{d.name}.png)",
            "",
        ]
    all_findings = []
    for d in datasets:
        nd = 2 if d.name == "digits" else 3
        rr, bl = runs[d.name], baselines[d.name]
        g = bl[0]
        lines += [
            f"## {d.title}",
            "",
            f"- Data: {d.description}. Split: {len(d.train)} train / {len(d.val)} validation / {len(d.test)} test rows.",
            f"- Test LL: {d.units}"
            + (
                f"; each test image is scored under {d.n_draws} dequantisation draws and its value is their mean "
                "(as compare.py). 'logit space': the same before the logit transform's log-Jacobian; "
                "'CLI draw': the mean logit-space test LL on `relgrad train`'s own single test dequantisation "
                "draw (the number `relgrad train` prints)."
                if d.n_draws > 1
                else "."
            ),
            f"- Validation LL (start, best, curves): {d.curve_units}.",
            "",
        ]
        lines += table(d, rr, seeds, nd)
        lines += [
            "",
            "Baselines (same split, test LL in the same units):",
            "",
            "| baseline | chosen on validation | validation LL | test LL ± 2se |",
            "| --- | --- | ---: | ---: |",
        ]
        for b in bl:
            lines.append(f"| {b.name} | {b.choice} | {fmt(b.val, nd=nd)} | {fmt(*mean_2se(b.test), nd=nd)} |")
        lines.append("")
        if d.name == "digits":
            lines.append(
                "The baselines' validation LL above is in logit space on the baselines' own dequantisation draw, "
                "which differs from relgrad's draw (a few pixels dequantised close to 0 lie far out in logit "
                "space, so single draws differ by a nat or two). The best Gaussian on relgrad's draw, in the "
                "units of the start/best val LL columns and of the curves' dashed line, is the start of the "
                "1-layer default fit (a 1-layer network is affine, and its data-dependent start is the "
                f"maximum-likelihood Gaussian of the train rows): {fmt(gauss_lines[d.name], nd=nd)}."
            )
            lines.append("")
        for b in bl:
            for n in b.notes:
                lines.append(f"- {b.name}: {n}")
        lines += ["", "### Findings", ""]
        f = findings(d, rr, bl, gauss_lines[d.name], seeds, nd)
        all_findings.append((d, f))
        lines += [f"- {x}".replace("s.e..", "s.e.") for x in f]
        lines.append("")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def main(argv: Optional[List[str]] = None) -> int:
    global VARIANTS
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default=",".join(map(str, SEEDS)),
                   help="Flow random_state values, comma-separated; the first is the main one (default: %(default)s)")
    p.add_argument("--variants", default=",".join(k for k, _, _ in all_variants()),
                   help="variants to run (default: %(default)s)")
    p.add_argument("--datasets", default="digits,moons,spirals,checkerboard", help="(default: %(default)s)")
    p.add_argument("--out-dir", default=str(DOCS), help="where quality.md and the figures go (default: docs/)")
    args = p.parse_args(argv)

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if not seeds or seeds[0] != 0:
        raise SystemExit("--seeds must start with 0 (the main seed)")
    wanted = set(args.variants.split(","))
    VARIANTS = [v for v in VARIANTS if v[0] in wanted]
    TOY_EXTRA[:] = [v for v in TOY_EXTRA if v[0] in wanted]
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = "python benches/quality/study.py" + (" " + " ".join(sys.argv[1:]) if argv is None and len(sys.argv) > 1 else "")
    command = (
        "pip install -r benches/quality/requirements.txt maturin\n"
        "maturin develop --release   # relgrad from this checkout, into the active virtual environment\n" + run
    )

    t_all = time.perf_counter()
    load_before = os.getloadavg()
    datasets: List[Data] = []
    for name in args.datasets.split(","):
        datasets.append(load_digits_data() if name == "digits" else load_toy(name, TOY_STREAM[name]))
    runs: Dict[str, Dict[Tuple[str, int, int], FlowRun]] = {}
    baselines: Dict[str, List[Baseline]] = {}
    gauss_lines: Dict[str, float] = {}
    for d in datasets:
        t_d = time.perf_counter()
        rr: Dict[Tuple[str, int, int], FlowRun] = {}
        for seed in seeds:
            for key, _, kw in variants_for(d):
                for L in DEPTHS:
                    r = fit_flow(d, key, kw, L, seed)
                    rr[(key, L, seed)] = r
                    if seed == seeds[0]:
                        print(
                            f"{d.name:12s} {key:10s} L={L} seed={seed}: start {r.start_val:9.3f} best val "
                            f"{r.best_val:9.3f} test {np.mean(r.test):9.3f} epochs {r.n_epochs:4d} "
                            f"best {r.best_epoch:4d} {r.stop:13s} {r.seconds:6.1f}s",
                            file=sys.stderr,
                            flush=True,
                        )
        runs[d.name] = rr
        bl = run_baselines(d)
        # The best Gaussian in the curves' units: for the digits, the start of the 1-layer
        # default fit (a 1-layer network is affine and its data-dependent start is the
        # maximum-likelihood Gaussian of the train rows), i.e. the best Gaussian on relgrad's
        # own dequantisation draw; for the 2-D sets, the Gaussian baseline's validation LL
        # (checked against the 1-layer start, which must agree).
        one = rr.get(("default", 1, 0))
        if d.name == "digits" and one is not None:
            gauss_lines[d.name] = one.start_val
        else:
            gauss_lines[d.name] = bl[0].val
            if one is not None and abs(one.start_val - bl[0].val) > 1e-3:
                bl[0].notes.append(
                    f"WARNING: the 1-layer default start ({one.start_val:.4f}) differs from the Gaussian's "
                    f"validation LL ({bl[0].val:.4f})"
                )
            elif one is not None:
                bl[0].notes.append(
                    f"check: the 1-layer default fit's start has validation LL {one.start_val:.4f}, the Gaussian "
                    f"{bl[0].val:.4f} (a 1-layer start is the maximum-likelihood Gaussian)"
                )
        baselines[d.name] = bl
        print(
            f"{d.name}: baselines " + ", ".join(f"{b.name} {np.mean(b.test):.3f} ({b.choice})" for b in bl)
            + f"; {time.perf_counter() - t_d:.0f}s",
            file=sys.stderr,
            flush=True,
        )
        plot_curves(d, rr, gauss_lines[d.name], out_dir / f"quality-curves-{d.name}.png")
    plot_depth(datasets, runs, baselines, out_dir / "quality-depth.png")
    total = time.perf_counter() - t_all
    text = report(datasets, runs, baselines, gauss_lines, seeds, load_before, os.getloadavg(), total, command)
    (out_dir / "quality.md").write_text(text)
    print(f"written {out_dir / 'quality.md'} and figures; total {total:.0f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
