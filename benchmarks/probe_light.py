"""Light processing at a glance: signed vs clean scores after JPEG, resize, noise, brightness.

For comparing kits or training checkpoints quickly (about a minute) before calibrating: scores
64 test crops (256 px, photos no kit trained on) signed and clean, each after the issue's four
light attacks, and prints per attack the share of signed crops scoring above the highest clean
score under the same attack ("separated"), the bit accuracy, and the share above the kit's stated FPR 1e-3 threshold when it
has one. A checkpoint folder is read with the architecture and calibration of ``--like``.

    python benchmarks/probe_light.py --kit base-v2
    python benchmarks/probe_light.py --kit runs/x/checkpoints/checkpoint-500 --like base-v2
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_security import targets  # noqa: E402

from advsig.attacks.forgery import round8  # noqa: E402
from advsig.bench.runner import resolve_attacks  # noqa: E402
from advsig.codes.bits import hex_to_bits  # noqa: E402
from advsig.config import INJECTOR_OVERRIDES  # noqa: E402
from advsig.kit import Kit, resolve_kit_path  # noqa: E402

ATTACKS = "none,jpeg90,jpeg75,resize0.5-back,noise0.02,brightness1.3"


def load(kit: str, like: str | None) -> Kit:
    """A kit, or a checkpoint's weights inside a copy of the ``like`` kit's folder."""
    if like is None:
        return Kit.from_pretrained(kit)
    tmp = Path(tempfile.mkdtemp()) / "kit"
    shutil.copytree(resolve_kit_path(like), tmp)
    for name in ("injector.safetensors", "detector.safetensors"):
        shutil.copy(Path(kit) / name, tmp / name)
    state = Path(kit) / "state.json"
    if state.is_file():  # the run's own injector overrides (see TrainConfig)
        trained = json.loads(state.read_text())["config"]
        cfg = json.loads((tmp / "config.json").read_text())
        for name in INJECTOR_OVERRIDES:
            if trained.get(name) is not None:
                cfg["injector"][name] = trained[name]
        (tmp / "config.json").write_text(json.dumps(cfg))
    return Kit.from_pretrained(tmp)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default="base-v2")
    ap.add_argument("--like", default=None, help="kit whose config a checkpoint folder uses")
    ap.add_argument("--attacks", default=ATTACKS)
    ap.add_argument("--num-images", type=int, default=64)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    kit = load(args.kit, args.like)
    clean = round8(torch.stack(targets(256, args.num_images, 0)))
    code = "0badc0de"[: kit.num_bits // 4]
    signed = round8(kit.sign(clean, code=code))
    want = hex_to_bits(code, kit.num_bits)  # (n,)
    has_threshold = kit.calibration is not None
    threshold = kit.threshold(1e-3, size=(256, 256)) if has_threshold else float("nan")
    print(f"{args.kit}: {len(clean)} crops, 256 px; FPR 1e-3 threshold {threshold:.2f}")
    for attack in resolve_attacks(args.attacks):
        s_img = torch.stack([attack(img) for img in signed])
        c_img = torch.stack([attack(img) for img in clean])
        s_logits = kit.logits(s_img)
        s, c = s_logits[:, 0], kit.logits(c_img)[:, 0]
        bits = ((s_logits[:, 1:] > 0).float() == want).float().mean()
        sep = (s > c.max()).float().mean()
        tpr = (s >= threshold).float().mean() if has_threshold else float("nan")
        fp = (c >= threshold).float().mean() if has_threshold else float("nan")
        print(f"  {attack.label:16s} separated {sep:.2f}  TPR {tpr:.3f}  clean flagged {fp:.3f}  bits {bits:.3f}  "
              f"signed median {s.median():+.2f}  clean max {c.max():+.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
