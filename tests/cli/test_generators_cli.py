"""``advsig finetune | generate | eval-generator`` through the real typer app."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from advsig.cli import app as cli_app
from advsig.generators.pixel import load_pixel_diffusion


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    if not cli_app.app.registered_commands:
        cli_app._register()
    return CliRunner()


def test_finetune_needs_a_kit_or_an_explicit_control(runner, tiny_ddpm, tmp_path):
    result = runner.invoke(
        cli_app.app, ["finetune", "--model", str(tiny_ddpm), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code != 0
    assert "--kit" in str(result.exception) or "--kit" in result.output


def test_finetune_generate_and_eval_generator(runner, tiny_ddpm, tiny_kit_dir, tmp_path):
    signed = tmp_path / "signed"
    result = runner.invoke(
        cli_app.app,
        ["finetune", "--model", str(tiny_ddpm), "--kit", str(tiny_kit_dir), "--code", "5a",
         "--steps", "2", "--batch-size", "4", "--out", str(signed)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert load_pixel_diffusion(signed).provenance["code"] == "5a"

    samples = tmp_path / "samples"
    result = runner.invoke(
        cli_app.app,
        ["generate", "--model", str(signed), "--num-images", "3", "--steps", "2", "--out",
         str(samples)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in samples.glob("*.png")) == [
        f"sample-{i:06d}.png" for i in range(3)
    ]

    report = tmp_path / "eval"
    result = runner.invoke(
        cli_app.app,
        ["eval-generator", "--kit", str(tiny_kit_dir), "--model", str(signed), "--reference",
         str(tiny_ddpm), "--num-images", "4", "--steps", "2", "--out", str(report)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "signed:" in result.output and "reference:" in result.output
    results = json.loads((report / "results.json").read_text())
    assert results["code"] == "5a"  # read from the signed model's advsig.json
    assert (report / "report.md").is_file()
