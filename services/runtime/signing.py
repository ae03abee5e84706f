"""Signed webhooks, both ways, free of I/O: routing's rule webhooks (issue 18) and the API
channel's inbound requests and outbound replies (issue 21) are signed the same way.

`X-Switchboard-Signature: v1=<hex>` = HMAC-SHA256(secret, "<X-Switchboard-Timestamp>.<raw
body>"); the receiver refuses a timestamp too far from its clock (a replay)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-Switchboard-Signature"
TIMESTAMP_HEADER = "X-Switchboard-Timestamp"
DELIVERY_HEADER = "X-Switchboard-Delivery"
USER_AGENT = "Switchboard-Webhook/1"
SECRET_PREFIX = "whsec_"
MAX_SKEW_S = 300  # a signed request's timestamp may be this far from the receiver's clock


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hint(secret: str) -> str:
    """What the API shows of a secret: its last 4 characters."""
    return "…" + secret[-4:]


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def headers(secret: str, delivery_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        DELIVERY_HEADER: delivery_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """Whether `header` signs `body` at `timestamp` with `secret` (no clock check)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    return hmac.compare_digest(signature(secret, ts, body), header.strip())


def fresh(timestamp: str, now_s: float, max_skew_s: int = MAX_SKEW_S) -> bool:
    """Whether a signed request's timestamp is within `max_skew_s` of `now_s`."""
    try:
        return abs(int(timestamp) - now_s) <= max_skew_s
    except ValueError:
        return False


def backoff_s(attempts: int, base_s: float, cap_s: float) -> float:
    """The wait after the `attempts`-th failed attempt: base · 2^(attempts-1), capped."""
    return float(min(cap_s, base_s * (2 ** max(0, attempts - 1))))
