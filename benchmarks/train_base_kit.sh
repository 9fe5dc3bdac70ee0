#!/usr/bin/env bash
# Trains the kit shipped as `--kit base` and copies it into the package.
# Data: the embedded photos' training split (advsig.data.datasets.EMBEDDED_SPLITS["train"]);
# calibration on the "val" split; the demo and benchmarks use the "test" split.
# Machine used for the shipped kit: 2 CPU cores (see BENCHMARKS.md for the wall time).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/base}
advsig train --preset base --data embedded --out "$OUT" --seed 0 --resume latest
mkdir -p src/advsig/kits/base
cp "$OUT/config.json" "$OUT/injector.safetensors" "$OUT/detector.safetensors" src/advsig/kits/base/
