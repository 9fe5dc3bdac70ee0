#!/usr/bin/env bash
# Issue 13, stop 42: the shipped `robust-v2` recalibrated with mirror reads (`Kit.mirror_reads`)
# on top of its fit-up reads. Every image is also read mirrored left to right, so a mirrored
# signed image (the grid's hflip) is read on its signing grid. Same weights (byte-identical),
# same calibration recipe as calibrate_robust_v2_fit_up.sh (4000 val crops photo by photo, 100
# procedural flat images, the grid's 11 pixel attacks, seed 31); every threshold may rise,
# since a clean image now gets the better of two reads. Writes runs/ only. Stopped, the same
# command resumes from the stages already scored (runs/robust-v2-mirror/.calibration-cache).
# Then:
#   advsig bench --kit robust-v2 --images embedded --out OUT --attacks standard --size 256 --num-images 40 --methods advsig:robust-v2,advsig:runs/robust-v2-mirror
#   python benchmarks/bench_processed_tails.py --kits runs/robust-v2-mirror --sizes 256:1000,512:300 --signed 200 --synthetic 200 \
#     --attacks jpeg90,jpeg75,jpeg50,resize0.5-back,blur1,blur2,noise0.02,noise0.05,brightness1.3,brightness0.7,contrast1.3,hflip
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/robust-v2-mirror}
advsig calibrate robust-v2 "$OUT" --mirror --num 4000 --processed pixel --by-photo --synthetic 100 --seed 31
