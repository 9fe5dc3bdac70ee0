"""Prometheus metrics of the service, served at ``GET /metrics`` (admin keys only).

Why a registry per app and not prometheus-client's global one: several apps in one process (the
tests, or one process serving two kits) would otherwise share, and double-register, the same
series. Why admin-only: the counts reveal traffic and which keys fail, and every other operator
endpoint (``/v1/admin/stats``, the registry) already needs the admin role; Prometheus sends the
key with ``authorization: {credentials: <key>}`` in its scrape config.

Metrics are per process: run several server processes and each reports its own.

Series (labels in braces):
    advsig_requests_total{method, endpoint, status}     HTTP requests answered.
    advsig_request_duration_seconds{method, endpoint}   histogram; until the last byte is sent.
    advsig_images_total{endpoint, outcome}              images answered by /v1/detect and
                                                        /v1/attribute; outcome is signed,
                                                        not_signed or error (unreadable file).
    advsig_attributions_total{verdict}                  /v1/attribute's verdict per image.
    advsig_batch_size                                   histogram; images per forward pass.
    advsig_batch_duration_seconds                       histogram; one forward pass.
    advsig_queued_images                                gauge; images waiting for the detector.
    advsig_queue_capacity_images                        gauge; beyond it requests get 503.

``endpoint`` is the route's template (``/v1/registry/codes/{code}/revoke``), or ``other`` for
paths no route serves, so a scanner cannot grow the number of series.
"""

from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.routing import BaseRoute, Match

from advsig.types import DetectionResult

# Seconds: a cached-key health check takes ~1 ms, a CPU batch of large images several seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

__all__ = ["CONTENT_TYPE_LATEST", "MetricsMiddleware", "ServiceMetrics"]


class ServiceMetrics:
    """The service's counters and histograms, in a registry of their own.

    Example:
        >>> metrics = ServiceMetrics()
        >>> metrics.observe_images("/v1/detect", results)
        >>> text = metrics.render()   # Prometheus text format, bytes
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "advsig_requests", "HTTP requests answered, by route and status code.",
            ["method", "endpoint", "status"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "advsig_request_duration_seconds", "Time from request to the last response byte.",
            ["method", "endpoint"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.images = Counter(
            "advsig_images", "Images answered, by endpoint and outcome (signed, not_signed, error).",
            ["endpoint", "outcome"], registry=r,
        )  # fmt: skip
        self.attributions = Counter(
            "advsig_attributions", "Attribution verdicts per image.", ["verdict"], registry=r
        )
        self.batch_size = Histogram(
            "advsig_batch_size", "Images per detector forward pass.",
            buckets=BATCH_SIZE_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch_duration = Histogram(
            "advsig_batch_duration_seconds", "Duration of one detector forward pass.",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.queued = Gauge("advsig_queued_images", "Images waiting for the detector.", registry=r)
        self.queue_capacity = Gauge(
            "advsig_queue_capacity_images", "Queue size beyond which requests get 503.",
            registry=r,
        )  # fmt: skip

    def watch_queue(self, depth, capacity: int) -> None:
        """Read the queue depth from ``depth()`` at every scrape."""
        self.queued.set_function(depth)
        self.queue_capacity.set(capacity)

    def observe_batch(self, size: int, seconds: float) -> None:
        """``Batcher(on_batch=...)``: one forward pass of ``size`` images."""
        self.batch_size.observe(size)
        self.batch_duration.observe(seconds)

    def observe_images(self, endpoint: str, results: list[DetectionResult]) -> None:
        for r in results:
            outcome = "error" if r.error else ("signed" if r.is_signed else "not_signed")
            self.images.labels(endpoint, outcome).inc()

    def observe_verdict(self, verdict: str) -> None:
        self.attributions.labels(verdict).inc()

    def render(self) -> bytes:
        """Everything, in the Prometheus text exposition format (``CONTENT_TYPE_LATEST``)."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """ASGI middleware: counts every HTTP request and times it, labelled by route template.

    Outermost, so that answers given before routing (the body limit's 413) are counted too.
    """

    def __init__(self, app, metrics: ServiceMetrics, routes: list[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes  # the app's live list: routes added later are matched too

    def _endpoint(self, scope) -> str:
        """The template of the route ``scope`` goes to, found before the app runs (so that the
        body limit's answers get one too)."""
        for route in self.routes:
            match, _ = route.matches(scope)
            if match != Match.NONE:  # PARTIAL: the path exists, not with this method (405)
                path = getattr(route, "path", None)  # None: an included router
                return path if isinstance(path, str) and path else "other"
        return "other"

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint, method = self._endpoint(scope), scope["method"]
        status = 500  # if the app raises before answering, the server answers 500
        t0 = time.perf_counter()

        async def recording_send(msg) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            if endpoint == "other":  # FastAPI names the route it ran, included routers too
                path = getattr(scope.get("route"), "path", None)
                endpoint = path if isinstance(path, str) and path else endpoint
            self.metrics.requests.labels(method, endpoint, str(status)).inc()
            self.metrics.latency.labels(method, endpoint).observe(time.perf_counter() - t0)
