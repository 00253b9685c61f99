"""Prices: litellm's bundled map plus user overrides → :class:`~agentopt.records.Cost`."""

from agentopt.pricing.book import ModelPrice, PriceBook, default_price_book, litellm_price_map_path

__all__ = ["ModelPrice", "PriceBook", "default_price_book", "litellm_price_map_path"]
