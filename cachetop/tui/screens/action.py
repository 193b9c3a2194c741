"""Provides ActionScreen: one destructive action, in four steps, never on the UI thread.

input (pattern / key / tag) -> plan in a worker (a preview: exact count, sample, memory) ->
confirm (typed name for prod targets) -> execute in a worker with a progress bar and cancel ->
a notification with the result. Every step's text is built as rich Text, never markup.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option

from cachetop import actions
from cachetop.actions.describe import plan_lines, progress_line
from cachetop.text_safety import plain
from cachetop.tui.badges import badges
from collectors.base import Target

TITLES = {"flush": "Flush keys by pattern", "flushdb": "Flush the database",
          "delete": "Delete one key", "tags": "Invalidate a tag"}


@dataclass
class Planned(Message):
    plan: actions.ActionPlan | None
    error: str | None


@dataclass
class Progressed(Message):
    progress: actions.Progress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, Progressed)


@dataclass
class Finished(Message):
    result: actions.ActionResult


@dataclass
class TagsListed(Message):
    tags: tuple[actions.TagIndex, ...]
    error: str | None


class ActionScreen(ModalScreen[None]):
    """A modal for `kind` in flush | flushdb | delete | tags on one target."""

    BINDINGS = [Binding("escape", "cancel", "Cancel / close", id="action.cancel")]

    def __init__(self, kind: str, target: Target, *, read_only: bool,
                 guard: actions.Guard | None = None, initial: str | None = None) -> None:
        """`guard` holds the config's protections; the plan worker applies those of the
        instance (a DNS lookup: never on the UI thread). `initial` fills the input."""
        super().__init__()
        self.initial = initial
        self.kind, self.target, self.read_only = kind, target, read_only
        self.guard = guard
        self.plan: actions.ActionPlan | None = None
        self.cancel_event = threading.Event()
        self.running = False

    def compose(self) -> ComposeResult:
        with Vertical(id="action-box"):
            title = Text(f"{TITLES[self.kind]} on ", style="bold")
            title.append(plain(self.target.name), style="bold cyan")
            title.append_text(badges(self.target, read_only=self.read_only))
            title.append(f"  {plain(self.target.address)}", style="grey70")
            yield Static(title, id="action-title")
            if self.kind == "flush":
                yield Input(placeholder="Redis glob pattern, e.g. user:*  (enter: preview)",
                            id="action-input")
            elif self.kind == "delete":
                yield Input(placeholder="exact key (enter: preview)", id="action-input")
            elif self.kind == "tags":
                yield OptionList(id="action-tags")
            with VerticalScroll(id="action-preview-box"):
                yield Static(Text("", style="grey70"), id="action-preview")
            yield Input(placeholder="type the target's name to confirm", id="action-confirm")
            yield ProgressBar(id="action-progress", show_eta=False)
            yield Static(id="action-status")
            with Horizontal(id="action-buttons"):
                yield Button("Preview", id="action-preview-button", variant="primary")
                yield Button("Delete", id="action-run", variant="error", disabled=True)
                yield Button("Close", id="action-close")

    def on_mount(self) -> None:
        self.query_one("#action-confirm", Input).display = False
        self.query_one("#action-progress", ProgressBar).display = False
        if self.kind == "flushdb":
            self.make_plan(None)
        elif self.kind == "tags":
            self._say("looking for tags…")
            self.list_tags()
        else:
            box = self.query_one("#action-input", Input)
            if self.initial:
                box.value = self.initial
            box.focus()

    # -- input ----------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "action-input":
            self._preview()
        elif event.input.id == "action-confirm":
            self._run()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "action-preview-button":
            self._preview()
        elif event.button.id == "action-run":
            self._run()
        elif event.button.id == "action-close":
            self.action_cancel()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.make_plan(str(event.option.id).encode("utf-8", "surrogateescape"))

    def _preview(self) -> None:
        if self.running:
            return
        if self.kind in ("flush", "delete"):
            value = self.query_one("#action-input", Input).value
            if not value:
                self._say("type a pattern first" if self.kind == "flush" else "type a key first",
                          "yellow")
                return
            self.make_plan(value.encode("utf-8", "surrogateescape"))
        elif self.kind == "flushdb":
            self.make_plan(None)

    # -- workers (blocking network I/O, off the UI thread) -----------------------------------

    @work(thread=True, exclusive=True, group="action-plan", exit_on_error=False)
    def make_plan(self, value: bytes | None) -> None:
        self.app.call_from_thread(self._say, "previewing…")
        try:
            common = {"read_only": self.read_only, "guard": self.guard}
            if self.kind == "flush":
                plan = actions.plan_flush(self.target, value or b"", **common)
            elif self.kind == "delete":
                plan = actions.plan_delete(self.target, value or b"", **common)
            elif self.kind == "flushdb":
                plan = actions.plan_flushdb(self.target, **common)
            else:
                plan = actions.plan_invalidate(self.target, [value or b""], **common)
        except actions.ActionError as exc:
            self.post_message(Planned(None, plain(str(exc), 300)))
            return
        self.post_message(Planned(plan, None))

    @work(thread=True, exclusive=True, group="action-tags", exit_on_error=False)
    def list_tags(self) -> None:
        try:
            tags = actions.list_tags(self.target)
        except actions.ActionError as exc:
            self.post_message(TagsListed((), plain(str(exc), 300)))
            return
        self.post_message(TagsListed(tags, None))

    @work(thread=True, exclusive=True, group="action-run", exit_on_error=False)
    def execute(self, plan: actions.ActionPlan, confirmation: str | None) -> None:
        result = actions.execute(plan, lambda p: self.post_message(Progressed(p)),
                                 self.cancel_event, confirmation=confirmation)
        self.post_message(Finished(result))

    # -- results of the workers -----------------------------------------------------------

    def on_tags_listed(self, message: TagsListed) -> None:
        if message.error:
            self._say(message.error, "red")
            return
        options = self.query_one("#action-tags", OptionList)
        for tag in message.tags:
            label = Text(plain(tag.tag))
            size = getattr(tag, "size", None)
            if size is not None:
                label.append(f"  {size} keys", style="grey70")
            options.add_option(Option(label, id=tag.tag.decode("utf-8", "surrogateescape")))
        self._say(f"{len(message.tags)} tags: pick one (enter) to preview" if message.tags
                  else "no tags found in this dialect", "grey70")
        options.focus()

    def on_planned(self, message: Planned) -> None:
        if message.error:
            self._say(message.error, "red")
            return
        plan = message.plan
        assert plan is not None
        self.plan = plan
        preview = Text()
        for line in plan_lines(plan):
            style = "red" if plan.refusal and line == plan.refusal else (
                "yellow" if line.startswith("warning") else "")
            preview.append(line + "\n", style=style)
        self.query_one("#action-preview", Static).update(preview)
        run = self.query_one("#action-run", Button)
        if plan.refusal:
            run.disabled = True
            self._say(f"refused: {plan.refusal}", "bold red")
            self.execute(plan, None)  # records the refusal in the audit log; deletes nothing
            return
        count = plan.count
        run.label = f"Delete {count} keys" if count is not None and plan.count_exact else "Run"
        run.disabled = False
        if plan.confirm_name:
            box = self.query_one("#action-confirm", Input)
            box.display = True
            box.focus()
            why = plan.confirm_why or "prod target"
            self._say(f"{why}: type {plain(plan.confirm_name)} to confirm", "yellow")
        else:
            run.focus()
            self._say("press Delete to run, escape to cancel", "grey70")

    def _run(self) -> None:
        plan = self.plan
        if plan is None or self.running or plan.refusal:
            return
        typed = None
        if plan.confirm_name:
            typed = self.query_one("#action-confirm", Input).value
            if typed != plan.confirm_name:
                self._say("the typed name does not match", "bold red")
                return
        self.running = True
        self.query_one("#action-run", Button).disabled = True
        bar = self.query_one("#action-progress", ProgressBar)
        bar.display = True
        bar.update(total=plan.count if plan.count else None, progress=0)
        self._say("running… escape cancels after the current batch", "yellow")
        self.execute(plan, typed)

    def on_progressed(self, message: Progressed) -> None:
        p = message.progress
        bar = self.query_one("#action-progress", ProgressBar)
        bar.update(total=p.planned if p.planned else None, progress=p.deleted + p.already_gone)
        self._say(progress_line(p), "yellow")

    def on_finished(self, message: Finished) -> None:
        result = message.result
        self.running = False
        if result.status == "refused":
            return  # already shown; the audit line is written
        severity = "information" if result.status == "done" else "warning"
        if result.status == "failed" or result.audit_error:
            severity = "error"
        self.app.notify(plain(result.summary, 300), title=f"{result.action}: {result.status}",
                        severity=severity, timeout=8)  # type: ignore[arg-type]
        self.dismiss(None)

    def action_cancel(self) -> None:
        if self.running:
            self.cancel_event.set()
            self._say("cancelling after the current batch…", "bold yellow")
            return
        self.dismiss(None)

    def _say(self, text: str, style: str = "") -> None:
        self.query_one("#action-status", Static).update(Text(text, style=style))
