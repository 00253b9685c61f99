"""``print_summary``: one complete table with a grand total, readable at 80 columns."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from agentopt.exceptions import ConfigError
from agentopt.records import CallRecord
from agentopt.tracking.analytics.summary import print_summary

LONG = "anthropic/claude-3-5-haiku-20241022"
MINI = "gpt-4o-mini-2024-07-18"


def _records() -> list[CallRecord]:
    out = []
    for d in range(5):
        out.append(
            CallRecord(
                data_id=d, model=LONG, prompt_tokens=1200, completion_tokens=300,
                cost_usd=0.0012, latency_seconds=1.5,
            )
        )  # fmt: skip
        out.append(
            CallRecord(
                data_id=d, model=MINI, prompt_tokens=100_000, completion_tokens=3000,
                cost_usd=None if d == 3 else 0.01, latency_seconds=0.5,
                status_code=500 if d == 2 else 200, error="boom" if d == 2 else None,
            )
        )  # fmt: skip
    return out


def _render(records: list[CallRecord], width: int = 80, **kw: object) -> str:
    buf = io.StringIO()
    print_summary(records, console=Console(file=buf, width=width), **kw)  # type: ignore[arg-type]
    return buf.getvalue()


def test_one_table_with_a_grand_total_and_whole_model_names_at_80_columns() -> None:
    text = _render(_records())
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "data_id=" not in text and text.count("LLM calls") == 1  # one table, not five
    body = lines[lines.index(next(ln for ln in lines if "───" in ln)) + 1 :]
    names = "".join(ln.split()[0] for ln in body if ln.strip() and "total" not in ln)
    assert LONG + MINI in names  # wrapped if need be, never cut
    assert "…" not in text
    total = next(line for line in lines if line.lstrip().startswith("total"))
    cells = total.split()
    assert cells[:5] == ["total", "10", "1", "506,000", "16,500"]
    assert cells[5] == "$0.046000*"  # the priced sum, marked: one call is unpriced
    assert "without 1 unpriced call(s)" in text and "not $0" in text
    assert "5 datapoints; print_summary(by='data_id') shows each" in text


def test_by_data_id_adds_a_table_per_datapoint_then_the_total() -> None:
    text = _render(_records(), by="data_id")
    for d in range(5):
        assert f"data_id={d}" in text
    assert text.index("data_id=4") < text.index("all calls") < text.index("total")


def test_one_datapoint_shows_its_model_sequence_and_a_bad_grouping_is_refused() -> None:
    text = _render(_records()[:2], width=120)
    assert f"sequence: {LONG} → {MINI}" in text
    assert "unpriced" not in text
    with pytest.raises(ConfigError, match=r"by=.*data_id, combo_id, agent_id"):
        _render(_records(), by="model")
