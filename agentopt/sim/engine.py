"""What a simulated model answers: text or tool calls, usage and timing.

Everything is drawn from a generator seeded by (world seed, model, request),
so the same request to the same model in the same world always gets the same
answer, whichever wire format carried it.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import random
import re
from dataclasses import dataclass, field
from typing import Any

from agentopt.sim import schema
from agentopt.sim.marker import Marker, find_markers
from agentopt.sim.tasks import LETTERS, TaskItem, find_item
from agentopt.sim.world import SimModel, World

__all__ = ["Reply", "SimRequest", "ToolSpec", "answer"]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    parameters: dict[str, Any]


@dataclass(slots=True)
class SimRequest:
    """A chat request, normalised from either wire format."""

    model: str
    text: str  # every message's text, in order, one per line ("role: content")
    n_messages: int
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: str = "auto"  # auto | none | required | <tool name>
    after_tool_result: bool = False
    max_tokens: int | None = None
    stream: bool = False
    include_usage: bool = False
    #: structured output asked for: ``{"type": "json_object"}`` or
    #: ``{"type": "json_schema", "schema": {...}}``; None for free text
    output_format: dict[str, Any] | None = None
    #: request fields a wire format echoes back in its response (Responses API)
    echo: dict[str, Any] = field(default_factory=dict)

    def digest(self, seed: int, model: str) -> bytes:
        h = hashlib.blake2b(digest_size=16)
        h.update(f"{seed}\x00{model}\x00{self.tool_choice}\x00".encode())
        for t in self.tools:
            h.update(t.name.encode() + b"\x00")
        h.update(self.text.encode("utf-8", "replace"))
        return h.digest()


@dataclass(slots=True)
class Reply:
    """A model's answer before it is put on the wire."""

    text: str
    tool_calls: list[tuple[str, str, str]]  # (id, name, arguments JSON)
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float  # unscaled
    per_token_s: float  # unscaled
    finish: str  # stop | length | tool_calls
    item: TaskItem | None = None
    correct: bool | None = None

    @property
    def duration_s(self) -> float:
        return self.ttft_s + self.per_token_s * self.completion_tokens


_FILLER = (
    "That is a good question to think through carefully.",
    "Let me consider the main points one at a time.",
    "The short version is that it depends on the context and the constraints.",
    "In practice, the simplest approach that meets the requirements usually works best.",
    "It helps to start from what is known and check each assumption.",
    "There are a few trade-offs worth keeping in mind here.",
    "A concrete example often makes the idea easier to follow.",
    "Taken together, these points suggest a clear way forward.",
    "One caveat is that the details can change the conclusion.",
    "If more information is available, the answer can be made more precise.",
    "Breaking the problem into smaller steps keeps it manageable.",
    "This is consistent with what one would expect in similar cases.",
)


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    if median <= 0:
        return 0.0
    return median * math.exp(sigma * rng.gauss(0.0, 1.0)) if sigma > 0 else median


def estimate_tokens(text: str, n_messages: int) -> int:
    """Prompt tokens as a tokenizer would roughly count them (4 chars a token)."""
    return max(1, (len(text) + 3) // 4 + 3 * n_messages)


def tools_tokens(tools: list[ToolSpec]) -> int:
    """Prompt tokens the tool definitions add."""
    return sum(len(json.dumps(t.parameters)) // 4 + 8 for t in tools)


def _build_corpus() -> tuple[str, list[int], list[int]]:
    """A long fixed text of filler sentences, with each sentence's start offset
    and the number of words before it: filler is then one slice, not a loop."""
    rng = random.Random(1234)
    sentences = [rng.choice(_FILLER) for _ in range(900)]
    starts, words, pos, count = [], [], 0, 0
    for sentence in sentences:
        starts.append(pos)
        words.append(count)
        pos += len(sentence) + 1
        count += sentence.count(" ") + 1
    starts.append(pos)
    words.append(count)
    return " ".join(sentences) + " ", starts, words


_CORPUS, _STARTS, _WORDS = _build_corpus()
_MAX_FILLER_WORDS = _WORDS[-1] // 2


def _filler(rng: random.Random, words: int) -> str:
    """About ``words`` words of fluent filler, whole sentences, chosen by ``rng``."""
    words = min(words, _MAX_FILLER_WORDS)
    first = rng.randrange(len(_STARTS) // 2)
    last = bisect.bisect_left(_WORDS, _WORDS[first] + words, lo=first + 1)
    return _CORPUS[_STARTS[first] : _STARTS[last] - 1]


def pair_synergy(world: World, producer: str, reader: str) -> float:
    """A fixed, seeded bonus or malus for ``reader`` reading ``producer``'s output."""
    if world.pair_noise <= 0:
        return 0.0
    h = hashlib.blake2b(f"{world.seed}|{producer}|{reader}".encode(), digest_size=8).digest()
    return random.Random(h).gauss(0.0, world.pair_noise)


def success_probability(
    world: World, model: SimModel, item: TaskItem, upstream: list[Marker]
) -> float:
    """Chance that ``model`` answers ``item`` right after reading ``upstream`` outputs.

    Each upstream marker about the same item contributes
    ``u = help + 0.25·(±1 if its answer was right/wrong) + synergy(producer, model)``;
    with ``ū`` their mean and ``s`` the model's skill, the chance is
    ``s + ū(1 − s)`` when ``ū ≥ 0`` and ``s(1 + ū)`` otherwise: a good plan lifts a
    weak solver more than a strong one, a bad plan drags anyone down.
    """
    s = model.skill(item.family)
    rel = [m for m in upstream if m.item == item.id and m.model != ""]
    if not rel:
        return s
    us = []
    for m in rel:
        u = m.help + (0.25 if m.correct == 1 else -0.25 if m.correct == 0 else 0.0)
        us.append(u + pair_synergy(world, m.model, model.name))
    u = max(-1.0, min(1.0, sum(us) / len(us)))
    p = s + u * (1 - s) if u >= 0 else s * (1 + u)
    return max(0.0, min(1.0, p))


def _wrong_answer(rng: random.Random, item: TaskItem) -> str:
    if item.family == "mcq":
        return rng.choice([c for c in LETTERS[: len(item.choices)] if c != item.answer])
    right = int(item.answer)
    delta = rng.choice([1, 2, 3, 5, 10, max(2, right // 10)]) * rng.choice([-1, 1])
    wrong = right + delta
    return str(wrong if wrong >= 0 and wrong != right else right + abs(delta) + 1)


_WORD_CHARS = ".,?!:;'\"()[]{}"
#: an instruction in the prompt to answer in JSON ("Respond in JSON", "JSON only")
_ASKS_JSON = re.compile(
    r"\b(?:respond|reply|answer|return|output|format(?:ted)?|give)\b[^\n.]{0,60}\bJSON\b"
    r"|\bJSON\b[^\n.]{0,20}\b(?:only|object|format)\b",
    re.IGNORECASE,
)


def _words(prompt: str) -> list[str]:
    """Words of the last message, for string values (tool arguments, JSON fields):
    its capitalised words (names, places) when it has any."""
    last = prompt.rsplit("\n", 1)[-1]
    last = last.split(": ", 1)[1] if ": " in last[:12] else last  # drop "role: "
    words = [w.strip(_WORD_CHARS) for w in last.split()]
    words = [w for w in words if len(w) > 2 and w.isprintable()][-8:]
    names = [w for w in words[1:] if w[:1].isupper()]
    return names or words or ["example"]


def _args_for(rng: random.Random, params: dict[str, Any], prompt: str) -> dict[str, Any]:
    """Arguments valid for a tool's JSON-schema ``params``. Without a ``required``
    list every property is filled, as a model usually does."""
    if isinstance(params.get("properties"), dict) and "required" not in params:
        params = {**params, "required": list(params["properties"])}
    args = schema.fake(params, rng, _words(prompt))
    return args if isinstance(args, dict) else {}


def _json_format(req: SimRequest) -> dict[str, Any] | None:
    """The structured output the request asks for, by ``response_format`` or in words."""
    fmt = req.output_format
    if fmt is not None and fmt.get("type") in ("json_object", "json_schema"):
        return fmt
    if fmt is None and _ASKS_JSON.search(req.text):
        return {"type": "json_object"}
    return None


def _json_reply(
    rng: random.Random, req: SimRequest, fmt: dict[str, Any], final: str, prose: str
) -> str:
    target = fmt.get("schema") if fmt.get("type") == "json_schema" else None
    keys = None if target else schema.keys_in_prompt(req.text) or None
    value, _ = schema.structured(
        target if isinstance(target, dict) else None, rng, _words(req.text), final, prose, keys
    )
    return json.dumps(value, ensure_ascii=False)


def answer(world: World, model: SimModel, req: SimRequest) -> Reply:
    """The reply of ``model`` to ``req`` in ``world``: deterministic."""
    digest = req.digest(world.seed, model.name)
    rng = random.Random(digest)
    prompt_tokens = estimate_tokens(req.text, req.n_messages)
    prompt_tokens += tools_tokens(req.tools)
    out = model.output_tokens
    n_out = round(_lognormal(rng, out.median, out.sigma))
    n_out = max(out.min, min(out.max, n_out))
    ttft = _lognormal(rng, model.latency.ttft_s, model.latency.ttft_sigma)
    tpot = _lognormal(rng, model.latency.per_token_s, model.latency.per_token_sigma)

    tool_calls: list[tuple[str, str, str]] = []
    item: TaskItem | None = None
    correct: bool | None = None
    wants_tool = (
        req.tools
        and req.tool_choice != "none"
        and not req.after_tool_result
        and (req.tool_choice != "auto" or rng.random() < model.tool_use)
    )
    if wants_tool:
        named = [t for t in req.tools if t.name == req.tool_choice]
        tool = named[0] if named else rng.choice(req.tools)
        args = _args_for(rng, tool.parameters, req.text)
        call_id = "call_" + digest.hex()[:24]
        tool_calls.append((call_id, tool.name, json.dumps(args)))
        n_out = max(out.min, min(n_out, 20 + 8 * len(args)))
        text, finish = "", "tool_calls"
    else:
        item = find_item(req.text)
        fmt = _json_format(req)
        if item is not None:
            p = success_probability(world, model, item, find_markers(req.text))
            correct = rng.random() < p
            final = item.answer if correct else _wrong_answer(rng, item)
            marker = Marker(model.name, item.id, int(correct), model.plan)
            text = f"{_filler(rng, 12)}\n\nAnswer: {final}\n\n{marker.encode()}"
        else:
            marker = Marker(model.name, "", -1, model.plan)
            text = f"{_filler(rng, max(4, int(n_out * 0.75)))}\n\n{marker.encode()}"
        if fmt is not None:
            if item is None:
                final = _filler(rng, 8)
            prose = f"{_filler(rng, 12)} {marker.encode()}"
            text = _json_reply(rng, req, fmt, final, prose)
            n_out = max(1, (len(text) + 3) // 4)
        finish = "stop"
    if req.max_tokens is not None and n_out > req.max_tokens:
        n_out = max(1, req.max_tokens)
        if finish == "stop":
            finish = "length"
    return Reply(text, tool_calls, prompt_tokens, n_out, ttft, tpot, finish, item, correct)
