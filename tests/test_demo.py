import json

import pytest
from typer.testing import CliRunner

from advsig.cli import app as cli_app
from advsig.data.datasets import EMBEDDED_SPLITS
from advsig.demo import run_demo
from advsig.errors import ConfigError
from advsig.generators.demo import DEMO_GENERATORS, run_generator_demo
from advsig.kit import Kit

DEMO_TEST_STEPS = 20  # wiring only; tests/generators/test_transfer.py trains long enough to sign
DEMO_TEST_SAMPLES = 8


def test_demo_writes_report_panels_and_summary(trained_tiny_kit, tmp_path):
    _, kit_dir = trained_tiny_kit
    out = tmp_path / "demo"
    summary = run_demo(out, kit=str(kit_dir), generators=())
    report = (out / "report.md").read_text()
    assert "## Detection" in report and "jpeg75" in report
    assert "<h2>Detection</h2>" in (out / "report.html").read_text()
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


def test_demo_generator_section_writes_summary_report_and_grids(tmp_path):
    """Every family's wiring at reduced size (too few steps for the signature to pass)."""
    out = tmp_path / "demo"
    families = ("ddpm", "ldm", "gan")
    summary = run_demo(
        out, kit="base", generators=families, finetune_steps=DEMO_TEST_STEPS,
        num_samples=DEMO_TEST_SAMPLES,
    )  # fmt: skip
    data = json.loads((out / "summary.json").read_text())
    assert set(data["generators"]) == set(families)
    keys = set(data["generators"]["ddpm"])
    report = (out / "report.md").read_text()
    for family in families:
        entry = data["generators"][family]
        assert set(entry) == keys  # the same keys for every family
        result = summary.generators[family]
        assert entry == json.loads(json.dumps(result.to_json_dict()))
        assert entry["signed_flag_rate"] == result.flag_rate("signed")
        for key in ("signed_flag_rate", "original_flag_rate", "control_flag_rate", "bit_accuracy"):
            assert 0 <= entry[key] <= 1
        assert entry["num_samples"] == DEMO_TEST_SAMPLES
        assert entry["finetune_steps"] == DEMO_TEST_STEPS
        assert entry["live"] is True  # a step count of its own makes every family live
        assert entry["original_flag_rate"] <= 1 / DEMO_TEST_SAMPLES  # shipped models are unsigned
        for role in ("original", "control", "signed"):
            assert (out / "generators" / f"{family}-{role}.png").is_file()
    assert {entry["family"] for entry in data["generators"].values()} == {"pixel", "latent", "gan"}
    assert report.count("## Signing a generator") == 3


def test_demo_reads_the_shipped_fine_tunes_and_their_samples_carry_the_signature(tmp_path):
    """The default demo reads the DDPM's shipped fine-tunes instead of fine-tuning them: the
    signed one's samples are flagged with its own code, the original's and control's are not.
    Run through the CLI, which prints each family's table from the result."""
    if not cli_app.app.registered_commands:
        cli_app._register()
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--kit", "base", "--generators", "ddpm", "--live", "none"]
    cli = CliRunner().invoke(cli_app.app, [*args, "--num-samples", "8"], terminal_width=200)
    assert cli.exit_code == 0, cli.output
    assert "ddpm (shipped fine-tunes)" in cli.output
    entry = json.loads((out / "summary.json").read_text())["generators"]["ddpm"]
    recipe = DEMO_GENERATORS["ddpm"]
    assert entry["live"] is False and entry["kit"] == "small-v2"
    assert entry["finetune_steps"] == recipe.steps
    assert entry["code"]  # read from the signed model's provenance, not drawn by the demo
    assert entry["signed_flag_rate"] >= 7 / 8 and entry["bit_accuracy"] >= 0.9
    assert entry["original_flag_rate"] == 0 and entry["control_flag_rate"] == 0
    report = (out / "report.md").read_text()
    assert recipe.shipped("signed") in report and "--live ddpm" in report


def test_shipped_fine_tunes_refuse_another_kit_by_name(tmp_path):
    with pytest.raises(ConfigError, match="signed with kit 'small-v2'"):
        run_generator_demo(
            "ddpm", tmp_path, kit=Kit.from_pretrained("small"), kit_name="small", live=False
        )
