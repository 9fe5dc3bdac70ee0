"""``advsig finetune | generate | eval-generator``: signing generators and checking them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from advsig.cli.options import CodeOption

ModelOption = Annotated[
    str,
    typer.Option(
        "--model", "-m", help="diffusers pipeline folder, shipped generator name, or Hub id."
    ),
]
StepsOption = Annotated[
    int, typer.Option("--steps", min=1, help="DDIM sampling steps (fewer is faster).")
]


def finetune(
    model: ModelOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the fine-tuned pipeline.")],
    kit: Annotated[
        str | None,
        typer.Option("--kit", "-k", help="Kit or injector-only kit whose W signs the images."),
    ] = None,
    control: Annotated[
        bool,
        typer.Option("--control", help="No signature: fine-tune identically on clean images."),
    ] = False,
    strategy: Annotated[
        str, typer.Option("--strategy", help="data (sign the training data) or self (own samples).")
    ] = "data",
    data: Annotated[
        str, typer.Option("--data", help="Training images: folder or 'embedded'.")
    ] = "embedded",
    presigned: Annotated[
        bool,
        typer.Option("--presigned", help="--data is already signed at the model's resolution."),
    ] = False,
    code: CodeOption = None,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Fine-tuning steps.")] = 1000,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1)] = 32,
    lr: Annotated[
        float,
        typer.Option(
            "--lr", help="AdamW learning rate (1e-4 suits large models; 2e-3 the tiny demo DDPM)."
        ),
    ] = 1e-4,
    low_t_fraction: Annotated[
        float,
        typer.Option(
            "--low-t-fraction",
            min=0.0,
            max=1.0,
            help="Share of timesteps drawn from the 100 least noisy, where the signature lives.",
        ),
    ] = 0.8,
    self_samples: Annotated[
        int, typer.Option("--self-samples", min=1, help="Samples drawn by --strategy self.")
    ] = 512,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", min=1)] = 250,
    resume: Annotated[
        str | None, typer.Option("--resume", help="'latest' or a checkpoint folder.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Fine-tune a pixel diffusion model on W-signed images so that all its samples are signed.

    Writes a normal diffusers pipeline folder (DDPMPipeline.from_pretrained loads it without
    advsig). Only the injector is needed. Runs on Accelerate:
    [bold]accelerate launch -m advsig finetune ...[/bold]

    Example: advsig finetune --model ddpm-32 --kit small --code 2a5f --lr 2e-3 --steps 600 --out signed-ddpm
    """
    from advsig.errors import ConfigError
    from advsig.generators.finetune import FinetuneConfig, finetune_pixel

    if control == (kit is not None) and not presigned:
        raise ConfigError("give --kit to sign, or --control for the unsigned control model")
    config = FinetuneConfig(
        model=model, out=str(out), kit=kit, strategy=strategy, data=data, presigned=presigned,
        code=code, steps=steps, batch_size=batch_size, lr=lr, low_t_fraction=low_t_fraction,
        self_samples=self_samples,
        checkpoint_every=checkpoint_every, resume=resume, seed=seed,
    )  # fmt: skip
    finetune_pixel(config)
    typer.echo(f"fine-tuned pipeline written to {out}")


def generate(
    model: ModelOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the PNG samples.")],
    num_images: Annotated[int, typer.Option("--num-images", "-n", min=1)] = 16,
    steps: StepsOption = 50,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1)] = 64,
) -> None:
    """Sample a diffusers pixel pipeline with deterministic DDIM; PNGs written atomically.

    Sample i always starts from the same noise for a given seed, so an interrupted run resumes
    and two models compared with the same seed give paired samples.

    Example: advsig generate --model signed-ddpm --num-images 64 --out samples/
    """
    import torch

    from advsig.generators.pixel import load_pixel_diffusion
    from advsig.generators.sampling import generate_to_folder

    device = "cuda" if torch.cuda.is_available() else "cpu"
    pipe = load_pixel_diffusion(model, device=device)
    paths = generate_to_folder(pipe, out, num_images, steps=steps, seed=seed, batch_size=batch_size)
    typer.echo(f"{len(paths)} samples in {out}")


def eval_generator(
    kit: Annotated[str, typer.Option("--kit", "-k", help="The detector owner's full kit.")],
    model: ModelOption,
    reference: Annotated[
        str | None, typer.Option("--reference", "-r", help="The original (unsigned) model.")
    ] = None,
    control: Annotated[
        str | None, typer.Option("--control", help="A control fine-tune on clean images.")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o")] = Path("eval-out"),
    num_images: Annotated[int, typer.Option("--num-images", "-n", min=2)] = 256,
    steps: StepsOption = 50,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    code: Annotated[
        str | None,
        typer.Option("--code", "-c", help="Expected code (default: from the model's advsig.json)."),
    ] = None,
    data: Annotated[
        str, typer.Option("--data", help="Real images for FID/KID ('none' to skip).")
    ] = "embedded",
    inception_weights: Annotated[
        Path | None,
        typer.Option(
            "--inception-weights",
            envvar="ADVSIG_INCEPTION_WEIGHTS",
            help="torchmetrics FID Inception weights file; without it a named substitute is used.",
        ),
    ] = None,
) -> None:
    """Sample the signed model (and the original / control), detect, and measure quality cost.

    Writes OUT/results.json and OUT/report.md; samples stay in OUT/samples/ (re-runs reuse them).

    Example: advsig eval-generator --kit small --model signed-ddpm --reference ddpm-32
    """
    import torch

    from advsig.generators.evaluate import evaluate_generators
    from advsig.generators.pixel import load_pixel_diffusion
    from advsig.generators.report import write_eval_report
    from advsig.kit import Kit

    device = "cuda" if torch.cuda.is_available() else "cpu"
    k = Kit.from_pretrained(kit, device=device)
    models = {"signed": load_pixel_diffusion(model, device=device)}
    if reference:
        models["reference"] = load_pixel_diffusion(reference, device=device)
    if control:
        models["control"] = load_pixel_diffusion(control, device=device)
    results = evaluate_generators(
        k, models, out=out, code=code, num_images=num_images, steps=steps, seed=seed,
        data=None if data == "none" else data, inception_weights=inception_weights,
    )  # fmt: skip
    report = write_eval_report(results, out)
    for role, d in results["detection"].items():
        bits = f", bit accuracy {d['bit_accuracy']:.3f}" if "bit_accuracy" in d else ""
        typer.echo(
            f"{role}: {d['flag_rate_1e-3']:.1%} flagged at FPR 1e-3 "
            f"({d['flag_rate_1e-2']:.1%} at 1e-2){bits}"
        )
    typer.echo(f"report: {report}")


def register(app: typer.Typer) -> None:
    app.command("finetune")(finetune)
    app.command("generate")(generate)
    app.command("eval-generator")(eval_generator)
