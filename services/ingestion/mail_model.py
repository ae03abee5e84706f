"""The parsed mail (ingestion's parser, services/ingestion/parser.py): its limits and
the shapes it fills in. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MiB = 1024 * 1024
SNIPPET_CHARS = 200
SEARCH_CHARS = 20_000  # of the text body, for tickets' keyword search (TKT-10)
_MAX_DEFECTS = 100
_MAX_ADDRESSES = 1000
_MAX_REFERENCES = 500
_MAX_DSN = 200
_DSN_BYTES = 1 * MiB
_RECURSION_CAP = 200  # max_depth is clamped to this: the walk recurses once per level


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 50 * MiB  # above: only the top header block is read
    max_parts: int = 1000  # MIME entities walked (containers included)
    max_depth: int = 20  # nested multiparts
    max_decoded_bytes: int = 100 * MiB  # decoded part content, all parts together
    max_attachments: int = 500  # attachments listed (the rest are counted)
    max_header_bytes: int = 1 * MiB  # per header block
    max_body_chars: int = 2_000_000  # text and HTML bodies are cut beyond this


@dataclass(frozen=True)
class Address:
    name: str
    address: str  # "" when the text is not a valid address
    raw: str  # the source text of this address (encoded words as sent), one line
    valid: bool

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "address": self.address, "raw": self.raw, "valid": self.valid}


@dataclass(frozen=True)
class Attachment:
    index: int
    filename: str
    content_type: str
    size: int  # decoded bytes
    sha256: str  # of the decoded bytes
    disposition: str  # "inline" or "attachment"
    content_id: str  # without <>
    is_winmail: bool
    part: str  # MIME part path ("0" is the whole message, "1.2" the 2nd part of the 1st)
    decoded: bool = True  # False when a limit stopped decoding: size/sha256 are then empty
    data: bytes = field(default=b"", repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
            "disposition": self.disposition,
            "content_id": self.content_id,
            "is_winmail": self.is_winmail,
            "part": self.part,
            "decoded": self.decoded,
        }


@dataclass(frozen=True)
class DsnRecipient:
    final_recipient: str
    original_recipient: str
    action: str
    status: str
    diagnostic: str

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "action": self.action,
            "final_recipient": self.final_recipient,
            "original_recipient": self.original_recipient,
            "diagnostic": self.diagnostic,
        }


@dataclass(frozen=True)
class SpamVerdict:
    flagged: bool = False
    score: float | None = None
    source: str = ""  # the headers read, e.g. "X-Spam-Status: Yes"

    def to_json(self) -> dict[str, Any]:
        return {"flagged": self.flagged, "score": self.score, "source": self.source}


@dataclass(frozen=True)
class PartInfo:
    path: str
    content_type: str
    size: int  # encoded body bytes
    role: str  # container, text, html, attachment, skipped
    charset: str  # declared
    charset_used: str  # for the text and HTML bodies: the codec that decoded them

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "content_type": self.content_type,
            "size": self.size,
            "role": self.role,
            "charset": self.charset,
            "charset_used": self.charset_used,
        }


@dataclass(frozen=True)
class ParsedMail:
    """The parse of one mail. `to_json()` gives the same fields as plain JSON values, with
    `from_` as "from", addresses/attachments/parts/dsn/spam as dicts, and no attachment
    bytes (those are in `attachments[i].data`) — and no `auth_results`: they become the
    summary's sender verdict (`sender_auth`) and are not shown, as they name domains
    that the masking of addresses would not hide."""

    size: int
    sha256: str
    parsed_ok: bool
    defects: list[str]
    message_id: str = ""
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    subject: str = ""
    date: str | None = None  # UTC, ISO-8601
    from_: list[Address] = field(default_factory=list)
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    reply_to: list[Address] = field(default_factory=list)
    sender: list[Address] = field(default_factory=list)
    text: str = ""
    text_charset: str = ""
    html: str = ""  # sanitised
    # With `defer_html`: the HTML body was not sanitised (sanitize.can_wait), `html` is empty
    html_deferred: bool = False
    html_charset: str = ""
    html_raw_size: int = 0  # decoded bytes of the HTML part before sanitising
    remote_images: int = 0
    inline_images: dict[str, int] = field(default_factory=dict)  # cid → attachment index
    attachments: list[Attachment] = field(default_factory=list)
    attachment_count: int = 0  # including those beyond the listing cap
    parts: list[PartInfo] = field(default_factory=list)
    auto_submitted: bool = False
    auto_reasons: list[str] = field(default_factory=list)
    dsn: list[DsnRecipient] = field(default_factory=list)
    spam: SpamVerdict = field(default_factory=SpamVerdict)
    # a bounce's returned mail (message/rfc822 or text/rfc822-headers): its Message-ID
    dsn_message_id: str = ""
    # the Authentication-Results header values, from the top (authresults.py reads them)
    auth_results: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain str/int/float/bool/None/list/dict only; attachment bytes left out."""
        return {
            "size": self.size,
            "sha256": self.sha256,
            "parsed_ok": self.parsed_ok,
            "defects": list(self.defects),
            "message_id": self.message_id,
            "in_reply_to": self.in_reply_to,
            "references": list(self.references),
            "subject": self.subject,
            "date": self.date,
            "from": [a.to_json() for a in self.from_],
            "to": [a.to_json() for a in self.to],
            "cc": [a.to_json() for a in self.cc],
            "reply_to": [a.to_json() for a in self.reply_to],
            "sender": [a.to_json() for a in self.sender],
            "text": self.text,
            "text_charset": self.text_charset,
            "html": self.html,
            "html_charset": self.html_charset,
            "html_raw_size": self.html_raw_size,
            "remote_images": self.remote_images,
            "inline_images": dict(self.inline_images),
            "attachments": [a.to_json() for a in self.attachments],
            "attachment_count": self.attachment_count,
            "parts": [p.to_json() for p in self.parts],
            "auto_submitted": self.auto_submitted,
            "auto_reasons": list(self.auto_reasons),
            "dsn": [d.to_json() for d in self.dsn],
            "dsn_message_id": self.dsn_message_id,
            "spam": self.spam.to_json(),
        }
