"""API-key checks and per-key rate limits for the service.

Keys live in the registry database as salted scrypt hashes (see ``advsig.registry.keys``).
Checking one costs ~20 ms of scrypt, so a successful check is remembered for ``cache_s`` seconds
(as a SHA-256 of the secret, compared in constant time); a revoked key is therefore refused at
most ``cache_s`` seconds after ``advsig registry revoke-key``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from dataclasses import dataclass

from advsig.registry.db import Registry
from advsig.registry.keys import KeyInfo, split_key, verify_key

MAX_PARALLEL_SCRYPT = 2  # each check takes 16 MiB; bad keys must not exhaust memory


@dataclass
class _Cached:
    digest: bytes
    info: KeyInfo
    expires: float


class Authenticator:
    """``check(key) -> KeyInfo | None``; thread-safe, blocking (run it in a worker thread)."""

    def __init__(self, registry: Registry, *, cache_s: float = 10.0) -> None:
        self.registry = registry
        self.cache_s = cache_s
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()
        self._scrypt = threading.BoundedSemaphore(MAX_PARALLEL_SCRYPT)

    def check(self, key: str) -> KeyInfo | None:
        parts = split_key(key)
        if parts is None:
            return None
        key_id, secret = parts
        digest = hashlib.sha256(secret.encode("utf-8")).digest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key_id)
        if hit is not None and hit.expires > now and hmac.compare_digest(hit.digest, digest):
            return hit.info
        with self._scrypt:
            info = verify_key(self.registry, key)
        with self._lock:
            if info is None:
                self._cache.pop(key_id, None)
            else:
                self._cache[key_id] = _Cached(digest, info, now + self.cache_s)
        return info


class RateLimiter:
    """A token bucket per key: ``rate`` requests per minute, bursts of up to ``rate``.

    Per process: several server processes each allow the full rate.
    """

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last update)
        self._lock = threading.Lock()

    def acquire(self, key: str, rate_per_minute: int) -> float:
        """0.0 if the request may go now, else the seconds until it may."""
        now = time.monotonic()
        per_s = rate_per_minute / 60.0
        with self._lock:
            tokens, last = self._buckets.get(key, (float(rate_per_minute), now))
            tokens = min(float(rate_per_minute), tokens + (now - last) * per_s)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / per_s


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
