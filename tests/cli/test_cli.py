"""The ``advsig`` command line, run as a real process (``python -m advsig``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from advsig.cli import app as cli_app

JSON_KEYS = {"path", "signed", "score", "p_value", "bits", "error"}


def run_cli(*args: str | Path, debug: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "ADVSIG_DEBUG": "1" if debug else "0", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "advsig", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def _stderr_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


def test_sign_folder_then_detect_json(tiny_kit_dir: Path, photo_folder: Path, tmp_path: Path):
    dst = tmp_path / "signed"
    signed = run_cli("sign", photo_folder, dst, "--kit", tiny_kit_dir, "--code", "a5")
    assert signed.returncode == 0, signed.stderr
    assert "signed 4, skipped 0" in signed.stdout and "failed 0" in signed.stdout
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*.png")) == [
        "a.png", "b.png", "sub/c.png", "sub/deeper/d.png",
    ]  # fmt: skip

    detected = run_cli("detect", dst, "--kit", tiny_kit_dir, "--json", "--fpr", "0.01")
    assert detected.returncode == 0, detected.stderr
    rows = [json.loads(line) for line in detected.stdout.splitlines()]
    assert [r["path"] for r in rows] == sorted(str(p) for p in dst.rglob("*.png"))
    for r in rows:
        assert JSON_KEYS <= r.keys()
        assert r["error"] is None and isinstance(r["signed"], bool)
        assert isinstance(r["score"], float) and 0 <= r["p_value"] <= 1


def test_corrupt_file_is_named_and_exit_code_is_1(
    tiny_kit_dir: Path, photo_folder: Path, tmp_path: Path
):
    bad = photo_folder / "sub" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 definitely not a whole jpeg")
    dst = tmp_path / "signed"
    signed = run_cli("sign", photo_folder, dst, "--kit", tiny_kit_dir)
    assert signed.returncode == 1
    assert "signed 4" in signed.stdout and "failed 1" in signed.stdout
    assert any(str(bad) in line for line in _stderr_lines(signed))
    assert "Traceback" not in signed.stderr
    assert len(list(dst.rglob("*.png"))) == 4

    gone = tmp_path / "gone.png"
    detected = run_cli("detect", photo_folder, gone, "--kit", tiny_kit_dir, "--json")
    assert detected.returncode == 1
    rows = {r["path"]: r for r in map(json.loads, detected.stdout.splitlines())}
    assert len(rows) == 6  # four photos, the corrupt file and the missing path
    assert str(bad) in rows[str(bad)]["error"] and rows[str(bad)]["score"] is None
    assert "no such file" in rows[str(gone)]["error"]
    assert sum(r["error"] is None for r in rows.values()) == 4


def test_missing_kit_is_one_line_error_without_traceback(photo_folder: Path, tmp_path: Path):
    proc = run_cli("detect", photo_folder, "--kit", tmp_path / "no-such-kit")
    assert proc.returncode == 1
    lines = _stderr_lines(proc)
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "no-such-kit" in lines[0]
    assert proc.stdout == ""


def test_debug_env_var_shows_the_traceback(photo_folder: Path, tmp_path: Path):
    proc = run_cli("detect", photo_folder, "--kit", tmp_path / "no-such-kit", debug=True)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "KitNotFoundError" in proc.stderr


def test_exported_injector_has_no_detector_and_cannot_detect(
    tiny_kit_dir: Path, photo_folder: Path, tmp_path: Path
):
    out = tmp_path / "publisher"
    export = run_cli("export-injector", tiny_kit_dir, out)
    assert export.returncode == 0, export.stderr
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "injector.safetensors"]
    config = json.loads((out / "config.json").read_text())
    assert config["detector"] is None and config["calibration"] is None

    proc = run_cli("detect", photo_folder, "--kit", out)
    assert proc.returncode == 1
    lines = _stderr_lines(proc)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "injector" in lines[0]


def test_calibrate_sets_thresholds_from_a_folder_and_switches_the_reference(
    tiny_kit_dir: Path, tiny_v1_kit_dir: Path, photo_folder: Path, tmp_path: Path
):
    out = tmp_path / "recalibrated"
    args = ("--data", photo_folder, "--num", "40")
    proc = run_cli("calibrate", tiny_kit_dir, out, *args, "--score-reference", "none")
    assert proc.returncode == 0, proc.stderr
    assert "calibrated on 40 clean crops" in proc.stdout
    config = json.loads((out / "config.json").read_text())
    before = json.loads((tiny_kit_dir / "config.json").read_text())
    assert before["detector"]["score_reference"] == "decoy"
    assert config["detector"]["score_reference"] == "none"
    assert config["training"]["calibration"]["num_clean"] == 40
    assert config["thresholds"] != before["thresholds"]
    again = run_cli("calibrate", tiny_kit_dir, out, *args)  # never overwrites a kit
    assert again.returncode == 1 and "not an empty folder" in again.stderr
    v1 = run_cli("calibrate", tiny_v1_kit_dir, tmp_path / "v1", *args, "--score-reference", "decoy")
    assert v1.returncode == 1 and "v1" in v1.stderr
    light = run_cli("calibrate", tiny_kit_dir, tmp_path / "light", *args, "--processed", "light")
    assert light.returncode == 0, light.stderr
    for label in ("jpeg90", "jpeg75", "resize0.5-back", "noise0.02", "brightness1.3"):
        assert f"  clean crops after {label}: 40, max score" in light.stdout
    processed = json.loads((tmp_path / "light" / "config.json").read_text())
    assert len(processed["training"]["calibration"]["processed"]) == 5
    bad = run_cli("calibrate", tiny_kit_dir, tmp_path / "bad", *args, "--processed", "jpeg7")
    assert bad.returncode != 0 and "unknown attack 'jpeg7'" in bad.stderr
    odd = run_cli("calibrate", tiny_kit_dir, tmp_path / "odd", *args, "--odd-bits")
    assert (
        odd.returncode == 1 and "set odd_score too" in odd.stderr
    )  # the tiny kit's score is not odd
    assert not (tmp_path / "odd").exists()
    fit = run_cli("calibrate", tiny_kit_dir, tmp_path / "fit", *args, "--fit-up", "--mirror")
    assert fit.returncode == 0, fit.stderr
    reads = json.loads((tmp_path / "fit" / "config.json").read_text())
    assert reads["fit_up"] is True and reads["mirror_reads"] is True
    assert not (tmp_path / "fit" / ".calibration-cache").exists()  # cleared once written
    # A folder holding only an interrupted run's cache resumes; its stale stage is rescored.
    (tmp_path / "resume" / ".calibration-cache").mkdir(parents=True)
    (tmp_path / "resume" / ".calibration-cache" / "clean.json").write_text("{}")
    resumed = run_cli("calibrate", tiny_kit_dir, tmp_path / "resume", *args)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout and "calibrated on 40 clean crops" in resumed.stdout
    assert sorted(p.name for p in (tmp_path / "resume").iterdir()) == [
        "config.json", "detector.safetensors", "injector.safetensors"
    ]  # fmt: skip


def test_env_prints_versions():
    proc = run_cli("env")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("advsig ") and "torch " in proc.stdout


# In-process from here: the real typer app, without paying a Python + torch start per call.


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    if not cli_app.app.registered_commands:
        cli_app._register()
    return CliRunner()


@pytest.mark.parametrize(
    "command",
    [
        "sign",
        "detect",
        "export-injector",
        "calibrate",
        "kits",
        "env",
        "train",
        "demo",
        "finetune",
        "generate",
        "eval-generator",
    ],
)
def test_every_command_help_has_an_example(runner: CliRunner, command: str):
    result = runner.invoke(cli_app.app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Example" in result.output


@pytest.mark.parametrize("existing", ["file", "folder"])
def test_export_injector_refuses_an_occupied_output(
    runner: CliRunner, tiny_kit_dir: Path, tmp_path: Path, existing: str
):
    out = tmp_path / "out"
    if existing == "file":
        out.write_text("keep me")
    else:
        out.mkdir()
        (out / "keep.txt").write_text("keep me")
    result = runner.invoke(cli_app.app, ["export-injector", str(tiny_kit_dir), str(out)])
    assert result.exit_code != 0
    assert type(result.exception).__name__ == "OutputError"
    assert str(out) in str(result.exception)
    assert (out.read_text() if existing == "file" else (out / "keep.txt").read_text()) == "keep me"


def test_sign_failure_at_write_time_names_the_input(
    runner: CliRunner, tiny_kit_dir: Path, photo_folder: Path, tmp_path: Path
):
    src = photo_folder / "sub" / "logo.png"
    logo = Image.open(photo_folder / "a.png").convert("RGBA")
    logo.putalpha(128)  # half transparent: JPEG cannot keep that
    logo.save(src)
    args = ["sign", str(photo_folder), str(tmp_path / "signed"), "--kit", str(tiny_kit_dir)]
    result = runner.invoke(cli_app.app, [*args, "--format", "jpeg"])
    assert result.exit_code == 1
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and str(src) in failed[0] and "alpha" in failed[0]


def test_every_default_kit_is_the_content_bound_default(runner: CliRunner):
    """One default everywhere, and it is a v2 kit: a v1 default would flag forgeries."""
    import inspect

    from advsig import api
    from advsig.bench.runner import BenchConfig
    from advsig.cli import bench, demo, detect, registry, serve, sign
    from advsig.demo import run_demo
    from advsig.kit import Kit
    from advsig.kits import DEFAULT_KIT
    from advsig.serve.limits import ServeSettings

    assert Kit.from_pretrained(DEFAULT_KIT).bound
    commands = [sign.sign, detect.detect, serve.serve, bench.bench, demo.demo, run_demo, api.sign,
                api.detect, api.load_kit, registry.assign_code, registry.revoke, registry.attribute]  # fmt: skip
    for fn in commands:
        assert inspect.signature(fn).parameters["kit"].default == DEFAULT_KIT, fn.__qualname__
    assert BenchConfig().kit == ServeSettings().kit_label == DEFAULT_KIT
    listed = runner.invoke(cli_app.app, ["kits"]).output.splitlines()
    default_lines = [line for line in listed if "(default)" in line]
    assert len(default_lines) == 1 and default_lines[0].startswith(f"{DEFAULT_KIT} (default):")
    assert "signature v2" in default_lines[0]


def test_sign_and_detect_take_a_precision(
    runner: CliRunner, tiny_kit_dir: Path, photo_folder: Path, tmp_path: Path
):
    outs = {}
    for precision in ("fp32", "bf16"):
        dst = tmp_path / precision
        args = ["sign", str(photo_folder), str(dst), "--kit", str(tiny_kit_dir)]
        result = runner.invoke(cli_app.app, [*args, "--precision", precision])
        assert result.exit_code == 0, result.output
        outs[precision] = [
            np.asarray(Image.open(p), dtype=np.int16) for p in sorted(dst.rglob("*.png"))
        ]
    # bfloat16 convolutions move the residual by less than one 8-bit level almost everywhere.
    diffs = [np.abs(a - b) for a, b in zip(outs["fp32"], outs["bf16"], strict=True)]
    assert max(d.max() for d in diffs) <= 2
    assert np.mean([(d > 0).mean() for d in diffs]) < 0.05
    detected = runner.invoke(
        cli_app.app,
        [
            "detect",
            str(tmp_path / "bf16"),
            "--kit",
            str(tiny_kit_dir),
            "--json",
            "--precision",
            "bf16",
        ],
    )
    assert detected.exit_code == 0, detected.output
    bad = runner.invoke(cli_app.app, [*args, "--precision", "fp16"])
    assert bad.exit_code != 0 and "fp16" in bad.output
