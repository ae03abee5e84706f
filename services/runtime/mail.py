"""Outgoing mail, free of I/O (CMP-5, CMP-6, OUT-1): strict address parsing, header values
that can carry no line break whatever the path, and the exact MIME message — shared by
composition (a draft's preview, and the bytes outbound sends) and outbound (automatic
acknowledgements).

Python's email generator folds and encodes headers, but a value with a line break slips
through some paths (a raw `str` header, an address display name), and the email package
decodes RFC 2047 encoded words in what it is given — in a subject, a Message-ID list, a
display name and, on Python 3.11 without the fix of CVE-2024-6923, a parameter such as an
attachment's file name — so that `=?utf-8?q?a=0D=0AX-Evil:_1?=` becomes a raw line break
in the mail sent. So a header value is judged twice, as written and as decoded
(`unsafe_header_text`): no control character, no line or paragraph separator (U+0085,
U+2028, U+2029 and every other character `str.splitlines` breaks on), in either form.
What an operator writes is refused where it is saved (`check_header_value`, a 400 naming
the field); what a stranger wrote (a customer's name or subject carried into a reply, a
file name of a forwarded attachment) is made safe (`header_text`); Message-IDs that cannot
be written safely are left out of threading (`usable_message_ids`). Last, `build` checks
every header of every part as it will be folded, and refuses the message rather than let a
line break through.
"""

from __future__ import annotations

import base64
import binascii
import quopri
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
# RFC 2047 encoded words, as the email package recognises them (also inside a token)
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([qQbB])\?([^?\s]*)\?=")
# a line break inside one folded header: a new line that is not a continuation
_BARE_NEWLINE = re.compile(r"\r(?!\n)|\r\n(?![ \t])|(?<!\r)\n")
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


def _bad_char(c: str) -> bool:
    """A character a header value never holds: control characters (tab aside), line and
    paragraph separators, lone surrogates."""
    if c == "\t":
        return False
    return unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cs")


def _decoded_words(value: str) -> list[str]:
    """The text of each encoded word in `value`, decoded as the email package does (bytes
    the charset cannot read, or all of them when it is unknown, as lone surrogates)."""
    out = []
    for charset, enc, text in _ENCODED_WORD.findall(value):
        try:
            if enc in "qQ":
                data = quopri.decodestring(text.encode("ascii", "replace"), header=True)
            else:
                data = base64.b64decode(text + "=" * (-len(text) % 4), validate=False)
        except (binascii.Error, ValueError):
            continue
        name = charset.partition("*")[0]
        try:
            out.append(data.decode(name, errors="surrogateescape"))
        except (LookupError, UnicodeError):
            out.append(data.decode("ascii", errors="surrogateescape"))
    return out


def unsafe_header_text(value: str) -> bool:
    """Whether `value` holds, as written or once its encoded words are decoded, a
    character that would break a header (see the module's docstring)."""
    if any(_bad_char(c) for c in value):
        return True
    return any(_bad_char(c) for word in _decoded_words(value) for c in word)


def check_header_value(value: str, field_name: str) -> str:
    """A header value an operator wrote: refused (naming the field) when it holds a line
    break, a line or paragraph separator or a control character, as written or hidden in
    an encoded word (`=?utf-8?q?=0D=0A?=`)."""
    if unsafe_header_text(value):
        raise InvalidArgument(
            f"{field_name} must not contain line breaks, line or paragraph separators "
            "(U+2028, U+2029, U+0085) or control characters, also not as an encoded word",
            field=field_name,
        )
    return value


def header_text(value: str) -> str:
    """A stranger's text made safe for a header: each character that would break one
    becomes a space, and an encoded word hiding one is replaced by its decoded text so
    made safe (the reader sees what the sender meant, on one line)."""

    def clean(text: str) -> str:
        return "".join(" " if _bad_char(c) else c for c in text)

    def word(m: re.Match[str]) -> str:
        decoded = _decoded_words(m.group(0))
        if decoded and any(_bad_char(c) for c in decoded[0]):
            return clean(decoded[0])
        return m.group(0)

    out = clean(value)
    for _ in range(3):  # an encoded word inside an encoded word, at most this deep
        again = _ENCODED_WORD.sub(word, out)
        if again == out:
            break
        out = again
    return out if not unsafe_header_text(out) else clean(_ENCODED_WORD.sub(" ", out))


def usable_message_ids(values: Sequence[str]) -> list[str]:
    """The Message-IDs (without <>) that can be written into In-Reply-To and References:
    a stranger's id that would break the header is left out of the threading headers
    rather than stop the reply."""
    out = []
    for v in values:
        v = v.strip().strip("<>")
        if v and " " not in v and "@" in v and len(v) <= 900 and not unsafe_header_text(v):
            out.append(v)
    return out


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
    """The message as it will be sent (Bcc recipients go in the envelope only). A value
    the email package cannot write is an InvalidArgument naming the header, never a
    ValueError from deep inside it."""
    try:
        msg = _build(out, message_id=message_id, date=date)
    except ValueError as err:
        if isinstance(err, InvalidArgument):
            raise
        raise InvalidArgument(f"the mail cannot be written: {err}", field="headers") from None
    _check_folded(msg)
    return msg


def _build(out: Outgoing, *, message_id: str, date: datetime) -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = _mailbox_header([out.sender], "from_name")
    if out.to:
        msg["To"] = _mailbox_header(out.to, "to")
    if out.cc:
        msg["Cc"] = _mailbox_header(out.cc, "cc")
    if out.reply_to:
        msg["Reply-To"] = _mailbox_header(out.reply_to, "reply_to")
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
    return msg


def _mailbox_header(boxes: Sequence[Mailbox], field_name: str) -> str:
    for box in boxes:
        check_header_value(box.name, field_name)
        check_header_value(box.address, field_name)
    return ", ".join(b.header() for b in boxes)


def _check_folded(msg: EmailMessage) -> None:
    """The last guard (what CPython's fix of CVE-2024-6923 does in its generator): every
    header of every part, folded exactly as it will be written, is one header — no line
    break that does not continue it — and carries no other control character."""
    for part in msg.walk():
        for name, value in part.items():
            try:
                folded = part.policy.fold(name, value)
            except (ValueError, TypeError, LookupError) as err:
                raise InvalidArgument(
                    f"the header {name} cannot be written: {err}", field=name.lower()
                ) from None
            body = folded.rstrip("\r\n")
            if _BARE_NEWLINE.search(body) or any(
                _bad_char(c) for c in body.replace("\r\n", "").replace("\t", "")
            ):
                raise InvalidArgument(
                    f"the header {name} would hold a line break", field=name.lower()
                )


def headers_of(msg: EmailMessage) -> list[tuple[str, str]]:
    return [(name, str(value)) for name, value in msg.items()]
