import json

from advsig.data.datasets import EMBEDDED_SPLITS
from advsig.demo import run_demo

DEMO_TEST_STEPS = 200  # fine-tuning steps per model (the demo default is 400)
DEMO_TEST_SAMPLES = 32


def test_demo_writes_report_panels_and_summary(trained_tiny_kit, tmp_path):
    _, kit_dir = trained_tiny_kit
    out = tmp_path / "demo"
    summary = run_demo(out, kit=str(kit_dir), generators=())
    report = (out / "report.md").read_text()
    assert "## Detection" in report and "jpeg75" in report
    for name in EMBEDDED_SPLITS["test"]:
        assert (out / "panels" / f"{name}.png").is_file()
        assert (out / "signed" / f"{name}.png").is_file()
    data = json.loads((out / "summary.json").read_text())
    assert data["core"]["code"] == summary.code
    clean_row = summary.attacks[0]
    assert clean_row.attack == "none"
    # A trained kit flags its own signed photos and not the unsigned ones.
    assert clean_row.signed_flagged >= clean_row.num_images - 1
    assert clean_row.clean_flagged <= 1
    assert min(summary.psnr_db.values()) > 35


def test_demo_signs_the_shipped_ddpm_and_only_its_samples_are_flagged(tmp_path):
    """The whole generator story at reduced size: shipped small kit, shipped DDPM, real training."""
    out = tmp_path / "demo"
    summary = run_demo(
        out, kit="base", generators=("ddpm",), finetune_steps=DEMO_TEST_STEPS,
        num_samples=DEMO_TEST_SAMPLES,
    )  # fmt: skip
    data = json.loads((out / "summary.json").read_text())
    entry = data["generators"]["ddpm"]
    assert entry == json.loads(json.dumps(summary.generators["ddpm"]))
    for key in ("signed_flag_rate", "original_flag_rate", "control_flag_rate", "bit_accuracy"):
        assert 0 <= entry[key] <= 1
    assert entry["num_samples"] == DEMO_TEST_SAMPLES
    # The signature passes from the signed crops into the model; fine-tuning alone does not.
    assert entry["signed_flag_rate"] >= 0.9
    assert entry["original_flag_rate"] <= 0.1 and entry["control_flag_rate"] <= 0.1
    assert entry["bit_accuracy"] >= 0.9
    report = (out / "report.md").read_text()
    assert "## Signing a generator" in report
    for role in ("original", "control", "signed"):
        assert (out / "generators" / f"ddpm-{role}.png").is_file()
