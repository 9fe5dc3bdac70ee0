"""The browser page at ``/``: paste a key, drop images, read each verdict.

Why plain files shipped in the package (``advsig/serve/static``) and no build step or CDN: the
service often runs where nothing outside can be reached, and a page that loads third-party code
would hand that code every key pasted into it. The page calls the same JSON API as any client
(``/v1/health``, ``/v1/attribute`` or ``/v1/detect``, ``/v1/registry/owners`` for admin keys),
so it holds no logic the API lacks. The key stays in the page's memory; it is never stored.

The files are read once, through ``importlib.resources``, and served from an allow-list, so no
request path reaches the file system. The Content-Security-Policy allows only this origin's
script and style: no inline script runs, and result text (file names, server messages) is
inserted as text, never as HTML.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, HTTPException
from fastapi.responses import Response

ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def load_assets() -> dict[str, bytes]:
    """The page's files from the installed package; a missing one fails at start-up."""
    root = resources.files("advsig.serve") / "static"
    return {name: (root / name).read_bytes() for name in ASSETS}


def add_page_routes(app: FastAPI) -> None:
    """``GET /`` (the page) and ``GET /static/{name}`` (its script, style and icon).

    Added to ``app`` itself, not through ``include_router``: FastAPI >= 0.115 keeps an included
    router as one opaque route, and /metrics labels requests by the matched route's path.
    """
    assets = load_assets()

    def serve(name: str) -> Response:
        if name not in assets:
            raise HTTPException(404, f"no such file {name!r}")
        return Response(assets[name], media_type=ASSETS[name], headers=SECURITY_HEADERS)

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return serve("index.html")

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        return serve(name)
