"""One oracle for "the password is not shown", shared by the property tests that hunt for leaks.

A leak is a 4-character piece of the password, in any form it may be printed in, that appears in
the output. A piece that also occurs in text the program prints whatever the password is (the
message templates of the modules that wrote the output, a scheme name, an option name, the URL
with its password masked) is not a leak: `unix` as a password is also a scheme name.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterable
from types import ModuleType
from urllib.parse import quote

PIECE = 4


def forms(password: str) -> list[str]:
    """The password as it may appear: raw, percent-encoded both ways, repr- and ascii-escaped."""
    return [password, quote(password, safe=""), quote(password), repr(password)[1:-1],
            ascii(password)[1:-1], password.encode("unicode_escape").decode("ascii")]


def literals(*modules: ModuleType) -> str:
    """Every string constant in the modules' source, f-strings' fixed parts included, one per
    line: the fixed text their messages are made of."""
    found: list[str] = []
    for module in modules:
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.append(node.value)
    return "\n".join(found)


def leaked(password: str, shown: str, fixed: Iterable[str]) -> list[str]:
    """The pieces of `password` (any form) in `shown` that no fixed text explains."""
    fixed_text = "\n".join(fixed)
    pieces = {form[i:i + PIECE] for form in forms(password) for i in range(len(form) - PIECE + 1)}
    return sorted(p for p in pieces if p in shown and p not in fixed_text)
