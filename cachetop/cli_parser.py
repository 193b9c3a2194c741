"""Provides ArgumentParser: argparse whose messages never show a secret from the command line.

argparse repeats what was typed: `unrecognized arguments: --listen redis://:S3cret@host`,
`invalid float value: 'redis://:S3cret@host'`, `ambiguous option: --pass=S3cret`. Every cachetop
parser is this class, so one place masks: each typed word is masked once (URLs through
redact_url, the value of an option whose name says it carries a secret as `***`), and every
message the parser prints, or that the CLI prints through mask(), has the typed text replaced by
the masked text, both as typed and as argparse quotes it (repr).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from cachetop.target_url import redact_url

# An option whose name holds one of these carries a secret, whether or not the parser knows it:
# `cachetop --password hunter2` must not echo hunter2 as an unrecognized argument.
SECRET_OPTION_RE = re.compile(
    r"-.*(pass|pwd|secret|token|auth|credential|api-?key|api_key)", re.IGNORECASE)
MASK = "***"
UNQUOTED_MIN = 3


class ArgumentParser(argparse.ArgumentParser):
    """argparse.ArgumentParser whose errors show the command line with its secrets masked.

    Subparsers made by add_subparsers() are of this class too (argparse's default).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shown: dict[str, str] = {}  # typed text -> what may be shown of it

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        typed = list(sys.argv[1:] if args is None else args)
        self._shown = self._masked_words(typed)
        return super().parse_known_args(typed, namespace)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:  # built here, word by word: a secret value alone is masked by position
            self.fail("unrecognized arguments: "
                       + " ".join(self._shown.get(word, word) for word in extras))
        return parsed

    def error(self, message: str) -> NoReturn:
        self.fail(self.mask(message))

    def fail(self, masked: str) -> NoReturn:
        """Print an error already masked, and exit 2. A subclass may change the format, never
        what reaches it (error() and parse_args() mask first)."""
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {masked}\n")

    def mask(self, text: str) -> str:
        """`text` with everything secret of the last parsed command line masked.

        One pass over `text`, longest typed text first, so that what one replacement wrote is
        never matched again."""
        swaps: dict[str, str] = {}
        for typed, shown in self._shown.items():
            if typed != shown:
                swaps.setdefault(repr(typed), repr(shown))
                # Unquoted, only what cannot be mistaken for the message's own text: not a
                # bare secret value, not a word as short as `:` (argparse quotes those).
                if shown != MASK and len(typed) >= UNQUOTED_MIN:
                    swaps.setdefault(typed, shown)
        if not swaps:
            return text
        pattern = "|".join(re.escape(t) for t in sorted(swaps, key=len, reverse=True))
        return re.sub(pattern, lambda m: swaps[m.group(0)], text)

    def _secret_options(self) -> set[str]:
        """Option strings of this parser's actions that carry a secret (short forms too)."""
        return {option for action in self._actions
                if any(SECRET_OPTION_RE.match(o) for o in action.option_strings)
                for option in action.option_strings}

    def _masked_words(self, typed: list[str]) -> dict[str, str]:
        """Typed text -> shown text, for every word and every part of an option word that
        argparse quotes on its own (see _quoted_tails)."""
        secret_options = self._secret_options()
        shown: dict[str, str] = {}

        def add(word: str, masked: str) -> None:
            if shown.get(word, word) == word:  # a masked form, once found, stays
                shown[word] = masked

        value_is_secret = False
        for word in typed:
            if value_is_secret and word not in self._option_string_actions:
                add(word, MASK)
                value_is_secret = False
                continue
            start = _secret_value_start(word, secret_options)
            if start is not None:
                if start < len(word):
                    add(word, word[:start] + MASK)
                    add(word[start:], MASK)
                value_is_secret = start == len(word)
                continue
            masked = _masked_word(word)
            add(word, masked)
            if masked != word:  # a word with nothing to mask has no part to mask either
                for tail in _quoted_tails(word):
                    add(tail, redact_url(tail))
            value_is_secret = False
        return shown


def _quoted_tails(word: str) -> list[str]:
    """The parts of an option word that argparse may quote on their own: the value of
    `--opt=value`, and what follows a short option (`-xvalue`, `-xyvalue`)."""
    if not word.startswith("-"):
        return []
    tails = [word.partition("=")[2]] if "=" in word else []
    if not word.startswith("--"):
        tails += [word[k:] for k in range(2, len(word))]
    return tails


def _secret_value_start(word: str, secret_options: set[str]) -> int | None:
    """Where the secret value attached to an option word starts (its length when the value is
    the next word); None when the word is no option that carries a secret.

    `--password=x`, `-ax` (when -a is a secret option), an abbreviation such as `--pa`, and an
    option the parser does not know but whose name says it is secret (`--token x`) all count.
    """
    if not word.startswith("-") or word == "-":
        return None
    if not word.startswith("--") and word[:2] in secret_options:
        return 2
    name, eq, _ = word.partition("=")
    abbreviates = len(name) > 2 and any(o.startswith(name) for o in secret_options)
    if abbreviates or SECRET_OPTION_RE.match(name):
        return len(name) + 1 if eq else len(word)
    return None


def _masked_word(word: str) -> str:
    """A word with the password of any URL in it masked, and `--opt=URL` kept readable."""
    name, eq, value = word.partition("=")
    if eq and word.startswith("-"):
        return f"{name}={redact_url(value)}"
    return redact_url(word)


def no_token_here(value: str) -> str:
    """argparse type of a hidden `--token`: without it, `--token=SECRET` abbreviates
    --token-file and the error about a file named SECRET shows the token."""
    raise argparse.ArgumentTypeError(
        "a token on the command line is visible to other users (ps): put it in a file and "
        "give --token-file FILE")


def add_token_file(p: argparse.ArgumentParser, help_text: str) -> None:
    """--token-file FILE, and a hidden --token that refuses a token typed in the clear."""
    p.add_argument("--token-file", metavar="FILE", help=help_text)
    p.add_argument("--token", type=no_token_here, help=argparse.SUPPRESS)


def config_file(value: str) -> str:
    """argparse type of --config: a file path; a URL there is a target typed in the wrong place
    (and a path is echoed in errors, where the URL's password would be shown)."""
    if "://" in value:
        raise argparse.ArgumentTypeError(
            "takes a TOML file, not a URL: give target URLs without --config")
    return value
