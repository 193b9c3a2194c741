"""Provides total_estimate(): a population total and its 95 % margin from a simple random sample.

Why this holds for cachetop's sampled mode: Redis places keys in its hash table by SipHash with
a random per-process seed, so the keys in any run of buckets are a uniform random subset of
the keyspace, whatever their names. A sample of n of the N keys then estimates a total
(keys of a prefix, or their bytes) by N/n times the sample's sum; its standard error follows
from the sample variance of the per-key values (0 for keys outside the prefix), with the
finite-population correction. The normal approximation needs a few keys of the prefix in the
sample; a kind of key held by fewer than about 3N/n keys may be missing from it altogether
(the "rule of three"), which the report says as `unseen_bound`.
"""

from __future__ import annotations

import math

Z_95 = 1.959963984540054


def total_estimate(total_in_sample: float, squares_in_sample: float, n: int,
                   population: int, z: float = Z_95) -> tuple[float, float]:
    """Estimate of a population total and its margin (z standard errors).

    Args:
        total_in_sample: sum of the per-key values y_i over the n sampled keys.
        squares_in_sample: sum of y_i squared.
        n: keys in the sample (all of them, not only those with y_i > 0).
        population: keys in the whole keyspace, N.
        z: standard errors in the margin (1.96 for 95 %).

    Returns:
        (estimate, margin); both 0 for an empty sample. A sample of the whole population
        has margin 0.
    """
    if n <= 0 or population <= 0:
        return 0.0, 0.0
    scale = population / n
    estimate = total_in_sample * scale
    if n >= population or n < 2:
        return estimate, 0.0 if n >= population else math.inf
    mean = total_in_sample / n
    variance = max(0.0, (squares_in_sample - n * mean * mean) / (n - 1))
    fpc = 1.0 - n / population
    margin = z * population * math.sqrt(variance / n * fpc)
    return estimate, margin


def unseen_bound(n: int, population: int) -> int:
    """Keys of a kind absent from a sample of n may still number up to about 3N/n (95 %)."""
    if n <= 0:
        return population
    if n >= population:
        return 0
    return math.ceil(3 * population / n)
