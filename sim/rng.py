"""Counter-based random numbers per simulation lane.

A lane (one point x one policy) draws its k-th number of stream s as a hash of
(seed, s, k). Its draws therefore depend only on its own seed and history, never
on which other lanes share the batch; and the policies of one point, which share
a seed, see the same numbers in the same order (common random numbers).

`LaneRandom` holds the per-lane keys and per-(stream, lane) counters. The
flush-cycle kernel draws inside numba with `draw_uniform`, which computes the
same hash as `LaneRandom.uniform`, so both produce the same streams.
"""

from __future__ import annotations

import numpy as np
from .jit_cache import njit  # numba's, with sim's cache stamp installed

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_ONE = np.uint64(1)
_TWO53 = 9007199254740992.0


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection on uint64 with good avalanche."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


class LaneRandom:
    """Uniform (0, 1) draws per lane and named stream."""

    def __init__(self, seeds: np.ndarray, num_streams: int):
        with np.errstate(over="ignore"):
            self._keys = _mix(np.asarray(seeds, dtype=np.uint64) * _GOLDEN + np.uint64(1))
        self._counters = np.zeros((num_streams, len(self._keys)), dtype=np.uint64)

    @property
    def keys(self) -> np.ndarray:
        """Per-lane hash keys, uint64[n]."""
        return self._keys

    @property
    def counters(self) -> np.ndarray:
        """Draws taken so far, uint64[num_streams, n]; kernels advance it in place."""
        return self._counters

    def uniform(self, stream: int, active: np.ndarray | None = None) -> np.ndarray:
        k = self._counters[stream]
        with np.errstate(over="ignore"):
            z = _mix(self._keys ^ _mix((k + np.uint64(1)) * _GOLDEN + np.uint64(stream) * _M2))
        if active is None:
            k += np.uint64(1)
        else:
            k += active.astype(np.uint64)
        # 53 random bits, shifted off zero so that log(u) is finite
        return ((z >> np.uint64(11)).astype(np.float64) + 0.5) / _TWO53

    def exponential(self, stream: int, rate: np.ndarray, active=None) -> np.ndarray:
        """Waiting time of a Poisson process of `rate`; inf where the rate is 0."""
        u = self.uniform(stream, active)
        with np.errstate(divide="ignore"):
            return np.where(rate > 0, -np.log(u) / np.where(rate > 0, rate, 1.0), np.inf)

    def normal(self, stream: int, active=None) -> np.ndarray:
        u1 = self.uniform(stream, active)
        u2 = self.uniform(stream, active)
        return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


# --- the same streams, one draw at a time, for numba kernels -----------------

@njit(cache=True, inline="always")
def _mix1(z):
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def draw_uniform(key, counters, stream, lane):
    """Next uniform (0, 1) of `stream` for `lane`; advances counters[stream, lane]."""
    k = counters[stream, lane] + _ONE
    counters[stream, lane] = k
    z = _mix1(key ^ _mix1(k * _GOLDEN + np.uint64(stream) * _M2))
    return (np.float64(z >> np.uint64(11)) + 0.5) / _TWO53


@njit(cache=True, inline="always")
def draw_exponential(key, counters, stream, lane, rate):
    """Waiting time of a Poisson process of `rate`; inf where the rate is 0 (the draw is taken anyway)."""
    u = draw_uniform(key, counters, stream, lane)
    if rate > 0:
        return -np.log(u) / rate
    return np.inf


@njit(cache=True, inline="always")
def draw_normal(key, counters, stream, lane):
    u1 = draw_uniform(key, counters, stream, lane)
    u2 = draw_uniform(key, counters, stream, lane)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


@njit(cache=True)
def draw_gamma(key, counters, stream, lane, shape):
    """A Gamma(shape, 1) variate for shape >= 1 (Marsaglia and Tsang's squeeze-free
    rejection: three uniforms a try, about 1.02 tries at shape 1 and fewer above)."""
    d = shape - 1.0 / 3.0
    c = 1.0 / np.sqrt(9.0 * d)
    while True:
        z = draw_normal(key, counters, stream, lane)
        v = 1.0 + c * z
        u = draw_uniform(key, counters, stream, lane)
        if v <= 0:
            continue
        v = v * v * v
        if np.log(u) < 0.5 * z * z + d - d * v + d * np.log(v):
            return d * v


@njit(cache=True)
def draw_binomial(key, counters, stream, lane, n, p):
    """A Binomial(n, p) count, by inversion of one uniform walked from the lighter side
    where its variance is at most 50; above, from a normal (two more draws). The uniform
    is taken anyway, so the stream stays aligned. (A batch's evictions: from a rounded
    normal, an LRU batch of 32 folios at 90% evicted demoted 9 or more one time in
    1100, where one in 300 does in the kernel and the reference.)"""
    u = draw_uniform(key, counters, stream, lane)
    if n <= 0 or p <= 0:
        return 0.0
    if p >= 1:
        return n
    var = n * p * (1.0 - p)
    if var > 50.0:
        z = draw_normal(key, counters, stream, lane)
        return min(max(np.rint(n * p + np.sqrt(var) * z), 0.0), n)
    flip = p > 0.5
    q = 1.0 - p if flip else p
    odds = q / (1.0 - q)
    pmf = (1.0 - q) ** n
    cdf = pmf
    k = 0.0
    while u > cdf and k < n:
        pmf *= odds * (n - k) / (k + 1.0)
        k += 1.0
        cdf += pmf
    return n - k if flip else k


@njit(cache=True)
def draw_poisson(key, counters, stream, lane, mean):
    """A Poisson count of `mean`, by inversion of one uniform; above a mean of 50, where
    the inversion's terms underflow and the normal approximation is good, from a
    normal (two more draws). The uniform is taken anyway, so a zero mean keeps the
    stream aligned."""
    u = draw_uniform(key, counters, stream, lane)
    if mean <= 0:
        return 0.0
    if mean > 50.0:
        z = draw_normal(key, counters, stream, lane)
        return max(np.rint(mean + np.sqrt(mean) * z), 0.0)
    p = np.exp(-mean)
    cdf = p
    k = 0.0
    while u > cdf and p > 0:
        k += 1.0
        p *= mean / k
        cdf += p
    return k
