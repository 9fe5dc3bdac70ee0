#!/usr/bin/env bash
# Trains the kit shipped as `--kit small-v2` (for 32-64 px generated images; signature v2: content
# bound on 4 px mask cells, keyed) into the package.
# Data: the embedded photos' training split; calibration on the "val" split, stratified by size
# (1000 clean crops for each of 32, 48, 64, 96, 128, 192, 256 px).
# The small preset: 3000 steps, 40 dB budget (a stronger signature that a generator learns
# quickly), forgery negatives from step 0, no geometric augmentation. A fresh random key is drawn
# into $OUT/signature.key and not shipped.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/small-v2}
advsig train --preset small --data embedded --out "$OUT" --seed 0 --resume latest
python -c "from advsig import Kit; Kit.from_pretrained('$OUT').save_pretrained('src/advsig/kits/small-v2')"
