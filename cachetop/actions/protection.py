"""Provides Guard and Protection: the protections of the instance an action writes to.

`read_only` and `env = "prod"` belong to the instance, not to the name it was called by: a
URL, another config target's name and `--db` all reach the same keys. So an action resolves
where it will write (host to addresses, port, db; a unix socket to its real path) and takes
the strictest protection of every config target covering that place, plus every read-only
switch that is on. Read-only is sticky: a source that says read-only cannot be overruled by
another that says not (config.py keeps CACHETOP_READ_ONLY=0 from turning the file's off).

Resolving a host name may block on DNS: call Guard.protection from a worker thread.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from cachetop.actions.safety import PROD_ENVS
from cachetop.collectors.base import Target
from cachetop.text_safety import plain

CACHE_KINDS = ("redis", "memcached")
LOCAL = "local"  # every address of this machine reaches a server bound to all of them

Resolver = Callable[[str, int], frozenset[str]]


@dataclass(frozen=True, slots=True)
class Protection:
    """What protects one instance (one Redis db, or one memcached).

    `read_only_by` names each source that makes it read-only; `prod` the prod config targets
    covering it (the action's own target first when it is one); `covered_by` every config
    target that covers it, for the audit record.
    """

    read_only_by: tuple[str, ...] = ()
    prod: tuple[str, ...] = ()
    covered_by: tuple[str, ...] = ()

    def refusal(self, name: str) -> str | None:
        """Why no write may run (None when writes are allowed)."""
        if not self.read_only_by:
            return None
        return (f"refused: read-only ({'; '.join(self.read_only_by)}); {plain(name)} accepts "
                "no write actions")

    @property
    def confirm_name(self) -> str | None:
        """The name to type to confirm a write: the prod target's."""
        return self.prod[0] if self.prod else None

    def describe(self) -> tuple[str, ...]:
        """Short lines for the preview and the audit record."""
        lines = [f"read-only: {source}" for source in self.read_only_by]
        lines += [f"prod: {plain(name)}" for name in self.prod]
        return tuple(lines)


def _is_local(address: ipaddress.IPv4Address | ipaddress.IPv6Address,
              local: frozenset[str]) -> bool:
    return address.is_loopback or address.is_unspecified or str(address) in local


def _local_addresses() -> frozenset[str]:
    try:
        import psutil

        return frozenset(a.address.split("%", 1)[0] for nic in psutil.net_if_addrs().values()
                         for a in nic if a.family in (socket.AF_INET, socket.AF_INET6))
    except (ImportError, OSError):
        return frozenset()


def resolve_host(host: str, port: int) -> frozenset[str]:
    """The addresses `host` resolves to, any address of this machine as LOCAL; the name
    itself (lowercased) when it does not resolve, so two unresolvable spellings still match."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return frozenset({host.lower().rstrip(".")})
    local = _local_addresses()
    out: set[str] = set()
    for info in infos:
        try:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        except ValueError:
            continue
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        out.add(LOCAL if _is_local(address, local) else str(address))
    return frozenset(out) or frozenset({host.lower().rstrip(".")})


@dataclass(frozen=True, slots=True)
class _Place:
    """Where writes land: addresses + port, or a socket's real path; and the db."""

    addresses: frozenset[str]
    port: int
    db: int | None  # None for memcached (no databases)

    def covers(self, other: _Place) -> bool:
        if self.port != other.port or not self.addresses & other.addresses:
            return False
        return self.db is None or other.db is None or self.db == other.db


def _place(target: Target, db: int, resolve: Resolver) -> _Place | None:
    if target.kind not in CACHE_KINDS:
        return None
    dbn = db if target.kind == "redis" else None
    if target.socket_path:
        return _Place(frozenset({"unix:" + os.path.realpath(target.socket_path)}), 0, dbn)
    if target.host is None or target.port is None:
        return None
    return _Place(resolve(target.host, target.port), target.port, dbn)


def _is_prod(target: Target) -> bool:
    return target.env.strip().lower() in PROD_ENVS


@dataclass(frozen=True, slots=True)
class Guard:
    """The protections a config declares: its targets, and the read-only switches that are
    on (`read_only_by`: "--read-only", "read_only = true in FILE", "CACHETOP_READ_ONLY")."""

    targets: tuple[Target, ...] = ()
    read_only_by: tuple[str, ...] = ()
    resolve: Resolver = field(default=resolve_host, compare=False)

    def protection(self, target: Target, db: int | None = None,
                   read_only: bool = False) -> Protection:
        """The strictest protection of the place `target` (db `db`, default the target's)
        writes to. `read_only` adds the caller's own switch (a --read-only flag)."""
        db = target.db if db is None else db
        read_only_by = list(self.read_only_by)
        if read_only and "read-only mode" not in read_only_by:
            read_only_by.append("read-only mode")
        prod: list[str] = []
        covered: list[str] = []
        if target.read_only:
            read_only_by.append(f"target {plain(target.name)} is configured read_only")
        if _is_prod(target):
            prod.append(target.name)
        cache: dict[tuple[str, int], frozenset[str]] = {}

        def resolve(host: str, port: int) -> frozenset[str]:
            if (host, port) not in cache:
                cache[host, port] = self.resolve(host, port)
            return cache[host, port]

        here = _place(target, db, resolve)
        for other in self.targets:
            if here is None or other is target or other.kind not in CACHE_KINDS:
                continue
            if other.socket_path is None and other.port != here.port:
                continue  # no DNS for targets that cannot match
            there = _place(other, other.db, resolve)
            if there is None or not here.covers(there):
                continue
            covered.append(other.name)
            if other.read_only:
                read_only_by.append(f"config target {plain(other.name)} ({plain(other.address)}) "
                                    "is read_only")
            if _is_prod(other) and other.name not in prod:
                prod.append(other.name)
        return Protection(tuple(dict.fromkeys(read_only_by)), tuple(prod), tuple(covered))
