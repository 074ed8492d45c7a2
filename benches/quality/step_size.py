#!/usr/bin/env python3
"""What step size should depth and alpha get? A learning-rate sweep of relgrad.Flow.

Fits ``relgrad.Flow`` on the 8x8 digits (prepared, split and scored exactly as
``study.py`` does) over a grid of learning rates at 2, 3, 4, 6 and 8 layers, for the
default activation (tanh-linear, alpha 0.1) and two other placements of the curvature
(tanh-linear alpha 0.3, smooth leaky ReLU alpha 0.3), every other setting at its default
(which includes two learning-rate decays on plateau). It measures those decays against
none, and the rate they allow, at every depth and three seeds, asks whether any step size or optimizer makes training leave the
``init_shift="auto"`` start (which begins at the best Gaussian), and repeats the default's
sweep on two moons.

It writes ``docs/step-size.md`` (generated: do not edit by hand) and
``docs/step-size.png``. Run it from the repository's root in the environment of
``study.py`` (see README.md beside this file)::

    python benches/quality/step_size.py
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "python"))
from study import (  # noqa: E402
    DOCS,
    TOY_STREAM,
    FlowRun,
    Data,
    cpu_model,
    fit_flow,
    git_head,
    load_digits_data,
    load_toy,
    mean_2se,
    paired,
    version,
)

RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
DEPTHS = (2, 3, 4, 6, 8)
# (key, label, Flow keyword arguments); the first is relgrad's default.
ACTIVATIONS: List[Tuple[str, str, Dict[str, object]]] = [
    ("tanh0.1", "tanh-linear, alpha 0.1 (default)", {"activation": "tanh-linear", "alpha": 0.1}),
    ("tanh0.3", "tanh-linear, alpha 0.3", {"activation": "tanh-linear", "alpha": 0.3}),
    ("slrelu0.3", "smooth leaky ReLU, alpha 0.3", {"activation": "smooth-leaky-relu", "alpha": 0.3}),
]
# Can anything leave the auto start? (optimizer, rates)
AUTO_DEPTHS = (2, 4, 8)
AUTO_GRID: List[Tuple[str, Sequence[float]]] = [("sgd", (3e-4, 3e-3, 3e-2)), ("adam", (1e-4, 1e-3, 1e-2))]
MOONS_DEPTHS = (2, 4, 8)
DECAY_SEEDS = (0, 1, 2)
# Recipes measured over seeds against the first (relgrad's default before decays):
# (key, label, learning rate, lr_decays).
RECIPES: List[Tuple[str, str, float, int]] = [
    ("old", "lr 3e-4, no decay (the default before this study)", 3e-4, 0),
    ("decay", "lr 3e-4, 2 decays", 3e-4, 2),
    ("fast", "lr 1e-3, 2 decays", 1e-3, 2),
    ("fast0", "lr 1e-3, no decay", 1e-3, 0),
]

Key = Tuple[str, int, float]  # (variant, depth, learning rate)


def relgrad_default(name: str):
    import relgrad

    return relgrad.Flow().get_params()[name]


def rate(r: float) -> str:
    return f"{r:.0e}".replace("e-0", "e-")


def sweep(d: Data, variants: Sequence[Tuple[str, Dict[str, object]]], depths: Sequence[int],
          rates_of, seed: int) -> Dict[Key, FlowRun]:
    out: Dict[Key, FlowRun] = {}
    for key, kw in variants:
        for L in depths:
            for lr in rates_of(key):
                r = fit_flow(d, key, {**kw, "learning_rate": lr}, L, seed)
                out[(key, L, lr)] = r
                print(f"{d.name:7s} {key:14s} L={L} lr={rate(lr):5s}: start {r.start_val:9.3f} best val "
                      f"{r.best_val:9.3f} test {np.mean(r.test):9.3f} best {r.best_epoch:4d}/{r.n_epochs:4d} "
                      f"{r.stop:13s} {r.seconds:5.1f}s", file=sys.stderr, flush=True)
    return out


def best_rate(runs: Dict[Key, FlowRun], key: str, L: int) -> Optional[float]:
    """The learning rate with the best validation LL (NaN-safe)."""
    cands = [(r.best_val, lr) for (k, d, lr), r in runs.items() if k == key and d == L and np.isfinite(r.best_val)]
    return max(cands)[1] if cands else None


def grid_table(runs: Dict[Key, FlowRun], key: str, depths: Sequence[int], rates: Sequence[float], nd: int,
               ref_rate: float) -> List[str]:
    head = "| layers | " + " | ".join(f"lr {rate(r)}" for r in rates) + " | best lr (val) | best minus lr " \
        + rate(ref_rate) + " (test, paired) |"
    lines = [head, "| --- |" + " ---: |" * (len(rates) + 2)]
    for L in depths:
        cells = []
        for lr in rates:
            r = runs[(key, L, lr)]
            m, e = mean_2se(r.test)
            flag = {"early_stopped": "", "early stopped": "", "diverged": " (div.)", "max_epochs": " (limit)"}.get(r.stop, f" ({r.stop})")
            cells.append(f"{m:.{nd}f} ± {e:.{nd}f}<br>ep {r.best_epoch}/{r.n_epochs}{flag}")
        b = best_rate(runs, key, L)
        if b is None:
            cells += ["-", "-"]
        else:
            dm, de = paired(runs[(key, L, b)].test, runs[(key, L, ref_rate)].test)
            cells += [rate(b), f"{dm:+.{nd}f} ± {de:.{nd}f}"]
        lines.append(f"| {L} | " + " | ".join(cells) + " |")
    return lines


def plot(runs: Dict[Key, FlowRun], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(ACTIVATIONS), figsize=(5 * len(ACTIVATIONS), 4), sharey=True)
    for ax, (key, label, _) in zip(axes, ACTIVATIONS):
        for L in DEPTHS:
            ms = [np.mean(runs[(key, L, lr)].test) for lr in RATES]
            es = [mean_2se(runs[(key, L, lr)].test)[1] for lr in RATES]
            ax.errorbar(RATES, ms, yerr=es, marker="o", capsize=2, label=f"{L} layers")
        ax.set_xscale("log")
        ax.set_title(label)
        ax.set_xlabel("learning rate (SGD, momentum 0.9)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test LL, nats per image (higher is better)")
    lo = min(np.mean(r.test) for r in runs.values() if np.isfinite(np.mean(r.test)))
    hi = max(np.mean(r.test) for r in runs.values() if np.isfinite(np.mean(r.test)))
    axes[0].set_ylim(max(lo, hi - 12) - 0.5, hi + 0.5)
    axes[-1].legend(loc="lower left")
    fig.suptitle("digits: held-out log-likelihood against learning rate and depth (seed 0, ± 2 s.e.)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def step_scales(d: Data, depth: int) -> List[str]:
    """Table rows: at the start (shift 0 and auto), each layer's pre-activation scale and
    the relative gradient's step per unit of learning rate, for the weights relative to
    themselves (``|R_W W^-1|``) and for the biases relative to the pre-activations' scale
    (``|R_b| / std(y)``), both per row, on the first 100 training rows in logit space."""
    import relgrad
    from compare import logit_transform

    rows: List[str] = []
    y_all, _ = logit_transform(d.x[d.train], np.random.default_rng(0).random(d.x[d.train].shape))
    h0 = y_all[:100]
    for shift in (0.0, "auto"):
        f = relgrad.Flow(preprocess="none", init_shift=shift, max_epochs=0, n_layers=depth, dtype="float64",
                         random_state=0).fit(y_all)
        gw, gb, _ = relgrad.gradient(f.weights_, f.biases_, h0, activation="tanh-linear", alpha=0.1)
        h = h0
        dim = h0.shape[1]
        for l, (w, b) in enumerate(zip(f.weights_, f.biases_)):
            y = h @ w + b
            rel_w = np.linalg.norm(np.linalg.solve(w.T, gw[l].T)) / math.sqrt(dim)
            rel_b = np.linalg.norm(gb[l]) / math.sqrt(dim) / y.std()
            rows.append(f"| {shift} | {l + 1} | {y.std():.3g} | {rel_w:.3g} | {rel_b:.3g} |")
            h = np.tanh(y) + 0.1 * y
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0, help="Flow random_state (default: %(default)s)")
    p.add_argument("--out-dir", default=str(DOCS), help="where step-size.md and its figure go (default: docs/)")
    args = p.parse_args(argv)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    load_before = os.getloadavg()

    default_rate = relgrad_default("learning_rate")
    if default_rate not in RATES:
        raise SystemExit(f"the default learning rate {default_rate} is not in the sweep {RATES}")
    digits = load_digits_data()
    main_runs = sweep(digits, [(k, kw) for k, _, kw in ACTIVATIONS], DEPTHS, lambda k: RATES, args.seed)
    tanh = ACTIVATIONS[0][2]
    auto_runs: Dict[Key, FlowRun] = {}
    for opt, rates in AUTO_GRID:
        auto_runs.update(sweep(digits, [(f"auto-{opt}", {**tanh, "init_shift": "auto", "optimizer": opt})],
                               AUTO_DEPTHS, lambda k, rates=rates: rates, args.seed))
    decay_runs: Dict[Tuple[str, int, int], FlowRun] = {}  # (recipe, depth, seed)
    for seed in DECAY_SEEDS:
        for key, _, lr, n in RECIPES:
            for L in DEPTHS:
                if n == relgrad_default("lr_decays") and seed == args.seed and lr in RATES:  # the sweep ran it
                    decay_runs[(key, L, seed)] = main_runs[("tanh0.1", L, lr)]
                    continue
                r = fit_flow(digits, key, {**tanh, "learning_rate": lr, "lr_decays": n}, L, seed)
                decay_runs[(key, L, seed)] = r
                print(f"digits  {key:6s} L={L} seed={seed}: best val {r.best_val:9.3f} test "
                      f"{np.mean(r.test):9.3f} best {r.best_epoch:4d}/{r.n_epochs:4d} {r.stop}",
                      file=sys.stderr, flush=True)
    moons = load_toy("moons", TOY_STREAM["moons"])
    moons_runs = sweep(moons, [("tanh0.1", tanh)], MOONS_DEPTHS, lambda k: RATES, args.seed)
    plot(main_runs, out_dir / "step-size.png")
    total = time.perf_counter() - t0

    L: List[str] = []
    w = L.append
    w("# What step size should depth and alpha get?")
    w("")
    w("<!-- Generated by benches/quality/step_size.py: do not edit by hand, rerun the script. -->")
    w("")
    w("This report is written by [`benches/quality/step_size.py`](../benches/quality/step_size.py). It sweeps "
      "`relgrad.Flow`'s learning rate at 2-8 layers on the 8x8 digits, with the data, split, early stopping and "
      "scoring of [`docs/quality.md`](quality.md) (same functions), every setting not named at its default "
      f"(SGD with momentum 0.9 at rate {rate(relgrad_default('learning_rate'))}, batch 100, at most 1000 epochs, "
      "early stopping after 30 epochs without a better validation LL with the best parameters kept, the first "
      f"{relgrad_default('lr_decays')} such plateaus (or diverged epochs) decaying the rate by "
      f"{relgrad_default('lr_decay')} instead, data-dependent start at shift 0, float32).")
    w("")
    w(f"- Run: {time.strftime('%Y-%m-%dT%H:%M:%S')}, git HEAD {git_head()}; Flow seed {args.seed}; "
      f"total wall time {total / 60:.1f} min")
    w(f"- Machine: {cpu_model()}, {os.cpu_count()} logical cores; 1-minute load average "
      f"{load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after")
    w(f"- relgrad {version('relgrad')}, numpy {np.__version__}, scikit-learn {version('scikit-learn')}")
    w("- Test LL: " + digits.units + "; ± 2 s.e. over test images. 'best minus lr': paired difference over the "
      "same test images between the rate with the best validation LL and the default rate. 'ep b/n': best "
      "epoch / epochs run; '(div.)': diverged (the best parameters before are kept and scored); '(limit)': "
      "stopped at the epoch limit.")
    w("")
    w("![test LL against learning rate](step-size.png)")
    w("")
    for key, label, kw in ACTIVATIONS:
        w(f"## {label}")
        w("")
        w(f"`{kw}`")
        w("")
        L.extend(grid_table(main_runs, key, DEPTHS, RATES, 2, default_rate))
        w("")
    w("## Decay on plateau, and the rate it allows")
    w("")
    w("Tanh-linear alpha 0.1. Two decays on plateau (`lr_decays=2`, `lr_decay=0.3`: a plateau of 30 epochs, or "
      "a diverged epoch, restores the best parameters and goes on at 0.3 times the rate with fresh momentum, "
      "twice; the third ends training) against none (`lr_decays=0`: the first plateau stops), at the rate "
      "3e-4 and at 1e-3. Test LL of each recipe minus the first's, paired over the same test images "
      "(± 2 s.e.), for Flow seeds " + ", ".join(map(str, DECAY_SEEDS)) + "; epochs run per seed:")
    w("")
    base_key = RECIPES[0][0]
    for key, label, _, _ in RECIPES[1:]:
        w(f"**{label}** against {RECIPES[0][1]}:")
        w("")
        w("| layers | " + " | ".join(f"seed {s}: gain" for s in DECAY_SEEDS) + " | epochs (this / first) | "
          "diverged | mean gain |")
        w("| --- |" + " ---: |" * (len(DECAY_SEEDS) + 3))
        gains_all = []
        for d in DEPTHS:
            cells, eps, gains, div = [], [], [], 0
            for sd in DECAY_SEEDS:
                a, b = decay_runs[(key, d, sd)], decay_runs[(base_key, d, sd)]
                dm, de = paired(a.test, b.test)
                gains.append(dm)
                cells.append(f"{dm:+.2f} ± {de:.2f}")
                eps.append(f"{a.n_epochs} / {b.n_epochs}")
                div += a.stop == "diverged"
            gains_all += gains
            w(f"| {d} | " + " | ".join(cells) + " | " + ", ".join(eps) + f" | {div} | {np.mean(gains):+.2f} |")
        w("")
        w(f"Over all {len(gains_all)} fits: mean gain {np.mean(gains_all):+.2f} nats per image, "
          f"{sum(g > 0 for g in gains_all)} positive, smallest {min(gains_all):+.2f}, "
          f"largest {max(gains_all):+.2f}.")
        w("")
    w("## Does the best rate scale like 1/depth?")
    w("")
    w("The relative gradient is equivariant: a step moves each layer by a relative amount "
      "`-lr * (dL/dW) W^T` that does not depend on how the layer's input is scaled, so each layer's relative "
      "step is of order `lr` at any depth, and the whole network's change of order `depth * lr`. If that were "
      "what limits the step, the best rate would fall like 1/depth, i.e. `best lr * depth` would be constant:")
    w("")
    w("| variant | " + " | ".join(f"{d} layers" for d in DEPTHS) + " |")
    w("| --- |" + " ---: |" * len(DEPTHS))
    for key, label, _ in ACTIVATIONS:
        cells = []
        for d in DEPTHS:
            b = best_rate(main_runs, key, d)
            cells.append("-" if b is None else f"{rate(b)} (x depth = {b * d:.1e})")
        w(f"| {label} | " + " | ".join(cells) + " |")
    w("")
    w("## Can training leave the auto start?")
    w("")
    w("`init_shift=\"auto\"` starts at the best Gaussian (each hidden layer nearly linear on the data). Tanh-linear, "
      "alpha 0.1; validation LL in logit space (start / best), test LL in pixel space:")
    w("")
    w("| optimizer | layers | lr | start val | best val | gain | test LL ± 2se | best epoch / epochs | stop |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for (k, d, lr), r in auto_runs.items():
        m, e = mean_2se(r.test)
        w(f"| {k[5:]} | {d} | {rate(lr)} | {r.start_val:.2f} | {r.best_val:.2f} | {r.best_val - r.start_val:+.2f} | "
          f"{m:.2f} ± {e:.2f} | {r.best_epoch}/{r.n_epochs} | {r.stop} |")
    w("")
    w("Why: the relative gradient is equivariant for the weights but not for the biases. At the start, per unit of "
      "learning rate, each layer's weight step relative to the weight itself is of the same order for both starts, "
      "but the auto start's hidden layers work at a small scale, and their bias step measured in that scale is "
      "tens of times larger (the `1` in the bias's metric `1 + b^T b` does not shrink with the layer's scale), so a "
      "step at a rate that trains from shift 0 throws these layers out of their linear range. Tanh-linear alpha "
      f"0.1, 4 layers, the first 100 training rows in logit space, float64:")
    w("")
    w("| start shift | layer | std of pre-activations | norm of `R_W W^-1` per row | norm of `R_b` per row / std |")
    w("| --- | ---: | ---: | ---: | ---: |")
    L.extend(step_scales(digits, 4))
    w("")
    w("## Two moons (2 dimensions), tanh-linear alpha 0.1")
    w("")
    w(f"Data and split as in [`docs/quality.md`](quality.md); test LL in nats per row. The best Gaussian's start "
      f"(1 layer) is the reference there.")
    w("")
    L.extend(grid_table(moons_runs, "tanh0.1", MOONS_DEPTHS, RATES, 3, default_rate))
    w("")
    (out_dir / "step-size.md").write_text("\n".join(L))
    print(f"written {out_dir / 'step-size.md'}; {total:.0f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
