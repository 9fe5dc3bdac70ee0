"""The secret a kit's signature derives from: its code carriers and its content mask.

Two kits trained by the same command with different keys get unrelated carriers and masks, so
neither flags the other's signed images. The key is 32 random bytes kept as hex in a key file
(mode 0600) on the detector owner's side. It is never written into ``config.json``, a log or a
report: the kit records only a fingerprint (a hash, to tell keys apart), and the networks carry
only what derives from the key, so loading a kit needs no key file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from pathlib import Path

from advsig.errors import KeyFileError
from advsig.utils import atomic_path

logger = logging.getLogger(__name__)

KEY_BYTES = 32
KEY_FILE_NAME = "signature.key"


def generate_key() -> bytes:
    """A fresh random key from the operating system's CSPRNG."""
    return secrets.token_bytes(KEY_BYTES)


def key_fingerprint(key: bytes) -> str:
    """A short public name for a key (16 hex digits of a domain-separated SHA-256)."""
    return hashlib.sha256(b"advsig-key-fingerprint\x00" + key).hexdigest()[:16]


def read_key(path: str | Path) -> bytes:
    """The key in ``path`` (hex text, surrounding whitespace ignored)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{path}: cannot read key file ({exc})") from exc
    try:
        key = bytes.fromhex(text)
    except ValueError as exc:
        raise KeyFileError(f"{path}: not a hex key ({KEY_BYTES * 2} hex digits expected)") from exc
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{path}: key has {len(key)} bytes, expected {KEY_BYTES}")
    return key


def write_key(path: str | Path, key: bytes) -> None:
    """Write ``key`` to a new file readable by its owner only; never overwrites."""
    path = Path(path)
    if path.exists():
        raise KeyFileError(f"{path}: exists; refusing to overwrite a key")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key.hex() + "\n")


def load_or_create_key(path: str | Path) -> bytes:
    """The key in ``path``; a new random one written there (mode 0600) if the file is absent."""
    path = Path(path)
    if path.exists():
        return read_key(path)
    key = generate_key()
    write_key(path, key)
    logger.info("new signature key written to %s (fingerprint %s)", path, key_fingerprint(key))
    return key
