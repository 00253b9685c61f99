"""PromptRouter: reads the prompt, predicts each model's score on it, and sends
it to the cheapest model expected to answer well.

Features: the prompt's hashed word and character n-grams
(:class:`~agentopt.routers.features.PromptHasher`, ``n_features`` buckets) or
the vector of a user's ``embed=`` function, gathered online into prompt
clusters at two granularities (``cluster_thresholds``: prompts of one task share
their template and vocabulary; two clusters of a level whose centroids become
alike, ``merge_similarity``, merge and pool their data), plus, within its cluster, a fixed random sketch
of the n-grams (``dims`` numbers: a keyword that changes the answer) and the
cheap :class:`PromptFeatures` (length, tools, images, turns).

Policy: linear Thompson sampling. A shared model (every arm's scores) gives
the baseline a new cluster or arm starts from; per arm, a Bayesian ridge
regression of its deviation on the features, with exact Sherman–Morrison
updates. The prior's spread per block of weights (how much a model's skill
varies between clusters, how far a model strays from the shared baseline) is
re-estimated from the data (empirical Bayes), so models whose skills differ by
task stop dragging each other's estimates while sub-clusters of one task share.
Each decision samples every arm's score for this prompt, then applies the
objective:

- ``quality_floor=0.95``: among the arms whose estimated score is within 95 %
  of the best sampled score (the bar rises while a possibly better arm is
  uncertain), the cheapest; with ``floor_confidence=z`` > 0 the floor is held
  with confidence instead: an arm qualifies when its lower bound (mean − z·sd)
  is within 95 % of the best estimate, and the arm a Thompson draw (spread ×
  ``floor_exploration``) calls best always qualifies;
- ``cost_weight=w`` (dollars per point of score: a score of 1 is worth $w):
  the arm maximising ``score − cost / w``;
- both: the floor first, then ``score − cost / w`` among the arms that pass;
- neither: the best sampled score.

Costs are known before the call (:class:`~agentopt.routers.costs.KnownCosts`:
price map × token estimate, calibrated by the costs feedback reports), not
learned from scratch.

>>> from agentopt.routers import PromptRouter, RouteContext, Feedback
>>> r = PromptRouter(["small", "large"], prices={"small": 0.001, "large": 0.01},
...                  quality_floor=0.95, seed=0)
>>> m = r.route(RouteContext(requested_model=None, data_id="q1", prompt="What is 2 + 2?"))
>>> _ = r.update(Feedback(reward=1.0, data_id="q1"))
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentopt.exceptions import ConfigError
from agentopt.routers.arms import Candidates
from agentopt.routers.base import Router
from agentopt.routers.clusters import PromptClusters, merge_columns
from agentopt.routers.context import PromptFeatures, RouteContext
from agentopt.routers.costs import KnownCosts, PriceSpec
from agentopt.routers.features import Embedder, PromptHasher, prompt_text
from agentopt.routers.registry import register_router

__all__ = ["PromptContext", "PromptRouter"]

_CHEAP = len(PromptFeatures().as_vector())  # bias first
_HASHED_KEPT = 64  # prompt texts whose hashed n-grams are kept


@dataclass(frozen=True, slots=True)
class PromptContext:
    """One prompt as the router sees it: its feature vector and token estimate."""

    x: np.ndarray
    tokens: int


_DGER: Any = None  # scipy's BLAS dger, imported on first use


def _rank_one(a: np.ndarray, alpha: float, u: np.ndarray, v: np.ndarray) -> None:
    """``a += alpha · u vᵀ`` in place (BLAS ``dger``: no d × d temporary). ``a``
    is C-ordered, so ``dger`` updates its transpose (Fortran-ordered, the same
    memory) with ``alpha · v uᵀ``."""
    global _DGER
    if _DGER is None:
        from scipy.linalg.blas import dger

        _DGER = dger
    at = a.T
    out = _DGER(alpha, v, u, a=at, overwrite_a=1)
    if out is not at:  # not updated in place (a not contiguous): copy back
        at[...] = out


def _projection(n_in: int, dims: int) -> np.ndarray:
    """A fixed Gaussian sketch (the same in every process and version)."""
    rng = np.random.default_rng([0x5EED, n_in, dims])
    out: np.ndarray = rng.standard_normal((n_in, dims)) / np.sqrt(dims)
    return out


@register_router("prompt")
class PromptRouter(Router):
    """Routes each prompt to the cheapest model expected to answer it well.

    Args:
        candidates: models (or per-node candidates: one choice per datapoint).
        quality_floor: in (0, 1]: stay within this share of the best arm's
            estimated score for the prompt, at the lowest cost.
        cost_weight: dollars one point of score is worth (score in [0, 1]).
        prices: ``{model: (input, output) $/M tokens}`` or ``{model: $ per call}``;
            default: the PriceBook (litellm's map).
        output_tokens: expected output tokens per call, for the price list.
        embed: your embedding function (text → vector), used instead of n-grams.
        n_features: hashed n-gram buckets. ``dims``: size of the sketch.
        ridge: prior precision of each weight (in units of the noise variance).
        exploration: scales the posterior spread (1 = the posterior).
        floor_confidence: 0: the floor compares estimates; z > 0: an arm must
            clear it with its lower bound mean − z·sd (held with confidence).
        floor_exploration: with ``floor_confidence``: the Thompson spread of the
            draw that picks the arm which may be best.
        merge_similarity: centroid cosine at which two clusters of a level merge.
    """

    def __init__(
        self,
        candidates: Candidates,
        *,
        quality_floor: float | None = None,
        cost_weight: float | None = None,
        prices: PriceSpec | None = None,
        output_tokens: int = 256,
        embed: Embedder | None = None,
        n_features: int = 2048,
        max_clusters: int = 16,
        cluster_thresholds: Sequence[float] = (0.25, 0.4),
        dims: int = 8,
        ridge: float = 1.0,
        exploration: float = 0.5,
        bias_precision: float = 4.0,
        cluster_precision: float = 1.0,
        floor_confidence: float = 0.0,
        floor_exploration: float = 0.1,
        merge_similarity: float = 0.6,
        **kwargs: Any,
    ) -> None:
        super().__init__(candidates, **kwargs)
        if quality_floor is not None and not 0.0 < quality_floor <= 1.0:
            raise ConfigError(f"quality_floor must be in (0, 1], got {quality_floor!r}")
        if cost_weight is not None and not cost_weight > 0:
            raise ConfigError(
                f"cost_weight must be > 0 ($ per point of score), got {cost_weight!r}"
            )
        if not isinstance(dims, int) or dims < 0:
            raise ConfigError(f"dims must be an int >= 0, got {dims!r}")
        if not ridge > 0:
            raise ConfigError(f"ridge must be > 0, got {ridge!r}")
        if not exploration >= 0:
            raise ConfigError(f"exploration must be >= 0, got {exploration!r}")
        if embed is not None and not callable(embed):
            raise ConfigError(f"embed must be a function text → vector, got {embed!r}")
        self.quality_floor = None if quality_floor is None else float(quality_floor)
        self.cost_weight = None if cost_weight is None else float(cost_weight)
        self.prices = {
            k: (list(v) if isinstance(v, tuple | list) else v) for k, v in (prices or {}).items()
        }
        self.output_tokens = int(output_tokens)
        self.embed = embed
        self.dims = dims
        self.ridge = float(ridge)
        self.exploration = float(exploration)
        if not floor_confidence >= 0:
            raise ConfigError(f"floor_confidence must be >= 0, got {floor_confidence!r}")
        if not floor_exploration >= 0:
            raise ConfigError(f"floor_exploration must be >= 0, got {floor_exploration!r}")
        self.floor_confidence = float(floor_confidence)
        self.floor_exploration = float(floor_exploration)
        if not 0.0 < merge_similarity <= 1.0:
            raise ConfigError(f"merge_similarity must be in (0, 1], got {merge_similarity!r}")
        self.merge_similarity = float(merge_similarity)
        self.bias_precision = float(bias_precision)
        self.cluster_precision = float(cluster_precision)
        self.hasher = PromptHasher(n_features)
        self.cluster_thresholds = [float(t) for t in cluster_thresholds]
        if not self.cluster_thresholds:
            raise ConfigError("cluster_thresholds: give at least one similarity threshold")
        self.max_clusters = max_clusters
        self.levels = self._new_levels(n_features)
        self.costs = KnownCosts(self.arms, prices, output_tokens=output_tokens)
        self._sketch = _projection(n_features, dims) if dims else None
        self._embed_sketch: np.ndarray | None = None
        k, d = len(self.arms), self._width
        # rows 0..k-1: each arm's deviation from the shared model; row k: the
        # shared model (every arm's scores), which a new arm or cluster starts from
        prec = self._prior_precision()
        shared = prec.copy()
        shared[self._n_onehot + self.dims] = self.ridge
        self._a_inv = np.concatenate(
            (np.repeat(np.diag(1.0 / prec)[None], k, axis=0), np.diag(1.0 / shared)[None])
        )
        self._b = np.zeros((k + 1, d))
        self._theta = np.zeros((k + 1, d))
        self._gram = np.zeros((k + 1, d, d))  # Σ x xᵀ per row, to re-solve when the prior moves
        self._prec = prec  # the arms' prior precisions, re-estimated from the data
        self._eb_at = 20.0  # re-estimate when this many arm updates have arrived
        self._updates = 0.0
        self._resid_sq = 0.0  # Σ squared prediction errors (before each update)
        self._resid_n = 0.0
        self._bern_sum = 0.0  # Σ p(1 − p) of the predictions, for the dispersion φ
        self._memo: tuple[RouteContext, PromptContext] | None = None
        # the hashed n-grams of recent prompt texts (not state: a function of the text)
        self._hashed: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        # per cluster of the finest level: Σ and count of its prompts' dense features
        self._dense_sum = np.zeros((max_clusters, dims + _CHEAP - 1))
        self._dense_n = np.zeros(max_clusters)

    # ------------------------------------------------------------------ features
    def _new_levels(self, dim: int) -> list[PromptClusters]:
        return [
            PromptClusters(dim, max_clusters=self.max_clusters, threshold=t)
            for t in self.cluster_thresholds
        ]

    def _prior_precision(self) -> np.ndarray:
        """Per weight, in units of the noise variance: the bias is free to move
        (``ridge``); each finer cluster level and every other feature is a
        deviation expected to be smaller (× 4, 8, 16, …: shrinkage toward the
        coarser estimate, so a new fine cluster starts from its parent's)."""
        prec = np.full(self._width, 4.0 * self.ridge)
        for level in range(len(self.levels)):
            lo = level * self.max_clusters
            prec[lo : lo + self.max_clusters] = self.ridge * self.cluster_precision * 2.0**level
        prec[self._n_onehot + self.dims] = self.bias_precision * self.ridge  # an arm everywhere
        return prec

    @property
    def _n_onehot(self) -> int:
        return self.max_clusters * len(self.cluster_thresholds)

    @property
    def _width(self) -> int:
        return self._n_onehot + self.dims + _CHEAP

    def featurize(
        self, text: str, cheap: PromptFeatures | None = None, *, learn: bool = True
    ) -> PromptContext:
        """The feature vector of a prompt (what :meth:`route` computes); with
        ``learn`` the prompt also joins (or founds) its cluster."""
        with self._lock:
            return self._featurize(text, cheap, learn=learn)

    def _featurize(self, text: str, cheap: PromptFeatures | None, *, learn: bool) -> PromptContext:
        if cheap is None:
            cheap = PromptFeatures.from_text(text)
        if self.embed is not None:
            e = np.asarray(self.embed(text), dtype=float).ravel()
            if e.size == 0 or not np.all(np.isfinite(e)):
                raise ConfigError("embed returned an empty or non-finite vector")
            if self.levels[0].dim != e.size:
                if self.levels[0].counts.size:
                    raise ConfigError(
                        f"embed returned {e.size} numbers, earlier {self.levels[0].dim}"
                    )
                self.levels = self._new_levels(e.size)
            norm = float(np.sqrt(e @ e))
            idx, val = np.arange(e.size), (e / norm if norm > 0 else e)
            nz = val != 0
            idx, val = idx[nz], val[nz]
            if self.dims and (self._embed_sketch is None or self._embed_sketch.shape[0] != e.size):
                self._embed_sketch = _projection(e.size, self.dims)
            sketch = self._embed_sketch
        else:
            # an agent's calls for one task share their prompt text (the system
            # prompt and the first and last user messages): hash it once
            got = self._hashed.get(text)
            if got is None:
                got = self._hashed[text] = self.hasher.transform(text)
                if len(self._hashed) > _HASHED_KEPT:
                    self._hashed.popitem(last=False)
            else:
                self._hashed.move_to_end(text)
            idx, val = got
            sketch = self._sketch
        x = np.zeros(self._width)
        c = -1
        for level, clusters in enumerate(self.levels):
            c = clusters.assign(idx, val, learn=learn)
            if c >= 0:
                x[level * self.max_clusters + c] = 1.0
        n1, dims = self._n_onehot, self.dims
        dense = np.empty(dims + _CHEAP - 1)
        if dims and idx.size and sketch is not None:
            np.matmul(val, sketch.take(idx, axis=0), out=dense[:dims])
        else:
            dense[:dims] = 0.0
        dense[dims:] = cheap.as_vector()[1:]
        if c >= 0:
            # within-cluster deviations: what a cluster has in common is its indicator's
            # job, so a model's skill on one kind of prompt does not leak to another
            n = self._dense_n[c]
            if learn:
                self._dense_sum[c] += dense
                n += 1.0
                self._dense_n[c] = n
            if n > 0:
                dense -= self._dense_sum[c] / n
        x[n1 : n1 + dims] = dense[:dims]
        x[n1 + dims] = 1.0  # bias
        x[n1 + dims + 1 :] = dense[dims:]
        return PromptContext(x=x, tokens=max(cheap.token_estimate, 1))

    def _context_of(self, ctx: RouteContext) -> PromptContext:
        memo = self._memo
        if memo is not None and memo[0] is ctx:
            return memo[1]
        text = ctx.prompt if ctx.prompt is not None else prompt_text(ctx.request_body)
        cheap = ctx.features
        if cheap.token_estimate == 0 and text:
            cheap = PromptFeatures.from_text(text)
        pc = self.featurize(text, cheap)
        self._memo = (ctx, pc)
        return pc

    def _as_context(self, features: Any) -> PromptContext:
        if isinstance(features, PromptContext):
            return features
        cheap = features if isinstance(features, PromptFeatures) else PromptFeatures()
        x = np.zeros(self._width)
        x[self._n_onehot + self.dims :] = cheap.as_vector()
        return PromptContext(x=x, tokens=max(cheap.token_estimate, 1))

    # ------------------------------------------------------------------ policy
    def noise_var(self) -> float:
        """Estimated variance of a score around its prediction (prior 1/4 worth 2)."""
        return (0.5 + self._resid_sq) / (2.0 + self._resid_n)

    def _noise_at(self, mean: np.ndarray) -> np.ndarray:
        """Noise variance where the predicted score is ``mean``: ``φ·p(1 − p)``
        (scores near 0 or 1 vary less), ``φ`` the observed residual variance over
        the Bernoulli variance of the predictions (1 for 0/1 scores, less for
        graded ones)."""
        p = np.minimum(np.maximum(mean, 0.05), 0.95)
        phi = min((0.5 + self._resid_sq) / (0.5 + self._bern_sum), 1.5)
        p *= 1.0 - p  # p is a fresh array: in place
        p *= phi
        return p

    def _choose_arm(self, ctx: RouteContext, allowed: np.ndarray | None) -> int:
        pc = self._context_of(ctx)
        x = pc.x  # dense: a few dozen numbers, cheaper than sparse indexing in numpy
        cost = self.costs.expected(pc.tokens)
        k = len(self.arms)
        tx = self._theta @ x  # every arm's deviation, and the shared model (row k)
        mean = tx[:k]
        mean += 0.5 + tx[k]
        a_inv = self._a_inv[:k]
        if allowed is not None:
            a_inv, mean, cost = a_inv[allowed], mean[allowed], cost[allowed]
        var = a_inv @ x @ x
        np.maximum(var, 0.0, out=var)
        var *= self._noise_at(mean)
        sd = np.sqrt(var, out=var)
        j = self._objective(mean, sd, self.rng.standard_normal(mean.size), cost)
        return j if allowed is None else int(allowed[j])

    def _objective(
        self, mean: np.ndarray, sd: np.ndarray, noise: np.ndarray, cost: np.ndarray
    ) -> int:
        """The arm to take, from each arm's posterior mean and spread, a standard
        normal draw per arm (Thompson sampling) and its expected cost."""
        score = mean + self.exploration * sd * noise
        value = score if self.cost_weight is None else score - cost / self.cost_weight
        if self.quality_floor is None:
            return int(np.argmax(value))
        f = self.quality_floor
        if self.floor_confidence > 0:
            # held with confidence: a model qualifies when its score's lower bound
            # (mean − floor_confidence × sd) reaches the floor under the best
            # estimate, so a cheap model is not taken on a lucky estimate; the arm
            # that may be the best (a Thompson draw, spread × floor_exploration)
            # always qualifies, so the router keeps learning which one is best
            top = float(mean.max())
            passed = mean - self.floor_confidence * sd >= top - (1.0 - f) * abs(top)
            passed[int(np.argmax(mean + self.floor_exploration * sd * noise))] = True
            ok = np.flatnonzero(passed)
        else:
            # the floor is set by the best *sampled* score (exploration: a model that
            # may be better raises the bar), and a model clears it on its *estimated*
            # score, so cheap models are not picked on a lucky draw while their mean
            # says no
            top = float(score.max())
            passed = mean >= top - (1.0 - f) * abs(top)
            if not passed.any():  # no estimate reaches the floor: the best sample
                return int(np.argmax(value))
            if self.cost_weight is None:  # the cheapest that passes
                return int(np.argmin(np.where(passed, cost, np.inf)))
            return int(np.argmax(np.where(passed, value, -np.inf)))
        if self.cost_weight is None:
            return int(ok[np.argmin(cost[ok])])
        return int(ok[np.argmax(value[ok])])

    def _learn_arm(self, i: int, reward: float, cost_usd: float | None, features: Any) -> None:
        pc = self._as_context(features)
        x = pc.x
        k = len(self.arms)
        shared = float(self._theta[k] @ x)
        own = float(self._theta[i] @ x)
        base = 0.5 + shared
        pred = base + own
        err = reward - pred
        self._resid_sq += err * err
        self._resid_n += 1.0
        q = min(max(pred, 0.05), 0.95)
        self._bern_sum += q * (1.0 - q)
        _rank_one(self._gram[i], 1.0, x, x)
        _rank_one(self._gram[k], 1.0, x, x)
        self._ridge_update(i, x, reward - base, own)
        self._ridge_update(k, x, reward - 0.5, shared)
        if cost_usd is not None:
            self.costs.observe(i, cost_usd, pc.tokens)
        self._updates += 1.0
        if self._updates % 25 == 0:
            self._merge_clusters()
        if self._updates >= self._eb_at:
            self._refresh_prior()
            self._eb_at = self._updates * 1.1 + 10.0

    def _blocks(self) -> list[np.ndarray]:
        """Weight groups sharing one prior variance: each cluster level, and the bias."""
        out = [
            np.arange(level * self.max_clusters, (level + 1) * self.max_clusters)
            for level in range(len(self.levels))
        ]
        out.append(np.array([self._n_onehot + self.dims]))
        return out

    def _refresh_prior(self) -> None:
        """Empirical Bayes: how far an arm's score on one cluster strays from its
        score elsewhere (and an arm from the shared model) is estimated from the
        weights learned so far (an EM step for each block's prior variance, the
        starting guess worth two weights); then every arm's posterior is
        re-solved under the new prior. Models whose skills differ by task then
        stop dragging each other's estimates; sub-clusters of one task share."""
        k = len(self.arms)
        noise = self.noise_var()
        prec = self._prec.copy()
        start = self._prior_precision()
        diag = np.einsum("kjj->kj", self._gram[:k])
        post_var = np.einsum("kjj->kj", self._a_inv[:k]) * noise
        for block in self._blocks():
            seen = diag[:, block] > 0
            if not seen.any():
                continue
            second = (self._theta[:k, block] ** 2 + post_var[:, block])[seen]
            tau0 = noise / float(start[block[0]])
            tau2 = (float(second.sum()) + 2.0 * tau0) / (float(seen.sum()) + 2.0)
            prec[block] = min(max(noise / max(tau2, 1e-9), 0.25), 256.0)
        self._prec = prec
        self._a_inv[:k] = np.linalg.inv(np.diag(prec)[None] + self._gram[:k])
        self._theta[:k] = np.einsum("kij,kj->ki", self._a_inv[:k], self._b[:k])

    def _shared_precision(self) -> np.ndarray:
        shared = self._prior_precision()
        shared[self._n_onehot + self.dims] = self.ridge
        return shared

    def _merge_clusters(self) -> None:
        """Per level, merge the two clusters whose centroids are most alike once
        they reach ``merge_similarity`` (one task split while its centroid
        settled): their weights' data are pooled (the Gram matrices and
        responses of the two indicator columns summed, the last cluster's column
        moved into the freed one) and every model re-solved, so a task learns
        as one. Prompts routed but not yet scored are re-indexed too."""
        merged = False
        for level, clusters in enumerate(self.levels):
            a, b, sim = clusters.closest_pair()
            if a < 0 or sim < self.merge_similarity:
                continue
            last = clusters.merge(a, b)
            off = level * self.max_clusters
            pend = [p.features for p in self._pending.values()]
            if self._memo is not None:
                pend.append(self._memo[1])
            seen = {id(pc): pc for pc in pend if isinstance(pc, PromptContext)}
            vecs = [self._b, *(pc.x[None] for pc in seen.values())]
            merge_columns(self._gram, vecs, off + a, off + b, off + last)
            if level == len(self.levels) - 1:
                for arr in (self._dense_sum, self._dense_n):
                    arr[a] += arr[b]
                    arr[b] = arr[last]
                    arr[last] = 0.0
            merged = True
        if merged:
            self._resolve()

    def _resolve(self) -> None:
        """Every row's posterior from its Gram matrix and responses."""
        k = len(self.arms)
        prec = np.concatenate((np.repeat(self._prec[None], k, 0), self._shared_precision()[None]))
        self._a_inv = np.linalg.inv(np.einsum("kj,jl->kjl", prec, np.eye(self._width)) + self._gram)
        self._theta = np.einsum("kij,kj->ki", self._a_inv, self._b)

    def _ridge_update(self, row: int, x: np.ndarray, target: float, pred: float) -> None:
        """One observation for model ``row`` (Sherman–Morrison on its inverse Gram;
        ``pred`` = θ·x before it)."""
        a_inv = self._a_inv[row]
        u = a_inv @ x
        denom = 1.0 + float(x @ u)
        # recursive least squares: the same θ = A⁻¹b, in O(width²) without a solve
        self._theta[row] += u * ((target - pred) / denom)
        _rank_one(a_inv, -1.0 / denom, u, u)
        self._b[row] += target * x

    def predict(self, prompt: str) -> dict[str, dict[str, float]]:
        """Each arm's expected score and cost for ``prompt`` (posterior means)."""
        with self._lock:
            pc = self.featurize(prompt, learn=False)
            k = len(self.arms)
            mean = self._theta[:k] @ pc.x + 0.5 + float(self._theta[k] @ pc.x)
            cost = self.costs.expected(pc.tokens)
        return {
            label: {"score": float(np.clip(mean[i], 0.0, 1.0)), "cost_usd": float(cost[i])}
            for i, label in enumerate(self.arms.labels)
        }

    # ------------------------------------------------------------------ state
    def _encode_features(self, features: Any) -> Any:
        if isinstance(features, PromptContext):
            return {"x": features.x.tolist(), "tokens": features.tokens}
        return super()._encode_features(features)

    def _decode_features(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            x = np.asarray(data["x"], dtype=float)
            if x.shape != (self._width,):
                raise ConfigError(f"router state: a pending prompt vector has shape {x.shape}")
            return PromptContext(x=x, tokens=int(data["tokens"]))
        return super()._decode_features(data)

    def _params(self) -> dict[str, Any]:
        return {
            "quality_floor": self.quality_floor,
            "cost_weight": self.cost_weight,
            "prices": self.prices,
            "output_tokens": self.output_tokens,
            "n_features": self.hasher.n_features,
            "max_clusters": self.max_clusters,
            "cluster_thresholds": self.cluster_thresholds,
            "dims": self.dims,
            "ridge": self.ridge,
            "exploration": self.exploration,
            "floor_confidence": self.floor_confidence,
            "floor_exploration": self.floor_exploration,
            "merge_similarity": self.merge_similarity,
        }

    def _policy_state(self) -> dict[str, Any]:
        return {
            "embed": self.embed is not None,
            "a_inv": self._a_inv.tolist(),
            "b": self._b.tolist(),
            "theta": self._theta.tolist(),
            "resid": [self._resid_sq, self._resid_n, self._bern_sum],
            "gram": self._gram.tolist(),
            "prec": self._prec.tolist(),
            "eb": [self._eb_at, self._updates],
            "costs": self.costs.state_dict(),
            "clusters": [c.state_dict() for c in self.levels],
            "cluster_dim": self.levels[0].dim,
            "dense_sum": self._dense_sum.tolist(),
            "dense_n": self._dense_n.tolist(),
        }

    def _load_policy_state(self, state: Mapping[str, Any]) -> None:
        if not state:
            return
        if state.get("embed") and self.embed is None:
            raise ConfigError(
                "this router was saved with an embed= function; pass it again: "
                "Router.load(path, embed=your_function)"
            )
        k, d = len(self.arms) + 1, self._width
        a_inv = np.asarray(state["a_inv"], dtype=float)
        b = np.asarray(state["b"], dtype=float)
        theta = np.asarray(state["theta"], dtype=float)
        if a_inv.shape != (k, d, d) or b.shape != (k, d) or theta.shape != (k, d):
            raise ConfigError(
                f"router state: prompt-model matrices have shape {a_inv.shape}, expected "
                f"{(k, d, d)} (saved with other candidates or another dims)"
            )
        self.costs.load_state_dict(state["costs"])
        levels = self._new_levels(int(state["cluster_dim"]))
        if len(state["clusters"]) != len(levels):
            raise ConfigError("router state: saved with other cluster_thresholds")
        for clusters, saved in zip(levels, state["clusters"], strict=True):
            clusters.load_state_dict(saved)
        self.levels = levels
        self._dense_sum = np.asarray(state["dense_sum"], dtype=float).reshape(
            self.max_clusters, self.dims + _CHEAP - 1
        )
        self._dense_n = np.asarray(state["dense_n"], dtype=float).reshape(self.max_clusters)
        self._a_inv, self._b, self._theta = a_inv, b, theta
        self._resid_sq, self._resid_n, self._bern_sum = (float(v) for v in state["resid"])
        gram = np.asarray(state["gram"], dtype=float)
        prec = np.asarray(state["prec"], dtype=float)
        if gram.shape == (k - 1, d, d):  # saved before the shared row kept its Gram
            shared = np.linalg.inv(a_inv[k - 1]) - np.diag(self._shared_precision())
            gram = np.concatenate((gram, shared[None]))
        if gram.shape != (k, d, d) or prec.shape != (d,):
            raise ConfigError("router state: prompt-model Gram matrices do not fit this router")
        self._gram, self._prec = gram, prec
        self._eb_at, self._updates = (float(v) for v in state["eb"])
