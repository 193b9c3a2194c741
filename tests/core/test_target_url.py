"""Tests for parse_target_url() and redact_url(): every scheme, and errors that leak no secret."""

from __future__ import annotations

from typing import Any

import pytest

from cachetop.collectors.base import TlsOptions
from cachetop.collectors.secret import Secret
from cachetop.errors import ConfigError
from cachetop.target_url import parse_target_url, redact_url

SECRET = "hunter2"

# url -> expected Target fields (password checked separately).
PARSED: list[tuple[str, dict[str, Any]]] = [
    ("redis://127.0.0.1", {"kind": "redis", "address": "127.0.0.1:6379", "host": "127.0.0.1",
                           "port": 6379, "db": 0, "tls": None}),
    ("redis://cache.example:6380/2", {"kind": "redis", "address": "cache.example:6380/2",
                                      "port": 6380, "db": 2}),
    ("redis://h:6379?db=3", {"address": "h:6379/3", "db": 3}),
    ("redis://h:6379/3?db=3", {"db": 3}),
    ("redis://h/0", {"address": "h:6379", "db": 0}),
    ("REDIS://H", {"kind": "redis", "host": "h", "address": "h:6379"}),
    ("redis://[::1]:6379", {"host": "::1", "port": 6379, "address": "[::1]:6379"}),
    ("redis://[::1]", {"host": "::1", "port": 6379, "address": "[::1]:6379"}),
    ("redis://[2001:db8::5]:7000/1", {"host": "2001:db8::5", "address": "[2001:db8::5]:7000/1"}),
    ("rediss://h:6380", {"kind": "redis", "address": "h:6380", "tls": TlsOptions()}),
    ("rediss://h?ssl_cert_reqs=none", {"tls": TlsOptions(verify=False)}),
    ("rediss://h?ssl_cert_reqs=NONE", {"tls": TlsOptions(verify=False)}),
    ("rediss://h?ssl_cert_reqs=required", {"tls": TlsOptions(verify=True)}),
    ("rediss://h?ssl_ca_certs=/etc/ca.pem", {"tls": TlsOptions(ca_file="/etc/ca.pem")}),
    ("unix:///run/redis/redis.sock", {"kind": "redis", "socket_path": "/run/redis/redis.sock",
                                      "address": "unix:/run/redis/redis.sock", "host": None,
                                      "port": None, "db": 0}),
    ("unix:///tmp/r.sock?db=4", {"socket_path": "/tmp/r.sock", "db": 4,
                                 "address": "unix:/tmp/r.sock?db=4"}),
    ("unix:///tmp/my%20dir/r.sock", {"socket_path": "/tmp/my dir/r.sock"}),
    ("memcached://127.0.0.1", {"kind": "memcached", "address": "127.0.0.1:11211",
                               "port": 11211}),
    ("memcached://[::1]:11212", {"kind": "memcached", "address": "[::1]:11212"}),
    ("http://api:9100/metrics", {"kind": "metrics", "address": "http://api:9100/metrics",
                                 "http_url": "http://api:9100/metrics", "port": 9100,
                                 "tls": None}),
    ("http://api:9100", {"http_url": "http://api:9100/metrics"}),
    ("https://api/x/prom?format=text", {"kind": "metrics", "port": 443,
                                        "http_url": "https://api/x/prom?format=text",
                                        "tls": TlsOptions()}),
    ("http://[::1]:8080/m", {"host": "::1", "http_url": "http://[::1]:8080/m"}),
    ("  redis://h  ", {"address": "h:6379"}),
]


@pytest.mark.parametrize(("url", "expected"), PARSED)
def test_parses_every_scheme(url: str, expected: dict[str, Any]) -> None:
    target = parse_target_url(url)
    for name, value in expected.items():
        assert getattr(target, name) == value, name
    assert target.name == target.address
    assert target.password is None


# url -> (username, password) after percent-decoding.
CREDENTIALS = [
    (f"redis://:{SECRET}@h", (None, SECRET)),
    (f"redis://app:{SECRET}@h:6379/1", ("app", SECRET)),
    ("redis://app@h", ("app", None)),
    ("redis://a%40b:p%40ss%2Fw%23rd%3A%25@h", ("a@b", "p@ss/w#rd:%")),
    ("redis://u:p:with:colons@h", ("u", "p:with:colons")),
    ("redis://u:%E2%82%AC@h", ("u", "€")),
    (f"rediss://u:{SECRET}@[::1]:6380", ("u", SECRET)),
    (f"unix://:{SECRET}@/tmp/r.sock", (None, SECRET)),
    (f"http://scraper:{SECRET}@api:9100/metrics", ("scraper", SECRET)),
]


@pytest.mark.parametrize(("url", "expected"), CREDENTIALS)
def test_decodes_credentials_into_a_secret(url: str, expected: tuple[str | None, str]) -> None:
    target = parse_target_url(url)
    username, password = expected
    assert target.username == username
    if password is None:
        assert target.password is None
    else:
        assert isinstance(target.password, Secret)
        assert target.password.reveal() == password
        assert password not in repr(target)
        assert password not in target.address
        assert password not in (target.http_url or "")
        encoded = url.partition("://")[2].rpartition("@")[0].partition(":")[2]
        assert encoded not in repr(target)


def test_http_url_and_address_drop_userinfo() -> None:
    target = parse_target_url(f"https://scraper:{SECRET}@api:9100/metrics")
    assert target.http_url == "https://api:9100/metrics"
    assert target.address == target.http_url
    assert "scraper" not in target.address


def test_name_and_fields_pass_through() -> None:
    tls = TlsOptions(ca_file="/ca.pem", server_name="cache.internal")
    target = parse_target_url("rediss://h?ssl_cert_reqs=none", name="sessions-1", group="g",
                              timeout_s=0.5, read_only=True, tls=tls, password="pw",
                              username="app")
    assert (target.name, target.group, target.timeout_s, target.read_only) == (
        "sessions-1", "g", 0.5, True)
    # Verification stays on only if both the URL and the given options keep it on.
    assert target.tls == TlsOptions(ca_file="/ca.pem", server_name="cache.internal",
                                    verify=False)
    assert target.password == Secret("pw")
    assert target.username == "app"


def test_memcached_takes_tls_options_since_it_has_no_tls_scheme() -> None:
    assert parse_target_url("memcached://h", tls=TlsOptions()).tls == TlsOptions()


@pytest.mark.parametrize("field", ["kind", "address", "host", "port", "socket_path", "db"])
def test_url_derived_fields_cannot_be_overridden(field: str) -> None:
    with pytest.raises(TypeError, match=field):
        parse_target_url("redis://h", **{field: "x"})


# url -> a fragment of the expected problem. Secret-bearing URLs hold SECRET somewhere.
ERRORS = [
    ("ftp://h/file", "unsupported scheme 'ftp'"),
    ("file:///etc/passwd", "unsupported scheme 'file'"),
    ("127.0.0.1:6379", "not a URL"),
    (f"h:{SECRET}@x", "not a URL"),
    ("redis://", "missing host"),
    ("redis://:6379", "missing host"),
    (f"redis://u:{SECRET}@:6379", "missing host"),
    ("memcached://", "missing host"),
    ("http:///metrics", "missing host"),
    ("redis://h:abc", "bad port"),
    ("redis://h:0", "bad port"),
    ("redis://h:65536", "bad port"),
    ("redis://h:-1", "bad port"),
    (f"redis://admin:{SECRET}", "bad port"),  # forgot the host: the password looks like a port
    ("redis://h/abc", "bad db 'abc'"),
    ("redis://h/-1", "bad db"),
    ("redis://h/1/2", "bad db"),
    ("redis://h?db=x", "bad db 'x'"),
    ("redis://h/1?db=2", "db is given twice"),
    ("unix:///tmp/r.sock?db=z", "bad db"),
    (f"redis://u:{SECRET}@x@h", "unencoded '@'"),
    (f"redis://u:{SECRET[:3]}/{SECRET[3:]}@h:6379", "unencoded '/'"),
    (f"redis://u:{SECRET[:3]}#{SECRET[3:]}@h:6379", "unencoded '#'"),
    (f"redis://u:{SECRET[:3]}?{SECRET[3:]}@h:6379", "unencoded '?'"),
    (f"http://u:{SECRET[:3]}/1/{SECRET[3:]}@h:9100/metrics", "unencoded '/'"),
    (f"redis://u:{SECRET}%zz@h", "'%'"),
    (f"redis://u:{SECRET}%FF@h", "not valid UTF-8"),
    (f"redis://u:{SECRET} x@h", "whitespace"),
    ("redis://[::1:6379", "IPv6"),
    ("redis://[::zz]:6379", "IPv6"),
    ("redis://::1:6379", "IPv6 address needs brackets"),
    ("redis://bad_host!:6379", "bad host"),
    ("memcached://u@h", "a memcached username needs a password"),
    ("memcached://h/1", "no path"),
    ("memcached://h?x=1", "unknown query parameter 'x'"),
    ("redis://h?ssl_cert_reqs=none", "needs a rediss:// URL"),
    ("redis://h?foo=1", "unknown query parameter 'foo'"),
    ("redis://h?db=1&db=2", "given twice"),
    (f"redis://h?password={SECRET}", "carry a secret"),
    (f"http://h/metrics?token={SECRET}", "carry a secret"),
    ("rediss://h?ssl_cert_reqs=maybe", "ssl_cert_reqs must be"),
    ("redis://h#frag", "fragment"),
    ("redis://h\n:6379", "whitespace"),
    ("unix://tmp/redis.sock", "must be absolute"),
    ("unix:///tmp/", "must be absolute"),
]


@pytest.mark.parametrize(("url", "problem"), ERRORS)
def test_errors_name_the_problem_and_never_the_password(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_target_url(url)
    message = str(caught.value)
    assert problem in message
    assert "\n" not in message
    for fragment in (SECRET, SECRET[:3] + "/", SECRET[3:]):
        assert fragment not in message
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


@pytest.mark.parametrize(("url", "fields", "problem"), [
    ("redis://h", {"tls": TlsOptions()}, "need a rediss:// URL"),
    ("http://h", {"tls": TlsOptions()}, "need an https:// URL"),
    ("unix:///tmp/r.sock", {"tls": TlsOptions()}, "unix sockets"),
    (f"redis://u:{SECRET}@h", {"password": "other"}, "password is given twice"),
    ("redis://u@h", {"username": "v"}, "username is given twice"),
    ("memcached://h", {"username": "u"}, "username needs a password"),
    ("redis://h", {"name": ""}, "name must be"),
    ("redis://h", {"name": "a\nb"}, "name must be"),
])
def test_field_conflicts_are_config_errors(url: str, fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        parse_target_url(url, **fields)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(("url", "shown"), [
    (f"redis://u:{SECRET}@h:6379/0", "redis://u:***@h:6379/0"),
    (f"redis://:{SECRET}@h", "redis://:***@h"),
    (f"redis://{SECRET}@h", "redis://***@h"),
    (f"redis://u:{SECRET}@x@h", "redis://u:***@h"),
    (f"redis://u:{SECRET[:3]}/{SECRET[3:]}@h", "redis://u:***@h"),
    (f"redis://admin:{SECRET}", "redis://admin:***"),
    ("redis://h:6379", "redis://h:6379"),
    ("redis://[::1]:6379", "redis://[::1]:6379"),
    (f"http://h/m?a=1&token={SECRET}", "http://h/m?a=***&token=***"),  # any name: masked
    (f"https://h/m?access-token={SECRET}&{SECRET}", "https://h/m?access-token=***&***"),
    (f"redis://h?pw={SECRET}&db=1", "redis://h?pw=***&db=1"),  # an unknown name: masked
    ("unix:///tmp/r.sock", "unix:///tmp/r.sock"),
    ("redis://h\n\x1b[2J:6379", "redis://h\\n\\x1b[2J:6379"),
    # The userinfo is found before the scheme: a password holding `://` is not a scheme.
    ("admin:s3cr3t://x@cache-1:6379", "admin:***@cache-1:6379"),
    (":0://@h", ":***@h"),
    ("ftp://:unix@h", "ftp://:***@h"),
    ("admin:s3cr3t://x", "admin:***//x"),
    ("redis://[::1]:pw:x/0", "redis://[::1]:***/0"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_error_echoes_the_redacted_url() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_target_url(f"redis://app:{SECRET}@h:99999")
    assert caught.value.where == "redis://app:***@h:99999"
    assert caught.value.problem.startswith("bad port")


@pytest.mark.parametrize(("url", "expected"), [
    ("redis+cluster://127.0.0.1:7000,127.0.0.1:7001",
     {"kind": "redis-cluster", "address": "127.0.0.1:7000,127.0.0.1:7001", "host": "127.0.0.1",
      "port": 7000, "seeds": ("127.0.0.1:7000", "127.0.0.1:7001"), "tls": None}),
    ("redis+cluster://h", {"seeds": ("h:6379",), "address": "h:6379"}),
    ("rediss+cluster://h:7000?ssl_cert_reqs=none", {"kind": "redis-cluster",
                                                    "tls": TlsOptions(verify=False)}),
    ("redis+sentinel://s1,s2:26380/mymaster",
     {"kind": "redis-sentinel", "seeds": ("s1:26379", "s2:26380"), "master_name": "mymaster",
      "address": "s1:26379,s2:26380/mymaster"}),
    ("rediss+sentinel://[::1]:26379/m.1", {"seeds": ("[::1]:26379",), "tls": TlsOptions()}),
])
def test_topology_urls(url: str, expected: dict[str, Any]) -> None:
    target = parse_target_url(url)
    for field, value in expected.items():
        assert getattr(target, field) == value, field


def test_topology_credentials_are_a_secret() -> None:
    target = parse_target_url(f"redis+cluster://admin:{SECRET}@h:7000,h:7001")
    assert target.username == "admin" and target.password == Secret(SECRET)
    assert SECRET not in repr(target)


@pytest.mark.parametrize(("url", "problem"), [
    ("redis+cluster://h:7000/1", "a cluster URL has no path"),
    ("redis+cluster://h:7000,,h:7001", "an empty entry"),
    ("redis+cluster://h:7000,h:7000", "h:7000 is given twice"),
    ("redis+sentinel://h:26379", "a sentinel URL names its master"),
    ("redis+sentinel://h:26379/bad%20name", "bad master name"),
    ("redis+cluster://h:7000?db=1", "unknown query parameter 'db'"),
    (f"redis+cluster://h:7000,h:{SECRET}", "bad port"),
])
def test_topology_url_errors(url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        parse_target_url(url)
    assert SECRET not in str(caught.value)


def test_redacting_a_host_list_hides_only_a_bad_port() -> None:
    assert redact_url(f"redis+cluster://a:1,b:{SECRET}") == "redis+cluster://a:1,b:***"
    assert redact_url(f"redis+sentinel://u:{SECRET}@a:1,b:2/m") == \
        "redis+sentinel://u:***@a:1,b:2/m"
