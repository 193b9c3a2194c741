"""Provides plain-text lines and JSON documents for plans and results (CLI, TUI, scripts).

Everything here is already display-safe: keys, patterns and tags went through
text_safety.plain when the plan was built, and raw keys appear only as hex in JSON.
"""

from __future__ import annotations

from typing import Any

from cachetop.actions.plan import ActionPlan, ActionResult, Progress, target_label
from cachetop.formatting import size
from cachetop.text_safety import exact


def ttl_text(ttl_s: float | None, exists: bool | None) -> str:
    if exists is False:
        return "gone"
    if ttl_s is None:
        return "no ttl" if exists else "ttl ?"
    return f"ttl {ttl_s:.0f}s"


def plan_lines(plan: ActionPlan) -> list[str]:
    """The preview an operator reads before confirming."""
    count = "unknown" if plan.count is None else (
        f"{plan.count}" if plan.count_exact else f"~{plan.count}")
    lines = [f"plan: {plan.description}", f"keys: {count} ({plan.count_note})"]
    if plan.memory_bytes is not None:
        note = f" ({plan.memory_note})" if plan.memory_note else ""
        lines.append(f"memory: ~{size(plan.memory_bytes)}{note}")
    if plan.sample:
        lines.append(f"sample ({len(plan.sample)} key{'' if len(plan.sample) == 1 else 's'}):")
        for key in plan.sample:
            extra = f"  {size(key.size_bytes)}" if key.size_bytes is not None else ""
            lines.append(f"  {key.display}  {ttl_text(key.ttl_s, key.exists)}{extra}")
    lines += [f"protected: {p}" for p in plan.protection]
    lines += [f"warning: {w}" for w in plan.warnings]
    if plan.nothing:
        lines.append(f"nothing to do: {plan.nothing}")
    if plan.refusal:
        lines.append(plan.refusal)
    elif plan.confirm_name:
        why = plan.confirm_why or f"{exact(plan.confirm_name)} is a prod target"
        lines.append(f"{why}: confirming needs {exact(plan.confirm_name)} typed")
    return lines


def dry_run_line(plan: ActionPlan) -> str:
    """The final line of a dry run; scripts may rely on its shape."""
    head = f"{plan.action} {target_label(plan.target)} {plan.subject}"
    if plan.nothing:
        return f"{head}: dry run: {plan.nothing}"
    if plan.count is None:
        return f"{head}: dry run: {plan.count_note}"
    count = plan.count if plan.count_exact else f"~{plan.count}"
    return f"{head}: dry run: {count} keys would be deleted ({plan.count_note})"


def progress_line(p: Progress) -> str:
    of = f" of {p.planned}" if p.planned is not None else ""
    limit = f", limit {p.limit_keys_per_s:.0f}/s" if p.limit_keys_per_s is not None else ""
    return (f"{p.phase}: scanned {p.scanned}, deleted {p.deleted}{of} "
            f"({p.rate_keys_per_s:.0f} keys/s{limit}) {p.elapsed_s:.1f}s")


def plan_document(plan: ActionPlan) -> dict[str, Any]:
    return {
        "action": plan.action, "target": plan.target.name, "address": plan.target.address,
        "kind": plan.target.kind, "subject": plan.subject, "description": plan.description,
        "args": dict(plan.args), "count": plan.count, "count_exact": plan.count_exact,
        "count_note": plan.count_note,
        "sample": [{"key": k.display, "key_hex": k.key.hex(), "ttl_s": k.ttl_s,
                    "exists": k.exists, "size_bytes": k.size_bytes} for k in plan.sample],
        "memory_bytes": plan.memory_bytes, "warnings": list(plan.warnings),
        "refusal": plan.refusal, "needs_typed_name": plan.needs_typed_name,
        "confirm_name": plan.confirm_name, "confirm_why": plan.confirm_why,
        "wipes_all": plan.wipes_all, "protection": list(plan.protection),
        "nothing": plan.nothing or None,
    }


def result_document(result: ActionResult) -> dict[str, Any]:
    return {
        "action": result.action, "target": result.target_name, "address": result.address,
        "status": result.status, "planned": result.planned, "deleted": result.deleted,
        "already_gone": result.already_gone, "scanned": result.scanned,
        "skipped": result.skipped, "skipped_why": list(result.skipped_why),
        "errors": list(result.errors), "notes": list(result.notes), "left": list(result.left),
        "duration_s": round(result.duration_s, 3), "summary": result.summary,
        "audit_error": result.audit_error, "run": result.run_id,
    }
