"""Prompt features that carry meaning: hashed word and character n-grams
(the clusters they gather into: :mod:`agentopt.routers.clusters`).

:class:`PromptHasher` maps a prompt to a sparse, L2-normalised vector of
``n_features`` signed buckets: word unigrams and bigrams plus character 3- to
5-grams (within and across words), each hashed to a bucket and a sign
(collisions cancel on average instead of piling up), with sublinear counts.
Nothing is downloaded and nothing is fitted: the same text gives the same
vector in every process (the hash is a fixed polynomial over bytes, not
Python's salted ``hash``).

It computes the same kind of vector as scikit-learn's ``HashingVectorizer``
(``analyzer="char_wb"`` plus a word analyzer, ``alternate_sign=True``), about
ten times faster on one prompt: the n-grams are hashed with numpy over the
whole byte string at once, where scikit-learn builds each n-gram as a Python
string (``experiments/bench_routers.py --only features`` measures both).

>>> h = PromptHasher(n_features=2048)
>>> idx, val = h.transform("What is 2 + 2?")
>>> float(round((val**2).sum(), 6))
1.0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from agentopt.exceptions import ConfigError

__all__ = ["Embedder", "PromptHasher", "prompt_text"]

#: a user's embedding function: text → dense vector
Embedder = Callable[[str], Sequence[float] | np.ndarray]

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_P = np.uint64(0x100000001B3)
_S32 = np.uint64(32)
_S29 = np.uint64(29)
# per-length salts, precomputed: n · M2 (mod 2**64)
_SALT = [np.uint64((n * int(_M2)) % 2**64) for n in range(16)]
_PINV = np.uint64(pow(int(_P), -1, 2**64))  # P is odd: invertible mod 2**64
# bytes that belong to a word: ASCII letters, digits, "_" and every non-ASCII byte
_WORD_BYTE = np.zeros(256, dtype=bool)
for _c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_":
    _WORD_BYTE[_c] = True
_WORD_BYTE[128:] = True


def _mix(h: np.ndarray) -> np.ndarray:
    """A 64-bit finaliser (splitmix-style): spreads every input bit. Array
    arithmetic on uint64 wraps silently (scalar arithmetic would warn)."""
    h = h ^ (h >> _S29)
    h *= _M2
    h ^= h >> _S32
    return h


class PromptHasher:
    """Text → (bucket indices, values): a sparse unit vector of ``n_features``.

    Args:
        n_features: buckets (a power of two is fastest).
        char_ngrams: (min, max) character n-gram lengths; ``None`` for none.
        word_ngrams: (min, max) word n-gram lengths (1 or 2); ``None`` for none.
        word_weight: share of the vector's squared norm given to word n-grams.
        max_chars: longer texts keep their first ``max_chars * 3 // 4`` and last
            ``max_chars // 4`` characters (the question and its closing
            instruction), so a decision's cost is bounded.
    """

    def __init__(
        self,
        n_features: int = 2048,
        *,
        char_ngrams: tuple[int, int] | None = (3, 5),
        word_ngrams: tuple[int, int] | None = (1, 2),
        word_weight: float = 0.5,
        max_chars: int = 4000,
    ) -> None:
        if not isinstance(n_features, int) or n_features < 2:
            raise ConfigError(f"n_features must be an int >= 2, got {n_features!r}")
        if char_ngrams is not None and not 1 <= char_ngrams[0] <= char_ngrams[1] <= 8:
            raise ConfigError(f"char_ngrams must be (min, max) within 1..8, got {char_ngrams!r}")
        if word_ngrams is not None and not 1 <= word_ngrams[0] <= word_ngrams[1] <= 2:
            raise ConfigError(f"word_ngrams must be (min, max) within 1..2, got {word_ngrams!r}")
        if char_ngrams is None and word_ngrams is None:
            raise ConfigError("PromptHasher needs char_ngrams or word_ngrams")
        if not 0.0 <= word_weight <= 1.0:
            raise ConfigError(f"word_weight must be in [0, 1], got {word_weight!r}")
        if max_chars < 16:
            raise ConfigError(f"max_chars must be >= 16, got {max_chars!r}")
        self.n_features = n_features
        self.char_ngrams = None if char_ngrams is None else tuple(char_ngrams)
        self.word_ngrams = None if word_ngrams is None else tuple(word_ngrams)
        self.word_weight = float(word_weight)
        self.max_chars = int(max_chars)
        self._pow = np.zeros(0, dtype=np.uint64)
        self._ipow = np.zeros(0, dtype=np.uint64)
        self._win_cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        pow2 = n_features & (n_features - 1) == 0
        self._mask = np.uint64(n_features - 1) if pow2 else None

    def config(self) -> dict[str, Any]:
        return {
            "n_features": self.n_features,
            "char_ngrams": None if self.char_ngrams is None else list(self.char_ngrams),
            "word_ngrams": None if self.word_ngrams is None else list(self.word_ngrams),
            "word_weight": self.word_weight,
            "max_chars": self.max_chars,
        }

    def _clip(self, text: str) -> str:
        if len(text) <= self.max_chars:
            return text
        head = self.max_chars * 3 // 4
        return text[:head] + " " + text[-(self.max_chars - head) :]

    def _powers(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """P**k and P**-k (mod 2**64) for k < n, grown on demand."""
        if self._pow.size < n:
            m = max(n, 2 * self._pow.size, 1024)
            with np.errstate(over="ignore"):
                self._pow = np.concatenate(
                    ([np.uint64(1)], np.cumprod(np.full(m - 1, _P, dtype=np.uint64)))
                )
                self._ipow = np.concatenate(
                    ([np.uint64(1)], np.cumprod(np.full(m - 1, _PINV, dtype=np.uint64)))
                )
        return self._pow[:n], self._ipow[:n]

    def _hashes(self, data: bytes) -> tuple[np.ndarray, np.ndarray]:
        """(character n-gram hashes, word n-gram hashes) of ``data``.

        With the prefix sums ``H[i] = Σ_{k<i} b[k]·P^k`` (mod 2**64), the
        polynomial hash of ``b[i:j]`` is ``(H[j] − H[i])·P^−i``: every n-gram of
        every length, and every word, in a few vector operations."""
        b = np.frombuffer(data, dtype=np.uint8)
        size = b.size
        pw, ipw = self._powers(size + 1)
        empty = np.zeros(0, dtype=np.uint64)
        # uint64 array arithmetic wraps silently (mod 2**64): no errstate needed
        prefix = np.zeros(size + 1, dtype=np.uint64)
        terms = pw[:size] * b  # b·P^k, then (b + 1)·P^k: a zero byte still counts
        terms += pw[:size]
        np.cumsum(terms, out=prefix[1:])
        chars = empty
        if self.char_ngrams is not None and size >= self.char_ngrams[0]:
            start, stop, scale, salt = self._windows(size, ipw)
            chars = prefix[stop]
            chars -= prefix[start]
            chars *= scale
            chars += salt
        words = empty
        if self.word_ngrams is not None:
            w = np.zeros(size + 2, dtype=bool)
            w[1:-1] = _WORD_BYTE[b]
            # word edges alternate start, end, start, end, ...
            edges = (w[1:] != w[:-1]).nonzero()[0]
            starts, ends = edges[0::2], edges[1::2]
            wh = prefix[ends]
            wh -= prefix[starts]
            wh *= ipw[starts]
            lo, hi = self.word_ngrams
            m1 = wh * _M1
            uni = lo <= 1
            bi = hi >= 2 and wh.size > 1
            n_uni = wh.size if uni else 0
            words = np.empty(n_uni + (wh.size - 1 if bi else 0), dtype=np.uint64)
            if uni:
                np.add(m1, _SALT[9], out=words[:n_uni])
            if bi:
                out = words[n_uni:]
                np.add(m1[:-1], wh[1:], out=out)
                out *= _M2
                out += _SALT[10]
        return chars, words

    def _windows(
        self, size: int, ipw: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Start, stop, P^-start and salt of every character n-gram of a
        ``size``-byte text (cached per size: prompts of one app repeat their
        lengths)."""
        got = self._win_cache.get(size)
        if got is None:
            assert self.char_ngrams is not None
            lo, hi = self.char_ngrams
            ns = range(lo, min(hi, size) + 1)
            start = np.concatenate([np.arange(size - n + 1) for n in ns])
            length = np.concatenate([np.full(size - n + 1, n) for n in ns])
            salt = np.asarray(_SALT, dtype=np.uint64)[length]
            got = (start, start + length, ipw[start], salt)
            if len(self._win_cache) > 256:
                self._win_cache.clear()
            self._win_cache[size] = got
        return got

    def transform(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(sorted bucket indices, values) of ``text``; the values have unit norm
        (empty arrays for a text with no n-gram). Word and character n-grams
        each get their share (``word_weight``) of the squared norm."""
        data = " ".join(self._clip(text).lower().split()).encode("utf-8", "replace")
        chars, words = self._hashes(data)
        ww = self.word_weight if chars.size else 1.0
        if not words.size:
            ww = 0.0
        if chars.size + words.size == 0:
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        hashes = _mix(np.concatenate((chars, words)))
        weight = np.where(hashes & np.uint64(1), 1.0, -1.0)  # the sign, then the size
        nc = chars.size
        if nc:
            weight[:nc] *= math.sqrt((1.0 - ww) / nc)
        if words.size:
            weight[nc:] *= math.sqrt(ww / words.size)
        high = hashes >> _S32
        if self._mask is not None:  # a power of two: a mask, not a division
            high &= self._mask
        else:
            high %= np.uint64(self.n_features)
        v = np.bincount(high.astype(np.intp), weights=weight, minlength=self.n_features)
        idx = (v != 0.0).nonzero()[0]  # a boolean's nonzero is 3× a float's
        val = v[idx]
        norm = math.sqrt(float(val @ val))
        return idx, (val / norm if norm > 0 else val)

    def dense(self, text: str) -> np.ndarray:
        """:meth:`transform` as a dense vector of ``n_features``."""
        idx, val = self.transform(text)
        out = np.zeros(self.n_features)
        out[idx] = val
        return out


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    return ""


def prompt_text(body: Mapping[str, Any] | None) -> str:
    """The text a router reads from an OpenAI- or Anthropic-shaped request body:
    the system prompt, the first user message (the task) and the last one (the
    current turn), each at most a few thousand characters."""
    if not body:
        return ""
    parts: list[str] = []
    system = body.get("system")
    if isinstance(system, str | list):
        parts.append(_content_text(system)[:1000])
    users: list[str] = []
    found = body.get("messages")
    if not isinstance(found, list):
        found = body.get("input")
    messages: list[Any] = found if isinstance(found, list) else []
    for m in messages:
        if not isinstance(m, Mapping):
            continue
        role = m.get("role")
        if role in ("system", "developer"):
            parts.append(_content_text(m.get("content"))[:1000])
        elif role == "user":
            users.append(_content_text(m.get("content")))
    if not users and isinstance(body.get("input"), str):
        users.append(body["input"])
    if not users and isinstance(body.get("prompt"), str):
        users.append(body["prompt"])
    if users:
        parts.append(users[0][:3000])
        if len(users) > 1 and users[-1] != users[0]:
            parts.append(users[-1][:1000])
    return "\n".join(p for p in parts if p)
