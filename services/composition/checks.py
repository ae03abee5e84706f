"""Pre-send checks (CMP-3), free of I/O: what the UI shows before a mail goes out.

`blocking` findings stop the send; `warning` findings ask the operator to confirm.

- attachment_forgotten (warning): what the operator wrote — not the quoted mail, not the
  signature — mentions an attachment (添付, attach, … — the tenant's words) and nothing is
  attached.
- error_keyword (blocking): a placeholder left in the text (○○, XX, 〇〇 … — the tenant's
  keywords) in the subject, the body or the signature.
- unresolved_word (blocking): a `{{…}}` still in the subject, the body or the signature.
- recipient_not_participant (warning): a recipient who has not taken part in the ticket
  (a new mail without a ticket has nobody to compare with).
- subject_missing (warning); no_recipient (blocking).
- unsafe_header (blocking): a subject, name, address or file name that would break its
  header (a line break or separator, a control character, as written or in an encoded
  word) — refused when saved; a draft saved before that check is stopped here.
- changed_by_other (warning): someone else changed the draft last (saved it, or opened it
  again by cancelling its scheduled send): its author reads it again before sending.

A reply to a channel conversation (chat, API, LINE: its recipient is the conversation's
pseudo-address, issue 21) is a plain-text message, not a mail: the mail-only checks
(subject_missing, attachment_forgotten) do not apply, and two more block it:
- channel_mixed_recipients (blocking): a conversation and mailboxes (or two
  conversations) as recipients — a chat message cannot be copied to a mailbox;
- channel_attachments (blocking): files attached — a channel reply carries text only.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.runtime.channel_address import MIXED_RECIPIENTS, channel_target
from services.runtime.errors import FailedPrecondition
from services.runtime.mail import unsafe_header_text
from services.runtime.text import normalize

from .reserved import leftovers

DEFAULT_ATTACHMENT_WORDS = ("添付", "添付ファイル", "attach", "attached", "attachment", "enclosed")
DEFAULT_ERROR_KEYWORDS = ("○○", "〇〇", "××", "XX", "＿＿")
WORDS_MAX = 100


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # "blocking" | "warning"
    message: str
    field: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Settings:
    attachment_words: tuple[str, ...] = DEFAULT_ATTACHMENT_WORDS
    error_keywords: tuple[str, ...] = DEFAULT_ERROR_KEYWORDS


@dataclass(frozen=True)
class Change:
    """The last change to a draft by someone other than the operator sending it."""

    by: str  # their name
    action: str  # saved, reopened


@dataclass(frozen=True)
class Outgoing:
    """The parts of a draft the checks read."""

    subject: str
    body: str  # what the operator wrote (the text of the HTML body when there is one)
    signature: str
    to: Sequence[str]
    cc: Sequence[str]
    bcc: Sequence[str]
    attachment_count: int
    headers: Sequence[tuple[str, str]] = ()  # (field, value) of what becomes a header
    changed_by_other: Change | None = None


def _ascii_word(word: str) -> bool:
    return all(c.isascii() for c in word)


def _pattern(word: str) -> re.Pattern[str]:
    """A word of Latin letters matches as a whole word (`XX` is not in `XXL`; `attach`
    is in `attached` only as its own entry); other words anywhere (Japanese has no
    spaces)."""
    escaped = re.escape(word)
    if _ascii_word(word) and word[:1].isalnum() and word[-1:].isalnum():
        return re.compile(rf"(?<![A-Za-z0-9]){escaped}(?![A-Za-z0-9])", re.I)
    return re.compile(escaped)


def _without_quotes(body: str) -> str:
    """The body without quoted lines (`>` …) and the `On … wrote:` line before them."""
    lines = body.splitlines()
    kept: list[str] = []
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith((">", "＞")):
            continue
        nxt = lines[i + 1].lstrip() if i + 1 < len(lines) else ""
        if nxt.startswith((">", "＞")) and stripped.endswith((":", "：", "wrote:", "書きました：")):
            continue
        kept.append(line)
    return "\n".join(kept)


def mentions_attachment(body: str, words: Iterable[str]) -> str:
    """The first attachment word the operator's own text uses, or ""."""
    own = unicodedata.normalize("NFKC", _without_quotes(body))
    for word in words:
        if word and _pattern(unicodedata.normalize("NFKC", word)).search(own):
            return word
    return ""


def is_channel_reply(out: Outgoing) -> bool:
    """Whether the draft answers a channel conversation (any recipient is one)."""
    try:
        return channel_target([*out.to, *out.cc, *out.bcc]) is not None
    except FailedPrecondition:
        return True


def _channel_findings(out: Outgoing) -> list[Finding]:
    findings: list[Finding] = []
    try:
        channel_target([*out.to, *out.cc, *out.bcc])
    except FailedPrecondition as err:
        findings.append(Finding(MIXED_RECIPIENTS, "blocking", err.message, "to"))
    if out.attachment_count:
        findings.append(
            Finding(
                "channel_attachments",
                "blocking",
                "a reply through a channel carries text only: remove the attachments",
                "attachments",
            )
        )
    return findings


def run(out: Outgoing, settings: Settings, participants: Iterable[str] | None) -> list[Finding]:
    """The findings, in the order above; `participants` None (a mail with no ticket):
    nobody to compare recipients with."""
    findings: list[Finding] = []
    channel = is_channel_reply(out)
    if channel:
        findings.extend(_channel_findings(out))
    word = mentions_attachment(out.body, settings.attachment_words)
    if word and out.attachment_count == 0 and not channel:
        findings.append(
            Finding(
                "attachment_forgotten",
                "warning",
                f"the mail mentions an attachment ({word}) but nothing is attached",
                "attachments",
                word,
            )
        )
    for field_name, text in (
        ("subject", out.subject),
        ("body", _without_quotes(out.body)),
        ("signature", out.signature),
    ):
        for keyword in settings.error_keywords:
            if keyword and _pattern(keyword).search(text):
                findings.append(
                    Finding(
                        "error_keyword",
                        "blocking",
                        f"{keyword} is still in the {field_name}: fill it in",
                        field_name,
                        keyword,
                    )
                )
        for left in dict.fromkeys(leftovers(text)):
            findings.append(
                Finding(
                    "unresolved_word",
                    "blocking",
                    f"{left} in the {field_name} is not filled in",
                    field_name,
                    left,
                )
            )
    recipients = [*out.to, *out.cc, *out.bcc]
    if not out.to:
        findings.append(Finding("no_recipient", "blocking", "the mail has no recipient", "to"))
    known = {normalize(p) for p in participants or () if p}
    for address in dict.fromkeys(recipients) if participants is not None else ():
        if normalize(address) not in known:
            findings.append(
                Finding(
                    "recipient_not_participant",
                    "warning",
                    f"{address} has not written or been written to in this ticket",
                    "to",
                    address,
                )
            )
    if not out.subject.strip() and not channel:
        findings.append(Finding("subject_missing", "warning", "the mail has no subject", "subject"))
    for field_name, value in out.headers:
        if unsafe_header_text(value):
            findings.append(
                Finding(
                    "unsafe_header",
                    "blocking",
                    f"the {field_name} holds a line break, a line or paragraph separator or a "
                    "control character: change it",
                    field_name,
                    value[:200],
                )
            )
    change = out.changed_by_other
    if change is not None:
        how = "opened this draft again" if change.action == "reopened" else "changed this draft"
        findings.append(
            Finding(
                "changed_by_other",
                "warning",
                f"{change.by or 'another operator'} {how} last: read it before sending",
                "draft",
                change.by,
            )
        )
    return findings


def clean_words(values: Sequence[str], field: str) -> tuple[str, ...]:
    from services.runtime.errors import InvalidArgument

    if len(values) > WORDS_MAX:
        raise InvalidArgument(f"{field} has more than {WORDS_MAX} entries", field=field)
    out: list[str] = []
    for v in values:
        word = v.strip()
        if not word or len(word) > 50 or any(unicodedata.category(c) == "Cc" for c in word):
            raise InvalidArgument(
                f"{field}: {v!r} is not a word of 1 to 50 characters", field=field
            )
        if word not in out:
            out.append(word)
    return tuple(out)
