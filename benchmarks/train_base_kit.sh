#!/usr/bin/env bash
# Trains the kit shipped as `--kit base` (signature v2: content-bound, keyed) and writes it into
# the package. Data: the embedded photos' training split (advsig.data.datasets.EMBEDDED_SPLITS
# ["train"]); calibration on the "val" split; the demo and benchmarks use the "test" split.
# The base preset: 4000 steps, 48 dB budget, forgery negatives (transplanted and averaged
# residuals) from step 0, paper augmentation phased in from step 2000 on at most half the batches.
# A fresh random key is drawn into $OUT/signature.key; it is not shipped (the networks carry what
# derives from it), so a rerun gives an equivalent kit with another key.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/base-v2}
advsig train --preset base --data embedded --out "$OUT" --seed 0 --resume latest
# Re-save (not copy) so config.json's thresholds come from the current calibration code.
python -c "from advsig import Kit; Kit.from_pretrained('$OUT').save_pretrained('src/advsig/kits/base')"
