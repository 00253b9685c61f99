"""A rich progress bar for a selection: evaluations, dollars spent, arms alive.

Shown only where someone watches: a terminal or a Jupyter notebook, and not
under CI. Off, it costs nothing.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

from agentopt.records import Observation

__all__ = ["SelectionProgress", "progress_enabled"]


def progress_enabled(requested: bool, console: Any = None) -> bool:
    """Whether to draw: asked for, not under CI, and a terminal (or a notebook with
    ipywidgets) to draw on."""
    if not requested or os.environ.get("CI") or os.environ.get("AGENTOPT_NO_PROGRESS"):
        return False
    if console is None:
        from rich.console import Console

        console = Console(stderr=True)
    if console.is_jupyter:
        # rich draws live displays in notebooks through ipywidgets (else it only warns)
        import importlib.util

        return importlib.util.find_spec("ipywidgets") is not None
    return bool(console.is_terminal)


class SelectionProgress:
    """Context manager; call :meth:`observe` per observation and :meth:`alive` per round."""

    def __init__(
        self,
        *,
        total: int,
        n_arms: int,
        enabled: bool = True,
        description: str = "Selecting",
        console: Any = None,
    ) -> None:
        self.total = total
        self.evaluations = 0
        self.reused = 0
        self.spent = 0.0
        self.unpriced = 0
        self.n_alive = n_arms
        self.enabled = enabled
        self._description = description
        self._console = console
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> SelectionProgress:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("evals"),
            TextColumn("[green]{task.fields[spent]}"),
            TextColumn("[cyan]{task.fields[alive]} alive"),
            TimeElapsedColumn(),
            console=self._console or Console(stderr=True),
            transient=False,
        )
        self._progress.__enter__()
        self._task = self._progress.add_task(
            self._description, total=self.total, spent=self._spent_text(), alive=self.n_alive
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.__exit__(exc_type, exc, tb)
            self._progress = None

    def _spent_text(self) -> str:
        text = f"${self.spent:.4f}"
        return text + (f" (+{self.unpriced} unpriced)" if self.unpriced else "")

    def _refresh(self) -> None:
        if self._progress is not None:
            self._progress.update(
                self._task,
                completed=self.evaluations,
                spent=self._spent_text(),
                alive=self.n_alive,
            )

    def observe(self, obs: Observation, *, reused: bool = False) -> None:
        """Count one observation (``reused``: served from the store, not paid again)."""
        self.evaluations += 1
        if reused:
            self.reused += 1
        elif obs.cost_usd is None:
            self.unpriced += 1
        else:
            self.spent += obs.cost_usd
        self._refresh()

    def alive(self, n_alive: int) -> None:
        self.n_alive = n_alive
        self._refresh()

    def set_total(self, total: int) -> None:
        self.total = total
        if self._progress is not None:
            self._progress.update(self._task, total=total)
