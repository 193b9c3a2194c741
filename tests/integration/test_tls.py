"""TLS end to end against real TLS servers: redis-server --tls-port and memcached -Z.

The PKI comes from trustme: one CA, a server certificate for localhost/127.0.0.1, one for
`redis.internal` only (reached by IP, it needs tls_server_name), a client certificate, and an
unrelated CA that trusts none of them. Figures are checked against workloads run by an
independent client (redis-py's own SSLConnection, pymemcache with its own context).
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import trustme
from pymemcache.client.base import Client as McClient

from cachetop.actions import ActionError, plan_flush, plan_flushdb
from cachetop.collectors import prom_http
from cachetop.collectors.base import CollectError, Deadline, Target, TlsOptions
from cachetop.fleet import TargetFigures
from cachetop.target_url import parse_target_url
from tests.actions.helpers import confirmed
from tests.integration.helpers import TwoPolls
from tests.servers import MemcachedServer, RedisServer

TIMEOUT_S = 0.5
SLACK_S = 1.5  # generous: CI machines are shared
PASSWORD = "TlsTopSecret-7f3a"


@dataclass(frozen=True)
class Pki:
    ca: str
    other_ca: str
    server_crt: str  # localhost, 127.0.0.1
    server_key: str
    internal_crt: str  # redis.internal only
    internal_key: str
    client_crt: str
    client_key: str


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca, other = trustme.CA(), trustme.CA()
    files = {
        "ca": ca.cert_pem, "other_ca": other.cert_pem,
        **_pair("server", ca.issue_cert("localhost", "127.0.0.1")),
        **_pair("internal", ca.issue_cert("redis.internal")),
        **_pair("client", ca.issue_cert("cachetop-client")),
    }
    for name, blob in files.items():
        blob.write_to_path(str(d / f"{name}.pem"))
    return Pki(**{name: str(d / f"{name}.pem") for name in files})


def _pair(name: str, cert: trustme.LeafCert) -> dict[str, Any]:
    return {f"{name}_crt": cert.cert_chain_pems[0], f"{name}_key": cert.private_key_pem}


def _tls_redis(pki: Pki, crt: str, key: str, *extra: str) -> RedisServer:
    """redis-server with only a TLS port; RedisServer waits on `.port`, so it is the TLS port."""
    server = RedisServer()
    server.args = ["--port", "0", "--tls-port", str(server.port), "--tls-cert-file", crt,
                   "--tls-key-file", key, "--tls-ca-cert-file", pki.ca, *extra]
    server.start()
    return server


@pytest.fixture(scope="module")
def tls_redis(pki: Pki) -> Iterator[RedisServer]:
    server = _tls_redis(pki, pki.server_crt, pki.server_key, "--tls-auth-clients", "no",
                        "--requirepass", PASSWORD)
    yield server
    server.close()


@pytest.fixture(scope="module")
def internal_redis(pki: Pki) -> Iterator[RedisServer]:
    server = _tls_redis(pki, pki.internal_crt, pki.internal_key, "--tls-auth-clients", "no")
    yield server
    server.close()


@pytest.fixture(scope="module")
def mtls_redis(pki: Pki) -> Iterator[RedisServer]:
    server = _tls_redis(pki, pki.server_crt, pki.server_key, "--tls-auth-clients", "yes")
    yield server
    server.close()


@pytest.fixture(scope="module")
def tls_memcached(pki: Pki) -> Iterator[MemcachedServer]:
    chain = f"ssl_chain_cert={pki.server_crt},ssl_key={pki.server_key}"
    server = MemcachedServer("-Z", "-o", chain)
    server.start()
    yield server
    if server.proc is not None:  # SIGKILL: a SIGTERMed memcached that served takes a second
        server.proc.kill()
        server.proc.wait(5)
    server.close()


def rediss(server: RedisServer, **tls: Any) -> Target:
    password = PASSWORD if "--requirepass" in server.args else None
    return parse_target_url(f"rediss://127.0.0.1:{server.port}", name="t", password=password,
                            timeout_s=TIMEOUT_S, tls=TlsOptions(**tls))


def direct(server: RedisServer, pki: Pki, **kwargs: Any) -> redis.Redis:
    """An independent client: redis-py's own SSLConnection, with the right CA."""
    password = PASSWORD if "--requirepass" in server.args else None
    return redis.Redis(host="127.0.0.1", port=server.port, ssl=True, ssl_ca_certs=pki.ca,
                       password=password, **kwargs)


def one_poll(target: Target) -> tuple[TargetFigures, float]:
    polls = TwoPolls(target)
    started = time.monotonic()
    try:
        return polls.poll(), time.monotonic() - started
    finally:
        polls.close()


# -- Redis collector ---------------------------------------------------------------------------


def test_ca_file_gives_up_with_interval_figures(tls_redis: RedisServer, pki: Pki) -> None:
    client = direct(tls_redis, pki)
    client.mset({f"fig:{i}": i for i in range(50)})
    polls = TwoPolls(parse_target_url(f"rediss://127.0.0.1:{tls_redis.port}?ssl_ca_certs={pki.ca}",
                                      password=PASSWORD, timeout_s=TIMEOUT_S))

    def workload() -> None:
        pipe = client.pipeline(transaction=False)
        for i in range(300):
            pipe.get(f"fig:{i % 50}")
        for i in range(100):
            pipe.get(f"absent:{i}")
        pipe.execute()

    figures = polls.around(workload)
    polls.close()
    assert figures.status == "up", figures.error
    assert (figures.hits_delta, figures.misses_delta) == (300, 100)
    assert figures.hit_ratio == pytest.approx(0.75)
    assert figures.keys == client.dbsize()
    assert figures.tls_insecure is False


def test_client_certificate_required(mtls_redis: RedisServer, pki: Pki) -> None:
    with_cert, _ = one_poll(rediss(mtls_redis, ca_file=pki.ca, cert_file=pki.client_crt,
                                   key_file=pki.client_key))
    without, took_s = one_poll(rediss(mtls_redis, ca_file=pki.ca))
    assert with_cert.status == "up", with_cert.error
    assert without.status == "tls-error"
    assert without.error is not None and "client certificate" in without.error
    assert took_s < TIMEOUT_S + SLACK_S


def test_encrypted_client_key_is_refused_without_a_prompt(mtls_redis: RedisServer, pki: Pki,
                                                         tmp_path: Path) -> None:
    """With no password callback OpenSSL reads an encrypted key's pass phrase from the
    terminal: a poll thread would block on it, under the TUI."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(Path(pki.client_key).read_bytes(), None)
    encrypted = tmp_path / "client-encrypted.key"
    encrypted.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass phrase")))
    figures, took_s = one_poll(rediss(mtls_redis, ca_file=pki.ca, cert_file=pki.client_crt,
                                      key_file=str(encrypted)))
    assert figures.status == "tls-error"
    assert figures.error is not None
    assert figures.error.startswith("cannot load tls_cert_file/tls_key_file: the private key "
                                    "is encrypted, and key pass phrases are not supported: ")
    assert took_s < TIMEOUT_S + SLACK_S


def test_server_name_override_for_a_node_reached_by_ip(internal_redis: RedisServer,
                                                      pki: Pki) -> None:
    by_name, _ = one_poll(rediss(internal_redis, ca_file=pki.ca, server_name="redis.internal"))
    by_ip, _ = one_poll(rediss(internal_redis, ca_file=pki.ca))
    assert by_name.status == "up", by_name.error
    assert by_name.version == direct_version(internal_redis, pki)
    assert by_ip.status == "tls-error"
    assert by_ip.error is not None
    assert by_ip.error.startswith("hostname mismatch: certificate is not valid for '127.0.0.1'")
    assert "tls_server_name" in by_ip.error


def direct_version(server: RedisServer, pki: Pki) -> str:
    client = redis.Redis(host="127.0.0.1", port=server.port, ssl=True, ssl_ca_certs=pki.ca,
                         ssl_check_hostname=False)  # redis-py cannot check another name
    return str(client.info("server")["redis_version"])


def test_wrong_ca_is_a_tls_error_in_one_line(tls_redis: RedisServer, pki: Pki) -> None:
    figures, took_s = one_poll(rediss(tls_redis, ca_file=pki.other_ca))
    assert figures.status == "tls-error"
    assert figures.error == ("certificate verify failed: self-signed certificate in "
                             "certificate chain")
    assert took_s < TIMEOUT_S + SLACK_S


def test_unreadable_ca_file_is_a_tls_error(tls_redis: RedisServer, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    figures, _ = one_poll(rediss(tls_redis, ca_file=str(missing)))
    assert figures.status == "tls-error"
    assert figures.error == f"cannot load tls_ca_file: No such file or directory: '{missing}'"


def test_plaintext_and_tls_crossed_ports_end_within_the_deadline(
        tls_redis: RedisServer, redis_server: RedisServer, pki: Pki) -> None:
    plain_to_tls, took_plain_s = one_poll(parse_target_url(
        f"redis://127.0.0.1:{tls_redis.port}", timeout_s=TIMEOUT_S))
    tls_to_plain, took_tls_s = one_poll(rediss(redis_server, ca_file=pki.ca))
    # The TLS port resets a plaintext client; a plaintext Redis waits for the end of a line
    # that a ClientHello never sends, so that handshake can only time out.
    assert plain_to_tls.status == "down"
    assert plain_to_tls.error is not None and "reset" in plain_to_tls.error.lower()
    assert plain_to_tls.error.endswith("(at connect: a TLS-only port? use rediss://)")
    assert tls_to_plain.status == "timeout"
    assert tls_to_plain.error == (f"timeout after {TIMEOUT_S:g}s in the TLS handshake "
                                  "(a hung server, or a port without TLS?)")
    assert took_plain_s < TIMEOUT_S + SLACK_S
    assert took_tls_s < TIMEOUT_S + SLACK_S


def test_verification_off_is_up_and_flagged(tls_redis: RedisServer) -> None:
    target = parse_target_url(f"rediss://127.0.0.1:{tls_redis.port}?ssl_cert_reqs=none",
                              password=PASSWORD, timeout_s=TIMEOUT_S)
    figures, _ = one_poll(target)
    assert figures.status == "up", figures.error
    assert figures.tls_insecure is True


def test_verification_off_shows_a_badge_in_the_fleet_table(tls_redis: RedisServer,
                                                           pki: Pki) -> None:
    from cachetop.tui.app import CachetopApp
    from cachetop.tui.widgets.fleet_table import FleetTable
    from tests.tui.pilot import cell, config_for, wait_for

    config = config_for(f"rediss://:{PASSWORD}@127.0.0.1:{tls_redis.port}?ssl_cert_reqs=none",
                        f"rediss://127.0.0.1:{tls_redis.port}/1?ssl_ca_certs={pki.other_ca}",
                        names=["insecure", "bad-ca"])

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 30)) as pilot:
            table = app.fleet_screen.query_one(FleetTable)
            await wait_for(pilot, lambda: cell(table, "insecure", "status").startswith("● up"))
            assert cell(table, "insecure", "status") == "● up !tls"
            await wait_for(pilot, lambda: cell(table, "bad-ca", "status") == "✖ tls-error")
            assert PASSWORD not in app.export_screenshot()

    asyncio.run(scenario())


# -- memcached collector ------------------------------------------------------------------------


def memcached_tls(server: MemcachedServer, **tls: Any) -> Target:
    return parse_target_url(f"memcached://127.0.0.1:{server.port}", name="m",
                            timeout_s=TIMEOUT_S, tls=TlsOptions(**tls))


def test_memcached_tls_up_and_wrong_ca(tls_memcached: MemcachedServer, pki: Pki) -> None:
    client = McClient(("127.0.0.1", tls_memcached.port), connect_timeout=2, timeout=2,
                      tls_context=ssl.create_default_context(cafile=pki.ca))
    client.set("mk", b"v")
    polls = TwoPolls(memcached_tls(tls_memcached, ca_file=pki.ca))

    def workload() -> None:
        for _ in range(40):
            client.get("mk")
        for i in range(10):
            client.get(f"missing{i}")

    figures = polls.around(workload)
    polls.close()
    wrong, took_s = one_poll(memcached_tls(tls_memcached, ca_file=pki.other_ca))
    plain, _ = one_poll(parse_target_url(f"memcached://127.0.0.1:{tls_memcached.port}",
                                         timeout_s=TIMEOUT_S))
    client.close()
    assert figures.status == "up", figures.error
    assert (figures.hits_delta, figures.misses_delta) == (40, 10)
    assert wrong.status == "tls-error"
    assert wrong.error is not None and wrong.error.startswith("certificate verify failed: ")
    assert took_s < TIMEOUT_S + SLACK_S
    assert plain.status == "down"  # a plaintext client to the TLS port: reset, no hang


def test_memcached_server_name_override(tls_memcached: MemcachedServer, pki: Pki) -> None:
    named, _ = one_poll(memcached_tls(tls_memcached, ca_file=pki.ca, server_name="localhost"))
    wrong, _ = one_poll(memcached_tls(tls_memcached, ca_file=pki.ca, server_name="other.name"))
    assert named.status == "up", named.error
    assert wrong.status == "tls-error"
    assert wrong.error is not None
    assert wrong.error.startswith("hostname mismatch: certificate is not valid for 'other.name'")


# -- actions -----------------------------------------------------------------------------------


def test_flush_by_pattern_over_tls(tls_redis: RedisServer, internal_redis: RedisServer,
                                   pki: Pki) -> None:
    client = direct(tls_redis, pki)
    client.mset({**{f"act:{i}": 1 for i in range(120)}, **{f"keep:{i}": 1 for i in range(7)}})
    plan = plan_flush(rediss(tls_redis, ca_file=pki.ca), b"act:*")
    assert (plan.count, plan.count_exact) == (120, True)
    result = confirmed(plan)
    assert (result.status, result.deleted) == ("done", 120)
    assert client.exists(*[f"act:{i}" for i in range(120)]) == 0
    assert client.exists(*[f"keep:{i}" for i in range(7)]) == 7
    # tls_server_name reaches the actions too: a node known by IP, cert issued for a name.
    named = plan_flushdb(rediss(internal_redis, ca_file=pki.ca, server_name="redis.internal"))
    assert named.target.tls is not None and named.target.tls.server_name == "redis.internal"


def test_action_with_a_bad_ca_refuses_in_one_line(tls_redis: RedisServer, pki: Pki) -> None:
    client = direct(tls_redis, pki)
    client.set("act:left", 1)
    with pytest.raises(ActionError) as caught:
        plan_flush(rediss(tls_redis, ca_file=pki.other_ca), b"act:*")
    assert str(caught.value) == ("t: TLS: certificate verify failed: self-signed certificate "
                                 "in certificate chain")
    assert client.exists("act:left") == 1


def test_memcached_action_over_tls(tls_memcached: MemcachedServer, pki: Pki) -> None:
    client = McClient(("127.0.0.1", tls_memcached.port), connect_timeout=2, timeout=2,
                      tls_context=ssl.create_default_context(cafile=pki.ca))
    client.set("gone", b"v")
    result = confirmed(plan_flushdb(memcached_tls(tls_memcached, ca_file=pki.ca)))
    assert result.status == "done", result.summary
    assert client.get("gone") is None
    client.set("stays", b"v")
    with pytest.raises(ActionError) as caught:
        plan_flushdb(memcached_tls(tls_memcached, ca_file=pki.other_ca))
    assert str(caught.value).startswith("m: TLS: certificate verify failed: ")
    assert "\n" not in str(caught.value)
    assert client.get("stays") == b"v"
    client.close()


# -- the CLI's JSON ----------------------------------------------------------------------------


def test_once_json_statuses_over_tls_and_no_password(
        tls_redis: RedisServer, internal_redis: RedisServer, tls_memcached: MemcachedServer,
        pki: Pki, tmp_path: Path) -> None:
    config = tmp_path / "cachetop.toml"
    config.write_text(f"""
[[targets]]
name = "good"
url = "rediss://127.0.0.1:{tls_redis.port}"
password_env = "TLS_TEST_PW"
tls_ca_file = "{pki.ca}"

[[targets]]
name = "bad-ca"
url = "rediss://127.0.0.1:{tls_redis.port}"
password_env = "TLS_TEST_PW"
tls_ca_file = "{pki.other_ca}"

[[targets]]
name = "by-name"
url = "rediss://127.0.0.1:{internal_redis.port}"
tls_ca_file = "{pki.ca}"
tls_server_name = "redis.internal"

[[targets]]
name = "mc"
url = "memcached://127.0.0.1:{tls_memcached.port}"
tls_ca_file = "{pki.ca}"
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CACHETOP_")}
    env.update(TLS_TEST_PW=PASSWORD, XDG_CONFIG_HOME=str(tmp_path / "no-config"))
    out = subprocess.run(
        [sys.executable, "-m", "cachetop", "--once", "--json", "--interval", "0.3",
         "--config", str(config),
         f"rediss://:{PASSWORD}@127.0.0.1:{tls_redis.port}?ssl_cert_reqs=none"],
        capture_output=True, text=True, timeout=30, env=env, stdin=subprocess.DEVNULL)
    assert out.returncode == 1, out.stderr  # bad-ca is not up: 1 (README's exit codes)
    assert PASSWORD not in out.stdout and PASSWORD not in out.stderr
    docs = {d["name"]: d for d in json.loads(out.stdout)["targets"]}
    insecure = docs[f"127.0.0.1:{tls_redis.port}"]
    assert (insecure["status"], insecure["tls_insecure"]) == ("up", True)
    assert (docs["good"]["status"], docs["good"]["tls_insecure"]) == ("up", False)
    assert docs["bad-ca"]["status"] == "tls-error"
    assert docs["bad-ca"]["error"] == ("certificate verify failed: self-signed certificate in "
                                       "certificate chain")
    assert docs["by-name"]["status"] == "up", docs["by-name"]["error"]
    assert docs["mc"]["status"] == "up", docs["mc"]["error"]



def test_hung_tls_server_is_a_timeout_not_a_tls_error(pki: Pki) -> None:
    """A SIGSTOPped TLS server accepts TCP and never finishes the handshake: that is `timeout`
    (the reconnect's handshake says so), never `tls-error`, and each poll ends in time."""
    server = _tls_redis(pki, pki.server_crt, pki.server_key, "--tls-auth-clients", "no")
    polls = TwoPolls(rediss(server, ca_file=pki.ca))
    try:
        assert polls.poll().status == "up"
        server.freeze()
        seen = []
        for _ in range(2):  # the kept connection's read, then a fresh connection's handshake
            started = time.monotonic()
            figures = polls.poll()
            seen.append((figures.status, figures.error, time.monotonic() - started))
        server.thaw()
    finally:
        polls.close()
        server.close()
    assert [status for status, _, _ in seen] == ["timeout", "timeout"]
    assert seen[1][1] is not None and "TLS handshake" in seen[1][1]
    assert all(took_s < TIMEOUT_S + SLACK_S for _, _, took_s in seen)


# -- metrics endpoint over https ---------------------------------------------------------------

EXPOSITION = b"# TYPE cache_hits_total counter\ncache_hits_total{cache=\"a\"} 42\n"


@pytest.fixture
def https_endpoint(pki: Pki) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(EXPOSITION)))
            self.end_headers()
            self.wfile.write(EXPOSITION)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.internal_crt, pki.internal_key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}/metrics"
    httpd.shutdown()
    httpd.server_close()


def test_metrics_endpoint_tls_errors_are_tls_error(https_endpoint: str, pki: Pki,
                                                   tmp_path: Path) -> None:
    def fetch(**tls: Any) -> str:
        target = parse_target_url(https_endpoint, timeout_s=2.0, tls=TlsOptions(**tls))
        return prom_http.fetch(target, Deadline(2.0))

    assert fetch(ca_file=pki.ca, server_name="redis.internal") == EXPOSITION.decode()
    for tls, message in (
        ({"ca_file": pki.other_ca, "server_name": "redis.internal"},  # the leaf alone is sent
         "certificate verify failed: unable to get local issuer certificate"),
        ({"ca_file": pki.ca}, "hostname mismatch: certificate is not valid for '127.0.0.1'"),
        ({"ca_file": str(tmp_path / "none.pem")}, "cannot load tls_ca_file"),
    ):
        with pytest.raises(CollectError) as caught:
            fetch(**tls)
        assert caught.value.status == "tls-error"
        assert caught.value.message.startswith(message)
