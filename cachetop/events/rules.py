"""Provides AlertRule and parse_rules: the `[[alerts]]` tables of the config, checked.

A rule's condition is one comparison of a figure of the JSON contract (README, metrics.md)
with a number, or of `status` with a string: `hit_ratio < 0.80`, `p99_ms > 5`,
`status == "down"`. One comparison keeps rules readable and evaluation a getter and an
operator per target; two conditions are two rules. A webhook URL may carry a token (Slack,
Teams): it is held as a Secret, read from the file, `webhook_env` or `webhook_file`, and only
its scheme and host are ever shown.
"""

from __future__ import annotations

import math
import operator
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cachetop.collectors.secret import Secret
from cachetop.errors import ConfigError
from cachetop.fleet import TargetFigures

Getter = Callable[[TargetFigures], float | str | None]


def _live(get: Callable[[TargetFigures], float | None]) -> Getter:
    """A figure as JSON gives it: None unless the target is live (never stale numbers)."""
    return lambda t: get(t) if t.live else None


def _latency(which: str, source: str | None) -> Getter:
    def get(t: TargetFigures) -> float | None:
        if source is None:
            latency = t.server_latency if t.server_latency.known else t.probe_latency
        else:
            latency = t.server_latency if source == "server" else t.probe_latency
        value = getattr(latency, f"{which}_s")
        return None if value is None else float(value) * 1000.0

    return _live(get)


# The target figures of the JSON document; `pNN_ms` is the server's where known, else probe's.
FIGURES: dict[str, Getter] = {
    "status": lambda t: t.status,
    "ops_per_sec": _live(lambda t: t.ops_per_s),
    "hit_ratio": _live(lambda t: t.hit_ratio),
    "lifetime_hit_ratio": _live(lambda t: t.lifetime_hit_ratio),
    "evictions_per_sec": _live(lambda t: t.evictions_per_s),
    "expirations_per_sec": _live(lambda t: t.expirations_per_s),
    "memory_used_bytes": _live(lambda t: t.memory_used_bytes),
    "memory_max_bytes": _live(lambda t: t.memory_max_bytes),
    "memory_ratio": _live(lambda t: t.memory_ratio),
    "connections": _live(lambda t: t.connections),
    "keys": _live(lambda t: t.keys),
    **{f"{p}_ms": _latency(p, None) for p in ("p50", "p95", "p99")},
    **{f"latency_ms.{src}.{p}": _latency(p, src)
       for src in ("server", "probe") for p in ("p50", "p95", "p99")},
}
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}
_CONDITION_RE = re.compile(r'\s*([a-z0-9_.]+)\s*(<=|>=|==|!=|<|>)\s*(.+?)\s*')
_DURATION_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
MAX_COMMAND_ARGS = 64


@dataclass(frozen=True, slots=True)
class Condition:
    figure: str
    op: str
    value: float | str

    def holds(self, t: TargetFigures) -> bool | None:
        """True or False; None when the figure cannot be computed now (no lookups, down)."""
        actual = FIGURES[self.figure](t)
        if actual is None:
            return None
        return OPERATORS[self.op](actual, self.value)

    def negated(self) -> Condition:
        flip = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}
        return Condition(self.figure, flip[self.op], self.value)

    def __str__(self) -> str:
        value = f'"{self.value}"' if isinstance(self.value, str) else repr(self.value)
        return f"{self.figure} {self.op} {value}"


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One rule. `clear_when` defaults to "not when"; it must hold `clear_for_s` (default: the
    rule's `for`) before the rule clears. `rate_limit` caps notifications per minute."""

    name: str
    when: Condition
    for_s: float = 0.0
    clear_when: Condition | None = None
    clear_for_s: float | None = None
    targets: tuple[str, ...] = ("all",)
    command: tuple[str, ...] = ()
    webhook: Secret | None = None
    timeout_s: float = 10.0
    rate_limit: int = 10

    @property
    def clear(self) -> Condition:
        return self.clear_when if self.clear_when is not None else self.when.negated()

    @property
    def clear_hold_s(self) -> float:
        return self.for_s if self.clear_for_s is None else self.clear_for_s

    def applies(self, name: str, group: str, kind: str) -> bool:
        for selector in self.targets:
            if selector == "all" or selector == name:
                return True
            scope, _, value = selector.partition(":")
            if (scope == "group" and value == group) or (scope == "kind" and value == kind):
                return True
        return False


def parse_condition(text: str) -> Condition:
    match = _CONDITION_RE.fullmatch(text)
    if match is None:
        raise ValueError("expected FIGURE OP VALUE, like hit_ratio < 0.80 or status == \"down\"")
    figure, op, raw = match.groups()
    if figure not in FIGURES:
        raise ValueError(f"unknown figure {figure!r}; figures: {', '.join(FIGURES)}")
    if figure == "status":
        if op not in ("==", "!=") or not re.fullmatch(r'"[a-z-]+"', raw):
            raise ValueError('status is compared with == or != to a quoted status: "down"')
        return Condition(figure, op, raw.strip('"'))
    try:
        number = float(raw)
    except ValueError:
        raise ValueError(f"{figure} is compared with a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{figure} is compared with a finite number")
    return Condition(figure, op, number)


def parse_duration(value: object) -> float:
    """`30s`, `5m`, `1.5h`, `250ms` or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION_RE.fullmatch(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError('expected a duration such as "30s", "5m" or a number of seconds')
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("expected a duration of 0 or more")
    return seconds


def webhook_host(url: Secret) -> str:
    """What may be shown of a webhook URL: its scheme and host (the path often is the token)."""
    parts = urllib.parse.urlsplit(url.reveal())
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if _port(parts) else "")


def _port(parts: urllib.parse.SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


_KEYS = {"name", "when", "for", "clear_when", "clear_for", "targets", "command", "webhook",
         "webhook_env", "webhook_file", "timeout", "rate_limit"}


def _webhook(raw: Mapping[str, Any], env: Mapping[str, str], base: Path) -> Secret | None:
    given = [k for k in ("webhook", "webhook_env", "webhook_file") if k in raw]
    if len(given) > 1:
        raise ValueError(f"give one of {', '.join(given)}")
    if not given:
        return None
    key = given[0]
    value = raw[key]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key}: expected a non-empty string")
    if key == "webhook_env":
        if value not in env:
            raise ValueError(f"webhook_env: the environment has no {value}")
        url = env[value].strip()
    elif key == "webhook_file":
        path = Path(os.path.expanduser(value))
        try:
            url = (path if path.is_absolute() else base / path).read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"webhook_file: cannot read {value}: "
                             f"{getattr(exc, 'strerror', None) or 'not text'}") from None
    else:
        url = value.strip()
    if urllib.parse.urlsplit(url).scheme not in ("http", "https") or "\n" in url:
        raise ValueError(f"{key}: expected an http:// or https:// URL")  # never echo it
    return Secret(url)


def _rule(raw: object, env: Mapping[str, str], base: Path) -> AlertRule:
    if not isinstance(raw, dict):
        raise ValueError("expected an [[alerts]] table")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}; keys: {', '.join(sorted(_KEYS))}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or not name.isprintable():
        raise ValueError("name: expected a one-line name")
    if not isinstance(raw.get("when"), str):
        raise ValueError("when: expected a condition such as \"hit_ratio < 0.80\"")
    when = parse_condition(raw["when"])
    clear = raw.get("clear_when")
    if clear is not None and not isinstance(clear, str):
        raise ValueError("clear_when: expected a condition")
    targets = raw.get("targets", ["all"])
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(targets, list) or not targets or not all(
            isinstance(t, str) and t for t in targets):
        raise ValueError("targets: expected names, group:NAME, kind:KIND or all")
    command = raw.get("command", [])
    if isinstance(command, str):
        command = [command]
    if not isinstance(command, list) or not all(isinstance(a, str) for a in command) or len(
            command) > MAX_COMMAND_ARGS or (command and not command[0]):
        raise ValueError("command: expected an array of strings, the program first")
    rate = raw.get("rate_limit", 10)
    if isinstance(rate, bool) or not isinstance(rate, int) or rate < 1:
        raise ValueError("rate_limit: expected notifications per minute, 1 or more")
    timeout = parse_duration(raw.get("timeout", 10.0))
    if timeout <= 0:
        raise ValueError("timeout: must be more than 0")
    return AlertRule(
        name=name, when=when, for_s=parse_duration(raw.get("for", 0)),
        clear_when=parse_condition(clear) if clear is not None else None,
        clear_for_s=parse_duration(raw["clear_for"]) if "clear_for" in raw else None,
        targets=tuple(targets), command=tuple(command), webhook=_webhook(raw, env, base),
        timeout_s=timeout, rate_limit=rate)


def parse_rules(raw: object, file: str, env: Mapping[str, str]) -> tuple[AlertRule, ...]:
    """The `[[alerts]]` array of a config file; a ConfigError names the rule and the key."""
    if not isinstance(raw, list):
        raise ConfigError("expected [[alerts]] tables", where=f"{file}: alerts")
    rules: list[AlertRule] = []
    for index, item in enumerate(raw):
        try:
            rule = _rule(item, env, Path(file).parent)
        except ValueError as exc:
            raise ConfigError(str(exc), where=f"{file}: alerts[{index}]") from None
        if any(r.name == rule.name for r in rules):
            raise ConfigError(f"name {rule.name!r} is already used",
                              where=f"{file}: alerts[{index}]")
        rules.append(rule)
    return tuple(rules)


# -- the private channel to the engine (the webhook travels revealed, as passwords do) -------

def rule_to_wire(rule: AlertRule) -> dict[str, Any]:
    return {"name": rule.name, "when": str(rule.when), "for_s": rule.for_s,
            "clear_when": str(rule.clear_when) if rule.clear_when else None,
            "clear_for_s": rule.clear_for_s, "targets": list(rule.targets),
            "command": list(rule.command),
            "webhook": rule.webhook.reveal() if rule.webhook else None,
            "timeout_s": rule.timeout_s, "rate_limit": rule.rate_limit}


def rule_from_wire(doc: Mapping[str, Any]) -> AlertRule:
    clear = doc.get("clear_when")
    webhook = doc.get("webhook")
    return AlertRule(
        name=str(doc["name"]), when=parse_condition(str(doc["when"])),
        for_s=float(doc["for_s"]), clear_when=parse_condition(clear) if clear else None,
        clear_for_s=None if doc.get("clear_for_s") is None else float(doc["clear_for_s"]),
        targets=tuple(doc["targets"]), command=tuple(doc["command"]),
        webhook=Secret(webhook) if webhook else None, timeout_s=float(doc["timeout_s"]),
        rate_limit=int(doc["rate_limit"]))


def rules_to_wire(rules: Sequence[AlertRule]) -> list[dict[str, Any]]:
    return [rule_to_wire(r) for r in rules]
