"""Provides parse_exposition(): Prometheus text exposition -> families, behind one parser choice.

This is the only module that knows which parser is in use (prometheus_client's, the reference
parser of the format). Everything else sees the neutral `Family` and `PromSample` records, so the
parser can be swapped without touching the convention mappers.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TextIO, cast

from prometheus_client.parser import text_fd_to_metric_families

from collectors.base import CollectError

# The parser raises these on a malformed line; anything else is a bug and must not be masked.
_PARSE_ERRORS = (ValueError, IndexError, KeyError, TypeError)
_CHECK_EVERY_LINES = 4096
_CHECK_EVERY_CHARS = 1 << 20  # long lines: check the deadline by volume too, not only by lines
# prometheus_client finds each label value's closing quote by slicing the line once per escaped
# quote, which is quadratic (1.28 MB of \" took 6.3 s, reliability.md section 5). Legitimate lines
# carry a few dozen quotes; more than this is refused before the parser sees the line. Comments
# (HELP text) are parsed by a regex, in linear time, and are exempt.
MAX_QUOTES_PER_LINE = 512
MAX_LINE_CHARS = 64 * 1024  # as prom_http.MAX_LINE_BYTES, for text that did not come through it
_REASON_MAX_CHARS = 120
_HTML_PREFIXES = ("<!doctype html", "<html", "<head", "<body")


@dataclass(frozen=True, slots=True)
class PromSample:
    """One series value. `name` is the full sample name (`x_total`, `x_bucket`), as exposed."""

    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class Family:
    """A metric family: its name (the parser strips `_total` from counters), type and samples."""

    name: str
    type: str
    samples: tuple[PromSample, ...]


def parse_exposition(text: str, check: Callable[[], object] | None = None) -> tuple[Family, ...]:
    """Parse a whole exposition, all or nothing (Prometheus semantics: one bad line fails it all).

    The parser is a generator that fails lazily, after yielding earlier families, so the whole
    generator is consumed here inside the try.

    Args:
        text: the decoded body.
        check: called every few thousand lines, e.g. `deadline.left_s`, so a huge body cannot
            keep the poll past its deadline; whatever it raises propagates.

    Returns:
        The families in exposition order.

    Raises:
        CollectError: "bad-data" with "line N: <reason>" on the first malformed line;
            "too-large" for a line over MAX_LINE_CHARS or MAX_QUOTES_PER_LINE.
    """
    position = [0]
    try:
        metrics = list(text_fd_to_metric_families(_as_textio(_numbered(text, position, check))))
    except _PARSE_ERRORS as exc:
        raise CollectError("bad-data", _parse_error_message(text, position[0], exc)) from None
    return tuple(_family(metric) for metric in metrics)


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


def _family(metric: Any) -> Family:
    samples = tuple(PromSample(str(s.name), dict(s.labels), float(s.value)) for s in metric.samples)
    return Family(str(metric.name), str(metric.type), samples)


def _numbered(text: str, position: list[int], check: Callable[[], object] | None) -> Iterator[str]:
    """Yield the lines of text, recording the current line number in position[0], refusing the
    lines the parser would take too long on."""
    chars_since_check = 0
    for number, line in enumerate(io.StringIO(text), 1):
        position[0] = number
        chars_since_check += len(line)
        if check is not None and (number % _CHECK_EVERY_LINES == 0
                                  or chars_since_check > _CHECK_EVERY_CHARS):
            chars_since_check = 0
            check()
        if len(line) > MAX_LINE_CHARS:
            raise CollectError("too-large",
                               f"line {number} longer than {MAX_LINE_CHARS} characters")
        if line.count('"') > MAX_QUOTES_PER_LINE and not line.lstrip().startswith("#"):
            raise CollectError("too-large",
                               f"line {number} has more than {MAX_QUOTES_PER_LINE} quotes")
        yield line


def _as_textio(lines: Iterator[str]) -> TextIO:
    # The parser only iterates over its argument; a line iterator lets us count lines for free.
    return cast(TextIO, lines)


def _parse_error_message(text: str, line_number: int, exc: Exception) -> str:
    if _looks_like_html(text):
        return "not a Prometheus exposition (looks like HTML)"
    lines = text.splitlines()
    number = _confirm_line(lines, line_number)
    reason = sanitize(str(exc)) or "invalid line"
    return f"line {number}: {reason}"


def _confirm_line(lines: list[str], line_number: int) -> int:
    """The failing line. Errors the parser raises while closing a family (an invalid TYPE)
    surface on a later line, so when the counted line is fine alone, scan line by line."""
    if 0 < line_number <= len(lines) and not _line_parses(lines[line_number - 1]):
        return line_number
    for number, line in enumerate(lines, 1):
        if not _line_parses(line):
            return number
    return line_number


def _line_parses(line: str) -> bool:
    try:
        list(text_fd_to_metric_families(io.StringIO(line + "\n")))
    except _PARSE_ERRORS:
        return False
    return True


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
