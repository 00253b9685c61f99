"""The app is a plain ASGI callable: it mounts anywhere, here in httpx's ASGI transport."""

from __future__ import annotations

import httpx

from agentopt.sim import create_app
from agentopt.sim.tasks import grade, load_task


async def test_create_app_serves_in_process() -> None:
    app = create_app("default", seed=0, time_scale=0.0)
    item = load_task("arithmetic")[5]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as c:
        r = await c.post(
            "/v1/chat/completions",
            json={"model": "gpt-5-nano", "messages": [{"role": "user", "content": item.prompt}]},
        )
        assert r.status_code == 200
        text = r.json()["choices"][0]["message"]["content"]
        assert grade(item, text) == float(r.headers["x-sim-correct"])
        async with c.stream(
            "POST",
            "/v1/messages",
            json={
                "model": "gpt-5-nano",
                "max_tokens": 64,
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            },
        ) as s:
            body = await s.aread()
        assert body.rstrip().endswith(b'data: {"type":"message_stop"}')
    assert app.stats["ok"] == 2
