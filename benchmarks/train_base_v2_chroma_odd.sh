#!/usr/bin/env bash
# Stop 29: the secure-score recipe of stops 26-28 on the colour kit, in one stage.
# base-v2-chroma-odd: the shipped base-v2-chroma (key kept) fine-tuned 1000 steps with the odd
# signature score, the mask's contrast floor (0.012), the detector's stem epsilon at 0.1, flat
# clean negatives (flat_weight 1), trusted positives and transplant weight 1
# (src/advsig/training/presets.py). About 40 min on 2 CPU cores with nothing else running.
# Then: python benchmarks/probe_light.py --kit runs/base-v2-chroma-odd
#       python benchmarks/probe_one_image_forgery.py --kit runs/base-v2-chroma-odd
#       python benchmarks/probe_contrast_tail.py --kit runs/base-v2-chroma-odd
set -euo pipefail
advsig train --preset base-v2-chroma-odd --data embedded --out runs/base-v2-chroma-odd \
    --seed 0 --resume latest
