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
from textual.widgets import Button, Input, OptionList, ProgressBar, SelectionList, Static
from textual.widgets.option_list import Option

from cachetop import actions
from cachetop.actions.describe import plan_lines, progress_line
from cachetop.collectors.base import Target
from cachetop.text_safety import plain
from cachetop.tui.badges import badges

TITLES = {"flush": "Flush keys by pattern", "flushdb": "Flush the database",
          "delete": "Delete keys", "tags": "Invalidate a tag"}
RUN_LABELS = {"flush": "Delete", "flushdb": "Flush", "delete": "Delete", "tags": "Invalidate"}


def run_label(plan: actions.ActionPlan) -> str:
    """The run button says what it does: `Delete 12 keys`, `FLUSHDB db 0`, `flush_all`."""
    spec = plan.spec
    if plan.action == "flush_all":
        return "flush_all"
    if plan.action == "flushdb":
        return f"FLUSHDB db {getattr(spec, 'db', 0)}"
    verb = "Invalidate" if plan.action == "invalidate" else "Delete"
    if plan.count is None or not plan.count_exact:
        return verb if plan.count is None else f"{verb} ~{plan.count} keys"
    return f"{verb} {plan.count} key{'' if plan.count == 1 else 's'}"


def tag_order(tags: tuple[actions.TagIndex, ...], by_live: bool) -> list[actions.TagIndex]:
    """The picker's order: most live keys first (unknown last), ties in natural name order;
    or natural name order alone (list_tags already returns that)."""
    if not by_live:
        return list(tags)
    rank = {id(t): i for i, t in enumerate(tags)}
    return sorted(tags, key=lambda t: (t.live is None, -(t.live or 0), rank[id(t)]))


def tag_label(tag: actions.TagIndex) -> Text:
    label = Text(plain(tag.tag))
    if tag.live is not None and tag.size is not None:
        about = "" if tag.live_exact else "~"
        label.append(f"  {about}{tag.live} live of {tag.size} keys", style="grey70")
    elif tag.size is not None:
        label.append(f"  {tag.size} keys", style="grey70")
    if tag.detail:
        label.append(f"  {plain(tag.detail)}", style="grey50")
    return label


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

    BINDINGS = [Binding("escape", "cancel", "Cancel / close", id="action.cancel"),
                Binding("s", "sort_tags", "Sort tags", show=False, id="action.sort_tags")]

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
        self.tags: tuple[actions.TagIndex, ...] = ()
        self.tags_by_live = True

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
                yield Input(placeholder="exact key (enter: add it and preview; enter on an "
                            "empty line: delete)", id="action-input")
                yield SelectionList[str](id="action-keys")
            elif self.kind == "tags":
                yield OptionList(id="action-tags")
            with VerticalScroll(id="action-preview-box"):
                yield Static(Text("", style="grey70"), id="action-preview")
            yield Input(placeholder="type the target's name to confirm", id="action-confirm")
            yield ProgressBar(id="action-progress", show_eta=False)
            yield Static(id="action-status")
            with Horizontal(id="action-buttons"):
                yield Button("Preview", id="action-preview-button", variant="primary")
                yield Button(RUN_LABELS[self.kind], id="action-run", variant="error",
                             disabled=True)
                yield Button("Close", id="action-close")

    def on_mount(self) -> None:
        self.query_one("#action-confirm", Input).display = False
        self.query_one("#action-progress", ProgressBar).display = False
        if self.kind == "delete":
            self.query_one("#action-keys", SelectionList).display = False
        if self.kind == "tags":  # enter on a tag previews it: no second way to say so
            self.query_one("#action-preview-button", Button).display = False
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
            if self.kind == "delete" and not event.value and self.plan is not None:
                self._run_or_confirm()  # enter on an empty line: delete what is ticked
            else:
                self._preview()
        elif event.input.id == "action-confirm":
            self._run()

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged) -> None:
        """A key ticked or unticked: preview the ticked keys again (or say there are none)."""
        if self.kind != "delete" or self.running:
            return
        keys = self._chosen_keys()
        if keys:
            self._replan(keys)
        else:
            self.plan = None
            self.query_one("#action-run", Button).disabled = True
            self.query_one("#action-preview", Static).update(Text(""))
            self._say("no key ticked: type a key and press enter", "grey70")

    def _chosen_keys(self) -> list[bytes]:
        return [bytes.fromhex(v) for v in self.query_one("#action-keys", SelectionList).selected]

    def _add_key(self, key: bytes) -> list[bytes]:
        """Add a typed key to the multi-select, ticked (or tick it again); the ticked keys."""
        chosen = self.query_one("#action-keys", SelectionList)
        value = key.hex()
        try:
            chosen.get_option(value)
        except Exception:  # noqa: BLE001 - OptionDoesNotExist: a new key
            chosen.add_option((Text(plain(key, 200)), value, True))
        with chosen.prevent(SelectionList.SelectedChanged):
            chosen.select(value)
        chosen.display = True
        return self._chosen_keys()

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
            box = self.query_one("#action-input", Input)
            value = box.value
            if not value and not (self.kind == "delete" and self._chosen_keys()):
                self._say("type a pattern first" if self.kind == "flush" else "type a key first",
                          "yellow")
                return
            typed = value.encode("utf-8", "surrogateescape")
            if self.kind == "delete":
                keys = self._add_key(typed) if value else self._chosen_keys()
                box.value = ""
                self._replan(keys)
            else:
                self._replan(typed)
        elif self.kind == "flushdb":
            self.make_plan(None)

    def _replan(self, value: bytes | list[bytes]) -> None:
        """Preview again; until the new plan arrives, nothing can run the old one."""
        self.plan = None
        self.query_one("#action-run", Button).disabled = True
        self.make_plan(value)

    # -- workers (blocking network I/O, off the UI thread) -----------------------------------

    @work(thread=True, exclusive=True, group="action-plan", exit_on_error=False)
    def make_plan(self, value: bytes | list[bytes] | None) -> None:
        self.app.call_from_thread(self._say, "previewing…")
        try:
            common = {"read_only": self.read_only, "guard": self.guard}
            if self.kind == "delete":
                plan = actions.plan_delete(self.target, value or b"", **common)
            elif isinstance(value, list):
                raise actions.ActionArgumentError("one pattern or tag at a time")
            elif self.kind == "flush":
                plan = actions.plan_flush(self.target, value or b"", **common)
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
        self.tags = message.tags
        self._show_tags()

    def _show_tags(self) -> None:
        """The tags in the picker's order, the first highlighted (enter previews it)."""
        options = self.query_one("#action-tags", OptionList)
        options.clear_options()
        for tag in tag_order(self.tags, self.tags_by_live):
            options.add_option(Option(tag_label(tag),
                                      id=tag.tag.decode("utf-8", "surrogateescape")))
        if self.tags:
            options.highlighted = 0
        order = "most live keys first" if self.tags_by_live else "by name"
        self._say(f"{len(self.tags)} tags, {order} (s: sort "
                  f"{'by name' if self.tags_by_live else 'by live keys'}): ↑↓ and enter to "
                  "preview" if self.tags else "no tags found in this dialect", "grey70")
        options.focus()

    def action_sort_tags(self) -> None:
        if self.kind == "tags" and self.tags and not self.running:
            self.tags_by_live = not self.tags_by_live
            self._show_tags()

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
        run.label = run_label(plan)
        run.refresh(layout=True)  # a longer label needs a wider button (width: auto)
        if plan.refusal:
            run.disabled = True
            refusal = plan.refusal
            self._say(refusal if refusal.startswith("refused") else f"refused: {refusal}",
                      "bold red")
            self.execute(plan, None)  # records the refusal in the audit log; deletes nothing
            return
        if plan.nothing or plan.count == 0:  # nothing to run: no "Delete 0 keys" button
            run.disabled = True
            run.label = "Nothing to delete"
            run.refresh(layout=True)
            self._say(f"nothing to delete: {plan.nothing or 'no key for ' + plan.subject}",
                      "yellow")
            return
        run.disabled = False
        if plan.confirm_name:
            box = self.query_one("#action-confirm", Input)
            box.display = True
            box.focus()
            why = plan.confirm_why or "prod target"
            self._say(f"{why}: type {plain(plan.confirm_name)} to confirm", "yellow")
        elif self.kind == "delete":  # the input keeps the focus: more keys may follow
            self._say(f"enter on an empty line (or {run.label}) runs; type another key to "
                      "add it; escape cancels", "grey70")
        else:
            run.focus()
            self._say(f"press {run.label} to run, escape to cancel", "grey70")

    def _run_or_confirm(self) -> None:
        """Run, or go to the typed-name box when the plan needs one."""
        plan = self.plan
        if plan is not None and plan.confirm_name:
            self.query_one("#action-confirm", Input).focus()
            return
        self._run()

    def _run(self) -> None:
        plan = self.plan
        if plan is None or self.running or plan.refusal or self.query_one(
                "#action-run", Button).disabled:
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
