"""Online prompt clusters, and what a merge of two of them does to a model.

:class:`PromptClusters` gathers prompt vectors (hashed n-grams or a user's
embeddings) by cosine similarity as they arrive; prompts of one task share
their template and vocabulary, so a router can learn each model's score per
cluster. Two clusters founded by one task before its centroid settled become
alike later: :meth:`PromptClusters.closest_pair` finds them and
:meth:`PromptClusters.merge` pools them. :func:`merge_columns` applies the same
merge to a linear model whose features include the clusters' indicator
columns (its Gram matrices, responses and feature vectors), so the pooled
cluster keeps all its data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from agentopt.exceptions import ConfigError

__all__ = ["PromptClusters", "merge_columns"]


class PromptClusters:
    """Online clustering of prompt vectors by cosine similarity (leader
    clustering with running-mean centroids): a prompt joins the most similar
    centroid if its similarity reaches ``threshold``, else starts a new cluster
    (up to ``max_clusters``; past that, the nearest). Prompts of one task share
    their template and vocabulary, so its prompts gather in one cluster; a
    router then learns each model's score per cluster."""

    def __init__(self, dim: int, *, max_clusters: int = 32, threshold: float = 0.4) -> None:
        if max_clusters < 1:
            raise ConfigError(f"max_clusters must be >= 1, got {max_clusters!r}")
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"threshold must be in (0, 1), got {threshold!r}")
        self.dim = dim
        self.max_clusters = max_clusters
        self.threshold = float(threshold)
        # Σ member vectors per cluster, stored transposed (dim × clusters): a
        # prompt's active buckets are then whole rows, gathered in one take
        self._sums_t = np.zeros((dim, 0))
        self.norms = np.zeros(0)  # ‖Σ‖ per cluster
        self.counts = np.zeros(0)

    @property
    def sums(self) -> np.ndarray:
        """Σ member vectors, one row per cluster."""
        out: np.ndarray = self._sums_t.T
        return out

    def assign(self, idx: np.ndarray, val: np.ndarray, *, learn: bool = True) -> int:
        """The cluster of the unit vector (``idx``, ``val``); -1 for a zero vector.
        With ``learn`` the vector joins it (or founds it)."""
        if idx.size == 0:
            return -1
        k = self.counts.size
        if k:
            rows = self._sums_t.take(idx, axis=0)
            dots = val @ rows
            sims = dots / np.maximum(self.norms, 1e-12)
            best = int(np.argmax(sims))
            if sims[best] >= self.threshold or k >= self.max_clusters:
                if learn:
                    self._sums_t[idx, best] = rows[:, best] + val
                    # ‖s + v‖² = ‖s‖² + 2 s·v + ‖v‖²: no pass over the whole row
                    sq = self.norms[best] ** 2 + 2.0 * dots[best] + float(val @ val)
                    self.norms[best] = float(np.sqrt(max(sq, 0.0)))
                    self.counts[best] += 1
                return best
        if not learn:
            return -1
        col = np.zeros((self.dim, 1))
        col[idx, 0] = val
        self._sums_t = np.concatenate((self._sums_t, col), axis=1)
        self.norms = np.append(self.norms, float(np.sqrt(val @ val)))
        self.counts = np.append(self.counts, 1.0)
        return k

    def closest_pair(self) -> tuple[int, int, float]:
        """The two clusters whose centroids are most alike: (a, b, cosine), a < b;
        (-1, -1, 0.0) with fewer than two clusters."""
        k = self.counts.size
        if k < 2:
            return -1, -1, 0.0
        t = self._sums_t
        inv = 1.0 / np.maximum(self.norms, 1e-12)
        sims = t.T @ t  # k × k: no dim × k temporary
        sims *= inv[:, None]
        sims *= inv
        sims[np.tri(k, dtype=bool)] = -np.inf
        flat = int(np.argmax(sims))
        a, b = divmod(flat, k)
        return a, b, float(sims[a, b])

    def merge(self, a: int, b: int) -> int:
        """Merge cluster ``b`` into ``a`` (a < b): prompts of one task that
        founded two clusters before their centroid settled become one. The last
        cluster then takes ``b``'s index; returns that former last index."""
        if not 0 <= a < b < self.counts.size:
            raise ConfigError(f"merge: clusters {a}, {b} of {self.counts.size}")
        last = self.counts.size - 1
        t = self._sums_t
        t[:, a] += t[:, b]
        self.norms[a] = float(np.sqrt(t[:, a] @ t[:, a]))
        self.counts[a] += self.counts[b]
        t[:, b], self.norms[b], self.counts[b] = t[:, last], self.norms[last], self.counts[last]
        self._sums_t = np.ascontiguousarray(t[:, :last])
        self.norms, self.counts = self.norms[:last].copy(), self.counts[:last].copy()
        return last

    def state_dict(self) -> dict[str, Any]:
        nz = [np.flatnonzero(r) for r in self.sums]
        return {
            "clusters": [
                {"idx": i.tolist(), "sum": r[i].tolist(), "n": float(c), "norm": float(q)}
                for i, r, c, q in zip(nz, self.sums, self.counts, self.norms, strict=True)
            ]
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        rows = state.get("clusters", [])
        sums = np.zeros((len(rows), self.dim))
        for j, c in enumerate(rows):
            sums[j, np.asarray(c["idx"], dtype=np.intp)] = np.asarray(c["sum"], dtype=float)
        self._sums_t = np.ascontiguousarray(sums.T)
        self.norms = np.asarray(
            [float(c.get("norm", np.sqrt(r @ r))) for c, r in zip(rows, sums, strict=True)]
        )
        self.counts = np.asarray([float(c["n"]) for c in rows])


def merge_columns(
    gram: np.ndarray, vectors: Iterable[np.ndarray], a: int, b: int, last: int
) -> None:
    """In place, the indicator columns of a merge (:meth:`PromptClusters.merge`
    of ``b`` into ``a``, the ``last`` column then moved into ``b``'s place):
    column and row ``b`` of every Gram matrix (``gram``: models × d × d) and
    column ``b`` of every array of ``vectors`` (models × d responses, or 1 × d
    feature vectors) are added to ``a``'s, ``last``'s take ``b``'s place and
    ``last`` is emptied."""
    g = gram
    g[:, a, :] += g[:, b, :]
    g[:, :, a] += g[:, :, b]
    g[:, b, :] = g[:, last, :]
    g[:, :, b] = g[:, :, last]
    g[:, last, :] = 0.0
    g[:, :, last] = 0.0
    for v in vectors:
        v[:, a] += v[:, b]
        v[:, b] = v[:, last]
        v[:, last] = 0.0
