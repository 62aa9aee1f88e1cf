"""Docstrings and comments that cite a section of the shipped docs cite one that exists.

A reference is written as docs/NAME.md, a comma and the section's title in double quotes (possibly
wrapped over lines, with a comment's ``#`` in between); the title must be a heading of that page, so a
renamed section fails here instead of leaving the code pointing at nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCE = re.compile(r'docs/([\w.-]+\.md),\s+"([^"]+)"')


def _headings(page: Path) -> set[str]:
    return {line.lstrip("#").strip() for line in page.read_text(encoding="utf-8").splitlines() if line.startswith("#")}


def references() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted((REPO / "src" / "receval").rglob("*.py")) + sorted((REPO / "tests").glob("*.py")):
        # join wrapped lines: indentation and a comment's leading '#' are not part of the title
        text = re.sub(r"\s*\n\s*#?\s*", " ", path.read_text(encoding="utf-8"))
        for page, title in REFERENCE.findall(text):
            found.append((str(path.relative_to(REPO)), page, title))
    return found


def test_every_cited_docs_section_exists():
    assert len(references()) >= 10  # the scan does find the citations
    missing = [f"{where}: docs/{page}, \"{title}\"" for where, page, title in references()
               if not (REPO / "docs" / page).exists() or title not in _headings(REPO / "docs" / page)]
    assert not missing, "citations of sections that do not exist:\n" + "\n".join(missing)


def test_no_citation_of_the_old_numbered_sections():
    old = re.compile(r"metrics\.md §|decision \d+\.\d+")
    cited = [str(p.relative_to(REPO)) for p in sorted((REPO / "src" / "receval").rglob("*.py"))
             if old.search(p.read_text(encoding="utf-8"))]
    assert not cited, cited
