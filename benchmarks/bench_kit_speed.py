"""Signing and detection speed of several kits in one run (same process, same machine).

Speed does not depend on the weights, only on what a kit computes: a v1 kit reads an image once
per tile; a v2 kit computes its content mask first; an odd score (``f(u) - f(-u)``) reads twice,
and a decoy reference doubles that again. Timing them side by side is the only fair comparison
on a shared machine. Batch 16, random images, best of three after a warm-up.

    python benchmarks/bench_kit_speed.py --kits base,base-v2-odd --size 256

``--layouts``: detection only, each kit's networks in the default contiguous layout and in
channels_last (what ``Kit`` uses since stop 33), alternated four times in one process, so that
the machine's drift hits both alike. ``--profile``: the ops that take a kit's detection and signing time. ``--precision``: where W and
F run (advsig.precision; default fp32, as every table before stop 40).
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import time_call  # noqa: E402

from advsig.kit import Kit  # noqa: E402
from advsig.precision import PRECISIONS  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kits", default="base,base-v2-odd")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--layouts", action="store_true", help="contiguous vs channels_last")
    ap.add_argument("--profile", action="store_true", help="torch.profiler table per kit")
    ap.add_argument(
        "--precision", default="fp32", choices=PRECISIONS,
        help="W's and F's precision (advsig.precision); fp32 compares with older tables",
    )  # fmt: skip
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    x = torch.rand(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    print(
        f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}; {args.size}x{args.size}, batch {args.batch}"
    )
    if args.layouts or args.profile:
        for name in args.kits.split(","):
            kit = Kit.from_pretrained(
                name, sign_precision=args.precision, detect_precision=args.precision
            )
            if args.layouts:
                print(f"{name}, detect img/s per round:", compare_layouts(kit, x))
            if args.profile:
                print(name, "detection", profile_call(kit.logits, x))
                print(name, "signing", profile_call(kit.sign, x))
        return
    print("| kit | score | sign (img/s) | detect (img/s) |\n|---|---|---|---|")
    for name in args.kits.split(","):
        kit = Kit.from_pretrained(
            name, sign_precision=args.precision, detect_precision=args.precision
        )
        cfg = kit.detector.config
        score = (
            "v1 logit"
            if not kit.bound
            else ("odd" if cfg.odd_score else "raw")
            + (", decoy-referenced" if cfg.score_reference == "decoy" else "")
        )
        sign = time_call(lambda k=kit: k.sign(x, code=None))
        detect = time_call(lambda k=kit: k.logits(x))
        print(f"| {name} | {score} | {args.batch / sign:.1f} | {args.batch / detect:.1f} |")


def compare_layouts(kit: Kit, x: torch.Tensor, rounds: int = 4) -> dict[str, list[float]]:
    """Detection img/s with the networks contiguous and channels_last, alternated."""
    speeds: dict[str, list[float]] = {"contiguous": [], "channels_last": []}
    for _ in range(rounds):
        for layout, fmt in (("channels_last", torch.channels_last),
                            ("contiguous", torch.contiguous_format)):  # fmt: skip
            kit.detector.to(memory_format=fmt)
            kit.logits(x)  # warm-up in this layout
            start = time.perf_counter()
            kit.logits(x)
            speeds[layout].append(round(len(x) / (time.perf_counter() - start), 1))
    kit.detector.to(memory_format=torch.channels_last)
    return speeds


def profile_call(call, x: torch.Tensor) -> str:
    """The ten ops with the most self CPU time in one batch of ``call`` (``kit.logits`` or
    ``kit.sign``), after a warm-up."""
    from torch.profiler import ProfilerActivity, profile

    call(x)
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        call(x)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10)


if __name__ == "__main__":
    main()
