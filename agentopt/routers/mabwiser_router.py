"""MABWiserRouter: any MABWiser learning policy (and neighbourhood policy) as a router.

`MABWiser <https://github.com/fidelity/mabwiser>`_ implements many bandit
policies; this adapter runs one with our candidates, exclusions, quotas,
budgets, credit assignment, statistics and saved state. Given the same seed
and the same feedback it makes exactly MABWiser's choices: until the policy can
predict (one feedback; ``k`` for ``KNearest``) decisions are uniform draws from
the router's own generator; then those feedbacks ``fit`` the policy, later ones
``partial_fit`` it, and every decision is ``MAB.predict``. MABWiser's Thompson
sampling takes 0/1 rewards: a graded score ``s`` is passed as a Bernoulli(``s``)
draw from the router's generator (unless the policy has a ``binarizer``). When quotas or
exclusions leave only some arms, it takes the best of
``MAB.predict_expectations`` among them.

Policies are given as MABWiser objects or, for configuration files and gateway
aliases, by name with parameters::

    MABWiserRouter(["a", "b"], learning_policy=LearningPolicy.UCB1(alpha=1.25), seed=7)
    get_router("mabwiser", candidates=["a", "b"],
               learning_policy={"name": "LinUCB", "alpha": 0.5},
               neighborhood_policy={"name": "KNearest", "k": 10}, context="prompt")

Contextual policies (``Lin*``) and every neighbourhood policy see a context
vector per call: ``context="features"`` (default: the cheap
:class:`PromptFeatures`) or ``"prompt"`` (the prompt's hashed n-grams,
sketched to ``dims`` numbers, as :class:`~agentopt.routers.PromptRouter` sees them).

Our own policies decide in a few µs; MABWiser's ``predict`` + ``partial_fit``
take a few hundred (``experiments/bench_routers.py`` measures both).

Saved state holds the fitted MABWiser object pickled (base64): load only
router files you wrote yourself.
"""

from __future__ import annotations

import base64
import pickle
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from agentopt.exceptions import ConfigError
from agentopt.routers.arms import Candidates
from agentopt.routers.base import Router
from agentopt.routers.context import RouteContext
from agentopt.routers.features import PromptHasher, prompt_text
from agentopt.routers.registry import register_router

__all__ = ["MABWiserRouter"]

_CONTEXTUAL = ("LinUCB", "LinTS", "LinGreedy")


def _policy(kind: str, spec: Any) -> tuple[Any, dict[str, Any] | None]:
    """(MABWiser policy object, JSON spec or None if given as an object)."""
    from mabwiser.mab import LearningPolicy, NeighborhoodPolicy

    holder = LearningPolicy if kind == "learning_policy" else NeighborhoodPolicy
    if isinstance(spec, str):
        spec = {"name": spec}
    if isinstance(spec, Mapping):
        params = dict(spec)
        name = params.pop("name", None)
        factory = getattr(holder, str(name), None) if isinstance(name, str) else None
        if factory is None or name.startswith("_"):
            names = [n for n in dir(holder) if not n.startswith("_") and n[0].isupper()]
            raise ConfigError(f"{kind}: unknown MABWiser policy {name!r}; known: {names}")
        try:
            return factory(**params), {"name": name, **params}
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{kind} {name}: {exc}") from exc
    policy_types = tuple(
        v for k, v in vars(holder).items() if isinstance(v, type) and not k.startswith("__")
    )
    if isinstance(spec, policy_types):
        return spec, None
    raise ConfigError(
        f"{kind}: expected a MABWiser {holder.__name__} object, a name or "
        f"{{'name': ..., params}}, got {spec!r}"
    )


@register_router("mabwiser")
class MABWiserRouter(Router):
    """A MABWiser policy behind the Router interface (see the module docstring)."""

    def __init__(
        self,
        candidates: Candidates,
        *,
        learning_policy: Any = "ThompsonSampling",
        neighborhood_policy: Any = None,
        context: Literal["features", "prompt"] = "features",
        dims: int = 32,
        **kwargs: Any,
    ) -> None:
        super().__init__(candidates, **kwargs)
        if context not in ("features", "prompt"):
            raise ConfigError(f"context must be 'features' or 'prompt', got {context!r}")
        self.learning_policy, self._lp_spec = _policy("learning_policy", learning_policy)
        self.neighborhood_policy: Any = None
        self._np_spec: dict[str, Any] | None = None
        if neighborhood_policy is not None:
            self.neighborhood_policy, self._np_spec = _policy(
                "neighborhood_policy", neighborhood_policy
            )
        self.context = context
        self.dims = int(dims)
        self.contextual = (
            self.neighborhood_policy is not None
            or type(self.learning_policy).__name__.lstrip("_") in _CONTEXTUAL
        )
        self._hasher = PromptHasher() if context == "prompt" else None
        lp_name = type(self.learning_policy).__name__.lstrip("_")
        self._binary_only = lp_name == "ThompsonSampling" and (
            getattr(self.learning_policy, "binarizer", None) is None
        )
        self._sketch: np.ndarray | None = None
        from mabwiser.mab import MAB

        self.mab = MAB(
            list(self.arms.labels),
            self.learning_policy,
            self.neighborhood_policy,
            seed=123456 if self.seed is None else self.seed,
        )
        self._fitted = False
        # feedback kept until the policy can be fitted (KNearest needs k points)
        self.warmup = max(1, int(getattr(self.neighborhood_policy, "k", 1)))
        self._early: list[tuple[str, float, Any]] = []

    # ------------------------------------------------------------------ context
    def _context_of(self, ctx: RouteContext) -> Any:
        if not self.contextual:
            return None
        if self._hasher is None:
            return ctx.features.as_vector()
        if self._sketch is None:
            from agentopt.routers.prompt import _projection

            self._sketch = _projection(self._hasher.n_features, self.dims)
        text = ctx.prompt if ctx.prompt is not None else prompt_text(ctx.request_body)
        idx, val = self._hasher.transform(text)
        z = val @ self._sketch[idx] if idx.size else np.zeros(self.dims)
        return [1.0, *z.tolist()]

    def _encode_features(self, features: Any) -> Any:
        return features if features is None or isinstance(features, list) else None

    def _decode_features(self, data: Any) -> Any:
        return data

    # ------------------------------------------------------------------ policy
    def _choose_arm(self, ctx: RouteContext, allowed: np.ndarray | None) -> int:
        if not self._fitted:
            idx = np.arange(len(self.arms)) if allowed is None else allowed
            return int(idx[self.rng.integers(idx.size)])
        x = [self._context_of(ctx)] if self.contextual else None
        if allowed is None:
            choice = self.mab.predict(x)
            return self.arms.index[choice[0] if isinstance(choice, list) else choice]
        exp = self.mab.predict_expectations(x)
        exp = exp[0] if isinstance(exp, list) else exp
        labels = self.arms.labels
        return int(max(allowed, key=lambda i: exp[labels[int(i)]]))

    def _learn_arm(self, i: int, reward: float, cost_usd: float | None, features: Any) -> None:
        label = self.arms.labels[i]
        if self._binary_only and reward not in (0.0, 1.0):
            # MABWiser's Thompson sampling takes 0/1 rewards: a graded score s
            # becomes a Bernoulli(s) trial (same expectation); 0/1 rewards pass as is
            reward = float(self.rng.random() < reward)
        x = None
        if self.contextual:
            if not isinstance(features, list):
                features = self._context_of(RouteContext(requested_model=None))
            x = [features]
        if self._fitted:
            self.mab.partial_fit([label], [reward], x)
            return
        self._early.append((label, reward, None if x is None else x[0]))
        if len(self._early) >= self.warmup:
            labels, rewards, xs = zip(*self._early, strict=True)
            self.mab.fit(list(labels), list(rewards), list(xs) if self.contextual else None)
            self._fitted = True
            self._early = []

    # ------------------------------------------------------------------ state
    def _params(self) -> dict[str, Any]:
        if self._lp_spec is None or (
            self.neighborhood_policy is not None and self._np_spec is None
        ):
            # policies given as objects: saved inside the pickled MAB; pass them again
            # to load (Router.load(path, learning_policy=...))
            return {"context": self.context, "dims": self.dims}
        return {
            "learning_policy": self._lp_spec,
            "neighborhood_policy": self._np_spec,
            "context": self.context,
            "dims": self.dims,
        }

    def _policy_state(self) -> dict[str, Any]:
        blob = base64.b64encode(pickle.dumps(self.mab)).decode("ascii")
        return {"fitted": self._fitted, "mab": blob, "early": [list(e) for e in self._early]}

    def _load_policy_state(self, state: Mapping[str, Any]) -> None:
        if not state:
            return
        mab = pickle.loads(base64.b64decode(state["mab"]))  # the user's own file
        if list(mab.arms) != list(self.arms.labels):
            raise ConfigError("router state: the saved MABWiser policy has other arms")
        self.mab = mab
        self._fitted = bool(state["fitted"])
        self._early = [(str(a), float(r), x) for a, r, x in state.get("early", [])]
