"""The suppression list and RFC 8058 one-click unsubscribe (issue 20, OUT-6), without
I/O: an address as the list keeps it (checked, lower-cased), the unsubscribe link's
signed token, and the two headers every campaign mail carries.

The token signs (tenant, address, campaign, recipient, language) with a key of its own
(HMAC through itsdangerous, salted apart from the survey links' key); it does not expire:
an unsubscribe link has to keep working as long as the mail is read. Its alphabet is
URL-safe base64 and `.`, so neither the URL nor the header can hold a line break.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import zip_longest

from itsdangerous import BadSignature, URLSafeSerializer

from services.runtime import mail as mime
from services.runtime.errors import InvalidArgument

REASONS = ("unsubscribed", "bounced", "manual")
LANGUAGES = ("ja", "en")
ADDRESS_MAX = 254
TOKEN_MAX = 1000
ONE_CLICK = "List-Unsubscribe=One-Click"  # RFC 8058's body (and header value)
_SALT = "switchboard.unsubscribe.v1"
# the token's alphabet (URL-safe base64 and the separator)
_TOKEN = re.compile(r"^[A-Za-z0-9_\-.]+$")
# a base URL a header may carry: a scheme, then printable ASCII without space, <, >, ", \
_BASE_URL = re.compile(r"^https?://[!#-;=?-\[\]-~]+$")


class TokenRefused(Exception):
    """An unsubscribe link's token that is not ours."""


@dataclass(frozen=True, slots=True)
class UnsubscribeConfig:
    secret: str  # signs the links' tokens; never logged
    public_url: str  # the gateway's address as recipients reach it

    def __post_init__(self) -> None:
        if not _BASE_URL.match(self.public_url):
            raise ValueError("public_url must be an http(s) URL of printable ASCII")

    def __repr__(self) -> str:  # the secret stays out of logs and tracebacks
        return f"UnsubscribeConfig(public_url={self.public_url!r})"


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """What a token says: whose address, from which campaign mail, in which language."""

    tenant_id: str
    address: str
    campaign_id: str
    recipient_id: str
    language: str


def derived_secret(secret_key: str) -> str:
    """The links' key derived from outbound's secret_key (or the survey key), so one
    deployment secret serves both without their tokens being interchangeable."""
    return hmac.new(secret_key.encode(), b"unsubscribe-links", hashlib.sha256).hexdigest()


def check_address(raw: str, field: str = "address") -> str:
    """A bare mail address as the list keeps it (lower-cased), or InvalidArgument naming
    `field`."""
    text = (raw or "").strip()
    if not text or len(text) > ADDRESS_MAX or "<" in text or " " in text:
        raise InvalidArgument(f"{field}: not a mail address", field=field)
    box = mime.parse_address(text, field)
    return box.address.lower()


def check_reason(reason: str) -> str:
    if reason not in REASONS:
        raise InvalidArgument("reason must be unsubscribed, bounced or manual", field="reason")
    return reason


def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=_SALT)


def sign_token(secret: str, what: Unsubscribe) -> str:
    if not secret:
        raise ValueError("no unsubscribe secret configured")
    language = what.language if what.language in LANGUAGES else "en"
    token: str = _serializer(secret).dumps(
        [what.tenant_id, what.address.lower(), what.campaign_id, what.recipient_id, language]
    )
    return token


def read_token(secret: str, token: str) -> Unsubscribe:
    """What a token signed with `secret` says; TokenRefused otherwise (tampered, cut,
    signed with another key, or not a token at all)."""
    if not secret or not token or len(token) > TOKEN_MAX or not _TOKEN.match(token):
        raise TokenRefused("invalid")
    try:
        got = _serializer(secret).loads(token)
    except BadSignature:
        raise TokenRefused("invalid") from None
    if (
        not isinstance(got, list)
        or len(got) != 5
        or not all(isinstance(x, str) and len(x) <= ADDRESS_MAX for x in got)
        or got[4] not in LANGUAGES
        or not got[0]
        or not got[1]
    ):
        raise TokenRefused("invalid")
    return Unsubscribe(*got)


def unsubscribe_url(config: UnsubscribeConfig, what: Unsubscribe) -> str:
    """The page a recipient opens (GET shows the button) and a mail provider posts to."""
    return f"{config.public_url.rstrip('/')}/unsubscribe/{sign_token(config.secret, what)}"


def unsubscribe_headers(config: UnsubscribeConfig, what: Unsubscribe) -> list[tuple[str, str]]:
    """RFC 8058's two headers: `List-Unsubscribe: <url>` and `List-Unsubscribe-Post:
    List-Unsubscribe=One-Click`. Checked as header values (no line break possible)."""
    value = f"<{unsubscribe_url(config, what)}>"
    mime.check_header_value(value, "List-Unsubscribe")
    return [("List-Unsubscribe", value), ("List-Unsubscribe-Post", ONE_CLICK)]


def is_one_click(fields: Mapping[str, object]) -> bool:
    """Whether a POST's form fields (urlencoded or multipart/form-data, RFC 8058 §3.1)
    hold the key/value pair `List-Unsubscribe=One-Click` — what mail providers and the
    page's button post."""
    return fields.get("List-Unsubscribe") == "One-Click"


def hard_bounced(
    statuses: Sequence[str], dsn_recipients: Sequence[str], sent_to: Sequence[str]
) -> list[str]:
    """The addresses of a sent mail a DSN says failed for good (a 5.x.x status): those
    its recipient blocks name, among the mail's recipients; when no block names one of
    them (no Final-Recipient, or an alias), the mail's only recipient. A DSN without a
    5.x.x status (a delay, or none machine-readable) suppresses nobody."""
    sent = {a.lower() for a in sent_to if a}
    failed = [
        (r or "").strip().lower()
        for s, r in zip_longest(statuses, dsn_recipients, fillvalue="")
        if s.startswith("5")
    ]
    if not failed:
        return []
    hits = sorted({r for r in failed if r in sent})
    if hits:
        return hits
    return sorted(sent) if len(sent) == 1 else []
