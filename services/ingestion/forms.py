"""Web inquiry forms: what a submission must hold, and the mail it becomes. Pure.

A submission becomes an ordinary mail (channel "form") from the submitter to the inbox, so
it goes through the same pipeline and shows the same way as any mail; the form's other
fields are listed in the body. Header values are built by the email package from checked
parts, and no CR, LF or NUL can reach a header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import urlsplit

from services.runtime.errors import InvalidArgument

MAX_FIELDS = 50
MAX_NAME = 100
MAX_VALUE = 20_000
MAX_TOTAL = 64 * 1024
HONEYPOT = "website"  # hidden from people by the form's CSS; bots fill it in
KNOWN = ("name", "email", "subject", "message")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ONE_LINE = re.compile(r"[\r\n\x00-\x1f\x7f]+")
_ADDR = re.compile(r"^[^@\s<>()\[\],;:\"\\]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


@dataclass(frozen=True)
class Submission:
    name: str
    email: str
    subject: str
    message: str
    extra: list[tuple[str, str]]
    is_bot: bool


def read(fields: list[tuple[str, str]]) -> Submission:
    """Check a submission; InvalidArgument names the field at fault."""
    if len(fields) > MAX_FIELDS:
        raise InvalidArgument(f"at most {MAX_FIELDS} fields", field="fields")
    total = 0
    values: dict[str, str] = {}
    extra: list[tuple[str, str]] = []
    for name, value in fields:
        name = _ONE_LINE.sub(" ", name).strip()[:MAX_NAME]
        if not name:
            continue
        if len(value) > MAX_VALUE:
            raise InvalidArgument(f"{name} is longer than {MAX_VALUE} characters", field=name)
        total += len(name) + len(value)
        value = _CONTROL.sub("", value).replace("\r\n", "\n").replace("\r", "\n")
        if name in KNOWN or name == HONEYPOT:
            values[name] = value
        else:
            extra.append((name, value))
    if total > MAX_TOTAL:
        raise InvalidArgument("the submission is too large", field="fields")
    email = values.get("email", "").strip()
    if not _ADDR.match(email):
        raise InvalidArgument("a valid e-mail address is required", field="email")
    message = values.get("message", "").strip()
    if not message:
        raise InvalidArgument("message is required", field="message")
    return Submission(
        name=_ONE_LINE.sub(" ", values.get("name", "")).strip()[:200],
        email=email,
        subject=_ONE_LINE.sub(" ", values.get("subject", "")).strip()[:300],
        message=message,
        extra=extra,
        is_bot=bool(values.get(HONEYPOT, "").strip()),
    )


def to_mail(
    sub: Submission,
    *,
    form_name: str,
    inbox_address: str,
    submission_id: str,
    now: datetime,
    client_address: str,
) -> bytes:
    msg = EmailMessage()
    local, _, domain = sub.email.rpartition("@")
    msg["From"] = Address(display_name=sub.name, username=local, domain=domain)
    msg["To"] = inbox_address
    msg["Subject"] = sub.subject or f"Inquiry via {form_name}"
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<form-{submission_id}@switchboard.invalid>"
    msg["X-Switchboard-Form"] = _ONE_LINE.sub(" ", form_name)[:200]
    msg["X-Switchboard-Client"] = _ONE_LINE.sub(" ", client_address)[:100]
    body = sub.message
    if sub.extra:
        body += "\n\n" + "\n".join(f"{k}: {v}" for k, v in sub.extra)
    msg.set_content(body + "\n", charset="utf-8")
    return msg.as_bytes()


def check_redirect(url: str) -> str:
    if not url:
        return ""
    parts = urlsplit(url)
    if (
        parts.scheme not in ("https", "http")
        or not parts.netloc
        or any(c in url for c in "\r\n\0 ")
    ):
        raise InvalidArgument("redirect_url must be an http(s) URL", field="redirect_url")
    return url
