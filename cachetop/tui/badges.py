"""Provides badges(): the `prod` / `read-only` marks shown wherever a person acts on a target
(the instance header, every action dialog's title), so the protection is seen before the key
is pressed, not only in the refusal after it."""

from __future__ import annotations

from rich.text import Text

from cachetop.collectors.base import Target
from cachetop.config import PROD_ENVS  # not from actions: the fleet screen loads no action

PROD_STYLE = "bold white on dark_red"  # as the fleet row's badge (rows.name_text)
READ_ONLY_STYLE = "bold black on yellow"


def badge_names(target: Target, *, read_only: bool) -> tuple[str, ...]:
    """"prod" when the target's env is a production one, "read-only" when its own flag or a
    config-wide switch (`read_only`, from Config.is_read_only) refuses writes."""
    names: list[str] = []
    if target.env.strip().lower() in PROD_ENVS:
        names.append("prod")
    if read_only or target.read_only:
        names.append("read-only")
    return tuple(names)


def badges(target: Target, *, read_only: bool) -> Text:
    """The badges, each preceded by two spaces (empty when there are none), to append to a
    title after the target's name."""
    text = Text()
    for name in badge_names(target, read_only=read_only):
        text.append("  ")
        text.append(name, style=PROD_STYLE if name == "prod" else READ_ONLY_STYLE)
    return text
