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
         "--steps", "2", "--batch-size", "4", "--low-t-max", "10", "--out", str(signed)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    provenance = load_pixel_diffusion(signed).provenance
    assert provenance["code"] == "5a" and provenance["config"]["low_t_max"] == 10

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


def test_finetune_refuses_a_strategy_of_another_family(runner, tiny_ddpm, tiny_kit_dir, tmp_path):
    result = runner.invoke(
        cli_app.app,
        ["finetune", "--model", str(tiny_ddpm), "--kit", str(tiny_kit_dir), "--strategy",
         "decoder", "--out", str(tmp_path / "o")],
    )  # fmt: skip
    assert result.exit_code != 0
    message = str(result.exception) + result.output
    assert "pixel" in message and "decoder" in message
    assert not (tmp_path / "o").exists()


def test_eval_generator_finetune_attack_reads_each_milestone(
    runner, tiny_ddpm, tiny_kit_dir, tmp_path
):
    import torch

    out = tmp_path / "persist"
    result = runner.invoke(
        cli_app.app,
        ["eval-generator", "--kit", str(tiny_kit_dir), "--model", str(tiny_ddpm), "--attack",
         "finetune", "--attack-steps", "0,2", "--attack-lr", "1e-2", "--batch-size", "4",
         "--num-images", "3", "--steps", "2", "--data", "embedded", "--out", str(out),
         "--attack-low-t-fraction", "0"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads((out / "persistence.json").read_text())
    assert [r["attacker_steps"] for r in data["milestones"]] == [0, 2]
    assert all(r["num_samples"] == 3 for r in data["milestones"])
    # The attacker's quality is measured at every milestone (an attack that ruins the model
    # is not a removal), and the attacker's loss is the uniform one asked for.
    assert all(r["fid_vs_real"] >= 0 for r in data["milestones"])
    assert data["config"]["low_t_fraction"] == 0
    # The attacker's stage model is a real fine-tune of the released one, on clean data.
    attacked = load_pixel_diffusion(out / "attacked-2")
    assert attacked.provenance["config"]["low_t_fraction"] == 0
    assert attacked.provenance["signed"] is False
    assert attacked.provenance["base_model"] == str(tiny_ddpm)
    before = load_pixel_diffusion(tiny_ddpm).unet.state_dict()
    after = attacked.unet.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert "attacker steps" in (out / "report.md").read_text()


def test_finetune_position_map_reaches_the_saved_gan(runner, tiny_kit_dir, tmp_path):
    from advsig.generators.families import get_family
    from advsig.generators.gan import load_gan

    model = get_family("gan").new_toy(seed=0).save(tmp_path / "gan")
    result = runner.invoke(
        cli_app.app,
        ["finetune", "--model", str(model), "--kit", str(tiny_kit_dir), "--code", "5a",
         "--strategy", "distill", "--position-map", "--residual-gain", "1.3", "--steps", "2",
         "--batch-size", "2", "--out", str(tmp_path / "o")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    signed = load_gan(tmp_path / "o")
    assert signed.spec.kwargs["signature_head"] is True  # the GAN's --position-map since stop 35
    assert signed.spec.kwargs["head_on_clamped"] is True  # since stop 36
    assert signed.generator.signature_head.features[-1].weight.abs().sum() > 0  # zero at first


def test_residual_gain_is_refused_where_it_means_nothing(runner, tiny_kit_dir, tiny_ddpm, tmp_path):
    from advsig.generators.families import get_family

    gan = get_family("gan").new_toy(seed=0).save(tmp_path / "gan")
    refusals = [
        ["--model", str(tiny_ddpm), "--kit", str(tiny_kit_dir), "--strategy", "distill"],
        ["--model", str(gan), "--kit", str(tiny_kit_dir), "--strategy", "data"],
        ["--model", str(gan), "--control", "--strategy", "distill"],  # a control has no residual
    ]
    for args in refusals:
        result = runner.invoke(
            cli_app.app,
            ["finetune", *args, "--residual-gain", "1.3", "--steps", "1", "--out", str(tmp_path / "x")],
        )  # fmt: skip
        said = result.output + str(result.exception)
        assert result.exit_code != 0 and "residual-gain" in said, said
