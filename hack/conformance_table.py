"""Write `make conformance-matrix`'s results into docs/testing.md (run by hack/conformance-matrix.sh).

Usage: conformance_table.py RESULTS_DIR DOC COMMIT. RESULTS_DIR holds `summary` (one line per version:
`<version> <pytest exit code> <seconds>`) and `<version>.xml` (pytest's JUnit XML). The table
between the `conformance-matrix:begin` and `:end` markers of DOC gets one row per version: this
run's versions replace their rows (and their lists of failing tests under it), the others are
kept, newest first.
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

BEGIN, END = "<!-- conformance-matrix:begin -->", "<!-- conformance-matrix:end -->"
HEADER = (
    "| Kubernetes | e2e result | passed | failed | skipped or expected failures | wall time | commit "
    "| date |\n|---|---|---|---|---|---|---|---|"
)


def _row(version: str, code: int, seconds: int, xml: Path, commit: str) -> tuple[str, list[str]]:
    if not xml.is_file():
        return f"| {version} | no result (pytest exit {code}) | | | | {seconds} s | {commit} | |", []
    suite = ET.parse(xml).getroot()  # noqa: S314 - our own pytest's output
    suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
    assert suite is not None
    total, skipped = int(suite.get("tests", 0)), int(suite.get("skipped", 0))
    failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    failures = [
        f"{case.get('classname')}::{case.get('name')}"
        for case in suite.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    verdict = "pass" if code == 0 else f"FAIL (exit {code})"
    minutes, rest = divmod(seconds, 60)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    passed = total - failed - skipped
    cells = [version, verdict, passed, failed, skipped, f"{minutes} min {rest} s", commit, day]
    return "| " + " | ".join(str(c) for c in cells) + " |", failures


def _minor(row: str) -> tuple[int, ...]:
    match = re.match(r"\| v(\d+)\.(\d+)\.(\d+)", row)
    return tuple(int(n) for n in match.groups()) if match else (0,)


def main(results: Path, doc: Path, commit: str) -> None:
    text = doc.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{doc}: the markers {BEGIN} and {END} are missing")
    head, rest = text.split(BEGIN, 1)
    block, tail = rest.split(END, 1)
    kept = {r.split("|")[1].strip(): r for r in block.splitlines() if re.match(r"\| v\d", r)}
    runs = [line.split() for line in (results / "summary").read_text(encoding="utf-8").splitlines()]
    rerun = {run[0] for run in runs}
    notes = [n for n in block.splitlines() if n.startswith("- v") and n[2:].split(":")[0] not in rerun]
    for version, code, seconds in runs:
        row, failures = _row(version, int(code), int(seconds), results / f"{version}.xml", commit)
        kept[version] = row
        notes += [f"- {version}: `{name}` failed" for name in failures]
    rows = sorted(kept.values(), key=_minor, reverse=True)
    body = "\n".join([HEADER, *rows]) + ("\n\n" + "\n".join(notes) if notes else "")
    doc.write_text(f"{head}{BEGIN}\n{body}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
