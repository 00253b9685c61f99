"""The litellm front-end: calls recorded once, sync/async/streamed, routed before the call."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import t1_helpers
from t1_helpers import MSG, OPENAI_KEY, FakeRouter

from agentopt.sim import SimServer
from agentopt.tracking import LLMTracker
from agentopt.tracking.capture import litellm_capture

pytestmark = pytest.mark.xdist_group("t1-litellm")

# Shared fixtures (module-scoped simulator; no patch left behind).
sim = t1_helpers.sim
no_global_patch = t1_helpers.no_global_patch

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(scope="module")
def litellm():  # type: ignore[no-untyped-def]
    import litellm as mod

    mod.suppress_debug_info = True
    return mod


def kw(sim: SimServer) -> dict[str, str]:
    return {"api_base": sim.openai_base_url, "api_key": OPENAI_KEY}


def test_sync_call_is_recorded_once(litellm, sim: SimServer) -> None:  # type: ignore[no-untyped-def]
    with LLMTracker(cache=False) as t, t.track(data_id="l1", agent_id="solver"):
        r = litellm.completion(model="openai/gpt-4o-mini", messages=MSG, **kw(sim))
    [rec] = t.records  # the httpx front-end did not record litellm's own request
    assert (rec.data_id, rec.agent_id) == ("l1", "solver")
    assert rec.requested_model == "openai/gpt-4o-mini" and rec.model == r.model
    assert (rec.prompt_tokens, rec.completion_tokens) == (
        r.usage.prompt_tokens,
        r.usage.completion_tokens,
    )
    assert rec.cost_usd is not None and rec.cost_usd > 0 and rec.provider == "openai"
    assert OPENAI_KEY not in rec.model_dump_json()


def test_streamed_call_is_recorded_with_usage_and_ttft(litellm, sim: SimServer) -> None:  # type: ignore[no-untyped-def]
    with LLMTracker(cache=False) as t, t.track(data_id="l2"):
        chunks = list(
            litellm.completion(model="openai/gpt-4o-mini", messages=MSG, stream=True, **kw(sim))
        )
    assert chunks
    [rec] = t.records
    assert rec.stream and rec.completion_tokens > 0 and rec.ttft_seconds is not None


async def test_async_and_async_stream(litellm, sim: SimServer) -> None:  # type: ignore[no-untyped-def]
    with LLMTracker(cache=False) as t, t.track(data_id="l3"):
        await litellm.acompletion(model="openai/gpt-4o-mini", messages=MSG, **kw(sim))
        stream = await litellm.acompletion(
            model="openai/gpt-4o-mini", messages=MSG, stream=True, **kw(sim)
        )
        async for _ in stream:
            pass
    recs = t.get_records(data_id="l3")
    assert [r.stream for r in recs] == [False, True]
    assert all(r.completion_tokens > 0 for r in recs)


def test_router_chooses_the_model_before_the_call(litellm, sim: SimServer) -> None:  # type: ignore[no-untyped-def]
    router = FakeRouter("openai/gpt-4o")
    with LLMTracker(cache=False) as t, t.track(data_id="l4", router=router):
        r = litellm.completion(model="openai/gpt-4o-mini", messages=MSG, **kw(sim))
    assert r.model == "gpt-4o"
    [rec] = t.records
    assert (rec.requested_model, rec.model) == ("openai/gpt-4o-mini", "gpt-4o")
    assert router.contexts[0].requested_model == "openai/gpt-4o-mini"
    assert [o.call_id for o in router.observed] == [rec.call_id]


def test_failure_is_recorded_once(litellm) -> None:  # type: ignore[no-untyped-def]
    with (
        LLMTracker(cache=False) as t,
        t.track(data_id="l5"),
        pytest.raises(Exception, match="Connection"),
    ):
        litellm.completion(
            model="openai/gpt-4o-mini",
            messages=MSG,
            api_base="http://127.0.0.1:9/v1",
            api_key="x",
        )
    [rec] = t.records
    assert rec.error is not None and rec.completion_tokens == 0


def test_stop_restores_litellm(litellm) -> None:  # type: ignore[no-untyped-def]
    original = litellm.completion
    t = LLMTracker(cache=False).start()
    assert litellm.completion is not original and litellm_capture.installed()
    t.stop()
    assert litellm.completion is original


def test_tracker_never_imports_litellm_itself() -> None:
    code = (
        "import sys; from agentopt.tracking import LLMTracker; "
        "t = LLMTracker(cache=False).start(); t.stop(); print('litellm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_import_hook_runs_after_a_late_import(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    # The same hook patches litellm when user code imports it after start()
    # (a fake module here: importing litellm in a subprocess costs seconds).
    from agentopt.tracking.capture.import_hooks import when_imported

    (tmp_path / "t1_late_module.py").write_text("value = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen: list[int] = []
    when_imported("t1_late_module", lambda m: seen.append(m.value))
    assert seen == []
    import t1_late_module  # type: ignore[import-not-found]  # noqa: F401

    assert seen == [1]
    sys.modules.pop("t1_late_module", None)


def test_abandoned_stream_is_recorded(litellm, sim: SimServer) -> None:  # type: ignore[no-untyped-def]
    with LLMTracker(cache=False) as t, t.track(data_id="l6"):
        stream = litellm.completion(
            model="openai/gpt-4o-mini", messages=MSG, stream=True, **kw(sim)
        )
        next(stream)
        stream.close()
    [rec] = t.records
    assert rec.stream and rec.error is not None and "early" in rec.error


def test_stop_records_a_litellm_stream_left_open(litellm, sim: SimServer) -> None:  # type: ignore[no-untyped-def]
    t = LLMTracker(cache=False).start()
    with t.track(data_id="l7"):
        stream = litellm.completion(
            model="openai/gpt-4o-mini", messages=MSG, stream=True, **kw(sim)
        )
        next(stream)
    t.stop()
    [rec] = t.records
    assert rec.data_id == "l7" and rec.error is not None
    del stream


def test_non_streamed_calls_are_recorded_when_they_return(litellm, sim: SimServer) -> None:  # type: ignore[no-untyped-def]
    # The wrapper records from the response it returns: no wait for litellm's
    # logging thread.
    with LLMTracker(cache=False) as t, t.track(data_id="l8"):
        r = litellm.completion(model="openai/gpt-4o-mini", messages=MSG, **kw(sim))
        [rec] = t.store.all()  # the store itself, right after the call returned
    assert rec.completion_tokens == r.usage.completion_tokens and rec.provider == "openai"
    assert rec.request_url == sim.openai_base_url and rec.response_body["id"] == r.id
    assert [x.call_id for x in t.records] == [rec.call_id]


async def test_async_call_is_recorded_when_it_returns(litellm, sim: SimServer) -> None:  # type: ignore[no-untyped-def]
    with LLMTracker(cache=False) as t, t.track(data_id="l9"):
        r = await litellm.acompletion(model="openai/gpt-4o-mini", messages=MSG, **kw(sim))
        [rec] = t.store.all()
    assert rec.model == r.model and rec.completion_tokens == r.usage.completion_tokens
    assert len(t.records) == 1
