"""scikit-learn's common estimator checks."""

from __future__ import annotations

import inspect

from sklearn.utils.estimator_checks import parametrize_with_checks

from relgrad import Flow

# Few epochs keep the checks fast; every other parameter is the default: the automatic
# architecture, which gives the checks' narrow data spline activations at 16 layers, and
# the wide data's tanh-linear, named here so that it is checked on all the data too.
ESTIMATORS = [Flow(max_epochs=5), Flow(activation="tanh-linear", max_epochs=5)]

# Checks that cannot pass, with the reason (scikit-learn >= 1.6 takes them as
# `expected_failed_checks`; they are reported as xfail).
EXPECTED_FAILED_CHECKS: dict = {}

kwargs = {}
if "expected_failed_checks" in inspect.signature(parametrize_with_checks).parameters:
    kwargs["expected_failed_checks"] = lambda est: EXPECTED_FAILED_CHECKS


@parametrize_with_checks(ESTIMATORS, **kwargs)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
