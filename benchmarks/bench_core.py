"""Signature core benchmark: fidelity, detection, code accuracy, residual similarity, speed.

Runs a kit on embedded photos it never trained on (the "test" split), at 256x256 and at native
resolution, and times it against invisible-watermark (dwtDct, dwtDctSvd, rivaGan) in the same run.

    pip install -e ".[bench]"
    python benchmarks/bench_core.py --kit base --out benchmarks/results/core-base.json

Prints a Markdown report (pasted into BENCHMARKS.md) and writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity
from sklearn.metrics import roc_auc_score

from advsig.codes.bits import hex_to_bits, random_code
from advsig.data.datasets import ImagePool, RandomCrops, embedded_images
from advsig.data.io import to_uint8
from advsig.kit import Kit
from advsig.precision import resolve_precision


def quantize(x: torch.Tensor) -> torch.Tensor:
    return (x * 255).round() / 255


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1 / max(float((a - b).square().mean()), 1e-12))


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(structural_similarity(to_uint8(a), to_uint8(b), channel_axis=2, data_range=255))


def evaluation_sets(num_crops: int, seed: int) -> dict[str, list[torch.Tensor]]:
    """Test-split photos: 256x256 crops at random scales, and each photo at native size."""
    photos = [img for _, img in embedded_images("test")]
    crops = RandomCrops(ImagePool(photos, max_side=10_000), 256)
    gen = torch.Generator().manual_seed(seed)
    return {"256x256": list(crops.sample(num_crops, gen)), "native": photos}


def run_quality(kit: Kit, images: list[torch.Tensor], seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    codes = [random_code(kit.num_bits, gen) if kit.num_bits else None for _ in images]
    signed = [quantize(kit.sign(img, code=c)) for img, c in zip(images, codes)]
    clean_scores = kit.logits(images)[:, 0].numpy()
    logits = kit.logits(signed)
    scores = logits[:, 0].numpy()
    out = {
        "num_images": len(images),
        "psnr_db_mean": float(np.mean([psnr(s, x) for s, x in zip(signed, images)])),
        "psnr_db_min": float(np.min([psnr(s, x) for s, x in zip(signed, images)])),
        "ssim_mean": float(np.mean([ssim(s, x) for s, x in zip(signed, images)])),
        "ssim_min": float(np.min([ssim(s, x) for s, x in zip(signed, images)])),
        "auc": float(
            roc_auc_score([1] * len(scores) + [0] * len(clean_scores), np.r_[scores, clean_scores])
        ),
    }
    for fpr in (1e-2, 1e-3):
        # Each image against the threshold of its own size, as kit.detect decides (a kit
        # calibrated per size would otherwise be judged by its smallest size's threshold).
        thr = np.array([kit.threshold(fpr, size=tuple(x.shape[-2:])) for x in images])
        out[f"tpr_at_{fpr:g}"] = float(np.mean(scores >= thr))
        out[f"clean_flagged_at_{fpr:g}"] = float(np.mean(clean_scores >= thr))
    if kit.num_bits:
        truth = torch.stack([hex_to_bits(c, kit.num_bits) for c in codes])
        correct = (logits[:, 1:] > 0).float() == truth
        out["bit_accuracy"] = float(correct.float().mean())
        out["exact_code_rate"] = float(correct.all(dim=1).float().mean())
    return out


def residual_similarity(kit: Kit, images: list[torch.Tensor], code: str | None) -> dict:
    """Mean pairwise cosine similarity of W(x) - x across images (same size, same code)."""
    res = torch.stack([(kit.sign(x, code=code) - x).flatten() for x in images])  # (N, D)
    res = F.normalize(res, dim=1)
    sim = res @ res.T
    n = len(images)
    off = sim[~torch.eye(n, dtype=torch.bool)]
    return {"mean_pairwise_cosine": float(off.mean()), "max_pairwise_cosine": float(off.max())}


def time_call(fn, repeats: int = 3) -> float:
    fn()  # warm-up
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run_speed(kit: Kit, size: int, batch: int = 16) -> dict[str, dict]:
    """Rows per precision (advsig.precision): float32, the kit's defaults, bfloat16 for both."""
    x = torch.rand(batch, 3, size, size)
    rows = {}
    for sign_p, detect_p in (("fp32", "fp32"), ("auto", "fp32"), ("bf16", "bf16")):
        kit.sign_precision, kit.detect_precision = sign_p, detect_p
        sign_s = time_call(lambda: kit.sign(x, code=None), repeats=2)
        det_s = time_call(lambda: kit.logits(x), repeats=2)
        name = f"advsig (sign {resolve_precision(sign_p, kit.device)}, detect {detect_p})"
        rows[name] = {"sign_img_per_s": batch / sign_s, "detect_img_per_s": batch / det_s}
    kit.sign_precision, kit.detect_precision = "auto", "fp32"
    return rows


def run_imwatermark_speed(size: int, num: int) -> dict:
    """Embed / decode speed of the invisible-watermark baselines (advsig.bench.methods)."""
    from advsig.bench.methods import IMWATERMARK_METHODS, create_method

    photo = F.interpolate(embedded_images("test")[0][1][None], size=(size, size),
                          mode="bicubic", antialias=True)[0].clamp(0, 1)  # fmt: skip
    message = torch.tensor([1.0, 0.0] * 16)
    out = {}
    for name in IMWATERMARK_METHODS:
        method = create_method(name)
        marked = method.embed([photo], messages=[message])
        te = time_call(lambda m=method: [m.embed([photo], messages=[message]) for _ in range(num)],
                       repeats=1) / num  # fmt: skip
        td = time_call(lambda m=method, mk=marked: [m.decode(mk) for _ in range(num)],
                       repeats=1) / num  # fmt: skip
        out[name] = {"sign_img_per_s": 1 / te, "detect_img_per_s": 1 / td}
    return out


PEAK_RAM_SCRIPT = """
import sys, torch
from advsig.kit import Kit
from advsig.signing import sign_files
kit = Kit.from_pretrained(sys.argv[1])
def hwm_kb():  # VmHWM resets at exec; ru_maxrss would report the parent's peak
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
before = hwm_kb()
res = sign_files(kit, sys.argv[2], sys.argv[3], progress=False)
assert res[0].status == "signed", res
print(before, hwm_kb())
"""


def run_peak_ram(kit_name: str) -> dict:
    """Peak RSS of a fresh process that signs one 4000x3000 PNG (file in, file out)."""
    from PIL import Image

    photo = embedded_images("test")[0][1]
    big = F.interpolate(photo[None], size=(3000, 4000), mode="bicubic")[0].clamp(0, 1)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "big.png"
        Image.fromarray(to_uint8(big)).save(src)
        out = subprocess.run(
            [sys.executable, "-c", PEAK_RAM_SCRIPT, kit_name, str(src), str(Path(tmp) / "out")],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        before_kb, peak_kb = map(int, out.stdout.split()[-2:])
        size = Image.open(Path(tmp) / "out" / "big.png").size
    return {
        "peak_rss_mb": peak_kb / 1024,
        "rss_after_loading_kit_mb": before_kb / 1024,
        "output_size": size,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="base")
    ap.add_argument("--out", default="benchmarks/results/core.json")
    ap.add_argument("--num-crops", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-speed", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    kit = Kit.from_pretrained(args.kit)
    sets = evaluation_sets(args.num_crops, args.seed)
    results: dict = {
        "kit": args.kit,
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "quality": {name: run_quality(kit, imgs, args.seed) for name, imgs in sets.items()},
    }
    code = random_code(kit.num_bits, torch.Generator().manual_seed(1)) if kit.num_bits else None
    results["residual_similarity_256"] = residual_similarity(kit, sets["256x256"][:50], code)
    if not args.skip_speed:
        results["speed"] = {
            f"{s}x{s}": {
                **run_speed(kit, s),
                **run_imwatermark_speed(s, 8 if s == 256 else 2),
            }
            for s in (256, 1024)
        }
        results["peak_ram_4000x3000"] = run_peak_ram(args.kit)
    results["max_rss_this_process_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(render(results))


def render(r: dict) -> str:
    lines = [f"Kit `{r['kit']}`, {r['machine']}, torch {r['torch']}.", ""]
    lines += [
        "| set | images | PSNR mean / min (dB) | SSIM mean / min | TPR @1e-3 | clean flagged @1e-3 | AUC | bit acc. | exact code |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, q in r["quality"].items():
        lines.append(
            f"| {name} | {q['num_images']} | {q['psnr_db_mean']:.2f} / {q['psnr_db_min']:.2f} | "
            f"{q['ssim_mean']:.4f} / {q['ssim_min']:.4f} | {q['tpr_at_0.001']:.4f} | "
            f"{q['clean_flagged_at_0.001']:.4f} | {q['auc']:.4f} | {q.get('bit_accuracy', float('nan')):.4f} | "
            f"{q.get('exact_code_rate', float('nan')):.3f} |"
        )
    rs = r["residual_similarity_256"]
    lines += [
        "",
        f"Residual W(x)-x, mean pairwise cosine similarity over 50 crops, one code: {rs['mean_pairwise_cosine']:.3f} (max {rs['max_pairwise_cosine']:.3f}).",
    ]
    if "speed" in r:
        lines += ["", "| size | method | sign (img/s) | detect (img/s) |", "|---|---|---|---|"]
        for size, methods in r["speed"].items():
            for m, v in methods.items():
                lines.append(
                    f"| {size} | {m} | {v['sign_img_per_s']:.1f} | {v['detect_img_per_s']:.1f} |"
                )
        p = r["peak_ram_4000x3000"]
        lines += [
            "",
            f"Signing a 4000x3000 PNG (file to file): peak RSS {p['peak_rss_mb']:.0f} MB "
            f"({p['rss_after_loading_kit_mb']:.0f} MB of it is Python + torch + the kit before the image), "
            f"output {p['output_size'][0]}x{p['output_size'][1]}.",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
