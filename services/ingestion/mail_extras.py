"""Attachments, delivery status notifications (RFC 3464), automatic mail (ING-7) and spam
verdicts for the parser (parser.py). Pure."""

from __future__ import annotations

import hashlib
import re

from services.ingestion.charsets import (
    clean,
    decode_8bit,
)
from services.ingestion.mail_fields import (
    _MSGID,
    _header_text,
)
from services.ingestion.mail_model import (
    _MAX_DSN,
    Address,
    Attachment,
    DsnRecipient,
    SpamVerdict,
)
from services.ingestion.mime_headers import (
    _Headers,
    _param_text,
    _parse_header_block,
    _State,
)
from services.ingestion.mime_tree import (
    _Part,
    _payload,
)

# --- attachments ----------------------------------------------------------------------------

_EXTENSIONS = {
    "text/plain": "txt",
    "text/html": "html",
    "text/calendar": "ics",
    "text/csv": "csv",
    "text/xml": "xml",
    "text/rfc822-headers": "txt",
    "text/x-vcard": "vcf",
    "text/vcard": "vcf",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/pjpeg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/bmp": "bmp",
    "image/tiff": "tif",
    "image/svg+xml": "svg",
    "image/heic": "heic",
    "audio/mpeg": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "video/mp4": "mp4",
    "application/pdf": "pdf",
    "application/zip": "zip",
    "application/x-zip-compressed": "zip",
    "application/gzip": "gz",
    "application/x-bzip2": "bz2",
    "application/json": "json",
    "application/xml": "xml",
    "application/msword": "doc",
    "application/vnd.ms-excel": "xls",
    "application/vnd.ms-powerpoint": "ppt",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/ms-tnef": "dat",
    "application/vnd.ms-tnef": "dat",
    "application/pkcs7-signature": "p7s",
    "application/x-pkcs7-signature": "p7s",
    "application/pkcs7-mime": "p7m",
    "application/pgp-signature": "asc",
    "application/pgp-encrypted": "asc",
    "application/ics": "ics",
    "message/rfc822": "eml",
    "message/global": "eml",
    "message/delivery-status": "txt",
    "message/disposition-notification": "txt",
    "message/feedback-report": "txt",
}
_FILENAME_BAD = re.compile(r'[<>:"|?*]')


def _safe_filename(name: str, from_subject: bool = False) -> str:
    """A file name to offer for download: no directories (the last path segment, or for a
    name made from a Subject the separators replaced), no control or bidi characters, no
    characters Windows refuses, no leading dots, at most 200 characters."""
    name = clean(name)
    name = (
        name.replace("/", "_").replace("\\", "_") if from_subject else re.split(r"[/\\]", name)[-1]
    )
    name = _FILENAME_BAD.sub("_", name).strip(" .")
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:190] + "." + ext[:9]) if dot and len(ext) <= 9 else name[:200]
    return name


def _content_id(part: _Part) -> str:
    raw = part.headers.first("content-id")
    if raw is None:
        return ""
    text = clean(decode_8bit(raw, []))
    m = _MSGID.search(text)
    return clean(m.group(1) if m else text.strip("<> "))[:300]


def _embedded_subject(data: bytes, st: _State) -> str:
    scratch = _State(st.limits)
    fields, _, _ = _parse_header_block(data, 0, len(data), scratch, "embedded message", quiet=True)
    return _header_text(_Headers(fields), "subject", "Subject", scratch, None)


def _attachment(part: _Part, index: int, st: _State, hint: str | None) -> Attachment:
    what = f"{part.label} file name"
    filename = ""
    for params, key in ((part.dparams, "filename"), (part.params, "name")):
        p = params.get(key)
        if p is not None:
            filename = _safe_filename(_param_text(p, st, what, hint))
            if filename:
                break
    data = _payload(part, st)
    if not filename and part.ctype in ("message/rfc822", "message/global") and data:
        subject = _safe_filename(_embedded_subject(data, st), from_subject=True)[:100]
        filename = f"{subject}.eml" if subject else ""
    if not filename:
        filename = f"attachment-{index + 1}.{_EXTENSIONS.get(part.ctype, 'bin')}"
    winmail = part.ctype in ("application/ms-tnef", "application/vnd.ms-tnef") or (
        filename.lower() == "winmail.dat"
    )
    return Attachment(
        index=index,
        filename=filename,
        content_type=part.ctype,
        size=len(data) if data is not None else 0,
        sha256=hashlib.sha256(data).hexdigest() if data is not None else "",
        disposition=part.disposition or "attachment",
        content_id=_content_id(part),
        is_winmail=winmail,
        part=part.path or "0",
        decoded=data is not None,
        data=data or b"",
    )


# --- DSN (RFC 3464) -------------------------------------------------------------------------

_STATUS = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b")
_TYPED = re.compile(r"^\s*[A-Za-z0-9-]{1,20}\s*;\s*")


def _dsn(data: bytes, st: _State) -> list[DsnRecipient]:
    out: list[DsnRecipient] = []
    scratch = _State(st.limits)
    pos, n = 0, len(data)
    while pos < n and len(out) < _MAX_DSN:
        fields, body, _ = _parse_header_block(data, pos, n, scratch, "dsn", quiet=True)
        if body <= pos:
            nl = data.find(b"\n", pos)
            body = n if nl < 0 else nl + 1
        pos = body
        h = _Headers(fields)
        if not any(h.has(k) for k in ("final-recipient", "original-recipient", "action", "status")):
            continue

        def val(name: str, h: _Headers = h) -> str:
            raw = h.first(name)
            return "" if raw is None else clean(decode_8bit(raw, []))[:1000]

        status = val("status")
        m = _STATUS.search(status)
        out.append(
            DsnRecipient(
                final_recipient=_TYPED.sub("", val("final-recipient")).strip("<> "),
                original_recipient=_TYPED.sub("", val("original-recipient")).strip("<> "),
                action=val("action").lower(),
                status=m.group(0) if m else status[:40],
                diagnostic=_TYPED.sub("", val("diagnostic-code")),
            )
        )
    return out


_RETURNED_TYPES = (
    "message/rfc822",
    "text/rfc822-headers",
    "message/rfc822-headers",
    "message/global",
    "message/global-headers",
)
_MSGID_LINE = re.compile(rb"(?im)^message-id:[ \t]*<([^<>\r\n]{1,900})>")


def _returned_message_id(part: _Part, st: _State) -> str:
    """The Message-ID in the header block of the mail a bounce returns (first 64 KiB)."""
    try:
        if part.children or part.cte in ("7bit", "8bit", "binary", ""):
            data = part.buf[part.body_start : min(part.end, part.body_start + 65536)]
        else:
            data = (_payload(part, st) or b"")[:65536]
        blank = min(
            (i for i in (data.find(b"\n\n"), data.find(b"\r\n\r\n")) if i >= 0), default=len(data)
        )
        m = _MSGID_LINE.search(data[: blank + 1])
        return m.group(1).decode("ascii", "replace").strip() if m else ""
    except Exception:  # a damaged returned part: no id, the bounce is still filed
        return ""


# --- automatic mail and spam ----------------------------------------------------------------

_DAEMONS = {"mailer-daemon", "postmaster", "mailer_daemon", "mailerdaemon"}
_ANGLE = re.compile(r"<([^<>]*)>")


def _is_daemon(address: str) -> bool:
    return address.rsplit("@", 1)[0].strip().strip('"').lower() in _DAEMONS


def _auto(
    headers: _Headers,
    ctype: str,
    senders: list[Address],
    envelope: bytes | None,
) -> list[str]:
    reasons: list[str] = []

    def val(name: str) -> str:
        return headers.token(name)

    auto = val("auto-submitted").split(";", 1)[0].strip().lower()
    if headers.has("auto-submitted") and auto != "no":
        reasons.append(f"Auto-Submitted: {auto[:40] or '(empty)'}")
    precedence = val("precedence").lower()
    if precedence in {"bulk", "junk", "list", "auto_reply"}:
        reasons.append(f"Precedence: {precedence}")
    if headers.has("x-loop"):
        reasons.append("X-Loop")
    suppress = val("x-auto-response-suppress")
    if headers.has("x-auto-response-suppress") and suppress.lower() not in ("none", ""):
        reasons.append(f"X-Auto-Response-Suppress: {suppress[:40]}")
    for name, label in (("list-id", "List-Id"), ("list-unsubscribe", "List-Unsubscribe")):
        if headers.has(name):
            reasons.append(label)
    for name, label in (
        ("x-autoreply", "X-Autoreply"),
        ("x-autorespond", "X-Autorespond"),
        ("x-autogenerated", "X-Autogenerated"),
    ):
        if headers.has(name) and val(name).lower() not in ("no", "false", "0"):
            reasons.append(label)
    for a in senders:
        if _is_daemon(a.address or a.raw):
            reasons.append(f"sender {a.address or a.raw}"[:80])
            break
    return_path = headers.first("return-path")
    if return_path is not None:
        text = clean(return_path.decode("latin-1"))
        m = _ANGLE.search(text)
        inner = (m.group(1) if m else text).strip()
        if not inner:
            reasons.append("Return-Path: <> (a bounce)")
        elif _is_daemon(inner):
            reasons.append(f"Return-Path: {inner[:60]}")
    for name in ("x-envelope-from", "envelope-from"):
        text = val(name)
        m = _ANGLE.search(text)
        if text and _is_daemon((m.group(1) if m else text.split()[0]).strip()):
            reasons.append(f"{name.title()}: {text[:60]}")
    if envelope is not None:
        sender = clean(envelope.decode("latin-1")).split(" ", 1)[0]
        if _is_daemon(sender):
            reasons.append(f"envelope sender {sender[:60]}")
    if ctype in ("multipart/report", "message/delivery-status"):
        reasons.append(f"Content-Type: {ctype}")
    return list(dict.fromkeys(reasons))


_SCORE = re.compile(r"\b(?:score|hits)\s*=\s*(-?\d{1,4}(?:\.\d{1,4})?)", re.I)
_NUMBER = re.compile(r"\s*(-?\d{1,4}(?:\.\d{1,4})?)")
_SCL = re.compile(r"(?:^|[;\s])SCL\s*:\s*(-?\d{1,2})", re.I)
_DMARC_FAIL = re.compile(
    r"\bdmarc\s*=\s*fail\b[^;]*?\baction\s*=\s*(o?reject|quarantine|pct\.quarantine)", re.I
)


def _spam(headers: _Headers) -> SpamVerdict:
    flagged = False
    score: float | None = None
    sources: list[str] = []

    def values(name: str) -> list[str]:
        return [clean(v[:4096].decode("latin-1")) for v in headers.all(name)[:20]]

    for v in values("x-spam-flag"):
        yes = v.lower().startswith("yes")
        flagged |= yes
        sources.append(f"X-Spam-Flag: {'YES' if yes else v[:10]}")
    for v in values("x-spam-status"):
        yes = v.lower().startswith("yes")
        flagged |= yes
        m = _SCORE.search(v)
        if m and score is None:
            score = float(m.group(1))
        sources.append(f"X-Spam-Status: {'Yes' if yes else v.split(',', 1)[0][:10]}")
    for v in values("x-spam"):
        if v.lower().startswith("yes"):
            flagged = True
            sources.append("X-Spam: Yes")
    for v in values("x-spam-score"):
        m = _NUMBER.match(v)
        if m and score is None:
            score = float(m.group(1))
            sources.append(f"X-Spam-Score: {m.group(1)}")
    scl_values = [f"SCL:{v}" for v in values("x-ms-exchange-organization-scl")]
    scl_values += values("x-forefront-antispam-report")
    for v in scl_values:
        m = _SCL.search(v)
        if m:
            scl = int(m.group(1))
            flagged |= scl >= 5
            sources.append(f"SCL {scl}")
    for v in values("authentication-results"):
        m = _DMARC_FAIL.search(v)
        if m:
            flagged = True
            sources.append(f"Authentication-Results: dmarc=fail action={m.group(1).lower()}")
    return SpamVerdict(flagged=flagged, score=score, source=", ".join(dict.fromkeys(sources)))
