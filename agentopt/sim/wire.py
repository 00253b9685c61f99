"""Helpers both wire formats share: stream events, text splitting, bad requests."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BadRequest", "Event", "split_text"]

_MAX_PIECES = 24


class BadRequest(ValueError):
    """The request body is not valid for its endpoint (answered with a 400)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True, slots=True)
class Event:
    """One SSE event and the unscaled delay before it is sent."""

    delay_s: float
    data: bytes
    terminal: bool = False  # the event that completes a stream ([DONE], message_stop)


def split_text(text: str) -> list[tuple[str, float]]:
    """``text`` cut at word boundaries into at most 24 pieces, each with its share
    of the whole (for spreading output-token time over the stream)."""
    if not text:
        return [("", 1.0)]
    words = text.split(" ")
    per = max(1, -(-len(words) // _MAX_PIECES))
    pieces = [" ".join(words[i : i + per]) for i in range(0, len(words), per)]
    pieces = [p + " " for p in pieces[:-1]] + [pieces[-1]]
    total = len(text)
    return [(p, len(p) / total) for p in pieces]
