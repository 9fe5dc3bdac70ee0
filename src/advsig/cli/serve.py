"""``advsig serve``: the HTTP service (FastAPI on uvicorn)."""

from __future__ import annotations

from typing import Annotated

import typer

from advsig.cli.options import FprOption, KitOption
from advsig.cli.registry import DbOption
from advsig.kits import DEFAULT_KIT


def serve(
    kit: KitOption = DEFAULT_KIT,
    db: DbOption = None,
    host: Annotated[
        str, typer.Option(help="Interface to listen on; 0.0.0.0 exposes it to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    fpr: FprOption = 1e-3,
    confidence: Annotated[
        float, typer.Option(help="Default p-value needed to name an owner.")
    ] = 1e-3,
    max_request_mb: Annotated[float, typer.Option(min=0.001, help="Request body limit.")] = 32.0,
    max_pixels: Annotated[int, typer.Option(min=1, help="Pixels per image limit.")] = 25_000_000,
    max_images: Annotated[int, typer.Option(min=1, help="Images per request limit.")] = 16,
    rate: Annotated[
        int, typer.Option(min=1, help="Requests per minute for keys without their own rate.")
    ] = 120,
    max_batch: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Images per detector batch (default: 4 on CPU, where larger batches measured "
            "slower per image, 16 on GPU).",
        ),
    ] = None,
    max_wait_ms: Annotated[
        float, typer.Option(min=0, help="Longest an image waits for its batch to fill.")
    ] = 10.0,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:1 ...")] = "cpu",
) -> None:
    """Serve detection and attribution over HTTP, behind API keys from the registry.

    Create a key first (advsig registry add-key NAME [--role admin]), then POST images as
    multipart field "images" to /v1/detect or /v1/attribute with the header
    "Authorization: Bearer KEY". Admin keys also reach /v1/registry/...; GET /v1/health needs
    no key; the API is documented at /docs and /openapi.json. A page at / lets a person paste a
    key and drop images; GET /metrics (admin keys) is Prometheus text.

    Example: advsig serve --kit base --db sqlite:///registry.sqlite3 --port 8000  then
    curl -H "Authorization: Bearer $KEY" -F images=@photo.jpg localhost:8000/v1/attribute
    """
    import logging

    import uvicorn

    from advsig.kit import Kit
    from advsig.registry.db import kit_label, open_registry
    from advsig.serve import ServeSettings, create_app

    logging.getLogger("advsig").setLevel(logging.INFO)
    if max_batch is None:
        max_batch = 4 if device == "cpu" else 16
    settings = ServeSettings(
        kit_label=kit_label(kit), max_request_bytes=int(max_request_mb * 2**20),
        max_image_pixels=max_pixels, max_images=max_images, rate_per_minute=rate,
        max_batch=max_batch, max_wait_ms=max_wait_ms, fpr=fpr, confidence=confidence,
    )  # fmt: skip
    registry = open_registry(db)
    app = create_app(Kit.from_pretrained(kit, device=device), registry, settings)
    typer.echo(f"advsig serving kit {settings.kit_label} on http://{host}:{port} ({registry.url})")
    try:
        uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        registry.close()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
