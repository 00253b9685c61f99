"""ReplayTable: recorded (combination × datapoint) outcomes, as dense arrays.

The long CSV format of ``data/agentopt-bench/README.md``: one row per cell with
``combo``, one column per node, ``datapoint``, ``score``, ``cost_usd``,
``latency_s``, ``input_tokens``, ``output_tokens`` and optionally ``error`` and
``prompt``. Every other column is a node. A missing cell (a run that failed and
was not scored) is NaN in the arrays and ``False`` in :attr:`ReplayTable.present`.

Example::

    table = ReplayTable.from_csv("data/agentopt-bench/gpqa.csv")
    table.n_arms, table.n_datapoints          # (9, 198)
    table.lookup({"agent": "Kimi K2.5"}, 0)   # Observation(...) or None
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from agentopt.exceptions import DataError
from agentopt.records import Observation

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RESERVED_COLUMNS", "ReplayTable"]

#: Columns that are not nodes.
RESERVED_COLUMNS = frozenset(
    {
        "combo",
        "datapoint",
        "score",
        "cost_usd",
        "latency_s",
        "input_tokens",
        "output_tokens",
        "error",
        "prompt",
    }
)
_REQUIRED = ("combo", "datapoint", "score")

MissingPolicy = Literal["skip", "zero"]


@dataclass(eq=False)
class ReplayTable:
    """Dense arrays of shape ``(n_arms, n_datapoints)``; NaN marks a missing cell.

    Arms are ordered by their ``combo`` label as first seen in the file; datapoints
    are sorted. ``combos[i]`` is arm i's ``{node: model}``.
    """

    name: str
    nodes: list[str]
    combos: list[dict[str, str]]
    labels: list[str]
    datapoints: list[int | str]
    score: np.ndarray
    cost_usd: np.ndarray
    latency_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    errors: dict[tuple[int, int], str] = field(default_factory=dict)
    prompts: dict[int | str, str] | None = None
    _arm_index: dict[str, int] = field(default_factory=dict, repr=False)
    _dp_index: dict[int | str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._arm_index = {label: i for i, label in enumerate(self.labels)}
        self._dp_index = {dp: j for j, dp in enumerate(self.datapoints)}
        self.present: np.ndarray = ~np.isnan(self.score)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_csv(cls, path: str | Path, *, name: str | None = None) -> ReplayTable:
        """Read a long-format table. Raises :class:`DataError` naming the file,
        and the row or column at fault."""
        import pandas as pd

        p = Path(path)
        if not p.is_file():
            raise DataError(f"{p}: no such file")
        try:
            df = pd.read_csv(p, dtype={"combo": str})
        except Exception as exc:  # pandas raises many kinds
            raise DataError(f"{p}: cannot read as CSV: {exc}") from exc
        return cls.from_dataframe(df, name=name or p.stem, source=str(p))

    @classmethod
    def from_dataframe(
        cls, df: pd.DataFrame, *, name: str = "table", source: str | None = None
    ) -> ReplayTable:
        import pandas as pd

        where = source or name
        missing = [c for c in _REQUIRED if c not in df.columns]
        if missing:
            raise DataError(f"{where}: missing required column(s) {', '.join(missing)}")
        nodes = [c for c in df.columns if c not in RESERVED_COLUMNS]
        if not nodes:
            raise DataError(f"{where}: no node columns (every column is reserved)")
        if df.empty:
            raise DataError(f"{where}: the table has no rows")
        for col in ("score", "cost_usd", "latency_s", "input_tokens", "output_tokens"):
            if col in df.columns:
                num = pd.to_numeric(df[col], errors="coerce")
                bad = num.isna() & df[col].notna()
                if bad.any():
                    row = int(np.flatnonzero(bad.to_numpy())[0])
                    raise DataError(
                        f"{where}: row {row + 2}, column {col!r}: "
                        f"not a number: {df[col].iloc[row]!r}"
                    )
                df = df.assign(**{col: num})
        scores = df["score"].to_numpy(dtype=float)
        finite = scores[~np.isnan(scores)]
        if finite.size and (finite.min() < 0.0 or finite.max() > 1.0):
            row = int(np.flatnonzero((scores < 0) | (scores > 1))[0])
            raise DataError(f"{where}: row {row + 2}: score {scores[row]} is outside [0, 1]")
        if df["combo"].isna().any():
            row = int(np.flatnonzero(df["combo"].isna().to_numpy())[0])
            raise DataError(f"{where}: row {row + 2}: empty combo")
        dup = df.duplicated(subset=["combo", "datapoint"])
        if dup.any():
            row = int(np.flatnonzero(dup.to_numpy())[0])
            raise DataError(
                f"{where}: row {row + 2}: duplicate cell "
                f"(combo={df['combo'].iloc[row]!r}, datapoint={df['datapoint'].iloc[row]!r})"
            )

        labels: list[str] = list(dict.fromkeys(df["combo"].tolist()))
        arm_of = {label: i for i, label in enumerate(labels)}
        first = df.drop_duplicates("combo").set_index("combo")
        combos = [{n: str(first.at[label, n]) for n in nodes} for label in labels]

        raw_dps = df["datapoint"].tolist()
        dp_values: list[int | str]
        try:
            dp_values = sorted({int(d) for d in raw_dps})
            dp_col: list[int | str] = [int(d) for d in raw_dps]
        except (TypeError, ValueError):
            dp_values = sorted({str(d) for d in raw_dps})
            dp_col = [str(d) for d in raw_dps]
        dp_of = {dp: j for j, dp in enumerate(dp_values)}

        shape = (len(labels), len(dp_values))
        rows = np.fromiter((arm_of[c] for c in df["combo"]), dtype=np.int64, count=len(df))
        cols = np.fromiter((dp_of[d] for d in dp_col), dtype=np.int64, count=len(df))

        def grid(col: str) -> np.ndarray:
            out = np.full(shape, np.nan)
            if col in df.columns:
                out[rows, cols] = df[col].to_numpy(dtype=float)
            return out

        score = grid("score")
        errors: dict[tuple[int, int], str] = {}
        if "error" in df.columns:
            for r, c, e in zip(rows, cols, df["error"].tolist(), strict=True):
                if isinstance(e, str) and e:
                    errors[(int(r), int(c))] = e
        prompts: dict[int | str, str] | None = None
        if "prompt" in df.columns:
            prompts = {}
            for d, ptxt in zip(dp_col, df["prompt"].tolist(), strict=True):
                if isinstance(ptxt, str) and d not in prompts:
                    prompts[d] = ptxt
        return cls(
            name=name,
            nodes=nodes,
            combos=combos,
            labels=labels,
            datapoints=dp_values,
            score=score,
            cost_usd=grid("cost_usd"),
            latency_s=grid("latency_s"),
            input_tokens=grid("input_tokens"),
            output_tokens=grid("output_tokens"),
            errors=errors,
            prompts=prompts,
        )

    # ------------------------------------------------------------------ shape
    @property
    def n_arms(self) -> int:
        return len(self.labels)

    @property
    def n_datapoints(self) -> int:
        return len(self.datapoints)

    @property
    def n_cells(self) -> int:
        """Present (scored) cells."""
        return int(self.present.sum())

    def arm_index(self, combo: Mapping[str, str] | str) -> int:
        label = (
            combo
            if isinstance(combo, str)
            else Observation.combo_label({n: combo[n] for n in self.nodes})
        )
        try:
            return self._arm_index[label]
        except KeyError:
            raise DataError(f"{self.name}: no combination {label!r} in the table") from None

    def datapoint_index(self, datapoint: int | str) -> int:
        j = self._dp_index.get(datapoint)
        if j is None and isinstance(datapoint, str) and datapoint.lstrip("-").isdigit():
            j = self._dp_index.get(int(datapoint))
        if j is None:
            raise DataError(f"{self.name}: no datapoint {datapoint!r} in the table")
        return j

    def node_models(self) -> dict[str, list[str]]:
        """``{node: [model, ...]}`` in first-seen order."""
        return {n: list(dict.fromkeys(c[n] for c in self.combos)) for n in self.nodes}

    # ------------------------------------------------------------------ cells
    def lookup(self, combo: Mapping[str, str] | str, datapoint: int | str) -> Observation | None:
        """The recorded outcome as an Observation, or None for a missing cell."""
        i, j = self.arm_index(combo), self.datapoint_index(datapoint)
        return self.cell(i, j)

    def cell(self, i: int, j: int) -> Observation | None:
        s = self.score[i, j]
        if math.isnan(s):
            return None

        def opt(a: np.ndarray) -> float | None:
            v = a[i, j]
            return None if math.isnan(v) else float(v)

        def opt_int(a: np.ndarray) -> int | None:
            v = a[i, j]
            return None if math.isnan(v) else int(v)

        return Observation(
            combo=dict(self.combos[i]),
            datapoint=self.datapoints[j],
            score=float(s),
            cost_usd=opt(self.cost_usd),
            latency_seconds=opt(self.latency_s),
            input_tokens=opt_int(self.input_tokens),
            output_tokens=opt_int(self.output_tokens),
            error=self.errors.get((i, j)),
        )

    # ------------------------------------------------------------------ summaries
    def filled(self, missing: MissingPolicy = "skip") -> np.ndarray:
        """Scores with missing cells NaN (``skip``) or 0 (``zero``)."""
        if missing == "zero":
            return np.where(self.present, self.score, 0.0)
        if missing == "skip":
            return self.score
        raise DataError(f"missing must be 'skip' or 'zero', not {missing!r}")

    def mean_scores(self, missing: MissingPolicy = "skip") -> np.ndarray:
        """Per-arm mean over present cells (``skip``) or over all datapoints (``zero``)."""
        s = self.filled(missing)
        with np.errstate(invalid="ignore"):
            return np.nanmean(s, axis=1) if missing == "skip" else s.mean(axis=1)

    def mean_cost(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.nanmean(np.where(self.present, self.cost_usd, np.nan), axis=1)

    def mean_latency(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.nanmean(np.where(self.present, self.latency_s, np.nan), axis=1)

    def total_cost(self) -> float:
        """Cost of every present cell: what brute force pays."""
        return float(np.nansum(np.where(self.present, self.cost_usd, 0.0)))

    def best_arms(self, missing: MissingPolicy = "skip") -> list[int]:
        """Every arm whose mean equals the best mean (exact ties included)."""
        m = self.mean_scores(missing)
        best = np.nanmax(m)
        return [int(i) for i in np.flatnonzero(m == best)]

    def subset(self, arms: Sequence[int]) -> ReplayTable:
        """A table with only the given arms (same datapoints)."""
        idx = list(arms)
        return ReplayTable(
            name=self.name,
            nodes=list(self.nodes),
            combos=[self.combos[i] for i in idx],
            labels=[self.labels[i] for i in idx],
            datapoints=list(self.datapoints),
            score=self.score[idx],
            cost_usd=self.cost_usd[idx],
            latency_s=self.latency_s[idx],
            input_tokens=self.input_tokens[idx],
            output_tokens=self.output_tokens[idx],
            errors={(idx.index(i), j): e for (i, j), e in self.errors.items() if i in idx},
            prompts=self.prompts,
        )
