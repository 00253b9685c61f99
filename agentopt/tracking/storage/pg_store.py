"""CallRecords in PostgreSQL, for gateway replicas that share one database.

``get_store("postgresql://user@host:5432/db")`` (or ``LLMTracker(store=...)``,
``agentopt serve --store ...``) builds a :class:`PostgresRecordStore`: the same
tables and behaviour as the SQLite store (``records`` with the JSON, ``calls``
with the flat columns usage statistics read; a background writer; records
held in memory while the database is unreachable and written when it returns;
``health()``; ``retention_days``), through psycopg 3 and a psycopg_pool
connection pool. Needs the ``postgres`` extra (``pip install 'agentopt[postgres]'``).

The schema is created and migrated by the store itself when it opens, with
versioned migrations recorded in ``agentopt_schema_migrations``; a
transaction-level advisory lock makes concurrent replicas apply each one once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from agentopt.exceptions import StoreError
from agentopt.records import CallRecord
from agentopt.tracking.analytics.usage_sql import POSTGRES
from agentopt.tracking.storage.pg_pool import PgPool, db_errors, redact_url
from agentopt.tracking.storage.sql_store import SQLRecordStore
from agentopt.tracking.storage.store_columns import COLUMNS, row_of

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

__all__ = ["MIGRATIONS", "PostgresRecordStore", "migrate", "redact_url"]

_PG_TYPES = {"TEXT": "TEXT", "REAL": "DOUBLE PRECISION", "INTEGER": "BIGINT"}
_CALL_COLUMNS = tuple(c for c in COLUMNS if c[0] != "call_id")
_CALL_NAMES = tuple(name for name, _ in _CALL_COLUMNS)
_INDEXED = ("ts", "model_label", "provider", "alias", "data_id", "combo_id", "agent_id")

#: (version, SQL statements): applied in order, each once, in one transaction.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            "CREATE TABLE records (seq BIGSERIAL PRIMARY KEY, call_id TEXT NOT NULL UNIQUE,"
            " session_id TEXT, data_id TEXT, combo_id TEXT, agent_id TEXT, json TEXT NOT NULL)",
            *(f"CREATE INDEX records_{c} ON records({c})" for c in ("data_id", "combo_id",
                                                                     "agent_id", "session_id")),
            "CREATE TABLE calls (seq BIGINT PRIMARY KEY REFERENCES records(seq) ON DELETE CASCADE, "
            + ", ".join(f"{n} {_PG_TYPES[t]}" for n, t in _CALL_COLUMNS)
            + ")",
            *(f"CREATE INDEX calls_{c} ON calls({c})" for c in _INDEXED),
        ),
    ),
    (
        2,  # integer day/hour buckets, microseconds for percentiles, token estimates
        (
            *(
                f"ALTER TABLE calls ADD COLUMN IF NOT EXISTS {c} BIGINT"
                for c in ("day", "hour", "fast_latency_us", "fast_ttft_us",
                          "estimated_input_tokens", "estimated_output_tokens")
            ),
            "UPDATE calls SET day = floor(ts / 86400)::bigint, hour = floor(ts / 3600)::bigint,"
            " fast_latency_us = CASE WHEN ok = 1 AND cached = 0"
            " THEN (round(latency_seconds::numeric, 6) * 1000000)::bigint END,"
            " fast_ttft_us = CASE WHEN ok = 1 AND cached = 0"
            " THEN (round(ttft_seconds::numeric, 6) * 1000000)::bigint END"
            " WHERE day IS NULL",
            "CREATE INDEX IF NOT EXISTS calls_session_id ON calls(session_id)",
        ),
    ),
    (
        3,
        (
            # what gateway replicas share: alias routers' feedback, as an ordered log
            # (agentopt.gateway.replicas), and the response cache (agentopt.tracking.storage.pg_cache)
            "CREATE TABLE router_feedback (seq BIGSERIAL PRIMARY KEY, alias TEXT NOT NULL,"
            " credit_key TEXT NOT NULL, event TEXT NOT NULL, origin TEXT,"
            " created_at DOUBLE PRECISION NOT NULL, UNIQUE (alias, credit_key))",
            "CREATE TABLE response_cache (key TEXT PRIMARY KEY,"
            " created_at DOUBLE PRECISION NOT NULL, size BIGINT NOT NULL, status INTEGER NOT NULL,"
            " headers TEXT NOT NULL, body BYTEA NOT NULL, streamed BOOLEAN NOT NULL,"
            " latency DOUBLE PRECISION NOT NULL, ttft DOUBLE PRECISION, model TEXT)",
            "CREATE INDEX response_cache_created ON response_cache(created_at)",
            "CREATE INDEX calls_request_id ON calls(request_id)",  # feedback by request
        ),
    ),
    (
        4,
        (
            # alias routers' calls and spend, per replica and sync interval, so quotas
            # and budgets count every replica's calls (agentopt.gateway.replicas)
            "CREATE TABLE router_usage (seq BIGSERIAL PRIMARY KEY, alias TEXT NOT NULL,"
            " model TEXT, calls BIGINT NOT NULL, cost_usd DOUBLE PRECISION NOT NULL,"
            " at DOUBLE PRECISION NOT NULL, origin TEXT NOT NULL)",
        ),
    ),
    (
        5,
        (
            # when each usage row was appended, by the database's clock: compaction
            # merges only rows every replica has long folded (agentopt.gateway.replicas)
            "ALTER TABLE router_usage ADD COLUMN appended_at DOUBLE PRECISION NOT NULL"
            " DEFAULT extract(epoch from now())",
        ),
    ),
)  # fmt: skip
_LOCK_KEY = 0x61676E746F7074  # pg_advisory_xact_lock key of agentopt's migrations


def migrate(pool: ConnectionPool, where: str) -> None:
    """Apply the :data:`MIGRATIONS` the database lacks, each once, in one
    transaction under an advisory lock (replicas opening together wait for it)."""
    with pool.connection() as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS agentopt_schema_migrations"
            " (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM agentopt_schema_migrations")}
        newest = max((v for v, _ in MIGRATIONS), default=0)
        if done and max(done) > newest:
            raise StoreError(
                f"database {where} has schema version {max(done)};"
                f" this agentopt knows up to {newest}: upgrade agentopt"
            )
        for version, statements in MIGRATIONS:
            if version in done:
                continue
            for sql in statements:
                conn.execute(sql)
            conn.execute("INSERT INTO agentopt_schema_migrations (version) VALUES (%s)", (version,))


class PostgresRecordStore(SQLRecordStore):
    """Records in PostgreSQL; see the module docstring and :class:`SQLRecordStore`.

    ``pool_size`` bounds the connections; ``timeout`` (seconds) bounds how long
    a write or read waits for a connection before it counts as a failure (the
    records then wait in memory and the writer retries, pausing at most
    ``max_backoff`` seconds between tries).
    """

    dialect = POSTGRES
    _ph = "%s"

    def __init__(
        self,
        url: str,
        *,
        batch_size: int = 256,
        flush_interval: float = 1.0,
        max_buffer: int = 100_000,
        retention_days: float | None = None,
        pool_size: int = 4,
        timeout: float = 5.0,
        max_backoff: float = 30.0,
    ) -> None:
        self._db = PgPool(
            url,
            what="record store",
            name="agentopt-records",
            error=StoreError,
            size=pool_size,
            timeout=timeout,
            on_open=migrate,
        )
        self.url = self._db.url
        self.where = self._db.where
        self.pool_size = pool_size
        self.timeout = timeout
        self._start(
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_buffer=max_buffer,
            retention_days=retention_days,
            max_backoff=max_backoff,
        )

    # -- connections -------------------------------------------------------------

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection from this store's pool (for what shares its database:
        gateway replicas' router feedback). Errors are psycopg's."""
        with self._db.connection() as conn:
            yield conn

    def schema_version(self) -> int:
        """The newest migration applied to the database."""
        return int(self._read("SELECT max(version) FROM agentopt_schema_migrations")[0][0])

    def _reopen_if_forked(self) -> None:
        self._db.reopen_if_forked()

    # -- the database --------------------------------------------------------------

    def _write_batch(self, batch: list[CallRecord]) -> None:
        """One transaction: the records (existing call ids left alone), then the
        flat columns of those that were new."""
        rows = {r.call_id: r for r in batch}
        with self._db.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(
                "INSERT INTO records (call_id, session_id, data_id, combo_id, agent_id, json)"
                " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[],"
                " %s::text[], %s::text[]) ON CONFLICT (call_id) DO NOTHING RETURNING seq, call_id",
                (
                    list(rows),
                    [r.session_id for r in rows.values()],
                    [r.data_id for r in rows.values()],
                    [r.combo_id for r in rows.values()],
                    [r.agent_id for r in rows.values()],
                    [r.model_dump_json() for r in rows.values()],
                ),
            )
            new = cur.fetchall()
            if new:
                marks = ", ".join(["%s"] * (len(_CALL_NAMES) + 1))
                cur.executemany(
                    f"INSERT INTO calls (seq, {', '.join(_CALL_NAMES)}) VALUES ({marks})",
                    [(seq, *row_of(rows[call_id])[1:]) for seq, call_id in new],
                )

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            with self._db.connection() as conn:
                return conn.execute(sql, tuple(args)).fetchall()
        except db_errors() as exc:
            raise StoreError(f"cannot read records from {self.where}: {exc}") from exc

    def _json_field(self, name: str) -> str:
        return f"(records.json::jsonb ->> '{name}')"

    def _update_estimates(self, rows: list[tuple[str, int, int]]) -> None:
        args = [(i, o, c) for c, i, o in rows]
        with self._db.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "UPDATE calls SET estimated_input_tokens = %s, estimated_output_tokens = %s"
                " WHERE seq = (SELECT seq FROM records WHERE call_id = %s)",
                args,
            )
            cur.executemany(
                "UPDATE records SET json = (json::jsonb || jsonb_build_object("
                "'estimated_input_tokens', %s::bigint, 'estimated_output_tokens', %s::bigint))::text"
                " WHERE call_id = %s",
                args,
            )

    def _delete_before(self, cutoff: float) -> int:
        try:
            with self._db.connection() as conn:
                cur = conn.execute(
                    "DELETE FROM records WHERE seq IN (SELECT seq FROM calls WHERE ts < %s)",
                    (cutoff,),
                )
                return int(cur.rowcount)
        except db_errors() as exc:
            raise StoreError(f"cannot prune {self.where}: {exc}") from exc

    def _delete_all(self) -> None:
        with self._db.connection() as conn:
            conn.execute("TRUNCATE records, calls")

    def _close_connections(self) -> None:
        self._db.close()

    def _rescue_name(self) -> str:
        return "agentopt-records-postgres"

    def __repr__(self) -> str:
        return f"PostgresRecordStore({self.where})"
