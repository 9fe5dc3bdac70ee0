"""``advsig finetune | generate | eval-generator``: signing generators and checking them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from advsig.cli.options import CodeOption

ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="diffusers pipeline folder (pixel or latent), advsig GAN folder, shipped generator "
        "name (ddpm-32, ldm-32, gan-32) or Hub id.",
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
        str | None,
        typer.Option(
            "--strategy",
            help="pixel: data | self | distill; latent: decoder | data | self | autoencoder; "
            "GAN: distill | data "
            "(default: the first).",
        ),
    ] = None,
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
            help="Share of timesteps drawn from the --low-t-max least noisy, where the "
            "signature lives.",
        ),
    ] = 0.8,
    low_t_max: Annotated[
        int,
        typer.Option(
            "--low-t-max",
            min=1,
            help="How many of the least noisy timesteps --low-t-fraction draws from (10 with "
            "--strategy distill signs a content-bound v2 kit; see BENCHMARKS.md).",
        ),
    ] = 100,
    detector_weight: Annotated[
        float,
        typer.Option(
            "--detector-weight",
            min=0.0,
            help="latent decoder: also train against the kit's detector with this weight "
            "(needs the full kit; e.g. 1e-3).",
        ),
    ] = 0.0,
    position_map: Annotated[
        bool,
        typer.Option(
            "--position-map",
            help="Let the generator draw a content-bound signature fixed to the kit's grid. "
            "Pixel diffusion: a learned per-pixel bias before the UNet's last layers. GAN and "
            "latent decoder: a signature head (a per-pixel map modulated by the generator's "
            "coarse features; the decoder itself stays frozen). Pixel and latent models with "
            "one load whole only through advsig; see BENCHMARKS.md.",
        ),
    ] = False,
    residual_gain: Annotated[
        float,
        typer.Option(
            "--residual-gain",
            min=0.0,
            help="GAN distill: learn G + GAIN (W(G) - G), making up for the part of W's "
            "residual the head does not copy (the demo uses 1.3; BENCHMARKS.md, stop 36).",
        ),
    ] = 1.0,
    self_samples: Annotated[
        int, typer.Option("--self-samples", min=1, help="Samples drawn by --strategy self.")
    ] = 512,
    teacher: Annotated[
        str | None,
        typer.Option(
            "--teacher",
            help="distill: the unsigned model whose estimate W signs (default: --model); "
            "lets a run continue from a signed model with a wider --low-t-max.",
        ),
    ] = None,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", min=1)] = 250,
    resume: Annotated[
        str | None, typer.Option("--resume", help="'latest' or a checkpoint folder.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Fine-tune a generator so that all its samples carry the kit's signature.

    Pixel diffusion (data: train on W-signed images; self: on its own signed samples; distill:
    at low noise learn W of the original model's own clean estimate, which content-bound v2
    kits need), latent diffusion (decoder: only the VAE decoder learns to output W(D(z)); data;
    self) and GANs (distill: G' matches W(G(z)); data: adversarial fine-tuning on signed
    images). The family is read from the model folder. Diffusion models stay normal diffusers folders. Only the
    injector is needed. Runs on Accelerate: [bold]accelerate launch -m advsig finetune ...[/bold]

    Example: advsig finetune --model ddpm-32 --kit small --code 2a5f --lr 2e-3 --steps 600 --out signed-ddpm
    """
    from advsig.errors import ConfigError
    from advsig.generators.base import generator_family
    from advsig.generators.families import get_family
    from advsig.generators.finetune import FinetuneConfig, finetune_generator

    if control == (kit is not None) and not presigned:
        raise ConfigError("give --kit to sign, or --control for the unsigned control model")
    family = generator_family(model)
    strategy = strategy or get_family(family).default_strategy
    get_family(family).check_strategy(strategy)
    config = FinetuneConfig(
        model=model, out=str(out), kit=kit, strategy=strategy, data=data, presigned=presigned,
        code=code, steps=steps, batch_size=batch_size, lr=lr, low_t_fraction=low_t_fraction,
        low_t_max=low_t_max, self_samples=self_samples, teacher=teacher,
        detector_weight=detector_weight, position_map=position_map, residual_gain=residual_gain,
        checkpoint_every=checkpoint_every, resume=resume, seed=seed,
    )  # fmt: skip
    finetune_generator(config)
    typer.echo(f"fine-tuned {family} model written to {out}")


def generate(
    model: ModelOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the PNG samples.")],
    num_images: Annotated[int, typer.Option("--num-images", "-n", min=1)] = 16,
    steps: StepsOption = 50,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1)] = 64,
) -> None:
    """Sample any supported generator (deterministic DDIM for diffusion); PNGs written atomically.

    Sample i always starts from the same noise for a given seed, so an interrupted run resumes
    and two models compared with the same seed give paired samples.

    Example: advsig generate --model signed-ddpm --num-images 64 --out samples/
    """
    import torch

    from advsig.generators.base import load_generator
    from advsig.generators.sampling import generate_to_folder

    device = "cuda" if torch.cuda.is_available() else "cpu"
    pipe = load_generator(model, device=device)
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
            help="torchmetrics FID Inception weights as .safetensors (a .pth is refused: it would "
            "be unpickled); without it a named substitute is used.",
        ),
    ] = None,
    attack: Annotated[
        str | None,
        typer.Option(
            "--attack",
            help="'finetune': an attacker fine-tunes the signed model on clean --data; samples "
            "are read after each of --attack-steps.",
        ),
    ] = None,
    attack_steps: Annotated[
        str, typer.Option("--attack-steps", help="Attacker step milestones, comma-separated.")
    ] = "0,100,1000",
    attack_lr: Annotated[
        float, typer.Option("--attack-lr", help="The attacker's learning rate.")
    ] = 1e-4,
    batch_size: Annotated[
        int, typer.Option("--batch-size", "-b", min=1, help="The attacker's batch size.")
    ] = 32,
    attack_low_t_fraction: Annotated[
        float,
        typer.Option(
            "--attack-low-t-fraction",
            min=0.0,
            max=1.0,
            help="Diffusion: share of the attacker's timesteps drawn from the 100 least noisy "
            "(advsig's own emphasis, the strongest attacker measured); 0 = the uniform loss of "
            "an ordinary training script.",
        ),
    ] = 0.8,
    attack_strategy: Annotated[
        str | None,
        typer.Option(
            "--attack-strategy",
            help="The attacker's recipe (default: the family's ordinary one: pixel and latent "
            "'data', GAN 'data'); 'autoencoder' retrains a latent model's decoder on clean "
            "images, where a 'decoder'-signed model keeps its signature.",
        ),
    ] = None,
) -> None:
    """Sample the signed model (and the original / control), detect, and measure quality cost.

    Works for pixel and latent diffusion and GANs. Writes OUT/results.json and OUT/report.md;
    samples stay in OUT/samples/ (re-runs reuse them). With --attack finetune, measures
    persistence instead: OUT/persistence.json and OUT/report.md.

    Example: advsig eval-generator --kit small --model signed-ddpm --reference ddpm-32
    """
    import torch

    from advsig.errors import ConfigError
    from advsig.generators.base import load_generator
    from advsig.generators.evaluate import evaluate_generators
    from advsig.generators.report import write_eval_report
    from advsig.kit import Kit

    device = "cuda" if torch.cuda.is_available() else "cpu"
    k = Kit.from_pretrained(kit, device=device)
    if attack is not None:
        if attack != "finetune":
            raise ConfigError(f"unknown --attack {attack!r}; known: finetune")
        _persistence(k, model, out, attack_steps, attack_lr, batch_size, num_images, steps,
                     seed, code, data, attack_low_t_fraction, attack_strategy)  # fmt: skip
        return
    models = {"signed": load_generator(model, device=device)}
    if reference:
        models["reference"] = load_generator(reference, device=device)
    if control:
        models["control"] = load_generator(control, device=device)
    results = evaluate_generators(
        k, models, out=out, code=code, num_images=num_images, steps=steps, seed=seed,
        data=None if data == "none" else data, inception_weights=inception_weights,
    )  # fmt: skip
    report = write_eval_report(results.to_json_dict(), out)
    for role, d in results.detection.items():
        bits = f", bit accuracy {d.bit_accuracy:.3f}" if d.bit_accuracy is not None else ""
        typer.echo(
            f"{role}: {d.flag_rate_1e3:.1%} flagged at FPR 1e-3 ({d.flag_rate_1e2:.1%} at 1e-2){bits}"
        )
    typer.echo(f"report: {report.with_suffix('.html')} (and {report.name})")


def _persistence(
    kit, model, out, attack_steps, lr, batch_size, num_images, steps, seed, code, data,
    low_t_fraction, strategy,
):  # fmt: skip
    from advsig.errors import ConfigError
    from advsig.generators.persistence import PersistenceConfig, finetune_attack, persistence_table
    from advsig.html_report import write_html_report
    from advsig.utils import write_text_atomic

    try:
        milestones = [int(v) for v in attack_steps.split(",") if v.strip()]
    except ValueError as exc:
        raise ConfigError(f"--attack-steps must be integers, got {attack_steps!r}") from exc
    config = PersistenceConfig(
        model=model, out=str(out), milestones=milestones, data=data, lr=lr,
        batch_size=batch_size, low_t_fraction=low_t_fraction, num_images=num_images,
        sample_steps=steps, seed=seed, strategy=strategy,
    )  # fmt: skip
    result = finetune_attack(kit, config, code=code)
    lines = ["# Persistence under fine-tuning", "", *persistence_table(result.to_json_dict()), ""]
    write_text_atomic(Path(out) / "report.md", "\n".join(lines))
    html = write_html_report(Path(out) / "report.md")
    for steps_done, stats in result.milestones:
        typer.echo(f"after {steps_done} attacker steps: {stats.flag_rate_1e3:.1%} flagged")
    typer.echo(f"report: {Path(out) / 'report.md'} ({html})")


def register(app: typer.Typer) -> None:
    app.command("finetune")(finetune)
    app.command("generate")(generate)
    app.command("eval-generator")(eval_generator)
