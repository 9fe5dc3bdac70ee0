"""``advsig export-injector``, ``advsig kits``, ``advsig env``."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Annotated

import typer

from advsig.errors import OutputError


def export_injector(
    kit: Annotated[str, typer.Argument(help="Full kit (folder, shipped name or Hub id).")],
    out: Annotated[Path, typer.Argument(help="Folder to write the injector-only kit to.")],
) -> None:
    """Write the injector alone: what a detector owner hands a model publisher (F stays private).

    Example: advsig export-injector my-kit publisher-kit/
    """
    from advsig.kit import Kit

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(f"{out}: exists and is not an empty folder")
    Kit.from_pretrained(kit).save_pretrained(out, include_detector=False)
    typer.echo(f"injector-only kit written to {out}")


def kits() -> None:
    """List the kits shipped in the package.

    Example: advsig kits
    """
    from advsig.kit import Kit, shipped_kits

    for name in shipped_kits():
        k = Kit.from_pretrained(name)
        val = k.training.get("validation", {})
        signature = (
            f"signature v2 (content-bound, key {k.key_fingerprint})"
            if k.bound
            else "signature v1 (one texture per code: forgeable)"
        )
        typer.echo(
            f"{name}: {k.num_bits} bits, work size {k.work_size}, "
            f"val PSNR {val.get('psnr_db_mean', float('nan')):.1f} dB, {signature}"
        )


def env() -> None:
    """Print versions and devices (paste this into bug reports).

    Example: advsig env
    """
    import accelerate
    import kornia
    import torch

    import advsig

    typer.echo(f"advsig {advsig.__version__}")
    typer.echo(f"python {platform.python_version()} on {platform.platform()}")
    typer.echo(
        f"torch {torch.__version__}, accelerate {accelerate.__version__}, kornia {kornia.__version__}"
    )
    typer.echo(f"cpu threads {torch.get_num_threads()}")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            typer.echo(f"cuda:{i} {torch.cuda.get_device_name(i)}")
    else:
        typer.echo("cuda: not available")


def register(app: typer.Typer) -> None:
    app.command("export-injector")(export_injector)
    app.command("kits")(kits)
    app.command("env")(env)
