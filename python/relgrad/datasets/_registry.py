"""The data sets by name, :func:`load` and :func:`prepare`."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from . import bsds300, cifar10, gas, hepmass, miniboone, mnist, power, toys
from ._common import MAF_ARCHIVE, PathLike, Progress, Splits, say


@dataclass(frozen=True)
class Dataset:
    """What :func:`load` knows of a data set."""

    name: str
    #: "tabular" (float64 rows), "image" (uint8 pixels) or "toy" (generated, float64).
    kind: str
    description: str
    #: The publisher's files it reads (empty for generated sets).
    files: str
    #: Where to download them.
    where: str
    loader: Callable[..., Splits]
    #: A Python package the format needs beyond NumPy.
    needs: Optional[str] = None


DATASETS: Dict[str, Dataset] = {
    d.name: d
    for d in [
        Dataset(
            "power",
            "tabular",
            "household electric power, 6-D (MAF's preprocessing)",
            "power/data.npy",
            MAF_ARCHIVE,
            power.load,
        ),
        Dataset(
            "gas",
            "tabular",
            "gas sensors, ethylene and CO, 8-D (MAF's)",
            "gas/ethylene_CO.pickle",
            MAF_ARCHIVE,
            gas.load,
            "pandas",
        ),
        Dataset(
            "hepmass",
            "tabular",
            "particle collisions at mass 1000, 21-D (MAF's)",
            "hepmass/1000_train.csv, hepmass/1000_test.csv",
            MAF_ARCHIVE,
            hepmass.load,
        ),
        Dataset(
            "miniboone",
            "tabular",
            "MiniBooNE particle identification, 43-D (MAF's)",
            "miniboone/data.npy",
            MAF_ARCHIVE,
            miniboone.load,
        ),
        Dataset(
            "bsds300",
            "tabular",
            "8x8 natural image patches, 63-D (MAF's)",
            "BSDS300/BSDS300.hdf5",
            MAF_ARCHIVE,
            bsds300.load,
            "h5py",
        ),
        Dataset(
            "cifar10",
            "image",
            "32x32 colour images, uint8 (32, 32, 3)",
            "cifar-10-binary.tar.gz or cifar-10-python.tar.gz (or extracted)",
            cifar10.URL,
            cifar10.load,
        ),
        Dataset(
            "mnist",
            "image",
            "28x28 handwritten digits, uint8 (28, 28)",
            "train-images-idx3-ubyte[.gz], t10k-images-idx3-ubyte[.gz]",
            mnist.URL,
            mnist.load,
        ),
    ]
}
for _toy in toys.TOYS:
    DATASETS[_toy] = Dataset(_toy, "toy", toys.DESCRIPTIONS[_toy], "", "generated", toys.load)
ALIASES = {"cifar": "cifar10", "cifar-10": "cifar10", "bsds": "bsds300"}
SPLITS = ("train", "val", "test")
TOY_OPTIONS = ("n_train", "n_val", "n_test", "seed")


def dataset(name: str) -> Dataset:
    """The :class:`Dataset` called ``name`` (case-insensitive)."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[key]


def load(name: str, root: Optional[PathLike] = None, *, progress: Progress = None, **options: Any) -> Splits:
    """The training, validation and test rows of a data set of the paper.

    Parameters
    ----------
    name : str
        ``power``, ``gas``, ``hepmass``, ``miniboone``, ``bsds300``, ``cifar10``, ``mnist``
        or a toy set (``8gaussians``, ``sine``, ``moons``, ``trimodal``, ``trimodal2``,
        ``smile``, ``2spirals``, ``checkerboard``, ``rings``); case-insensitive.
    root : path, optional
        Where the publisher's files are (see each set's module); not used by toy sets.
    progress : callable, optional
        Receives progress messages (strings).
    **options
        Toy sets only: ``n_train``, ``n_val``, ``n_test`` (5000 each) and ``seed`` (0).

    Returns
    -------
    Splits
        ``train``, ``val`` and ``test`` arrays, with ``levels`` and ``shape`` for images.

    Raises
    ------
    FileNotFoundError
        A file is missing: the message names it and where to download it.
    DataFormatError
        A file is damaged or not in the expected format (a ``ValueError``).
    ImportError
        The format needs pandas (GAS) or h5py (BSDS300), which is not installed.

    Examples
    --------
    >>> from relgrad import datasets
    >>> s = datasets.load("trimodal2", n_train=100, n_val=20, n_test=20, seed=1)
    >>> s.train.shape, s.val.shape, s.test.shape
    ((100, 2), (20, 2), (20, 2))
    """
    d = dataset(name)
    if d.kind == "toy":
        unknown = sorted(set(options) - set(TOY_OPTIONS))
        if unknown:
            raise TypeError(
                f"unexpected option(s) {unknown} for the toy set {d.name}; it takes {TOY_OPTIONS}"
            )
        return toys.load(d.name, **options)
    if options:
        raise TypeError(f"{d.name} takes no options (got {sorted(options)}); only toy sets do")
    return d.loader(root, progress=progress)


def _json_shape(a: np.ndarray) -> List[int]:
    return [int(s) for s in a.shape]


def prepare(
    name: str,
    root: Optional[PathLike],
    out: PathLike,
    *,
    overwrite: bool = False,
    progress: Progress = None,
    **options: Any,
) -> Dict[str, Any]:
    """Loads a data set (:func:`load`) and writes ``train.npy``, ``val.npy``, ``test.npy``
    and ``info.json`` into the directory ``out``.

    Tabular and toy sets are written as float64 ``(n, d)`` arrays in C order, image sets as
    uint8 ``(n, 28, 28)`` or ``(n, 32, 32, 3)`` arrays, which ``relgrad train --data``
    reads as 8-bit image data. ``info.json`` records the name, the source files, the
    preprocessing, the reference code and the shapes.

    Parameters
    ----------
    name, root, progress, **options
        As for :func:`load`.
    out : path
        The directory to write (created if needed).
    overwrite : bool, default=False
        Replace files that exist; otherwise an existing file is a ``FileExistsError``.

    Returns
    -------
    dict
        What ``info.json`` holds.
    """
    out = Path(out)
    targets = [out / f"{s}.npy" for s in SPLITS] + [out / "info.json"]
    if not overwrite:
        for t in targets:
            if t.exists():
                raise FileExistsError(
                    f"{t} exists (overwrite=True, or --force on the command line, replaces it)"
                )
    d = dataset(name)
    splits = load(d.name, root, progress=progress, **options)
    out.mkdir(parents=True, exist_ok=True)
    info: Dict[str, Any] = {
        "name": d.name,
        "description": d.description,
        "kind": d.kind,
        "source": [str(Path(s).resolve()) if d.kind != "toy" else s for s in splits.info.get("source", [])],
        "download": d.where,
        **{k: v for k, v in splits.info.items() if k != "source"},
        "levels": splits.levels,
        "image_shape": list(splits.shape) if splits.shape is not None else None,
        "splits": {},
    }
    for split in SPLITS:
        a = getattr(splits, split)
        path = out / f"{split}.npy"
        say(progress, f"writing {path} ({' x '.join(map(str, a.shape))}, {a.dtype})")
        tmp = out / f".{split}.npy.partial"
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(a), allow_pickle=False)
        os.replace(tmp, path)
        info["splits"][split] = {"file": path.name, "shape": _json_shape(a), "dtype": str(a.dtype)}
    with open(out / "info.json", "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    return info
