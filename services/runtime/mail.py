"""Outgoing mail, free of I/O (CMP-5, CMP-6, OUT-1): strict address parsing, header values
that can carry no CR, LF or NUL whatever the path, and the exact MIME message — shared by
composition (a draft's preview, and the bytes outbound sends) and outbound (automatic
acknowledgements).

Python's email generator folds and encodes headers, but a value with a line break slips
through some paths (a raw `str` header, an address display name): every value that goes
into a header is checked here, before the message object exists, and refused.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from services.runtime.errors import InvalidArgument

MAX_RECIPIENTS = 100
MAX_SUBJECT = 998
MAX_NAME = 200
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_FORBIDDEN = ("\r", "\n", "\0")
_HEADER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,75}$")
_OWN_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    }
)


@dataclass(frozen=True)
class Mailbox:
    name: str
    address: str

    def header(self) -> str:
        return str(Address(display_name=self.name, addr_spec=self.address))

    def __str__(self) -> str:
        return f"{self.name} <{self.address}>" if self.name else self.address


def check_header_value(value: str, field_name: str) -> str:
    """A header value: no CR, LF, NUL or other control character, ever."""
    if any(c in value for c in _FORBIDDEN) or any(
        unicodedata.category(c) == "Cc" and c != "\t" for c in value
    ):
        raise InvalidArgument(
            f"{field_name} must not contain line breaks or control characters", field=field_name
        )
    return value


def parse_address(text: str, field_name: str) -> Mailbox:
    """`Name <local@domain>` or `local@domain`, strictly: a dot-atom local part (no quoted
    forms, no comments), a domain of valid labels (international domains as punycode),
    one address per entry."""
    check_header_value(text, field_name)
    raw = text.strip()
    name = ""
    if raw.endswith(">") and "<" in raw:
        name, _, spec = raw[:-1].rpartition("<")
        name = name.strip().strip('"').strip()
        if any(c in name for c in '<>"\\'):
            raise InvalidArgument(
                f'{field_name}: a display name with <, >, " or \\', field=field_name
            )
    else:
        spec = raw
    spec = spec.strip()
    local, at, domain = spec.rpartition("@")
    if not at or not _LOCAL.match(local) or len(local) > 64:
        raise InvalidArgument(f"{field_name}: not a mail address: {text!r}", field=field_name)
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise InvalidArgument(
            f"{field_name}: not a mail domain: {domain!r}", field=field_name
        ) from None
    labels = ascii_domain.split(".")
    tld = labels[-1]
    if (
        len(labels) < 2
        or not all(_LABEL.match(x) for x in labels)
        or len(ascii_domain) > 253
        or not (tld.startswith("xn--") or (tld.isalpha() and len(tld) >= 2))
    ):
        raise InvalidArgument(f"{field_name}: not a mail domain: {domain!r}", field=field_name)
    if len(name) > MAX_NAME:
        raise InvalidArgument(f"{field_name}: the display name is too long", field=field_name)
    return Mailbox(unicodedata.normalize("NFC", name), f"{local}@{ascii_domain}")


def parse_addresses(values: Sequence[str], field_name: str) -> list[Mailbox]:
    if len(values) > MAX_RECIPIENTS:
        raise InvalidArgument(
            f"{field_name} has more than {MAX_RECIPIENTS} addresses", field=field_name
        )
    out: list[Mailbox] = []
    seen: set[str] = set()
    for v in values:
        if not v.strip():
            continue
        box = parse_address(v, field_name)
        if box.address.lower() not in seen:
            seen.add(box.address.lower())
            out.append(box)
    return out


def check_subject(subject: str) -> str:
    check_header_value(subject, "subject")
    if len(subject) > MAX_SUBJECT:
        raise InvalidArgument(f"subject is longer than {MAX_SUBJECT} characters", field="subject")
    return subject


# -- subjects and quotes -----------------------------------------------------------------

_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|wg|sv|vs|回答|返信|転送)\s*[:：]\s*)+", re.I)


def reply_subject(original: str) -> str:
    return "Re: " + _PREFIX.sub("", original).strip()


def forward_subject(original: str) -> str:
    return "Fw: " + _PREFIX.sub("", original).strip()


def quote(text: str, sender: str, when: str, language: str, max_lines: int = 1000) -> str:
    """The previous mail, quoted with `> ` under a line saying who wrote it when."""
    lines = text.splitlines()[:max_lines]
    head = f"{when} {sender} wrote:" if language != "ja" else f"{when} {sender} さんは書きました："
    return head + "\n" + "\n".join(">" if not line else f"> {line}" for line in lines)


# -- the message -------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    filename: str
    content_type: str
    data: bytes
    inline: bool = False
    content_id: str = ""  # for inline images: referenced as cid:<content_id> in the HTML


@dataclass(frozen=True)
class Outgoing:
    sender: Mailbox
    to: Sequence[Mailbox]
    cc: Sequence[Mailbox]
    subject: str
    text: str
    html: str = ""
    parts: Sequence[Part] = field(default_factory=tuple)
    in_reply_to: str = ""  # a Message-ID, without <>
    references: Sequence[str] = field(default_factory=tuple)
    reply_to: Sequence[Mailbox] = field(default_factory=tuple)
    # further headers set by the system (Auto-Submitted, X-Auto-Response-Suppress …)
    extra_headers: Sequence[tuple[str, str]] = field(default_factory=tuple)


def _msgid(value: str, field_name: str) -> str:
    v = check_header_value(value.strip().strip("<>"), field_name)
    if not v or " " in v or "@" not in v or len(v) > 900:
        raise InvalidArgument(f"{field_name} is not a Message-ID", field=field_name)
    return f"<{v}>"


def build(out: Outgoing, *, message_id: str, date: datetime) -> EmailMessage:
    """The message as it will be sent (Bcc recipients go in the envelope only)."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = out.sender.header()
    if out.to:
        msg["To"] = ", ".join(m.header() for m in out.to)
    if out.cc:
        msg["Cc"] = ", ".join(m.header() for m in out.cc)
    if out.reply_to:
        msg["Reply-To"] = ", ".join(m.header() for m in out.reply_to)
    msg["Subject"] = check_subject(out.subject)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = _msgid(message_id, "message_id")
    if out.in_reply_to:
        msg["In-Reply-To"] = _msgid(out.in_reply_to, "in_reply_to")
    refs = [_msgid(r, "references") for r in out.references if r.strip()][-20:]
    if refs:
        msg["References"] = " ".join(refs)
    for name, value in out.extra_headers:
        if not _HEADER_NAME.match(name) or name.lower() in _OWN_HEADERS:
            raise InvalidArgument(f"{name!r} cannot be set as an extra header", field="headers")
        msg[name] = check_header_value(value, name)
    msg.set_content(out.text or "", charset="utf-8", cte="quoted-printable")
    if out.html:
        msg.add_alternative(out.html, subtype="html", charset="utf-8", cte="quoted-printable")
        inline = [p for p in out.parts if p.inline and p.content_id]
        html_part = msg.get_body(("html",))
        if inline and isinstance(html_part, EmailMessage):
            for p in inline:
                maintype, _, subtype = p.content_type.partition("/")
                html_part.add_related(
                    p.data,
                    maintype=maintype or "image",
                    subtype=subtype or "png",
                    cid=f"<{check_header_value(p.content_id, 'content_id')}>",
                    disposition="inline",
                    filename=check_header_value(p.filename, "filename"),
                )
    for p in out.parts:
        if p.inline and p.content_id and out.html:
            continue
        maintype, _, subtype = p.content_type.partition("/")
        msg.add_attachment(
            p.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=check_header_value(p.filename, "filename"),
        )
    for part in msg.walk():  # the email package stamps every part; only the top needs it
        if part is not msg:
            del part["MIME-Version"]
    for name, value in msg.items():  # the last guard: nothing to serialise has a line break
        if any(c in str(value) for c in ("\r", "\n", "\0")):
            raise InvalidArgument(f"the header {name} holds a line break", field=name.lower())
    return msg


def headers_of(msg: EmailMessage) -> list[tuple[str, str]]:
    return [(name, str(value)) for name, value in msg.items()]
