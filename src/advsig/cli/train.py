"""``advsig train``."""

from __future__ import annotations

from typing import Annotated

import typer


def train(
    data: Annotated[str, typer.Option("--data", help="Image folder (any sizes), or 'embedded'.")],
    out: Annotated[str, typer.Option("--out", "-o", help="Kit folder to write.")],
    preset: Annotated[
        str,
        typer.Option("--preset", "-p", help="paper, base, base-v2-light, robust, small or tiny."),
    ] = "base",
    num_bits: Annotated[
        int | None, typer.Option("--num-bits", help="Code length (0 = one-bit signature).")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Training steps.")] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", "-b", help="Images per step.")
    ] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Learning rate.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    resume: Annotated[
        str | None, typer.Option("--resume", help="'latest' or a checkpoint folder.")
    ] = None,
    checkpoint_every: Annotated[
        int | None, typer.Option("--checkpoint-every", help="Steps between checkpoints.")
    ] = None,
    augment_max: Annotated[
        float | None,
        typer.Option("--augment-max", min=0.0, max=1.0, help="Largest share of augmented batches."),
    ] = None,
    init_kit: Annotated[
        str | None,
        typer.Option("--init-kit", help="Start from this kit's weights (folder or shipped name)."),
    ] = None,
    target_psnr: Annotated[
        float | None, typer.Option("--target-psnr", help="Injector fidelity budget in dB.")
    ] = None,
    key_file: Annotated[
        str | None,
        typer.Option(
            "--key-file",
            help="The kit's secret key (hex). Created (mode 0600) if absent. "
            "Default: OUT/signature.key. Keep it on the detector side; never ship it.",
        ),
    ] = None,
) -> None:
    """Train a signature injector W and detector F jointly, calibrate them, and write a kit.

    Runs on CPU, one GPU, or many with [bold]accelerate launch -m advsig train ...[/bold]

    The signature (v2) is bound to each image's content and keyed: carriers and content
    mask derive from the key file, so kits with different keys do not flag each other.

    Example: advsig train --preset base --data photos/ --out my-kit --key-file my-kit.key
    """
    from advsig.training.presets import preset_config
    from advsig.training.trainer import train_signature

    config = preset_config(
        preset, data=data, out=out, num_bits=num_bits, steps=steps, batch_size=batch_size,
        lr=lr, seed=seed, resume=resume, checkpoint_every=checkpoint_every, augment_max=augment_max,
        init_kit=init_kit, target_psnr=target_psnr, key_file=key_file,
    )  # fmt: skip
    kit = train_signature(config)
    val = kit.training.get("validation", {})
    if val:
        typer.echo(
            f"kit written to {out}: validation PSNR {val['psnr_db_mean']:.1f} dB, "
            f"TPR@1e-3 {val['tpr']['0.001']:.3f}, bit accuracy {val['bit_accuracy']}"
        )


def register(app: typer.Typer) -> None:
    app.command("train")(train)
