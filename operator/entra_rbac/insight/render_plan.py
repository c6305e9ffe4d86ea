"""How a plan is printed: text (a terminal), json (scripts), markdown (a pull-request comment).

Holds pure functions from `ResourcePlan`s to a string; the exit code is the command's. Deletions
list every access they remove, and problems are named by reason and field, as status does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from entra_rbac.core.plan import Action, Verb
from entra_rbac.core.subjects import Subject
from entra_rbac.insight.plan import Grant, ResourcePlan

_SIGN = {Verb.CREATE: "+", Verb.PATCH: "~", Verb.REPLACE: "-/+", Verb.DELETE: "-"}


def subject_text(subject: Subject, names: Mapping[str, str]) -> str:
    display = names.get(subject.name)
    return f"{subject.kind} {display} ({subject.name})" if display else f"{subject.kind} {subject.name}"


def _verb(action: Action) -> str:
    """`adopt` for a patch that takes over a hand-made binding (docs/migration.md), else the verb."""
    return "adopt" if action.adopted else str(action.verb)


def _where(action: Action) -> str:
    return f"{action.namespace}/{action.name}" if action.namespace else action.name


def summary(plans: Sequence[ResourcePlan]) -> dict[str, int]:
    actions = [a for p in plans for a in p.plan.actions]
    return {
        "create": sum(a.verb is Verb.CREATE for a in actions),
        "update": sum(a.verb is Verb.PATCH and not a.adopted for a in actions),
        "adopt": sum(a.adopted for a in actions),
        "replace": sum(a.verb is Verb.REPLACE for a in actions),
        "delete": sum(a.verb is Verb.DELETE for a in actions),
        "gained": sum(len(p.gained) for p in plans),
        "lost": sum(len(p.lost) for p in plans),
        "problems": sum(len(p.problems) for p in plans),
    }


def _summary_line(plans: Sequence[ResourcePlan]) -> str:
    s = summary(plans)
    if not any(s[k] for k in ("create", "update", "adopt", "replace", "delete")):
        head = "No changes: the cluster already matches"
    else:
        head = (
            f"Plan: {s['create']} to create, {s['update']} to update, {s['replace']} to replace, "
            f"{s['delete']} to delete" + (f", {s['adopt']} to adopt" if s["adopt"] else "")
        )
    problems = f"; {s['problems']} problem{'s' if s['problems'] != 1 else ''}" if s["problems"] else ""
    return f"{head}; {s['gained']} grants gained, {s['lost']} lost{problems}."


def render(plans: Sequence[ResourcePlan], output: str, *, ignored: Sequence[str] = ()) -> str:
    if output == "json":
        return as_json(plans, ignored)
    if output == "markdown":
        return as_markdown(plans, ignored)
    return as_text(plans, ignored)


def _grant_text(sign: str, grant: Grant, names: Mapping[str, str]) -> str:
    return f"{sign} {subject_text(grant.subject, names)}: {grant.role} ({grant.scope})"


def as_text(plans: Sequence[ResourcePlan], ignored: Sequence[str] = ()) -> str:
    lines: list[str] = []
    for p in plans:
        lines.append(f"EntraGroupBinding {p.name}: {p.change}" + (f"  [{p.source}]" if p.source else ""))
        if p.note:
            lines.append(f"  {p.note}")
        for action in p.plan.actions:
            adopt = "adopt " if action.adopted else ""
            text = f"  {_SIGN[action.verb]} {adopt}{action.kind} {_where(action)} ({action.role_ref})"
            changes = action.subject_changes()
            lines.append(f"{text}: {changes}" if changes else text)
        for sign, found in (("+", p.gained), ("-", p.lost)):
            if found:
                lines.append(f"  access {'gained' if sign == '+' else 'lost'}:")
                lines.extend(f"    {_grant_text(sign, g, p.names)}" for g in found)
        for problem in p.problems:
            lines.append(f"  ! {problem.reason}: {problem.text()}")
    if ignored:
        lines.append(f"Not EntraGroupBindings, not planned: {', '.join(ignored)}")
    lines.append(_summary_line(plans))
    return "\n".join(lines) + "\n"


def _action_json(action: Action) -> dict[str, Any]:
    return {
        "action": _verb(action),
        "kind": action.kind,
        "namespace": action.namespace,
        "name": action.name,
        "roleRef": str(action.role_ref),
        "changes": list(action.changes),
        "added": [s.to_manifest() for s in action.added],
        "removed": [s.to_manifest() for s in action.removed],
    }


def _grant_json(grant: Grant, names: Mapping[str, str]) -> dict[str, Any]:
    subject: dict[str, Any] = {"kind": grant.subject.kind, "name": grant.subject.name}
    if grant.subject.name in names:
        subject["displayName"] = names[grant.subject.name]
    return {"subject": subject, "role": grant.role, "namespace": grant.namespace}


def as_json(plans: Sequence[ResourcePlan], ignored: Sequence[str] = ()) -> str:
    document = {
        "changes": any(p.changes for p in plans),
        "summary": summary(plans),
        "resources": [
            {
                "name": p.name,
                "change": p.change,
                "source": p.source,
                "note": p.note,
                "bindings": [_action_json(a) for a in p.plan.actions],
                "gained": [_grant_json(g, p.names) for g in p.gained],
                "lost": [_grant_json(g, p.names) for g in p.lost],
                "problems": [
                    {"reason": str(q.reason), "field": q.field, "message": q.message} for q in p.problems
                ],
            }
            for p in plans
        ],
        "ignored": list(ignored),
    }
    return json.dumps(document, indent=2) + "\n"


def _cell(text: str) -> str:
    """A markdown table cell: pipes escaped, no line breaks."""
    return text.replace("|", "\\|").replace("\n", " ")


def as_markdown(plans: Sequence[ResourcePlan], ignored: Sequence[str] = ()) -> str:
    lines = ["### entra-rbac plan", "", f"**{_summary_line(plans)}**", ""]
    for p in plans:
        lines.append(f"#### `{p.name}`: {p.change}" + (f" ({_cell(p.source)})" if p.source else ""))
        lines.append("")
        if p.note:
            lines.extend([p.note, ""])
        if p.plan.actions:
            lines.extend(["| | binding | role | subjects |", "|---|---|---|---|"])
            lines.extend(
                f"| {_verb(a)} | {a.kind} `{_cell(_where(a))}` | {a.role_ref} "
                f"| {_cell(a.subject_changes())} |"
                for a in p.plan.actions
            )
            lines.append("")
        changed = [("gained", g) for g in p.gained] + [("lost", g) for g in p.lost]
        if changed:
            lines.extend(["| access | who | role | scope |", "|---|---|---|---|"])
            lines.extend(
                f"| {what} | {_cell(subject_text(g.subject, p.names))} | {g.role} | {g.scope} |"
                for what, g in changed
            )
            lines.append("")
        if p.problems:
            lines.extend(f"- :warning: **{q.reason}**: {_cell(q.text())}" for q in p.problems)
            lines.append("")
    if ignored:
        lines.extend([f"Not EntraGroupBindings, not planned: {', '.join(ignored)}", ""])
    return "\n".join(lines)
