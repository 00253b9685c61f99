"""Router: the public half of every routing policy.

:meth:`Router.route` applies the candidates, exclusions, quotas and budgets,
and only then asks the policy (:meth:`Router._choose`) to pick among the arms
still allowed; :meth:`Router.update` turns feedback into per-arm credit. A
policy therefore implements only its choice (and, if it learns, ``_learn``),
and gets candidates, multi-node combinations, limits, statistics and saved
state for free::

    class Cheapest(Router):
        def _choose(self, ctx, allowed):
            return min(allowed, key=PRICES.__getitem__)

Credit assignment: a datapoint's reward credits every call routed (every arm
pulled) in that datapoint; with per-node candidates it credits the combination
chosen for that datapoint. A call whose ``agent_id`` is not one of the nodes
keeps the caller's model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import tempfile
import threading
import warnings
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np

from agentopt.exceptions import BudgetExhaustedError, ConfigError, RoutingError, RoutingWarning
from agentopt.records import CallRecord
from agentopt.routers.arms import Arms, Candidates
from agentopt.routers.context import Feedback, PromptFeatures, RouteContext
from agentopt.routers.credit import Pending, assign
from agentopt.routers.limits import Clock, Limits, QuotaSpec
from agentopt.routers.state import restore_router_state, router_state

__all__ = ["Router"]

R = TypeVar("R", bound="Router")
_STATE_FORMAT = "agentopt.router/1"
_MAX_PENDING = 100_000  # datapoints awaiting feedback kept in memory


_SAVE_LOCKS: dict[str, threading.Lock] = {}
_SAVE_LOCKS_GUARD = threading.Lock()


def _path_lock(p: Path) -> threading.Lock:
    key = os.path.abspath(p)
    with _SAVE_LOCKS_GUARD:
        lock = _SAVE_LOCKS.get(key)
        if lock is None:
            lock = _SAVE_LOCKS[key] = threading.Lock()
        return lock


def _fsync_dir(d: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _signature(fb: Feedback) -> str:
    """What a feedback without routed calls credits (its models and combination)."""
    return json.dumps([list(fb.models), sorted((fb.combo or {}).items())])


class Router:
    """Base of every router. Subclasses implement :meth:`_choose` (and
    optionally :meth:`_learn`); built-in policies override the index-based
    ``_choose_arm`` / ``_learn_arm`` for speed.

    Args:
        candidates: models (``["a", "b"]``), a dict per node
            (``{"planner": [...], "solver": [...]}``), or a list of combinations.
        seed: seeds the router's own ``numpy`` generator (``self.rng``).
        exclude: models never routed to (see also :meth:`exclude_models`).
        quotas: ``{model: (max_calls, window_seconds)}`` or :class:`Quota` objects.
        model_budget_usd: ``{model: max spend}``; ``budget_usd``: max overall spend.
        on_exhausted: ``"keep"`` the caller's model when every candidate is
            exhausted, or ``"raise"`` :class:`BudgetExhaustedError`.
        clock: seconds, for quota windows (default ``time.time``); inject one in tests.
        history: how many recent decisions :meth:`stats` keeps.

    With per-node candidates, ``_choose`` picks among combination labels
    (``planner=A + solver=B``). Budget state for a policy is ``self.limits``
    (``ctx.budget`` is the tracker's, and the context is frozen). Public
    methods hold one lock, so the tracker may route from several threads.
    """

    name: ClassVar[str] = "custom"
    _scope: tuple[Any, Any] | None = None  # the private tracker of a 'with router:' block

    def __init__(
        self,
        candidates: Candidates,
        *,
        seed: int | None = None,
        exclude: Iterable[str] = (),
        quotas: QuotaSpec | None = None,
        model_budget_usd: Mapping[str, float] | None = None,
        budget_usd: float | None = None,
        on_exhausted: Literal["keep", "raise"] = "keep",
        clock: Clock | None = None,
        history: int = 200,
    ) -> None:
        if on_exhausted not in ("keep", "raise"):
            raise ConfigError(f"on_exhausted must be 'keep' or 'raise', not {on_exhausted!r}")
        if seed is not None and (not isinstance(seed, int) or seed < 0):
            raise ConfigError(f"seed must be a non-negative int or None, not {seed!r}")
        self.arms = Arms.from_candidates(candidates)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.limits = Limits(
            quotas=quotas, model_budget_usd=model_budget_usd, budget_usd=budget_usd, clock=clock
        )
        self.on_exhausted = on_exhausted
        self.history = int(history)
        self._excluded: set[str] = set(exclude)
        k = len(self.arms)
        self._pulls = np.zeros(k, dtype=np.int64)  # routed (flat) / combos chosen
        self._n = np.zeros(k)  # rewards credited
        self._sum = np.zeros(k)
        self._sumsq = np.zeros(k)
        self._cost_n = np.zeros(k)
        self._cost_sum = np.zeros(k)
        self._calls = 0
        self._activated = 0
        self._kept = 0
        self._feedbacks = 0
        self._uncredited = 0
        self._decisions: deque[dict[str, Any]] = deque(maxlen=self.history)
        self._pending: OrderedDict[str, Pending] = OrderedDict()
        self._observed: OrderedDict[str, None] = OrderedDict()  # data_ids with recorded spend
        # data_ids already credited: "routed", or the signature of reported models
        self._rewarded: OrderedDict[str, str] = OrderedDict()
        self._ignored = 0  # feedbacks ignored (duplicates, nothing to credit)
        self._lock = threading.RLock()  # the tracker may route from several threads

    # ------------------------------------------------------------------ policy hooks
    def _choose(self, ctx: RouteContext, allowed: list[str]) -> str:
        """Pick one of ``allowed`` (arm labels: models, or combination labels)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _choose(ctx, allowed)")

    def _learn(
        self, arm: str, reward: float, cost_usd: float | None, features: PromptFeatures | None
    ) -> None:
        """Learn from one credited reward. Per-arm counts and means are kept by
        the base already (:meth:`arm_stats`); override for anything else."""

    def _choose_arm(self, ctx: RouteContext, allowed: np.ndarray | None) -> int:
        """Index-based choice; ``allowed`` is None when every arm is allowed."""
        labels = self.arms.labels
        names = labels if allowed is None else [labels[i] for i in allowed]
        choice = self._choose(ctx, list(names))
        i = self.arms.index.get(choice, -1)
        if i < 0 or (allowed is not None and i not in set(allowed.tolist())):
            raise RoutingError(
                f"{type(self).__name__}._choose returned {choice!r}, not one of the allowed arms"
            )
        return i

    def _learn_arm(self, i: int, reward: float, cost_usd: float | None, features: Any) -> None:
        self._learn(self.arms.labels[i], reward, cost_usd, features)

    def _params(self) -> dict[str, Any]:
        """The policy's own constructor arguments (JSON-serialisable), for :meth:`save`."""
        return {}

    def _policy_state(self) -> dict[str, Any]:
        """Learned state beyond the base's per-arm sums (JSON-serialisable)."""
        return {}

    def _load_policy_state(self, state: Mapping[str, Any]) -> None:
        return None

    def _context_of(self, ctx: RouteContext) -> Any:
        """What the policy learns from for this call, kept with the datapoint
        until its feedback and passed to ``_learn_arm`` as ``features``
        (default: the cheap :class:`PromptFeatures`)."""
        return ctx.features

    def _encode_features(self, features: Any) -> Any:
        """``_context_of`` output as JSON (for saved pending datapoints)."""
        if features is None:
            return None
        f: PromptFeatures = features
        return [f.token_estimate, f.has_tools, f.has_images, f.turns]

    def _decode_features(self, data: Any) -> Any:
        return None if data is None else PromptFeatures(*data)

    # ------------------------------------------------------------------ standalone scope
    def __enter__(self: R) -> R:
        """``with router:`` routes every call in the block through a private tracker
        (no cache), with no other setup. Not inside ``tracker.track()`` (pass
        ``track(router=...)`` there) and not re-entrant on one instance."""
        from agentopt.tracking.session import current_session
        from agentopt.tracking.tracker import LLMTracker

        if getattr(self, "_scope", None) is not None:
            raise RoutingError(
                f"{type(self).__name__} is already active in a 'with' block; "
                "use a distinct instance for nested or concurrent scopes"
            )
        if current_session() is not None:
            raise RoutingError(
                "'with router:' inside an active tracker.track() session would not apply "
                "to it: pass the router to that session instead, tracker.track(router=router)"
            )
        tracker = LLMTracker(cache=False, cache_dir=None).start()
        track = tracker.track(router=self)
        track.__enter__()
        self._scope = (tracker, track)
        return self

    def __exit__(self, *exc: object) -> None:
        scope = getattr(self, "_scope", None)
        if scope is None:
            return
        self._scope = None
        tracker, track = scope
        track.__exit__(*exc)
        tracker.close()

    # ------------------------------------------------------------------ routing
    def route(self, ctx: RouteContext) -> str | None:
        """The model for this call, or None to keep the caller's model."""
        with self._lock:
            return self._route(ctx)

    def _route(self, ctx: RouteContext) -> str | None:
        self._calls += 1
        arms = self.arms
        if arms.combos is None:
            allowed, skipped = self._allowed(None)
            if allowed is not None and allowed.size == 0:
                self._exhausted(ctx, skipped)
                return None
            i = self._choose_arm(ctx, allowed)
            model = arms.labels[i]
            pend = self._pending_for(ctx)
            pend.arms.append(i)
            self._pulls[i] += 1
            reason = "policy"
        else:
            node = ctx.agent_id
            if node is None or node not in arms.by_node_model:
                self._log(ctx, None, f"agent_id {node!r} is not a node: kept the caller's model")
                self._kept += 1
                return None
            pend = self._pending_for(ctx)
            i_or_none = pend.arm
            model_now = None if i_or_none is None else arms.combos[i_or_none][node]
            if model_now is not None and self._blocked(model_now) is None:
                i = i_or_none  # type: ignore[assignment]
                reason = "combination of this datapoint"
                skipped = {}
            else:
                others = {n: m for n, m in pend.used.items() if n != node}
                allowed, skipped = self._allowed(others)
                if allowed is not None and allowed.size == 0:
                    self._exhausted(ctx, skipped)
                    return None
                i = self._choose_arm(ctx, allowed)
                pend.arm = i
                self._pulls[i] += 1
                reason = "policy" if i_or_none is None else "policy (combination changed)"
            model = arms.combos[i][node]
            pend.used[node] = model
        self.limits.record_call(model)
        if model != ctx.requested_model:
            self._activated += 1
        if skipped:
            reason += "; skipped " + "; ".join(sorted(set(skipped.values())))
        self._log(ctx, model, reason)
        return model

    def _blocked(self, model: str) -> str | None:
        if model in self._excluded:
            return f"excluded: {model}"
        return self.limits.blocked(model) if self.limits.active else None

    def _allowed(self, used: Mapping[str, str] | None) -> tuple[np.ndarray | None, dict[str, str]]:
        """Allowed arm indices (None: all) and why each skipped model was skipped."""
        if not (self._excluded or self.limits.active or used):
            return None, {}
        now = self.limits.clock() if self.limits.active else 0.0
        skipped: dict[str, str] = {}
        for m in self.arms.models:
            if m in self._excluded:
                skipped[m] = f"excluded: {m}"
            elif self.limits.active:
                why = self.limits.blocked(m, now)
                if why is not None:
                    skipped[m] = why
        if not skipped and not used:
            return None, {}
        if not used:
            ok = [
                i for i, ms in enumerate(self.arms.arm_models) if not any(m in skipped for m in ms)
            ]
        else:
            # nodes already called keep their model; the others must be usable
            combos = self.arms.combos or []
            ok = [
                i
                for i, c in enumerate(combos)
                if all(c[n] == m for n, m in used.items())
                and not any(m in skipped for n, m in c.items() if n not in used)
            ]
        return np.asarray(ok, dtype=np.intp), skipped

    def _exhausted(self, ctx: RouteContext, skipped: Mapping[str, str]) -> None:
        why = "every candidate exhausted: " + "; ".join(sorted(set(skipped.values())) or ["-"])
        if self.on_exhausted == "raise":
            self._log(ctx, None, why + ": raised")
            raise BudgetExhaustedError(why)
        self._kept += 1
        if ctx.requested_model is not None:
            self.limits.record_call(ctx.requested_model)
        self._log(ctx, None, why + ": kept the caller's model")

    def _pending_for(self, ctx: RouteContext) -> Pending:
        key = ctx.data_id
        if key is None:
            return Pending(features=self._context_of(ctx))
        pend = self._pending.get(key)
        if pend is None:
            pend = self._pending[key] = Pending(features=self._context_of(ctx))
            if len(self._pending) > _MAX_PENDING:
                self._pending.popitem(last=False)
        return pend

    def _log(self, ctx: RouteContext, model: str | None, reason: str) -> None:
        if self.history <= 0:
            return
        self._decisions.append(
            {
                "data_id": ctx.data_id,
                "agent_id": ctx.agent_id,
                "requested": ctx.requested_model,
                "routed": model if model is not None else ctx.requested_model,
                "reason": reason,
            }
        )

    # ------------------------------------------------------------------ learning
    def observe(self, record: CallRecord) -> None:
        """Account one call record's spend (the tracker calls this after each call)."""
        with self._lock:
            self._observe(record)

    def _observe(self, record: CallRecord) -> None:
        model = self.arms.match_model(record.model, record.provider) or record.model
        self.limits.record_spend(model, record.cost_usd)
        if record.data_id is not None:
            self._observed[record.data_id] = None
            if len(self._observed) > _MAX_PENDING:
                self._observed.popitem(last=False)

    def update(self: R, feedback: Feedback) -> R:
        """Credit ``feedback.reward`` (in [0, 1]) to the arms of its datapoint.

        A datapoint's calls are credited once: feedback again for a
        ``data_id`` whose calls were already credited (and none routed since)
        is ignored with a :class:`~agentopt.exceptions.RoutingWarning`, and so
        is feedback that matches no call this router routed and names no
        candidate model."""
        with self._lock:
            self._update(feedback)
        return self

    def credit(self: R, feedback: Feedback) -> R:
        """Learn from feedback already resolved to the models it credits, e.g. by
        another gateway replica through the shared database
        (:mod:`agentopt.gateway.replicas`): the arms its ``models`` name are
        credited whatever this router routed, so every replica that applies the
        same feedback learns the same thing. This router forgets what it routed
        for the feedback's ``data_id`` (that datapoint is credited), and counts no
        spend (records carry spend, observed where the calls were made).
        Deduplication is the caller's (the replicas' log credits each once)."""
        with self._lock:
            if feedback.data_id is not None:
                self._pending.pop(feedback.data_id, None)
            self._update(dataclasses.replace(feedback, data_id=None), spend=False)
        return self

    def absorb_usage(self, usage: Iterable[tuple[str | None, int, float, float]]) -> None:
        """Count calls and spend another gateway replica published (model, calls,
        dollars, time), towards this router's quotas and budgets
        (:meth:`Limits.absorb <agentopt.routers.limits.Limits.absorb>`)."""
        with self._lock:
            for model, calls, usd, at in usage:
                self.limits.absorb(model, calls, usd, at)

    def _update(self, feedback: Feedback, *, spend: bool = True) -> None:
        r = feedback.reward
        if isinstance(r, bool) or not isinstance(r, int | float) or not 0.0 <= float(r) <= 1.0:
            raise ConfigError(f"feedback reward must be a number in [0, 1], got {r!r}")
        reward = float(r)
        cost = feedback.cost_usd
        if cost is not None and (math.isnan(cost) or cost < 0):
            cost = None
        key = feedback.data_id
        pend = self._pending.pop(key, None) if key is not None else None
        if pend is None and key is not None:
            done = self._rewarded.get(key)
            signature = _signature(feedback)
            if done is not None and (done == "routed" or done == signature):
                self._ignored += 1
                warnings.warn(
                    f"{type(self).__name__}: feedback for data_id {key!r} was already "
                    "credited; ignored (a datapoint's calls are credited once)",
                    RoutingWarning,
                    stacklevel=3,
                )
                return
        # what the router saw when it routed wins over what the feedback carries
        if pend is not None and pend.features is not None:
            features = pend.features
        else:
            features = feedback.features
        credit = assign(self.arms, pend, feedback, cost)
        self._uncredited += credit.uncredited
        share = credit.cost_share
        credits = credit.arms
        spent_by = credit.spent_by
        if not credits:
            self._ignored += 1
            what = "no data_id" if key is None else f"data_id {key!r}"
            warnings.warn(
                f"{type(self).__name__}: feedback for {what} matches no call this router "
                f"routed and names no candidate model (models={list(feedback.models)}, "
                f"combo={dict(feedback.combo or {})}): nothing credited",
                RoutingWarning,
                stacklevel=3,
            )
        elif key is not None:
            self._rewarded[key] = "routed" if pend is not None else _signature(feedback)
            self._rewarded.move_to_end(key)
            if len(self._rewarded) > _MAX_PENDING:
                self._rewarded.popitem(last=False)
        self._feedbacks += 1
        for i in credits:
            self._n[i] += 1
            self._sum[i] += reward
            self._sumsq[i] += reward * reward
            if share is not None:
                self._cost_n[i] += 1
                self._cost_sum[i] += share
            self._learn_arm(i, reward, share, features)
        # spend: records are exact; feedback only counts when no record was seen
        seen = key is not None and self._observed.pop(key, 0) is None
        if spend and cost is not None and not seen:
            if spent_by:
                each = cost / len(spent_by)
                for m in spent_by:
                    self.limits.record_spend(m, each)
            else:
                self.limits.record_spend(None, cost)

    # ------------------------------------------------------------------ exclusions
    def exclude_models(self, *models: str) -> None:
        """Stop routing to these models (e.g. a provider is down)."""
        self._excluded.update(models)

    def include_models(self, *models: str) -> None:
        self._excluded.difference_update(models)

    # ------------------------------------------------------------------ statistics
    @property
    def candidates(self) -> Any:
        return self.arms.to_json()

    def arm_stats(self) -> dict[str, np.ndarray]:
        """Per-arm arrays: ``pulls``, ``n`` (rewards credited), ``mean_reward``
        (NaN when none), ``mean_cost_usd`` (NaN when unknown)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return {
                "pulls": self._pulls.copy(),
                "n": self._n.copy(),
                "mean_reward": np.where(self._n > 0, self._sum / self._n, np.nan),
                "mean_cost_usd": np.where(self._cost_n > 0, self._cost_sum / self._cost_n, np.nan),
            }

    def stats(self) -> dict[str, Any]:
        """Per arm: pulls, mean reward, spend; per model: calls, spend, block
        reason; the activation rate (share of calls routed to another model than
        the one requested) and the recent decisions with their reasons."""
        with self._lock:
            return self._stats()

    def _stats(self) -> dict[str, Any]:
        s = self.arm_stats()

        def num(x: float) -> float | None:
            return None if math.isnan(x) else float(x)

        return {
            "router": self.name,
            "calls": self._calls,
            "activation_rate": self._activated / self._calls if self._calls else 0.0,
            "kept_rate": self._kept / self._calls if self._calls else 0.0,
            "feedbacks": self._feedbacks,
            "uncredited": self._uncredited,
            "ignored_feedbacks": self._ignored,
            "spend_usd": self.limits.total_spend,
            "arms": {
                label: {
                    "pulls": int(s["pulls"][i]),
                    "rewards": int(s["n"][i]),
                    "mean_reward": num(s["mean_reward"][i]),
                    "mean_cost_usd": num(s["mean_cost_usd"][i]),
                    "spend_usd": float(self._cost_sum[i]),
                }
                for i, label in enumerate(self.arms.labels)
            },
            "models": {
                m: {
                    "calls": self.limits.calls.get(m, 0),
                    "spend_usd": self.limits.spend.get(m, 0.0),
                    "blocked": self._blocked(m),
                }
                for m in self.arms.models
            },
            "decisions": list(self._decisions),
        }

    # ------------------------------------------------------------------ state
    def config(self) -> dict[str, Any]:
        """The router as a daemon rebuilds it: ``{"policy": ..., "kwargs": {...}}``.

        ``policy`` is the registered name of a built-in policy (``"random"``,
        ``"thompson"``), else ``"module:Class"``; ``kwargs`` is
        :meth:`_config_kwargs`. :func:`~agentopt.routers.registry.router_from_config`
        (and ``agentopt serve``, for ``POST /sessions`` with ``router``) turns it
        back into a router."""
        from agentopt.routers.registry import policy_name

        return {"policy": policy_name(type(self)), "kwargs": self._config_kwargs()}

    @classmethod
    def from_config(cls: type[R], **kwargs: Any) -> R:
        """The router built from :meth:`_config_kwargs` output (``cls(**kwargs)``);
        override it when the arguments need preprocessing."""
        return cls(**kwargs)

    def _config_kwargs(self) -> dict[str, Any]:
        """The ``__init__`` arguments that rebuild this router, JSON-serialisable
        (the clock is not saved). A router whose ``__init__`` does not call ours
        implements it to be serialised."""
        if "arms" not in vars(self):  # our __init__ did not run
            raise ConfigError(
                f"{type(self).__name__} cannot be serialised: implement _config_kwargs() "
                "returning its __init__ arguments as a JSON-serialisable dict"
            )
        cfg: dict[str, Any] = {
            "candidates": self.arms.to_json(),
            "seed": self.seed,
            "exclude": sorted(self._excluded),
            "on_exhausted": self.on_exhausted,
            "history": self.history,
        }
        cfg.update(self.limits.config())
        cfg.update(self._params())
        return cfg

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume identically, RNG state included (JSON-safe)."""
        with self._lock:
            return self._state_dict()

    def _state_dict(self) -> dict[str, Any]:
        return router_state(self, _STATE_FORMAT)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output; the candidates must match."""
        with self._lock:
            restore_router_state(self, state, _STATE_FORMAT)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`state_dict` as JSON, atomically: a unique temporary file
        in the same directory, fsynced, then renamed over ``path``. Saves to one
        path are serialised, so concurrent saves (threads, or processes: each
        writes its own temporary file) always leave a complete state behind."""
        p = Path(path)
        data = json.dumps(self.state_dict())
        with _path_lock(p):
            fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, p)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            _fsync_dir(p.parent)
        return p

    @classmethod
    def load(cls: type[R], path: str | os.PathLike[str], **overrides: Any) -> R:
        """A router rebuilt from :meth:`save` output. ``Router.load`` finds the
        class by its registered name; ``overrides`` (e.g. ``clock=``) replace
        saved constructor arguments."""
        from agentopt.routers.registry import router_class

        p = Path(path)
        try:
            state = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{p}: cannot read router state: {exc}") from exc
        if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT:
            raise ConfigError(f"{p}: not a saved router")
        klass: type[Router] = cls
        if cls is Router:
            klass = router_class(state["router"])
        router = klass(**{**state["config"], **overrides})
        router.load_state_dict(state)
        return router  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.arms)} arms, seed={self.seed})"
