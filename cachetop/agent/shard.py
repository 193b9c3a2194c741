"""Provides the agent's `--shard I/N`: which targets of a shared config this agent polls.

The split is Prometheus's `hashmod` relabelling (the low 64 bits of the MD5 of the target's
name, big-endian, modulo N), so N agents given one config agree on it without talking, a
target keeps its agent while the fleet grows, and a Prometheus `hashmod` on the `target` label
with the same N picks the same shares.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cachetop.collectors.base import Target


@dataclass(frozen=True, slots=True)
class Shard:
    """Share `index` (1-based, as typed) of `count`."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """`I/N` with 1 <= I <= N; ValueError with the reason otherwise."""
    left, slash, right = text.partition("/")
    try:
        index, count = int(left), int(right)
    except ValueError:
        raise ValueError(f"{text!r} is not I/N (e.g. 1/2)") from None
    if not slash or count < 1 or not 1 <= index <= count:
        raise ValueError(f"{text!r}: I/N needs 1 <= I <= N (e.g. 1/2)")
    return Shard(index, count)


def hashmod(name: str, modulus: int) -> int:
    """Prometheus relabel `hashmod`: low 8 bytes of md5(name), big-endian, modulo `modulus`."""
    digest = hashlib.md5(name.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest[8:], "big") % modulus


def shard_targets(targets: Sequence[Target], shard: Shard | None) -> list[Target]:
    """The targets this shard polls, in configured order (all of them without a shard)."""
    if shard is None:
        return list(targets)
    return [t for t in targets if hashmod(t.name, shard.count) == shard.index - 1]
