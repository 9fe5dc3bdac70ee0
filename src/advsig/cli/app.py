"""Entry point: builds the typer app and turns advsig's named errors into one-line messages."""

from __future__ import annotations

import logging
import os
import sys

import typer

from advsig.errors import AdvsigError

app = typer.Typer(
    name="advsig",
    help="Adversarial signatures: sign images and generators, detect and attribute them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _register() -> None:
    from advsig.cli import bench, demo, detect, generators, kits, registry, serve, sign, train

    for module in (demo, train, sign, detect, generators, registry, serve, kits, bench):
        module.register(app)


def main() -> None:
    """Run the CLI; user errors exit 1 with one line, tracebacks only with ADVSIG_DEBUG=1."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _register()
    try:
        app()
    except (AdvsigError, FileNotFoundError) as exc:
        if os.environ.get("ADVSIG_DEBUG") == "1":
            raise
        typer.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.secho("interrupted", fg="red", err=True)
        sys.exit(130)
