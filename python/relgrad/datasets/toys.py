"""The paper's 2-D toy densities, as its code defines them.

Every set of ``experiments/datasets/density.py`` (``sample_2d_data``) with its exact
formula. The paper's code draws from PyTorch's global generator in float32; here the draws
come from a NumPy ``Generator`` in float64, in the same order, so the distributions are the
paper's but the numbers are not. ``z`` is a standard normal ``(n, 2)`` draw, ``U`` uniform on
``[0, 1)``, ``k`` a random component index:

- ``8gaussians``: ``(1/sqrt 2) (0.5 z + 4 c_k)``, ``c_k`` the 8 unit vectors at multiples
  of 45 degrees, ``k`` uniform;
- ``sine``: ``x = 4 U - 2``, ``y = sin(3 x) + 0.25 N(0, 1)``;
- ``moons``: scikit-learn's ``make_moons(n, shuffle=True, noise=0.05)``;
- ``trimodal``: ``s_k z + c_k``, centres ``(0, 0), (5, 5), (5, -5)``, scales ``1, 0.5, 0.5``,
  ``k`` uniform;
- ``trimodal2``: the same with scales ``0.5, 0.5, 0.5``;
- ``smile``: ``0.5 z + c_k``, 10 centres (scaled by 4): two eyes ``(±0.5, -0.866)`` and a
  nose ``(0, 0)`` of weight ``0.5/3`` each, and a mouth of 7 points on the unit circle at
  45, 60, 75, 90, 105, 120 and 135 degrees of weight ``0.5/7`` each (the paper plots it
  with the y axis inverted, so the mouth smiles);
- ``2spirals``: ``t = sqrt(U) 3 pi``, one arm ``(-t cos t + 0.5 U, t sin t + 0.5 U) / 3``,
  the other its reflection through the origin, ``n/2`` points each, plus ``0.1 z``
  (``n`` must be even, as in the paper's code);
- ``checkerboard``: ``x = 4 U - 2``, ``y = U - 2 B + (floor(x) mod 2)`` with ``B``
  a fair bit, both times 2;
- ``rings``: four circles of radius 3, 2.25, 1.5, 0.75 (``n - 3 floor(n/4)`` points on the
  smallest, ``floor(n/4)`` on each other, evenly spaced), ``n`` of them drawn with
  replacement, plus ``N(0, 0.08^2)`` noise.

relgrad's command-line generators (``relgrad datasets``) have other definitions for some
of these names; these are the paper's.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Union

import numpy as np

from ._common import Splits

RandomLike = Union[None, int, np.random.Generator]
_SQ2 = 1 / math.sqrt(2)


def _mixture(
    rng: np.random.Generator, n: int, centers: np.ndarray, stds: np.ndarray, p: Optional[np.ndarray] = None
) -> np.ndarray:
    z = rng.standard_normal((n, 2))
    seq = rng.choice(len(centers), size=n, p=p) if p is not None else rng.integers(len(centers), size=n)
    return stds[seq][:, None] * z + centers[seq]


def _8gaussians(rng: np.random.Generator, n: int) -> np.ndarray:
    z = rng.standard_normal((n, 2))
    unit = [(1, 0), (-1, 0), (0, 1), (0, -1), (_SQ2, _SQ2), (-_SQ2, _SQ2), (_SQ2, -_SQ2), (-_SQ2, -_SQ2)]
    centers = np.array([(4 * x, 4 * y) for x, y in unit])
    return _SQ2 * (0.5 * z + centers[rng.integers(len(centers), size=n)])


def _sine(rng: np.random.Generator, n: int) -> np.ndarray:
    xs = rng.random((n, 1)) * 4 - 2
    ys = rng.standard_normal((n, 1)) * 0.25
    return np.hstack((xs, np.sin(3 * xs) + ys))


def _moons(rng: np.random.Generator, n: int) -> np.ndarray:
    from sklearn.datasets import make_moons

    state = np.random.RandomState(int(rng.integers(2**31)))
    return make_moons(n_samples=n, shuffle=True, noise=0.05, random_state=state)[0].astype(np.float64)


def _trimodal(rng: np.random.Generator, n: int) -> np.ndarray:
    return _mixture(rng, n, np.array([(0.0, 0.0), (5.0, 5.0), (5.0, -5.0)]), np.array([1.0, 0.5, 0.5]))


def _trimodal2(rng: np.random.Generator, n: int) -> np.ndarray:
    return _mixture(rng, n, np.array([(0.0, 0.0), (5.0, 5.0), (5.0, -5.0)]), np.array([0.5, 0.5, 0.5]))


def _smile(rng: np.random.Generator, n: int) -> np.ndarray:
    s = 4
    centers = np.array(
        [
            (s * 0.5, -s * 0.8660254037844387),  # eyes
            (-s * 0.5, -s * 0.8660254037844387),
            (s * 0, -s * 0),  # nose
            (s * 0, s * 1),  # mouth
            (s * _SQ2, s * _SQ2),
            (s * -_SQ2, s * _SQ2),
            (s * 0.5, s * math.sqrt(3) / 2),
            (s * 0.25881904510252074, s * 0.9659258262890683),
            (-s * 0.5, s * math.sqrt(3) / 2),
            (-s * 0.25881904510252074, s * 0.9659258262890683),
        ]
    )
    weights = np.array([0.5 / 3] * 3 + [0.5 / 7] * 7)
    return _mixture(rng, n, centers, np.full(len(centers), 0.5), p=weights / weights.sum())


def _2spirals(rng: np.random.Generator, n: int) -> np.ndarray:
    if n % 2:
        raise ValueError(
            f"2spirals: n must be even (two arms of n/2 points, as in the paper's code), got {n}"
        )
    z = rng.standard_normal((n, 2))
    m = n // 2
    t = np.sqrt(rng.random(m)) * 540 * (2 * math.pi) / 360
    d1x = -np.cos(t) * t + rng.random(m) * 0.5
    d1y = np.sin(t) * t + rng.random(m) * 0.5
    x = np.vstack((np.stack((d1x, d1y), axis=1), np.stack((-d1x, -d1y), axis=1))) / 3
    return x + 0.1 * z


def _checkerboard(rng: np.random.Generator, n: int) -> np.ndarray:
    x1 = rng.random(n) * 4 - 2
    x2_ = rng.random(n) - rng.integers(0, 2, size=n).astype(np.float64) * 2
    x2 = x2_ + np.floor(x1) % 2
    return np.stack((x1, x2), axis=1) * 2


def _rings(rng: np.random.Generator, n: int) -> np.ndarray:
    n4 = n3 = n2 = n // 4
    n1 = n - n4 - n3 - n2
    # endpoint excluded, so that the first point is not also the last
    l4, l3, l2, l1 = (np.linspace(0, 2 * math.pi, k + 1)[:-1] for k in (n4, n3, n2, n1))
    xs = np.concatenate([np.cos(l4), np.cos(l4) * 0.75, np.cos(l2) * 0.5, np.cos(l1) * 0.25])
    ys = np.concatenate([np.sin(l4), np.sin(l3) * 0.75, np.sin(l2) * 0.5, np.sin(l1) * 0.25])
    x = np.stack((xs, ys), axis=1) * 3.0
    x = x[rng.integers(0, n, size=n)]
    return x + rng.normal(0.0, 0.08, size=x.shape)


#: The toy sets by name, in the paper code's order.
TOYS: Dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "8gaussians": _8gaussians,
    "sine": _sine,
    "moons": _moons,
    "trimodal": _trimodal,
    "trimodal2": _trimodal2,
    "smile": _smile,
    "2spirals": _2spirals,
    "checkerboard": _checkerboard,
    "rings": _rings,
}
#: One line per toy set, for ``python -m relgrad.datasets list``.
DESCRIPTIONS = {
    "8gaussians": "eight Gaussians (sd 0.5/sqrt 2) on a circle of radius 2 sqrt 2",
    "sine": "y = sin(3x) + N(0, 0.25^2), x uniform on [-2, 2]",
    "moons": "scikit-learn's two moons, noise 0.05",
    "trimodal": "three Gaussians at (0,0), (5,5), (5,-5), sd 1, 0.5, 0.5",
    "trimodal2": "three Gaussians at (0,0), (5,5), (5,-5), sd 0.5 each",
    "smile": "a smiley of 10 Gaussians (sd 0.5): two eyes, a nose, a 7-point mouth",
    "2spirals": "two interleaved spiral arms, noise sd 0.1 (n even)",
    "checkerboard": "uniform on 8 squares of a 4x4 checkerboard on [-4, 4]^2",
    "rings": "four concentric circles of radius 0.75..3, noise sd 0.08",
}


def sample(name: str, n: int, random_state: RandomLike = None) -> np.ndarray:
    """``n`` rows of the toy density ``name``.

    Parameters
    ----------
    name : str
        One of ``8gaussians``, ``sine``, ``moons``, ``trimodal``, ``trimodal2``, ``smile``,
        ``2spirals``, ``checkerboard``, ``rings``.
    n : int
        Rows to draw (even for ``2spirals``).
    random_state : None, int or numpy.random.Generator
        The generator, or a seed for ``numpy.random.default_rng``.

    Returns
    -------
    ndarray of shape (n, 2), float64

    Examples
    --------
    >>> from relgrad.datasets import toys
    >>> toys.sample("smile", 4, random_state=0).shape
    (4, 2)
    """
    if name not in TOYS:
        raise ValueError(f"unknown toy set {name!r}; known: {', '.join(TOYS)}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    rng = (
        random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)
    )
    return np.ascontiguousarray(TOYS[name](rng, int(n)), dtype=np.float64)


def load(name: str, n_train: int = 5000, n_val: int = 5000, n_test: int = 5000, seed: int = 0) -> Splits:
    """Training, validation and test rows of a toy set, drawn independently, as the paper's
    ``load_dataset`` draws them (5,000 rows each by default).

    Parameters
    ----------
    name : str
        The toy set (see :func:`sample`).
    n_train, n_val, n_test : int
        Rows of each split.
    seed : int
        Seed of the one generator the three splits are drawn from, in that order.

    Returns
    -------
    Splits
        float64 arrays with 2 columns.
    """
    rng = np.random.default_rng(seed)
    train, val, test = (sample(name, k, rng) for k in (n_train, n_val, n_test))
    return Splits(
        name,
        train,
        val,
        test,
        info={
            "source": [
                f"generated: relgrad.datasets.toys.sample({name!r}, n), numpy.random.default_rng({seed})"
            ],
            "reference": "relative-gradient-jacobian experiments/datasets/density.py: sample_2d_data",
            "preprocessing": ["none; the splits are independent draws (train, then val, then test)"],
            "options": {"n_train": n_train, "n_val": n_val, "n_test": n_test, "seed": seed},
        },
    )
