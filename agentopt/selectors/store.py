"""Observation stores, so an interrupted selection resumes without paying twice.

A store keeps every observation the moment it is made, keyed by a
fingerprint of the selection (agent, models, dataset, seed, method) plus the
combination label and the datapoint index. Re-running the same selection
serves the cells it already has from the store: the strategy is told their
observations and the agent is not called.

``get_store(path)`` picks the backend by suffix: ``.jsonl`` → JSON lines,
anything else → SQLite (WAL). Both write through on every observation.
"""

from __future__ import annotations

import dataclasses
import hashlib
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
from agentopt.tracking.sqlite_db import connect_sqlite

__all__ = [
    "JSONLStore",
    "ObservationStore",
    "ResumingEvaluator",
    "SQLiteStore",
    "fingerprint",
    "get_store",
]

CellKey = tuple[str, int]  # (combination label, datapoint index)


def _canonical(obj: Any) -> Any:
    """A JSON-able, deterministic stand-in for ``obj``: its content where it can be
    read (mappings, sequences, dataclasses, pydantic models, ``__dict__``/slots),
    else its repr unless that holds a memory address, else its type."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
    if hasattr(obj, "model_dump"):
        return {"__type__": kind, **_canonical(obj.model_dump())}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        return {"__type__": kind, **_canonical(fields)}
    if not callable(obj):
        slots = [a for c in type(obj).__mro__ for a in getattr(c, "__slots__", ())]
        state = dict(getattr(obj, "__dict__", {}))
        state.update({a: getattr(obj, a) for a in slots if hasattr(obj, a)})
        if state:
            return {"__type__": kind, **_canonical(state)}
    text = repr(obj)
    return f"<{kind}>" if " at 0x" in text else text


def _callable_name(fn: Any) -> str:
    mod = getattr(fn, "__module__", None) or type(fn).__module__
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{mod}.{name}"


def fingerprint(
    *,
    agent: Any,
    labels: Mapping[str, Sequence[str]],
    dataset: Sequence[Any],
    seed: int | None,
    method: str,
) -> str:
    """A short hash naming one selection: same agent, models, dataset, seed and method."""
    h = hashlib.sha256()
    payload = {
        "agent": _callable_name(agent),
        "models": {node: list(ms) for node, ms in labels.items()},
        "seed": seed,
        "method": method,
        "n": len(dataset),
    }
    h.update(json.dumps(payload, sort_keys=True).encode())
    for item in dataset:
        h.update(json.dumps(_canonical(item), sort_keys=True, default=str).encode())
        h.update(b"\n")
    return h.hexdigest()[:24]


class ObservationStore(Protocol):
    """Where a selection's observations survive the process."""

    path: Path

    def load(self, fp: str) -> dict[CellKey, Observation]: ...

    def append(self, fp: str, obs: Observation) -> None: ...

    def close(self) -> None: ...


def _key(obs: Observation) -> CellKey:
    return Observation.combo_label(obs.combo), int(obs.datapoint)


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
    """One JSON object per line: ``{"fingerprint", "observation"}``; flushed per line."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _repair_last_line(self.path)
            self._fh = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot open the observation store: {exc}") from exc

    def load(self, fp: str) -> dict[CellKey, Observation]:
        out: dict[CellKey, Observation] = {}
        with self._lock, self.path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    if row.get("fingerprint") != fp:
                        continue
                    obs = Observation.model_validate(row["observation"])
                except (ValueError, KeyError, TypeError, ValidationError) as exc:
                    if not line.endswith("\n"):
                        continue  # a line cut short by a crash: the cell is simply re-run
                    raise StoreError(f"{self.path}:{lineno}: not an observation: {exc}") from exc
                out[_key(obs)] = obs
        return out

    def append(self, fp: str, obs: Observation) -> None:
        line = json.dumps({"fingerprint": fp, "observation": obs.model_dump(mode="json")})
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
CREATE TABLE IF NOT EXISTS observations (
    fingerprint TEXT NOT NULL,
    combo TEXT NOT NULL,
    datapoint INTEGER NOT NULL,
    observation TEXT NOT NULL,
    PRIMARY KEY (fingerprint, combo, datapoint)
);
"""


class SQLiteStore:
    """A SQLite table in WAL mode; each observation committed as it arrives."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = connect_sqlite(self.path, what="the observation store", schema=_SCHEMA)

    def load(self, fp: str) -> dict[CellKey, Observation]:
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT combo, datapoint, observation FROM observations WHERE fingerprint = ?",
                    (fp,),
                ).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot read observations: {exc}") from exc
        out: dict[CellKey, Observation] = {}
        for combo, dp, text in rows:
            try:
                out[(combo, int(dp))] = Observation.model_validate_json(text)
            except ValidationError as exc:
                raise StoreError(f"{self.path}: bad observation for {combo} #{dp}: {exc}") from exc
        return out

    def append(self, fp: str, obs: Observation) -> None:
        combo, dp = _key(obs)
        with self._lock:
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO observations VALUES (?, ?, ?, ?)",
                    (fp, combo, dp, obs.model_dump_json()),
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
    """Serves stored cells from the store and evaluates only the rest.

    The strategy cannot tell a stored observation from a fresh one, so a
    re-run with the same seed replays the same decisions and pays only for
    the cells the interrupted run never finished. ``reused`` counts the
    observations served from the store.
    """

    def __init__(
        self,
        inner: _Evaluator,
        *,
        stored: Mapping[CellKey, Observation],
        combo_ids: Sequence[str],
        on_reused: Any = None,
    ) -> None:
        self.inner = inner
        self.stored = dict(stored)
        self.combo_ids = list(combo_ids)
        self.on_reused = on_reused
        self.reused = 0

    async def evaluate(self, pairs: Sequence[tuple[int, int]]) -> list[Observation | None]:
        out: list[Observation | None] = [None] * len(pairs)
        todo: list[int] = []
        for i, (arm, dp) in enumerate(pairs):
            obs = self.stored.get((self.combo_ids[arm], dp))
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
