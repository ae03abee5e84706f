"""composition's storage (its own database). Every query names the tenant."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from services.runtime.errors import AlreadyExists, FailedPrecondition, NotFound
from services.runtime.identity import Identity

from .records import (
    Attachment,
    ComposeSettings,
    Draft,
    Folder,
    Revision,
    Saved,
    Signature,
    Template,
    attachment_of,
    draft_of,
    folder_of,
    revision_of,
    signature_of,
    template_of,
)

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


def _u(value: str) -> uuid.UUID:
    return uuid.UUID(value)


class ComposeRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    # -- folders -----------------------------------------------------------------------

    async def folders(self, tenant_id: str) -> list[Folder]:
        return [
            folder_of(r)
            for r in await self._pool.fetch(
                "SELECT f.*, (SELECT count(*) FROM templates t WHERE t.tenant_id = f.tenant_id "
                "AND t.folder_id = f.id AND t.deleted_at IS NULL) AS template_count "
                "FROM folders f WHERE f.tenant_id = $1 ORDER BY lower(f.name), f.id",
                _u(tenant_id),
            )
        ]

    async def folder(self, conn: Conn, tenant_id: str, folder_id: uuid.UUID) -> Folder:
        row = await conn.fetchrow(
            "SELECT * FROM folders WHERE tenant_id = $1 AND id = $2", _u(tenant_id), folder_id
        )
        if row is None:
            raise NotFound("no such folder", field="folder_id")
        return folder_of(row)

    async def ancestors(self, conn: Conn, tenant_id: str, folder_id: uuid.UUID) -> list[uuid.UUID]:
        """The folder and every folder above it (to refuse moving a folder into itself)."""
        rows = await conn.fetch(
            "WITH RECURSIVE up AS (SELECT id, parent_id, 1 AS depth FROM folders "
            "WHERE tenant_id = $1 AND id = $2 UNION ALL SELECT f.id, f.parent_id, up.depth + 1 "
            "FROM folders f JOIN up ON f.id = up.parent_id WHERE f.tenant_id = $1 "
            "AND up.depth < 50) SELECT id FROM up",
            _u(tenant_id),
            folder_id,
        )
        return [r["id"] for r in rows]

    async def put_folder(
        self,
        conn: Conn,
        *,
        tenant_id: str,
        folder_id: uuid.UUID,
        parent_id: uuid.UUID | None,
        name: str,
        now: datetime,
        new: bool,
    ) -> None:
        try:
            if new:
                await conn.execute(
                    "INSERT INTO folders (tenant_id, id, parent_id, name, created_at, updated_at) "
                    "VALUES ($1,$2,$3,$4,$5,$5)",
                    _u(tenant_id),
                    folder_id,
                    parent_id,
                    name,
                    now,
                )
            else:
                await conn.execute(
                    "UPDATE folders SET parent_id = $3, name = $4, updated_at = $5 "
                    "WHERE tenant_id = $1 AND id = $2",
                    _u(tenant_id),
                    folder_id,
                    parent_id,
                    name,
                    now,
                )
        except asyncpg.UniqueViolationError:
            raise AlreadyExists("a folder of this name is already there", field="name") from None

    async def delete_folder(self, tenant_id: str, folder_id: uuid.UUID) -> None:
        tenant = _u(tenant_id)
        async with self._pool.acquire() as conn, conn.transaction():
            await self.folder(conn, tenant_id, folder_id)
            busy = await conn.fetchval(
                "SELECT (SELECT count(*) FROM templates WHERE tenant_id = $1 AND folder_id = $2 "
                "AND deleted_at IS NULL) + (SELECT count(*) FROM folders WHERE tenant_id = $1 "
                "AND parent_id = $2)",
                tenant,
                folder_id,
            )
            if busy:
                raise FailedPrecondition("the folder is not empty", field="folder_id")
            await conn.execute(
                "UPDATE templates SET folder_id = NULL WHERE tenant_id = $1 AND folder_id = $2",
                tenant,
                folder_id,
            )
            await conn.execute(
                "DELETE FROM folders WHERE tenant_id = $1 AND id = $2", tenant, folder_id
            )

    # -- templates ---------------------------------------------------------------------

    async def templates(
        self,
        tenant_id: str,
        *,
        kind: str | None,
        folder: uuid.UUID | None,
        root_only: bool,
        like: str | None,
        inboxes: Sequence[str] | None,
        inbox: uuid.UUID | None,
        limit: int = 2000,
    ) -> list[Template]:
        """Live templates the caller may use: tenant-wide ones, and those of `inboxes`
        (None: every inbox)."""
        return [
            template_of(r)
            for r in await self._pool.fetch(
                "SELECT * FROM templates WHERE tenant_id = $1 AND deleted_at IS NULL "
                "AND ($2::text IS NULL OR kind = $2) "
                "AND ($3::uuid IS NULL OR folder_id = $3) AND (NOT $4 OR folder_id IS NULL) "
                "AND ($5::text IS NULL OR search_text LIKE $5) "
                "AND (inbox_ids = '{}' OR $6::uuid[] IS NULL OR inbox_ids && $6::uuid[]) "
                "AND ($7::uuid IS NULL OR inbox_ids = '{}' OR $7 = ANY(inbox_ids)) "
                "ORDER BY kind, lower(name), id LIMIT $8",
                _u(tenant_id),
                kind,
                folder,
                root_only,
                like,
                None if inboxes is None else [_u(i) for i in inboxes],
                inbox,
                limit,
            )
        ]

    async def template(self, conn: Conn, tenant_id: str, template_id: uuid.UUID) -> Template:
        row = await conn.fetchrow(
            "SELECT * FROM templates WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
            _u(tenant_id),
            template_id,
        )
        if row is None:
            raise NotFound("no such template", field="template_id")
        return template_of(row)

    async def insert_template(self, conn: Conn, values: dict[str, Any]) -> Template:
        cols = list(values)
        row = await conn.fetchrow(
            f"INSERT INTO templates ({', '.join(cols)}) "
            f"VALUES ({', '.join(f'${i + 1}' for i in range(len(cols)))}) RETURNING *",
            *[values[c] for c in cols],
        )
        return template_of(row)

    async def update_template(
        self,
        conn: Conn,
        tenant_id: str,
        template_id: uuid.UUID,
        values: dict[str, Any],
        expected_version: int,
    ) -> Template:
        cols = list(values)
        sets = ", ".join(f"{c} = ${i + 4}" for i, c in enumerate(cols))
        row = await conn.fetchrow(
            f"UPDATE templates SET {sets}, version = version + 1 WHERE tenant_id = $1 AND id = $2 "
            "AND deleted_at IS NULL AND ($3 = 0 OR version = $3) RETURNING *",
            _u(tenant_id),
            template_id,
            expected_version,
            *[values[c] for c in cols],
        )
        if row is None:
            await self.template(conn, tenant_id, template_id)  # NotFound, or:
            raise FailedPrecondition(
                "the template was saved by someone else meanwhile; reload it",
                field="expected_version",
            )
        return template_of(row)

    async def delete_template(
        self, conn: Conn, tenant_id: str, template_id: uuid.UUID, now: datetime
    ) -> Template:
        row = await conn.fetchrow(
            "UPDATE templates SET deleted_at = $3 WHERE tenant_id = $1 AND id = $2 "
            "AND deleted_at IS NULL RETURNING *",
            _u(tenant_id),
            template_id,
            now,
        )
        if row is None:
            raise NotFound("no such template", field="template_id")
        return template_of(row)

    async def count_use(self, tenant_id: str, template_id: uuid.UUID) -> None:
        await self._pool.execute(
            "UPDATE templates SET usage_count = usage_count + 1 WHERE tenant_id = $1 AND id = $2",
            _u(tenant_id),
            template_id,
        )

    # -- signatures and settings -------------------------------------------------------

    async def signatures(self, tenant_id: str) -> list[Signature]:
        return [
            signature_of(r)
            for r in await self._pool.fetch(
                "SELECT * FROM signatures WHERE tenant_id = $1 ORDER BY inbox_id NULLS FIRST",
                _u(tenant_id),
            )
        ]

    async def signature_for(self, tenant_id: str, inbox_id: uuid.UUID) -> Signature | None:
        """The inbox's signature, or else the tenant's default, or None."""
        row = await self._pool.fetchrow(
            "SELECT * FROM signatures WHERE tenant_id = $1 AND (inbox_id = $2 OR inbox_id IS NULL) "
            "ORDER BY inbox_id NULLS LAST LIMIT 1",
            _u(tenant_id),
            inbox_id,
        )
        return None if row is None else signature_of(row)

    async def put_signature(
        self,
        *,
        tenant_id: str,
        signature_id: uuid.UUID,
        inbox_id: uuid.UUID | None,
        name: str,
        body_text: str,
        body_html: str,
        now: datetime,
    ) -> Signature:
        row = await self._pool.fetchrow(
            "INSERT INTO signatures (tenant_id, id, inbox_id, name, body_text, body_html, "
            "updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (tenant_id, "
            "coalesce(inbox_id, '00000000-0000-0000-0000-000000000000')) DO UPDATE SET "
            "name = EXCLUDED.name, body_text = EXCLUDED.body_text, "
            "body_html = EXCLUDED.body_html, updated_at = EXCLUDED.updated_at RETURNING *",
            _u(tenant_id),
            signature_id,
            inbox_id,
            name,
            body_text,
            body_html,
            now,
        )
        return signature_of(row)

    async def delete_signature(self, tenant_id: str, signature_id: uuid.UUID) -> Signature:
        row = await self._pool.fetchrow(
            "DELETE FROM signatures WHERE tenant_id = $1 AND id = $2 RETURNING *",
            _u(tenant_id),
            signature_id,
        )
        if row is None:
            raise NotFound("no such signature", field="signature_id")
        return signature_of(row)

    async def settings(self, tenant_id: str) -> ComposeSettings | None:
        row = await self._pool.fetchrow(
            "SELECT * FROM compose_settings WHERE tenant_id = $1", _u(tenant_id)
        )
        if row is None:
            return None
        return ComposeSettings(row["attachment_words"], row["error_keywords"], row["updated_at"])

    async def put_settings(
        self, tenant_id: str, attachment_words: list[str], error_keywords: list[str], now: datetime
    ) -> None:
        await self._pool.execute(
            "INSERT INTO compose_settings (tenant_id, attachment_words, error_keywords, "
            "updated_at) VALUES ($1,$2,$3,$4) ON CONFLICT (tenant_id) DO UPDATE SET "
            "attachment_words = EXCLUDED.attachment_words, "
            "error_keywords = EXCLUDED.error_keywords, updated_at = EXCLUDED.updated_at",
            _u(tenant_id),
            attachment_words,
            error_keywords,
            now,
        )

    # -- drafts ------------------------------------------------------------------------

    async def draft(
        self, conn: Conn, tenant_id: str, draft_id: uuid.UUID, *, for_update: bool = False
    ) -> Draft:
        row = await conn.fetchrow(
            "SELECT * FROM drafts WHERE tenant_id = $1 AND id = $2"
            + (" FOR UPDATE" if for_update else ""),
            _u(tenant_id),
            draft_id,
        )
        if row is None:
            raise NotFound("no such draft", field="draft_id")
        return draft_of(row)

    async def drafts_of(self, tenant_id: str, ticket_id: uuid.UUID) -> list[Draft]:
        return [
            draft_of(r)
            for r in await self._pool.fetch(
                "SELECT * FROM drafts WHERE tenant_id = $1 AND ticket_id = $2 "
                "AND state IN ('open', 'in_approval') "
                "ORDER BY updated_at DESC LIMIT 100",
                _u(tenant_id),
                ticket_id,
            )
        ]

    async def insert_draft(self, conn: Conn, values: dict[str, Any]) -> None:
        cols = list(values)
        await conn.execute(
            f"INSERT INTO drafts ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in cols)}) "
            f"VALUES ({', '.join(f'${i + 1}' for i in range(len(cols)))})",
            *[values[c] for c in cols],
        )

    async def insert_revision(self, conn: Conn, values: dict[str, Any]) -> None:
        cols = list(values)
        await conn.execute(
            f"INSERT INTO draft_revisions ({', '.join(cols)}) "
            f"VALUES ({', '.join(f'${i + 1}' for i in range(len(cols)))})",
            *[values[c] for c in cols],
        )
        await conn.execute(
            "UPDATE drafts SET revision = $3, updated_at = $4, changed_by = $5, "
            "changed_by_name = $6, changed_at = $4, "
            "change = CASE WHEN $3 = 1 THEN 'created' ELSE 'saved' END "
            "WHERE tenant_id = $1 AND id = $2",
            values["tenant_id"],
            values["draft_id"],
            values["revision"],
            values["saved_at"],
            values["saved_by"],
            values["saved_by_name"],
        )

    async def revision(
        self, conn: Conn, tenant_id: str, draft_id: uuid.UUID, revision: int
    ) -> Revision:
        row = await conn.fetchrow(
            "SELECT * FROM draft_revisions WHERE tenant_id = $1 AND draft_id = $2 "
            "AND revision = $3",
            _u(tenant_id),
            draft_id,
            revision,
        )
        if row is None:
            raise NotFound("no such revision", field="revision")
        return revision_of(row)

    async def revisions(self, tenant_id: str, draft_id: uuid.UUID) -> list[Saved]:
        """Who saved each revision of the draft, and when."""
        return [
            Saved(r["revision"], r["saved_at"], r["saved_by"], r["saved_by_name"])
            for r in await self._pool.fetch(
                "SELECT revision, saved_at, saved_by, saved_by_name FROM draft_revisions "
                "WHERE tenant_id = $1 AND draft_id = $2 ORDER BY revision",
                _u(tenant_id),
                draft_id,
            )
        ]

    async def changed(
        self,
        conn: Conn,
        tenant_id: str,
        draft_id: uuid.UUID,
        by: Identity,
        change: str,
        now: datetime,
    ) -> None:
        """Who changed the draft last, other than by saving it (`reopened`)."""
        await conn.execute(
            "UPDATE drafts SET changed_by = $3, changed_by_name = $4, changed_at = $5, "
            "change = $6 WHERE tenant_id = $1 AND id = $2",
            _u(tenant_id),
            draft_id,
            uuid.UUID(by.operator_id),
            by.display_name,
            now,
            change,
        )

    async def set_hold(
        self,
        conn: Conn,
        tenant_id: str,
        draft_id: uuid.UUID,
        state: str,
        request_id: uuid.UUID,
        now: datetime,
    ) -> Draft:
        """Held for an approval request (`in_approval`) or released (`open`)."""
        row = await conn.fetchrow(
            "UPDATE drafts SET state = $3, approval_request_id = $4, updated_at = $5 "
            "WHERE tenant_id = $1 AND id = $2 RETURNING *",
            _u(tenant_id),
            draft_id,
            state,
            request_id,
            now,
        )
        return draft_of(row)

    async def set_state(
        self, conn: Conn, tenant_id: str, draft_id: uuid.UUID, state: str, now: datetime
    ) -> None:
        await conn.execute(
            "UPDATE drafts SET state = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
            _u(tenant_id),
            draft_id,
            state,
            now,
        )

    # -- attachments -------------------------------------------------------------------

    async def add_attachment(
        self,
        conn: Conn,
        *,
        tenant_id: str,
        attachment_id: uuid.UUID,
        draft_id: uuid.UUID,
        filename: str,
        content_type: str,
        data: bytes,
        inline: bool,
        content_id: str,
        source: str,
        now: datetime,
    ) -> Attachment:
        sha = hashlib.sha256(data).digest()
        await conn.execute(
            "INSERT INTO blobs (sha256, size, data) VALUES ($1,$2,$3) ON CONFLICT DO NOTHING",
            sha,
            len(data),
            data,
        )
        row = await conn.fetchrow(
            "INSERT INTO draft_attachments (tenant_id, id, draft_id, sha256, filename, "
            "content_type, size, inline, content_id, source, created_at) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) RETURNING *",
            _u(tenant_id),
            attachment_id,
            draft_id,
            sha,
            filename,
            content_type,
            len(data),
            inline,
            content_id,
            source,
            now,
        )
        return attachment_of(row)

    async def attachments(
        self, conn: Conn, tenant_id: str, draft_id: uuid.UUID, ids: Sequence[uuid.UUID]
    ) -> list[Attachment]:
        """These attachments of the draft, in the order given (unknown ids: NotFound)."""
        rows = await conn.fetch(
            "SELECT * FROM draft_attachments WHERE tenant_id = $1 AND draft_id = $2 "
            "AND id = ANY($3::uuid[])",
            _u(tenant_id),
            draft_id,
            list(ids),
        )
        by_id = {r["id"]: attachment_of(r) for r in rows}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise NotFound(f"no such attachment {missing[0]} on this draft", field="attachment_ids")
        return [by_id[i] for i in ids]

    async def attachment_data(
        self, tenant_id: str, draft_id: uuid.UUID, attachment_id: uuid.UUID
    ) -> tuple[Attachment, bytes]:
        row = await self._pool.fetchrow(
            "SELECT a.*, b.data FROM draft_attachments a JOIN blobs b ON b.sha256 = a.sha256 "
            "WHERE a.tenant_id = $1 AND a.draft_id = $2 AND a.id = $3",
            _u(tenant_id),
            draft_id,
            attachment_id,
        )
        if row is None:
            raise NotFound("no such attachment", field="attachment_id")
        return attachment_of(row), bytes(row["data"])

    async def blobs(self, shas: Sequence[bytes]) -> dict[bytes, bytes]:
        rows = await self._pool.fetch(
            "SELECT sha256, data FROM blobs WHERE sha256 = ANY($1::bytea[])", list(shas)
        )
        return {bytes(r["sha256"]): bytes(r["data"]) for r in rows}
