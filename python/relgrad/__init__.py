"""Exact maximum-likelihood training of deep density models with the relative gradient.

An invertible, fully connected network maps data ``x`` to latents ``z`` with a simple
factorised density, so the log-density of every row is exact. The relative gradient
(Gresele, Fissore, Javaloy, Schölkopf, Hyvärinen, NeurIPS 2020) makes a training step
cost ``O(B D^2)`` with no matrix inverse. The computation is the Rust library
``relgrad`` (the GIL is released while it runs); this package is its Python face:

- :class:`Flow`: a scikit-learn density estimator (``fit``, ``score_samples``,
  ``score``, ``sample``, ``transform``, ``inverse_transform``, ``save``), with the
  options and defaults of the command-line tool's ``relgrad train``;
- :func:`load`: a fitted :class:`Flow` from a model file (written by
  :meth:`Flow.save` or by ``relgrad train``);
- :func:`gradient` and :func:`log_prob`: the relative (or naive) gradient and the
  log-density of a bare network given as arrays, for your own training loop.

Examples
--------
>>> import numpy as np
>>> import relgrad
>>> X = np.random.default_rng(0).normal(size=(500, 3))
>>> flow = relgrad.Flow(max_epochs=20, random_state=0).fit(X)
>>> round(flow.score(X), 1) < 0
True
"""

from ._flow import Flow, load
from ._functional import gradient, log_prob
from ._relgrad import __version__

__all__ = ["Flow", "load", "gradient", "log_prob", "__version__"]
