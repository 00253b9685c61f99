from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentopt.exceptions import PricingError
from agentopt.pricing import PriceBook, litellm_price_map_path


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook()


def test_reads_litellm_map_file_with_thousands_of_models(book: PriceBook) -> None:
    path = litellm_price_map_path()
    assert path is not None
    assert len(json.loads(path.read_text())) > 4000
    # image/audio/embedding-only entries have no per-token chat price
    assert len(book) > 3000


def test_openai_model_priced_prefixed_and_unprefixed(book: PriceBook) -> None:
    bare = book.cost("gpt-4o-mini", prompt_tokens=1_000_000, completion_tokens=1_000_000)
    prefixed = book.cost("openai/gpt-4o-mini", prompt_tokens=1_000_000, completion_tokens=1_000_000)
    assert bare.known and prefixed.known
    assert bare.usd == pytest.approx(0.15 + 0.60)
    assert prefixed.usd == bare.usd


def test_anthropic_model_priced_with_prefix(book: PriceBook) -> None:
    c = book.cost("anthropic/claude-haiku-4-5", prompt_tokens=1000, completion_tokens=100)
    assert c.known
    assert c.usd == pytest.approx(1000 * 1e-6 + 100 * 5e-6)


def test_bedrock_model_priced_with_provider_and_region_prefix(book: PriceBook) -> None:
    a = book.cost("bedrock/anthropic.claude-opus-4-6-v1", prompt_tokens=1000, completion_tokens=100)
    b = book.cost("bedrock/us-east-1/anthropic.claude-opus-4-6-v1", 1000, 100)
    assert a.known and a.usd == pytest.approx(1000 * 5e-6 + 100 * 25e-6)
    assert b.usd == a.usd


def test_cached_input_tokens_use_cache_read_rate(book: PriceBook) -> None:
    full = book.cost("gpt-4o-mini", prompt_tokens=1000, completion_tokens=0)
    half_cached = book.cost(
        "gpt-4o-mini", prompt_tokens=1000, completion_tokens=0, cached_tokens=500
    )
    assert half_cached.usd == pytest.approx(500 * 0.15e-6 + 500 * 0.075e-6)
    assert half_cached.usd is not None and full.usd is not None
    assert half_cached.usd < full.usd


def test_reasoning_tokens_use_reasoning_rate_where_the_map_has_one(book: PriceBook) -> None:
    model = "dashscope/qwen-turbo"
    p = book.price(model)
    assert p is not None and p.reasoning is not None
    c = book.cost(model, prompt_tokens=0, completion_tokens=100, reasoning_tokens=40)
    assert c.usd == pytest.approx(60 * p.output + 40 * p.reasoning)


def test_unknown_model_is_unpriced_not_zero(book: PriceBook) -> None:
    c = book.cost("no-such-model-xyz", prompt_tokens=100, completion_tokens=100)
    assert c.usd is None
    assert not c.known
    assert str(c) == "unpriced"
    assert book.cost_usd("no-such-model-xyz", 1, 1) is None


def test_user_prices_win_over_litellm_per_million() -> None:
    book = PriceBook({"gpt-4o-mini": {"input": 1.0, "output": 2.0}})
    c = book.cost("openai/gpt-4o-mini", prompt_tokens=1_000_000, completion_tokens=1_000_000)
    assert c.usd == pytest.approx(3.0)
    assert c.source == "user"


def test_user_prices_per_token_and_pairs() -> None:
    book = PriceBook({"m1": (0.5, 1.5)})
    book.update({"m2": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}})
    book.update({"m3": {"input": 3e-6, "output": 4e-6}}, unit="per_token")
    assert book.cost("m1", 1_000_000, 0).usd == pytest.approx(0.5)
    assert book.cost("m2", 10, 10).usd == pytest.approx(30e-6)
    assert book.cost("m3", 1, 1).usd == pytest.approx(7e-6)


def test_user_prices_from_json_and_yaml_files(tmp_path: Path) -> None:
    j = tmp_path / "prices.json"
    j.write_text(
        json.dumps({"unit": "per_million", "models": {"house-model": {"input": 2, "output": 8}}})
    )
    y = tmp_path / "prices.yaml"
    y.write_text("unit: per_token\nother-model:\n  input: 0.000001\n  output: 0.000002\n")
    book = PriceBook(j)
    book.update(y)
    assert book.cost("house-model", 1_000_000, 1_000_000).usd == pytest.approx(10.0)
    assert book.cost("other-model", 1, 1).usd == pytest.approx(3e-6)


@pytest.mark.parametrize(
    ("prices", "match"),
    [
        ({"m": {"input": 1.0}}, "needs an input and an output"),
        ({"m": {"input": "cheap", "output": 1}}, "not a number"),
        ({"m": {"input": -1, "output": 1}}, "negative"),
        ({"m": {"input": float("nan"), "output": 1}}, "not a finite number"),
        ({"m": {"input": 1, "output": float("inf")}}, "not a finite number"),
        ({"m": (float("nan"), 1.0)}, "not a finite number"),
        ({"m": {"input_cost_per_token": float("-inf"), "output": 1}}, "not a finite number"),
        ({"m": 3}, "mapping or an"),
        ({"m": {"input": 1, "output": 1, "unit": "per_day"}}, "unit must be"),
    ],
)
def test_bad_user_prices_raise_clear_errors(prices: dict[str, object], match: str) -> None:
    with pytest.raises(PricingError, match=match):
        PriceBook(prices)


def test_bad_price_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PricingError, match=r"bad\.json"):
        PriceBook(bad)


def test_nan_and_overflowing_prices_in_a_file_are_refused(tmp_path: Path) -> None:
    # JSON's 1e400 overflows to inf and NaN parses as nan: neither may price a call.
    for text in ('{"m": {"input": 1e400, "output": 1}}', '{"m": {"input": NaN, "output": 1}}'):
        path = tmp_path / "prices.json"
        path.write_text(text)
        with pytest.raises(PricingError, match=r"'m'.*not a finite number"):
            PriceBook(path, use_litellm=False)


def test_non_utf8_price_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("caf\xe9-model: {input: 1, output: 2}\n".encode("latin-1"))
    with pytest.raises(PricingError, match=r"latin1\.yaml.*not UTF-8"):
        PriceBook(bad)


def test_price_book_pickles_with_its_user_prices() -> None:
    import pickle

    book = PriceBook({"my-model": {"input": 1.0, "output": 2.0}})
    book.cost("gpt-4o-mini", 10, 10)  # memoised state and the lock stay behind
    copy = pickle.loads(pickle.dumps(book))
    assert copy.cost_usd("my-model", 1_000_000, 1_000_000) == 3.0
    assert copy.cost_usd("gpt-4o-mini", 10, 10) == book.cost_usd("gpt-4o-mini", 10, 10)
