"""What counts as CI, and the Hypothesis profile CI runs the property tests under."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

from tests.ci import missing, on_ci

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize(("value", "ci"), [
    ("true", True), ("1", True), ("TRUE", True), (" true\n", True),
    ("false", False), ("0", False), ("", False), ("no", False), ("yes", False),
])
def test_ci_is_true_only_for_true_or_1(monkeypatch: pytest.MonkeyPatch, value: str,
                                       ci: bool) -> None:
    monkeypatch.setenv("CI", value)
    assert on_ci() is ci


def test_no_ci_variable_is_not_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert not on_ci()


def test_ci_profile_is_derandomized_without_a_database() -> None:
    ci = settings.get_profile("ci")
    assert ci.derandomize
    assert ci.database is None


@pytest.mark.parametrize(("ci", "profile"), [("true", "ci"), ("1", "ci"), ("false", "dev")])
def test_conftest_loads_the_ci_profile_under_ci(ci: str, profile: str) -> None:
    """In a fresh interpreter, as CI starts pytest: the profile in force is the expected one."""
    probe = ("import tests.conftest\nfrom hypothesis import settings\n"
             "print(settings.default.derandomize, settings.default.database is None)")
    env = {k: v for k, v in os.environ.items() if k != "HYPOTHESIS_PROFILE"}
    env["CI"] = ci
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=60, check=True)
    expected = settings.get_profile(profile)
    assert out.stdout.split() == [str(expected.derandomize), str(expected.database is None)]
    assert out.stdout.split() == (["True", "True"] if profile == "ci" else ["False", "False"])


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception),
                                             ("false", pytest.skip.Exception)])
def test_a_missing_prerequisite_fails_under_ci_and_skips_elsewhere(
        monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="redis-server not found"):
        missing("redis-server not found")
