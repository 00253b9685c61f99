"""Evidence checks on a selection's observations: broken runs stop early, flat scores warn.

- :class:`FailFast` watches evaluations as they complete. It raises
  :class:`~agentopt.exceptions.EvaluationsFailedError`, with the first error,
  once ``patience`` evaluations have failed before any succeeded and either
  every failure is ``eval_fn``'s (it raised, or returned something that is not a
  score in [0, 1]: a bug in ``eval_fn`` is the same bug on every combination) or
  the failing runs span two or more models at every node that has several (so
  no single broken model explains them). A broken ``eval_fn`` thus costs
  ``patience`` evaluations and a broken agent about one batch, not the whole
  run, while one model that is down does not stop the others being compared.
  One success disarms it. The failed observations are kept (written to the
  store before the check runs), never dropped.
- :func:`all_failed_message` is the same verdict at the end of a selection too
  small to reach ``patience``: no combination is named best without one success.
- :func:`flat_scores_warning` says when every successful evaluation scored the
  same (a swapped ``eval_fn(actual, expected)`` signature typically gives all
  zeros): the selection then cannot tell the combinations apart.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from agentopt.exceptions import EvaluationsFailedError
from agentopt.records import Observation
from agentopt.selectors.run.evaluator import EVAL_FN_ERROR_PREFIX

__all__ = ["FailFast", "all_failed_message", "flat_scores_warning"]

#: Failures, before any success, after which a selection may stop.
PATIENCE = 3
#: Successful evaluations (over ≥ 2 combinations) needed before flat scores are suspicious.
FLAT_MIN = 6


def _first_error(obs: Observation) -> str:
    return f"{Observation.combo_label(obs.combo)}, datapoint {obs.datapoint}: {obs.error}"


def all_failed_message(n: int, first: Observation, *, stopped_early: bool) -> str:
    head = (
        f"the first {n} evaluations all failed" if stopped_early else f"all {n} evaluations failed"
    )
    tail = (
        "; stopped before paying for more"
        if stopped_early
        else "; no combination can be named best"
    )
    return (
        f"{head}{tail} (kept, with their errors). First error: {_first_error(first)}. "
        "Check that agent(combo).run(input) works and that eval_fn(expected, actual) "
        "returns a number in [0, 1]."
    )


class FailFast:
    """Raises once the evaluations so far all failed, in a way no one model explains.

    ``n_models`` is the number of models per node.
    """

    def __init__(self, n_models: Mapping[str, int], patience: int = PATIENCE) -> None:
        self.patience = patience
        self.n_models = dict(n_models)
        self.failed = 0
        self.succeeded = False
        self.first: Observation | None = None
        self.eval_fn_only = True  # every failure so far is eval_fn's, not the agent's
        self.models: dict[str, set[str]] = {node: set() for node in self.n_models}
        self._lock = threading.Lock()

    def _spread(self) -> bool:
        return all(len(self.models.get(node, ())) >= min(2, k) for node, k in self.n_models.items())

    def observe(self, obs: Observation) -> None:
        with self._lock:
            if self.succeeded:
                return
            if not obs.failed:
                self.succeeded = True
                return
            self.failed += 1
            if self.first is None:
                self.first = obs
            self.eval_fn_only &= str(obs.error).startswith(EVAL_FN_ERROR_PREFIX)
            for node, model in obs.combo.items():
                self.models.setdefault(node, set()).add(model)
            if self.failed < self.patience or not (self.eval_fn_only or self._spread()):
                return
            first, n = self.first, self.failed
        raise EvaluationsFailedError(
            all_failed_message(n, first, stopped_early=True),
            first_error=str(first.error),
            observations=n,
        )


def flat_scores_warning(observations: Sequence[Observation]) -> str | None:
    """A warning when ≥ ``FLAT_MIN`` successful evaluations over ≥ 2 combinations all
    have one score; None otherwise."""
    ok = [o for o in observations if not o.failed]
    if len(ok) < FLAT_MIN:
        return None
    if len({Observation.combo_label(o.combo) for o in ok}) < 2:
        return None
    scores = {o.score for o in ok}
    if len(scores) != 1:
        return None
    return (
        f"all {len(ok)} successful evaluations scored {next(iter(scores)):g}: the selection "
        "cannot tell the combinations apart (ties go to the cheaper). If that is unexpected, "
        "check eval_fn's signature: it is called as eval_fn(expected, actual)."
    )
