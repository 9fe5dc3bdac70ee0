"""API keys for the HTTP service: created once, stored only as salted scrypt hashes.

A key looks like ``advsig_<key_id>_<secret>``. ``key_id`` (public, 12 hex digits) finds the row;
the 32-byte secret is checked with scrypt and :func:`hmac.compare_digest`. The plain key is shown
once, at creation; a lost key is revoked and replaced, never recovered.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from advsig.registry.db import Registry
from advsig.registry.errors import ApiKeyError
from advsig.registry.models import ROLES, ApiKey, utcnow
from advsig.registry.names import check_name

PREFIX = "advsig"
# scrypt cost: ~20 ms and 16 MiB per check. The secret has 256 bits of entropy, so the KDF guards
# a leaked database only; the service caches successful checks to keep this off the hot path.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


@dataclass(frozen=True)
class KeyInfo:
    """A key as stored (no secret). ``rate_per_minute`` None means the server's default."""

    name: str
    key_id: str
    role: str
    rate_per_minute: int | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class NewKey:
    """A key just created: ``key`` is the only copy of the secret."""

    info: KeyInfo
    key: str


def hash_secret(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        secret.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )


def split_key(key: str) -> tuple[str, str] | None:
    """(key_id, secret) of a well-formed key, None otherwise."""
    parts = key.strip().split("_")
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(
        row.name, row.key_id, row.role, row.rate_per_minute, row.created_at, row.revoked_at
    )


def create_key(
    registry: Registry, name: str, *, role: str = "detect", rate_per_minute: int | None = None
) -> NewKey:
    """A new key with ``role`` "detect" (may detect) or "admin" (may also manage codes)."""
    name = check_name(name, "key")
    if role not in ROLES:
        raise ApiKeyError(f"role must be one of {ROLES}, got {role!r}")
    if rate_per_minute is not None and rate_per_minute < 1:
        raise ApiKeyError(f"rate_per_minute must be at least 1, got {rate_per_minute!r}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32).replace("_", "-")  # "_" separates the key's parts
    salt = secrets.token_bytes(16)
    try:
        with registry.write() as session:
            if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
                raise ApiKeyError(f"an API key named {name!r} exists already")
            row = ApiKey(
                name=name, key_id=key_id, role=role, salt=salt,
                secret_hash=hash_secret(secret, salt), rate_per_minute=rate_per_minute,
            )  # fmt: skip
            session.add(row)
            session.flush()
            return NewKey(_info(row), f"{PREFIX}_{key_id}_{secret}")
    except IntegrityError:
        raise ApiKeyError(f"an API key named {name!r} exists already") from None


def list_keys(registry: Registry) -> list[KeyInfo]:
    with registry.read() as session:
        return [_info(r) for r in session.scalars(select(ApiKey).order_by(ApiKey.name))]


def revoke_key(registry: Registry, name: str) -> KeyInfo:
    with registry.write() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.name == name))
        if row is None:
            raise ApiKeyError(f"no API key named {name!r}")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        session.flush()
        return _info(row)


def verify_key(registry: Registry, key: str) -> KeyInfo | None:
    """The key's record if ``key`` is valid and not revoked, else None (never says which part
    was wrong)."""
    parts = split_key(key)
    if parts is None:
        return None
    key_id, secret = parts
    with registry.read() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
        if row is None:
            hash_secret(secret, b"\0" * 16)  # same work for unknown ids: no timing oracle
            return None
        ok = hmac.compare_digest(hash_secret(secret, row.salt), row.secret_hash)
        if not ok or row.revoked_at is not None:
            return None
        return _info(row)
