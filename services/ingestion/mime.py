"""What ingestion reads out of a mail's bytes: a MailSummary for the events. Pure, no I/O.

Every mail is accepted. Whatever cannot be read is named in `parse_problems` and the rest
is still filled in; nothing here raises on bad input. (Issue 3 deepens this: the Japanese
charset ladder, attachments, the full MIME tree.)
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from datetime import UTC
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from switchboard.v1 import common_pb2, events_pb2

SNIPPET_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TAGS = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def clean(value: str) -> str:
    """One line: no CR, LF, NUL or other control characters."""
    return _SPACE.sub(" ", _CONTROL.sub(" ", value)).strip()


def _header(msg: Message, name: str, problems: list[str]) -> str:
    try:
        value = msg.get(name)
        return "" if value is None else clean(str(value))
    except Exception as exc:  # the default policy raises on some real-world headers
        problems.append(f"{name} header: {type(exc).__name__}: {clean(str(exc))[:120]}")
    raw = msg.get_all(name, failobj=[])  # fall back on the legacy decoder
    try:
        return clean(str(make_header(decode_header(str(raw[0]))))) if raw else ""
    except Exception:
        return clean(str(raw[0])) if raw else ""


def _addresses(msg: Message, name: str, problems: list[str]) -> list[common_pb2.Address]:
    values: list[str] = []
    try:
        values = [str(v) for v in msg.get_all(name, failobj=[])]
    except Exception as exc:
        problems.append(f"{name} header: {type(exc).__name__}: {clean(str(exc))[:120]}")
        try:
            values = [str(make_header(decode_header(str(v)))) for v in msg.get_all(name, [])]
        except Exception:
            return []
    out = []
    for display, addr in getaddresses(values):
        addr = clean(addr)
        if addr or display:
            out.append(common_pb2.Address(name=clean(display), address=addr))
    return out


def _text(part: Message, problems: list[str]) -> str:
    try:
        content: Any = part.get_content() if isinstance(part, EmailMessage) else None
        if isinstance(content, str):
            return content
    except Exception as exc:
        problems.append(f"body: {type(exc).__name__}: {clean(str(exc))[:120]}")
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            return payload.decode(charset, errors="replace")
        except LookupError:
            return payload.decode("utf-8", errors="replace")
    return ""


def _snippet(msg: EmailMessage, problems: list[str]) -> str:
    try:
        body = msg.get_body(preferencelist=("plain", "html"))
    except Exception as exc:
        problems.append(f"body: {type(exc).__name__}: {clean(str(exc))[:120]}")
        body = None
    if body is None:
        return ""
    text = _text(body, problems)
    if body.get_content_subtype() == "html":
        text = _TAGS.sub(" ", text)
    return clean(text)[:SNIPPET_CHARS]


def _has_attachments(msg: EmailMessage) -> bool:
    try:
        return any(True for _ in msg.iter_attachments()) if msg.is_multipart() else False
    except Exception:
        return False


def is_auto_submitted(msg: Message, sender: str) -> bool:
    """ING-7: mail that must never trigger an automatic reply."""
    auto = (msg.get("Auto-Submitted") or "").strip().lower()
    precedence = (msg.get("Precedence") or "").strip().lower()
    local = sender.split("@", 1)[0].lower()
    return (
        (auto != "" and auto != "no")
        or precedence in {"bulk", "junk", "list", "auto_reply"}
        or msg.get("X-Loop") is not None
        or msg.get("X-Autoreply") is not None
        or local in {"mailer-daemon", "postmaster"}
        or msg.get_content_type() == "multipart/report"
    )


def summarize(raw: bytes) -> events_pb2.MailSummary:
    problems: list[str] = []
    summary = events_pb2.MailSummary(size_bytes=len(raw), sha256=hashlib.sha256(raw).hexdigest())
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception as exc:  # pragma: no cover - the parser is lenient; belt and braces
        summary.parse_problems.append(f"message: {type(exc).__name__}: {exc}")
        return summary
    assert isinstance(msg, EmailMessage)
    for defect in msg.defects:
        problems.append(f"message: {type(defect).__name__}")

    summary.subject = _header(msg, "Subject", problems)
    senders = _addresses(msg, "From", problems)
    if senders:
        getattr(summary, "from").CopyFrom(senders[0])
    summary.to.extend(_addresses(msg, "To", problems))
    summary.cc.extend(_addresses(msg, "Cc", problems))
    summary.rfc822_message_id = _header(msg, "Message-ID", problems).strip("<>")
    summary.in_reply_to = _header(msg, "In-Reply-To", problems).strip("<>")
    summary.references.extend(
        r.strip("<>") for r in _header(msg, "References", problems).split() if r.strip("<>")
    )
    date_value = _header(msg, "Date", problems)
    if date_value:
        try:
            when = parsedate_to_datetime(date_value)
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            summary.date.FromDatetime(when.astimezone(UTC))
        except (TypeError, ValueError, IndexError, OverflowError):
            problems.append(f"Date header: unreadable {date_value[:60]!r}")
    summary.snippet = _snippet(msg, problems)
    summary.has_attachments = _has_attachments(msg)
    summary.auto_submitted = is_auto_submitted(msg, senders[0].address if senders else "")
    summary.parse_problems.extend(dict.fromkeys(problems))  # unique, in order
    return summary
