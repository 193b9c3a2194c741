"""Issue 20 item 1: `[targets.caches]` says which server an application cache lives on."""

from __future__ import annotations

from pathlib import Path

import pytest

from cachetop.config import load_config
from cachetop.errors import ConfigError

FLEET = """
[[targets]]
name = "catalog"
url = "redis://127.0.0.1:7001"

[[targets]]
name = "pages"
url = "memcached://127.0.0.1:7002"

[[targets]]
name = "app"
url = "http://127.0.0.1:7003/metrics"
[targets.caches]
redis-l2 = "catalog"
page-cache = "pages"
"""


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(0o600)
    return load_config(path, {})


def test_cache_links_are_read_onto_the_endpoint_target(tmp_path: Path) -> None:
    config = load(tmp_path, FLEET)
    app = next(t for t in config.targets if t.name == "app")  # type: ignore[attr-defined]
    assert dict(app.cache_servers) == {"redis-l2": "catalog", "page-cache": "pages"}


@pytest.mark.parametrize(("text", "message"), [
    (FLEET.replace('redis-l2 = "catalog"', 'redis-l2 = "catalgo"'),
     "targets[2].caches.redis-l2: no target named 'catalgo' in this file (did you mean "
     "'catalog'?)"),
    (FLEET.replace('redis-l2 = "catalog"', 'redis-l2 = "app"'),
     "targets[2].caches.redis-l2: 'app' is a metrics target; a cache lives on a redis or "
     "memcached target"),
    (FLEET.replace('redis-l2 = "catalog"', "redis-l2 = 3"), "targets[2].caches"),
    ('[[targets]]\nurl = "redis://127.0.0.1:7001"\n[targets.caches]\nx = "y"\n',
     "targets[0].caches: applies only to http(s) metrics targets"),
])
def test_bad_cache_links_are_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
