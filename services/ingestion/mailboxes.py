"""IMAP mailbox configuration, checkpoints, leases and status (ingestion's own tables)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.runtime.errors import InvalidArgument
from services.runtime.hosts import valid_host

SECURITY = ("tls", "starttls", "none")
AUTH = ("password", "xoauth2")
AFTER_FETCH = ("seen", "move", "delete")


@dataclass(frozen=True)
class Mailbox:
    id: str
    tenant_id: str
    inbox_id: str
    inbox_name: str
    host: str
    port: int
    security: str
    username: str
    auth: str
    secret: bytes
    folder: str
    after_fetch: str
    move_to: str
    poll_interval_s: int
    enabled: bool

    @classmethod
    def from_row(cls, row: Any) -> Mailbox:
        return cls(
            id=str(row["id"]),
            tenant_id=str(row["tenant_id"]),
            inbox_id=str(row["inbox_id"]),
            inbox_name=row["inbox_name"],
            host=row["host"],
            port=row["port"],
            security=row["security"],
            username=row["username"],
            auth=row["auth"],
            secret=bytes(row["secret"]),
            folder=row["folder"],
            after_fetch=row["after_fetch"],
            move_to=row["move_to"],
            poll_interval_s=row["poll_interval_s"],
            enabled=row["enabled"],
        )


def validate(
    *,
    host: str,
    port: int,
    security: str,
    username: str,
    auth: str,
    folder: str,
    after_fetch: str,
    move_to: str,
    poll_interval_s: int,
) -> None:
    """Refuse a configuration that cannot work, naming the field."""
    if not valid_host(host):
        raise InvalidArgument("host must be a host name or address", field="host")
    if not 1 <= port <= 65535:
        raise InvalidArgument("port must be 1..65535", field="port")
    if security not in SECURITY:
        raise InvalidArgument(f"security must be one of {', '.join(SECURITY)}", field="security")
    if auth not in AUTH:
        raise InvalidArgument(f"auth must be one of {', '.join(AUTH)}", field="auth")
    for name, value in (("username", username), ("folder", folder), ("move_to", move_to)):
        if any(c in value for c in '\r\n\0"'):
            raise InvalidArgument(f"{name} must not contain quotes or line breaks", field=name)
    if not username:
        raise InvalidArgument("username is required", field="username")
    if not folder:
        raise InvalidArgument("folder is required", field="folder")
    if after_fetch not in AFTER_FETCH:
        raise InvalidArgument(
            f"after_fetch must be one of {', '.join(AFTER_FETCH)}", field="after_fetch"
        )
    if after_fetch == "move" and not move_to:
        raise InvalidArgument("move_to is required when after_fetch is move", field="move_to")
    if not 5 <= poll_interval_s <= 3600:
        raise InvalidArgument("poll_interval_s must be 5..3600", field="poll_interval_s")


def _settings(mb: Mailbox) -> tuple[Any, ...]:
    """The stored settings of `mb`, in the order of SETTINGS."""
    return (
        uuid.UUID(mb.inbox_id),
        mb.inbox_name,
        mb.host,
        mb.port,
        mb.security,
        mb.username,
        mb.auth,
        mb.secret,
        mb.folder,
        mb.after_fetch,
        mb.move_to,
        mb.poll_interval_s,
        mb.enabled,
    )


SETTINGS = (
    "inbox_id, inbox_name, host, port, security, username, auth, secret, folder, "
    "after_fetch, move_to, poll_interval_s, enabled"
)


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    """How a mailbox's fetcher last fared (all None before its first run)."""

    state: str | None
    last_error: str | None
    last_ok_at: datetime | None
    fetched: int | None
    last_uid: int | None


class MailboxRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, mb: Mailbox, now: datetime) -> None:
        await self._pool.execute(
            f"INSERT INTO mailboxes (id, tenant_id, created_at, updated_at, {SETTINGS}) "
            "VALUES ($1,$2,$3,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)",
            uuid.UUID(mb.id),
            uuid.UUID(mb.tenant_id),
            now,
            *_settings(mb),
        )

    async def update(self, mb: Mailbox, now: datetime) -> bool:
        """Replace the settings of `mb.id` in `mb.tenant_id`; False if there is none. The
        lease goes, so the fetcher holding it stops at its next step and one with the new
        settings starts; a different host, account or folder also loses its checkpoint
        (the new folder is read from its first UID; what was fetched already is deduped)."""
        async with self._pool.acquire() as conn, conn.transaction():
            old = await conn.fetchrow(
                "SELECT host, username, folder FROM mailboxes WHERE tenant_id = $1 AND id = $2 "
                "FOR UPDATE",
                uuid.UUID(mb.tenant_id),
                uuid.UUID(mb.id),
            )
            if old is None:
                return False
            await conn.execute(
                f"UPDATE mailboxes SET updated_at = $2, ({SETTINGS}) = "
                "ROW($3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15) WHERE id = $1",
                uuid.UUID(mb.id),
                now,
                *_settings(mb),
            )
            await conn.execute("DELETE FROM mailbox_leases WHERE mailbox_id = $1", uuid.UUID(mb.id))
            if (old["host"].lower(), old["username"], old["folder"]) != (
                mb.host.lower(),
                mb.username,
                mb.folder,
            ):
                await conn.execute(
                    "DELETE FROM mailbox_checkpoints WHERE mailbox_id = $1", uuid.UUID(mb.id)
                )
                await conn.execute(
                    "DELETE FROM mailbox_status WHERE mailbox_id = $1", uuid.UUID(mb.id)
                )
        return True

    async def list_for_tenant(self, tenant_id: str) -> list[tuple[Mailbox, MailboxStatus]]:
        rows = await self._pool.fetch(
            "SELECT m.*, s.state, s.last_error, s.last_ok_at, s.fetched, c.last_uid "
            "FROM mailboxes m LEFT JOIN mailbox_status s ON s.mailbox_id = m.id "
            "LEFT JOIN mailbox_checkpoints c ON c.mailbox_id = m.id "
            "WHERE m.tenant_id = $1 ORDER BY m.created_at",
            uuid.UUID(tenant_id),
        )
        return [
            (
                Mailbox.from_row(r),
                MailboxStatus(
                    r["state"], r["last_error"], r["last_ok_at"], r["fetched"], r["last_uid"]
                ),
            )
            for r in rows
        ]

    async def delete(self, tenant_id: str, mailbox_id: uuid.UUID) -> bool:
        status = await self._pool.execute(
            "DELETE FROM mailboxes WHERE tenant_id = $1 AND id = $2",
            uuid.UUID(tenant_id),
            mailbox_id,
        )
        return bool(status == "DELETE 1")

    async def enabled(self) -> list[Mailbox]:
        """Every tenant's enabled mailboxes: the fetchers' work list (not a tenant query)."""
        rows = await self._pool.fetch("SELECT * FROM mailboxes WHERE enabled ORDER BY id")
        return [Mailbox.from_row(r) for r in rows]

    async def get(self, mailbox_id: str) -> Mailbox | None:
        row = await self._pool.fetchrow(
            "SELECT * FROM mailboxes WHERE id = $1", uuid.UUID(mailbox_id)
        )
        return Mailbox.from_row(row) if row else None

    # -- leases: one fetching replica per mailbox ----------------------------------------

    async def acquire(self, mailbox_id: str, holder: str, ttl_s: float) -> bool:
        row = await self._pool.fetchrow(
            "INSERT INTO mailbox_leases (mailbox_id, holder, expires_at) "
            "VALUES ($1, $2, now() + make_interval(secs => $3)) "
            "ON CONFLICT (mailbox_id) DO UPDATE SET holder = EXCLUDED.holder, "
            "expires_at = EXCLUDED.expires_at "
            "WHERE mailbox_leases.holder = EXCLUDED.holder OR mailbox_leases.expires_at < now() "
            "RETURNING holder",
            uuid.UUID(mailbox_id),
            holder,
            ttl_s,
        )
        return row is not None

    async def release(self, mailbox_id: str, holder: str) -> None:
        await self._pool.execute(
            "DELETE FROM mailbox_leases WHERE mailbox_id = $1 AND holder = $2",
            uuid.UUID(mailbox_id),
            holder,
        )

    # -- checkpoints ---------------------------------------------------------------------

    async def checkpoint(self, mailbox_id: str) -> tuple[int, int] | None:
        row = await self._pool.fetchrow(
            "SELECT uidvalidity, last_uid FROM mailbox_checkpoints WHERE mailbox_id = $1",
            uuid.UUID(mailbox_id),
        )
        return (row["uidvalidity"], row["last_uid"]) if row else None

    async def advance(
        self, mailbox_id: str, holder: str, uidvalidity: int, last_uid: int, now: datetime
    ) -> bool:
        """Move the checkpoint, only while `holder` holds the lease (a replica that lost it
        must not move another's checkpoint). False when the lease is gone."""
        status = await self._pool.execute(
            "INSERT INTO mailbox_checkpoints (mailbox_id, uidvalidity, last_uid, updated_at) "
            "SELECT $1, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM mailbox_leases WHERE "
            "mailbox_id = $1 AND holder = $2 AND expires_at > now()) "
            "ON CONFLICT (mailbox_id) DO UPDATE SET uidvalidity = EXCLUDED.uidvalidity, "
            "last_uid = EXCLUDED.last_uid, updated_at = EXCLUDED.updated_at",
            uuid.UUID(mailbox_id),
            holder,
            uidvalidity,
            last_uid,
            now,
        )
        return bool(status.endswith(" 1"))

    async def set_status(
        self, mailbox_id: str, state: str, now: datetime, *, error: str = "", fetched: int = 0
    ) -> None:
        await self._pool.execute(
            "INSERT INTO mailbox_status (mailbox_id, state, last_error, last_ok_at, fetched, "
            "updated_at) VALUES ($1, $2, $3, CASE WHEN $3 = '' THEN $5::timestamptz END, $4, $5) "
            "ON CONFLICT (mailbox_id) DO UPDATE SET state = EXCLUDED.state, "
            "last_error = EXCLUDED.last_error, "
            "last_ok_at = coalesce(EXCLUDED.last_ok_at, mailbox_status.last_ok_at), "
            "fetched = mailbox_status.fetched + EXCLUDED.fetched, updated_at = EXCLUDED.updated_at",
            uuid.UUID(mailbox_id),
            state,
            error[:500],
            fetched,
            now,
        )
