"""Shared fixtures: the repository root, the command-line tool, small data sets."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Callable, List

import numpy as np
import pytest

#: The repository root (this file is python/tests/conftest.py).
REPO_ROOT = Path(__file__).resolve().parents[2]
#: The command-line tool, as `cargo build --release -p relgrad-cli` builds it, or the binary
#: named by ``RELGRAD_CLI`` (CI passes the one its `cargo test` build already made).
CLI = Path(os.environ.get("RELGRAD_CLI", REPO_ROOT / "target" / "release" / "relgrad"))


def correlated(n: int, d: int = 3, seed: int = 0) -> np.ndarray:
    """``n`` rows of a correlated, shifted, scaled Gaussian with ``d`` columns."""
    rng = np.random.default_rng(seed)
    mix = np.triu(np.full((d, d), 0.5)) + np.diag(np.arange(1.0, d + 1))
    return rng.normal(size=(n, d)) @ mix + np.arange(d) * 3.0


@pytest.fixture
def X() -> np.ndarray:
    """400 x 3 float64 rows."""
    return correlated(400)


@pytest.fixture(scope="session")
def cli() -> Callable[..., subprocess.CompletedProcess]:
    """Runs the `relgrad` binary with the given arguments (skips when it is not built)."""
    if not (CLI.is_file() and os.access(CLI, os.X_OK)):
        pytest.skip(
            f"the command-line tool is not built ({CLI} is missing); "
            "run `cargo build --release -p relgrad-cli` in the repository root"
        )

    def run(*args: str) -> subprocess.CompletedProcess:
        r = subprocess.run([str(CLI), *args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"relgrad {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
        return r

    return run


def write_csv(path: Path, X: np.ndarray) -> Path:
    """A CSV file with a header line ``x0,x1,...`` and full-precision values."""
    header = ",".join(f"x{j}" for j in range(X.shape[1]))
    np.savetxt(path, X, delimiter=",", header=header, comments="", fmt="%.17g")
    return path


def layer_list(arrays: List[np.ndarray]) -> List[np.ndarray]:
    return [np.asarray(a, dtype=np.float64) for a in arrays]
