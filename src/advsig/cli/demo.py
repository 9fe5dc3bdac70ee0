"""``advsig demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from advsig.cli.options import FprOption
from advsig.kits import DEFAULT_KIT


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("demo-out"),
    kit: Annotated[
        str, typer.Option("--kit", "-k", help="Kit for the photo part (default: base-v2-r48).")
    ] = DEFAULT_KIT,
    train_kit: Annotated[
        bool, typer.Option("--train-kit", help="Train a tiny kit first (about a minute).")
    ] = False,
    fpr: FprOption = 1e-3,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the code and training.")] = 0,
    generators: Annotated[
        str,
        typer.Option(
            "--generators",
            help="Generator families to sign: ddpm, ldm, gan (comma-separated), or none.",
        ),
    ] = "ddpm,ldm,gan",
    generator_kit: Annotated[
        str | None,
        typer.Option(
            "--generator-kit",
            help="Kit for the 32x32 generated images (default: small-v2, the kit the shipped "
            "fine-tunes were signed with; another kit fine-tunes every family live).",
        ),
    ] = None,
    live: Annotated[
        str,
        typer.Option(
            "--live",
            help="Families fine-tuned in this run (comma-separated, or none); the others are "
            "read from the signed and control fine-tunes shipped with advsig.",
        ),
    ] = "gan",
    full: Annotated[
        bool,
        typer.Option("--full", help="Fine-tune every family live (about 30 min on 2 CPU cores)."),
    ] = False,
    finetune_steps: Annotated[
        int | None,
        typer.Option(
            "--finetune-steps", min=1, help="Fine-tuning steps per generator (default: per family)."
        ),
    ] = None,
    num_samples: Annotated[
        int, typer.Option("--num-samples", min=2, help="Samples per model for detection.")
    ] = 64,
) -> None:
    """Sign embedded photos the kit never saw, detect them, attack them; then sign three tiny
    generators (a DDPM, a latent diffusion model and a GAN, each next to a clean control) and
    detect their samples with one detector. The GAN is fine-tuned live; the DDPM and LDM
    fine-tunes ship with advsig (made by --full), so the whole demo takes a few minutes.

    Example: advsig demo --out demo-out
    """
    from rich.console import Console
    from rich.table import Table

    from advsig.demo import run_demo

    families = tuple(g for g in generators.split(",") if g and g != "none")
    live_families = families if full else tuple(g for g in live.split(",") if g and g != "none")
    s = run_demo(
        out, kit=kit, train_kit=train_kit, fpr=fpr, seed=seed, generators=families,
        generator_kit=generator_kit, live=live_families, finetune_steps=finetune_steps,
        num_samples=num_samples,
    )  # fmt: skip
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
    for family, result in s.generators.items():
        g = result.to_json_dict()
        how = "fine-tuned now" if g["live"] else "shipped fine-tunes"
        gt = Table(
            title=f"{family} ({how}): {g['num_samples']} samples per model, FPR {g['fpr']:g}"
        )
        for col in ("model", "flagged", "bit accuracy"):
            gt.add_column(col)
        for role in ("original", "control", "signed"):
            bits = g["bit_accuracy"] if role == "signed" else None
            gt.add_row(
                role, f"{g[role + '_flag_rate']:.1%}", f"{bits:.3f}" if bits is not None else ""
            )
        console.print(gt)
    console.print(
        f"report: {out / 'report.html'} (also {out / 'report.md'}; panels in {out / 'panels'}), "
        f"{s.wall_time_s:.0f} s"
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
