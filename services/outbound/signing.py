"""DKIM (OUT-7) with dkimpy: per-domain RSA keys, the DNS record to publish, and the
signature over the exact bytes that are sent (relaxed/relaxed, rsa-sha256)."""

from __future__ import annotations

import base64

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.runtime.errors import InvalidArgument

# The headers signed when present (RFC 6376 §5.4.1's list, less the ones we never set).
SIGNED_HEADERS = (
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"in-reply-to",
    b"references",
    b"reply-to",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
    b"auto-submitted",
)


def generate_pem(bits: int = 2048) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_key_b64(private_pem: str) -> str:
    """The base64 DER public key (the `p=` of the DNS record); InvalidArgument for a key
    that is not an RSA private key of at least 1024 bits."""
    try:
        key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    except (ValueError, TypeError):
        raise InvalidArgument(
            "private_key_pem is not an unencrypted PEM private key", field="private_key_pem"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 1024:
        raise InvalidArgument(
            "private_key_pem must be an RSA key of at least 1024 bits", field="private_key_pem"
        )
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def dns_name(domain: str, selector: str) -> str:
    return f"{selector}._domainkey.{domain}"


def dns_txt(public_b64: str) -> str:
    return f"v=DKIM1; k=rsa; p={public_b64}"


def sign(raw: bytes, *, domain: str, selector: str, private_pem: str) -> bytes:
    """`raw` with a DKIM-Signature header prepended."""
    present = {
        line.split(b":", 1)[0].strip().lower()
        for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        if line and not line[:1].isspace() and b":" in line
    }
    headers = [h for h in SIGNED_HEADERS if h in present]
    signature = dkim.sign(
        raw,
        selector.encode(),
        domain.encode(),
        private_pem.encode(),
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=headers,
    )
    # dkimpy folds with the given linesep; the message is CRLF throughout
    return bytes(signature) + raw
