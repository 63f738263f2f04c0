"""Write a benchmark's result into its own marked section of a docs page, leaving the rest alone."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def write_section(key: str, body: str, page: str = "benchmarks.md") -> Path:
    """Replace ``<!-- begin KEY --> ... <!-- end KEY -->`` in ``docs/PAGE`` (appended if absent)."""
    path = DOCS / page
    begin, end = f"<!-- begin {key} -->", f"<!-- end {key} -->"
    text = path.read_text(encoding="utf-8") if path.is_file() else (
        "# Benchmarks\n\nSide-by-side measurements written by the scripts in `benchmarks/`.\n")
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text and end in text:
        text = text.split(begin, 1)[0] + block + text.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
    return path
