#!/usr/bin/env bash
# Issue 13, crops: the robust v2 kit retrained to read at any phase. Stop 43's tiny kits showed
# that a v2 detector trained on shifted windows reads a crop at a random offset (AUC 0.994, bits
# 0.913 at 4000 steps) only with the dense content mask (`binding_dense`, which moves with the
# image), and not with the odd score (`-u` is `u` half a carrier period off). This stage
# fine-tunes the shipped `robust-v2` (key kept) with its last stage's recipe plus: the dense
# mask, the odd score off, and W signing crops 32 px larger than F's window, read at any offset
# (`shift` 32, `shift_step` 1). Calibrated by the trainer on clean validation crops as they are
# and after each light processing. Writes runs/ only. Resumes from its latest checkpoint, so
# `STEPS=3000` continues the 800-step run (from its last checkpoint, step 700). `INIT` names
# the kit it starts from (default `robust-v2`): stop 45 hardens the plain dense stage with
#   INIT=runs/robust-v2-dense-plain OUT=runs/robust-v2-dense-hard STEPS=600 \
#     bash benchmarks/train_robust_v2_dense_kit.sh
#   Stop 44, 800 steps (34 min on 2 CPU cores + 4.5 min calibration): the read is off the grid
#   (signed median above the clean maximum at every offset, probe_shift.py) but weak: TPR 0.354,
#   bits 0.665 on the trainer's validation. Not shipped (BENCHMARKS.md, "Stop 44").
# Then (BENCHMARKS.md, "Stop 44"):
#   advsig bench --kit robust-v2 --images embedded --out OUT --attacks standard --size 256 --num-images 40 \
#       --methods advsig:robust-v2,advsig:runs/robust-v2-dense
#   python benchmarks/bench_security.py --kits runs/robust-v2-dense --size 256
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/robust-v2-dense} STEPS=${STEPS:-800} INIT=${INIT:-robust-v2} python - <<'PY'
import os

from advsig.training.presets import preset_config
from advsig.training.trainer import train_signature

env = os.environ
train_signature(preset_config(
    "base-v2-odd", data="embedded", out=env["OUT"], init_kit=env["INIT"], steps=int(env["STEPS"]),
    target_psnr=42.5, augment="photometric", augment_ramp=1, augment_max=0.8,
    transplant_weight=1.0, lifted_negatives=True, trusted_positives=True, flat_weight=1.0,
    seed=44, score_reference="none", checkpoint_every=100, resume="latest",
    synthetic_fraction=0.2, calibration_processed="light",
    binding_dense=True, odd_score=False, shift=32, shift_step=1,
))
PY
