"""Provides AlertEvaluator: each rule's state per target, moved on by each new figure.

Pure: no clock (the caller passes `now`, monotonic seconds), no I/O. A rule fires when `when`
has held for `for`, once, and clears when its clear condition has held for the clear time,
once; a blip shorter than either changes nothing. A figure that cannot be computed (a down
target's hit ratio) neither starts nor stops a count, so a rule about hit ratios neither fires
nor clears while its target is down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cachetop.events.rules import FIGURES, AlertRule
from cachetop.fleet import TargetFigures

IDLE, PENDING, FIRING, CLEARING = "idle", "pending", "firing", "clearing"


@dataclass(frozen=True, slots=True)
class Transition:
    """A rule that fired or cleared on a target, with the figure's value then."""

    rule: AlertRule
    target: str
    fired: bool  # False: cleared
    value: float | str | None

    def text(self) -> str:
        value = _shown(self.value, self.rule.when.figure)
        if self.fired:
            return f"{self.rule.name}: {self.rule.when} (now {value})"
        return f"{self.rule.name} cleared (now {value})"


def _shown(value: float | str | None, figure: str) -> str:
    if value is None or isinstance(value, str):
        return str(value)
    if "ratio" in figure:
        return f"{value:.3f}"
    return f"{value:.4g}"


class AlertEvaluator:
    """Rules against targets; `observe` is called with each target's new figures."""

    def __init__(self, rules: Sequence[AlertRule],
                 targets: Sequence[tuple[str, str, str]]) -> None:
        """`targets`: (name, group, kind) of each target, by index."""
        self.rules = tuple(rules)
        self._applies = [[r for r in self.rules if r.applies(*t)] for t in targets]
        # (target index, rule name) -> (state, since)
        self._state: dict[tuple[int, str], tuple[str, float]] = {}

    def state(self, index: int, rule: str) -> str:
        return self._state.get((index, rule), (IDLE, 0.0))[0]

    def observe(self, index: int, figures: TargetFigures, now: float) -> list[Transition]:
        rules = self._applies[index] if index < len(self._applies) else ()
        found: list[Transition] = []
        for rule in rules:
            key = (index, rule.name)
            state, since = self._state.get(key, (IDLE, now))
            if state in (IDLE, PENDING):
                holds = rule.when.holds(figures)
                if holds is None:
                    continue
                if not holds:
                    if state == PENDING:
                        self._state.pop(key, None)
                    continue
                if state == IDLE:
                    state, since = PENDING, now
                if now - since >= rule.for_s:
                    state, since = FIRING, now
                    found.append(Transition(rule, figures.name, True,
                                            FIGURES[rule.when.figure](figures)))
                self._state[key] = (state, since)
            else:
                clears = rule.clear.holds(figures)
                if clears is None:
                    continue
                if not clears:
                    self._state[key] = (FIRING, since)
                    continue
                if state == FIRING:
                    state, since = CLEARING, now
                if now - since >= rule.clear_hold_s:
                    self._state.pop(key, None)
                    found.append(Transition(rule, figures.name, False,
                                            FIGURES[rule.when.figure](figures)))
                else:
                    self._state[key] = (state, since)
        return found
