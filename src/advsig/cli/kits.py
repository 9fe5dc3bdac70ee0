"""``advsig export-injector``, ``advsig calibrate``, ``advsig kits``, ``advsig env``."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Annotated

import typer

from advsig.errors import ConfigError, OutputError


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


def calibrate(
    kit: Annotated[str, typer.Argument(help="Full kit (folder, shipped name or Hub id).")],
    out: Annotated[Path, typer.Argument(help="Folder to write the recalibrated kit to.")],
    data: Annotated[
        str, typer.Option("--data", help="Clean images (folder, any sizes), or 'embedded'.")
    ] = "embedded",
    num: Annotated[
        int, typer.Option("--num", min=20, help="Clean crops to score (several sizes).")
    ] = 2000,
    score_reference: Annotated[
        str | None,
        typer.Option(
            "--score-reference",
            help="'decoy' (v2: cancels each photo's own offset) or 'none' (raw logit). "
            "Default: keep the kit's.",
        ),
    ] = None,
    stem_eps: Annotated[
        float | None,
        typer.Option(
            "--stem-eps",
            help="Epsilon of the detector's first GroupNorm (default: keep the kit's). A larger "
            "one keeps flat images, where a v2 mask fades, from being read at full strength.",
        ),
    ] = None,
    odd_bits: Annotated[
        bool | None,
        typer.Option(
            "--odd-bits/--no-odd-bits",
            help="Odd-score kits: read bits as b(u) - b(-u), from both of the score's passes "
            "(more of the code read, no extra cost; default: keep the kit's).",
        ),
    ] = None,
    fit_up: Annotated[
        bool | None,
        typer.Option(
            "--fit-up/--no-fit-up",
            help="Also read images smaller than the kit's working size fitted back up to it, "
            "so that a downscaled copy of a small signed image (an upload, a screenshot) is "
            "read on its signing grid (default: keep the kit's).",
        ),
    ] = None,
    mirror: Annotated[
        bool | None,
        typer.Option(
            "--mirror/--no-mirror",
            help="Also read every image mirrored left to right, so that a mirrored signed "
            "image is found; doubles detection's cost (default: keep the kit's).",
        ),
    ] = None,
    whole: Annotated[
        list[Path] | None,
        typer.Option(
            "--whole",
            help="Also score these images as they are, e.g. unsigned samples of public "
            "generators; each folder is a source of its own and thresholds take the worst "
            "case over sources. Repeatable.",
        ),
    ] = None,
    processed: Annotated[
        str | None,
        typer.Option(
            "--processed",
            help="Also score every clean crop after each of these attacks (labels as in "
            "'advsig bench --attacks', e.g. jpeg90,jpeg75,resize0.5-back,noise0.02,"
            "brightness1.3, 'light' for those five, or 'pixel' for the standard grid's 11 "
            "geometry-free attacks); each is a source of its own and "
            "thresholds take the worst case, so the stated FPR holds for processed photos too.",
        ),
    ] = None,
    scale_norm: Annotated[
        bool,
        typer.Option(
            "--scale-norm",
            help="Kits with a scale search: compare scales as z-scores of their clean scores "
            "at each size where that detects more signed validation crops (BENCHMARKS.md, stop 34).",
        ),
    ] = False,
    by_photo: Annotated[
        bool,
        typer.Option(
            "--by-photo",
            help="Give every photo of --data an equal share of the crops and thresholds of "
            "its own (per size and processing); the worst photo decides, so the stated FPR "
            "holds photo by photo, not only on the mix (BENCHMARKS.md, stop 38).",
        ),
    ] = False,
    synthetic: Annotated[
        int,
        typer.Option(
            "--synthetic",
            min=0,
            help="Also calibrate on crops of this many procedural flat images (gradients, "
            "colour wheels, flat shapes, smooth fields), a source of their own: graphics and "
            "skies are flat, and flat content scores higher than photos (stop 38).",
        ),
    ] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed for the crops.")] = 0,
) -> None:
    """Set a kit's thresholds from clean images (yours, or the embedded validation photos).

    Thresholds are only as honest as the clean images behind them: calibrate on images like
    the ones the kit will judge. --data is cut into crops of several sizes ('embedded' uses
    the held-out split); --whole folders are scored image by image, unchanged.

    Example: advsig calibrate small-v2 my-kit/ --whole unsigned-ddpm-samples/
    Example: advsig calibrate base-v2-light my-kit/ --processed light
    Example: advsig calibrate robust-v2 my-kit/ --processed pixel --by-photo --synthetic 100
    Example: advsig calibrate base-v2-r48 my-kit/ --fit-up --processed light --by-photo
    Example: advsig calibrate robust-v2 my-kit/ --mirror --processed pixel --by-photo

    Interrupted, the same command resumes: each scored stage (the unprocessed crops, then one
    processing at a time) is kept in OUT/.calibration-cache until the kit is written.
    """
    from advsig.data.datasets import EMBEDDED_SPLITS, resolve_training_data
    from advsig.data.io import list_images
    from advsig.kit import Kit
    from advsig.training.score_cache import CACHE_DIR_NAME, ScoreCache
    from advsig.training.trainer import calibrate as calibrate_kit

    # A folder holding only an interrupted run's scores resumes it (ScoreCache).
    if out.exists() and (not out.is_dir() or any(p.name != CACHE_DIR_NAME for p in out.iterdir())):
        raise OutputError(f"{out}: exists and is not an empty folder")
    if (out / CACHE_DIR_NAME).is_dir():
        typer.echo(f"resuming: stages already scored in {out / CACHE_DIR_NAME} are read back")
    loaded = Kit.from_pretrained(kit)
    if score_reference is not None:
        loaded = loaded.with_score_reference(score_reference)
    if stem_eps is not None:
        loaded = loaded.with_detector_options(stem_eps=stem_eps)
    if odd_bits is not None:
        loaded = loaded.with_detector_options(odd_bits=odd_bits)
    if fit_up is not None:
        loaded = loaded.with_fit_up(fit_up)
    if mirror is not None:
        loaded = loaded.with_mirror_reads(mirror)
    names = None
    if data == "embedded":
        _, sources = resolve_training_data("embedded", val_fraction=0.1, seed=seed)
        names = list(EMBEDDED_SPLITS["val"])
    else:
        if not Path(data).is_dir():
            raise ConfigError(f"--data {data!r} is neither a folder nor 'embedded'")
        sources = list_images(data)
        if not sources:
            raise ConfigError(f"{data}: no images to calibrate on")
    attacks = None
    if processed:
        from advsig.bench.runner import resolve_attacks

        attacks = resolve_attacks(processed)
    summary = calibrate_kit(
        loaded,
        sources,
        num=num,
        seed=seed,
        whole=_whole_sources(whole or []),
        processed=attacks,
        scale_norm=scale_norm,
        by_source=by_photo,
        names=names,
        synthetic=synthetic,
        cache_dir=out / CACHE_DIR_NAME,
        progress=True,
    )
    record = {"data": data, "num": num, **summary}
    loaded.training = {**loaded.training, "calibration": record}
    loaded.save_pretrained(out)
    ScoreCache(out / CACHE_DIR_NAME, "").clear()
    t = loaded.thresholds()["0.001"]
    typer.echo(
        f"calibrated on {summary['num_clean']} clean crops: threshold at FPR 1e-3 "
        f"{t['score']:.3f}{' (extrapolated)' if t['extrapolated'] else ''}, "
        f"TPR {summary['tpr']['0.001']:.3f} on {summary['num_signed']} signed; written to {out}"
    )
    for label, row in summary.get("whole", {}).items():
        what = "clean crops after" if label in summary.get("processed", []) else "images whole:"
        typer.echo(f"  {what} {label}: {row['num']}, max score {row['score_max']:.3f}")
    if summary.get("whole_too_small"):
        typer.echo(f"  {summary['whole_too_small']} images below the kit's smallest size left out")
    if summary.get("threshold_at_or_below_zero_px"):
        sizes = ", ".join(map(str, summary["threshold_at_or_below_zero_px"]))
        typer.echo(
            f"  warning: threshold <= 0 at {sizes} px, where a flat image scores exactly 0: "
            "this kit would flag flat images; add --synthetic 100"
        )


def _whole_sources(folders: list[Path]) -> dict[str, list]:
    """Each ``--whole`` folder's images by a unique source name (the folder's name)."""
    from advsig.data.io import list_images, load_image

    sources: dict[str, list] = {}
    for folder in folders:
        if not folder.is_dir():
            raise ConfigError(f"--whole {folder}: not a folder")
        paths = list_images(folder)
        if not paths:
            raise ConfigError(f"--whole {folder}: no images")
        label, k = folder.resolve().name, 2
        while label in sources:
            label, k = f"{folder.resolve().name}-{k}", k + 1
        sources[label] = [load_image(p).image for p in paths]
    return sources


def kits() -> None:
    """List the kits shipped in the package.

    Example: advsig kits
    """
    from advsig.kit import Kit, shipped_kits
    from advsig.kits import DEFAULT_KIT

    for name in shipped_kits():
        k = Kit.from_pretrained(name)
        psnr = k.training.get("validation", {}).get("psnr_db_mean")
        signature = (
            f"signature v2 (content-bound, key {k.key_fingerprint})"
            if k.bound
            else "signature v1 (one texture per code: forgeable)"
        )
        typer.echo(
            f"{name}{' (default)' if name == DEFAULT_KIT else ''}: {k.num_bits} bits, "
            f"work size {k.work_size}, "
            f"val PSNR {'not recorded' if psnr is None else f'{psnr:.1f} dB'}, {signature}"
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
    app.command("calibrate")(calibrate)
    app.command("env")(env)
