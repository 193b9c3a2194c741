"""Provides sizes_from_keysizes(): Redis 8's INFO KEYSIZES histograms as a SizeDistribution.

Redis 8 keeps, per db and type, how many keys fall in each power-of-two size range (string
bytes, collection items), updated as keys change: the whole keyspace's distribution without a
scan. Lines look like `db0_distrib_strings_sizes:2=1,4=3,1K=2` (bucket lower bound=keys; K, M,
G, T, P are powers of 1024).
"""

from __future__ import annotations

from cachetop.keys.model import SizeDistribution

_TYPES = {"strings": "string", "lists": "list", "sets": "set", "zsets": "zset",
          "hashes": "hash"}
_SUFFIX = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}


def parse_bound(text: str) -> int:
    """`512`, `1K`, `4M` -> bytes or items. Raises ValueError on anything else."""
    text = text.strip()
    if text and text[-1] in _SUFFIX:
        return int(text[:-1]) * _SUFFIX[text[-1]]
    return int(text)


def sizes_from_keysizes(raw: bytes | str, db: int) -> SizeDistribution | None:
    """The histograms of db `db` from an INFO KEYSIZES reply; None when the server has none
    (Redis < 8 answers an unknown section with nothing)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    head = f"db{db}_distrib_"
    by_type: dict[str, dict[int, float]] = {}
    units: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition(":")
        if not sep or not name.startswith(head):
            continue
        kind, _, unit = name[len(head):].rpartition("_")
        type_name = _TYPES.get(kind)
        if type_name is None:
            continue
        buckets: dict[int, float] = {}
        for part in value.split(","):
            bound, eq, count = part.partition("=")
            if not eq:
                continue
            try:
                buckets[parse_bound(bound)] = float(int(count))
            except ValueError:
                continue
        by_type[type_name] = dict(sorted(buckets.items()))
        units[type_name] = "bytes" if unit == "sizes" else "items"
    if not by_type and "keysizes" not in text.lower():
        return None
    return SizeDistribution("INFO KEYSIZES (the server's own counts, every key)", by_type,
                            units)
