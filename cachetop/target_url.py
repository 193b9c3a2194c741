"""Provides parse_target_url(): one target URL -> Target, and redact_url() to show URLs safely.

Every error is a ConfigError whose text holds no credential: URLs are echoed only through
redact_url(), and parts that may be a mangled password (a bad port, a query name) are not echoed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit, urlunsplit

from cachetop.collectors.secret import Secret
from cachetop.errors import ConfigError

# The command line's parser (cli_parser) needs only redact_url; the dashboard's first frame
# waits for what it imports (issue 11). Target loads with the first URL parsed.
if TYPE_CHECKING:
    from cachetop.collectors.base import Target, TlsOptions

SCHEMES = ("redis", "rediss", "unix", "memcached", "http", "https", "redis+cluster",
           "rediss+cluster", "redis+sentinel", "rediss+sentinel")
DEFAULT_PORTS = {"redis": 6379, "rediss": 6379, "memcached": 11211, "http": 80, "https": 443,
                 "redis+cluster": 6379, "rediss+cluster": 6379, "redis+sentinel": 26379,
                 "rediss+sentinel": 26379}
DEFAULT_METRICS_PATH = "/metrics"  # Prometheus's own default metrics_path.

# Fields that only the URL may set: passing them alongside would make two sources of truth.
_URL_FIELDS = frozenset({"kind", "address", "host", "port", "socket_path", "http_url", "db",
                         "seeds", "master_name"})
# Query parameters that carry secrets; redis-py and many exporters accept some of them.
_SECRET_PARAMS = frozenset(
    {
        "password",
        "pass",
        "passwd",
        "pwd",
        "secret",
        "token",
        "access_token",
        "auth",
        "api_key",
        "apikey",
    }
)
_REDIS_PARAMS = frozenset({"db"})
_REDISS_PARAMS = frozenset({"db", "ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile"})
_CERT_REQS_VERIFY = {"none": False, "optional": True, "required": True}  # client side: same
_PERCENT_ENCODED = {"@": "%40", "/": "%2F", "?": "%3F", "#": "%23", ":": "%3A", "%": "%25"}
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_LEADING_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_HOST_RE = re.compile(r"[A-Za-z0-9_.-]+")
_PORT_RE = re.compile(r"[0-9]{1,5}")
_DB_RE = re.compile(r"[0-9]{1,5}")
_SAFE_RE = re.compile(r"[A-Za-z0-9_.-]{1,40}")
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_MASTER_NAME_RE = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
_SPACE_RE = re.compile(r"\s")  # what str.isspace() calls whitespace


def parse_target_url(url: str, *, name: str | None = None,
                     public_params: Collection[str] = (), **fields: Any) -> Target:
    """Turn one target URL into a Target; no sockets are opened.

    Supported: `redis://[user:password@]host[:port][/db]` (also `?db=N`), `rediss://` (TLS;
    `?ssl_cert_reqs=none` turns verification off), `unix:///path/redis.sock[?db=N]`,
    `memcached://host[:port]`, `http(s)://[user:password@]host[:port][/path]` (a metrics
    endpoint; the path defaults to /metrics). Userinfo is percent-decoded, and IPv6 hosts go
    in brackets: `redis://[::1]:6379`. Whole topologies:
    `redis+cluster://[user:password@]host:port[,host:port...]` (seed nodes; also
    `rediss+cluster://`) and `redis+sentinel://[user:password@]host:port[,...]/MASTER_NAME`
    (sentinels, default port 26379; also `rediss+sentinel://`).

    Args:
        url: The URL. Leading and trailing whitespace is ignored.
        name: Display name; defaults to the credential-free address.
        public_params: Query parameters of a metrics URL whose values may be shown; every
            other value is `***` in the address and the default name (a token under any
            name stays out of the dashboard and JSON). The request uses the real URL.
        **fields: Further Target fields (timeout_s, group, read_only, ...). `username` and
            `password` (str or Secret) add credentials the URL lacks; `tls` gives TLS options,
            which are merged with the URL's (verification stays on only if both keep it on).

    Returns:
        The Target. Its repr holds no password: the password is a Secret.

    Raises:
        ConfigError: the URL is unusable; `problem` says why, `where` is the redacted URL.
        TypeError: `fields` names a field that only the URL may set, or no Target field.
    """
    clash = _URL_FIELDS & fields.keys()
    if clash:
        raise TypeError(f"parse_target_url: {', '.join(sorted(clash))} come from the URL")
    try:
        return _parse(url.strip(), name, frozenset(public_params), fields)
    except ConfigError as exc:
        # `from None`: urllib's own errors may quote pieces of the password.
        raise ConfigError(exc.problem, where=redact_url(url.strip())) from None


def redact_url(url: str) -> str:
    """The URL with its password and query values replaced by `***`, for messages: any name
    may carry a token; only the Redis URL's own options (db, ssl_*) are shown.

    Works on malformed URLs too. The userinfo is found before anything else is decided: all up
    to the last '@' is userinfo, after a leading `scheme://` if there is one, so a password
    that holds `://` (`admin:s3cr3t://x@host`) is never taken for a scheme. Without an '@', a
    port that is not a port (a password when the host is missing) is hidden.
    """
    at = url.rfind("@")
    if at >= 0:
        head, rest = url[:at], url[at + 1 :]
        match = _LEADING_SCHEME_RE.match(head)
        prefix = match.group(0) if match else ""
        user, colon, _ = head[len(prefix) :].partition(":")
        shown = f"{prefix}{user}:***@" if colon else f"{prefix}***@"
    else:
        match = _LEADING_SCHEME_RE.match(url)
        prefix = shown = match.group(0) if match else ""
        rest = _hide_bad_port(url[len(prefix) :])
    scheme = prefix.removesuffix("://").lower()
    public = frozenset() if scheme in ("http", "https") else _REDISS_PARAMS
    shown_url = f"{shown}{_redact_query(rest, public)}"
    # Escape control characters so that an error stays one line on a terminal.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown_url)


def _hide_bad_port(rest: str) -> str:
    """Hide what follows the host's ':' unless it is a port: `admin:hunter2` lacks a host.

    The host ends at its first ':' (after the brackets of an IPv6 address), so that all of a
    password holding ':' is hidden.
    """
    end = _authority_end(rest)
    authority, tail = rest[:end], rest[end:]
    if "," in authority:  # a cluster's or a Sentinel set's host list: each entry on its own
        return ",".join(_hide_bad_port(piece) for piece in authority.split(",")) + tail
    bracket = authority.find("]") + 1 if authority.startswith("[") else 0
    host, colon, port = authority[bracket:].partition(":")
    if not colon or _valid_port(port):
        return rest
    return f"{authority[:bracket]}{host}:***{tail}"


def _redact_query(rest: str, public: frozenset[str] = frozenset()) -> str:
    """`rest` with every query value masked but those of the `public` names."""
    before, q, query = rest.partition("?")
    if not q:
        return rest
    query, hashsign, fragment = query.partition("#")
    pairs = []
    for pair in query.split("&"):
        key, eq, _ = pair.partition("=")
        if unquote(key) in public or not pair:
            pairs.append(pair)
        else:
            pairs.append(f"{key}=***" if eq else "***")  # `?<token>`: a value without a name
    return f"{before}?{'&'.join(pairs)}{hashsign}{fragment}"


def _parse(url: str, name: str | None, public: frozenset[str],
           fields: dict[str, Any]) -> Target:
    scheme = _scheme(url)
    _check_raw(url)
    try:
        parts = urlsplit(url)
    except ValueError:  # urllib raises only for unbalanced IPv6 brackets
        raise ConfigError("invalid IPv6 address: unbalanced brackets") from None
    if parts.fragment:
        raise ConfigError("a URL fragment ('#...') has no meaning here")
    handler = {
        "redis": _redis,
        "rediss": _redis,
        "unix": _unix,
        "memcached": _memcached,
        "http": _http,
        "https": _http,
    }.get(scheme, _topology)
    place = handler(parts, scheme)
    if place["kind"] == "metrics":
        place["address"] = _redact_query(place["address"], public)
    elif public:
        raise ConfigError("public_params applies only to http(s) metrics URLs")
    base_scheme = scheme.partition("+")[0]
    place["tls"] = _tls(base_scheme, place.pop("query", {}), fields.pop("tls", None))
    username, password = _credentials(parts, base_scheme, fields)
    display = name if name is not None else place["address"]
    if not display.strip() or not display.isprintable():
        raise ConfigError("name must be a non-empty, printable, single line")
    from cachetop.collectors.base import Target

    return Target(name=display, username=username, password=password, **place, **fields)


def _scheme(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    if not sep or not _SCHEME_RE.fullmatch(scheme):
        raise ConfigError("not a URL: expected scheme://host, e.g. redis://127.0.0.1:6379")
    if scheme.lower() not in SCHEMES:
        raise ConfigError(f"unsupported scheme {scheme.lower()!r} (use {', '.join(SCHEMES)})")
    return scheme.lower()


def _authority_end(rest: str) -> int:
    """Index where the authority (userinfo@host:port) of `rest` ends, as urllib splits it."""
    ends = [i for i in (rest.find(c) for c in "/?#") if i >= 0]
    return min(ends, default=len(rest))


def _check_raw(url: str) -> None:
    """Reject userinfo that urllib would split in the wrong place, before it mis-parses it.

    An unencoded '/', '?' or '#' in a password ends the authority early, so the rest of the
    password would become a path or a port; two '@' make the split ambiguous.
    """
    if _SPACE_RE.search(url):
        raise ConfigError("the URL contains whitespace; percent-encode it as %20")
    rest = url.partition("://")[2]
    end = _authority_end(rest)
    authority, tail = rest[:end], rest[end:]
    if "@" in tail:
        c = rest[end]
        raise ConfigError(
            f"'@' follows an unencoded {c!r}: if the password or username holds {c!r}, "
            f"percent-encode it as {_PERCENT_ENCODED[c]}"
        )
    if authority.count("@") > 1:
        raise ConfigError("the password or username holds an unencoded '@'; encode it as %40")
    if _BAD_ESCAPE_RE.search(authority.rpartition("@")[0]):
        raise ConfigError(
            "the password or username holds a '%' that starts no %XX escape; encode '%' as %25"
        )


def _valid_port(raw: str) -> bool:
    return bool(_PORT_RE.fullmatch(raw)) and 1 <= int(raw) <= 65535


def _host_port(parts: SplitResult, default_port: int) -> tuple[str, int, str]:
    """(host, port, display `host:port`) of a TCP URL; IPv6 hosts are displayed in brackets."""
    return _split_host_port(parts.netloc.rpartition("@")[2], default_port)


def _split_host_port(hostinfo: str, default_port: int) -> tuple[str, int, str]:
    if hostinfo.startswith("["):
        inner, _, after = hostinfo[1:].partition("]")
        host, raw_port = inner, after[1:] if after.startswith(":") else after
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError("invalid IPv6 address in brackets") from None
    else:
        host, colon, raw_port = hostinfo.partition(":")
        if ":" in raw_port:
            raise ConfigError("an IPv6 address needs brackets, e.g. redis://[::1]:6379")
        if not colon:
            raw_port = ""
        if not host:
            raise ConfigError("missing host")
        if not _HOST_RE.fullmatch(host):
            raise ConfigError("bad host name: use letters, digits, '.', '-' or '_'")
    if raw_port and not _valid_port(raw_port):
        raise ConfigError("bad port: expected a number from 1 to 65535")  # may be a password
    port = int(raw_port) if raw_port else default_port
    host = host.lower()
    shown = f"[{host}]" if ":" in host else host
    return host, port, f"{shown}:{port}"


def _query(parts: SplitResult, scheme: str, allowed: frozenset[str] | None) -> dict[str, str]:
    """Query parameters as a dict; `allowed=None` accepts any name that holds no secret."""
    seen: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        shown = repr(key) if _SAFE_RE.fullmatch(key) else "(unprintable)"
        if key.lower() in _SECRET_PARAMS:
            raise ConfigError(
                f"query parameter {shown} would carry a secret in the URL; "
                "use the userinfo or password_env instead"
            )
        if key in seen:
            raise ConfigError(f"query parameter {shown} is given twice")
        if allowed is not None and key not in allowed:
            needs_tls = scheme == "redis" and key.startswith("ssl_")
            hint = " (it needs a rediss:// URL)" if needs_tls else ""
            raise ConfigError(f"unknown query parameter {shown}{hint}")
        seen[key] = value
    return seen


def _db(path_db: str, query_db: str | None) -> int:
    if path_db and query_db is not None and path_db != query_db:
        raise ConfigError("db is given twice, differently: in the path and in ?db=")
    raw = query_db if query_db is not None else path_db
    if raw == "":
        return 0
    if not _DB_RE.fullmatch(raw):
        shown = repr(raw) if _SAFE_RE.fullmatch(raw) else "(unprintable)"
        raise ConfigError(f"bad db {shown}: expected a number >= 0")
    return int(raw)


def _redis(parts: SplitResult, scheme: str) -> dict[str, Any]:
    host, port, hostport = _host_port(parts, DEFAULT_PORTS[scheme])
    query = _query(parts, scheme, _REDISS_PARAMS if scheme == "rediss" else _REDIS_PARAMS)
    db = _db(parts.path.removeprefix("/"), query.get("db"))
    address = f"{hostport}/{db}" if db else hostport
    return {
        "kind": "redis",
        "address": address,
        "host": host,
        "port": port,
        "db": db,
        "query": query,
    }


def _topology(parts: SplitResult, scheme: str) -> dict[str, Any]:
    """A cluster's seed nodes or a Sentinel set's sentinels, comma-separated."""
    base, _, kind = scheme.partition("+")
    hostinfo = parts.netloc.rpartition("@")[2]
    seeds: list[tuple[str, int, str]] = []
    for piece in hostinfo.split(","):
        if not piece:
            raise ConfigError("missing host (an empty entry in the host list)")
        seed = _split_host_port(piece, DEFAULT_PORTS[scheme])
        if any(s[2] == seed[2] for s in seeds):
            raise ConfigError(f"{seed[2]} is given twice in the host list")
        seeds.append(seed)
    query = _query(parts, base, _REDISS_PARAMS - {"db"} if base == "rediss" else frozenset())
    address = ",".join(shown for _, _, shown in seeds)
    master_name = ""
    if kind == "cluster":
        if parts.path not in ("", "/"):
            raise ConfigError("a cluster URL has no path (a cluster has only database 0)")
    else:
        master_name = unquote(parts.path.removeprefix("/"))
        if not master_name:
            raise ConfigError("a sentinel URL names its master: "
                              "redis+sentinel://host:26379/mymaster")
        if not _MASTER_NAME_RE.fullmatch(master_name):
            raise ConfigError("bad master name: use letters, digits, '.', ':', '-' or '_'")
        address += f"/{master_name}"
    return {"kind": f"redis-{kind}", "address": address, "host": seeds[0][0],
            "port": seeds[0][1], "seeds": tuple(shown for _, _, shown in seeds),
            "master_name": master_name, "query": query}


def _unix(parts: SplitResult, scheme: str) -> dict[str, Any]:
    if parts.netloc.rpartition("@")[2]:
        raise ConfigError("a unix socket path must be absolute: unix:///path/redis.sock")
    path = unquote(parts.path)
    if not path.startswith("/") or path.endswith("/") or "\x00" in path:
        raise ConfigError("a unix socket path must be absolute: unix:///path/redis.sock")
    db = _db("", _query(parts, scheme, _REDIS_PARAMS).get("db"))
    address = f"unix:{path}?db={db}" if db else f"unix:{path}"
    return {"kind": "redis", "address": address, "socket_path": path, "db": db}


def _memcached(parts: SplitResult, scheme: str) -> dict[str, Any]:
    host, port, hostport = _host_port(parts, DEFAULT_PORTS[scheme])
    if parts.path not in ("", "/"):
        raise ConfigError("a memcached URL has no path (memcached has no databases)")
    _query(parts, scheme, frozenset())
    return {"kind": "memcached", "address": hostport, "host": host, "port": port}


def _http(parts: SplitResult, scheme: str) -> dict[str, Any]:
    host, port, _ = _host_port(parts, DEFAULT_PORTS[scheme])
    _query(parts, scheme, None)
    hostinfo = parts.netloc.rpartition("@")[2].lower()
    url = urlunsplit((scheme, hostinfo, parts.path or DEFAULT_METRICS_PATH, parts.query, ""))
    return {"kind": "metrics", "address": url, "host": host, "port": port, "http_url": url}


def _tls(scheme: str, query: dict[str, str], given: TlsOptions | None) -> TlsOptions | None:
    """TLS options from `fields` merged with the URL's; `verify` stays on only if both say so."""
    if scheme == "memcached":
        return given  # memcached has no TLS scheme: TLS options are how TLS is switched on
    if scheme not in ("rediss", "https"):
        if given is not None:
            needs = {"redis": "a rediss://", "http": "an https://"}.get(scheme)
            raise ConfigError(
                f"TLS options need {needs} URL"
                if needs
                else "TLS options do not apply to unix sockets"
            )
        return None
    reqs = query.get("ssl_cert_reqs", "required").lower()
    if reqs not in _CERT_REQS_VERIFY:
        raise ConfigError("ssl_cert_reqs must be none, optional or required")
    from cachetop.collectors.base import TlsOptions

    base = given or TlsOptions()
    return TlsOptions(
        ca_file=base.ca_file or query.get("ssl_ca_certs"),
        cert_file=base.cert_file or query.get("ssl_certfile"),
        key_file=base.key_file or query.get("ssl_keyfile"),
        server_name=base.server_name,
        verify=base.verify and _CERT_REQS_VERIFY[reqs],
    )


def _credentials(
    parts: SplitResult, scheme: str, fields: dict[str, Any]
) -> tuple[str | None, Secret | None]:
    """Decoded URL userinfo merged with `username`/`password` from fields (popped)."""
    url_user = _decode(parts.username, "username")
    url_password = _decode(parts.password, "password")
    user = fields.pop("username", None) or None
    password = fields.pop("password", None)
    if isinstance(password, str):
        password = Secret(password) if password else None
    if user and url_user and user != url_user:
        raise ConfigError("the username is given twice, differently: in the URL and separately")
    if password is not None and url_password is not None:
        raise ConfigError("the password is given twice: in the URL and separately")
    if password is None and url_password is not None:
        password = Secret(url_password)
    user = user or url_user
    if scheme == "memcached" and user and password is None:
        raise ConfigError("a memcached username needs a password (memcached -Y ASCII auth)")
    return user, password


def _decode(raw: str | None, what: str) -> str | None:
    if not raw:
        return None
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise ConfigError(f"the {what} is not valid UTF-8 after percent-decoding") from None
