"""Alert rules: parsing (one clear line per mistake, no secret echoed) and the hysteresis of
the evaluator, on a clock the test moves."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from cachetop.config import load_config
from cachetop.errors import ConfigError
from cachetop.events.alerts import AlertEvaluator
from cachetop.events.notify import fill
from cachetop.events.rules import parse_condition, rule_from_wire, rule_to_wire
from cachetop.fleet import TargetFigures

UP = TargetFigures(name="r", kind="redis", address="h:1", group="sessions", status="up",
                   interval_s=1.0, hit_ratio=0.95)


def _config(tmp_path: Path, body: str, env: dict[str, str] | None = None) -> object:
    path = tmp_path / "c.toml"
    path.write_text(body)
    path.chmod(0o600)
    return load_config(path, env or {})


def test_a_rule_is_read_with_its_defaults_and_travels_to_the_engine(tmp_path: Path) -> None:
    config = _config(tmp_path, '''
[[alerts]]
name = "hit ratio low"
when = "hit_ratio < 0.80"
for = "30s"
targets = ["group:sessions"]
command = ["notify-send", "{name}", "{target}: {value}"]
webhook_env = "HOOK"
''', {"HOOK": "https://hooks.example/T000/B000/tokentokentoken"})
    (rule,) = config.alerts  # type: ignore[attr-defined]
    assert (rule.for_s, rule.clear_hold_s, str(rule.clear)) == (30.0, 30.0, "hit_ratio >= 0.8")
    assert rule.applies("x", "sessions", "redis") and not rule.applies("x", "pages", "redis")
    assert "tokentoken" not in repr(rule)
    again = rule_from_wire(rule_to_wire(rule))
    assert again == rule


@pytest.mark.parametrize(("body", "says"), [
    ('when = "hit_ratio < high"', "hit_ratio is compared with a number"),
    ('when = "hitratio < 0.8"', "unknown figure 'hitratio'"),
    ('when = "status < \\"down\\""', "status is compared with == or !="),
    ('when = "hit_ratio < 0.8"\nfor = "soon"', "expected a duration"),
    ('when = "hit_ratio < 0.8"\nwebhook = "ftp://u:s3cretpw@h/x"', "expected an http"),
    ('when = "hit_ratio < 0.8"\nwebhook_file = "/nonexistent/s3cretpw"', "cannot read"),
    ('when = "hit_ratio < 0.8"\nsomething = 1', "unknown key 'something'"),
])
def test_a_bad_rule_is_one_line_naming_where_and_never_the_secret(
        tmp_path: Path, body: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, f'[[alerts]]\nname = "r"\n{body}\n')
    message = str(caught.value)
    assert says in message and "alerts[0]" in message and "\n" not in message
    if "webhook =" in body:
        assert "s3cretpw" not in message


def _run(evaluator: AlertEvaluator, timeline: list[tuple[float, bool]]) -> list[tuple[float, str]]:
    """Feed (time, condition true?) points; return when each transition happened."""
    out = []
    for now, bad in timeline:
        figures = replace(UP, hit_ratio=0.5 if bad else 0.95)
        changes = evaluator.observe(0, figures, now)
        out += [(now, "fired" if t.fired else "cleared") for t in changes]
    return out


def test_for_3s_ignores_a_1s_blip_fires_once_on_a_5s_hold_and_clears_once() -> None:
    rule = rule_from_wire({**rule_to_wire(_rule()), "for_s": 3.0})
    evaluator = AlertEvaluator([rule], [("r", "sessions", "redis")])
    points = [i * 0.25 for i in range(80)]  # 0 .. 19.75 s, a poll every 250 ms

    def bad(t: float) -> bool:
        return 2.0 <= t < 3.0 or 6.0 <= t < 11.0  # a 1 s blip, then a 5 s hold

    found = _run(evaluator, [(t, bad(t)) for t in points])
    assert found == [(9.0, "fired"), (14.0, "cleared")]  # 6 + 3, then 11 + 3


def test_an_unknown_figure_neither_fires_nor_clears() -> None:
    evaluator = AlertEvaluator([rule_from_wire({**rule_to_wire(_rule()), "for_s": 1.0})],
                               [("r", "sessions", "redis")])
    down = replace(UP, status="down", hit_ratio=None)
    assert evaluator.observe(0, replace(UP, hit_ratio=0.5), 0.0) == []
    assert evaluator.observe(0, down, 5.0) == []           # no figure: the count is kept
    assert [t.fired for t in evaluator.observe(0, replace(UP, hit_ratio=0.5), 5.1)] == [True]
    assert evaluator.observe(0, down, 10.0) == []
    assert evaluator.state(0, "low") == "firing"


def test_templates_fill_fields_and_leave_other_braces_alone() -> None:
    assert fill("{target}: {value} {x} {{name}}", {"target": "r", "value": "{name}",
                                                   "name": "n"}) == "r: {name} {x} {n}"


def _rule():  # type: ignore[no-untyped-def]
    from cachetop.events.rules import AlertRule

    return AlertRule(name="low", when=parse_condition("hit_ratio < 0.80"))
