"""``advsig demo``: sign photos the kit never saw, detect them, attack them, write a report;
then sign a generator (a tiny DDPM) and show that its samples, and only its samples, are flagged.

Everything runs on embedded photos (scikit-image / scikit-learn wheels), on a CPU, in minutes.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from advsig.attacks import JPEG, CenterCrop, Identity, Resize
from advsig.codes.bits import hex_to_bits, random_code
from advsig.data.datasets import EMBEDDED_SPLITS, embedded_images
from advsig.data.io import load_image, to_uint8
from advsig.data.writers import save_image
from advsig.errors import ConfigError
from advsig.html_report import write_html_report
from advsig.kit import Kit
from advsig.kits import DEFAULT_KIT
from advsig.types import FamilyDemoResult
from advsig.utils import atomic_path, write_text_atomic

logger = logging.getLogger(__name__)

DEMO_ATTACKS = (Identity(), JPEG(75), Resize(0.5), CenterCrop(0.5))


@dataclass
class AttackRow:
    attack: str
    signed_flagged: int
    clean_flagged: int
    num_images: int
    bit_accuracy: float | None
    mean_signed_score: float
    mean_clean_score: float


@dataclass
class DemoSummary:
    kit: str
    code: str
    fpr: float
    threshold: float
    psnr_db: dict[str, float]
    attacks: list[AttackRow]
    wall_time_s: float
    generators: dict[str, FamilyDemoResult] = field(default_factory=dict)  # by demo name


def difference_panel(
    original: torch.Tensor, signed: torch.Tensor, *, amplify: float | None = None
) -> np.ndarray:
    """uint8 (H, 3W + gaps, 3): original | signed | difference amplified around mid-grey."""
    diff = signed - original  # (3, H, W)
    if amplify is None:
        amplify = 0.45 / max(float(diff.abs().max()), 1e-6)
    amp = (0.5 + diff * amplify).clamp(0, 1)
    gap = torch.ones(3, original.shape[1], 8)
    return to_uint8(torch.cat([original, gap, signed, gap, amp], dim=2))


def run_demo(
    out: str | Path = "demo-out",
    *,
    kit: str = DEFAULT_KIT,
    train_kit: bool = False,
    fpr: float = 1e-3,
    seed: int = 0,
    generators: tuple[str, ...] = ("ddpm", "ldm", "gan"),
    generator_kit: str | None = None,
    live: tuple[str, ...] | None = None,
    finetune_steps: int | None = None,
    num_samples: int = 64,
) -> DemoSummary:
    """Run the demo and write ``out/report.md``, ``out/summary.json`` and PNG panels.

    ``generators``: the families whose signing is shown; ``live``: those fine-tuned in this run
    (default: the GAN); the others are read from the fine-tunes shipped with advsig. A
    ``generator_kit`` other than the shipped fine-tunes' kit (``small-v2``) or a
    ``finetune_steps`` makes every family live.

    Example:
        >>> summary = run_demo("demo-out")
    """
    t0 = time.time()
    out = Path(out)
    (out / "panels").mkdir(parents=True, exist_ok=True)
    if train_kit:
        from advsig.training.presets import preset_config
        from advsig.training.trainer import train_signature

        kit_dir = out / "kit"
        config = preset_config(
            "tiny", data="embedded", out=str(kit_dir), seed=seed, resume="latest"
        )
        the_kit = train_signature(config)
        kit_name = f"{kit_dir} (trained now: tiny preset, {config.steps} steps)"
    else:
        the_kit = Kit.from_pretrained(kit)
        kit_name = kit
    gen = torch.Generator().manual_seed(seed)
    code = random_code(the_kit.num_bits, gen) if the_kit.num_bits else ""
    truth = hex_to_bits(code or None, the_kit.num_bits)

    originals, signed_imgs, psnr = {}, {}, {}
    for name, image in embedded_images("test"):
        signed = the_kit.sign(image, code=code or None)
        path = out / "signed" / f"{name}.png"
        save_image(signed, path)
        signed = load_image(path).image  # what a recipient gets: 8-bit PNG
        originals[name], signed_imgs[name] = image, signed
        mse = float((signed - image).square().mean())
        psnr[name] = 10 * math.log10(1 / max(mse, 1e-12))
        with atomic_path(out / "panels" / f"{name}.png") as tmp:
            Image.fromarray(difference_panel(image, signed)).save(tmp, format="PNG")

    # Decisions as `advsig detect` makes them: each image at the threshold for its size.
    sizes = [tuple(img.shape[-2:]) for img in originals.values()]
    threshold = max(the_kit.threshold(fpr, size=size) for size in sizes)
    rows = []
    for attack in DEMO_ATTACKS:
        names = list(originals)
        s_imgs = [attack(signed_imgs[n]) for n in names]
        c_imgs = [attack(originals[n]) for n in names]
        s_logits, c_logits = the_kit.logits(s_imgs), the_kit.logits(c_imgs)
        s_res = the_kit.results_from_logits(
            s_logits, fpr=fpr, sizes=[tuple(x.shape[-2:]) for x in s_imgs]
        )
        c_res = the_kit.results_from_logits(
            c_logits, fpr=fpr, sizes=[tuple(x.shape[-2:]) for x in c_imgs]
        )
        bit_acc = None
        if the_kit.num_bits:
            bit_acc = float(((s_logits[:, 1:] > 0).float() == truth).float().mean())
        rows.append(
            AttackRow(
                attack=attack.label,
                signed_flagged=sum(r.is_signed for r in s_res),
                clean_flagged=sum(r.is_signed for r in c_res),
                num_images=len(names),
                bit_accuracy=bit_acc,
                mean_signed_score=float(s_logits[:, 0].mean()),
                mean_clean_score=float(c_logits[:, 0].mean()),
            )
        )
    gen_entries: dict[str, FamilyDemoResult] = {}
    from advsig.generators.demo import (
        DEFAULT_LIVE,
        DEMO_GENERATOR_KIT,
        DEMO_GENERATORS,
        run_generator_demo,
        why_not_shipped,
    )

    generator_kit = generator_kit or DEMO_GENERATOR_KIT
    live = DEFAULT_LIVE if live is None else live
    unknown = [f for f in (*generators, *live) if f not in DEMO_GENERATORS]
    if unknown:
        raise ConfigError(
            f"unknown generator family {unknown[0]!r} for the demo; known: "
            f"{', '.join(DEMO_GENERATORS)}"
        )
    # Generated images are 32x32: one kit trained at that size serves every family.
    gen_kit = Kit.from_pretrained(generator_kit) if generators else None
    for family in generators:
        live_here = family in live
        if not live_here and (why := why_not_shipped(family, generator_kit, finetune_steps)):
            logger.info("%s: fine-tuning live", why)
            live_here = True
        gen_entries[family] = run_generator_demo(
            family, out / "generators", kit=gen_kit, kit_name=generator_kit, live=live_here,
            steps=finetune_steps, num_samples=num_samples, seed=seed,
        )  # fmt: skip
    summary = DemoSummary(
        kit=kit_name, code=code, fpr=fpr, threshold=threshold, psnr_db=psnr, attacks=rows,
        wall_time_s=round(time.time() - t0, 1), generators=gen_entries,
    )  # fmt: skip
    write_text_atomic(out / "report.md", render_report(summary))
    write_html_report(out / "report.md")
    core = {k: v for k, v in asdict(summary).items() if k != "generators"}
    payload = {
        "core": core,
        "generators": {name: r.to_json_dict() for name, r in gen_entries.items()},
        "wall_time_s": summary.wall_time_s,
    }
    write_text_atomic(out / "summary.json", json.dumps(payload, indent=2) + "\n")
    return summary


def render_report(s: DemoSummary) -> str:
    lines = [
        "# advsig demo report",
        "",
        f"Kit: `{s.kit}`. Embedded code: `{s.code or '(one-bit signature)'}`. "
        f"Threshold for a false-positive rate of {s.fpr:g} on unsigned images: set per image "
        f"size, as `advsig detect` does (score >= {s.threshold:.2f} at most for these photos).",
        "",
        f"Photos (never used to train the shipped kits): {', '.join(EMBEDDED_SPLITS['test'])}, "
        "signed at their native resolution and saved as 8-bit PNG.",
        "",
        "## Fidelity",
        "",
        "| photo | PSNR (dB) |",
        "|---|---|",
    ]
    lines += [f"| {n} | {p:.1f} |" for n, p in s.psnr_db.items()]
    lines += [
        f"| **mean** | **{np.mean(list(s.psnr_db.values())):.1f}** |",
        "",
        "Panels in `panels/`: original | signed | difference (amplified to fill the grey range).",
        "",
        "## Detection",
        "",
        "| attack | signed flagged | unsigned flagged | bit accuracy | mean score signed / unsigned |",
        "|---|---|---|---|---|",
    ]
    for r in s.attacks:
        bits = f"{r.bit_accuracy:.3f}" if r.bit_accuracy is not None else "n/a"
        lines.append(
            f"| {r.attack} | {r.signed_flagged}/{r.num_images} | {r.clean_flagged}/{r.num_images} | "
            f"{bits} | {r.mean_signed_score:.2f} / {r.mean_clean_score:.2f} |"
        )
    lines += [
        "",
        "## What the numbers mean",
        "",
        "- *signed flagged*: signed photos the detector calls signed (true positives).",
        "- *unsigned flagged*: the same photos, unsigned, called signed (false positives). The "
        "threshold was set on separate clean images for the stated rate; with five photos this "
        "table shows behaviour, not a rate (see BENCHMARKS.md for measured rates).",
        "- *bit accuracy*: share of the code's bits read correctly from the signed photos.",
        "- The shipped kit is public: anyone holding its detector can learn to evade it. Train "
        "your own kit (`advsig train`) and keep its detector private for real use.",
        "",
    ]
    if s.generators:
        from advsig.generators.demo import GENERATOR_NOTES, render_generator_section

        for name, result in s.generators.items():
            lines += render_generator_section(name, result)
        lines += GENERATOR_NOTES
    lines += [f"Wall time: {s.wall_time_s:.0f} s.", ""]
    return "\n".join(lines)
