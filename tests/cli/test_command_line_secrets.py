"""A mistyped command line never prints a password (issue 17): random command lines through the
real entry point, `cachetop.cli.main()`, which also runs `cachetop demo` and the action commands.

Each line has exactly one mistake (an unknown option, a command that does not exist, a missing
or bad value, a missing required option, a URL given to --config) and target URLs with random
passwords, raw or percent-encoded, in every place a word can stand: a target, an option's value,
`--opt=URL`, after an unknown option; and raw values of options whose name says they are secret.

The oracle runs the same line a second time with every password replaced by `***`: what that run
prints is the fixed text (usage, message templates, scheme and option names, the URL around the
password). The first run must print exactly the same, so no piece of a password appears unless
the fixed text holds it too, and the message still says what was wrong.
"""

from __future__ import annotations

import io
import signal
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cachetop import cli
from cachetop.cli_parser import ArgumentParser
from tests.leak_oracle import leaked

MASK = "***"
PASSWORD = st.text(st.characters(exclude_categories=("Cs",)), min_size=4, max_size=16)
UNKNOWN_OPTIONS = ("--listen-on", "--weird", "--colour", "--no-such-option")
UNKNOWN_WORDS = ("proxy", "frobnicate", "flsh", "invalidat", "tag", "dmo", "status")
# Unknown to every parser but the main one's `--bearer-token` (`--token` is everywhere): a
# hidden option that refuses a typed token, saying why.
SECRET_OPTIONS = ("--password", "--bearer-token", "--auth", "--api-key")
REFUSED_TOKEN = "a token on the command line is visible to other users"


@dataclass(frozen=True)
class Command:
    """What a command accepts, as far as the generator needs to know."""

    prefix: tuple[str, ...]
    positionals: int              # -1: any number (the main command's targets)
    strings: tuple[str, ...]      # options taking any text: a URL there is no mistake
    typed: tuple[str, ...] = ()   # options whose value has a type: a URL there is a mistake
    flags: tuple[str, ...] = ()
    required: tuple[str, ...] = ()  # options that must be there, with a plain value
    config: bool = True


COMMANDS = {
    "main": Command((), -1, ("--log",), ("--interval", "--timeout", "--count"),
                    ("--once", "--json", "-v")),
    # Not --token-file: its value is masked whole (a secret option's), so a URL typed there
    # and the same URL typed elsewhere would be masked differently in the oracle's run.
    "agent": Command(("agent",), -1, ("--log", "--tls-cert", "--listen"),
                     ("--interval", "--timeout"), ("--allow-actions", "-v")),
    "demo": Command(("demo",), 0, (), ("--interval", "--rate", "--cold-start"), ("--no-tui",),
                    config=False),
    "flush": Command(("flush",), 1, ("--pattern", "--type", "--confirm"),
                     ("--db", "--count", "--rate"), ("--dry-run", "--yes", "--json"),
                     ("--pattern",)),
    "flushdb": Command(("flushdb",), 1, ("--confirm",), ("--db", "--delay"), ("--dry-run", "-y")),
    "delete": Command(("delete",), 2, ("--confirm",), ("--db",), ("--read-only",)),
    "tags": Command(("tags",), 1, ("--prefix",), ("--db", "--dialect"), ("--json",)),
    "invalidate": Command(("invalidate",), 1, ("--prefix", "--tag", "--confirm"),
                          ("--dialect", "--rate"), ("--yes",), ("--tag",)),
}


@dataclass
class Line:
    """A command line, the same with its passwords masked, and what its error must say."""

    argv: list[str] = field(default_factory=list)
    masked: list[str] = field(default_factory=list)
    passwords: list[str] = field(default_factory=list)
    says: list[str] = field(default_factory=list)

    def add(self, word: str, masked: str | None = None) -> None:
        self.argv.append(word)
        self.masked.append(word if masked is None else masked)


@st.composite
def urls(draw: st.DrawFn) -> tuple[str, str, str]:
    """(url, url with its password masked, password)."""
    password = draw(PASSWORD)
    scheme = draw(st.sampled_from(["redis", "rediss", "memcached", "http", "https"]))
    user = draw(st.sampled_from(["", "admin", "app"]))
    # Ports nothing listens on, a name that never resolves: should a line parse after all
    # (a bug in the generator), it must not reach a real server.
    host = draw(st.sampled_from(["127.0.0.1", "cache-1.invalid", "[::1]"]))
    port = draw(st.sampled_from([":1", ":4"]))
    shown = quote(password, safe="") if draw(st.booleans()) else password
    return (f"{scheme}://{user}:{shown}@{host}{port}", f"{scheme}://{user}:{MASK}@{host}{port}",
            password)


@st.composite
def command_lines(draw: st.DrawFn) -> Line:
    name = draw(st.sampled_from(sorted(COMMANDS)))
    command = COMMANDS[name]
    mistakes = ["unknown option", "unknown command", "missing value", "bad value",
                "secret option"]
    mistakes += ["missing required"] if command.required else []
    mistakes += ["config URL"] if command.config else []
    mistake = draw(st.sampled_from(mistakes))
    units: list[list[tuple[str, str | None]]] = []  # words kept together, in any order
    line = Line()

    def url() -> tuple[str, str]:
        text, masked, password = draw(urls())
        line.passwords.append(password)
        return text, masked

    strings = [o for o in command.strings
               if not (mistake == "missing required" and o in command.required)]
    for _ in range(draw(st.integers(1, 3))):  # target URLs, in any place that takes text
        text, masked = url()
        places = ["positional", *(["option", "option="] if strings else [])]
        place = draw(st.sampled_from(places))
        option = draw(st.sampled_from(strings)) if strings else ""
        if place == "positional":
            units.append([(text, masked)])
        elif place == "option":
            units.append([(option, None), (text, masked)])
        else:
            units.append([(f"{option}={text}", f"{option}={masked}")])
    if command.positionals > 0:  # a target name and a key, so that none is missing
        units += [[("cache-1", None)], [("key:1", None)]][: command.positionals]
    units += [[(flag, None)] for flag in draw(st.lists(st.sampled_from(command.flags),
                                                       unique=True, max_size=2))]
    for option in command.required:
        if mistake != "missing required":
            units.append([(option, None), ("x*", None)])

    trailing: list[tuple[str, str | None]] = []
    if mistake == "unknown option":
        option = draw(st.sampled_from(UNKNOWN_OPTIONS))
        units.append([(option, None)])
        line.says += ["unrecognized arguments: ", option]
    elif mistake == "secret option":
        option = draw(st.sampled_from(SECRET_OPTIONS))
        secret = draw(PASSWORD.filter(lambda p: not p.startswith("-")))
        if draw(st.booleans()):
            units.append([(option, None), (secret, MASK)])
        else:  # argparse takes `--opt=a b` for a positional: no space in this form
            secret = "".join(c for c in secret if not c.isspace()) or "pw-x"
            units.append([(f"{option}={secret}", f"{option}={MASK}")])
        line.passwords.append(secret)
        if name == "main" and option == "--bearer-token":
            line.says += [f"argument {option}: {REFUSED_TOKEN}"]
        else:
            line.says += ["unrecognized arguments: ", option]
    elif mistake == "unknown command":
        word = draw(st.sampled_from(UNKNOWN_WORDS))
        line.says += [f"no such command {word!r}"]
    elif mistake == "missing value":
        option = draw(st.sampled_from(sorted([*command.typed, *command.strings])))
        trailing = [(option, None)]
        line.says += [f"argument {option}", "expected one argument"]
    elif mistake == "bad value":
        option = draw(st.sampled_from(command.typed))
        text, masked = url()
        units.append([(option, None), (text, masked)] if draw(st.booleans())
                     else [(f"{option}={text}", f"{option}={masked}")])
        line.says += [f"argument {option}: "]  # the exact words are argparse's or the type's
    elif mistake == "missing required":
        line.says += ["the following arguments are required: ", command.required[0]]
    else:  # config URL
        text, masked = url()
        units.append([("--config", None), (text, masked)])
        line.says += ["argument --config: takes a TOML file, not a URL"]

    first = [(w, None) for w in command.prefix]
    if mistake == "unknown command":
        first = [(line.says[0].split("'")[1], None)]
    for word, masked in first + [w for u in draw(st.permutations(units)) for w in u] + trailing:
        line.add(word, masked)
    return line


def run(argv: list[str]) -> tuple[int | str | None, str, str]:
    """cli.main() in this process, its output captured. main() restores SIGPIPE's default
    (right for a command, `cachetop --batch | head`); put back pytest's, which ignores it:
    else a later test's write to a reset socket kills the whole test run (exit 141)."""
    out, err = io.StringIO(), io.StringIO()
    sigpipe = signal.getsignal(signal.SIGPIPE)
    try:
        with redirect_stdout(out), redirect_stderr(err), pytest.raises(SystemExit) as exit_:
            cli.main(argv)
    finally:
        signal.signal(signal.SIGPIPE, sigpipe)
    return exit_.value.code, out.getvalue(), err.getvalue()


def check(line: Line) -> None:
    code, out, err = run(line.argv)
    fixed_code, fixed_out, fixed_err = run(line.masked)
    assert (code, out) == (2, ""), (line.argv, err)
    for password in line.passwords:
        assert leaked(password, err, [fixed_err]) == [], (line.argv, err)
    message = err.splitlines()[-1]  # `cachetop: error: ...`; the actions: `... (see --help)`
    assert message.startswith("cachetop") and (
        ": error: " in message or message.endswith(" (see --help)")), err
    assert all(part in message for part in line.says), (line.says, message)
    assert err == fixed_err, (line.argv, err, fixed_err)  # the same words, masked
    assert (fixed_code, fixed_out) == (2, "")


@given(command_lines())
def test_no_mistyped_command_line_prints_a_password(line: Line) -> None:
    check(line)


@pytest.mark.parametrize(("argv", "shown"), [
    (["agnt", "--listen", "127.0.0.1:9999", "redis://:S3cret@10.0.0.5:6379"],
     "cachetop: error: no such command 'agnt'; did you mean 'agent'?"),
    (["agent", "--weird", "redis://:S3cret@10.0.0.5:6379"],
     "cachetop agent: error: unrecognized arguments: --weird"),
    (["demo", "--weird", "redis://:S3cret@10.0.0.5:6379"],
     "cachetop demo: error: unrecognized arguments: --weird redis://:***@10.0.0.5:6379"),
    (["--interval=redis://u:S3cret@h:1"],
     "cachetop: error: argument --interval: invalid float value: 'redis://u:***@h:1'"),
    (["-vredis://:S3cret@h"],
     "cachetop: error: argument -v/--verbose: ignored explicit argument 'redis://:***@h'"),
    (["--int=redis://:S3cret@h"],  # an abbreviation, quoted by argparse
     "cachetop: error: argument --interval: invalid float value: 'redis://:***@h'"),
    (["tags", "redis://:S3cret@h", "--dialect", "redis://:S3cret@h"],
     "cachetop tags: argument --dialect: invalid choice: 'redis://:***@h' (choose from"),
    (["--once", "--password", "S3cret", "--bearer-token=S3cret", "--weird"],
     "cachetop: error: argument --bearer-token: a token on the command line is visible to "
     "other users (ps): put it in a file and give --token-file FILE"),
    (["demo", "--password", "S3cret", "--api-key=S3cret"],
     "cachetop demo: error: unrecognized arguments: --password *** --api-key=***"),
    (["flush", "admin:s3cr3t://x@cache-1:6379", "--pattern", "a", "--nope"],
     "cachetop flush: unrecognized arguments: --nope"),
    (["--config", "redis://:S3cret@h"],
     "cachetop: error: argument --config: takes a TOML file, not a URL"),
])
def test_the_issue_examples_print_the_masked_url(argv: list[str], shown: str) -> None:
    code, out, err = run(argv)
    assert (code, out) == (2, "")
    assert err.splitlines()[-1].startswith(shown), err
    assert "S3cret" not in err and "s3cr3t" not in err


def test_a_misspelled_command_is_named_with_the_likely_one() -> None:
    _, _, err = run(["flsh", "redis://:S3cret@h", "--pattern", "x"])
    assert err.splitlines()[-1] == "cachetop: error: no such command 'flsh'; did you mean 'flush'?"


def _secret_option_parser() -> ArgumentParser:
    p = ArgumentParser(prog="p")
    p.add_argument("-a", "--redis-pass", type=int)  # int: so that its value can be invalid
    p.add_argument("--count", type=int)
    return p


@pytest.mark.parametrize("argv", [
    ["-aS3cret"], ["-a", "S3cret"], ["--redis-pass", "S3cret"], ["--redis-pass=S3cret"],
    ["--redis", "S3cret"], ["--redis=S3cret"],  # abbreviations
])
def test_a_secret_option_value_is_never_shown(argv: list[str]) -> None:
    err = io.StringIO()
    with redirect_stderr(err), pytest.raises(SystemExit):
        _secret_option_parser().parse_args(argv)
    assert err.getvalue().splitlines()[-1] == (
        "p: error: argument -a/--redis-pass: invalid int value: '***'")


def test_every_parser_in_cachetop_is_the_masking_one() -> None:
    package = Path(cli.__file__).parents[1]  # cachetop/, above cachetop/cli/
    plain = [str(path.relative_to(package)) for path in package.rglob("*.py")
             if "argparse.ArgumentParser(" in path.read_text() and path.name != "cli_parser.py"]
    assert plain == []


def test_running_main_here_leaves_sigpipe_ignored() -> None:
    run(["frobnicate"])
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN


@pytest.mark.parametrize("argv", [
    ["--connect", "http://127.0.0.1:1", "--token=S3cretTok", "--once"],
    ["agent", "--token=S3cretTok", "redis://127.0.0.1:1"],
])
def test_a_token_typed_where_a_token_file_goes_is_not_echoed(argv: list[str]) -> None:
    """`--token=X` would abbreviate --token-file, and the error about a file named X show X:
    a hidden --token refuses it instead, without the value."""
    code, out, err = run_any(argv)
    assert code == 2 and "S3cretTok" not in out + err, err
    assert err.splitlines()[-1].endswith(
        "error: argument --token: a token on the command line is visible to other users (ps): "
        "put it in a file and give --token-file FILE"), err


def run_any(argv: list[str]) -> tuple[int, str, str]:
    """cli.main that may return instead of exiting through argparse."""
    out, err = io.StringIO(), io.StringIO()
    sigpipe = signal.getsignal(signal.SIGPIPE)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = cli.main(argv)
    except SystemExit as stop:
        code = int(stop.code or 0)
    finally:
        signal.signal(signal.SIGPIPE, sigpipe)
    return code, out.getvalue(), err.getvalue()
