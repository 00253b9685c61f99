"""Reading what ``agentopt report`` summarises, recognised by content, not by name.

- call records: a JSONL export, a JSON array, or a SQLite record store (table ``records``);
- a selection's observations: its store (JSONL lines ``{"key", "observation"}``
  or SQLite table ``cells``; the earlier layouts, ``{"fingerprint", ...}`` and
  table ``observations``, too) or ``results.observations_dataframe().to_csv()``
  (the demo's ``observations.csv``);
- a selection's ranking: ``results.to_csv()`` (``results.csv``) or
  ``results.export_config()`` (``best_config.yaml``).

Bad input raises :class:`DataError` (or :class:`ConfigError` for a missing path)
naming the file and the line or row.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agentopt.exceptions import ConfigError, DataError
from agentopt.records import CallRecord, Observation

__all__ = ["Loaded", "load"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: Columns of ``SelectionResults.observations_dataframe()`` a CSV must have.
OBSERVATION_COLUMNS = ("combo", "datapoint", "score", "cost_usd", "latency_s", "error")
#: Columns of ``SelectionResults.to_dataframe()`` a CSV must have.
RESULT_COLUMNS = ("rank", "combo", "score", "evaluations", "cost_per_item")


@dataclass
class Loaded:
    """What a file held. ``kind`` is ``"records"``, ``"observations"`` or ``"ranking"``.

    ``observations`` pairs each with the selection it belongs to (None if the
    file does not say); ``ranking`` holds one row per combination (a results CSV
    or an exported config) and ``selection`` the config's other fields.
    """

    path: Path
    kind: str
    fmt: str  # "jsonl", "json", "sqlite", "csv" or "yaml"
    records: list[CallRecord] = field(default_factory=list)
    observations: list[tuple[str | None, Observation]] = field(default_factory=list)
    ranking: list[dict[str, Any]] = field(default_factory=list)
    selection: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # warnings (a cut-off last line)


def load(path: str | Path) -> Loaded:
    """Read ``path`` as one of the supported kinds (see the module docstring)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: no such file")
    if p.is_dir():
        raise ConfigError(f"{p}: is a directory; give a records or observations file")
    try:
        with p.open("rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc}") from exc
    if head == _SQLITE_MAGIC:
        return _load_sqlite(p)
    if head.startswith(_PNG_MAGIC):
        raise DataError(f"{p}: a PNG image (a plot); report reads the CSV, YAML or store beside it")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{p}: not a records/observations file (neither UTF-8 JSON lines nor SQLite): {exc}"
        ) from exc
    stripped = text.lstrip()
    if stripped.startswith("["):
        return _load_json_array(p, text)
    if stripped.startswith("agentopt_selection:"):
        return _load_yaml(p, text)
    first = stripped.split("\n", 1)[0]
    if first and not first.startswith("{"):
        header = next(csv.reader([first]), [])
        if {"combo", "score"} <= set(header):
            return _load_csv(p, text)
    return _load_jsonl(p, text)


# --------------------------------------------------------------------------- JSON
def _kind_of(obj: Any, where: str) -> str:
    if isinstance(obj, dict):
        if "observation" in obj and ("key" in obj or "fingerprint" in obj):
            return "observations"
        if "call_id" in obj:
            return "records"
        if {"combo", "datapoint", "score"} <= obj.keys():
            return "observations"
        keys = ", ".join(sorted(obj)[:8]) or "none"
        raise DataError(
            f"{where}: neither a call record (no 'call_id') nor an observation (keys: {keys})"
        )
    raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")


def _selection_of(obj: dict[str, Any]) -> str | None:
    """Which selection a stored observation belongs to: its agent and eval_fn (the
    current layout) or its selection fingerprint (the earlier one)."""
    key = obj.get("key")
    if isinstance(key, dict):
        return f"{key.get('agent')} / {key.get('eval_fn')}"
    fp = obj.get("fingerprint")
    return None if fp is None else str(fp)


def _parse(obj: Any, kind: str, where: str, out: Loaded) -> None:
    try:
        if kind == "records":
            out.records.append(CallRecord.model_validate(obj))
        elif "observation" in obj:
            out.observations.append(
                (_selection_of(obj), Observation.model_validate(obj["observation"]))
            )
        else:
            out.observations.append((None, Observation.model_validate(obj)))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "(root)"
        noun = "call record" if kind == "records" else "observation"
        raise DataError(f"{where}: malformed {noun}: {loc}: {first['msg']}") from exc


def _load_jsonl(p: Path, text: str) -> Loaded:
    out = Loaded(path=p, kind="", fmt="jsonl")
    lines = text.splitlines(keepends=True)
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{p}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            if lineno == len(lines) and not line.endswith("\n"):
                out.skipped.append(f"{where}: last line cut short (a crash mid-write?); skipped")
                continue
            raise DataError(f"{where}: not valid JSON: {exc.msg} (column {exc.colno})") from exc
        kind = _kind_of(obj, where)
        if out.kind and kind != out.kind:
            raise DataError(f"{where}: a line of {kind} in a file of {out.kind}")
        out.kind = kind
        _parse(obj, kind, where, out)
    out.kind = out.kind or "records"
    return out


def _load_json_array(p: Path, text: str) -> Loaded:
    out = Loaded(path=p, kind="", fmt="json")
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{p}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
    for i, obj in enumerate(items):
        where = f"{p}: item {i}"
        kind = _kind_of(obj, where)
        if out.kind and kind != out.kind:
            raise DataError(f"{where}: {kind} mixed with {out.kind}")
        out.kind = kind
        _parse(obj, kind, where, out)
    out.kind = out.kind or "records"
    return out


# --------------------------------------------------------------------------- SQLite
def _load_sqlite(p: Path) -> Loaded:
    try:
        conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise DataError(f"{p}: cannot open as SQLite: {exc}") from exc
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "records" in tables:
            out = Loaded(path=p, kind="records", fmt="sqlite")
            for seq, text in conn.execute("SELECT seq, json FROM records ORDER BY seq"):
                where = f"{p}: records row seq={seq}"
                _parse(_json_cell(text, where), "records", where, out)
            return out
        if "cells" in tables or "observations" in tables:
            out = Loaded(path=p, kind="observations", fmt="sqlite")
            if "cells" in tables:
                rows = conn.execute(
                    "SELECT rowid, agent, eval_fn, observation FROM cells ORDER BY rowid"
                )
                for rowid, agent, eval_fn, text in rows:
                    where = f"{p}: cells row {rowid}"
                    obj = {
                        "key": {"agent": agent, "eval_fn": eval_fn},
                        "observation": _json_cell(text, where),
                    }
                    _parse(obj, "observations", where, out)
            if "observations" in tables:  # the earlier layout
                rows = conn.execute(
                    "SELECT rowid, fingerprint, observation FROM observations ORDER BY rowid"
                )
                for rowid, fp, text in rows:
                    where = f"{p}: observations row {rowid}"
                    obj = {"fingerprint": fp, "observation": _json_cell(text, where)}
                    _parse(obj, "observations", where, out)
            return out
    except sqlite3.Error as exc:
        raise DataError(f"{p}: cannot read the SQLite file: {exc}") from exc
    finally:
        conn.close()
    found = ", ".join(sorted(tables)) or "none"
    raise DataError(
        f"{p}: a SQLite file with neither a 'records' nor an 'observations' table (tables: {found})"
    )


def _json_cell(text: Any, where: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, json.JSONDecodeError) as exc:
        raise DataError(f"{where}: not valid JSON: {exc}") from exc


# --------------------------------------------------------------------------- CSV, YAML
def _combo(label: str) -> dict[str, str]:
    """``node=model + node=model`` back to a dict (``combo_label`` inverted)."""
    out = {}
    for part in label.split(" + "):
        node, sep, model = part.partition("=")
        out[node] = model if sep else part
    return out


def _num(value: str, where: str, column: str, *, optional: bool = True) -> float | None:
    if value == "" and optional:
        return None
    try:
        x = float(value)
    except ValueError:
        raise DataError(f"{where}: column {column!r} is not a number: {value!r}") from None
    return None if math.isnan(x) and optional else x


def _load_csv(p: Path, text: str) -> Loaded:
    reader = csv.DictReader(io.StringIO(text))
    columns = set(reader.fieldnames or ())
    if set(OBSERVATION_COLUMNS) <= columns:
        out = Loaded(path=p, kind="observations", fmt="csv")
        for lineno, row in enumerate(reader, 2):
            where = f"{p}:{lineno}"
            tin = _num(row.get("input_tokens", ""), where, "input_tokens")
            tout = _num(row.get("output_tokens", ""), where, "output_tokens")
            try:
                obs = Observation(
                    combo=_combo(row["combo"]),
                    datapoint=row["datapoint"],
                    score=_num(row["score"], where, "score", optional=False),  # type: ignore[arg-type]
                    cost_usd=_num(row["cost_usd"], where, "cost_usd"),
                    latency_seconds=_num(row["latency_s"], where, "latency_s"),
                    input_tokens=None if tin is None else int(tin),
                    output_tokens=None if tout is None else int(tout),
                    error=row["error"] or None,
                )
            except ValidationError as exc:
                first = exc.errors()[0]
                loc = ".".join(str(x) for x in first["loc"]) or "(root)"
                raise DataError(f"{where}: malformed observation: {loc}: {first['msg']}") from exc
            out.observations.append((None, obs))
        return out
    if set(RESULT_COLUMNS) <= columns:
        out = Loaded(path=p, kind="ranking", fmt="csv")
        for lineno, row in enumerate(reader, 2):
            where = f"{p}:{lineno}"
            out.ranking.append(
                {
                    "rank": int(_num(row["rank"], where, "rank", optional=False) or 0),
                    "combo": row["combo"],
                    "score": _num(row["score"], where, "score"),
                    "evaluations": int(_num(row["evaluations"], where, "evaluations") or 0),
                    "failures": int(_num(row.get("failures", ""), where, "failures") or 0),
                    "cost_per_item": _num(row["cost_per_item"], where, "cost_per_item"),
                    "eliminated_round": _num(
                        row.get("eliminated_round", ""), where, "eliminated_round"
                    ),
                    "best": row.get("best", "").strip().lower() == "true",
                }
            )
        return out
    missing = ", ".join(sorted(set(OBSERVATION_COLUMNS) - columns))
    raise DataError(
        f"{p}: a CSV with neither a selection's observations (missing columns: {missing}) "
        f"nor its ranking (columns: {', '.join(RESULT_COLUMNS)})"
    )


def _load_yaml(p: Path, text: str) -> Loaded:
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DataError(f"{p}: not valid YAML: {exc}") from exc
    sel = doc.get("agentopt_selection") if isinstance(doc, dict) else None
    if not isinstance(sel, dict) or not isinstance(sel.get("candidates"), list):
        raise DataError(f"{p}: not an exported selection (no agentopt_selection.candidates)")
    out = Loaded(path=p, kind="ranking", fmt="yaml")
    best = sel.get("best")
    for i, c in enumerate(sel["candidates"]):
        if not isinstance(c, dict) or not isinstance(c.get("combo"), dict):
            raise DataError(f"{p}: candidate {i} has no combo mapping")
        label = Observation.combo_label({str(k): str(v) for k, v in c["combo"].items()})
        out.ranking.append(
            {
                "rank": c.get("rank", i + 1),
                "combo": label,
                "score": c.get("score"),
                "evaluations": c.get("evaluations", 0),
                "failures": c.get("failures", 0),
                "cost_per_item": c.get("cost_per_item_usd"),
                "eliminated_round": c.get("eliminated_round"),
                "best": c["combo"] == best,
            }
        )
    out.selection = {k: v for k, v in sel.items() if k != "candidates"}
    return out
