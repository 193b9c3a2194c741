"""Provides Notifier: runs an alert's command and webhook off the poll loop.

Each notification gets a daemon thread of its own (at most MAX_IN_FLIGHT at once), so a hung
webhook holds only its thread, up to the rule's timeout, and never a poll or another
notification. A rule sends at most `rate_limit` notifications a minute (a fleet-wide outage
firing one rule on 1,000 targets must not make 1,000 calls); what the limit or the in-flight
cap drops, and every failure, is reported as an `alert-error` event. A webhook's URL is never
shown beyond its scheme and host.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from cachetop.events.alerts import Transition
from cachetop.events.model import ALERT_ERROR
from cachetop.events.rules import webhook_host
from cachetop.text_safety import plain

MAX_IN_FLIGHT = 32
_FIELD_RE = re.compile(r"\{([a-z]+)\}")
Emit = Callable[[str, str, str], object]


def fill(template: str, values: Mapping[str, str]) -> str:
    """`{name}`, `{target}`, `{value}`, `{state}`, `{when}` replaced; other braces kept as
    they are (no str.format: a value holding braces must not be read as a field)."""
    return _FIELD_RE.sub(lambda m: values.get(m.group(1), m.group(0)), template)  # one pass


def payload(t: Transition, at: float) -> dict[str, Any]:
    return {"rule": t.rule.name, "target": t.target, "state": "firing" if t.fired else "cleared",
            "when": str(t.rule.when), "value": t.value,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))}


class Notifier:
    """Dispatches firing transitions; `emit(kind, target, text)` reports trouble."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self._sent: dict[str, deque[float]] = {}  # rule -> monotonic times of the last minute
        self._dropped: dict[str, int] = {}
        self._in_flight = 0
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def notify(self, t: Transition) -> None:
        """Start the rule's command and webhook for a firing transition; never blocks."""
        rule = t.rule
        if not t.fired or not (rule.command or rule.webhook):
            return
        now = time.monotonic()
        sent = self._sent.setdefault(rule.name, deque())
        while sent and now - sent[0] >= 60.0:
            sent.popleft()
        if len(sent) >= rule.rate_limit:
            self._drop(t, f"rate limit of {rule.rate_limit}/min reached")
            return
        with self._lock:
            if self._in_flight >= MAX_IN_FLIGHT:
                busy = True
            else:
                busy = False
                self._in_flight += 1
        if busy:
            self._drop(t, f"{MAX_IN_FLIGHT} notifications still running")
            return
        sent.append(now)
        threading.Thread(target=self._run, args=(t, time.time()), name="alert-notify",
                         daemon=True).start()

    def _drop(self, t: Transition, why: str) -> None:
        count = self._dropped[t.rule.name] = self._dropped.get(t.rule.name, 0) + 1
        self.emit(ALERT_ERROR, t.target,
                  f"{t.rule.name}: notification skipped ({why}; {count} skipped so far)")

    def _run(self, t: Transition, at: float) -> None:
        try:
            if t.rule.command:
                self._command(t, at)
            if t.rule.webhook is not None:
                self._webhook(t, at)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _command(self, t: Transition, at: float) -> None:
        values = {"name": t.rule.name, "target": t.target, "state": "firing",
                  "value": str(t.value), "when": str(t.rule.when)}
        argv = [fill(a, values) for a in t.rule.command]
        program = plain(argv[0], 80)
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, timeout=t.rule.timeout_s, check=False)
        except subprocess.TimeoutExpired:
            self.emit(ALERT_ERROR, t.target, f"{t.rule.name}: command {program} still running "
                      f"after {t.rule.timeout_s:g}s: killed")
            return
        except OSError as exc:
            self.emit(ALERT_ERROR, t.target,
                      f"{t.rule.name}: command {program} could not start: {exc.strerror}")
            return
        if done.returncode != 0:
            said = plain(done.stderr.decode("utf-8", "replace").strip().splitlines()[-1]
                         if done.stderr.strip() else "", 200)
            self.emit(ALERT_ERROR, t.target, f"{t.rule.name}: command {program} exited with "
                      f"status {done.returncode}" + (f": {said}" if said else ""))

    def _webhook(self, t: Transition, at: float) -> None:
        assert t.rule.webhook is not None
        host = webhook_host(t.rule.webhook)
        body = json.dumps(payload(t, at), ensure_ascii=True).encode("ascii")
        request = urllib.request.Request(t.rule.webhook.reveal(), data=body, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "User-Agent": "cachetop-alert"})
        try:
            with urllib.request.urlopen(request, timeout=t.rule.timeout_s) as response:
                response.read(65536)
        except urllib.error.HTTPError as exc:
            why = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            why = "timed out" if "timed out" in str(reason) else type(reason).__name__
            if isinstance(reason, OSError) and reason.strerror:
                why = reason.strerror
        else:
            return
        self.emit(ALERT_ERROR, t.target, f"{t.rule.name}: webhook to {host} failed: {why}")
