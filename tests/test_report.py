"""``agentopt report PATH``: every input kind is summarised, bad input is a clear error."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agentopt.cli import main
from agentopt.exceptions import ConfigError, DataError
from agentopt.records import CallRecord, Observation
from agentopt.report import load, observation_rows, record_rows
from agentopt.selectors.run.store import CellKey, JSONLStore, SQLiteStore
from agentopt.tracking.analytics.summary import export_jsonl
from agentopt.tracking.storage.store import SQLiteRecordStore


def _records() -> list[CallRecord]:
    return [
        CallRecord(
            call_id="c1",
            data_id=1,
            combo_id="planner=gpt-4o-mini",
            model="gpt-4o-mini",
            requested_model="gpt-4o-mini",
            prompt_tokens=10,
            completion_tokens=20,
            cost_usd=0.25,
            latency_seconds=1.0,
        ),
        CallRecord(
            call_id="c2",
            data_id=1,
            combo_id="planner=gpt-4o-mini",
            model="gpt-4o-mini",
            requested_model="gpt-4o",
            prompt_tokens=30,
            completion_tokens=40,
            cost_usd=0.5,
            latency_seconds=3.0,
        ),
        CallRecord(
            call_id="c3",
            data_id=2,
            combo_id="planner=my-local-llama",
            model="my-local-llama",
            prompt_tokens=5,
            completion_tokens=7,
            cost_usd=None,  # unpriced
            latency_seconds=0.5,
        ),
        CallRecord(
            call_id="c4",
            data_id=2,
            model="gpt-4o-mini",
            status_code=500,
            error="HTTP 500: boom",
            latency_seconds=0.1,
        ),
    ]


def _observations() -> list[Observation]:
    a, b = {"planner": "m1", "solver": "m2"}, {"planner": "m3", "solver": "m2"}
    return [
        Observation(combo=a, datapoint=0, score=1.0, cost_usd=0.01, latency_seconds=2.0),
        Observation(combo=a, datapoint=1, score=0.0, cost_usd=0.03, latency_seconds=4.0),
        Observation(combo=b, datapoint=0, score=1.0, cost_usd=None, latency_seconds=1.0),
        Observation(combo=b, datapoint=1, score=1.0, cost_usd=None, error="eval_fn raised"),
    ]


def _key(o: Observation, agent: str = "agent@1") -> CellKey:
    return CellKey(agent, "eval@1", Observation.combo_label(o.combo), str(o.datapoint))


def _report(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(["report", str(path)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _line(out: str, start: str) -> str:
    """The table row whose first cell starts with ``start``."""
    return next(ln for ln in out.splitlines() if ln.lstrip("│ ").startswith(start))


def _check_records_output(out: str) -> None:
    assert "4 calls" in out
    mini = _line(out, "gpt-4o-mini")
    assert "$0.750000" in mini and " 3 " in mini  # 3 calls, 0.25 + 0.5 + no cost (an error)
    llama = _line(out, "my-local-llama")
    assert "unpriced" in llama and "$0" not in llama
    total = _line(out, "total")
    assert "$0.750000 + 2 unpriced" in total  # the unpriced call and the failed one
    for title in ("per model", "per combo_id", "per data_id"):
        assert title in out
    assert "1 calls routed to another model" in out


def test_records_jsonl_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "records.jsonl"
    export_jsonl(_records(), path)
    rc, out, err = _report(path, capsys)
    assert rc == 0, err
    _check_records_output(out)


def test_records_sqlite_store_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "records.sqlite"
    store = SQLiteRecordStore(path)
    for r in _records():
        store.append(r)
    store.close()
    loaded = load(path)
    assert (loaded.kind, loaded.fmt) == ("records", "sqlite")
    assert [r.call_id for r in loaded.records] == ["c1", "c2", "c3", "c4"]
    rc, out, err = _report(path, capsys)
    assert rc == 0, err
    _check_records_output(out)


def test_records_json_array_is_read(tmp_path: Path) -> None:
    path = tmp_path / "records.json"
    path.write_text(json.dumps([r.model_dump(mode="json") for r in _records()]))
    loaded = load(path)
    assert (loaded.kind, loaded.fmt, len(loaded.records)) == ("records", "json", 4)


def test_record_rows_aggregate_per_model() -> None:
    rows = {r["key"]: r for r in record_rows(_records())}
    mini = rows["gpt-4o-mini"]
    assert (mini["calls"], mini["errors"], mini["routed"]) == (3, 1, 1)
    assert (mini["input_tokens"], mini["output_tokens"]) == (40, 60)
    assert mini["cost"].usd == pytest.approx(0.75)
    assert (mini["cost"].priced, mini["cost"].unpriced) == (2, 1)
    assert mini["latency_mean"] == pytest.approx((1.0 + 3.0 + 0.1) / 3)
    assert mini["latency_p95"] == pytest.approx(3.0)
    llama = rows["my-local-llama"]
    assert llama["cost"].text() == "unpriced"
    assert llama["cost"].per_item() is None


def _check_observations_output(out: str) -> None:
    assert "4 observations" in out and "per combination" in out
    a = _line(out, "planner=m1 + solver=m2")
    assert "0.5000" in a and "$0.020000" in a  # mean score, mean $ per item
    b = _line(out, "planner=m3 + solver=m2")
    assert "1.0000" in b and "unpriced" in b and "$0" not in b
    # best mean score first
    assert out.index("planner=m3 + solver=m2") < out.index("planner=m1 + solver=m2")


def test_observations_jsonl_store_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "obs.jsonl"
    store = JSONLStore(path)
    for o in _observations():
        store.append(_key(o), o)
    store.close()
    rc, out, err = _report(path, capsys)
    assert rc == 0, err
    _check_observations_output(out)


def test_observations_sqlite_store_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "obs.db"
    store = SQLiteStore(path)
    for o in _observations():
        store.append(_key(o), o)
    store.close()
    loaded = load(path)
    assert (loaded.kind, loaded.fmt, len(loaded.observations)) == ("observations", "sqlite", 4)
    rc, out, err = _report(path, capsys)
    assert rc == 0, err
    _check_observations_output(out)


def test_observation_rows_per_combination() -> None:
    rows = observation_rows(_observations())
    assert [r["combo"] for r in rows] == ["planner=m3 + solver=m2", "planner=m1 + solver=m2"]
    best, other = rows
    assert (best["n"], best["mean_score"], best["failures"]) == (2, 1.0, 1)
    assert best["usd_per_item"] is None
    assert other["usd_per_item"] == pytest.approx(0.02)
    assert other["latency_per_item"] == pytest.approx(3.0)
    assert other["sd"] == pytest.approx(0.7071, abs=1e-4)


def test_several_selections_in_one_store_get_one_table_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "obs.jsonl"
    store = JSONLStore(path)
    obs = _observations()
    store.append(_key(obs[0], "agentA"), obs[0])
    store.append(_key(obs[1], "agentB"), obs[1])
    store.close()
    rc, out, _ = _report(path, capsys)
    assert rc == 0
    assert "2 selection(s)" in out
    assert "selection agentA / eval@1" in out and "selection agentB / eval@1" in out


def test_stores_in_the_earlier_layout_are_still_read(tmp_path: Path) -> None:
    obs = _observations()
    path = tmp_path / "old.jsonl"
    path.write_text(
        "".join(
            json.dumps({"fingerprint": "f", "observation": o.model_dump(mode="json")}) + "\n"
            for o in obs
        )
    )
    assert len(load(path).observations) == 4
    db = tmp_path / "old.sqlite"
    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TABLE observations (fingerprint TEXT, combo TEXT, datapoint INTEGER, "
        "observation TEXT)"
    )
    for o in obs:
        conn.execute(
            "INSERT INTO observations VALUES ('f', ?, ?, ?)",
            (Observation.combo_label(o.combo), o.datapoint, o.model_dump_json()),
        )
    conn.commit()
    conn.close()
    assert [fp for fp, _ in load(db).observations] == ["f"] * 4


def test_empty_file_reports_nothing_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    rc, out, _ = _report(path, capsys)
    assert rc == 0 and "no calls recorded" in out


def test_cut_off_last_line_is_skipped_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "records.jsonl"
    export_jsonl(_records()[:2], path)
    with path.open("a") as fh:
        fh.write('{"call_id": "c3", "mod')  # a crash mid-write: no newline
    rc, out, _ = _report(path, capsys)
    assert rc == 0
    assert f"{path}:3: last line cut short" in out
    assert "2 calls" in out


# ------------------------------------------------------------------------ errors
def test_missing_file_exits_1_naming_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nope.jsonl"
    rc, _, err = _report(path, capsys)
    assert rc == 1
    assert f"{path}: no such file" in err
    with pytest.raises(ConfigError):
        load(path)


def test_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load(tmp_path)


def test_malformed_json_line_names_path_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "records.jsonl"
    export_jsonl(_records()[:2], path)
    with path.open("a") as fh:
        fh.write("{not json}\n")
        fh.write(_records()[2].model_dump_json() + "\n")
    rc, _, err = _report(path, capsys)
    assert rc == 1
    assert f"{path}:3: not valid JSON" in err


def test_malformed_record_names_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text(
        _records()[0].model_dump_json()
        + "\n"
        + json.dumps({"call_id": "x", "prompt_tokens": "many"})
        + "\n"
    )
    with pytest.raises(DataError, match=rf"{path}:2: malformed call record: prompt_tokens"):
        load(path)


def test_unknown_json_object_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "other.jsonl"
    path.write_text(json.dumps({"hello": "world"}) + "\n")
    with pytest.raises(DataError, match=rf"{path}:1: neither a call record.*hello"):
        load(path)
    path.write_text("[1, 2]\n")
    with pytest.raises(DataError, match="item 0: expected a JSON object"):
        load(path)


def test_records_and_observations_mixed_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    obs = {"fingerprint": "f", "observation": _observations()[0].model_dump(mode="json")}
    path.write_text(_records()[0].model_dump_json() + "\n" + json.dumps(obs) + "\n")
    with pytest.raises(DataError, match=rf"{path}:2: a line of observations in a file of records"):
        load(path)


def test_binary_file_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"\xff\xfe\x00\x81garbage")
    rc, _, err = _report(path, capsys)
    assert rc == 1 and str(path) in err and "neither UTF-8 JSON lines nor SQLite" in err


def test_unrelated_sqlite_file_names_its_tables(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(DataError, match=r"neither a 'records' nor an 'observations' table.*users"):
        load(path)


def test_malformed_sqlite_row_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite"
    store = SQLiteRecordStore(path)
    store.append(_records()[0])
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE records SET json = '{broken' WHERE call_id = 'c1'")
    conn.commit()
    conn.close()
    with pytest.raises(DataError, match=rf"{path}: records row seq=1: not valid JSON"):
        load(path)


def test_report_does_not_write_to_the_store(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite"
    store = SQLiteRecordStore(path)
    for r in _records():
        store.append(r)
    store.close()
    before = path.read_bytes()
    load(path)
    assert path.read_bytes() == before


def test_names_are_shown_verbatim_not_as_rich_markup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "[odd] records.jsonl"
    export_jsonl(
        [CallRecord(call_id="x", model="[bold]m[/bold]", data_id="[red]", cost_usd=0.1)], path
    )
    rc, out, err = _report(path, capsys)
    assert rc == 0, err
    assert "[bold]m[/bold]" in out and "[red]" in out and "[odd] records.jsonl" in out


def test_report_stats_prints_usage_statistics_grouped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "records.sqlite"
    store = SQLiteRecordStore(path)
    for r in _records():
        store.append(r)
    store.close()
    rc = main(["report", str(path), "--stats", "model"])
    out = capsys.readouterr().out
    assert rc == 0
    stats = out.split("usage by model", 1)[1]
    mini = _line(stats, "gpt-4o-mini").split("│")
    assert [c.strip() for c in mini[2:]][:6] == ["3", "1 (33%)", "40", "60", "0.750000", "1"]
    llama = [c.strip() for c in _line(stats, "my-local").split("│")]
    assert (llama[6], llama[7]) == ("-", "1")  # unpriced: no $0, counted apart
    assert "speed by model" in stats


# ----------------------------------------------------------------- files a selection writes
def _selection_results() -> object:
    import numpy as np

    from agentopt.selectors.results import SelectionResults

    obs = _observations()
    labels = [obs[0].combo, obs[2].combo]
    return SelectionResults.from_parts(
        method="auto",
        labels=labels,
        combos=labels,
        observations=[(0 if o.combo == labels[0] else 1, i % 2, o) for i, o in enumerate(obs)],
        best_arm=1,
        intervals=(np.array([0.0, 0.5]), np.array([0.9, 1.0])),
        eliminated={0: 1},
        n_datapoints=2,
        stop_reason="best certified",
    )


def test_the_demos_observations_csv_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`agentopt demo` writes observations.csv with observations_dataframe().to_csv()."""
    res: Any = _selection_results()
    path = tmp_path / "observations.csv"
    res.observations_dataframe().to_csv(path, index=False)
    loaded = load(path)
    assert (loaded.kind, loaded.fmt, len(loaded.observations)) == ("observations", "csv", 4)
    rc, out, err = _report(path, capsys)
    assert rc == 0, err
    _check_observations_output(out)


@pytest.mark.parametrize("name", ["results.csv", "best_config.yaml"])
def test_the_ranking_files_a_selection_writes_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    res: Any = _selection_results()
    path = tmp_path / name
    res.to_csv(path) if name.endswith(".csv") else res.export_config(path)
    loaded = load(path)
    assert loaded.kind == "ranking" and len(loaded.ranking) == 2
    rc, out, err = _report(path, capsys)
    assert rc == 0, err
    best = _line(out, "1")
    assert "planner=m3 + solver=m2" in best and "★ best" in best and "unpriced" in best
    other = _line(out, "2")
    assert "planner=m1 + solver=m2" in other and "out r1" in other and "$0.020000" in other


def test_a_plot_or_an_unrelated_csv_is_a_clear_error(tmp_path: Path) -> None:
    res: Any = _selection_results()
    png = res.plot(tmp_path / "pareto.png")
    with pytest.raises(DataError, match=r"pareto\.png: a PNG image"):
        load(png)
    other = tmp_path / "other.csv"
    other.write_text("combo,score,x\na,1,2\n")
    with pytest.raises(DataError, match=r"other\.csv: a CSV with neither.*missing columns"):
        load(other)
    bad = tmp_path / "observations.csv"
    res.observations_dataframe().to_csv(bad, index=False)
    bad.write_text(bad.read_text().replace("1.0,", "high,", 1))
    with pytest.raises(DataError, match=r"observations\.csv:\d: column 'score' is not a number"):
        load(bad)


def test_observations_dataframe_without_observations_has_its_columns() -> None:
    import numpy as np

    from agentopt.selectors.results import SelectionResults

    res = SelectionResults.from_parts(
        method="auto", labels=[{"s": "a"}], combos=[{"s": "a"}], observations=[], best_arm=0,
        intervals=(np.zeros(1), np.ones(1)), eliminated={}, n_datapoints=1,
    )  # fmt: skip
    df = res.observations_dataframe()
    assert df.empty
    assert list(df.columns) == [
        "arm", "combo", "datapoint", "score", "cost_usd", "latency_s",
        "input_tokens", "output_tokens", "error", "reused",
    ]  # fmt: skip
