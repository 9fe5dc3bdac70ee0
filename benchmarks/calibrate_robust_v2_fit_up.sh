#!/usr/bin/env bash
# Issue 13, stop 41: the shipped `robust-v2` recalibrated with fit-up reads (`Kit.fit_up`).
# Images smaller than the kit's working size (256 px) are also read fitted back up to it, so a
# 0.75 upload or an 80% screenshot of a signed 256 px image is read on its signing grid. Same
# weights (byte-identical), same calibration recipe as train_robust_v2_flat_kit.sh (4000 val
# crops photo by photo, 100 procedural flat images, the grid's 11 pixel attacks, seed 31); only
# the thresholds below 256 px change. 41 min on 2 CPU cores. The config.json it writes was
# copied to src/advsig/kits/robust-v2. Writes runs/ only.
# Then:
#   advsig bench --kit robust-v2 --images embedded --out OUT --attacks capture --size 256 --num-images 20 --methods advsig:robust-v2,advsig:runs/robust-v2-fitup
#   python benchmarks/bench_processed_tails.py --kits runs/robust-v2-fitup --sizes 128:200,192:200 --signed 100 --attacks pixel --synthetic 100
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/robust-v2-fitup}
advsig calibrate robust-v2 "$OUT" --fit-up --num 4000 --processed pixel --by-photo --synthetic 100 --seed 31
