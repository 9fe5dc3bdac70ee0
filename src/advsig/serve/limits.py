"""Request limits that hold before any image is parsed.

The body limit is an ASGI middleware: a declared ``Content-Length`` above the limit is refused
before a byte is read, and a chunked body is counted as it streams in and cut off the moment it
passes the limit. Either way the answer is 413 and memory stays bounded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from advsig.kits import DEFAULT_KIT


@dataclass(frozen=True)
class ServeSettings:
    """Limits and batching of ``advsig serve``.

    Attributes:
        kit_label: the registry label of the served kit (see ``advsig.registry.kit_label``).
        max_request_bytes: whole request body; above it -> 413.
        max_image_pixels: width x height of one image, read from its header; above it -> 413.
        max_images: images per request; above it -> 413.
        rate_per_minute: requests per minute for keys that have no rate of their own; -> 429.
        max_batch / max_wait_ms: a batch runs when it has max_batch images or its first image
            has waited max_wait_ms.
        max_queue: images waiting for the detector; beyond it -> 503.
        fpr / confidence: defaults of the detection threshold and of attribution.
        key_cache_s: how long a verified key is trusted without a new scrypt check.
        codebook_ttl_s: how long the registered codes are cached between database reads.
    """

    kit_label: str = DEFAULT_KIT
    max_request_bytes: int = 32 * 2**20
    max_image_pixels: int = 25_000_000
    max_images: int = 16
    rate_per_minute: int = 120
    max_batch: int = 16
    max_wait_ms: float = 10.0
    max_queue: int = 256
    fpr: float = 1e-3
    confidence: float = 1e-3
    key_cache_s: float = 10.0
    codebook_ttl_s: float = 10.0


class _BodyTooLarge(Exception):
    pass


async def _send_json(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """ASGI middleware: 413 for any request body over ``max_bytes``."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"request body exceeds the limit of {self.max_bytes:,} bytes"
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_json(send, 400, f"invalid Content-Length {value!r}")
                    return
                if declared > self.max_bytes:
                    await _send_json(send, 413, f"{message} (declared {declared:,})")
                    return
        received = 0
        started = False

        async def counting_receive():
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge()
            return msg

        async def tracking_send(msg) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _send_json(send, 413, message)
