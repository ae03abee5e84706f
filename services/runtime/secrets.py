"""Encryption of credentials at rest (ingestion's IMAP passwords and OAuth2 tokens,
outbound's SMTP passwords and DKIM keys): AES-256-GCM with the service's key
`SB_SECRET_KEY` (32 bytes, base64). The owning row's id is bound as associated data, so a
ciphertext copied onto another row does not decrypt."""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.runtime.errors import FailedPrecondition

_VERSION = b"\x01"


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


class SecretBox:
    def __init__(self, key_b64: str | None) -> None:
        self._aead: AESGCM | None = None
        if key_b64:
            try:
                key = base64.urlsafe_b64decode(key_b64 + "=" * (-len(key_b64) % 4))
            except (binascii.Error, ValueError):
                raise ValueError("SB_SECRET_KEY is not base64") from None
            if len(key) != 32:
                raise ValueError("SB_SECRET_KEY must decode to 32 bytes")
            self._aead = AESGCM(key)

    def _need(self) -> AESGCM:
        if self._aead is None:
            raise FailedPrecondition("SB_SECRET_KEY is not set: credentials cannot be stored")
        return self._aead

    def seal(self, plaintext: str, bound_to: str) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._need().encrypt(nonce, plaintext.encode(), bound_to.encode())

    def open(self, sealed: bytes, bound_to: str) -> str:
        if not sealed.startswith(_VERSION) or len(sealed) < 29:
            raise FailedPrecondition("stored credential is unreadable")
        try:
            return self._need().decrypt(sealed[1:13], sealed[13:], bound_to.encode()).decode()
        except InvalidTag:
            raise FailedPrecondition("stored credential does not match the key") from None
