"""Alias routers that learn together: gateway replicas sharing one PostgreSQL database.

Each replica keeps its routers in memory (a routing decision never waits on
the database), and every replica learns from every feedback, whichever
replica received it:

- the replica that receives feedback resolves it to the models it credits
  (from what it routed and the records in the database) and appends one row
  to the ``router_feedback`` table per call it credits. The row's
  ``(alias, credit_key)`` is unique, the key naming the caller's request
  (``call:<x-agentopt-request-id>``), so a call is credited once: feedback sent
  twice, to one replica or two, by request id or by datapoint, counts once, and
  a datapoint's calls recorded after its feedback are credited by the next one;
- every replica folds the rows it has not applied yet, in ``seq`` order, with
  :meth:`Router.credit <agentopt.routers.base.Router.credit>`: its cursor (the
  last ``seq`` applied) makes each row count exactly once per replica, and
  every replica applies the same rows in the same order, so they learn the
  same statistics. Rows are appended under an advisory lock, so ``seq`` order
  is commit order and a cursor never skips a row that committed late;
- **staleness bound**: the receiver folds at once (its answer reflects the
  feedback); every other replica folds every ``router_sync_seconds`` (0.5 s by
  default), so feedback sent to any replica reaches every replica's routers
  within that interval plus one database round trip while the database is
  reachable. While it is not, feedback is refused with 503 (nothing is
  credited anywhere, the caller may retry) and folding resumes when it returns;
- a replica that starts folds the whole log, so it begins with everything
  learned so far (router state files are not used with a shared database).

Quotas and budgets count every replica's calls. Each replica journals the calls
and spend its alias routers count (only routers with a quota or a budget) and,
every ``router_sync_seconds``, appends one ``router_usage`` row per alias and
model with what it counted since the last append; every replica folds the other
replicas' rows, each once (a second cursor), into its routers' limits
(:meth:`Limits.absorb <agentopt.routers.limits.Limits.absorb>`). So a budget or a
quota is one limit for all replicas, counted from the start of the log:

- **staleness bound**: a call made on one replica counts on every other within
  two sync intervals plus a database round trip (the maker appends within one,
  the others fold within one), so while every replica has its limit's headroom
  the overshoot is at most what the replicas together route in that time;
- while the database is down, each replica keeps counting its own calls, keeps
  what it has not appended (nothing is lost) and appends it when the database
  returns;
- a replica that restarts folds the whole usage log, its own earlier rows
  included (each process has its own origin), so a restart forgets nothing;
- **the log stays small**: every ``COMPACT_EVERY`` seconds a replica merges the
  rows appended more than ``COMPACT_AFTER`` seconds ago (the database's clock)
  whose usage is older than the longest quota window by as much, into one row
  per alias, model and origin: the group's last row, carrying the group's sums.
  A replica whose cursor is past the group (every replica that folded in that
  hour) never reads it again, and one that starts reads the sums once, so
  nothing changes for either; only a replica that could not fold for longer than ``COMPACT_AFTER``
  and still runs may count part of a merged group twice, which overstates the
  spend (it routes less, never past a limit). So the log holds, beyond the last
  hour and the quota windows, one row per alias, model and replica process.

What stays per replica: what it routed (pulls, pending datapoints) and its
random generator.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agentopt.routers.context import Feedback

if TYPE_CHECKING:
    from agentopt.gateway.resolve import Alias
    from agentopt.tracking.storage.pg_store import PostgresRecordStore

__all__ = ["SharedRouters", "call_credit_key"]

log = logging.getLogger("agentopt.gateway")

_LOG_LOCK = 0x61676E74666462  # pg_advisory_xact_lock key: appends to router_feedback
_USAGE_LOCK = 0x61676E74757367  # pg_advisory_xact_lock key: appends to router_usage
COMPACT_AFTER = 3600.0  # usage rows appended longer ago than this may be merged (seconds)
COMPACT_EVERY = 600.0  # how often a replica compacts the usage log (seconds)


def call_credit_key(request_id: str) -> str:
    """The credit key of a caller's request (every attempt of it shares the id):
    feedback credits each request once, whether it names the request or its datapoint."""
    return f"call:{request_id}"


def _event(fb: Feedback) -> str:
    return json.dumps(
        {
            "reward": fb.reward,
            "models": list(fb.models),
            "cost_usd": fb.cost_usd,
            "latency_seconds": fb.latency_seconds,
            "data_id": fb.data_id,
        }
    )


def _feedback(event: Mapping[str, Any]) -> Feedback:
    return Feedback(
        reward=float(event["reward"]),
        models=tuple(str(m) for m in event.get("models") or ()),
        cost_usd=event.get("cost_usd"),
        latency_seconds=event.get("latency_seconds"),
        data_id=event.get("data_id"),
    )


class SharedRouters:
    """The feedback log of one database and this replica's cursor in it; see the
    module docstring. ``sync()`` folds new rows now; ``start()`` runs a thread
    that folds every ``interval`` seconds."""

    def __init__(
        self,
        store: PostgresRecordStore,
        aliases: Mapping[str, Alias],
        *,
        interval: float = 0.5,
        origin: str | None = None,
    ) -> None:
        self.store = store
        self.aliases = aliases
        self.interval = interval
        self.origin = origin
        self.applied = 0  # the last seq folded into this replica's routers
        self.folded = 0  # rows folded by this replica
        # usage: this process's own origin (a restart is another origin, so a
        # restarted replica folds what it counted before), its cursor and what it
        # counted but has not appended yet
        self.usage_origin = f"{origin or 'replica'}:{uuid.uuid4().hex[:12]}"
        self.usage_applied = 0
        self.usage_folded = 0
        self._unsent: dict[tuple[str, str | None], list[float]] = {}
        self.usage_compacted = 0  # usage rows this replica merged away
        self._next_compact = 0.0  # time.monotonic() of the next compaction
        for alias in aliases.values():
            limits = getattr(alias.router, "limits", None)
            if limits is not None and limits.active:
                limits.share()
        self.last_sync: float | None = None  # time.time() of the last successful fold
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish(self, credits: list[tuple[str, str, Feedback]]) -> list[bool]:
        """Append resolved credits ``(alias, credit key, feedback)`` to the log in one
        transaction; for each, False when its key was already there (credited
        before: not again). Raises psycopg's errors (then none was appended)."""
        added: list[bool] = []
        with self.store.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOG_LOCK,))
            for alias, key, feedback in credits:
                row = conn.execute(
                    "INSERT INTO router_feedback (alias, credit_key, event, origin, created_at)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (alias, credit_key) DO NOTHING"
                    " RETURNING seq",
                    (alias, key, _event(feedback), self.origin, time.time()),
                ).fetchone()
                added.append(row is not None)
        return added

    def sync(self) -> int:
        """Append this replica's usage, then fold the feedback rows not applied yet
        into this replica's routers, in order, and the other replicas' usage;
        returns how many feedback rows. Raises psycopg's errors (the cursors stay,
        usage not appended is kept for the next sync)."""
        with self._lock:
            self._publish_usage()
            self._fold_usage()
            folded = self._fold_feedback()
            if time.monotonic() >= self._next_compact:
                self.compact_usage()
                self._next_compact = time.monotonic() + COMPACT_EVERY
            return folded

    def compact_usage(self, *, after: float = COMPACT_AFTER) -> int:
        """Merge the usage rows appended more than ``after`` seconds ago (the
        database's clock) whose usage is older than the longest quota window by as
        much, into one row per alias, model and origin (the group's last row keeps
        the sums); returns how many rows went. See the module docstring for why no
        replica's count changes."""
        before = time.time() - self._window() - after
        with self.store.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_USAGE_LOCK,))
            cur = conn.execute(
                "WITH old AS (SELECT seq, alias, model, origin, calls, cost_usd, at"
                "   FROM router_usage"
                "   WHERE at < %s AND appended_at < extract(epoch from now()) - %s),"
                " g AS (SELECT alias, model, origin, max(seq) AS keep, sum(calls) AS calls,"
                "   sum(cost_usd) AS usd, max(at) AS at FROM old"
                "   GROUP BY alias, model, origin HAVING count(*) > 1),"
                " merged AS (UPDATE router_usage u SET calls = g.calls, cost_usd = g.usd,"
                "   at = g.at FROM g WHERE u.seq = g.keep RETURNING u.seq)"
                " DELETE FROM router_usage u USING old o, g"
                " WHERE u.seq = o.seq AND o.seq < g.keep AND o.alias = g.alias"
                "   AND o.model IS NOT DISTINCT FROM g.model AND o.origin = g.origin",
                (before, after),
            )
            gone = max(0, cur.rowcount)
        self.usage_compacted += gone
        return gone

    def _publish_usage(self) -> None:
        """Append what this replica's routers counted since the last append: one
        row per (alias, model), in one transaction (kept on failure)."""
        for name, alias in self.aliases.items():
            limits = getattr(alias.router, "limits", None)
            if limits is None or not limits.shared:
                continue
            for model, calls, usd, at in limits.drain():
                row = self._unsent.setdefault((name, model), [0.0, 0.0, 0.0])
                row[0] += calls
                row[1] += usd
                row[2] = max(row[2], at)
        if not self._unsent:
            return
        with self.store.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_USAGE_LOCK,))
            for (name, model), (calls, usd, at) in self._unsent.items():
                conn.execute(
                    "INSERT INTO router_usage (alias, model, calls, cost_usd, at, origin)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    (name, model, int(calls), usd, at, self.usage_origin),
                )
        self._unsent.clear()

    def _window(self) -> float:
        """The longest quota window of this replica's routers (0: no quota)."""
        longest = 0.0
        for alias in self.aliases.values():
            limits = getattr(alias.router, "limits", None)
            for q in getattr(limits, "quotas", {}).values():
                longest = max(longest, float(q.window_seconds))
        return longest

    def _fold_usage(self) -> None:
        """Count the other replicas' usage rows not folded yet, in order. The first
        fold sums, in the database, the rows older than every quota window (they
        only count towards budgets), so a start reads one row per alias and model
        for the log's past, however long it is."""
        rows: list[Any] = []
        with self.store.connection() as conn:
            if self.usage_applied == 0:
                top = conn.execute("SELECT max(seq) FROM router_usage").fetchone()
                if top is None or top[0] is None:
                    return
                self.usage_applied = int(top[0])
                since = time.time() - self._window()
                rows = conn.execute(
                    "SELECT 0, alias, model, sum(calls), sum(cost_usd), max(at), NULL"
                    " FROM router_usage WHERE seq <= %s AND at < %s AND origin <> %s"
                    " GROUP BY alias, model",
                    (self.usage_applied, since, self.usage_origin),
                ).fetchall()
                rows += conn.execute(
                    "SELECT 0, alias, model, calls, cost_usd, at, origin FROM router_usage"
                    " WHERE seq <= %s AND at >= %s ORDER BY seq",
                    (self.usage_applied, since),
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT seq, alias, model, calls, cost_usd, at, origin FROM router_usage"
                    " WHERE seq > %s ORDER BY seq",
                    (self.usage_applied,),
                ).fetchall()
        by_alias: dict[str, list[tuple[str | None, int, float, float]]] = {}
        for seq, alias_name, model, calls, usd, at, origin in rows:
            if origin != self.usage_origin:
                by_alias.setdefault(alias_name, []).append(
                    (model, int(calls), float(usd), float(at))
                )
            self.usage_applied = max(self.usage_applied, int(seq))
        for alias_name, usage in by_alias.items():
            alias = self.aliases.get(alias_name)
            absorb = getattr(alias.router, "absorb_usage", None) if alias is not None else None
            if absorb is not None:
                absorb(usage)
                self.usage_folded += len(usage)

    def _fold_feedback(self) -> int:
        with self.store.connection() as conn:
            rows = conn.execute(
                "SELECT seq, alias, event FROM router_feedback WHERE seq > %s ORDER BY seq",
                (self.applied,),
            ).fetchall()
        for seq, alias_name, event in rows:
            alias = self.aliases.get(alias_name)
            if alias is not None:
                try:
                    alias.router.credit(_feedback(json.loads(event)))
                except (ValueError, TypeError, KeyError) as exc:
                    log.error(
                        "agentopt gateway: router feedback #%d for %r not applied: %s",
                        seq,
                        alias_name,
                        exc,
                    )
            self.applied = int(seq)
        self.folded += len(rows)
        self.last_sync = time.time()
        self.last_error = None
        return len(rows)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="agentopt-router-sync", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync()
            except Exception as exc:
                first = self.last_error is None
                self.last_error = f"{type(exc).__name__}: {exc}"
                if first:
                    log.error(
                        "agentopt gateway: cannot read router feedback from %s (%s);"
                        " retrying every %g s",
                        self.store.where,
                        exc,
                        self.interval,
                    )

    def status(self) -> dict[str, Any]:
        """What ``/internal/health`` shows about the shared routers."""
        return {
            "applied_seq": self.applied,
            "folded": self.folded,
            "usage_applied_seq": self.usage_applied,
            "usage_folded": self.usage_folded,
            "usage_unsent": len(self._unsent),
            "usage_compacted": self.usage_compacted,
            "sync_seconds": self.interval,
            "last_sync": self.last_sync,
            "last_error": self.last_error,
        }

    def close(self) -> None:
        """Stop folding, then append the usage not appended yet (a replica that
        stops leaves its calls counted for the others; logged if it cannot)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            with self._lock:
                self._publish_usage()
        except Exception as exc:
            log.error(
                "agentopt gateway: usage of %d alias/model pairs not appended to %s at close: %s",
                len(self._unsent),
                self.store.where,
                exc,
            )
