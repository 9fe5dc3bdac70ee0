#!/usr/bin/env bash
# Trains the kit shipped as `--kit base-v2-light` (experimental): base-v2 fine-tuned for light
# processing (JPEG, resize, noise, brightness) with a low-passed, luma-only residual; it keeps
# base-v2's key (no key file is drawn). 1000 steps (bit weight 3 from step 800), calibrated on
# 2000 clean crops of the embedded "val" photos. About 47 min on 2 CPU cores when alone.
# The shipped kit was made by this configuration run in three resumed pieces (600, 800, 1000
# steps) and calibrated with `advsig calibrate ... --num 2000`; see docs/signature-v2.md.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/base-v2-light}
advsig train --preset base-v2-light --data embedded --out "$OUT" --seed 0 --resume latest
python -c "from advsig import Kit; Kit.from_pretrained('$OUT').save_pretrained('src/advsig/kits/base-v2-light')"
