"""Assemble the events of a streamed response into the equivalent whole response.

One :class:`Assembler` per wire format, fed decoded events by
:class:`~agentopt.tracking.wire.sse.StreamParser`: OpenAI (Chat Completions chunks
and Responses API events), Anthropic (message events) and Gemini (chunks).
Each keeps the reported model, the raw usage, whether a terminal event was
seen and any error event, and builds a JSON-serialisable ``body()``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from agentopt.records import Usage
from agentopt.tracking.providers import Wire
from agentopt.tracking.wire.wire_formats import (
    anthropic_usage,
    error_text,
    gemini_usage,
    openai_usage,
)

if TYPE_CHECKING:
    from agentopt.tracking.wire.bulk import ChatTemplate

__all__ = [
    "AnthropicAssembler",
    "Assembler",
    "GeminiAssembler",
    "OpenAIAssembler",
    "assembler_for",
]


class Assembler:
    """What every wire's assembler keeps and answers."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.usage: dict[str, Any] | None = None
        self.terminal = False
        self.error: str | None = None
        self._id: Any = None

    def handle(self, event: str | None, obj: dict[str, Any]) -> None:
        """Take one decoded event (``event`` is the SSE event name, if any)."""
        raise NotImplementedError

    def body(self) -> Any:
        """The equivalent non-streamed response body."""
        raise NotImplementedError

    def handle_all(
        self,
        events: list[str | None] | None,
        objs: list[Any],
        template: ChatTemplate | None = None,
    ) -> list[str]:
        """Take many decoded events at once (``events``: their SSE names, None
        when none has one; with a ``template``, a ``str`` is the text of one of
        its chunks); returns why each bad one could not be used."""
        bad: list[str] = []
        for i, obj in enumerate(objs):
            self._one(None if events is None else events[i], obj, bad, template)
        return bad

    def _one(
        self, event: str | None, obj: Any, bad: list[str], template: ChatTemplate | None
    ) -> None:
        if template is not None and type(obj) is str:
            obj = template.build(obj)
        if not isinstance(obj, dict):
            bad.append(f"event data is not an object: {str(obj)[:200]!r}")
            return
        try:
            self.handle(event, obj)
        except Exception as exc:
            bad.append(f"{type(exc).__name__}: {exc}")

    def parsed_usage(self) -> Usage | None:
        """The usage seen so far, or None when the stream reported none."""
        return None if self.usage is None else self._usage_of(self.usage)

    @staticmethod
    def _usage_of(raw: dict[str, Any]) -> Usage:
        return openai_usage(raw)


class OpenAIAssembler(Assembler):
    """Chat Completions chunks, or Responses API events (told apart by ``type``)."""

    def __init__(self) -> None:
        super().__init__()
        self._kind: str | None = None  # "chat" | "responses"
        self._created: Any = None
        self._choices: dict[int, dict[str, Any]] = {}
        self._response: dict[str, Any] | None = None
        self._text: list[str] = []

    def handle(self, event: str | None, obj: dict[str, Any]) -> None:
        if self._kind != "chat":
            kind = obj.get("type")
            if isinstance(kind, str) and (kind.startswith("response.") or kind == "error"):
                self._responses(kind, obj)
                return
        choices = obj.get("choices")
        if not choices and "error" in obj:
            self.error = error_text(obj)
            self.terminal = True
            return
        if self._kind is None:
            self._kind = "chat"
            self._id = obj.get("id")
            self._created = obj.get("created")
        model = obj.get("model")
        if model and model != self.model and isinstance(model, str):
            self.model = model
        usage = obj.get("usage")
        if usage and isinstance(usage, dict):
            self.usage = usage
        if not choices or not isinstance(choices, list):
            return
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            idx = choice.get("index", 0)
            st = self._choices.get(idx)
            if st is None:
                st = {"content": [], "reasoning": [], "refusal": [], "tools": {}, "finish": None}
                self._choices[idx if isinstance(idx, int) else 0] = st
            delta = choice.get("delta")
            if delta and isinstance(delta, dict):
                for key, piece in delta.items():
                    if key == "content":
                        if isinstance(piece, str):
                            st["content"].append(piece)
                    elif key == "role":
                        continue
                    elif key == "tool_calls":
                        for tc in piece or ():
                            if isinstance(tc, dict):
                                self._tool_delta(st["tools"], tc)
                    elif key in ("reasoning_content", "reasoning", "refusal") and isinstance(
                        piece, str
                    ):
                        st["refusal" if key == "refusal" else "reasoning"].append(piece)
            finish = choice.get("finish_reason")
            if finish:
                st["finish"] = finish
                self.terminal = True

    def handle_all(
        self,
        events: list[str | None] | None,
        objs: list[Any],
        template: ChatTemplate | None = None,
    ) -> list[str]:
        """As :meth:`Assembler.handle_all`, with a short path for the common Chat
        Completions chunk: one choice, a text delta, nothing else new."""
        bad: list[str] = []
        one = self._one
        choices_state = self._choices
        tpl = template
        for i, obj in enumerate(objs):
            if tpl is not None and type(obj) is str:
                if self._kind == "chat" and tpl.fast and (not tpl.model or tpl.model == self.model):
                    st = choices_state.get(tpl.index)
                    if st is not None:
                        st["content"].append(obj)
                        continue
            elif self._kind == "chat" and type(obj) is dict:
                choices = obj.get("choices")
                model = obj.get("model")
                if (
                    type(choices) is list
                    and len(choices) == 1
                    and not obj.get("usage")
                    and (not model or model == self.model)
                ):
                    choice = choices[0]
                    if type(choice) is dict and not choice.get("finish_reason"):
                        st = choices_state.get(choice.get("index", 0))
                        delta = choice.get("delta")
                        if st is not None and type(delta) is dict and len(delta) <= 2:
                            content = delta.get("content")
                            rest = len(delta) - ("content" in delta) - ("role" in delta)
                            if rest == 0 and (content is None or type(content) is str):
                                if content is not None:
                                    st["content"].append(content)
                                continue
            one(None if events is None else events[i], obj, bad, tpl)
        return bad

    def add_texts(self, texts: list[str], template: ChatTemplate) -> list[str]:
        """Take a run of text chunks of ``template`` at once (their ``delta.content``
        in order): as many :meth:`handle` calls, but once one of them only adds
        text, so do all the rest, and they are appended in one go."""
        bad: list[str] = []
        for i, text in enumerate(texts):
            if (
                self._kind == "chat"
                and template.fast
                and (not template.model or template.model == self.model)
            ):
                st = self._choices.get(template.index)
                if st is not None:
                    st["content"].extend(texts[i:])
                    return bad
            self._one(None, template.build(text), bad, None)
        return bad

    @staticmethod
    def _tool_delta(tools: dict[int, dict[str, Any]], tc: dict[str, Any]) -> None:
        idx = tc.get("index", len(tools))
        entry = tools.setdefault(
            idx, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
        )
        if tc.get("id"):
            entry["id"] = tc["id"]
        if tc.get("type"):
            entry["type"] = tc["type"]
        fn = tc.get("function") or {}
        if isinstance(fn.get("name"), str):
            entry["function"]["name"] += fn["name"]
        if isinstance(fn.get("arguments"), str):
            entry["function"]["arguments"] += fn["arguments"]

    def _responses(self, kind: str, obj: dict[str, Any]) -> None:
        self._kind = "responses"
        response = obj.get("response")
        if isinstance(response, dict):
            self._response = response
            if isinstance(response.get("model"), str):
                self.model = response["model"]
            if isinstance(response.get("usage"), dict):
                self.usage = response["usage"]
        if kind == "response.output_text.delta" and isinstance(obj.get("delta"), str):
            self._text.append(obj["delta"])
        elif kind in ("response.completed", "response.incomplete"):
            self.terminal = True
        elif kind == "response.failed":
            self.terminal = True
            self.error = error_text(response) if isinstance(response, dict) else None
            self.error = self.error or "response failed"
        elif kind == "error":
            self.terminal = True
            self.error = error_text({"error": obj}) or error_text(obj) or "stream error"

    def body(self) -> Any:
        if self._kind == "responses":
            if self._response is not None and self.terminal:
                return self._response
            body = dict(self._response or {"object": "response"})
            body["status"] = body.get("status") if self.terminal else "incomplete"
            body["output"] = [
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "".join(self._text)}],
                }
            ]
            return body
        choices = []
        for idx in sorted(self._choices):
            st = self._choices[idx]
            message: dict[str, Any] = {
                "role": "assistant",
                "content": "".join(st["content"]) or None,
            }
            if st["reasoning"]:
                message["reasoning_content"] = "".join(st["reasoning"])
            if st["refusal"]:
                message["refusal"] = "".join(st["refusal"])
            if st["tools"]:
                message["tool_calls"] = [st["tools"][i] for i in sorted(st["tools"])]
            choices.append({"index": idx, "message": message, "finish_reason": st["finish"]})
        return {
            "id": self._id,
            "object": "chat.completion",
            "created": self._created,
            "model": self.model,
            "choices": choices,
            "usage": self.usage,
        }


class AnthropicAssembler(Assembler):
    """Anthropic message events; usage is message_start's merged with message_delta's."""

    def __init__(self) -> None:
        super().__init__()
        self._blocks: dict[int, dict[str, Any]] = {}
        self._json_parts: dict[int, list[str]] = {}
        self._stop: dict[str, Any] = {}

    @staticmethod
    def _usage_of(raw: dict[str, Any]) -> Usage:
        return anthropic_usage(raw)

    def handle(self, event: str | None, obj: dict[str, Any]) -> None:
        kind = obj.get("type") or event
        if kind == "message_start":
            msg = obj.get("message") or {}
            if isinstance(msg.get("model"), str):
                self.model = msg["model"]
            if isinstance(msg.get("id"), str):
                self._id = msg["id"]
            if isinstance(msg.get("usage"), dict):
                self.usage = dict(msg["usage"])
        elif kind == "content_block_start":
            idx = obj.get("index", len(self._blocks))
            block = obj.get("content_block")
            self._blocks[idx] = dict(block) if isinstance(block, dict) else {"type": "text"}
        elif kind == "content_block_delta":
            idx = obj.get("index", 0)
            block = self._blocks.setdefault(idx, {"type": "text", "text": ""})
            delta = obj.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta":
                block["text"] = block.get("text", "") + str(delta.get("text", ""))
            elif dtype == "input_json_delta":
                self._json_parts.setdefault(idx, []).append(str(delta.get("partial_json", "")))
            elif dtype == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + str(delta.get("thinking", ""))
            elif dtype == "signature_delta":
                block["signature"] = str(delta.get("signature", ""))
        elif kind == "message_delta":
            delta = obj.get("delta") or {}
            if isinstance(delta, dict):
                self._stop.update({k: v for k, v in delta.items() if v is not None})
            usage = obj.get("usage")
            if isinstance(usage, dict):
                merged = dict(self.usage or {})
                merged.update({k: v for k, v in usage.items() if v is not None})
                self.usage = merged
        elif kind == "message_stop":
            self.terminal = True
        elif kind == "error":
            self.terminal = True
            self.error = error_text(obj) or "stream error"

    def body(self) -> Any:
        content = []
        for idx in sorted(self._blocks):
            block = dict(self._blocks[idx])
            if idx in self._json_parts:
                raw = "".join(self._json_parts[idx])
                try:
                    block["input"] = json.loads(raw) if raw else {}
                except ValueError:
                    block["input"] = raw
            content.append(block)
        return {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": self._stop.get("stop_reason"),
            "stop_sequence": self._stop.get("stop_sequence"),
            "usage": self.usage,
        }


class GeminiAssembler(Assembler):
    """Gemini chunks (SSE, or the elements of a JSON-array stream)."""

    def __init__(self) -> None:
        super().__init__()
        self._candidates: dict[int, dict[str, Any]] = {}
        self._extra: dict[str, Any] = {}

    @staticmethod
    def _usage_of(raw: dict[str, Any]) -> Usage:
        return gemini_usage(raw)

    def handle(self, event: str | None, obj: dict[str, Any]) -> None:
        if "error" in obj and not obj.get("candidates"):
            self.error = error_text(obj)
            self.terminal = True
            return
        if isinstance(obj.get("modelVersion"), str):
            self.model = obj["modelVersion"]
        if isinstance(obj.get("usageMetadata"), dict):
            self.usage = obj["usageMetadata"]
        for key in ("responseId", "promptFeedback"):
            if key in obj:
                self._extra[key] = obj[key]
        for pos, cand in enumerate(obj.get("candidates") or ()):
            if not isinstance(cand, dict):
                continue
            idx = cand.get("index", pos)
            st = self._candidates.setdefault(idx, {"parts": [], "finish": None, "role": "model"})
            content = cand.get("content") or {}
            if isinstance(content, dict):
                for part in content.get("parts") or ():
                    if isinstance(part, dict):
                        self._part(st["parts"], part)
            if cand.get("finishReason"):
                st["finish"] = cand["finishReason"]
                self.terminal = True

    @staticmethod
    def _part(parts: list[dict[str, Any]], part: dict[str, Any]) -> None:
        last = parts[-1] if parts else None
        if (
            "text" in part
            and last is not None
            and "text" in last
            and bool(last.get("thought")) == bool(part.get("thought"))
            and len(part) == len(last)
        ):
            last["text"] = str(last["text"]) + str(part["text"])
        else:
            parts.append(dict(part))

    def body(self) -> Any:
        return {
            "candidates": [
                {
                    "index": idx,
                    "content": {"role": "model", "parts": st["parts"]},
                    "finishReason": st["finish"],
                }
                for idx, st in sorted(self._candidates.items())
            ],
            "usageMetadata": self.usage,
            "modelVersion": self.model,
            **self._extra,
        }


def assembler_for(wire: Wire) -> Assembler:
    """A fresh assembler for ``wire``."""
    if wire == "anthropic":
        return AnthropicAssembler()
    if wire == "gemini":
        return GeminiAssembler()
    return OpenAIAssembler()
