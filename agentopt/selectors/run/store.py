"""Observation stores, so no cell of a selection is paid for twice.

A store keeps every observation the moment it is made, keyed by what it is
the measurement of: (agent, eval_fn, combination, datapoint), each a stable
fingerprint (see :mod:`agentopt.selectors.run.fingerprint`). The method, the seed,
the other combinations and the rest of the dataset are not part of the key, so
a re-run, another method or another seed serves every cell the store already
has: the strategy is told the stored observation and the agent is not called.
A stored *failure* is not served: it is run again (failures are often transient,
or fixed since), and the new observation replaces it.

``get_store(path)`` picks the backend by suffix: ``.jsonl`` → JSON lines,
anything else → SQLite (WAL). Both write through on every observation.
:class:`MemoryStore` keeps a selector's observations between two
``select_best()`` calls when no path is given.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from agentopt.exceptions import StoreError
from agentopt.records import Observation
from agentopt.selectors.run.fingerprint import CellKey, Scope
from agentopt.tracking.storage.sqlite_db import connect_sqlite

__all__ = [
    "CellKey",
    "JSONLStore",
    "MemoryStore",
    "ObservationStore",
    "ResumingEvaluator",
    "SQLiteStore",
    "Scope",
    "get_store",
]

#: Within one scope (agent, eval_fn): (combination key, datapoint key).
Cells = dict[tuple[str, str], Observation]

_OLD_LAYOUT = (
    "was written by an earlier agentopt, which keyed observations by selection "
    "(agent, models, dataset, seed, method) rather than by cell; they cannot be reused. "
    "`agentopt report` still reads it; pass another store= path (or move this file aside)"
)


class ObservationStore(Protocol):
    """Where a selection's observations survive the process.

    ``load(scope)`` returns every cell stored for that agent and eval_fn,
    keyed by ``(combo, datapoint)``; ``append`` writes one observation through
    (a later observation of the same cell replaces the earlier one).
    """

    @property
    def path(self) -> Path | None: ...  # None: kept in memory

    def load(self, scope: Scope) -> Cells: ...

    def append(self, key: CellKey, obs: Observation) -> None: ...

    def close(self) -> None: ...


class MemoryStore:
    """Observations in a dict: what a selector keeps between ``select_best()`` calls
    when no ``store=`` path is given."""

    path: Path | None = None

    def __init__(self) -> None:
        self._cells: dict[CellKey, Observation] = {}
        self._lock = threading.Lock()

    def load(self, scope: Scope) -> Cells:
        with self._lock:
            return {
                (k.combo, k.datapoint): o
                for k, o in self._cells.items()
                if (k.agent, k.eval_fn) == tuple(scope)
            }

    def append(self, key: CellKey, obs: Observation) -> None:
        with self._lock:
            self._cells[CellKey(*key)] = obs

    def __len__(self) -> int:
        return len(self._cells)

    def close(self) -> None:
        """Nothing to release: the observations stay for the next run."""


def _repair_last_line(path: Path) -> None:
    """End the file with a newline before appending to it. A last line without
    one was cut by a crash: when it is whole JSON it only lacked its newline
    (add it); otherwise it is a fragment the next line would be glued to, and
    its cell is re-run anyway (truncate it)."""
    try:
        fh = path.open("rb+")
    except FileNotFoundError:
        return
    with fh:
        size = fh.seek(0, 2)
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        # Find the start of the last line, reading backwards in blocks.
        start, block = size, 65536
        while start > 0:
            lo = max(0, start - block)
            fh.seek(lo)
            chunk = fh.read(start - lo)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                start = lo + cut + 1
                break
            start = lo
        fh.seek(start)
        tail = fh.read()
        try:
            json.loads(tail)
            whole = True
        except ValueError:
            whole = False
        if whole:
            fh.seek(size)
            fh.write(b"\n")
        else:
            fh.truncate(start)
        fh.flush()
        os.fsync(fh.fileno())


class JSONLStore:
    """One JSON object per line, ``{"key": {agent, eval_fn, combo, datapoint},
    "observation": {...}}``, flushed per line; the last line of a cell wins."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _repair_last_line(self.path)
            self._fh = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot open the observation store: {exc}") from exc

    def load(self, scope: Scope) -> Cells:
        out: Cells = {}
        with self._lock, self.path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    if "fingerprint" in row and "key" not in row:
                        raise StoreError(f"{self.path}:{lineno}: this store {_OLD_LAYOUT}")
                    key = CellKey(**row["key"])
                    if (key.agent, key.eval_fn) != tuple(scope):
                        continue
                    obs = Observation.model_validate(row["observation"])
                except (ValueError, KeyError, TypeError, ValidationError) as exc:
                    if not line.endswith("\n"):
                        continue  # a line cut short by a crash: the cell is simply re-run
                    raise StoreError(f"{self.path}:{lineno}: not an observation: {exc}") from exc
                out[(key.combo, key.datapoint)] = obs
        return out

    def append(self, key: CellKey, obs: Observation) -> None:
        row = {"key": CellKey(*key)._asdict(), "observation": obs.model_dump(mode="json")}
        line = json.dumps(row, ensure_ascii=False)
        with self._lock:
            try:
                self._fh.write(line + "\n")
                self._fh.flush()
            except (OSError, ValueError) as exc:
                raise StoreError(f"{self.path}: cannot append an observation: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._fh.close()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    agent TEXT NOT NULL,
    eval_fn TEXT NOT NULL,
    combo TEXT NOT NULL,
    datapoint TEXT NOT NULL,
    observation TEXT NOT NULL,
    PRIMARY KEY (agent, eval_fn, combo, datapoint)
);
"""


class SQLiteStore:
    """A SQLite table ``cells`` in WAL mode; each observation committed as it arrives."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = connect_sqlite(self.path, what="the observation store")
        try:
            tables = {
                r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if "observations" in tables and "cells" not in tables:
                self._db.close()
                raise StoreError(f"{self.path}: this store {_OLD_LAYOUT}")
            self._db.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the observation store: {exc}") from exc

    def load(self, scope: Scope) -> Cells:
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT combo, datapoint, observation FROM cells "
                    "WHERE agent = ? AND eval_fn = ?",
                    tuple(scope),
                ).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot read observations: {exc}") from exc
        out: Cells = {}
        for combo, dp, text in rows:
            try:
                out[(combo, dp)] = Observation.model_validate_json(text)
            except ValidationError as exc:
                raise StoreError(f"{self.path}: bad observation for {combo} #{dp}: {exc}") from exc
        return out

    def append(self, key: CellKey, obs: Observation) -> None:
        with self._lock:
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO cells VALUES (?, ?, ?, ?, ?)",
                    (*CellKey(*key), obs.model_dump_json()),
                )
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot append an observation: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()


def get_store(store: str | Path | ObservationStore) -> ObservationStore:
    """A store from a path (``.jsonl`` → JSON lines, else SQLite) or a store object."""
    if isinstance(store, (str, Path)):
        p = Path(store)
        return JSONLStore(p) if p.suffix.lower() == ".jsonl" else SQLiteStore(p)
    if all(hasattr(store, a) for a in ("load", "append", "close")):
        return store
    raise StoreError(f"store must be a path or an ObservationStore, not {type(store).__name__}")


class _Evaluator(Protocol):
    async def evaluate(self, pairs: Sequence[tuple[int, int]]) -> Sequence[Observation | None]: ...


class ResumingEvaluator:
    """Serves stored cells and evaluates only the rest.

    ``stored`` maps ``(combo key, datapoint key)`` to an observation, as
    :meth:`ObservationStore.load` returns it; ``combo_keys[arm]`` and
    ``datapoint_keys[dp]`` name this selection's cells, ``labels[arm]`` their
    display labels. A served observation is re-labelled with this selection's
    arm label and datapoint index. The strategy cannot tell a stored
    observation from a fresh one, so a re-run with the same seed replays the same
    decisions and pays only for cells never finished. Stored failures are run
    again. ``reused`` counts the observations served.
    """

    def __init__(
        self,
        inner: _Evaluator,
        *,
        stored: Mapping[tuple[str, str], Observation],
        combo_keys: Sequence[str],
        datapoint_keys: Sequence[str],
        labels: Sequence[Mapping[str, str]],
        on_reused: Any = None,
    ) -> None:
        self.inner = inner
        self.stored = {k: o for k, o in stored.items() if not o.failed}
        self.combo_keys = list(combo_keys)
        self.datapoint_keys = list(datapoint_keys)
        self.labels = [dict(lab) for lab in labels]
        self.on_reused = on_reused
        self.reused = 0

    def lookup(self, arm: int, dp: int) -> Observation | None:
        """The stored observation of (arm, dp), re-labelled for this selection."""
        obs = self.stored.get((self.combo_keys[arm], self.datapoint_keys[dp]))
        if obs is None:
            return None
        if obs.datapoint != dp or obs.combo != self.labels[arm]:
            obs = obs.model_copy(update={"datapoint": dp, "combo": dict(self.labels[arm])})
        return obs

    async def evaluate(self, pairs: Sequence[tuple[int, int]]) -> list[Observation | None]:
        out: list[Observation | None] = [None] * len(pairs)
        todo: list[int] = []
        for i, (arm, dp) in enumerate(pairs):
            obs = self.lookup(arm, dp)
            if obs is None:
                todo.append(i)
            else:
                out[i] = obs
                self.reused += 1
                if self.on_reused is not None:
                    self.on_reused(arm, dp, obs)
        if todo:
            fresh = await self.inner.evaluate([pairs[i] for i in todo])
            for i, obs in zip(todo, fresh, strict=True):
                out[i] = obs
        return out
