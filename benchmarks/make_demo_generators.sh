#!/usr/bin/env bash
# Makes the signed and control fine-tunes that `advsig demo` ships for the DDPM and the latent
# diffusion model (the demo fine-tunes the GAN live). Why ship them: fine-tuning all six models
# takes about 30 minutes on 2 CPU cores and the demo should show the whole story in minutes.
# They are made by the demo's own code path (`advsig demo --full`, the recipes in
# advsig.generators.demo.DEMO_GENERATORS, kit small-v2, seed 0), so `advsig demo --full`
# reproduces them; 256 samples per model make the run's report a benchmark as well.
# 30 min 40 s on 2 CPU cores (measured). The run's summary is kept as
# benchmarks/results/demo-full-summary.json.
#
# FAMILIES=ldm remakes one family's pair only (stop 35: the LDM's signature head, 6 min) and
# replaces that family's entry of the kept summary; the rest of the summary stays as it was.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/demo-full}
FAMILIES=${FAMILIES:-ddpm,ldm,gan}
advsig demo --full --generators "$FAMILIES" --num-samples 256 --out "$OUT"
for pair in ddpm:ddpm-32 ldm:ldm-32; do
  family=${pair%%:*} model=${pair#*:}
  [[ ",$FAMILIES," == *",$family,"* ]] || continue
  for role in signed control; do
    dest="src/advsig/generators/shipped/demo-$model-$role"
    rm -rf "$dest"
    cp -r "$OUT/generators/$family-$role" "$dest"
  done
done
OUT="$OUT" FAMILIES="$FAMILIES" python - <<'PY'
import json, os
from pathlib import Path

kept = Path("benchmarks/results/demo-full-summary.json")
run = json.loads((Path(os.environ["OUT"]) / "summary.json").read_text())
families = os.environ["FAMILIES"].split(",")
if set(families) == {"ddpm", "ldm", "gan"}:
    summary = run
else:  # one family remade: its entry (and its run's wall time) replaces the kept one's
    summary = json.loads(kept.read_text())
    for family in families:
        summary["generators"][family] = run["generators"][family]
kept.write_text(json.dumps(summary, indent=2) + "\n")
PY
python - <<'PY'
from advsig.generators.demo import DEMO_GENERATOR_KIT, why_not_shipped
for family in ("ddpm", "ldm"):
    assert why_not_shipped(family, DEMO_GENERATOR_KIT, None) is None, family
PY
