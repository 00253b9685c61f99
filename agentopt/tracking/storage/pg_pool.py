"""The PostgreSQL connection pool of a record store or response cache.

:class:`PgPool` opens a psycopg_pool pool on a ``postgresql://`` URL, applies the
schema migrations (:func:`agentopt.tracking.storage.pg_store.migrate`), names the
database in messages without its password (:func:`redact_url`), and opens a new
pool in a forked child (a pool's sockets and threads do not survive ``fork``).
psycopg and psycopg_pool (the ``postgres`` extra) are imported only here and only
when a pool is made.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from agentopt.exceptions import AgentOptError, ConfigError

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

__all__ = ["PgPool", "db_errors", "redact_url"]

# psycopg_pool retries a lost connection with a doubling pause; giving up after
# this long lets the next request connect at once (no pause of minutes after a
# long outage ends)
RECONNECT_SECONDS = 10.0


def redact_url(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def db_errors() -> tuple[type[BaseException], ...]:
    """What a database call raises when the database or the pool fails."""
    import psycopg
    from psycopg_pool import PoolTimeout

    return (psycopg.Error, PoolTimeout)


class PgPool:
    """A migrated connection pool on ``url``, reopened after ``fork``.

    ``what`` names the component in messages (``"record store"``), ``name`` the
    pool (psycopg_pool's logs), ``error`` the exception raised when the database
    cannot be opened; ``size`` bounds the connections and ``timeout`` (seconds)
    how long a caller waits for one. ``on_open`` runs on each new pool (the
    migrations).
    """

    def __init__(
        self,
        url: str,
        *,
        what: str,
        name: str,
        error: type[AgentOptError],
        size: int = 4,
        timeout: float = 5.0,
        on_open: Callable[[ConnectionPool, str], None] | None = None,
    ) -> None:
        try:
            import psycopg  # noqa: F401
            import psycopg_pool  # noqa: F401
        except ImportError as exc:
            raise ConfigError(
                f"a postgresql:// {what} needs psycopg 3 and psycopg_pool:"
                " pip install 'agentopt[postgres]'"
            ) from exc
        self.url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.where = repr(redact_url(self.url))
        self.what = what
        self.name = name
        self.error = error
        self.size = size
        self.timeout = timeout
        self._on_open = on_open
        self._pid = os.getpid()
        self._pool = self._open()

    def _open(self) -> ConnectionPool:
        from psycopg_pool import ConnectionPool

        pool = ConnectionPool(
            self.url,
            min_size=1,
            max_size=max(1, self.size),
            timeout=self.timeout,
            check=ConnectionPool.check_connection,  # a restarted server's dead sockets
            kwargs={"connect_timeout": max(1, int(self.timeout))},
            reconnect_timeout=RECONNECT_SECONDS,
            open=False,
            name=self.name,
        )
        try:
            pool.open(wait=True, timeout=self.timeout)
            if self._on_open is not None:
                self._on_open(pool, self.where)
        except db_errors() as exc:
            pool.close()
            raise self.error(f"cannot open the {self.what} {self.where}: {exc}") from exc
        return pool

    def reopen_if_forked(self) -> None:
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self._pool = self._open()

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection from the pool (a new pool first in a forked child)."""
        self.reopen_if_forked()
        with self._pool.connection() as conn:
            yield conn

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._pool.close()
