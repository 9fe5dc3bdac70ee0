"""``advsig bench``: robustness of advsig and other watermarks on the same images and attacks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from advsig.cli.options import KitOption
from advsig.kits import DEFAULT_KIT


def bench(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (resumable).")],
    kit: KitOption = DEFAULT_KIT,
    images: Annotated[
        str, typer.Option("--images", help="'embedded' (test-split photos) or a folder.")
    ] = "embedded",
    methods: Annotated[
        str,
        typer.Option(
            "--methods",
            help="Comma-separated: advsig (the --kit), advsig:KIT (another kit), dwtDct, "
            "dwtDctSvd, rivaGan.",
        ),
    ] = "advsig,dwtDct,dwtDctSvd,rivaGan",
    attacks: Annotated[
        str,
        typer.Option(
            "--attacks",
            help="'standard' (the published grid), 'capture' (WebP, AVIF, recompression, "
            "social-media uploads, screenshots), 'all' (both, plus regeneration and other "
            "image-to-image attacks) or comma-separated labels such as jpeg75,webp50.",
        ),
    ] = "standard",
    size: Annotated[
        int, typer.Option("--size", min=0, help="Side of the square crops; 0 = native size.")
    ] = 256,
    num_images: Annotated[
        int,
        typer.Option(
            "--num-images",
            "-n",
            min=2,
            help="Images (crops cycle over the photos: centre first, then random crops).",
        ),
    ] = 20,  # fmt: skip
    seed: Annotated[int, typer.Option("--seed")] = 0,
    adversaries: Annotated[
        bool,
        typer.Option(
            "--adversaries",
            help="Also run the model-access adversaries (evasion, estimation, spoofing).",
        ),
    ] = False,
    adversary_sections: Annotated[
        str | None,
        typer.Option(
            "--adversary-sections",
            help="Comma-separated subset of: security, regeneration, restoration, pgd, spoof, "
            "query, estimation (default: all).",
        ),
    ] = None,
    quick_adversaries: Annotated[
        bool,
        typer.Option("--quick-adversaries", help="Tiny adversary budgets (smoke runs)."),
    ] = False,
    signed_images: Annotated[
        str | None,
        typer.Option(
            "--signed-images",
            help="Folder of signed images the attacker holds (e.g. a signed generator's "
            "samples); the security and estimation rows also forge from them.",
        ),
    ] = None,
) -> None:
    """Embed with each method, attack, detect; write report.md, results.json and plots.

    Every image x method x attack row goes to OUT/rows.jsonl as it is measured, so an
    interrupted run resumes. Thresholds for FPR 1e-2 / 1e-3 are set on the clean images under
    the same attack.

    Example: advsig bench --kit base --images embedded --out bench-base --methods advsig:base,advsig:robust,rivaGan --attacks standard --size 256

    Security rows only: advsig bench --kit base --out sec --methods advsig --attacks jpeg90 --adversaries --adversary-sections security
    """
    import shlex
    import sys

    from advsig.bench.runner import BenchConfig, run_bench

    names = tuple(m.strip() for m in methods.split(",") if m.strip())
    config = BenchConfig(
        kit=kit, images=images, out=str(out), methods=names, attacks=attacks, size=size,
        num_images=num_images, seed=seed, adversaries=adversaries,
        adversary_sections=(
            tuple(x.strip() for x in adversary_sections.split(",") if x.strip())
            if adversary_sections else None
        ),
        signed_images=signed_images, quick_adversaries=quick_adversaries,
        command="advsig " + shlex.join(sys.argv[1:]),
    )  # fmt: skip
    results = run_bench(config)
    typer.echo(
        f"{len(results['rows'])} rows ({results['evaluated_rows']} measured now) in "
        f"{results['wall_time_s']:.0f} s; report: {out / 'report.html'} (and report.md)"
    )


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
