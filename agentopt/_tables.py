"""Rich tables that stay complete at narrow widths (80-column logs, CI, terminals).

Figures never wrap or get cut; only the name columns give way: :func:`fit`
builds a table with the name columns capped at the widest width that fits, and
:func:`wrap_name` breaks a long model name at ``/ - . _ :`` where it can.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["fit", "needed_width", "wrap_name"]


def wrap_name(name: str, width: int) -> str:
    """``name`` on lines of at most ``width``, broken after ``/ - . _ :`` where possible."""
    lines: list[str] = []
    line = ""
    for token in re.split(r"(?<=[/\-._:])", name):
        while len(token) > width:  # a piece longer than a line: cut it
            if line:
                lines.append(line)
                line = ""
            lines.append(token[:width])
            token = token[width:]
        if len(line) + len(token) > width:
            lines.append(line)
            line = ""
        line += token
    if line:
        lines.append(line)
    return "\n".join(lines)


def needed_width(console: Any, renderable: Any) -> int:
    """The width ``renderable`` takes when nothing constrains it."""
    return int(console.measure(renderable, options=console.options.update_width(10_000)).maximum)


def fit(console: Any, build: Callable[[int | None], Any], longest: int, floor: int = 8) -> Any:
    """``build(None)`` if it fits ``console.width``, else ``build(cap)`` with the largest
    name-column cap (down to ``floor``) that fits."""
    table = build(None)
    if needed_width(console, table) <= console.width:
        return table
    cap = longest
    while cap > floor and needed_width(console, build(cap)) > console.width:
        cap -= 1
    return build(cap)
