"""Markdown report and sample grids for ``eval-generator`` (and the demo's generator section)."""

from __future__ import annotations

from pathlib import Path

import torch

from advsig.data.io import list_images, load_image
from advsig.data.writers import save_image
from advsig.html_report import write_html_report
from advsig.utils import write_text_atomic


def sample_grid(folder: Path, out: Path, *, num: int = 32, nrow: int = 8) -> Path | None:
    """The first ``num`` samples of ``folder`` tiled into one PNG (None if there are none)."""
    from torchvision.utils import make_grid

    paths = list_images(folder)[:num]
    if not paths:
        return None
    images = torch.stack([load_image(p).image for p in paths])
    save_image(make_grid(images, nrow=nrow, padding=2, pad_value=1.0), out)
    return out


def detection_table(results: dict) -> list[str]:
    lines = [
        "| model | samples | flagged at FPR 1e-2 | flagged at FPR 1e-3 | mean score | bit accuracy | exact code |",
        "|---|---|---|---|---|---|---|",
    ]
    for role, d in results["detection"].items():
        bits = f"{d['bit_accuracy']:.3f}" if "bit_accuracy" in d else "-"
        exact = f"{d['exact_code_rate']:.1%}" if "exact_code_rate" in d else "-"
        lines.append(
            f"| {role} | {d['num_samples']} | {d['flag_rate_1e-2']:.1%} | "
            f"{d['flag_rate_1e-3']:.1%} | {d['mean_score']:+.2f} | {bits} | {exact} |"
        )
    return lines


def quality_table(results: dict) -> list[str]:
    q = results.get("quality") or {}
    if not q:
        return ["Quality not measured (no real images given)."]
    lines = [
        f"Feature space: **{q['feature_space']}**.",
        "",
        "| model | FID vs real | KID vs real | FID vs original | KID vs original |",
        "|---|---|---|---|---|",
    ]
    for role, d in q["vs_real"].items():
        ref = q.get("vs_reference", {}).get(role)
        ref_fid = f"{ref['fid']:.3g}" if ref else "-"
        ref_kid = f"{ref['kid']:.2e}" if ref else "-"
        lines.append(
            f"| {role} | {d['fid']:.3g} | {d['kid']:.2e} ± {d['kid_std']:.1e} | {ref_fid} | {ref_kid} |"
        )
    return lines


def write_eval_report(results: dict, out: str | Path) -> Path:
    """``out/report.md`` (and ``report.html``): detection, quality, one sample grid per model."""
    out = Path(out)
    lines = [
        "# advsig eval-generator",
        "",
        f"{results['num_images']} samples per model, DDIM {results['sample_steps']} steps, "
        f"seed {results['seed']} (sample i of every model starts from the same noise). "
        f"Expected code: `{results['code']}`. Thresholds (from the kit's calibration on clean "
        f"photos): FPR 1e-2 -> {results['thresholds']['0.01']:.2f}, "
        f"FPR 1e-3 -> {results['thresholds']['0.001']:.2f}.",
        "",
        "## Detection",
        "",
        *detection_table(results),
        "",
        "## Quality",
        "",
        *quality_table(results),
        "",
        "## Samples",
        "",
    ]
    for role in results["detection"]:
        grid = sample_grid(out / "samples" / role, out / f"grid-{role}.png")
        if grid is not None:
            lines += [f"**{role}** ({results['models'][role]})", "", f"![{role}]({grid.name})", ""]
    path = out / "report.md"
    write_text_atomic(path, "\n".join(lines) + "\n")
    write_html_report(path)
    return path
