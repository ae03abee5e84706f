"""What composition's storage gives back: each database row converted once, at the
repository, into a frozen dataclass (one constructor call per row)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class Folder:
    id: uuid.UUID
    parent_id: uuid.UUID | None
    name: str
    created_at: datetime
    updated_at: datetime
    template_count: int  # 0 where not counted


def folder_of(r: asyncpg.Record) -> Folder:
    return Folder(
        r["id"],
        r["parent_id"],
        r["name"],
        r["created_at"],
        r["updated_at"],
        r.get("template_count", 0),
    )


@dataclass(frozen=True, slots=True)
class Template:
    """A template or a phrase."""

    tenant_id: uuid.UUID
    id: uuid.UUID
    kind: str
    folder_id: uuid.UUID | None
    name: str
    subject: str
    body_text: str
    body_html: str
    keywords: list[str]
    inbox_ids: list[uuid.UUID]
    version: int
    usage_count: int
    updated_by: uuid.UUID | None
    updated_by_name: str
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


def template_of(r: asyncpg.Record) -> Template:
    return Template(
        r["tenant_id"],
        r["id"],
        r["kind"],
        r["folder_id"],
        r["name"],
        r["subject"],
        r["body_text"],
        r["body_html"],
        r["keywords"],
        r["inbox_ids"],
        r["version"],
        r["usage_count"],
        r["updated_by"],
        r["updated_by_name"],
        r["created_at"],
        r["updated_at"],
        r["deleted_at"],
    )


@dataclass(frozen=True, slots=True)
class Signature:
    id: uuid.UUID
    inbox_id: uuid.UUID | None  # None: the tenant's default
    name: str
    body_text: str
    body_html: str
    updated_at: datetime


def signature_of(r: asyncpg.Record) -> Signature:
    return Signature(
        r["id"], r["inbox_id"], r["name"], r["body_text"], r["body_html"], r["updated_at"]
    )


@dataclass(frozen=True, slots=True)
class ComposeSettings:
    attachment_words: list[str]
    error_keywords: list[str]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Draft:
    tenant_id: uuid.UUID
    id: uuid.UUID
    ticket_id: uuid.UUID | None  # None: a new mail from an inbox alone
    inbox_id: uuid.UUID
    kind: str
    answering_message_id: uuid.UUID | None
    in_reply_to: str
    references: list[str]
    author_id: uuid.UUID
    author_name: str
    state: str
    revision: int
    created_at: datetime
    updated_at: datetime
    send_id: uuid.UUID | None
    # who last changed it (saved it, or opened it again by cancelling its send), and how:
    # created, saved, reopened
    changed_by: uuid.UUID | None
    changed_by_name: str
    changed_at: datetime | None
    change: str
    approval_request_id: uuid.UUID | None  # the approval request it is (was last) held for


def draft_of(r: asyncpg.Record) -> Draft:
    return Draft(
        r["tenant_id"],
        r["id"],
        r["ticket_id"],
        r["inbox_id"],
        r["kind"],
        r["answering_message_id"],
        r["in_reply_to"],
        r["references"],
        r["author_id"],
        r["author_name"],
        r["state"],
        r["revision"],
        r["created_at"],
        r["updated_at"],
        r["send_id"],
        r["changed_by"],
        r["changed_by_name"],
        r["changed_at"],
        r["change"],
        r["approval_request_id"],
    )


@dataclass(frozen=True, slots=True)
class Revision:
    """One saved revision of a draft's content."""

    draft_id: uuid.UUID
    revision: int
    saved_at: datetime
    saved_by: uuid.UUID
    saved_by_name: str
    fence: int | None
    from_address: str
    from_name: str
    to_addrs: list[str]
    cc_addrs: list[str]
    bcc_addrs: list[str]
    subject: str
    body_text: str
    body_html: str
    signature_text: str
    quote_text: str
    include_quote: bool
    attachment_ids: list[uuid.UUID]
    signature_html: str = ""  # the signature in an HTML mail ("": signature_text, escaped)


def revision_of(r: asyncpg.Record) -> Revision:
    return Revision(
        r["draft_id"],
        r["revision"],
        r["saved_at"],
        r["saved_by"],
        r["saved_by_name"],
        r["fence"],
        r["from_address"],
        r["from_name"],
        r["to_addrs"],
        r["cc_addrs"],
        r["bcc_addrs"],
        r["subject"],
        r["body_text"],
        r["body_html"],
        r["signature_text"],
        r["quote_text"],
        r["include_quote"],
        r["attachment_ids"],
        r["signature_html"],
    )


@dataclass(frozen=True, slots=True)
class Saved:
    """Who saved a revision of a draft, and when."""

    revision: int
    saved_at: datetime
    saved_by: uuid.UUID
    saved_by_name: str


@dataclass(frozen=True, slots=True)
class Attachment:
    """An attachment of a draft (its bytes are a blob, by SHA-256)."""

    id: uuid.UUID
    draft_id: uuid.UUID
    sha256: bytes
    filename: str
    content_type: str
    size: int
    inline: bool
    content_id: str
    source: str
    created_at: datetime


def attachment_of(r: asyncpg.Record) -> Attachment:
    return Attachment(
        r["id"],
        r["draft_id"],
        bytes(r["sha256"]),
        r["filename"],
        r["content_type"],
        r["size"],
        r["inline"],
        r["content_id"],
        r["source"],
        r["created_at"],
    )
