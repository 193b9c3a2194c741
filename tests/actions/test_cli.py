"""`cachetop flush|flushdb|delete|tags|invalidate` end to end, as a script runs them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from cachetop.actions.tagging import tag_cache
from tests.actions.helpers import audit_lines, fill
from tests.servers import MemcachedServer, RedisServer
from tests.wait import wait_until


def cachetop(*args: str | bytes, state: Path, timeout: float = 30,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CACHETOP_")}
    full_env.update(XDG_CONFIG_HOME="/nonexistent-cachetop-test", XDG_STATE_HOME=str(state))
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "cachetop", *args], capture_output=True,
                          text=True, timeout=timeout, env=full_env, stdin=subprocess.DEVNULL)


def _errors(stderr: str) -> list[str]:
    """stderr without the warnings (a password on the command line earns one)."""
    return [line for line in stderr.strip().splitlines()
            if not line.startswith("cachetop: warning:")]


SUMMARY = re.compile(r"^flush (\S+) pattern 'user:\*': deleted (\d+) of (\d+) planned "
                     r"\(scanned \d+: \d+ deleted, (\d+) already gone, 0 skipped\) "
                     r"in [0-9.]+s: done$")


def test_flush_with_yes_prints_a_summary_a_script_can_parse(redis_server: RedisServer,
                                                            state_home: Path) -> None:
    client = redis_server.client()
    fill(client, [b"user:%d" % i for i in range(1000)] + [b"other:%d" % i for i in range(1000)])
    out = cachetop("flush", redis_server.url, "--pattern", "user:*", "--yes", state=state_home)
    assert out.returncode == 0, out.stderr
    match = SUMMARY.match(out.stdout.splitlines()[-1])
    assert match and match.groups() == (f"127.0.0.1:{redis_server.port}", "1000", "1000", "0")
    assert client.dbsize() == 1000
    assert json.loads(audit_lines(state_home)[-1])["done"] == 1000


def test_no_terminal_and_no_yes_refuses_with_exit_2(redis_server: RedisServer,
                                                    state_home: Path) -> None:
    fill(redis_server.client(), [b"user:1", b"other"])
    out = cachetop("flush", redis_server.url, "--pattern", "user:*", state=state_home)
    assert out.returncode == 2
    assert "refused: no terminal" in out.stdout.splitlines()[-1]
    assert redis_server.client().exists(b"user:1") == 1
    assert json.loads(audit_lines(state_home)[-1])["status"] == "refused"


def test_dry_run_counts_and_deletes_nothing(redis_server: RedisServer, state_home: Path) -> None:
    fill(redis_server.client(), [b"user:%d" % i for i in range(40)])
    out = cachetop("flush", redis_server.url, "--pattern", "user:*", "--dry-run",
                   state=state_home)
    assert out.returncode == 0
    assert out.stdout.splitlines()[-1].endswith("dry run: 40 keys would be deleted "
                                                "(exact: a full SCAN)")
    assert "sample (20 keys):" in out.stdout
    assert redis_server.client().dbsize() == 40


def test_json_output_is_one_document(redis_server: RedisServer, state_home: Path) -> None:
    fill(redis_server.client(), [b"user:\xff%d" % i for i in range(5)] + [b"other"])
    out = cachetop("flush", redis_server.url, "--pattern", "user:*", "--yes", "--json",
                   state=state_home)
    doc = json.loads(out.stdout)
    assert doc["result"]["status"] == "done" and doc["result"]["deleted"] == 5
    assert doc["plan"]["count"] == 5
    assert bytes.fromhex(doc["plan"]["sample"][0]["key_hex"]).startswith(b"user:\xff")


def _config(tmp_path: Path, server: RedisServer, **extra: str | bool) -> Path:
    lines = ["[[targets]]", 'name = "sessions-prod"', f'url = "{server.url}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_prod_needs_confirm_name_yes_is_not_enough(redis_server: RedisServer, tmp_path: Path,
                                                   state_home: Path) -> None:
    fill(redis_server.client(), [b"user:1"])
    config = str(_config(tmp_path, redis_server, env="prod"))
    out = cachetop("flush", "sessions-prod", "--config", config, "--pattern", "user:*", "--yes",
                   state=state_home)
    assert out.returncode == 2 and "--confirm" in out.stdout
    wrong = cachetop("flush", "sessions-prod", "--config", config, "--pattern", "user:*",
                     "--confirm", "sessions", state=state_home)
    assert wrong.returncode == 2
    assert redis_server.client().exists(b"user:1") == 1
    ok = cachetop("flush", "sessions-prod", "--config", config, "--pattern", "user:*",
                  "--confirm", "sessions-prod", state=state_home)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[-1].startswith(f"flush sessions-prod (127.0.0.1:"
                                                 f"{redis_server.port}) pattern 'user:*': "
                                                 "deleted 1 of 1 planned")


def test_read_only_flag_and_config_refuse(redis_server: RedisServer, tmp_path: Path,
                                          state_home: Path) -> None:
    fill(redis_server.client(), [b"user:1"])
    flag = cachetop("flushdb", redis_server.url, "--yes", "--read-only", state=state_home)
    config = str(_config(tmp_path, redis_server, read_only=True))
    conf = cachetop("delete", "sessions-prod", "user:1", "--yes", "--config", config,
                    state=state_home)
    for out in (flag, conf):
        assert out.returncode == 2 and "read" in out.stdout.splitlines()[-1]
    assert redis_server.client().exists(b"user:1") == 1


def test_errors_are_one_line_without_password_or_traceback(state_home: Path) -> None:
    from tests.servers import free_port

    out = cachetop("flush", f"redis://admin:Hunter2pw@127.0.0.1:{free_port()}", "--pattern",
                   "a*", "--yes", state=state_home)
    assert out.returncode == 1
    assert "Hunter2pw" not in out.stdout + out.stderr and "Traceback" not in out.stderr
    assert "visible to other users (ps)" in out.stderr  # the password on the command line
    errors = _errors(out.stderr)
    assert len(errors) == 1 and "connection" in errors[0].lower()


def test_wrong_password_says_authentication_failed(state_home: Path) -> None:
    server = RedisServer(acl=["user default on nopass ~* &* +@all",
                              "user ops on >right-pw ~* &* +@all"])
    server.start()
    try:
        out = cachetop("flush", f"redis://ops:Wrong2pw@127.0.0.1:{server.port}", "--pattern",
                       "a*", "--yes", state=state_home)
    finally:
        server.close()
    assert out.returncode == 1
    assert "Wrong2pw" not in out.stdout + out.stderr and "Traceback" not in out.stderr
    errors = _errors(out.stderr)
    assert len(errors) == 1 and "authentication failed" in errors[0]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_cancels_cleanly_and_reports_what_was_done(redis_server: RedisServer,
                                                          state_home: Path) -> None:
    client = redis_server.client()
    fill(client, [b"user:%d" % i for i in range(3000)] + [b"other:%d" % i for i in range(100)])
    env = {k: v for k, v in os.environ.items() if not k.startswith("CACHETOP_")}
    env.update(XDG_CONFIG_HOME="/nonexistent", XDG_STATE_HOME=str(state_home))
    # 200 keys/s: the run lasts 15 s, so Ctrl-C lands mid-run even when a loaded machine
    # notices the first batch late. SIGINT is reset to its default in the child: a pytest
    # started as a background job (`make test &`) ignores SIGINT, and so would the child.
    proc = subprocess.Popen([sys.executable, "-m", "cachetop", "flush", redis_server.url,
                             "--pattern", "user:*", "--yes", "--rate", "200"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            stdin=subprocess.DEVNULL, preexec_fn=_default_sigint)
    wait_until(lambda: client.dbsize() < 3100, "the first batch deleted")
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 130, stderr
    summary = stdout.splitlines()[-1]
    deleted = int(re.search(r"deleted (\d+) of 3000", summary).group(1))  # type: ignore[union-attr]
    assert summary.endswith(": cancelled") and "Traceback" not in stderr
    assert 0 < deleted == 3100 - client.dbsize() < 3000


def test_non_utf8_key_from_argv(redis_server: RedisServer, state_home: Path) -> None:
    fill(redis_server.client(), [b"k\xff\xfe", b"k"])
    out = cachetop(b"delete", redis_server.url, b"k\xff\xfe", "--yes", state=state_home)
    assert out.returncode == 0, out.stderr
    assert "key 'k\\xff\\xfe': deleted 1 of 1 planned" in out.stdout
    assert redis_server.client().exists(b"k\xff\xfe", b"k") == 1


def test_tags_and_invalidate(redis_server: RedisServer, state_home: Path) -> None:
    cache = tag_cache(redis_server.client())
    for i in range(30):
        cache.set(f"u:{i}", b"v", ttl=60, tags=["user"] if i % 3 else ["user", "admin"])
    listed = cachetop("tags", redis_server.url, state=state_home)
    assert listed.returncode == 0
    assert listed.stdout.splitlines() == ["admin\t10\t10\tcachetop:tag:{admin}",
                                          "user\t30\t30\tcachetop:tag:{user}"]
    out = cachetop("invalidate", redis_server.url, "--tag", "admin", "--tag", "nope", "--yes",
                   state=state_home)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1].startswith(
        f"invalidate 127.0.0.1:{redis_server.port} tags 'admin', 'nope': deleted 10 of 10")


def test_flushall_is_not_offered_on_redis_but_flushes_memcached(
        redis_server: RedisServer, mc_server: MemcachedServer, state_home: Path) -> None:
    fill(redis_server.client(), [b"k"])
    out = cachetop("flushall", redis_server.url, "--yes", state=state_home)
    assert out.returncode == 2 and "flushdb" in out.stderr
    assert redis_server.client().exists(b"k") == 1
    mc_server.client().set(b"k", b"v", noreply=False)
    yes = cachetop("flushall", mc_server.url, "--yes", state=state_home)
    assert yes.returncode == 2 and "--confirm" in yes.stdout  # flush_all needs the name
    assert mc_server.client().get(b"k") == b"v"
    mc = cachetop("flushall", mc_server.url, "--confirm", f"127.0.0.1:{mc_server.port}",
                  state=state_home)
    assert mc.returncode == 0, mc.stderr
    assert mc.stdout.splitlines()[-1].startswith(f"flush_all 127.0.0.1:{mc_server.port} all "
                                                 "items: deleted 1 of ~1 planned")
    assert mc_server.client().get(b"k") is None


def test_usage_errors_exit_2(redis_server: RedisServer, state_home: Path) -> None:
    assert cachetop("flush", redis_server.url, state=state_home).returncode == 2  # no pattern
    out = cachetop("flush", redis_server.url, "--pattern", "**", "--yes", state=state_home)
    assert out.returncode == 2 and "every key" in out.stdout and "--confirm" in out.stdout
    out = cachetop("flush", "no-such-target", "--pattern", "a*", state=state_home)
    assert out.returncode == 2 and "no target named" in out.stderr


def _on_terminal(args: list[str], answer: bytes, state: Path) -> subprocess.CompletedProcess[str]:
    """Run with stdin on a pseudo-terminal and type `answer` at the prompt."""
    leader, follower = os.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CACHETOP_")}
    env.update(XDG_CONFIG_HOME="/nonexistent", XDG_STATE_HOME=str(state))
    try:
        os.write(leader, answer)
        return subprocess.run([sys.executable, "-m", "cachetop", *args], stdin=follower,
                              capture_output=True, text=True, timeout=30, env=env)
    finally:
        os.close(leader)
        os.close(follower)


def test_terminal_prompts_y_n_and_typed_name_for_prod(redis_server: RedisServer, tmp_path: Path,
                                                      state_home: Path) -> None:
    fill(redis_server.client(), [b"user:1", b"user:2", b"user:3"])
    no = _on_terminal(["delete", redis_server.url, "user:1"], b"n\n", state_home)
    assert no.returncode == 2 and "Proceed? [y/N]" in no.stderr
    yes = _on_terminal(["delete", redis_server.url, "user:1"], b"y\n", state_home)
    assert yes.returncode == 0 and redis_server.client().exists(b"user:1") == 0
    config = str(_config(tmp_path, redis_server, env="prod"))
    args = ["delete", "sessions-prod", "user:2", "--config", config, "--yes"]
    wrong = _on_terminal(args, b"y\n", state_home)
    assert wrong.returncode == 2 and "Type sessions-prod to confirm" in wrong.stderr
    typed = _on_terminal(args, b"sessions-prod\n", state_home)
    assert typed.returncode == 0, typed.stderr
    assert redis_server.client().exists(b"user:2", b"user:3") == 1
