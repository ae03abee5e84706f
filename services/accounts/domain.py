"""Accounts domain rules, free of I/O: password hashing, session tokens, address form."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.runtime.errors import InvalidArgument

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified when the login names nobody, so that an unknown login costs the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

MAX_LOGIN = 254
MAX_PASSWORD = 1024


@dataclass(frozen=True)
class OperatorRecord:
    id: str
    tenant_id: str
    login: str
    display_name: str
    roles: tuple[str, ...]
    password_hash: str
    active: bool


def hash_password(password: str) -> str:
    if not password:
        raise InvalidArgument("password must not be empty", field="password")
    if len(password) > MAX_PASSWORD:
        raise InvalidArgument("password is too long", field="password")
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_session_token() -> tuple[str, bytes]:
    """A random token for the client and the hash the server keeps."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def normalise_address(address: str) -> str:
    addr = address.strip().strip("<>").strip().lower()
    if addr.count("@") != 1 or any(c in addr for c in " \r\n\t\0"):
        raise InvalidArgument(f"not a mail address: {address!r}", field="address")
    return addr


def check_credentials_input(login: str, password: str) -> None:
    if not login or len(login) > MAX_LOGIN:
        raise InvalidArgument("login is required (at most 254 characters)", field="login")
    if not password:
        raise InvalidArgument("password is required", field="password")
    if len(password) > MAX_PASSWORD:
        raise InvalidArgument(
            f"password is longer than {MAX_PASSWORD} characters", field="password"
        )
