"""The provenance marker a simulated model appends to its output.

When an agent passes one model's output to a later call (a plan to a solver,
an answer to a critic), the later call reads the marker: who produced the
text, which known question it answered, whether it was right, and how much
the producer's output helps. Markers are letters only (no digits, no capital
A-D on their own), so graders that look for numbers or answer letters are not
confused by them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Marker", "find_markers", "strip_markers"]

_OPEN, _CLOSE = "\u27e6sim:", "\u27e7"
_RE = re.compile("\u27e6sim:([a-p]+)\u27e7")
_ENC = str.maketrans("0123456789", "ghijklmnop")
_DEC = str.maketrans("ghijklmnop", "0123456789")


@dataclass(frozen=True, slots=True)
class Marker:
    """model: producer; item: known question id or ""; correct: 1/0, -1 unknown;
    help: the producer's effect on a reader in [-1, 1]; score: a replayed score."""

    model: str
    item: str = ""
    correct: int = -1
    help: float = 0.0
    score: float | None = None

    def encode(self) -> str:
        score = "" if self.score is None else f"{self.score:.6g}"
        raw = f"{self.model}|{self.item}|{self.correct}|{self.help:.4g}|{score}"
        return f"{_OPEN}{raw.encode().hex().translate(_ENC)}{_CLOSE}"

    @classmethod
    def decode(cls, letters: str) -> Marker | None:
        try:
            model, item, correct, help_, score = (
                bytes.fromhex(letters.translate(_DEC)).decode().rsplit("|", 4)
            )
            return cls(model, item, int(correct), float(help_), float(score) if score else None)
        except (ValueError, UnicodeDecodeError):
            return None


def find_markers(text: str) -> list[Marker]:
    """Every well-formed marker in ``text``, in order."""
    if _OPEN not in text:
        return []
    out = []
    for letters in _RE.findall(text):
        m = Marker.decode(letters)
        if m is not None:
            out.append(m)
    return out


def strip_markers(text: str) -> str:
    """``text`` without its markers (and the blank line before each)."""
    return _RE.sub("", text).rstrip()
