"""Agentless notifications (issue 20, OUT-6) without I/O: the idempotency key, the
variables, the words a notification's subject and body may hold, the fingerprint that
tells a repeated request from a different one under the same key, and the notification's
state read from its outbox item.

Words (`{{…}}`, spaces inside allowed), the whole vocabulary:
- `{{var.<name>}}` — the request's `variables[name]` (name `^[a-z][a-z0-9_]{0,39}$`);
- `{{to.name}}`, `{{to.address}}` — the recipient (also as `{{customer.name}}`,
  `{{customer.address}}`, so a composition template written for replies can serve);
- `{{inbox.name}}`, `{{inbox.address}}` — the sending inbox.
Anything else, or a `{{var.x}}` without a value, is refused naming it; nothing is
evaluated. A value filled into the subject has its line breaks turned into spaces; one
filled into a template's HTML is escaped.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from services.runtime import mail as mime
from services.runtime.errors import InvalidArgument

KEY_MAX = 200
VARIABLES_MAX = 50
VALUE_MAX = 2000
SUBJECT_MAX = 998
BODY_MAX = 100_000
_KEY = re.compile(r"^[!-~]{1,200}$")  # printable ASCII, no space
_VAR = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_WORD = re.compile(r"\{\{(.*?)\}\}", re.S)
STATES = ("queued", "sent", "failed", "bounced")


def check_key(raw: str) -> str:
    """The idempotency key: 1–200 printable ASCII characters without spaces."""
    if not _KEY.match(raw or ""):
        raise InvalidArgument(
            "idempotency_key is required: 1–200 printable ASCII characters, no spaces",
            field="idempotency_key",
        )
    return raw


def check_variables(raw: Mapping[str, str]) -> dict[str, str]:
    if len(raw) > VARIABLES_MAX:
        raise InvalidArgument(f"at most {VARIABLES_MAX} variables", field="variables")
    out: dict[str, str] = {}
    for name, value in raw.items():
        if not _VAR.match(name):
            shown = name.isascii() and name.isprintable() and len(name) <= 40
            raise InvalidArgument(
                "a variable's name is a lower-case letter, then letters, digits or _ (≤ 40)",
                field=f"variables.{name}" if shown else "variables",
            )
        if len(value) > VALUE_MAX:
            raise InvalidArgument(
                f"a variable's value is at most {VALUE_MAX} characters", field=f"variables.{name}"
            )
        out[name] = value
    return out


def fingerprint(
    *,
    inbox_id: str,
    template_id: str,
    subject: str,
    body: str,
    to_address: str,
    to_name: str,
    variables: Mapping[str, str],
) -> str:
    """The request as a digest: the same key with another fingerprint is a conflict."""
    canonical = json.dumps(
        [
            inbox_id,
            template_id,
            subject,
            body,
            to_address.lower(),
            to_name,
            sorted(variables.items()),
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Context:
    to_name: str
    to_address: str
    inbox_name: str
    inbox_address: str
    variables: Mapping[str, str]


def _word(inner: str, ctx: Context, field: str) -> str:
    name = inner.strip()
    fixed = {
        "to.name": ctx.to_name,
        "to.address": ctx.to_address,
        "customer.name": ctx.to_name,
        "customer.address": ctx.to_address,
        "inbox.name": ctx.inbox_name,
        "inbox.address": ctx.inbox_address,
    }
    if name in fixed:
        return fixed[name]
    var = name[4:] if name.startswith("var.") else ""
    if _VAR.match(var):
        if var not in ctx.variables:
            raise InvalidArgument(
                f"{{{{{name}}}}} has no value: add it to variables", field=f"variables.{var}"
            )
        return ctx.variables[var]
    shown = name if len(name) <= 60 else name[:60] + "…"
    raise InvalidArgument(
        f"{{{{{shown}}}}} is not a word of notifications (var.<name>, to.name, to.address, "
        "inbox.name, inbox.address)",
        field=field,
    )


def render(text: str, ctx: Context, field: str, clean: Callable[[str], str] = str) -> str:
    """`text` with every word filled in, or InvalidArgument naming the first bad one."""
    return _WORD.sub(lambda m: clean(_word(m.group(1), ctx, field)), text)


def subject_value(value: str) -> str:
    return mime.header_text(" ".join(value.split()))


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


def render_all(*, subject: str, text: str, body_html: str, ctx: Context, source: str) -> Rendered:
    """Subject, text and (a template's) HTML filled in; `source` names the field a bad
    word is reported on (`template_id`, or `subject`/`body` for the request's own)."""
    out_subject = render(
        subject, ctx, source if source == "template_id" else "subject", subject_value
    )
    if not out_subject.strip():
        raise InvalidArgument(
            "the subject is empty", field=source if source == "template_id" else "subject"
        )
    mime.check_subject(out_subject)
    out_text = render(text, ctx, source if source == "template_id" else "body")
    if not out_text.strip():
        raise InvalidArgument(
            "the body is empty", field=source if source == "template_id" else "body"
        )
    out_html = render(body_html, ctx, source, html.escape) if body_html else ""
    return Rendered(out_subject, out_text if out_text.endswith("\n") else out_text + "\n", out_html)
