"""Hashed n-gram prompt features, and the prompt text a router reads."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from agentopt.exceptions import ConfigError
from agentopt.routers.features import PromptHasher, prompt_text


def test_vectors_are_unit_sparse_and_the_same_in_another_process() -> None:
    h = PromptHasher(n_features=2048)
    idx, val = h.transform("What is the capital of Portugal? Answer: <letter>")
    assert idx.size > 20 and np.all(np.diff(idx) > 0) and idx.max() < 2048
    assert abs(float(val @ val) - 1.0) < 1e-9
    code = (
        "from agentopt.routers.features import PromptHasher;"
        "i, v = PromptHasher(n_features=2048).transform("
        "'What is the capital of Portugal? Answer: <letter>');"
        "print(i.tolist(), [round(x, 12) for x in v.tolist()])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == f"{idx.tolist()} {[round(x, 12) for x in val.tolist()]}"


def test_similar_prompts_are_closer_than_unrelated_ones() -> None:
    h = PromptHasher()
    a = h.dense("How many chairs are in 12 rows of 19 chairs? Reply with a number.")
    b = h.dense("How many apples are in 7 boxes of 30 apples? Reply with a number.")
    c = h.dense("Write a friendly haiku about the autumn weather in Paris.")
    assert a @ b > 2 * (a @ c)


def test_empty_and_non_ascii_text() -> None:
    h = PromptHasher()
    idx, val = h.transform("")
    assert idx.size == 0 and val.size == 0
    idx, val = h.transform("日本語のテキスト ünïcödé")
    assert idx.size > 0 and abs(float(val @ val) - 1.0) < 1e-9


def test_bad_hasher_arguments() -> None:
    with pytest.raises(ConfigError, match="n_features"):
        PromptHasher(n_features=1)
    with pytest.raises(ConfigError, match="char_ngrams or word_ngrams"):
        PromptHasher(char_ngrams=None, word_ngrams=None)


def test_prompt_text_reads_both_wire_formats() -> None:
    openai_body = {
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "reply"},
            {"role": "user", "content": [{"type": "text", "text": "last"}]},
        ]
    }
    assert prompt_text(openai_body) == "sys\nfirst\nlast"
    anthropic_body = {"system": "sys", "messages": [{"role": "user", "content": "q"}]}
    assert prompt_text(anthropic_body) == "sys\nq"
    assert prompt_text(None) == ""
