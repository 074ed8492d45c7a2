"""The examples in the docstrings run."""

from __future__ import annotations

import doctest

import pytest

import relgrad
from relgrad import _config, _flow, _functional


@pytest.mark.parametrize("module", [relgrad, _flow, _functional, _config])
def test_docstring_examples(module):
    failures, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert failures == 0


def test_public_api_is_documented():
    assert relgrad.__doc__
    for name in relgrad.__all__:
        obj = getattr(relgrad, name)
        if callable(obj):
            assert obj.__doc__ and "Parameters" in obj.__doc__ or "Returns" in obj.__doc__, name
    for method in ("fit", "score_samples", "score", "sample", "transform", "inverse_transform", "save"):
        doc = getattr(relgrad.Flow, method).__doc__
        assert doc and ("Parameters" in doc or "Returns" in doc), method
    assert isinstance(relgrad.__version__, str) and relgrad.__version__
