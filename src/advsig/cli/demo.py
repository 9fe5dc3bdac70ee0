"""``advsig demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from advsig.cli.options import FprOption


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("demo-out"),
    kit: Annotated[
        str, typer.Option("--kit", "-k", help="Kit to use (default: shipped base kit).")
    ] = "base",
    train_kit: Annotated[
        bool, typer.Option("--train-kit", help="Train a tiny kit first (about a minute).")
    ] = False,
    fpr: FprOption = 1e-3,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the code and training.")] = 0,
) -> None:
    """Sign embedded photos the kit never saw, detect them, attack them, and write a report.

    Example: advsig demo --out demo-out
    """
    from rich.console import Console
    from rich.table import Table

    from advsig.demo import run_demo

    s = run_demo(out, kit=kit, train_kit=train_kit, fpr=fpr, seed=seed)
    console = Console()
    mean_psnr = sum(s.psnr_db.values()) / len(s.psnr_db)
    table = Table(title=f"advsig demo: kit {s.kit}, mean PSNR {mean_psnr:.1f} dB, FPR {s.fpr:g}")
    for col in ("attack", "signed flagged", "unsigned flagged", "bit accuracy"):
        table.add_column(col)
    for r in s.attacks:
        bits = f"{r.bit_accuracy:.3f}" if r.bit_accuracy is not None else "n/a"
        table.add_row(
            r.attack,
            f"{r.signed_flagged}/{r.num_images}",
            f"{r.clean_flagged}/{r.num_images}",
            bits,
        )
    console.print(table)
    console.print(
        f"report: {out / 'report.md'} (panels in {out / 'panels'}), {s.wall_time_s:.0f} s"
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
