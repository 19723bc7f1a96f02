"""Rules about a student's grades that every layer applies the same way (numpy, no torch).

The runtime, the data layer, the baselines and the demo import these instead of restating
them; where the network needs a rule in torch (model/network.py), a test ties the two forms.
The static page restates them in JavaScript (export/web/rules.js), kept equal by
tests/test_site.py.
"""
from __future__ import annotations

import numpy as np


def last_observed(observed: np.ndarray) -> np.ndarray:
    """[N, S] observed flags -> [N]: the index of each student's last observed semester, -1 for none."""
    steps = np.arange(1, observed.shape[1] + 1)
    return (observed * steps).max(axis=1, initial=0) - 1


def inside_interval(low, actual, high):
    """Whether the actual grade lies in the interval (its ends included); numbers or arrays."""
    return (low <= actual) & (actual <= high)


def cumulative_average(grades) -> float:
    """The mean of the grades given (NaN: missing), equal credits assumed."""
    grades = np.asarray(grades, dtype=np.float64)
    return float(np.nanmean(grades)) if (~np.isnan(grades)).any() else float("nan")
