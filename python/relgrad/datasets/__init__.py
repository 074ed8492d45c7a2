"""The data sets of the paper (Gresele et al., NeurIPS 2020), from the publishers' files.

The paper's code (``experiments/datasets/`` of relative-gradient-jacobian) trains on:

- ``power``, ``gas``, ``hepmass``, ``miniboone``, ``bsds300``: the tabular sets of MAF
  (Papamakarios, Pavlakou, Murray, NeurIPS 2017), with MAF's own preprocessing and
  splits, reproduced here step by step (with MAF's ``np.random.RandomState(42)`` for
  POWER), so the arrays equal MAF's before its final cast to float32. Files: MAF's data
  archive ``data.tar.gz`` at https://zenodo.org/record/1161203 (extract it; give its
  ``data/`` directory as ``root``);
- ``cifar10``: https://www.cs.toronto.edu/~kriz/cifar.html, the binary or the Python
  version, extracted or as the ``.tar.gz`` archive; validation = the first 5,000
  training images, as the paper's code;
- ``mnist``: the IDX files ``train-images-idx3-ubyte.gz`` and ``t10k-images-idx3-ubyte.gz``
  (http://yann.lecun.com/exdb/mnist/ or the mirror
  https://storage.googleapis.com/cvdf-datasets/mnist/); validation = the last 10,000
  training images, as the paper's code;
- the 2-D toy densities ``8gaussians``, ``sine``, ``moons``, ``trimodal``, ``trimodal2``,
  ``smile``, ``2spirals``, ``checkerboard``, ``rings``, generated (:mod:`.toys`).

Tabular and toy sets are float64 arrays ``(n, d)``; image sets stay uint8 pixels
(``levels`` 256, ``shape`` the image's), which ``relgrad train`` and
:class:`relgrad.Flow` dequantise and logit-transform themselves. GAS needs pandas and
BSDS300 h5py (``pip install 'relgrad[datasets]'``); the others need NumPy only.

- :func:`load`: a :class:`Splits` (``train``, ``val``, ``test``, ``levels``, ``shape``,
  ``info``);
- :func:`prepare`: writes ``train.npy``, ``val.npy``, ``test.npy`` and ``info.json`` for
  ``relgrad train --data train.npy --val val.npy --test test.npy``;
- the command line: ``python -m relgrad.datasets list``,
  ``python -m relgrad.datasets prepare power data/ prepared/power``.

Examples
--------
>>> from relgrad import datasets
>>> s = datasets.load("moons", n_train=200, n_val=50, n_test=50, seed=0)
>>> s
Splits('moons', train=(200, 2), val=(50, 2), test=(50, 2), dtype=float64)
"""

from ._common import DataFormatError, Splits
from ._registry import DATASETS, Dataset, dataset, load, prepare

__all__ = ["load", "prepare", "Splits", "DataFormatError", "DATASETS", "Dataset", "dataset"]
