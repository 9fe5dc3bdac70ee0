"""``advsig bench`` from the command line, including CI's smoke run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from advsig.cli import app as cli_app


def run_cli(*args: str | Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ADVSIG_DEBUG": "0", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "advsig", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip


@pytest.fixture
def runner() -> CliRunner:
    if not cli_app.app.registered_commands:
        cli_app._register()
    return CliRunner()


def test_ci_smoke_bench_4_embedded_images_3_attacks(tiny_kit_dir: Path, tmp_path: Path):
    """CI's smoke run: 4 embedded images x (advsig, dwtDct) x 3 attacks, end to end, plus the
    security section's transplant and averaging rows (quick budgets)."""
    out = tmp_path / "bench"
    proc = run_cli(
        "bench", "--kit", tiny_kit_dir, "--images", "embedded", "--num-images", "4",
        "--attacks", "jpeg75,crop50-resized,hflip", "--size", "64",
        "--methods", "advsig,dwtDct", "--out", out,
        "--adversaries", "--adversary-sections", "security", "--quick-adversaries",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "24 rows (24 measured now)" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    assert len(results["rows"]) == 24 and not any("error" in r for r in results["rows"])
    assert results["config"]["command"].startswith("advsig bench --kit")
    assert set(results["summary"]["robustness"]) == {"advsig", "dwtDct"}
    report = (out / "report.md").read_text()
    assert "| crop50-resized |" in report and results["config"]["command"] in report
    assert (out / "plots" / "fidelity-vs-robustness.png").is_file()
    security = {r["adversary"] for r in results["adversaries"] if r.get("section") == "security"}
    assert {"transplant-oracle", "transplant-highpass", "average-highpass-forgery",
            "average-highpass-removal"} <= security  # fmt: skip
    assert "## Security: forgery and removal without W or F" in report
    assert "| photos | transplant-oracle |" in report


def test_help_has_an_example(runner: CliRunner):
    result = runner.invoke(cli_app.app, ["bench", "--help"], terminal_width=200)
    assert result.exit_code == 0 and "Example" in result.output
    assert "advsig:KIT" in result.output


def test_user_errors_exit_1_with_one_line(tiny_kit_dir: Path, tmp_path: Path, monkeypatch, capsys):
    """Through ``main`` (what the ``advsig`` script runs), in process to save the start-up."""
    args = ["advsig", "bench", "--kit", str(tiny_kit_dir), "--methods", "advsig,lsb",
            "--out", str(tmp_path)]  # fmt: skip
    monkeypatch.setattr(sys, "argv", args)
    monkeypatch.setenv("ADVSIG_DEBUG", "0")
    with pytest.raises(SystemExit) as exit_:
        cli_app.main()
    assert exit_.value.code == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == ["error: unknown method 'lsb'; known: advsig, dwtDct, dwtDctSvd, rivaGan"]
