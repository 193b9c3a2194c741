"""Provides PrometheusApi: instant and range queries against a Prometheus-compatible HTTP API
(Prometheus, Thanos, VictoriaMetrics), with basic auth or a bearer token.

Credentials come from the URL's userinfo (basic auth) or a token (file or environment); the
URL kept and shown is always the redacted one, and an error names the API, never a secret.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from cachetop.target_url import redact_url

TIMEOUT_S = 10.0
MAX_BODY_BYTES = 64 * 1024 * 1024


class ApiError(Exception):
    """The API could not be reached or refused a query (one line, no secret)."""


Vector = list[tuple[dict[str, str], float]]
Matrix = list[tuple[dict[str, str], list[tuple[float, float]]]]


class PrometheusApi:
    def __init__(self, url: str, *, token: str | None = None,
                 tls: ssl.SSLContext | None = None, timeout_s: float = TIMEOUT_S) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{redact_url(url)!r} is not an http(s):// URL of a Prometheus API")
        self.shown = redact_url(url)
        netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        if parts.port is not None:
            netloc += f":{parts.port}"
        self.base = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"),
                                             "", ""))
        self._headers: dict[str, str] = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        elif parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
            basic = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {basic}"
        self._tls = tls
        self.timeout_s = timeout_s

    def _get(self, path: str, params: Mapping[str, str]) -> Any:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s,
                                        context=self._tls) as response:
                body = response.read(MAX_BODY_BYTES + 1)
        except urllib.error.HTTPError as exc:
            detail = _error_of(exc.read(65536))
            raise ApiError(f"{self.shown}: HTTP {exc.code}"
                           + (f": {detail}" if detail else "")) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise ApiError(f"{self.shown}: {reason}") from None
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(f"{self.shown}: an answer larger than {MAX_BODY_BYTES >> 20} MiB")
        try:
            doc = json.loads(body)
        except ValueError:
            raise ApiError(f"{self.shown}: not a Prometheus API (no JSON)") from None
        if not isinstance(doc, dict) or doc.get("status") != "success":
            raise ApiError(f"{self.shown}: {_error_of(body) or 'the query failed'}")
        return doc.get("data")

    def query(self, promql: str, at: float | None = None) -> Vector:
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", params)
        if not isinstance(data, dict) or data.get("resultType") not in ("vector", "scalar"):
            raise ApiError(f"{self.shown}: an instant query did not answer a vector")
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(dict(item.get("metric", {})), float(item["value"][1]))
                for item in data.get("result", [])]

    def query_range(self, promql: str, start: float, end: float, step_s: float) -> Matrix:
        data = self._get("/api/v1/query_range", {
            "query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}",
            "step": f"{step_s:.3f}"})
        if not isinstance(data, dict) or data.get("resultType") != "matrix":
            raise ApiError(f"{self.shown}: a range query did not answer a matrix")
        return [(dict(item.get("metric", {})),
                 [(float(t), float(v)) for t, v in item.get("values", [])])
                for item in data.get("result", [])]

    def scrape_interval_s(self, default: float = 15.0) -> float:
        """The longest scrape interval of the active targets (the rate window's floor)."""
        try:
            data = self._get("/api/v1/targets", {"state": "active"})
        except ApiError:
            return default
        found = [_seconds(t.get("scrapeInterval", "")) for t in
                 (data or {}).get("activeTargets", []) if isinstance(t, dict)]
        known = [s for s in found if s is not None]
        return max(known) if known else default


def _seconds(text: str) -> float | None:
    """A Prometheus duration such as `15s`, `1m`, `1m30s`, `500ms`."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    total, number = 0.0, ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = "ms" if text.startswith("ms", i) else ch
        if unit not in units or not number:
            return None
        total += float(number) * units[unit]
        number = ""
        i += len(unit)
    return total if not number and total > 0 else None


def _error_of(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return ""
    return str(doc.get("error", ""))[:200] if isinstance(doc, dict) else ""


def first_value(vector: Sequence[tuple[Mapping[str, str], float]]) -> float | None:
    return vector[0][1] if vector else None
