#!/usr/bin/env python3
"""The official JAX code's relative gradient timed against the dimension D, for
``relgrad bench scaling --overlay``.

The paper's reference implementation (github fissoreg/relative-gradient-jacobian,
``experiments/``) is read from where it lies, ``--official PATH``: a checkout (or its
``experiments`` folder), or a bare git directory (its files are then read with ``git
show REV:experiments/...``). Nothing of it is copied anywhere: its modules are loaded
from their text in memory.

What is timed, at each D from ``--min-dim`` to ``--max-dim`` as ``relgrad bench scaling``
times relgrad:

- ``official-relative``: the official ``gradient`` of ``experiments/train.py``,
  ``add_det_grad(get_relative_gradient(grad(loss, argnums=(0, 1), has_aux=True)))``
  (its ``loss``, ``get_relative_gradient`` and ``add_det_grad`` are taken from train.py
  unchanged, with ``ast``: importing train.py would start a training run), under
  ``jax.jit``, on ``model.get_model``'s forward pass with the smooth leaky ReLU
  (alpha 0.01) of ``custom_activations.py``;
- ``official-autodiff`` (unless ``--no-autodiff``): ``jax.grad`` of the exact
  log-likelihood of ``losses.get_piecewise_loss`` (``train.py``'s ``full_loss``, the
  ``slogdet`` term included), under ``jax.jit``: the naive autodiff gradient, O(D^3).

Each call is waited for with ``jax.block_until_ready``; one untimed warm-up call (it
compiles) comes first, then calls are timed until ``--budget`` seconds have passed and
``--min-reps`` calls were made (at most ``--max-reps``). A series stops before the first
D whose warm-up and ``--min-reps`` calls are predicted to take longer than
``--max-point-seconds``, or whose buffers would not fit in memory, and the file says why.

The parameters are relgrad's (``weights I + 0.25 G / sqrt(D)``, zero biases, in the
official shapes ``W: (D, D)``, ``b: (1, D)``) rather than ``get_model``'s orthogonal
start, whose QR is O(D^3) (the times do not depend on the values); the batch is ``B``
standard-normal rows, float32, already on the device.

Two adaptations to current JAX, both outside the official files: ``losses.py`` imports
``utils.py`` for nothing it uses, and ``utils.py`` needs matplotlib, scipy and PIL; where
it cannot be imported an empty stand-in is used. ``losses.log_abs_det`` gives
``jnp.linalg.slogdet`` a list, which current JAX refuses; it is then replaced by the same
function with the weights stacked into one array. The output says which were used.

Run (JAX on the CPU: ``pip install jax``), beside ``relgrad bench scaling``::

    python3 benches/python/scaling_official.py --official PATH/TO/relative-gradient-jacobian \\
        --out bench-scaling/official.json
    relgrad bench scaling --from bench-scaling/scaling.json --overlay bench-scaling/official.json

Without JAX it exits with status 3 and says so.
"""

from __future__ import annotations

import argparse
import ast
import importlib.abc
import importlib.util
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
import types
from itertools import chain
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from compare import cpu_model  # this folder's comparison script: the CPU's name

FORMAT = "relgrad-scaling/1"
MEMORY_SHARE = 0.9  # of MemAvailable, as relgrad bench scaling
GIB = float(1 << 30)
OFFICIAL_MODULES = ("custom_activations", "model", "losses", "utils")
TRAIN_FUNCTIONS = ("loss", "get_relative_gradient", "add_det_grad")
EXIT_NO_JAX = 3


# --------------------------------------------------------------------------- the grid


def dims(lo: int, hi: int, steps: int) -> List[int]:
    """``relgrad bench scaling``'s dimensions: ``lo * 2^(k / steps)`` rounded, up to
    ``hi``, and ``hi`` itself last."""
    out: List[int] = []
    if lo < 1 or lo > hi:
        return out
    k = 0
    while True:
        d = int(math.floor(lo * 2.0 ** (k / max(steps, 1)) + 0.5))
        if d > hi:
            break
        if not out or out[-1] != d:
            out.append(d)
        k += 1
    if out[-1] != hi:
        out.append(hi)
    return out


def quantile(values: List[float], p: float) -> float:
    """The ``p``-quantile of the ascending ``values``, linear between order statistics."""
    if not values:
        return float("nan")
    at = min(max(p, 0.0), 1.0) * (len(values) - 1)
    i = int(math.floor(at))
    nxt = values[min(i + 1, len(values) - 1)]
    return values[i] + (at - i) * (nxt - values[i])


def time_calls(call: Callable[[], None], budget: float, min_reps: int, max_reps: int) -> Dict:
    """One untimed warm-up call, then timed calls until ``budget`` seconds and
    ``min_reps`` calls, or ``max_reps`` calls."""
    t = time.perf_counter()
    call()
    warmup = time.perf_counter() - t
    times: List[float] = []
    start = time.perf_counter()
    while len(times) < max(max_reps, 1) and (len(times) < min_reps or time.perf_counter() - start < budget):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    times.sort()
    ms = lambda p: quantile(times, p) * 1e3  # noqa: E731
    return {
        "median_ms": ms(0.5),
        "min_ms": ms(0.0),
        "q1_ms": ms(0.25),
        "q3_ms": ms(0.75),
        "max_ms": ms(1.0),
        "reps": len(times),
        "warmup_ms": warmup * 1e3,
    }


def predict_seconds(points: List[Dict], d: int, exponent: float) -> Optional[float]:
    """One call's predicted seconds at ``d`` from the last two points: the larger of
    ``exponent`` and the slope between them (capped at 4), as relgrad does."""
    if not points:
        return None
    last = points[-1]
    slope = exponent
    if len(points) >= 2:
        before = points[-2]
        seen = math.log(last["median_ms"] / before["median_ms"]) / math.log(last["d"] / before["d"])
        slope = max(exponent, min(seen, 4.0))
    return last["median_ms"] / 1e3 * (d / last["d"]) ** slope


def fit_exponent(points: List[Dict], fit_from: int) -> Optional[Tuple[float, int, int]]:
    """The least-squares slope of ln t on ln D over D >= fit_from (at least 3 points),
    else over the upper half of the points: ``(exponent, from_d, to_d)``."""
    if len(points) < 2:
        return None
    big = [p for p in points if p["d"] >= fit_from]
    use = big if len(big) >= 3 else points[len(points) - max(2, (len(points) + 1) // 2):]
    xs = [math.log(p["d"]) for p in use]
    ys = [math.log(p["median_ms"]) for p in use]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx <= 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return slope, use[0]["d"], use[-1]["d"]


# --------------------------------------------------------------------------- the machine


def mem_available() -> Optional[int]:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss() -> int:
    """This process's peak resident bytes (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def bytes_needed(d: int, b: int, layers: int, autodiff: bool) -> int:
    """float32 bytes of one point: the weights, the gradient's ``D x D`` outputs and about
    four ``D x D`` temporaries of XLA (six with autodiff: ``slogdet``'s LU factor and the
    inverse its gradient needs), and the batch-sized arrays."""
    squares = 2 * layers + (6 if autodiff else 4)
    return 4 * (squares * d * d + (4 * layers + 4) * b * d)


# --------------------------------------------------------------------------- the official code


class _Sources(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the official modules from their text, so that nothing is copied to disk and
    the snapshot's folder is not put on ``sys.path``."""

    def __init__(self, sources: Dict[str, Tuple[str, str]]):
        self.sources = sources

    def find_spec(self, name, path=None, target=None):
        if name in self.sources:
            return importlib.util.spec_from_loader(name, self, origin=self.sources[name][1])
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        text, origin = self.sources[module.__name__]
        module.__file__ = origin
        exec(compile(text, origin, "exec"), module.__dict__)


def read_official(path: Path, rev: str) -> Tuple[Dict[str, Tuple[str, str]], str, Optional[str]]:
    """The text of ``experiments/{train,custom_activations,model,losses,utils}.py``: from a
    checkout, its ``experiments`` folder, or a git directory at ``rev``. Returns the
    sources by module name (``train`` too), a description of where they came from, and
    the commit if known."""
    names = OFFICIAL_MODULES + ("train",)
    for folder in (path / "experiments", path):
        if (folder / "train.py").is_file() and (folder / "model.py").is_file():
            sources = {}
            for n in names:
                f = folder / f"{n}.py"
                if f.is_file():
                    sources[n] = (f.read_text(), str(f))
            commit = None
            try:
                commit = subprocess.run(
                    ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
                ).stdout.strip()
            except (OSError, subprocess.CalledProcessError):
                pass
            return sources, str(folder), commit
    git = ["git", f"--git-dir={path}"]
    try:
        commit = subprocess.run(
            git + ["rev-parse", "--verify", f"{rev}^{{commit}}"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise SystemExit(
            f"{path}: neither a checkout of the official code (no experiments/train.py) nor a git directory with {rev}"
        )
    sources = {}
    for n in names:
        spec = f"{commit}:experiments/{n}.py"
        r = subprocess.run(git + ["show", spec], capture_output=True, text=True)
        if r.returncode == 0:
            sources[n] = (r.stdout, f"{path}:{spec}")
    return sources, f"{path} (git, {rev})", commit


def load_official(path: Path, rev: str, layers: int, alpha: float, autodiff: bool):
    """The official relative gradient (and the autodiff gradient) as jitted functions of
    ``(params, x)``, with notes on what had to be adapted."""
    import jax
    import jax.numpy as jnp

    sources, where, commit = read_official(path, rev)
    missing = [n for n in ("train", "custom_activations", "model", "losses") if n not in sources]
    if missing:
        raise SystemExit(f"{where}: no experiments/{', '.join(m + '.py' for m in missing)}: not the official code?")
    train_text, train_origin = sources.pop("train")
    for n in OFFICIAL_MODULES:
        sys.modules.pop(n, None)
    sys.meta_path.insert(0, _Sources(sources))
    notes: List[str] = []
    try:
        import utils  # noqa: F401  (the official one)
    except Exception as e:  # ImportError for matplotlib/scipy/PIL, or its jax.ops use
        sys.modules.pop("utils", None)
        sys.modules["utils"] = types.ModuleType("utils")
        notes.append(
            f"experiments/utils.py could not be imported ({type(e).__name__}: {e}); losses.py takes nothing it uses "
            "from it, so an empty stand-in was used"
        )
    import custom_activations
    import losses
    import model

    tree = ast.parse(train_text, filename=train_origin)
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in TRAIN_FUNCTIONS]
    found = {n.name for n in defs}
    if found != set(TRAIN_FUNCTIONS):
        raise SystemExit(f"{train_origin}: lacks {sorted(set(TRAIN_FUNCTIONS) - found)}: not the expected snapshot")

    nonlinearity = custom_activations.get_activation_fn("smooth_leaky_relu", alpha)
    # The forward functions do not depend on the dimension: made once, at D = 2.
    _, g_dummy, g_layerwise, _ = model.get_model(2, layers, nonlinearity=nonlinearity, key=jax.random.PRNGKey(0))
    # train.py's globals: `from losses import *`, its other imports, and its model.
    ns = {k: getattr(losses, k) for k in dir(losses) if not k.startswith("_")}
    ns.update(
        __name__="official_train",
        jnp=jnp,
        chain=chain,
        nonlinearity=nonlinearity,
        g_dummy=g_dummy,
        get_dummy_params=model.get_dummy_params,
    )
    exec(compile(ast.Module(body=defs, type_ignores=[]), train_origin, "exec"), ns)
    # As train.py: gradient = grad(loss, argnums = (0, 1), has_aux = True)
    #              gradient = add_det_grad(get_relative_gradient(gradient))
    gradient = ns["add_det_grad"](ns["get_relative_gradient"](jax.grad(ns["loss"], argnums=(0, 1), has_aux=True)))
    fns = {"official-relative": jax.jit(gradient)}

    if autodiff:
        tiny = [(jnp.eye(2), jnp.zeros((1, 2)))] * 2
        try:
            losses.log_abs_det(tiny)
        except TypeError:
            original = losses.log_abs_det

            def log_abs_det(params):
                # losses.log_abs_det with the weights stacked: current slogdet takes no list.
                Ws = [W for (W, b) in params]
                return jnp.sum(jnp.linalg.slogdet(jnp.stack(Ws))[1])

            log_abs_det.__wrapped__ = original
            losses.log_abs_det = log_abs_det
            notes.append(
                "losses.log_abs_det passes a list to jnp.linalg.slogdet, which this JAX refuses: "
                "the weights are stacked into one array instead (same value)"
            )
        piecewise_loss = losses.get_piecewise_loss(g_layerwise, losses.log_pdf_normal, nonlinearity)
        full_loss = lambda params, x: sum(piecewise_loss(params, x))  # noqa: E731  (train.py's)
        fns["official-autodiff"] = jax.jit(jax.grad(full_loss))
    return fns, where, commit, notes


def make_params(d: int, layers: int, seed: int):
    """relgrad's timed weights, ``I + 0.25 G / sqrt(D)``, zero biases, in the official
    shapes, float32 on the device."""
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(seed ^ d)
    params = []
    for _ in range(layers):
        w = rng.standard_normal((d, d), dtype=np.float32)
        w *= np.float32(0.25 / math.sqrt(d))
        w[np.diag_indices(d)] += np.float32(1.0)
        params.append((jnp.asarray(w), jnp.zeros((1, d), dtype=jnp.float32)))
        del w
    return params


# --------------------------------------------------------------------------- main


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    p.add_argument("--official", required=True, type=Path,
                   help="the official code: a checkout, its experiments folder, or a git directory")
    p.add_argument("--rev", default="HEAD", help="the revision, for a git directory (default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("official.json"), help="the JSON to write (default: %(default)s)")
    p.add_argument("--min-dim", type=int, default=16)
    p.add_argument("--max-dim", type=int, default=16384)
    p.add_argument("--steps-per-octave", type=int, default=1)
    p.add_argument("--batch", type=int, default=100, help="rows per batch B (default: %(default)s)")
    p.add_argument("--layers", type=int, default=2, help="layers L, at least 2 (default: %(default)s)")
    p.add_argument("--alpha", type=float, default=0.01, help="the smooth leaky ReLU's alpha (default: %(default)s)")
    p.add_argument("--budget", type=float, default=2.0, help="seconds of timed calls per point (default: %(default)s)")
    p.add_argument("--min-reps", type=int, default=3)
    p.add_argument("--max-reps", type=int, default=1000)
    p.add_argument("--max-point-seconds", type=float, default=1800.0,
                   help="stop a series before a D predicted to take longer (default: %(default)s)")
    p.add_argument("--max-memory", type=float, default=None,
                   help="GiB the run may allocate (default: 90%% of MemAvailable)")
    p.add_argument("--fit-from", type=int, default=1024, help="fit the exponents over D >= this (default: %(default)s)")
    p.add_argument("--no-autodiff", action="store_true", help="time the official relative gradient only")
    p.add_argument("--autodiff-max-dim", type=int, default=None, help="the largest D for autodiff (default: --max-dim)")
    args = p.parse_args(argv)
    if args.layers < 2:
        p.error("--layers: the official forward pass needs at least 2 layers")
    if args.min_dim < 1 or args.min_dim > args.max_dim:
        p.error("--min-dim must be from 1 to --max-dim")

    try:
        import jax
        import jax.numpy as jnp
        import numpy as np  # noqa: F401
    except ImportError as e:
        print(
            f"scaling_official.py: JAX is not installed ({e}); install it (`pip install jax`, the CPU build) "
            "to time the official code. Nothing was written.",
            file=sys.stderr,
        )
        return EXIT_NO_JAX

    fns, where, commit, notes = load_official(args.official, args.rev, args.layers, args.alpha, not args.no_autodiff)
    expected = {"official-relative": 2.0, "official-autodiff": 3.0}
    labels = {
        "official-relative": "official JAX relative gradient (jit, f32)",
        "official-autodiff": "official JAX loss, autodiff gradient (jax.grad, slogdet)",
    }
    max_dim = {"official-relative": args.max_dim, "official-autodiff": args.autodiff_max_dim or args.max_dim}
    available = mem_available()
    limit = int(args.max_memory * GIB) if args.max_memory else (int(available * MEMORY_SHARE) if available else None)
    series = {n: {"name": n, "label": labels[n], "expected_exponent": expected[n], "points": [], "stopped": None}
              for n in fns}
    on = {n: True for n in fns}
    memory = []
    grid = dims(args.min_dim, args.max_dim, args.steps_per_octave)
    for d in grid:
        for n in fns:
            if not on[n]:
                continue
            s = series[n]
            if d > max_dim[n]:
                on[n], s["stopped"] = False, {"before_d": d, "reason": f"--autodiff-max-dim {max_dim[n]}"}
                continue
            t = predict_seconds(s["points"], d, expected[n])
            if t is not None and t * (1 + args.min_reps) > args.max_point_seconds:
                on[n] = False
                s["stopped"] = {
                    "before_d": d,
                    "reason": f"time: its warm-up and {args.min_reps} calls are predicted to take "
                              f"{t * (1 + args.min_reps):.3g} s (from D = {s['points'][-1]['d']}), "
                              f"more than --max-point-seconds {args.max_point_seconds:g}",
                }
                continue
            need = bytes_needed(d, args.batch, args.layers, n == "official-autodiff")
            if limit is not None and need > limit:
                on[n] = False
                s["stopped"] = {
                    "before_d": d,
                    "reason": f"memory: D = {d} needs about {need / GIB:.2f} GiB, {limit / GIB:.2f} GiB "
                              + ("allowed (--max-memory)" if args.max_memory else "available (90 % of MemAvailable)"),
                }
        active = [n for n in fns if on[n]]
        if not active:
            break
        params = make_params(d, args.layers, 0x5CA1E)
        x = jnp.asarray(np.random.default_rng(0xDA7A ^ d).standard_normal((args.batch, d), dtype=np.float32))
        line = f"D = {d:>6}:"
        for n in active:
            f = fns[n]
            sample = time_calls(lambda: jax.block_until_ready(f(params, x)), args.budget, args.min_reps, args.max_reps)
            sample["d"] = d
            series[n]["points"].append(sample)
            line += f"  {n} {sample['median_ms']:.3g} ms ({sample['reps']} calls)"
        print(line, file=sys.stderr, flush=True)
        memory.append({"d": d, "estimate_bytes": bytes_needed(d, args.batch, args.layers, len(active) > 1),
                       "peak_rss_bytes": peak_rss()})
        del params, x

    for s in series.values():
        fit = fit_exponent(s["points"], args.fit_from)
        if fit:
            s["fit"] = {"exponent": fit[0], "from_d": fit[1], "to_d": fit[2]}
            print(f"{s['name']}: fitted exponent {fit[0]:.2f} over D = {fit[1]}..{fit[2]}", file=sys.stderr)
        if s["stopped"]:
            print(f"{s['name']}: stopped before D = {s['stopped']['before_d']}: {s['stopped']['reason']}",
                  file=sys.stderr)
    try:
        import jaxlib

        jaxlib_version = getattr(jaxlib, "__version__", None) or getattr(jaxlib.version, "__version__", "?")
    except Exception:
        jaxlib_version = "?"
    out = {
        "format": FORMAT,
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "mem_available_bytes": available,
            "unix_time": int(time.time()),
            "tool": f"benches/python/scaling_official.py, Python {platform.python_version()}, "
                    f"jax {jax.__version__}, jaxlib {jaxlib_version}, device {jax.devices()[0]}",
        },
        "setup": {
            "official": where,
            "commit": commit,
            "timed": "one call of the jitted gradient, waited for with jax.block_until_ready, after one untimed warm-up "
                     "call (it compiles)",
            "model": "weights I + 0.25 G / sqrt(D) (G standard normal), zero biases, smooth leaky ReLU "
                     f"(alpha {args.alpha}), standard-normal base; batch of B standard-normal rows",
            "backend": "jax",
            "precision": "f32",
            "threads": os.environ.get("XLA_FLAGS", "XLA's default"),
            "batch": args.batch,
            "layers": args.layers,
            "budget_s": args.budget,
            "min_reps": args.min_reps,
            "max_reps": args.max_reps,
            "max_point_seconds": args.max_point_seconds,
            "memory_limit_bytes": limit,
            "adaptations": notes,
        },
        "series": list(series.values()),
        "memory": memory,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"written: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
