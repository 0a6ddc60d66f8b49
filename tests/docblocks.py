"""Code blocks and links of README.md and docs/ (helpers of tests/test_docs.py and tests/test_doc_blocks.py).

The convention (docs/dev/testing.md): a python, bash or yaml block runs unless the line right after its
closing fence is `<!-- doc-test: skip: REASON -->` or `<!-- doc-test: covered-by tests/FILE.py::TEST -->`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_LANGS = ("python", "bash", "yaml")
_FENCE = re.compile(r"^```(\S*)\s*$")
_NOTE = re.compile(r"^<!-- doc-test: (?:(skip): (.+?)|(covered-by) (\S+)) -->\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    skip: str | None = None  # the reason
    covered_by: str | None = None  # tests/FILE.py::TEST

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT).as_posix()}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.lang in RUN_LANGS and self.skip is None and self.covered_by is None


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start, lang = i, match.group(1)
        i += 1
        while i < len(lines) and lines[i].rstrip() != "```":
            i += 1
        code = "\n".join(lines[start + 1:i]) + "\n"
        note = _NOTE.match(lines[i + 1]) if i + 1 < len(lines) else None
        skip = note.group(2) if note and note.group(1) else None
        covered = note.group(4) if note and note.group(3) else None
        out.append(Block(path, start + 1, lang, code, skip, covered))
        i += 1
    return out


def all_blocks() -> list[Block]:
    return [b for page in pages() for b in blocks(page)]


def prose(path: Path) -> str:
    """The page without its code blocks and inline code (links inside them are examples, not links)."""
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def links(path: Path) -> list[str]:
    text = prose(path)
    return re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r"<(https?://[^>\s]+)>", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"(?<!\w)_+|_+(?!\w)", "", text)  # emphasis, not an underscore inside a word (use_hpip)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    heads = re.findall(r"^#{1,6}\s+(.+?)\s*$", prose(path), flags=re.M)
    return {slug(h) for h in heads}
