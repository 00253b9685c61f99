"""The dashboard in a real headless browser (Debian's chromium driven by playwright).

A store is filled with simulated traffic (a routed alias, streams, cache hits,
injected failures) and a real selection; each view is loaded, its numbers are
checked against the JSON API, filters and a call's detail are clicked through,
and screenshots are saved under ``test-artifacts/dashboard/``.

Without chromium or playwright these tests skip with how to install them; under
``CI=true`` (where ``.ci/run`` installs chromium) a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentopt import LLMTracker, ModelSelector, SimServer, ThompsonRouter
from agentopt.gateway.dashboard.cli import DashboardServer

pytestmark = pytest.mark.xdist_group("browser")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
INSTALL = "install it with: apt-get install chromium && pip install playwright"


def _need_browser() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    missing = []
    if sync_playwright is None:
        missing.append("the playwright package")
    if CHROMIUM is None:
        missing.append("a chromium executable")
    if missing:
        msg = f"dashboard browser tests need {' and '.join(missing)}; {INSTALL}"
        if os.environ.get("CI") == "true":
            pytest.fail(msg + " (CI=true: a skip here would hide an untested dashboard)")
        pytest.skip(msg)
    return sync_playwright


class Solver:
    def __init__(self, combo: dict[str, str], client: Any) -> None:
        self.combo, self.client = combo, client

    def run(self, question: str) -> str:
        r = self.client.chat.completions.create(
            model=self.combo["solver"], messages=[{"role": "user", "content": question}]
        )
        return str(r.choices[0].message.content)


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    import openai

    from agentopt.sim.tasks import load_task

    root = tmp_path_factory.mktemp("dash")
    records, observations = root / "records.sqlite", root / "selection.jsonl"
    router = ThompsonRouter(["gpt-4o-mini", "gpt-4o"], seed=0)
    with (
        SimServer("default", time_scale=0.0) as sim,
        LLMTracker(router=router, cache=True, cache_dir=root / "cache", store=records) as tracker,
    ):
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-sim", max_retries=0)
        for i in range(40):
            agent = "planner" if i % 2 else "solver"
            with tracker.track(data_id=f"d{i}", agent_id=agent, combo_id=f"combo-{i % 3}"):
                if i in (7, 23):
                    sim.inject("gpt-4o-mini", 500)
                    sim.inject("gpt-4o", 500)
                try:
                    kwargs: dict[str, Any] = {}
                    if i % 4 == 0:
                        kwargs = {"stream": True, "stream_options": {"include_usage": True}}
                    reply = client.chat.completions.create(
                        model="gpt-4o-mini",
                        messages=[{"role": "user", "content": f"What is {i % 12} + 1?"}],
                        **kwargs,
                    )
                    if kwargs:
                        for _ in reply:
                            pass
                except openai.APIStatusError:
                    pass
            tracker.feedback(data_id=f"d{i}", score=float(i % 12 < 6))
    # a selection recorded into the same store (its own tracker: no router)
    with (
        SimServer("default", time_scale=0.0) as sim,
        LLMTracker(cache=False, store=records) as tracker,
    ):
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-sim", max_retries=0)
        tasks = load_task("arithmetic")[:12]
        selector = ModelSelector(
            agent=lambda combo: Solver(combo, client),
            models={"solver": ["gpt-4.1-nano", "gpt-4o-mini", "gpt-4o"]},
            eval_fn=lambda expected, actual: float(expected in (actual or "")),
            dataset=[(t.question, t.answer) for t in tasks],
            seed=0,
            store=observations,
            tracker=tracker,
        )
        selector.select_best(progress=False)
    yield records, observations


@pytest.fixture(scope="module")
def dashboard(filled: tuple[Path, Path]) -> Iterator[DashboardServer]:
    records, observations = filled
    with DashboardServer(records, selections=[observations]) as server:
        yield server


@pytest.fixture(scope="module")
def page(dashboard: DashboardServer) -> Iterator[Any]:
    sync_playwright = _need_browser()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        pg = browser.new_page(viewport={"width": 1440, "height": 1000})
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.goto(dashboard.dashboard_url)
        pg.wait_for_selector("body[data-loaded=calls]")
        pg.errors = errors
        yield pg
        browser.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _api(server: DashboardServer, path: str, **params: str) -> Any:
    r = httpx.get(server.dashboard_url + "/api" + path, params=params, timeout=30)
    r.raise_for_status()
    return r.json()


def _money(text: str) -> float:
    return float(re.sub(r"[^0-9.e-]", "", text.split()[0]))


def test_calls_view_shows_the_api_totals(page: Any, dashboard: DashboardServer) -> None:
    s = _api(dashboard, "/summary")
    assert page.inner_text("#k-requests") == f"{s['requests']:,}"
    assert _money(page.inner_text("#k-cost")) == pytest.approx(s["cost_usd"], rel=0.01)
    calls = _api(dashboard, "/calls", limit="100")["calls"]
    rows = page.locator("#calls tbody tr")
    assert rows.count() == len(calls)
    assert rows.first.get_attribute("data-call-id") == calls[0]["call_id"]
    assert page.locator("#calls .pill.err").count() == sum(
        1 for c in calls if not c["ok"] and not c["cached"]
    )
    page.screenshot(path=str(ARTIFACTS / "calls.png"), full_page=False)


def test_filter_by_model_and_status(page: Any, dashboard: DashboardServer) -> None:
    page.select_option("#filters [name=model]", "gpt-4o")
    page.wait_for_function(
        "[...document.querySelectorAll('#calls tbody tr')].length > 0 &&"
        " [...document.querySelectorAll('#calls tbody tr td:nth-child(3)')]"
        ".every(td => td.innerText.trim().endsWith('gpt-4o'))"
    )
    want = _api(dashboard, "/summary", model="gpt-4o")
    page.wait_for_function(
        f"document.querySelector('#k-requests').innerText === '{want['requests']:,}'"
    )
    page.select_option("#filters [name=model]", "")
    page.select_option("#filters [name=status]", "error")
    errors = _api(dashboard, "/summary", status="error")["requests"]
    assert errors >= 2
    page.wait_for_function(f"document.querySelectorAll('#calls tbody tr').length === {errors}")
    page.screenshot(path=str(ARTIFACTS / "calls-errors.png"))
    page.click("#clear")
    page.wait_for_function("document.querySelectorAll('#calls tbody tr').length > 2")


def test_call_detail_shows_request_response_and_routing(page: Any) -> None:
    call_id = page.locator("#calls tbody tr").first.get_attribute("data-call-id")
    # by id: the live table may re-render between reading a row and clicking it
    page.locator(f'#calls tbody tr[data-call-id="{call_id}"]').first.click()
    page.wait_for_selector("#detail:not([hidden])")
    assert page.inner_text("#d-id") == call_id
    assert "messages" in page.inner_text("#d-request")
    assert "requested_model" in page.inner_text("#d-routing")
    page.screenshot(path=str(ARTIFACTS / "call-detail.png"))
    page.keyboard.press("Escape")
    page.wait_for_selector("#detail", state="hidden")


def test_charts_view_plots_the_api_series(page: Any, dashboard: DashboardServer) -> None:
    page.click("#tabs [data-tab=charts]")
    page.wait_for_selector("body[data-loaded=charts]")
    ts = _api(dashboard, "/timeseries")
    got = page.evaluate(
        "() => { const c = Chart.getChart('c-requests');"
        " return Object.fromEntries(c.data.datasets.map(d => [d.label, d.data])); }"
    )
    assert got == {m: s["requests"] for m, s in ts["series"].items()}
    for cid in ("c-cost", "c-latency", "c-ttft", "c-errors", "c-cache"):
        assert page.evaluate(f"() => Chart.getChart('{cid}') !== undefined"), cid
    lat = _api(dashboard, "/latency")["latency"]
    p99 = page.evaluate(
        "() => { const c = Chart.getChart('c-latency');"
        " return Object.fromEntries(c.data.labels.map((l, i) => [l, c.data.datasets[2].data[i]])); }"
    )
    assert p99 == pytest.approx({m: v["p99"] for m, v in lat.items() if v["p50"] is not None})
    page.screenshot(path=str(ARTIFACTS / "charts.png"), full_page=True)


def test_routing_view_shows_shares_and_savings(page: Any, dashboard: DashboardServer) -> None:
    page.click("#tabs [data-tab=routing]")
    page.wait_for_selector("body[data-loaded=routing]")
    aliases = _api(dashboard, "/routing")["aliases"]
    assert aliases, "the Thompson router replaced models: an alias must show"
    card = page.locator(".alias").first
    assert card.get_attribute("data-alias") == aliases[0]["alias"]
    assert card.locator("tbody tr").count() == len(aliases[0]["targets"])
    assert "against always calling" in card.inner_text()
    page.screenshot(path=str(ARTIFACTS / "routing.png"), full_page=True)


def test_selection_view_table_and_pareto(page: Any, dashboard: DashboardServer) -> None:
    page.click("#tabs [data-tab=selection]")
    page.wait_for_selector("body[data-loaded=selection]")
    view = _api(dashboard, "/selections/0")
    assert page.locator("#sel-table tbody tr").count() == len(view["combinations"])
    first = page.locator("#sel-table tbody tr").first.inner_text()
    assert view["combinations"][0]["combo"] in first
    points = page.evaluate(
        "() => Chart.getChart('c-pareto').data.datasets.reduce((n, d) => n + d.data.length, 0)"
    )
    assert points == sum(1 for c in view["combinations"] if c["usd_per_item"] is not None)
    page.screenshot(path=str(ARTIFACTS / "selection.png"), full_page=True)
