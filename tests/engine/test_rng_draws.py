"""The kernel's random draws have the distributions they are named for."""

import numpy as np
import pytest
from numba import njit

from sim.rng import LaneRandom, draw_binomial, draw_gamma, draw_poisson


@njit
def _draws(draw, key, ctr, n, arg):
    out = np.empty(n)
    for j in range(n):
        out[j] = draw(key, ctr, 0, 0, arg)
    return out


def _sample(draw, n, arg, seed=7):
    rnd = LaneRandom(np.array([seed]), 1)
    return _draws(draw, rnd.keys[0], rnd.counters, n, arg)


@pytest.mark.parametrize("mean", [0.7, 6.0, 40.0, 300.0])
def test_poisson_draws_have_the_poisson_mean_and_variance(mean):
    """draw_poisson (cold-list arrivals) by inversion below a mean of 50, normal above."""
    x = _sample(draw_poisson, 20000, mean)
    assert abs(x.mean() - mean) < 5 * np.sqrt(mean / len(x))
    assert abs(x.var() / mean - 1.0) < 0.06
    assert np.all(x == np.rint(x)) and x.min() >= 0


@pytest.mark.parametrize("shape", [1.0, 4.0, 63.0, 6300.0])
def test_gamma_draws_have_the_gamma_mean_and_variance(shape):
    """draw_gamma (a pcp list's cycle, and many cycles at once: pcp_clocks)."""
    x = _sample(draw_gamma, 40000, shape, seed=11)
    assert abs(x.mean() - shape) < 5 * np.sqrt(shape / len(x))
    assert abs(x.var() / shape - 1.0) < 0.05
    assert x.min() > 0


@njit
def _draws2(draw, key, ctr, n, arg, arg2):
    out = np.empty(n)
    for j in range(n):
        out[j] = draw(key, ctr, 0, 0, arg, arg2)
    return out


@pytest.mark.parametrize("count,p", [(32.0, 0.9), (32.0, 0.1), (4.0, 0.5), (512.0, 0.5), (512.0, 0.02)])
def test_binomial_draws_have_the_binomial_mean_variance_and_tail(count, p):
    """draw_binomial (an LRU batch's evictions, and the dirty ones among them)."""
    rnd = LaneRandom(np.array([5]), 1)
    x = _draws2(draw_binomial, rnd.keys[0], rnd.counters, 40000, count, p)
    var = count * p * (1 - p)
    assert abs(x.mean() - count * p) < 5 * np.sqrt(var / len(x))
    assert abs(x.var() / var - 1.0) < 0.05
    assert np.all(x == np.rint(x)) and x.min() >= 0 and x.max() <= count
    if (count, p) == (32.0, 0.1):
        # the tail a rounded normal misses: P(X >= 9) = 0.0033 (the normal's: 0.0009)
        assert abs((x >= 9).mean() - 0.0033) < 0.0012
