"""Provides parse_families() and count_samples(): the Prometheus text format, read lean.

prometheus_client's parser costs about 9 µs a sample (an endpoint of 20,000 caches, 40,000
samples: 0.36 s; bench/prom_parse.py), which an endpoint polled every second cannot afford. This
one reads the same language with the same result: the families, samples, labels and values that
prometheus_client's `text_string_to_metric_families` (0.26, default UTF-8 name validation) gives,
or a refusal where it refuses; tests/core/test_prom_parse.py holds it to that, with
prometheus_client as the reference.

Three paths. Runs of plain lines (`name{label="value",...} value`, no escape) are read in bulk:
joined at their quotes and split again into columns, so per sample only a dict is built in
Python (_Parser._columns). Other sample lines go through one regex over their span, a tuple per
line (_ROWS). Anything else (comments, quoted UTF-8 names, `__name__`, more than two values)
takes _general_sample, a port of the reference's own line grammar, quirks included, whose scan
for closing quotes is linear where the reference's is quadratic on escaped quotes.

Deliberate differences: a number too large for a float reads as ±inf, where the reference raises
OverflowError (an integer literal of 400 digits); -0 may read as -0.0 where the reference gives
0; and the error names the line that is wrong (an invalid TYPE is reported on its own line,
where the reference fails on the family's last line).
"""

from __future__ import annotations

import gc
import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby, repeat
from operator import itemgetter
from typing import NamedTuple

# prometheus_client.metrics_core.METRIC_TYPES, written out: importing prometheus_client costs
# 45-70 ms of every start (tests/collectors check the two stay equal).
METRIC_TYPES = ("counter", "gauge", "summary", "histogram", "gaugehistogram", "unknown", "info",
                "stateset")


class PromSample(NamedTuple):
    """One series value. `name` is the full sample name (`x_total`, `x_bucket`), as exposed.

    A tuple, not a dataclass: an endpoint can have tens of thousands of them per poll.
    """

    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class Family:
    """A metric family: its name (counters lose `_total`), type and samples.

    The type is one of prometheus_client's METRIC_TYPES; an untyped family is "unknown".
    """

    name: str
    type: str
    samples: tuple[PromSample, ...]


class ExpositionError(ValueError):
    """The exposition is refused: `line` is 1-based, `reason` one line of text."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


class _LineError(ValueError):
    """A line is refused; the caller knows which line it is."""


CHUNK_CHARS = 1 << 19  # text read per regex call; the deadline is checked between chunks
_CHECK_EVERY_GENERAL_LINES = 1024  # ...and every so many lines on the slow path
_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r"(?!__)[a-zA-Z_][a-zA-Z0-9_]*"  # `__` names are reserved: the slow path refuses them
_VALUE_TEXT = r'[^"\\\n]*+(?:\\.[^"\\\n]*+)*+'
_PAIR = rf'{_LABEL}="{_VALUE_TEXT}"'
_NUMBER = r"[-+.0-9A-Za-z]+"
# One row per line: a plain sample (name, first label, its value, the other labels, value,
# timestamp) or, in the last group, any other line whole.
_ROWS = re.compile(
    rf"^(?:[ \t]*({_NAME})"
    rf'(?:\{{(?:({_LABEL})="({_VALUE_TEXT})"((?:,{_PAIR})*+),?)?\}}[ \t]*|[ \t]+)'
    rf"({_NUMBER})(?:[ \t]+({_NUMBER}))?[ \t\r]*|(.*))$",
    re.MULTILINE,
).findall
_PAIRS = re.compile(rf'({_LABEL})="({_VALUE_TEXT})"').findall
# The lines read in bulk: `name value` or `name{label="value",...} value` with no escape, single
# spaces and nothing else, whose text splits at its quotes into fixed columns. (Reserved `__`
# label names are let through here, and declined by _columns: a lookahead per label costs a
# quarter of this search.)
_PLAIN_PAIR = r'[a-zA-Z_][a-zA-Z0-9_]*+="[^"\\\n]*+"'
_PLAIN_LINE = rf"{_NAME}(?:\{{{_PLAIN_PAIR}(?:,{_PLAIN_PAIR})*+\}})? {_NUMBER}\r?(?:\n|\Z)"
BULK_MIN_LINES = 16  # shorter runs of plain lines cost less row by row
_AFTER_BRACE = itemgetter(slice(2, None))  # `} 42` -> `42`
_COMMENT = re.compile(
    rf"#[ \t]+(HELP|TYPE)[ \t]+({_NAME})(?:[ \t]+([^ \t\n\r\x0b\x0c].*))?", re.DOTALL
).fullmatch
# As prometheus_client checks an unquoted name: `$` also matches before a final "\n" (which an
# escape in an unquoted label name can produce).
_LEGACY_NAME = re.compile(rf"^{_NAME}$").match
_RESERVED_LABEL = re.compile(r"^__.*$").match  # as prometheus_client: `$` also before a "\n"
# Where the reference's "next character not in quotes" scans stop: a quote or a wanted character.
_STOPS = {chars: re.compile('["' + re.escape(chars) + "]") for chars in
          ("{", "}", "=,}", ",}", " \t", string.whitespace)}
_SUFFIXES = {"counter": ("",), "gauge": ("",), "summary": ("_count", "_sum", ""),
             "histogram": ("_count", "_sum", "_bucket")}
_new_sample = tuple.__new__


def parse_families(text: str, check: Callable[[], object] | None = None) -> list[Family]:
    """Parse a whole exposition, all or nothing.

    Args:
        text: the decoded body; lines end with "\\n" (a "\\r" before it is ignored).
        check: called between chunks of text and every so many slow lines (e.g. a deadline's
            `left_s`); whatever it raises propagates.

    Returns:
        The families in exposition order, as prometheus_client groups them: a sample whose name
        its HELP/TYPE family does not allow is a family of its own.

    Raises:
        ExpositionError: the first line prometheus_client would refuse, and why.
    """
    with _gc_paused():
        return _Parser(text, check).run()


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic collector: a parse allocates tens of thousands of tuples and no cycle,
    and the collections they trigger cost a quarter of the parse (bench/prom_parse.py). It is
    enabled again only if it was on, so a caller that turned it off keeps it off."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def count_samples(text: str) -> int:
    """How many sample lines the text has (neither blank nor a comment once stripped): as many
    samples as parse_families returns when the text parses (bar the reference's oddity of
    dropping samples named "" after a HELP without a name).

    Costs a fraction of a parse (only comments and blank lines are matched), so a limit can be
    enforced before the parse.
    """
    return text.count("\n") + 1 - len(_NOT_SAMPLE(text))


_NOT_SAMPLE = re.compile(r"^[^\S\n]*(?:#|$)", re.MULTILINE).findall


@lru_cache(maxsize=4)
def _plain_run(min_lines: int) -> Callable[[str, int, int], re.Match[str] | None]:
    """A search for the next run of at least min_lines plain lines, from a line start."""
    return re.compile(rf"^(?:{_PLAIN_LINE}){{{min_lines},}}+", re.MULTILINE).search


class _Parser:
    """The reference's state machine: the family being read, its type and the sample names it
    allows; anything else closes it."""

    def __init__(self, text: str, check: Callable[[], object] | None) -> None:
        self.text = text
        self.check = check
        self.families: list[Family] = []
        self.name = ""
        self.type = "untyped"
        self.name_line = self.type_line = 0  # the lines that named and typed the family
        self.samples: list[PromSample] = []
        self.allowed: tuple[str, ...] = ()
        self.general_lines = 0

    def run(self) -> list[Family]:
        text, start, line = self.text, 0, 1
        while True:
            cut = text.find("\n", start + CHUNK_CHARS)
            end = len(text) if cut < 0 else cut
            if start and self.check is not None:
                self.check()
            self._chunk(start, end, line)
            if cut < 0:
                break
            line += text.count("\n", start, end) + 1
            start = cut + 1
        self._close(line)
        return self.families

    def _chunk(self, start: int, end: int, line: int) -> None:
        """The lines of text[start:end] (whole lines), the first numbered `line`: runs of plain
        lines in bulk, the lines between them row by row."""
        text, find_run = self.text, _plain_run(BULK_MIN_LINES)
        while True:
            run = find_run(text, start, end)
            if run is None:
                self._rows(start, end, line)
                return
            low, high = run.span()
            if low > start:
                self._rows(start, low - 1, line)
                line += text.count("\n", start, low)
            last = high - 1 if text[high - 1] == "\n" else high
            self._block(low, last, line)
            line += text.count("\n", low, high)
            if high >= end:
                return
            start = high

    def _rows(self, start: int, end: int, first: int) -> None:
        """The lines of text[start:end], the first numbered `first`, one by one."""
        samples, allowed = self.samples, self.allowed
        for line, (name, key, value, more, number, stamp, other) in enumerate(
            _ROWS(self.text, start, end), first
        ):
            if not name:
                self._other(other, line)
            else:
                if more:
                    labels = _many_labels(key, value, more)
                elif key:
                    labels = {key: _unescape(value) if "\\" in value else value}
                else:
                    labels = {}
                try:
                    if labels is None:
                        raise ValueError
                    sample = _new_sample(PromSample, (name, labels, float(number)))
                    if stamp:
                        float(stamp)
                except ValueError:  # a repeated label, a bad number: the slow path says why
                    self._general(self.text[start:end].split("\n")[line - first], line)
                    raise AssertionError("the slow path took a line the fast one refused") from None
                if name in allowed:
                    samples.append(sample)
                    continue
                self._single(sample, line)
            samples, allowed = self.samples, self.allowed

    def _block(self, start: int, end: int, line: int) -> None:
        """Plain lines, text[start:end], the first numbered `line`: in groups of the same
        number of labels, each read in columns; a group that _columns declines goes row by
        row."""
        lines = self.text[start:end].split("\n")
        index = 0
        for quotes, group in groupby(map(str.count, lines, repeat('"'))):
            count = len(tuple(group))
            chunk = lines[index:index + count]
            size = sum(map(len, chunk)) + count - 1
            if not self._columns(chunk, quotes // 2):
                self._rows(start, start + size, line + index)
            start += size + 1
            index += count

    def _columns(self, lines: list[str], labels: int) -> bool:
        """Plain lines with `labels` labels each, as samples of the family being read, at C
        speed: joined at their quotes and split again, every line gives the same columns
        (`name{first=`, its value, `,second=`, its value, ..., `} number`). Returns False,
        having added nothing, unless every name is one the family allows, the label names are
        the same on every line and distinct, and every number reads."""
        if not self.allowed:
            return False
        dicts: list[dict[str, str]]
        numbers: Iterable[str]
        if labels == 0:
            parts = " ".join(lines).split(" ")
            if len(parts) != 2 * len(lines):
                return False
            names, numbers = parts[0::2], parts[1::2]
            dicts = list(map(dict, repeat((), len(lines))))
        else:
            stride = 2 * labels + 1
            parts = '"'.join(lines).split('"')
            if len(parts) != stride * len(lines):
                return False
            heads = parts[0::stride]
            split_heads = {head: head.partition("{") for head in set(heads)}
            first_keys = {parts[2] for parts in split_heads.values()}
            key_pieces = [set(parts[j::stride]) for j in range(2, stride - 1, 2)]
            if len(first_keys) != 1 or any(len(piece) != 1 for piece in key_pieces):
                return False
            keys = (first_keys.pop()[:-1], *(piece.pop()[1:-1] for piece in key_pieces))
            if len(set(keys)) != labels or any(key.startswith("__") for key in keys):
                return False
            names = list(map({h: p[0] for h, p in split_heads.items()}.__getitem__, heads))
            numbers = map(_AFTER_BRACE, parts[stride - 1::stride])
            values = [parts[j::stride] for j in range(1, stride, 2)]
            if labels == 1:
                key = keys[0]
                dicts = [{key: value} for value in values[0]]
            else:
                dicts = [dict(zip(keys, row, strict=True)) for row in zip(*values, strict=True)]
        if not set(names) <= set(self.allowed):
            return False
        try:
            floats = list(map(float, numbers))
        except ValueError:
            return False
        rows = zip(names, dicts, floats, strict=True)
        self.samples.extend(map(_new_sample, repeat(PromSample), rows))
        return True

    def _other(self, text: str, line: int) -> None:
        stripped = text.strip()
        if not stripped:
            return
        if stripped[0] == "#":
            self._comment(stripped, line)
            return
        sample = self._general(stripped, line)
        if sample.name in self.allowed:
            self.samples.append(sample)
        else:
            self._single(sample, line)

    def _general(self, text: str, line: int) -> PromSample:
        self.general_lines += 1
        if self.check is not None and self.general_lines % _CHECK_EVERY_GENERAL_LINES == 0:
            self.check()
        try:
            return _general_sample(text.strip())
        except _LineError as exc:
            raise ExpositionError(line, str(exc)) from None

    def _single(self, sample: PromSample, line: int) -> None:
        """A sample its family does not allow: the family ends, the sample is one of its own."""
        self._close(line)
        self.name, self.type, self.samples, self.allowed = "", "untyped", [], ()
        self.families.append(_family(sample.name, "untyped", [sample], line, line))

    def _close(self, line: int) -> None:
        if self.name:
            self.families.append(_family(self.name, self.type, self.samples,
                                         self.name_line or line, self.type_line or line))

    def _comment(self, text: str, line: int) -> None:
        """HELP and TYPE lines open families; every other comment is ignored."""
        match = _COMMENT(text)
        if match is not None:
            kind, name, rest = match.groups()
            parts = ["#", kind, name] if rest is None else ["#", kind, name, rest]
        else:
            parts = _split_quoted(text, 3)
        if len(parts) < 2:
            return
        name = ""
        if len(parts) > 2:
            if parts[1] not in ("TYPE", "HELP"):
                return
            try:
                name, quoted = _unquote(parts[2])
            except _LineError as exc:
                raise ExpositionError(line, str(exc)) from None
            if not quoted and not _LEGACY_NAME(name):
                raise ExpositionError(line, f"invalid metric name {_shown(name)}")
        if parts[1] == "HELP":
            if name != self.name:
                self._close(line)
                self.name, self.type, self.samples, self.allowed = name, "untyped", [], (name,)
                self.name_line, self.type_line = line, 0
        elif parts[1] == "TYPE":
            if len(parts) < 4:
                raise ExpositionError(line, "TYPE without a type")
            if name != self.name:
                self._close(line)
                self.name, self.samples, self.name_line = name, [], line
            self.type, self.type_line = parts[3], line
            self.allowed = tuple(self.name + s for s in _SUFFIXES.get(parts[3], ("",)))


def _many_labels(key: str, value: str, more: str) -> dict[str, str] | None:
    """The labels of a plain row with several; None when a name repeats (which is refused)."""
    pairs = [(key, value), *_PAIRS(more)]
    labels = {k: _unescape(v) if "\\" in v else v for k, v in pairs}
    return labels if len(labels) == len(pairs) else None


def _unescape(text: str) -> str:
    """`\\\\`, `\\n` and `\\"` read left to right, any other backslash kept (the reference's
    regex substitution): escaped backslashes pair up first, as str.split finds them, and what
    is left between them holds only single backslashes."""
    return "\\".join(part.replace("\\n", "\n").replace('\\"', '"')
                      for part in text.split("\\\\"))


def _family(
    name: str, kind: str, samples: list[PromSample], name_line: int, type_line: int
) -> Family:
    """prometheus_client's build_metric and Metric checks: counters lose `_total` from the
    family name (or, without it, their samples gain it); the name must not be empty."""
    if kind == "counter":
        if name.endswith("_total"):
            name = name[:-6]
        else:
            samples = [PromSample(s.name + "_total", s.labels, s.value) for s in samples]
    if not name or not _encodable(name):
        raise ExpositionError(name_line, f"invalid metric name {_shown(name)}")
    kind = "unknown" if kind == "untyped" else kind
    if kind not in METRIC_TYPES:
        raise ExpositionError(type_line, f"invalid metric type {_shown(kind)}")
    return Family(name, kind, tuple(samples))


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:59] + "…")


# ---- the slow path: prometheus_client's line grammar, ported


def _escaped(text: str, index: int) -> bool:
    """Whether text[index] is preceded by an odd run of backslashes."""
    run = 0
    while index > run and text[index - 1 - run] == "\\":
        run += 1
    return run % 2 == 1


def _next_unquoted(text: str, chars: str, start: int = 0) -> int:
    """The first of `chars` at or after start outside double quotes, or -1. A quote toggles
    unless escaped; nothing else is (a backslash before a comma does not hide it)."""
    search = _STOPS[chars].search
    in_quotes = False
    found = search(text, start)
    while found is not None:
        index = found.start()
        if text[index] != '"':
            if not in_quotes:
                return index
        elif not _escaped(text, index):
            in_quotes = not in_quotes
        found = search(text, index + 1)
    return -1


def _split_quoted(text: str, maxsplit: int) -> list[str]:
    """Whitespace-separated tokens, not splitting inside quotes; the last of maxsplit + 1
    tokens is the rest of the line (the reference's _split_quoted, for comment lines)."""
    tokens = [""]
    position = 0
    while position < len(text):
        split = _next_unquoted(text, string.whitespace, position)
        if split == -1:
            tokens[-1] = text[position:]
            break
        if split == position:
            position += 1
            continue
        if len(tokens) > maxsplit:
            tokens[-1] = text[position:]
            break
        tokens[-1] = text[position:split]
        position = split + 1
        tokens.append("")
    return tokens


def _unquote(text: str) -> tuple[str, bool]:
    """A name or label value without its quotes and escapes, and whether it was quoted."""
    if not text:
        return text, False
    text = text.strip()
    if not text:
        raise _LineError("empty name")
    quoted = text[0] == '"'
    if quoted:
        if len(text) == 1 or text[-1] != '"':
            raise _LineError("missing closing quote")
        text = text[1:-1]
    return (_unescape(text) if "\\" in text else text), quoted


def _general_sample(text: str) -> PromSample:
    """One sample line (stripped), read exactly as prometheus_client reads it."""
    brace = _next_unquoted(text, "{")
    if brace == -1 or " # " in text[:brace]:
        end = _next_unquoted(text, " \t")
        name = text[:end].strip()
        if not _LEGACY_NAME(name):
            raise _LineError(f"invalid metric name {_shown(name)}")
        return PromSample(name, {}, _value_of(text[end + 1:]))
    name = text[:brace].strip()
    close = _next_unquoted(text[brace:], "}") + brace
    if close < brace:  # the reference would read "{..." as the value, and refuse it
        raise _LineError("missing closing brace")
    labels = _labels(text[brace + 1:close])
    if not name:
        if "__name__" not in labels:
            raise _LineError("no metric name")
        name = labels.pop("__name__")
    elif "__name__" in labels:
        raise _LineError("metric name given twice")
    return PromSample(name, labels, _value_of(text[close + 1:]))


def _labels(text: str) -> dict[str, str]:
    """The labels between the braces; an error quotes them whole, as the reference does."""
    try:
        return _read_labels(text)
    except _LineError as exc:
        raise _LineError(f"{exc} in labels {_shown(text)}") from None


def _read_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    rest = text.strip()
    while rest:
        name_term, value_term, rest = _next_term(rest)
        if not value_term:
            continue
        name, quoted = _unquote(name_term)
        if not quoted and not _LEGACY_NAME(name):
            raise _LineError(f"invalid label name {_shown(name)}")
        _check_quoted_value(value_term)
        value, _ = _unquote(value_term)
        if name != "__name__" and (not _encodable(name) or _RESERVED_LABEL(name)):
            raise _LineError(f"invalid label name {_shown(name)}")
        if name in labels:
            raise _LineError(f"label {_shown(name)} given twice")
        labels[name] = value
    return labels


def _next_term(text: str) -> tuple[str, str, str]:
    """The next `name="value"` term: its name (`__name__` when there is no `=`), its value
    text, and the rest of the labels, from the comma on."""
    if text[0] == ",":
        text = text[1:]
        if not text:
            return "", "", ""
        if text[0] == ",":
            raise _LineError("two commas in a row")
    split = _next_unquoted(text, "=,}")
    if split >= 0 and text[split] == "=":
        name = text[:split]
        text = text[split + 1:]
        split = _next_unquoted(text, ",}")
    else:
        name = "__name__"
    if split == -1:
        split = len(text)
    return name, text[:split].strip(), text[split:].strip()


def _check_quoted_value(term: str) -> None:
    """A label value is one quoted string: its first unescaped closing quote ends the term."""
    if not term or term[0] != '"':
        raise _LineError("label value not quoted")
    index = 1
    while index < len(term):
        index = term.find('"', index)
        if index < 0:
            raise _LineError("missing closing quote")
        if not _escaped(term, index):
            break
        index += 1
    if index + 1 != len(term):
        raise _LineError("text after a label value")


def _value_of(text: str) -> float:
    """The first of the whitespace-separated numbers; a second or later one is a timestamp,
    and only the last one is checked (as the reference does)."""
    text = text.lstrip()
    values = [part.strip() for part in text.split(" " if " " in text else "\t") if part.strip()]
    if not values:
        raise _LineError("no value")
    value = _number(values[0])
    if len(values) > 1:
        _number(values[-1])
    return value


def _number(text: str) -> float:
    if "_" not in text:
        try:
            return float(text)
        except ValueError:
            pass
    raise _LineError(f"invalid number {_shown(text)}")
