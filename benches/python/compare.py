#!/usr/bin/env python3
"""relgrad.Flow against common density estimators on the 8x8 digits.

Held-out log-likelihood and fit time, side by side, on the split that ``relgrad train``
uses by default (seed 0: 1437 train / 180 validation / 180 test rows of scikit-learn's
``load_digits``), for

- ``relgrad.Flow(levels=17, random_state=0)`` with its defaults (exactly the run of
  ``relgrad train``: same rows, same order, same seed);
- a full-covariance Gaussian (``GaussianMixture(n_components=1)``) and the best
  full-covariance ``GaussianMixture`` of a few component counts, chosen on the
  validation rows;
- ``KernelDensity`` (Gaussian kernel) with the bandwidth chosen on the validation rows;
- masked autoregressive flows from FlowJAX (affine and rational-quadratic-spline
  transformers), trained with ``flowjax.train.fit_to_data`` and its early stopping on
  the same validation rows.

Every baseline sees the data as relgrad does: dequantised (``u = (pixel + U(0,1)) /
17``) and logit-transformed (``s = lambda + (1 - 2 lambda) u``, ``y = ln(s / (1 - s))``,
``lambda = 1e-6``); it is fitted on ``y`` of the training rows, and its log-density is
brought back to pixel units with the transform's log-Jacobian, so that every number is
the log-density of the dequantised pixels ``pixel + U(0,1)`` on ``[0, 17)^64`` (nats per
image). See README.md beside this file for how to run it.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata as _md
import math
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

LEVELS = 17  # the digits' pixels are integers 0..16
LAMBDA = 1e-6  # the logit transform's lambda (relgrad's, and the literature's)
SEED = 0  # relgrad train's default seed: the split, the noise, the models' seeds
N_TEST_DRAWS = 10  # dequantisation draws per test image (every method)
GMM_COMPONENTS = (1, 2, 3, 5, 8, 12)
KDE_BANDWIDTHS = np.logspace(-1.0, 1.0, 41)  # in logit units, ratio 10^0.05 ~ 1.12
FLOW_LAYERS = 5
FLOW_WIDTH = 128
FLOW_LR = 1e-3
FLOW_BATCH = 90  # divides the 180 validation rows: fit_to_data drops a truncated batch
SPLINE_KNOTS = 8
SPLINE_INTERVAL = 4.0

HERE = Path(__file__).resolve().parent


# --------------------------------------------------------------------------- data


@dataclass
class Data:
    """The digits, the split and the baselines' dequantised, logit-transformed rows."""

    pixels: np.ndarray  # (1797, 64) float64, integers 0..16
    train: np.ndarray  # row indices, in relgrad train's order
    val: np.ndarray
    test: np.ndarray
    y_train: np.ndarray  # logit space, one dequantisation draw
    y_val: np.ndarray
    y_test: np.ndarray  # (N_TEST_DRAWS * n_test, 64): draw-major, test rows within a draw
    logjac_test: np.ndarray  # (N_TEST_DRAWS * n_test,): ln |dy/dpixel| of every test row


def logit_transform(pixels: np.ndarray, noise: np.ndarray):
    """``y`` and the per-row log-Jacobian ``ln |dy/dpixel|`` of relgrad's ``logit``
    preprocessing (``crates/relgrad-model/src/preprocess.rs``), for given noise."""
    u = (pixels + noise) / LEVELS
    s = LAMBDA + (1.0 - 2.0 * LAMBDA) * u
    y = np.log(s) - np.log1p(-s)
    logjac = np.sum(math.log1p(-2.0 * LAMBDA) - np.log(s) - np.log1p(-s), axis=1) - pixels.shape[1] * math.log(LEVELS)
    return y, logjac


def load_data() -> Data:
    from sklearn.datasets import load_digits

    from relgrad import _relgrad

    pixels = load_digits().data.astype(np.float64)
    n = pixels.shape[0]
    n_val = _relgrad.holdout_rows(n, 0.1)
    n_test = _relgrad.holdout_rows(n, 0.1)
    train, val, test = (np.asarray(a, dtype=np.intp) for a in _relgrad.split_rows(n, n_val, n_test, SEED))
    rng = np.random.default_rng(SEED)
    y_all, _ = logit_transform(pixels, rng.random(pixels.shape))
    test_rows = np.tile(pixels[test], (N_TEST_DRAWS, 1))
    y_test, logjac_test = logit_transform(test_rows, rng.random(test_rows.shape))
    return Data(pixels, train, val, test, y_all[train], y_all[val], y_test, logjac_test)


# --------------------------------------------------------------------------- results


@dataclass
class Result:
    method: str
    short: str  # the table's settings column
    settings: str
    ll_pixel: np.ndarray  # (n_test,): per-image log-density, pixel units, mean over draws
    ll_logit: Optional[np.ndarray]  # (n_test,) in logit space, or None
    fit_seconds: float
    warm_seconds: Optional[float] = None
    notes: List[str] = field(default_factory=list)


def per_image(values: np.ndarray, n_test: int) -> np.ndarray:
    """Mean over the dequantisation draws of every test image."""
    return np.asarray(values, dtype=np.float64).reshape(N_TEST_DRAWS, n_test).mean(axis=0)


def mean_2se(v: np.ndarray):
    return float(np.mean(v)), float(2.0 * np.std(v, ddof=1) / math.sqrt(len(v)))


def timed(fn: Callable[[], object]):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


# --------------------------------------------------------------------------- methods


def run_relgrad(d: Data) -> Result:
    """relgrad.Flow with its defaults, on exactly ``relgrad train``'s train/val rows.

    Flow holds out its validation rows itself (``validation_fraction``, chosen from the
    seed as ``relgrad train`` chooses them). Fitting it on the train+val rows with
    ``validation_fraction = 180/1617`` keeps the amount of data; placing the rows so that
    its own split of the 1617 rows lands exactly on the CLI's train and val rows (in
    the CLI's order) makes the fit the same run as ``relgrad train``.
    """
    import relgrad
    from relgrad import _relgrad

    if not hasattr(relgrad, "Flow"):
        raise SystemExit("relgrad.Flow is missing: install the finished package (pip install . in a checkout)")
    m = len(d.train) + len(d.val)
    frac = len(d.val) / m
    n_val = _relgrad.holdout_rows(m, frac)
    if n_val != len(d.val):
        raise SystemExit(f"validation_fraction {frac} holds out {n_val} rows, not {len(d.val)}")
    inner_train, inner_val, _ = (np.asarray(a, dtype=np.intp) for a in _relgrad.split_rows(m, n_val, 0, SEED))
    x = np.empty((m, d.pixels.shape[1]))
    x[inner_train] = d.pixels[d.train]
    x[inner_val] = d.pixels[d.val]

    def fit():
        return relgrad.Flow(levels=LEVELS, random_state=SEED, validation_fraction=frac).fit(x)

    flow, seconds = timed(fit)
    _, warm = timed(fit)

    n_test = len(d.test)
    rows = np.tile(d.pixels[d.test], (N_TEST_DRAWS, 1))  # each copy gets its own noise
    ll_pixel = per_image(flow.score_samples(rows), n_test)
    notes = [
        f"relgrad: {flow.n_epochs_} epochs, best epoch {flow.best_epoch_}, stop: {flow.stop_reason_}",
    ]
    ll_logit = None
    meta = getattr(flow, "_meta", None)  # private; only for the logit-space column
    if meta is not None:
        ll_logit = per_image(_relgrad.log_prob_model_space(flow.weights_, flow.biases_, flow.splines_, meta, rows, "all"), n_test)
        cli = _relgrad.log_prob(flow.weights_, flow.biases_, flow.splines_, meta, d.pixels[d.test], "test")
        cli_logit = _relgrad.log_prob_model_space(flow.weights_, flow.biases_, flow.splines_, meta, d.pixels[d.test], "test")
        notes.append(
            "relgrad, single dequantisation draw of `relgrad train`'s test noise stream (the CLI's own "
            f"report): {np.mean(cli):.2f} nats/image pixel space, {np.mean(cli_logit):.2f} logit space"
        )
    return Result(
        "relgrad.Flow",
        "defaults",
        "defaults: 3 layers, tanh-linear 0.1, SGD lr 1e-3 momentum 0.9, batch 100, "
        "early stopping after 30 epochs (val) with two learning-rate decays on plateau first, f32; "
        "`levels=17, random_state=0`",
        ll_pixel,
        ll_logit,
        seconds,
        warm,
        notes,
    )


def run_gmm(d: Data) -> List[Result]:
    from sklearn.mixture import GaussianMixture

    n_test = len(d.test)
    fits: Dict[int, tuple] = {}
    t0 = time.perf_counter()
    for k in GMM_COMPONENTS:
        gmm = GaussianMixture(n_components=k, covariance_type="full", random_state=SEED)
        g, s = timed(lambda gmm=gmm: gmm.fit(d.y_train))
        fits[k] = (g, s, float(g.score(d.y_val)))
    total = time.perf_counter() - t0
    best = max(fits, key=lambda k: fits[k][2])
    out = []
    for label, k, seconds, short, settings in (
        (
            "Gaussian",
            1,
            fits[1][1],
            "1 component, full cov.",
            "GaussianMixture(n_components=1, covariance_type='full'): one full-covariance Gaussian",
        ),
        (
            f"GaussianMixture ({best} comp.)",
            best,
            total,
            f"{best} components (val), full cov.",
            f"covariance_type='full', reg_covar 1e-6, random_state=0; n_components chosen on val from "
            f"{{{', '.join(map(str, GMM_COMPONENTS))}}} (time: all {len(GMM_COMPONENTS)} fits + val scoring)",
        ),
    ):
        g = fits[k][0]
        ll = g.score_samples(d.y_test)
        out.append(
            Result(label, short, settings, per_image(ll + d.logjac_test, n_test), per_image(ll, n_test), seconds)
        )
    val = ", ".join(f"{k}: {fits[k][2]:.2f}" for k in GMM_COMPONENTS)
    out[1].notes.append(f"GaussianMixture validation LL (logit space) by n_components: {val}")
    return out


def run_kde(d: Data) -> Result:
    from sklearn.neighbors import KernelDensity

    n_test = len(d.test)

    def select():
        scores = []
        for h in KDE_BANDWIDTHS:
            kde = KernelDensity(kernel="gaussian", bandwidth=float(h)).fit(d.y_train)
            scores.append(float(kde.score_samples(d.y_val).mean()))
        h = float(KDE_BANDWIDTHS[int(np.argmax(scores))])
        return KernelDensity(kernel="gaussian", bandwidth=h).fit(d.y_train), h, scores

    (kde, h, scores), seconds = timed(select)
    ll = kde.score_samples(d.y_test)
    r = Result(
        "KernelDensity",
        f"bandwidth {h:.3g} (val)",
        f"Gaussian kernel on the logit-space rows, bandwidth {h:.3g} chosen on val from "
        f"{len(KDE_BANDWIDTHS)} log-spaced values in [0.1, 10] (time: the whole search)",
        per_image(ll + d.logjac_test, n_test),
        per_image(ll, n_test),
        seconds,
    )
    r.notes.append(
        "KernelDensity validation LL (logit space) by bandwidth: "
        + ", ".join(f"{b:.3g}: {s:.1f}" for b, s in zip(KDE_BANDWIDTHS, scores) if s > max(scores) - 15)
        + " (others lower)"
    )
    return r


def run_flowjax(d: Data, spline: bool) -> Result:
    """A masked autoregressive flow from FlowJAX, fitted on standardised logit rows."""
    import equinox  # noqa: F401  (FlowJAX's dependency; imported before timing)
    import jax.numpy as jnp
    import jax.random as jr
    from flowjax.bijections import RationalQuadraticSpline
    from flowjax.distributions import Normal
    from flowjax.flows import masked_autoregressive_flow
    from flowjax.train import fit_to_data
    from flowjax.train.train_utils import train_val_split

    jnp.zeros(1).block_until_ready()  # start the JAX runtime outside the timed fit
    n_test = len(d.test)
    dim = d.y_train.shape[1]
    m = len(d.train) + len(d.val)
    val_prop = len(d.val) / m
    k_init, k_fit = jr.split(jr.key(SEED))

    # fit_to_data holds out its validation rows with a permutation from its key (`key,
    # subkey = jr.split(key)`, then `train_val_split(subkey, ...)`): place the rows so that
    # its split is the common train/val split, and check that it is.
    perm = np.asarray(jr.permutation(jr.split(k_fit)[1], jnp.arange(m)))
    n_train = m - round(val_prop * m)
    notes = []

    def fit():
        mean, std = d.y_train.mean(axis=0), d.y_train.std(axis=0)
        data = np.empty((m, dim), dtype=np.float32)
        data[perm[:n_train]] = (d.y_train - mean) / std
        data[perm[n_train:]] = (d.y_val - mean) / std
        kwargs = {}
        if spline:
            kwargs["transformer"] = RationalQuadraticSpline(knots=SPLINE_KNOTS, interval=SPLINE_INTERVAL)
        flow = masked_autoregressive_flow(
            k_init, base_dist=Normal(jnp.zeros(dim)), flow_layers=FLOW_LAYERS, nn_width=FLOW_WIDTH, **kwargs
        )
        flow, losses = fit_to_data(
            k_fit,
            flow,
            data,
            learning_rate=FLOW_LR,
            batch_size=FLOW_BATCH,
            val_prop=val_prop,
            show_progress=False,
        )
        return flow, losses, mean, std, data

    (flow, losses, mean, std, data), seconds = timed(fit)
    _, warm = timed(fit)  # the same fit again: JAX's compiled functions are cached now
    tr_split, va_split = train_val_split(jr.split(k_fit)[1], (jnp.asarray(data),), val_prop=val_prop)
    same = np.array_equal(np.asarray(tr_split[0]), data[perm[:n_train]]) and np.array_equal(
        np.asarray(va_split[0]), data[perm[n_train:]]
    )
    if not same:
        notes.append("WARNING: FlowJAX's internal validation rows are NOT the common val rows (library changed?)")

    z = ((d.y_test - mean) / std).astype(np.float32)
    ll = np.asarray(flow.log_prob(jnp.asarray(z)), dtype=np.float64) - np.sum(np.log(std))
    name = "FlowJAX MAF (spline)" if spline else "FlowJAX MAF (affine)"
    transformer = (
        f"rational-quadratic spline, {SPLINE_KNOTS} knots on [-{SPLINE_INTERVAL:g}, {SPLINE_INTERVAL:g}]"
        if spline
        else "affine (FlowJAX's default)"
    )
    val = np.asarray(losses["val"])
    notes.append(
        f"{name}: {len(val)} epochs, best epoch {int(np.argmin(val)) + 1}, "
        f"best validation LL (logit space) {-val.min() - np.sum(np.log(std)):.2f}"
    )
    return Result(
        name,
        f"{FLOW_LAYERS} layers, width {FLOW_WIDTH}",
        f"`masked_autoregressive_flow`: {FLOW_LAYERS} layers, MADE with 1 hidden layer of {FLOW_WIDTH} (ReLU), "
        f"{transformer}; `fit_to_data`: Adam lr {FLOW_LR:g}, batch {FLOW_BATCH}, its default early stopping "
        f"(patience 5, max 100 epochs) on the val rows; inputs standardised (train mean/std)",
        per_image(ll + d.logjac_test, n_test),
        per_image(ll, n_test),
        seconds,
        warm,
        notes,
    )


# --------------------------------------------------------------------------- report


def version(dist: str) -> str:
    try:
        return _md.version(dist)
    except _md.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def blas() -> str:
    try:
        from threadpoolctl import threadpool_info

        infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        return (
            ", ".join(
                f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')}, {i.get('num_threads')} threads)"
                for i in infos
            )
            or "unknown"
        )
    except Exception:  # pragma: no cover - informative only
        return "unknown"


def ratio(a: float, b: float) -> str:
    x = a / b
    return f"{x:.1f}x" if x >= 1 else f"{x:.2f}x"


def report(d: Data, results: List[Result], load_before, load_after, flow_error: Optional[str]) -> str:
    ln2d = d.pixels.shape[1] * math.log(2.0)
    ref = results[0]
    flows = [r for r in results if r.method.startswith("FlowJAX")]
    lines = [
        "# relgrad.Flow vs. density baselines on the 8x8 digits",
        "",
        f"- Run: {_dt.datetime.now().isoformat(timespec='seconds')}, `benches/python/compare.py`",
        f"- Machine: {cpu_model()}, {os.cpu_count()} logical cores "
        f"({len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'} usable); "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after the run",
        f"- Python {platform.python_version()}; numpy {version('numpy')}; scikit-learn {version('scikit-learn')}; "
        f"jax {version('jax')} (jaxlib {version('jaxlib')}); flowjax {version('flowjax')}; "
        f"relgrad {version('relgrad')}",
        f"- numpy BLAS: {blas()}",
        f"- Data: `sklearn.datasets.load_digits()` ({d.pixels.shape[0]} x {d.pixels.shape[1]}, pixels 0..16), "
        f"split as `relgrad train` (seed {SEED}): {len(d.train)} train / {len(d.val)} val / {len(d.test)} test rows. "
        "Every method fits on the train rows and selects (early stopping, components, bandwidth) on the val rows.",
        "- Test LL: mean over the 180 test images ± 2 standard errors, nats per image, of the log-density of the "
        "dequantised pixels `pixel + U(0,1)` on `[0,17)^64` (pixel space); each image's value is the mean over "
        f"{N_TEST_DRAWS} dequantisation draws. Logit space: the same before the transform's log-Jacobian. "
        "bits/dim = -LL / (64 ln 2). relgrad's lead: mean over test images of relgrad's LL minus the method's "
        "(paired), ± 2 s.e.; positive means relgrad is better.",
        "- Fit: wall-clock seconds of the fit (with the model selection for GaussianMixture and KernelDensity), "
        "in this process; warm: the identical fit repeated in the same process (JAX's compilation cached). "
        "Speed-up: the method's fit time / relgrad's.",
        "",
        "| Method | Settings | Test LL, pixel space (nats/image) | bits/dim | Test LL, logit space "
        "| relgrad's lead (nats) | Fit (s) | Warm re-fit (s) | relgrad speed-up |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        mu, se = mean_2se(r.ll_pixel)
        logit = "–" if r.ll_logit is None else "{:.2f} ± {:.2f}".format(*mean_2se(r.ll_logit))
        lead = "–" if r is ref else "{:+.2f} ± {:.2f}".format(*mean_2se(ref.ll_pixel - r.ll_pixel))
        warm = "–" if r.warm_seconds is None else f"{r.warm_seconds:.2f}"
        speed = "–" if r is ref else ratio(r.fit_seconds, ref.fit_seconds)
        if r is not ref and r.warm_seconds is not None and ref.warm_seconds:
            speed += f" (warm {ratio(r.warm_seconds, ref.warm_seconds)})"
        lines.append(
            f"| {r.method} | {r.short} | {mu:.2f} ± {se:.2f} | {-mu / ln2d:.4f} ± {se / ln2d:.4f} | {logit} | {lead} "
            f"| {r.fit_seconds:.2f} | {warm} | {speed} |"
        )
    lines += ["", "Settings:", ""]
    lines += [f"- **{r.method}**: {r.settings}" for r in results]
    lines += ["", "Targets:", ""]
    ref_mu = float(np.mean(ref.ll_pixel))
    beaten = [r for r in results[1:] if float(np.mean(r.ll_pixel)) >= ref_mu]
    if beaten:
        lines.append(
            "- relgrad's test LL above all others: **not met**; at or above relgrad: "
            + ", ".join(f"{r.method} ({np.mean(r.ll_pixel):.2f} vs {ref_mu:.2f})" for r in beaten)
        )
    else:
        lines.append(
            f"- relgrad's test LL above all others: **met** ({ref_mu:.2f} nats/image)"
            + ("" if flows else "; the FlowJAX baselines were not run")
        )
    if flows:
        for r in flows:
            x = r.fit_seconds / ref.fit_seconds
            lines.append(
                f"- relgrad's fit >= 10x faster than {r.method}'s: **{'met' if x >= 10 else 'not met'}** "
                f"({r.fit_seconds:.2f} s vs {ref.fit_seconds:.2f} s: {ratio(r.fit_seconds, ref.fit_seconds)}; "
                f"warm re-fits "
                f"{r.warm_seconds:.2f} s vs {ref.warm_seconds:.2f} s: {ratio(r.warm_seconds, ref.warm_seconds)})"
            )
    else:
        lines.append(f"- relgrad's fit >= 10x faster than the flow library's: not measured ({flow_error})")
    lines += ["", "Details:", ""]
    lines += [f"- {n}" for r in results for n in r.notes]
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--out", default=str(HERE / "results.md"), help="where to write the Markdown report (default: %(default)s)"
    )
    p.add_argument("--no-write", action="store_true", help="print the report only")
    p.add_argument("--no-flowjax", action="store_true", help="skip the FlowJAX baselines")
    args = p.parse_args(argv)

    warnings.filterwarnings("ignore", category=UserWarning)  # JAX's "no GPU/TPU found" and alike
    load_before = os.getloadavg()
    d = load_data()
    results = [run_relgrad(d)]
    print(f"relgrad: fit {results[0].fit_seconds:.2f} s", file=sys.stderr, flush=True)
    results += run_gmm(d)
    print(f"GaussianMixture: fit {results[-1].fit_seconds:.2f} s", file=sys.stderr, flush=True)
    results.append(run_kde(d))
    print(f"KernelDensity: fit {results[-1].fit_seconds:.2f} s", file=sys.stderr, flush=True)
    flow_error = None
    if args.no_flowjax:
        flow_error = "--no-flowjax"
    else:
        try:
            import flowjax  # noqa: F401
        except ImportError as e:
            flow_error = f"flowjax not importable: {e}"
        else:
            for spline in (False, True):
                results.append(run_flowjax(d, spline))
                print(f"{results[-1].method}: fit {results[-1].fit_seconds:.2f} s", file=sys.stderr, flush=True)
    text = report(d, results, load_before, os.getloadavg(), flow_error)
    print(text)
    if not args.no_write:
        Path(args.out).write_text(text)
        print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
