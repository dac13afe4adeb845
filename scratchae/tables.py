"""A small table in a rounded box for the terminal (``scratchae trace`` and the command line's summaries),
with optional ANSI colours."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

STYLES = {"op": "1;36", "good": "32", "bad": "1;31", "dim": "2", "head": "1"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def color_default() -> bool:
    """Colour only when stdout is a terminal and NO_COLOR is not set."""
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def paint(text: str, style: str | None, color: bool) -> str:
    """``text`` in the ANSI colour of ``style`` (one of STYLES) when ``color``, else as it is."""
    return f"\x1b[{STYLES[style]}m{text}\x1b[0m" if color and style else text


@dataclass
class Group:
    """Rows drawn together; ``note`` is a line under them spanning the table (e.g. an op's formula)."""

    rows: list[list[Any]]
    note: str | None = None


def box_table(
    title: str, headers: Sequence[str] | None, groups: Sequence[Group], align: str, color: bool = False
) -> str:
    """A table in a rounded box: a title, a header (unless None), groups of rows separated by light rules.

    A cell is a string or ``(string, style)`` with style one of ``STYLES``; ``align`` has one
    ``l`` or ``r`` per column.
    """

    def text(cell: Any) -> str:
        return cell[0] if isinstance(cell, tuple) else str(cell)

    widths = [len(h) for h in headers] if headers else [0] * len(align)
    for g in groups:
        for row in g.rows:
            widths = [max(w, len(text(c))) for w, c in zip(widths, row, strict=True)]
    inner = max(
        [sum(widths) + 2 * (len(widths) - 1), len(title) + 2] + [len(g.note) + 4 for g in groups if g.note is not None]
    )

    def line(cells: Sequence[Any], head: bool = False) -> str:
        parts = []
        for w, a, c in zip(widths, align, cells, strict=True):
            t = text(c)
            padded = t.rjust(w) if a == "r" else t.ljust(w)
            style = "head" if head else (c[1] if isinstance(c, tuple) else None)
            parts.append(paint(padded, style, color))
        body = "  ".join(parts)
        return "│ " + body + " " * (inner - len(ANSI.sub("", body))) + " │"

    out = ["╭─ " + paint(title, "head", color) + " " + "─" * (inner - len(title) - 1) + "╮"]
    if headers:
        out += [line(headers, head=True), "├" + "─" * (inner + 2) + "┤"]
    for k, g in enumerate(groups):
        if k:
            out.append("│ " + paint("┄" * inner, "dim", color) + " │")
        out.extend(line(row) for row in g.rows)
        if g.note:
            out.append("│ " + " " * 4 + paint(g.note, "dim", color) + " " * (inner - 4 - len(g.note)) + " │")
    out.append("╰" + "─" * (inner + 2) + "╯")
    return "\n".join(out)
