"""PostgreSQL through asyncpg: a pool per service, each service its own database, and
versioned SQL migrations applied at start (under an advisory lock, so replicas that start
together apply them once).

Why asyncpg rather than psycopg 3: it is the fastest PostgreSQL driver for asyncio (binary
protocol, prepared statement cache), its pool is built in, and we need nothing it lacks
(docs/adr/0002-asyncpg.md).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from . import log

_MIGRATION = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")
_DBNAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_ADVISORY_KEY = 0x5B_0001  # any constant shared by all our migrators


def with_database(url: str, name: str) -> str:
    """The same server URL with another database name."""
    if not _DBNAME.match(name):
        raise ValueError(f"invalid database name {name!r}")
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url


@dataclass(frozen=True)
class Migration:
    component: str
    version: int
    name: str
    sql: str


def load_migrations(component: str, package: str) -> list[Migration]:
    """The NNN_name.sql files of a package folder, in version order."""
    folder: Traversable = resources.files(package)
    found = []
    for entry in folder.iterdir():
        m = _MIGRATION.match(entry.name)
        if m:
            found.append(Migration(component, int(m.group(1)), m.group(2), entry.read_text()))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions in {package}")
    return found


def runtime_migrations() -> list[Migration]:
    """The tables the runtime itself needs in every service database (outbox, processed)."""
    return load_migrations("runtime", "services.runtime.migrations")


class _Connection(asyncpg.Connection):  # type: ignore[misc]
    """A pooled connection whose release sends nothing to the server.

    asyncpg's default reset, sent on every release, is a round trip of four statements
    (release advisory locks, CLOSE ALL, UNLISTEN *, RESET ALL) — a third of the statements
    a consumer sends per event. Our code leaves nothing for it to undo: it takes advisory
    locks only per transaction (`pg_advisory_xact_lock`) except in `migrate`, which unlocks
    in `finally`; it never LISTENs, opens cursors outside a transaction or SETs session
    state. An open transaction is still rolled back on release (asyncpg does that itself)."""

    def get_reset_query(self) -> str:
        return ""


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def ensure_database(url: str, timeout_s: float = 30.0) -> None:
    """Create the URL's database if it does not exist (needs CREATEDB on the server)."""
    name = database_of(url)
    logger = log.get("db")
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            conn = await asyncpg.connect(url, timeout=5)
            await conn.close()
            return
        except asyncpg.InvalidCatalogNameError:
            break
        except (OSError, asyncpg.CannotConnectNowError, TimeoutError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise ConnectionError(f"cannot reach PostgreSQL at {redact(url)}: {exc}") from exc
            logger.info("waiting for postgres", url=redact(url), error=str(exc))
            await asyncio.sleep(0.5)
    admin = await asyncpg.connect(with_database(url, "postgres"), timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        logger.info("created database", database=name)
    except asyncpg.DuplicateDatabaseError:
        pass
    finally:
        await admin.close()


async def migrate(conn: asyncpg.Connection, migrations: list[Migration]) -> list[str]:
    """Apply the migrations not yet applied; return their names."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _ADVISORY_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                 component text NOT NULL,
                 version integer NOT NULL,
                 name text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now(),
                 PRIMARY KEY (component, version))"""
        )
        rows = await conn.fetch("SELECT component, version FROM schema_migrations")
        done = {(r["component"], r["version"]) for r in rows}
        for mig in migrations:
            if (mig.component, mig.version) in done:
                continue
            async with conn.transaction():
                await conn.execute(mig.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (component, version, name) VALUES ($1,$2,$3)",
                    mig.component,
                    mig.version,
                    mig.name,
                )
            applied.append(f"{mig.component}/{mig.version:03d}_{mig.name}")
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _ADVISORY_KEY)
    return applied


class Database:
    """A service's connection pool to its own database."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.url = url
        self._min = min_size
        self._max = max_size
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database not opened")
        return self._pool

    async def open(
        self, migrations: list[Migration], *, create: bool = True, timeout_s: float = 30.0
    ) -> None:
        logger = log.get("db")
        if create:
            await ensure_database(self.url, timeout_s)
        self._pool = await asyncpg.create_pool(
            self.url,
            min_size=self._min,
            max_size=self._max,
            init=_init_connection,
            connection_class=_Connection,
        )
        async with self.pool.acquire() as conn:
            applied = await migrate(conn, migrations)
        if applied:
            logger.info("migrations applied", migrations=applied)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
