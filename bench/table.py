"""The table every benchmark prints: figure | value | target | baseline, so a regression shows at a glance.

    table = Table("bench ground", "RoleBinding creates, 16 in flight")
    table.add("sandbox rate 20,000 / 1,000", f"{ratio:.2f}", target=">= 0.8", ok=ratio >= 0.8,
              baseline="0.15 (issue 17, before)")
    table.print()

`target` is what the issue asks for, `baseline` what the figure is compared with (the minimal kopf
operator in the same run, the plain client, or the figure before a change, saying which), `ok`
whether the target is met (None: no target, or not measured). Benchmarks print; they never assert
a figure (docs/testing.md, Benchmarks), so MISSED in the last column is the signal.

A case without figures prints what happened to it, never a bare "-": `not_run(request, shape="big")`
says "not run (deselected)" when no selected test of the module has those parameters, and "no
figure (its run failed or was stopped)" when one was selected but left nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

DESELECTED = "not run (deselected)"
NO_FIGURE = "no figure (its run failed or was stopped)"


@dataclass(frozen=True)
class Row:
    figure: str
    value: str
    target: str = ""
    baseline: str = ""
    ok: bool | None = None

    @property
    def verdict(self) -> str:
        return {True: "ok", False: "MISSED", None: ""}[self.ok]


@dataclass
class Table:
    title: str
    subtitle: str = ""
    rows: list[Row] = field(default_factory=list)

    def add(
        self, figure: str, value: str, *, target: str = "", baseline: str = "", ok: bool | None = None
    ) -> None:
        self.rows.append(Row(figure, value, target, baseline, ok))

    def render(self) -> str:
        header = Row("figure", "value", "target", "baseline")
        columns = [
            max(len(getattr(row, name)) for row in (header, *self.rows))
            for name in ("figure", "value", "target", "baseline")
        ]

        def line(row: Row, verdict: str) -> str:
            cells = (row.figure, row.value, row.target, row.baseline)
            text = " | ".join(cell.ljust(width) for cell, width in zip(cells, columns, strict=True))
            return f"  {text} | {verdict}".rstrip(" |")

        title = f"[{self.title}]" + (f" {self.subtitle}" if self.subtitle else "")
        rule = "  " + "-+-".join("-" * width for width in columns) + "-+-------"
        body = [line(row, row.verdict) for row in self.rows]
        return "\n".join([title, line(header, "verdict"), rule, *body])

    def print(self) -> None:
        print("\n" + self.render(), flush=True)


def not_run(request: pytest.FixtureRequest, **params: object) -> str:
    """Why a case of `request`'s module (the test parameters `params`) has no figure: deselected
    (-k, BENCH_* settings), or selected and left none."""
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if getattr(item, "module", None) is not request.module:
            continue
        given = callspec.params if callspec is not None else {}
        if all(given.get(name) == value for name, value in params.items()):
            return NO_FIGURE
    return DESELECTED
