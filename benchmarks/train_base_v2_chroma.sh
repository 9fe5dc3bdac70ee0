#!/usr/bin/env bash
# Trains the kit shipped as `--kit base-v2-chroma` (experimental): base-v2-light fine-tuned with
# part of its residual moved from luma into a green-blue colour axis, where photos carry ~50x
# less high-passed detail, so the 32-bit code reads cleanly; the luma share keeps detection
# through JPEG. Keeps base-v2-light's key. Two stages of 600 steps (colour share 0.35, then
# 0.5), each about 10 min on 2 CPU cores when alone, then calibration on 2000 clean crops of
# the embedded "val" photos. See docs/signature-v2.md (stop 18).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/base-v2-chroma}
stage() {  # stage OUT INIT_KIT SHARE
  python - "$@" <<'PY'
import sys
from advsig.training.presets import preset_config
from advsig.training.trainer import train_signature
out, init, share = sys.argv[1], sys.argv[2], float(sys.argv[3])
train_signature(preset_config(
    "base-v2-chroma", data="embedded", out=out, seed=0, resume="latest",
    init_kit=init, residual_chroma=share,
))
PY
}
stage "$OUT-stage1" base-v2-light 0.35
stage "$OUT" "$OUT-stage1" 0.5
advsig calibrate "$OUT" src/advsig/kits/base-v2-chroma --num 2000
