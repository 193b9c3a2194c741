"""Provides Secret: a password holder whose repr and str never show the value."""

from __future__ import annotations


class Secret:
    """Holds a credential so that logs, tracebacks with locals and JSON dumps show only '***'.

    The value is reachable only through `reveal()`, which makes every use of it greppable.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)
