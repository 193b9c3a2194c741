"""Provides top_caches(): an endpoint's busiest caches, and the rest as one "N more" figure.

An endpoint with a cache per tenant can expose 20,000 caches: a view shows the busiest few and
one row for all the others, and JSON can cut the list the same way. The rest is summed like an
endpoint's own row (metrics.md): rates added, the hit ratio weighted by traffic (ΣΔhits /
ΣΔlookups, never a mean of ratios), so the shown rows plus the rest add up to the endpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from cachetop.metrics.ratios import weighted_hit_ratio


class CacheFigures(Protocol):
    """What top_caches reads of a cache's figures (cachetop.fleet.TargetFigures has it all)."""

    @property
    def live(self) -> bool: ...
    @property
    def ops_per_s(self) -> float | None: ...
    @property
    def hits_delta(self) -> float | None: ...
    @property
    def misses_delta(self) -> float | None: ...
    @property
    def evictions_per_s(self) -> float | None: ...
    @property
    def expirations_per_s(self) -> float | None: ...
    @property
    def memory_used_bytes(self) -> float | None: ...
    @property
    def keys(self) -> float | None: ...


C = TypeVar("C", bound=CacheFigures)


@dataclass(frozen=True, slots=True)
class MoreCaches:
    """The caches not shown, as one figure: sums over the live ones, None where none has it."""

    count: int
    ops_per_s: float | None
    hit_ratio: float | None
    hits_delta: float | None
    misses_delta: float | None
    evictions_per_s: float | None
    expirations_per_s: float | None
    memory_used_bytes: float | None
    keys: float | None

    @property
    def label(self) -> str:
        return f"{self.count:,} more cache{'s' if self.count != 1 else ''}"


@dataclass(frozen=True, slots=True)
class TopCaches(Generic[C]):
    """`shown`: the busiest caches, in the order they were given; `rest`: the others, or None
    when none was left out."""

    shown: tuple[C, ...]
    rest: MoreCaches | None


def top_caches(caches: Sequence[C], limit: int) -> TopCaches[C]:
    """The `limit` caches with the most operations per second, and the others summed.

    A cache without a rate (its first interval, or not live) ranks below every cache with one;
    ties keep the given order, so the choice is stable from one snapshot to the next.

    Raises:
        ValueError: a negative limit.
    """
    if limit < 0:
        raise ValueError(f"the limit must be 0 or more, not {limit}")
    if len(caches) <= limit:
        return TopCaches(tuple(caches), None)
    ranked = sorted(range(len(caches)), key=lambda i: _traffic(caches[i]), reverse=True)
    kept = set(ranked[:limit])
    shown = tuple(c for i, c in enumerate(caches) if i in kept)
    return TopCaches(shown, more_caches([c for i, c in enumerate(caches) if i not in kept]))


def more_caches(caches: Sequence[CacheFigures]) -> MoreCaches:
    """Caches summed into one figure: rates and sizes added, hit ratio weighted by traffic."""
    live = [c for c in caches if c.live]
    return MoreCaches(
        count=len(caches),
        ops_per_s=_total(c.ops_per_s for c in live),
        hit_ratio=weighted_hit_ratio((c.hits_delta, c.misses_delta) for c in live),
        hits_delta=_total(c.hits_delta for c in live),
        misses_delta=_total(c.misses_delta for c in live),
        evictions_per_s=_total(c.evictions_per_s for c in live),
        expirations_per_s=_total(c.expirations_per_s for c in live),
        memory_used_bytes=_total(c.memory_used_bytes for c in live),
        keys=_total(c.keys for c in live),
    )


def _traffic(cache: CacheFigures) -> float:
    rate = cache.ops_per_s if cache.live else None
    return -1.0 if rate is None else rate


def _total(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None
