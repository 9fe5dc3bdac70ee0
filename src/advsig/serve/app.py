"""The HTTP service: detection and attribution behind API keys, limits and dynamic batching.

Endpoints (OpenAPI docs at /docs, schema at /openapi.json):
    GET  /                                   no key; a page that checks dropped images with
                                             the endpoints below (see ``serve/page.py``).
    GET  /v1/health                          no key; liveness and the served kit.
    POST /v1/detect                          role detect or admin; multipart field ``images``
                                             (one or more files), query ``fpr``; one result per
                                             image, in order, with ``advsig detect --json``'s fields
                                             (``c2pa``: the upload's embedded C2PA manifest or null).
    POST /v1/attribute                       same, plus query ``confidence``; each result adds
                                             ``owner`` and ``attribution`` (matched owner only), and
                                             ``recovered_manifest``: the matched code's recorded
                                             C2PA manifest with the match's p-value, or null.
    GET  /v1/registry/owners                 role admin; owners with models and codes.
    POST /v1/registry/owners                 role admin; {"name", "contact"?}.
    POST /v1/registry/codes                  role admin; assigns a code of the served kit:
                                             {"owner", "model"?, "min_distance"?, "strategy"?, "seed"?}.
    POST /v1/registry/codes/{code}/revoke    role admin.
    GET  /v1/admin/stats                     role admin; batching counters.
    GET  /metrics                            role admin; Prometheus text format (series in
                                             ``serve/metrics.py``); admin-only like the stats.

Status codes: 401 missing or bad key, 403 wrong role, 404 unknown owner or code, 409 duplicate
owner or no code left, 413 body / image pixels / image count over the limit, 415 not multipart,
422 malformed request, 429 over the key's rate (with Retry-After), 503 queue full. An image that
cannot be decoded does not fail the request: its result carries ``error``. Registry writes made
through the service are recorded as made by ``api-key:<key name>``.

C2PA: manifests are read from the upload's bytes only; nothing is fetched over the network (no
remote manifests, no OCSP). A recovered manifest's registered code (its ``code`` and the soft
binding's) is shown to admin keys only, as attribution shows detect keys no registered code.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoint annotations at runtime,
# and they name dependencies built inside create_app.
import asyncio
import dataclasses
import logging
import math
import tempfile
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import torch
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from advsig.data.io import load_image
from advsig.errors import CodeError, ConfigError, ImageError, ImageTooLargeError, ProvenanceError
from advsig.kit import Kit
from advsig.provenance.lookup import RecoveredManifest, recover_manifest
from advsig.provenance.summary import ManifestSummary, read_manifest
from advsig.registry.allocation import allocate_code
from advsig.registry.attribution import (
    Attribution,
    CodeBook,
    Verdict,
    attribute,
    attribution_json,
    detection_json,
)
from advsig.registry.db import Registry
from advsig.registry.errors import (
    CodeNotFoundError,
    CodeSpaceExhaustedError,
    DuplicateOwnerError,
    OwnerNotFoundError,
)
from advsig.registry.keys import KeyInfo
from advsig.registry.owners import add_owner, list_owners, revoke_code
from advsig.serve import schemas
from advsig.serve.auth import Authenticator, RateLimiter, retry_after_header
from advsig.serve.batching import Batcher, BusyError
from advsig.serve.limits import BodySizeLimit, ServeSettings
from advsig.serve.metrics import CONTENT_TYPE_LATEST, MetricsMiddleware, ServiceMetrics
from advsig.serve.page import add_page_routes
from advsig.signing import work_image
from advsig.types import DetectionResult

logger = logging.getLogger(__name__)

FIELD = "images"


class _CodeBooks:
    """The served kit's registered codes, re-read from the database at most every ``ttl_s``."""

    def __init__(self, registry: Registry, kit: str, num_bits: int, ttl_s: float) -> None:
        self.registry, self.kit, self.num_bits, self.ttl_s = registry, kit, num_bits, ttl_s
        self._book: CodeBook | None = None
        self._loaded = -math.inf
        self._lock = asyncio.Lock()

    async def get(self) -> CodeBook:
        if self.num_bits == 0:
            raise HTTPException(
                409, f"kit {self.kit!r} embeds no code, so images cannot be attributed"
            )
        async with self._lock:
            if time.monotonic() - self._loaded > self.ttl_s:
                self._book = await run_in_threadpool(
                    CodeBook.load, self.registry, kit=self.kit, num_bits=self.num_bits
                )
                self._loaded = time.monotonic()
            return self._book

    def invalidate(self) -> None:
        self._loaded = -math.inf


def _decode(data: bytes, filename: str, kit: Kit, max_pixels: int) -> torch.Tensor | ImageError:
    """Upload bytes -> (3, h, w) at the kit's working size, or the named error for this image.

    Goes through ``load_image`` (the one place that handles hostile files) via a private
    temporary file; messages quote the client's file name, not the temporary path.
    """
    with tempfile.TemporaryDirectory(prefix="advsig-upload-") as tmp:
        path = Path(tmp) / f"upload{Path(filename).suffix[:10]}"
        path.write_bytes(data)
        try:
            image = load_image(path, max_pixels=max_pixels).image  # (3, H, W)
            return work_image(image, kit.work_size, filename)  # (3, h, w)
        except ImageError as exc:
            return type(exc)(str(exc).replace(str(path), filename))


def _embedded_manifest(data: bytes, content_type: str | None, name: str) -> ManifestSummary | None:
    """The upload's embedded C2PA manifest, validated offline; None when it has none.

    The client's content type is only a hint (c2pa recognises the format from the bytes).
    A file c2pa cannot read at all (an empty one) counts as having none: its detection result
    already says what is wrong with it.
    """
    mime = content_type if content_type and content_type.startswith("image/") else None
    try:
        return read_manifest(data, format=mime)
    except ProvenanceError as exc:
        logger.info("%s: no C2PA manifest read (%s)", name, exc)
        return None


def _recovered_json(found: RecoveredManifest | None, *, admin: bool) -> dict | None:
    """``found`` for the response: everything for admins; without the registered code else.

    Why the soft binding's code goes too: it is the registered code, which attribution never
    shows a detect key (the decoded ``bits`` are what the image itself says).
    """
    if found is None:
        return None
    if admin:
        return found.to_json_dict()
    d = found.public_json_dict()  # fresh dicts: safe to edit
    d["manifest"]["code"] = None
    if d["manifest"]["soft_binding"]:
        d["manifest"]["soft_binding"]["code"] = None
    return d


def _error_result(name: str, message: str, fpr: float) -> DetectionResult:
    nan = math.nan
    return DetectionResult(
        is_signed=False, score=nan, p_value=nan, threshold=nan, fpr=fpr, path=name, error=message
    )


# Registry errors -> status codes of the admin endpoints.
_STATUS = (
    (OwnerNotFoundError, 404), (CodeNotFoundError, 404), (DuplicateOwnerError, 409),
    (CodeSpaceExhaustedError, 409), (CodeError, 422), (ConfigError, 422),
)  # fmt: skip


async def _registry_call(fn, *args, **kwargs):
    """Run a blocking registry function in a worker thread; its named errors become 4xx."""
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except tuple(e for e, _ in _STATUS) as exc:
        status = next(code for e, code in _STATUS if isinstance(exc, e))
        raise HTTPException(status, str(exc)) from None


def _actor(key: KeyInfo) -> str:
    return f"api-key:{key.name}"


@dataclasses.dataclass(frozen=True)
class _Checked:
    """One uploaded image: its detection result and its embedded C2PA manifest."""

    result: DetectionResult
    c2pa: ManifestSummary | None


def _c2pa_json(checked: _Checked) -> dict | None:
    return checked.c2pa.to_json_dict() if checked.c2pa is not None else None


def create_app(kit: Kit, registry: Registry, settings: ServeSettings | None = None) -> FastAPI:
    """The FastAPI app serving ``kit``; keys and codes come from ``registry``.

    Example:
        >>> app = create_app(Kit.from_pretrained("base"), open_registry(), ServeSettings())
        >>> uvicorn.run(app, host="127.0.0.1", port=8000)
    """
    settings = settings or ServeSettings()
    kit.threshold(settings.fpr)  # an uncalibrated or injector-only kit fails now, not per request
    metrics = ServiceMetrics()
    batcher = Batcher(
        kit, max_batch=settings.max_batch, max_wait_ms=settings.max_wait_ms,
        max_queue=settings.max_queue, on_batch=metrics.observe_batch,
    )  # fmt: skip
    metrics.watch_queue(lambda: batcher.queued, settings.max_queue)
    auth = Authenticator(registry, cache_s=settings.key_cache_s)
    limiter = RateLimiter()
    books = _CodeBooks(registry, settings.kit_label, kit.num_bits, settings.codebook_ttl_s)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await batcher.start()
        logger.info("serving kit %s (%d bits)", settings.kit_label, kit.num_bits)
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(
        title="advsig",
        version="1",
        summary="Is this image signed, and by whom?",
        description="Send `Authorization: Bearer <key>` (keys: `advsig registry add-key`).",
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    # Added last, so outermost: it also counts the body limit's 413s.
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=app.router.routes)
    app.state.settings = settings
    app.state.batcher = batcher
    app.state.metrics = metrics
    add_page_routes(app)

    def require(*roles: str):
        async def dependency(request: Request) -> KeyInfo:
            header = request.headers.get("authorization", "")
            key = header[7:].strip() if header.lower().startswith("bearer ") else ""
            key = key or request.headers.get("x-api-key", "").strip()
            if not key:
                raise HTTPException(
                    401, "missing API key (Authorization: Bearer <key>)",
                    headers={"WWW-Authenticate": "Bearer"},
                )  # fmt: skip
            info = await run_in_threadpool(auth.check, key)
            if info is None:
                raise HTTPException(
                    401, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"}
                )
            if info.role not in roles:
                raise HTTPException(
                    403,
                    f"key {info.name!r} has role {info.role!r}; this needs {' or '.join(roles)}",
                )
            wait = limiter.acquire(info.key_id, info.rate_per_minute or settings.rate_per_minute)
            if wait > 0:
                raise HTTPException(
                    429, f"rate limit of key {info.name!r} exceeded; retry in {wait:.1f} s",
                    headers={"Retry-After": retry_after_header(wait)},
                )  # fmt: skip
            return info

        return dependency

    detect_role = Depends(require("detect", "admin"))
    admin_role = Depends(require("admin"))

    @app.exception_handler(BusyError)
    async def _busy(_request: Request, exc: BusyError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})

    async def detect_uploads(request: Request, fpr: float, endpoint: str) -> list[_Checked]:
        """One result per uploaded image, in order; unreadable images carry ``error``.

        The embedded C2PA manifests are read (in a worker thread) while the batcher detects.
        """
        form, uploads = await _read_uploads(request, settings)
        try:
            payloads = [
                (u.filename or f"image-{i}", await u.read(), u.content_type)
                for i, u in enumerate(uploads)
            ]
        finally:
            await form.close()
        decoded = await run_in_threadpool(
            lambda: [_decode(d, n, kit, settings.max_image_pixels) for n, d, _ in payloads]
        )
        too_large = [e for e in decoded if isinstance(e, ImageTooLargeError)]
        if too_large:
            raise HTTPException(413, str(too_large[0]))
        tensors = [t for t in decoded if isinstance(t, torch.Tensor)]

        async def detected() -> list:
            return await batcher.submit(tensors) if tensors else []

        def manifests() -> list[ManifestSummary | None]:
            return [
                _embedded_manifest(d, ctype, n) if isinstance(item, torch.Tensor) else None
                for (n, d, ctype), item in zip(payloads, decoded)
            ]

        rows, embedded = await asyncio.gather(detected(), run_in_threadpool(manifests))
        outputs = iter(rows)
        results = []
        for (name, _, _), item in zip(payloads, decoded):
            if isinstance(item, ImageError):
                results.append(_error_result(name, str(item), fpr))
                continue
            row = next(outputs)  # (1 + num_bits,) or the exception for this image
            if isinstance(row, Exception):
                logger.warning("detection failed for %s: %s", name, row)
                results.append(_error_result(name, f"{name}: detection failed ({row})", fpr))
            else:
                res = kit.results_from_logits(row[None], fpr=fpr, sizes=[item.shape[-2:]])[0]
                results.append(dataclasses.replace(res, path=name))
        metrics.observe_images(endpoint, results)
        return [_Checked(r, m) for r, m in zip(results, embedded)]

    async def recover_all(found: list[Attribution | None]) -> list[RecoveredManifest | None]:
        """The recorded manifest of each attributed image's code (one worker-thread call)."""
        if not any(a is not None and a.verdict is Verdict.ATTRIBUTED for a in found):
            return [None] * len(found)
        return await _registry_call(
            lambda: [
                None if a is None else recover_manifest(registry, a, kit=settings.kit_label)
                for a in found
            ]
        )

    @app.get("/v1/health", response_model=schemas.Health, tags=["service"])
    async def health() -> dict:
        """Liveness and the served kit; needs no key."""
        return {
            "status": "ok", "kit": settings.kit_label, "num_bits": kit.num_bits,
            "queued_images": batcher.queued,
        }  # fmt: skip

    @app.post(
        "/v1/detect", response_model=schemas.DetectResponse, tags=["detection"],
        openapi_extra=schemas.MULTIPART_IMAGES,
    )  # fmt: skip
    async def detect(
        request: Request,
        key: Annotated[KeyInfo, detect_role],
        fpr: Annotated[float, Query(gt=0, lt=1)] = settings.fpr,
    ) -> dict:
        """Is each uploaded image signed? Fields as `advsig detect --json`, in upload order,
        with `c2pa`: the upload's embedded C2PA manifest, validated, or null."""
        checked = await detect_uploads(request, fpr, "/v1/detect")
        results = [{**detection_json(c.result), "c2pa": _c2pa_json(c)} for c in checked]
        return {"kit": settings.kit_label, "fpr": fpr, "results": results}

    @app.post(
        "/v1/attribute", response_model=schemas.AttributeResponse, tags=["detection"],
        openapi_extra=schemas.MULTIPART_IMAGES,
    )  # fmt: skip
    async def attribute_images(
        request: Request,
        key: Annotated[KeyInfo, detect_role],
        fpr: Annotated[float, Query(gt=0, lt=1)] = settings.fpr,
        confidence: Annotated[float, Query(gt=0, lt=1)] = settings.confidence,
    ) -> dict:
        """Detection plus who signed each image: the matched owner, or "signed, owner unknown"
        when no registered code is near enough to name one with p <= `confidence`.
        `recovered_manifest`: the matched code's recorded C2PA manifest with the match's
        p-value, so provenance survives metadata stripping (its registered code: admins only)."""
        book = await books.get()
        checked = await detect_uploads(request, fpr, "/v1/attribute")
        found = []
        for c in checked:
            a = None if c.result.error else attribute(c.result, book, confidence=confidence)
            if a is not None:
                metrics.observe_verdict(a.verdict.value)
            found.append(a)
        recovered = await recover_all(found)
        admin = key.role == "admin"
        rows = [
            {
                **attribution_json(c.result, a, public=True),
                "c2pa": _c2pa_json(c),
                "recovered_manifest": _recovered_json(rec, admin=admin),
            }
            for c, a, rec in zip(checked, found, recovered)
        ]
        return {"kit": settings.kit_label, "fpr": fpr, "confidence": confidence, "results": rows}

    @app.get("/v1/admin/stats", response_model=schemas.Stats, tags=["admin"])
    async def stats(key: Annotated[KeyInfo, admin_role]) -> dict:
        """Batching counters since start."""
        return {"queued_images": batcher.queued, **batcher.stats.to_json_dict()}

    @app.get(
        "/metrics", tags=["admin"], response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    )  # fmt: skip
    async def prometheus_metrics(key: Annotated[KeyInfo, admin_role]) -> Response:
        """Prometheus text format: requests, images, latencies, batch sizes, queue depth.
        Admin keys only, like the stats (Prometheus: `authorization: {credentials: KEY}`)."""
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/registry/owners", response_model=list[schemas.OwnerOut], tags=["registry"])
    async def registry_owners(
        key: Annotated[KeyInfo, admin_role],
        owner: Annotated[str | None, Query(max_length=200)] = None,
        kit: Annotated[str | None, Query(max_length=500, description="Only its codes.")] = None,
    ) -> list[dict]:
        """Owners, their models and codes, with when and by whom each was added."""
        rows = await _registry_call(list_owners, registry, kit=kit, owner=owner)
        return [o.to_json_dict() for o in rows]

    @app.post(
        "/v1/registry/owners", response_model=schemas.OwnerOut, status_code=201,
        tags=["registry"],
    )  # fmt: skip
    async def registry_add_owner(
        key: Annotated[KeyInfo, admin_role], body: schemas.NewOwner
    ) -> dict:
        """Register an owner."""
        info = await _registry_call(
            add_owner, registry, body.name, contact=body.contact, created_by=_actor(key)
        )
        logger.info("key %s added owner %s", key.name, info.name)
        return info.to_json_dict()

    @app.post(
        "/v1/registry/codes", response_model=schemas.Allocated, status_code=201,
        tags=["registry"],
    )  # fmt: skip
    async def registry_assign_code(
        key: Annotated[KeyInfo, admin_role], body: schemas.NewCode
    ) -> dict:
        """Assign a new code of the served kit to an owner (or one of its models), at least
        `min_distance` bits from every registered code; 409 when none is left."""
        alloc = await _registry_call(
            allocate_code, registry, body.owner, kit=settings.kit_label, num_bits=kit.num_bits,
            model=body.model, min_distance=body.min_distance, strategy=body.strategy,
            seed=body.seed, assigned_by=_actor(key),
        )  # fmt: skip
        books.invalidate()
        logger.info("key %s assigned %s to %s", key.name, alloc.code, body.owner)
        return alloc.to_json_dict()

    @app.post("/v1/registry/codes/{code}/revoke", response_model=schemas.CodeOut, tags=["registry"])
    async def registry_revoke_code(key: Annotated[KeyInfo, admin_role], code: str) -> dict:
        """Revoke a code of the served kit; it stays reserved and attributable."""
        info = await _registry_call(
            revoke_code, registry, code, kit=settings.kit_label, revoked_by=_actor(key)
        )
        books.invalidate()
        logger.info("key %s revoked %s", key.name, info.code)
        return info.to_json_dict()

    return app


async def _read_uploads(
    request: Request, settings: ServeSettings
) -> tuple[FormData, list[UploadFile]]:
    """The uploaded files of field ``images``; 413 over the image count, 415 when not multipart,
    422 when malformed."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise HTTPException(
            415, f"expected multipart/form-data with field {FIELD!r}, got {ctype!r}"
        )
    try:
        form = await request.form(max_files=settings.max_images, max_fields=16)
    except StarletteHTTPException as exc:  # starlette turns parser errors into 400s
        if "Too many files" in str(exc.detail):
            raise HTTPException(
                413, f"more than {settings.max_images} images in one request"
            ) from None
        raise HTTPException(422, f"malformed multipart body ({exc.detail})") from None
    values = form.getlist(FIELD)
    problem = None
    if not values:
        problem = f"no files in multipart field {FIELD!r}"
    elif not all(isinstance(v, UploadFile) for v in values):
        problem = f"field {FIELD!r} must hold files, not text"
    if problem:
        await form.close()
        raise HTTPException(422, problem)
    return form, values  # type: ignore[return-value]
