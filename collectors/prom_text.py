"""Provides parse_exposition(): a Prometheus text exposition -> families, all or nothing.

The parser is prom_parse's (prometheus_client's semantics at a tenth of its cost, tested against
it); this module adds what a poll needs around it: the sample limit, checked before the parse,
and one-line errors that name the line. Both parsers' time is linear in escaped quotes and line
length now, so no line is refused for its quotes; prom_http still caps lines while reading.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable

from cachetop.collectors.base import CollectError
from cachetop.collectors.prom_parse import (
    ExpositionError,
    Family,
    PromSample,
    count_samples,
    parse_families,
)

__all__ = ["Family", "PromSample", "count_samples", "family_lines", "parse_exposition",
           "sanitize", "sample_limit_error"]

_REASON_MAX_CHARS = 120
_HTML_PREFIXES = ("<!doctype html", "<html", "<head", "<body")


def parse_exposition(
    text: str, check: Callable[[], object] | None = None, *, sample_limit: int | None = None
) -> tuple[Family, ...]:
    """Parse a whole exposition, all or nothing (Prometheus semantics: one bad line fails it all).

    Args:
        text: the decoded body.
        check: called between chunks of the text, e.g. `deadline.left_s`, so a huge body cannot
            keep the poll past its deadline; whatever it raises propagates.
        sample_limit: refuse an exposition of more samples than this, before parsing it, as
            Prometheus's `sample_limit` does; None or 0: no limit.

    Returns:
        The families in exposition order.

    Raises:
        CollectError: "too-large" over the sample limit, with the count; "bad-data" with
            "line N: <reason>" on the first malformed line.
    """
    if sample_limit:
        error = sample_limit_error(text, sample_limit)
        if error is not None:
            raise error
    try:
        families = parse_families(text, check)
    except ExpositionError as exc:
        raise CollectError("bad-data", _parse_error_message(text, exc)) from None
    return tuple(families)


def sample_limit_error(text: str, sample_limit: int) -> CollectError | None:
    """The "too-large" error for an exposition of more than sample_limit samples, else None.
    Counting costs a fraction of a parse (count_samples), so a caller can refuse first."""
    # Lines less those starting with "#" bound the count from above, for the cost of two
    # memchr-speed scans; the exact count (a regex pass) is needed only past the limit.
    if text.count("\n") + 1 - text.count("\n#") - text.startswith("#") <= sample_limit:
        return None
    count = count_samples(text)
    if count <= sample_limit:
        return None
    return CollectError("too-large", f"{count} samples, more than sample_limit {sample_limit}")


def family_lines(text: str, sample_names: Iterable[str], limit: int = 200) -> str:
    """The raw lines (samples, HELP and TYPE) of the given series, for the drill-down view.

    Args:
        text: the exposition the names came from.
        sample_names: full sample names, e.g. `cache_hits_total`, `x_bucket`.
        limit: at most this many lines are returned.
    """
    wanted = set(sample_names)
    wanted |= {_family_base(name) for name in wanted}
    picked: list[str] = []
    for line in io.StringIO(text):
        if len(picked) >= limit:
            break
        if _line_metric_name(line) in wanted:
            picked.append(line.rstrip("\r\n"))
    return "\n".join(picked)


def _parse_error_message(text: str, exc: ExpositionError) -> str:
    if _looks_like_html(text):
        return "not a Prometheus exposition (looks like HTML)"
    return f"line {exc.line}: {sanitize(exc.reason) or 'invalid line'}"


def _looks_like_html(text: str) -> bool:
    return text.lstrip()[:20].lower().startswith(_HTML_PREFIXES)


def sanitize(message: str, max_chars: int = _REASON_MAX_CHARS) -> str:
    """One printable line: control characters escaped, long text cut with an ellipsis."""
    escaped = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in message)
    escaped = " ".join(escaped.split())
    return escaped if len(escaped) <= max_chars else escaped[: max_chars - 1] + "…"


def _line_metric_name(line: str) -> str:
    stripped = line.strip()
    if stripped.startswith("#"):
        parts = stripped.split(None, 3)
        return parts[2] if len(parts) >= 3 and parts[1] in ("HELP", "TYPE") else ""
    end = len(stripped)
    for stop in ("{", " ", "\t"):
        found = stripped.find(stop)
        if found != -1:
            end = min(end, found)
    return stripped[:end]


def _family_base(sample_name: str) -> str:
    for suffix in ("_total", "_bucket", "_count", "_sum"):
        if sample_name.endswith(suffix):
            return sample_name[: -len(suffix)]
    return sample_name
