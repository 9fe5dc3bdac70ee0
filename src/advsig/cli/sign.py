"""``advsig sign``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from advsig.cli.distributed import launched_processes
from advsig.cli.options import BatchOption, CodeOption, KitOption


def sign(
    src: Annotated[Path, typer.Argument(help="Image file or folder (searched recursively).")],
    dst: Annotated[Path, typer.Argument(help="Output file or folder (relative paths kept).")],
    kit: KitOption = "base",
    code: CodeOption = None,
    format: Annotated[str, typer.Option("--format", "-f", help="png (lossless) or jpeg.")] = "png",
    quality: Annotated[
        int, typer.Option("--quality", "-q", min=1, max=100, help="JPEG quality.")
    ] = 95,
    batch_size: BatchOption = 8,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Redo outputs that already exist.")
    ] = False,
) -> None:
    """Sign one image or a folder tree with the kit's injector W.

    Existing outputs are skipped, so an interrupted run resumes. Bad files are reported at the
    end and make the exit code 1. Spread over processes with
    [bold]accelerate launch -m advsig sign ...[/bold]

    Example: advsig sign photos/ signed/ --kit base --code c0ffee
    """
    from advsig.kit import Kit
    from advsig.signing import sign_files

    with launched_processes() as acc:
        rank, world = (acc.process_index, acc.num_processes) if acc else (0, 1)
        k = Kit.from_pretrained(kit, device=acc.device if acc else "cpu")
        results = sign_files(
            k, src, dst, code=code, format=format, quality=quality, batch_size=batch_size,
            overwrite=overwrite, process_index=rank, num_processes=world, progress=rank == 0,
        )  # fmt: skip
        if acc is not None:
            from accelerate.utils import gather_object

            results = gather_object(results)
    if rank != 0:
        return
    counts = {s: sum(r.status == s for r in results) for s in ("signed", "skipped", "failed")}
    psnrs = [r.psnr for r in results if r.psnr is not None]
    mean = f", mean PSNR {sum(psnrs) / len(psnrs):.1f} dB" if psnrs else ""
    typer.echo(
        f"signed {counts['signed']}, skipped {counts['skipped']} (already done), failed {counts['failed']}{mean}"
    )
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        # Load errors quote the input already; write errors quote the output, so add the input.
        message = r.error if r.src in (r.error or "") else f"{r.src}: {r.error}"
        typer.secho(f"failed: {message}", fg="red", err=True)
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("sign")(sign)
