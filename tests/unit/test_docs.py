"""The documents hold together: every citation of the design names a section that exists, nothing
cites documents that are not in the repository, and every relative Markdown link resolves.

Citations are read the way people write them in comments and docstrings: the design's path, then
a comma, an opening parenthesis, or a colon before several headings separated by semicolons,
possibly wrapped over lines of a comment (test_citations_are_read_as_people_write_them shows
each form). This file is the checker: its examples are test data, not citations. Links and anchors
follow GitHub's rendering (heading slugs in lower case, punctuation dropped, spaces as hyphens).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DESIGN = ROOT / "docs" / "design.md"
# The sections code and documents cite; they must stay (renaming one means updating every citation).
REQUIRED_SECTIONS = (
    "The API",
    "Ownership",
    "Directory semantics",
    "Conditions",
    "Triggers",
    "Architecture",
    "The sandbox contract",
    "Platform facts",
)
SKIPPED_DIRS = {
    ".git", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", ".sandbox",
    "__pycache__", "build", "dist", "node_modules",
}  # fmt: skip
TEXT_SUFFIXES = {".py", ".md", ".toml", ".yaml", ".yml", ".txt", ".cfg", ".ini", ".sh", ".env", ".go"}
TEXT_NAMES = {"Makefile", "Dockerfile"}
# Two documents that lived outside the repository once; nothing may point at them any more.
OUTSIDE_DOCUMENTS = re.compile(r"\bDESIGN(?:\.md)? section\b|\bFACTS\b")
# Comment markers that start a wrapped line of a citation.
_CONTINUATION = re.compile(r"[ \t]*\n[ \t]*(?:(?:#|//|\*)+[ \t]*)?")
_CITATION = re.compile(
    r"docs/design\.md(?:#(?P<anchor>[\w-]+)|(?P<sep>\s*[,:]\s*|\s+\(\s*)(?P<text>[^\n]{0,200}))"
)
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def tree_files() -> Iterator[Path]:
    """Every text file of the checkout that people or tools read (no caches, no virtualenv)."""
    stack = [ROOT]
    while stack:
        folder = stack.pop()
        for path in sorted(folder.iterdir()):
            if path.is_dir():
                if path.name not in SKIPPED_DIRS and not path.name.endswith(".egg-info"):
                    stack.append(path)
            elif path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES:
                yield path


def headings(markdown: str) -> list[str]:
    """The `##` and `###` headings of a document (outside code blocks)."""
    text = _FENCE.sub("", markdown)
    return [match.group(2).strip() for match in re.finditer(r"^(##|###) (.+)$", text, re.MULTILINE)]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    text = _FENCE.sub("", markdown)
    return {slug(match.group(1)) for match in re.finditer(r"^#{1,6} (.+)$", text, re.MULTILINE)}


def cited_sections(text: str) -> list[str]:
    """What follows each `docs/design.md` citation: the text that must start with a heading.

    `docs/design.md: A; B` cites several sections; `docs/design.md, A; see x` cites one.
    A mention without a section (a link, a path in a list) cites nothing.
    """
    joined = _CONTINUATION.sub(" ", text)
    cited: list[str] = []
    for match in _CITATION.finditer(joined):
        if match.group("anchor"):
            continue  # anchors are checked with the links
        items = match.group("text").split(";") if ":" in match.group("sep") else [match.group("text")]
        cited.extend(item.strip() for item in items)
    return cited


def starts_with_section(text: str, sections: list[str]) -> bool:
    return any(re.match(re.escape(section) + r"(?![A-Za-z])", text) for section in sections)


def test_design_has_every_section_the_tree_cites_by_name() -> None:
    assert [s for s in REQUIRED_SECTIONS if s not in headings(DESIGN.read_text(encoding="utf-8"))] == []


def checked_files() -> list[Path]:
    """The tree without this file, whose examples would otherwise count as citations."""
    this_file = Path(__file__).resolve()
    return [path for path in tree_files() if path.resolve() != this_file]


def test_every_citation_of_the_design_names_an_existing_section() -> None:
    sections = headings(DESIGN.read_text(encoding="utf-8"))
    broken = [
        f"{path.relative_to(ROOT)}: cites {cited[:60]!r}"
        for path in checked_files()
        for cited in cited_sections(path.read_text(encoding="utf-8", errors="replace"))
        if not starts_with_section(cited, sections)
    ]
    assert broken == []


def test_nothing_cites_documents_outside_the_repository() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}"
        for path in checked_files()
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if OUTSIDE_DOCUMENTS.search(line)
    ]
    assert found == []


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("document", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_to_files_and_headings(document: Path) -> None:
    text = _FENCE.sub("", document.read_text(encoding="utf-8"))
    broken = []
    for match in _LINK.finditer(text):
        target = match.group("target")
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto: and the like
        path_part, _, anchor = target.partition("#")
        linked = (document.parent / path_part).resolve() if path_part else document
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text(encoding="utf-8")):
            broken.append(f"{target}: no such heading")
    assert broken == []


@pytest.mark.parametrize(
    ("text", "cited"),
    [
        ("# see docs/design.md, Ownership.", ["Ownership."]),
        ("(docs/design.md: The API; Conditions).", ["The API", "Conditions)."]),
        ("as in docs/design.md\n    # (The sandbox contract)", ["The sandbox contract)"]),
        ("[design](docs/design.md) and docs/design.md#architecture", []),
        ("docs/design.md, Platform\n# facts: tokens", ["Platform facts: tokens"]),
    ],
)
def test_citations_are_read_as_people_write_them(text: str, cited: list[str]) -> None:
    assert cited_sections(text) == cited


def test_a_citation_of_a_missing_section_is_caught() -> None:
    sections = headings(DESIGN.read_text(encoding="utf-8"))
    assert not starts_with_section("Section 4", sections)
    assert not starts_with_section("The APIs", sections)
    assert starts_with_section("Platform facts: workload identity", sections)
