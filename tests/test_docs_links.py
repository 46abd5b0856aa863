"""Every relative link in README.md and docs/*.md resolves inside the repository: a clone has
no ../shared/, so documentation must link only to files it ships (and to headings that exist)."""

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "tests" / "clients" / "README.md",
]

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|^\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _links(markdown: str) -> list[str]:
    text = _FENCE.sub("", markdown)  # links in code blocks are examples, not links
    return [inline or reference for inline, reference in _LINK.findall(text)]


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", _FENCE.sub("", markdown), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower().replace("`", "")).replace(" ", "-")
        anchors.add(slug)
    return anchors


def _relative_links() -> list[tuple[Path, str]]:
    found = []
    for document in DOCUMENTS:
        for link in _links(document.read_text(encoding="utf-8")):
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith("mailto:"):
                continue
            found.append((document, link))
    return found


def test_the_documents_have_relative_links_to_check() -> None:
    assert (ROOT / "docs" / "API.md") in DOCUMENTS
    assert any(link == "docs/API.md" for _, link in _relative_links())


@pytest.mark.parametrize(
    ("document", "link"),
    _relative_links(),
    ids=lambda value: str(value.relative_to(ROOT)) if isinstance(value, Path) else value,
)
def test_relative_link_resolves(document: Path, link: str) -> None:
    parts = urlsplit(link)
    target = (document.parent / unquote(parts.path)).resolve() if parts.path else document
    assert target.is_relative_to(ROOT), f"{document.name}: {link} leaves the repository"
    assert target.exists(), f"{document.name}: {link} does not exist"
    if parts.fragment and target.suffix == ".md":
        anchors = _anchors(target.read_text(encoding="utf-8"))
        assert parts.fragment in anchors, f"{document.name}: {link}: no such heading"
