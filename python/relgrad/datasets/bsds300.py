"""BSDS300: 8x8 patches of natural images (Berkeley segmentation data set), as MAF
prepared them.

The file is ``BSDS300/BSDS300.hdf5`` of MAF's data archive
(https://zenodo.org/record/1161203, ``data.tar.gz``), with the data sets ``train``,
``validation`` and ``test`` (1,000,000 / 50,000 / 250,000 rows of 63 columns: 64 pixels
of a monochrome patch, its mean removed, the bottom-right pixel dropped). Reading it needs
h5py (``pip install h5py``). MAF's ``datasets/bsds300.py`` reads the three data sets as
they are (``f['train']``, ``f['validation']``, ``f['test']``), with no further
preprocessing; so does this module, returning them as float64 (a lossless conversion of
the file's float32).
"""

from __future__ import annotations

from typing import Optional

from ._common import (
    MAF_ARCHIVE,
    DataFormatError,
    PathLike,
    Progress,
    Splits,
    as_f64,
    check_finite,
    find_file,
    optional_import,
    say,
)

NAME = "bsds300"
#: The HDF5 data sets, in the order of :class:`Splits`.
KEYS = ("train", "validation", "test")


def load(root: Optional[PathLike], progress: Progress = None) -> Splits:
    """BSDS300 from MAF's ``BSDS300/BSDS300.hdf5`` (needs h5py).

    Parameters
    ----------
    root : path
        The extracted archive's ``data/`` directory, its ``BSDS300/`` directory, or the
        HDF5 file itself.
    progress : callable, optional
        Receives progress messages.

    Returns
    -------
    Splits
        float64 arrays with 63 columns.
    """
    h5py = optional_import("h5py", "BSDS300", "its file is HDF5")
    path = find_file(
        root,
        ["BSDS300/BSDS300.hdf5", "bsds300/BSDS300.hdf5", "BSDS300.hdf5"],
        dataset="BSDS300",
        expected="BSDS300/BSDS300.hdf5",
        where=MAF_ARCHIVE,
    )
    say(progress, f"reading {path}")
    try:
        f = h5py.File(path, "r")  # BSDS300.__init__: f = h5py.File(root + 'BSDS300/BSDS300.hdf5', 'r')
    except OSError as e:
        raise DataFormatError(f"{path}: not a readable HDF5 file ({e})") from e
    arrays = {}
    with f:
        for key in KEYS:  # self.trn = self.Data(f['train']); val: f['validation']; tst: f['test']
            if key not in f:
                raise DataFormatError(f"{path}: no data set {key!r} (found {sorted(f.keys())})")
            ds = f[key]
            if not isinstance(ds, h5py.Dataset) or len(ds.shape) != 2 or ds.dtype.kind not in "fiu":
                raise DataFormatError(f"{path}: {key!r} must be a 2-D numeric data set, found {ds}")
            try:
                arrays[key] = as_f64(ds[:])  # Data.__init__: self.x = data[:]
            except OSError as e:
                raise DataFormatError(
                    f"{path}: cannot read the data set {key!r} ({e}); is the file complete?"
                ) from e
    widths = {k: a.shape[1] for k, a in arrays.items()}
    if len(set(widths.values())) != 1:
        raise DataFormatError(f"{path}: the data sets have different widths {widths}")
    train, val, test = (arrays[k] for k in KEYS)
    check_finite(NAME, {"train": train, "val": val, "test": test})
    return Splits(
        NAME,
        train,
        val,
        test,
        info={
            "source": [str(path)],
            "reference": "MAF datasets/bsds300.py: BSDS300.__init__",
            "preprocessing": [
                "none: the HDF5 data sets train, validation, test as stored (converted to float64)"
            ],
        },
    )
