"""Provides Shop: the demo application's requests and the caching patterns each one shows.

    product(pid)       two-layer cache-aside: local LRU -> Redis "catalog" -> database, TTLs
    page_view()        full-page cache in memcached "pages", fragments in memcached "fragments"
    account_view()     cache-aside reads from the Redis replica, refills written to the primary
    cart_update()      write-behind: the session is cached now, the database gets it later
    product_update()   write-through (database, then both layers) and event-based invalidation
                       of the page and fragment that show the product
    profile_update()   event-based invalidation: user:, user_profile:, user_permissions:
    category_change()  tag-based invalidation through cachetop.actions.tagging (catalog, fragments,
                       LRU)
    deploy()           a new version: flush the `product:*` namespace, bump the page namespace,
                       restart the local cache empty
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from cachetop.actions.tagging import tag_cache
from cachetop.demo.app_metrics import AppMetrics
from cachetop.demo.database import SimulatedDatabase, WriteBehind, render_row
from cachetop.demo.lru import LocalLRU
from cachetop.demo.phases import ZipfKeys

LOCAL, L2, SESSIONS, PAGES, FRAGMENTS = (
    "local-lru", "redis-l2", "session-store", "page-cache", "fragment-cache")
CACHES = (LOCAL, L2, SESSIONS, PAGES, FRAGMENTS)
OPERATIONS = ("get", "set")  # and "delete", "incr" on first use

PRODUCTS, CATEGORIES, USERS = 3_000, 24, 20_000
LOCAL_MAX_BYTES, LOCAL_TTL_S = 150_000, 10.0
SESSION_BYTES, USER_BYTES = 300, 400
SESSION_TTL_S, USER_TTL_S, PAGE_TTL_S = 300, 120, 120
MIX = {"api-product": 45, "page-view": 30, "account-view": 10, "cart-update": 12,
       "product-update": 2, "profile-update": 1}
HOT_SHARE = 0.4  # a flash sale's share of product traffic


@dataclass(frozen=True, slots=True)
class Clients:
    """redis-py clients (thread-safe pools) and pymemcache PooledClients."""

    sessions: Any
    replica: Any
    catalog: Any
    pages: Any
    fragments: Any


def product_bytes(pid: int) -> int:
    return 500 + (pid * 37) % 500


def category_tag(pid: int) -> str:
    return f"category:{pid % CATEGORIES}"


def render_page(pid: int, parts: list[bytes]) -> bytes:
    body = b"".join(parts)
    return body + b" " * max(0, 5000 + pid % 2000 - len(body))


class Shop:
    """One instance shared by the worker threads; each request takes the worker's own rng."""

    def __init__(self, clients: Clients, metrics: AppMetrics, db: SimulatedDatabase,
                 write_behind: WriteBehind) -> None:
        self.c, self.m, self.db, self.write_behind = clients, metrics, db, write_behind
        self.lru = LocalLRU(LOCAL_MAX_BYTES)
        self.catalog_tags = tag_cache(clients.catalog)
        self.fragment_tags = tag_cache(clients.fragments)
        self.products = ZipfKeys(PRODUCTS, 1.1)
        self.users = ZipfKeys(USERS, 0.9)
        self.hot_product: int | None = None
        self.page_namespace = 1
        self._kinds, self._weights = list(MIX), list(MIX.values())

    def handle(self, rng: random.Random) -> str:
        """Serve one request of a kind drawn from the mix; returns the kind."""
        kind = rng.choices(self._kinds, self._weights)[0]
        if kind == "api-product":
            pid = self.draw_product(rng)
            self.product(pid)
            self._maybe_buy(pid)
        else:
            getattr(self, kind.replace("-", "_"))(rng)
        self.m.requests.labels(kind).inc()
        return kind

    def draw_product(self, rng: random.Random) -> int:
        hot = self.hot_product
        return hot if hot is not None and rng.random() < HOT_SHARE else self.products.draw(rng)

    # -- reads: cache-aside ----------------------------------------------------------------

    def product(self, pid: int) -> bytes:
        """Local LRU, then Redis, then the database; each miss refills the layers above."""
        key, tags = f"product:{pid}", [category_tag(pid)]
        value = self.m.timed(LOCAL, "get", self.lru.get, key)
        if value is not None:
            return value
        value = self.m.timed(L2, "get", self.catalog_tags.get, key)
        self.m.hit(L2, value is not None)
        if value is None:
            value = self.db.read("product", key, product_bytes(pid))
            self.m.timed(L2, "set", self.catalog_tags.set, key, value,
                         ttl=60 + pid % 120, tags=tags)
        self.m.timed(LOCAL, "set", self.lru.set, key, value, LOCAL_TTL_S, tags)
        return value

    def session(self, uid: int) -> bytes:
        key = f"session:{uid}"
        value = self.m.timed(SESSIONS, "get", self.c.sessions.get, key)
        self.m.hit(SESSIONS, value is not None)
        if value is None:
            value = self.db.read("session", key, SESSION_BYTES)
            self.m.timed(SESSIONS, "set", self.c.sessions.set, key, value, ex=SESSION_TTL_S)
        return value

    def fragment(self, key: str, size: int, tags: list[str]) -> bytes:
        value = self.m.timed(FRAGMENTS, "get", self.fragment_tags.get, key)
        self.m.hit(FRAGMENTS, value is not None)
        if value is None:
            value = self.db.read("fragment", key, size)
            self.m.timed(FRAGMENTS, "set", self.fragment_tags.set, key, value, ttl=90, tags=tags)
        return value

    def page_key(self, pid: int) -> str:
        return f"v{self.page_namespace}:page:/product/{pid}"

    def page_view(self, rng: random.Random) -> None:
        self.session(self.users.draw(rng))
        pid = self.draw_product(rng)
        key = self.page_key(pid)
        page = self.m.timed(PAGES, "get", self.c.pages.get, key)
        self.m.hit(PAGES, page is not None)
        if page is None:
            parts = [self.product(pid),
                     self.fragment(f"fragment:reviews:{pid}", 900, []),
                     self.fragment(f"fragment:nav:{pid % CATEGORIES}", 700, [category_tag(pid)])]
            page = render_page(pid, parts)
            self.m.timed(PAGES, "set", self.c.pages.set, key, page, expire=PAGE_TTL_S,
                         noreply=True)
        self._maybe_buy(pid)

    def account_view(self, rng: random.Random) -> None:
        """Profile reads go to the replica; a miss is refilled on the primary."""
        uid = self.users.draw(rng)
        keys = [f"user:{uid}", f"user_profile:{uid}", f"user_permissions:{uid}"]
        values = self.m.timed(SESSIONS, "get", self.c.replica.mget, keys)
        missing = [k for k, v in zip(keys, values, strict=True) if v is None]
        for _ in range(len(keys) - len(missing)):
            self.m.hit(SESSIONS, True)
        for _ in missing:
            self.m.hit(SESSIONS, False)
        if missing:
            row = self.db.read("user", f"user:{uid}", USER_BYTES)
            pipe = self.c.sessions.pipeline(transaction=False)
            for key in missing:
                pipe.set(key, row, ex=USER_TTL_S)
            self.m.timed(SESSIONS, "set", pipe.execute)

    # -- writes ----------------------------------------------------------------------------

    def cart_update(self, rng: random.Random) -> None:
        """Write-behind: the new session is cached at once and queued for the database."""
        uid = self.users.draw(rng)
        old = self.session(uid)
        key = f"session:{uid}"
        value = render_row(key, len(old) + rng.randrange(1000), SESSION_BYTES)
        self.m.timed(SESSIONS, "set", self.c.sessions.set, key, value, ex=SESSION_TTL_S)
        self.write_behind.enqueue(key, value)

    def product_update(self, rng: random.Random) -> None:
        """Write-through to both layers, then event-based invalidation of what shows it."""
        pid = self.products.draw(rng)
        key, tags = f"product:{pid}", [category_tag(pid)]
        version = self.db.write("product-update", key)
        value = render_row(key, version, product_bytes(pid))
        self.m.timed(L2, "set", self.catalog_tags.set, key, value, ttl=60 + pid % 120, tags=tags)
        self.m.timed(LOCAL, "set", self.lru.set, key, value, LOCAL_TTL_S, tags)
        self.m.timed(PAGES, "delete", self.c.pages.delete, self.page_key(pid), noreply=True)
        self.m.timed(FRAGMENTS, "delete", self.fragment_tags.delete, f"fragment:reviews:{pid}")
        self.m.invalidations.labels("product-update").inc(2)

    def profile_update(self, rng: random.Random) -> None:
        """Event-based invalidation: on a user update, delete every key derived from it."""
        uid = self.users.draw(rng)
        self.db.write("user-update", f"user:{uid}")
        keys = [f"user:{uid}", f"user_profile:{uid}", f"user_permissions:{uid}"]
        self.m.timed(SESSIONS, "delete", self.c.sessions.delete, *keys)
        self.m.invalidations.labels("user-update").inc(len(keys))

    def _maybe_buy(self, pid: int) -> None:
        """During a flash sale, buying the hot product decrements its stock in Redis."""
        if pid == self.hot_product:
            self.m.timed(L2, "incr", self.c.catalog.decr, f"stock:{pid}")

    # -- events ----------------------------------------------------------------------------

    def category_change(self, rng: random.Random) -> int:
        """Tag-based invalidation: every cached entry of one category, in every layer."""
        tag = f"category:{rng.randrange(CATEGORIES)}"
        self.db.write("category-update", tag)
        removed = self.m.timed(L2, "delete", self.catalog_tags.invalidate_tags, [tag])
        self.m.timed(FRAGMENTS, "delete", self.fragment_tags.invalidate_tags, [tag])
        removed += self.lru.invalidate_tags([tag])
        self.m.invalidations.labels("category-tag").inc()
        return removed

    def deploy(self) -> int:
        """A new version: the local cache starts empty, pages get a new namespace (memcached
        cannot scan), and the `product:*` namespace is flushed from Redis in batches."""
        self.lru.clear()
        self.page_namespace += 1
        flushed, batch = 0, []
        for key in self.c.catalog.scan_iter(match="product:*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                flushed += self.c.catalog.unlink(*batch)
                batch = []
        if batch:
            flushed += self.c.catalog.unlink(*batch)
        self.m.invalidations.labels("deploy-flush").inc(flushed)
        return flushed

    def warm(self, ranks: range, pages: bool) -> None:
        """The cold start's cache warmer: load a batch of the most popular products with one
        query into Redis (not the local cache: it warms by itself), and pre-render their pages."""
        pids = list(ranks)
        keys = [f"product:{pid}" for pid in pids]
        rows = self.db.read_many("product", keys, [product_bytes(pid) for pid in pids])
        for pid, key, row in zip(pids, keys, rows, strict=True):
            self.m.timed(L2, "set", self.catalog_tags.set, key, row, ttl=60 + pid % 120,
                         tags=[category_tag(pid)])
        if pages:
            rendered = {self.page_key(pid): render_page(pid, [row])
                        for pid, row in zip(pids, rows, strict=True)}
            self.m.timed(PAGES, "set", self.c.pages.set_many, rendered, expire=PAGE_TTL_S,
                         noreply=True)
