"""The benchmark runner: rows, resume, thresholds on clean scores, results and report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from advsig.bench.runner import (
    BenchConfig,
    load_bench_images,
    read_rows,
    resolve_attacks,
    run_bench,
    summarize,
)
from advsig.errors import ConfigError

ATTACKS = "jpeg90,jpeg50,noise0.05"  # two JPEG strengths give the strength plot a line


def _config(kit: Path, out: Path, **kw) -> BenchConfig:
    base = dict(kit=str(kit), out=str(out), methods=("advsig", "dwtDct"), attacks=ATTACKS,
                size=64, num_images=3, seed=0)  # fmt: skip
    return BenchConfig(**{**base, **kw})


def test_run_writes_rows_results_report_and_plots_then_resumes(tiny_kit_dir, tmp_path):
    out = tmp_path / "bench"
    results = run_bench(_config(tiny_kit_dir, out), progress=False)
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == results["evaluated_rows"] == 3 * 2 * 3
    assert {(r["method"], r["attack"]) for r in rows} == {
        (m, a) for m in ("advsig", "dwtDct") for a in ATTACKS.split(",")
    }
    for r in rows:
        assert "error" not in r
        assert r["embed_psnr"] > 20 and 0 < r["embed_ssim"] <= 1
        assert 0 <= r["bit_accuracy"] <= 1 and 0 < r["bit_p_value"] <= 1
        assert r["attack_psnr"] is not None  # all three attacks keep the size

    saved = json.loads((out / "results.json").read_text())
    assert len(saved["rows"]) == 18 and saved["machine"]["torch"] == torch.__version__
    s = saved["summary"]["robustness"]["dwtDct"]["jpeg90"]
    assert s["num_images"] == 3 and s["resolvable_fpr"] == pytest.approx(1 / 3)
    assert {"tpr_at_0.01", "tpr_at_0.001", "auc", "bit_accuracy", "bits_p_value"} <= set(s)
    assert saved["summary"]["fidelity"]["advsig"]["num_images"] == 3
    report = (out / "report.md").read_text()
    for heading in ("## Setup", "## Fidelity", "## Robustness", "## Where it breaks"):
        assert heading in report
    assert "| jpeg50 |" in report and "| advsig | dwtDct |" in report
    for png in ("detection-vs-strength.png", "fidelity-vs-robustness.png"):
        assert (out / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()  # self-contained: both plots inline, no links
    assert page.count('src="data:image/png;base64,') == 2 and 'src="plots/' not in page
    assert "<td>jpeg50</td>" in page

    again = run_bench(_config(tiny_kit_dir, out), progress=False)
    assert again["evaluated_rows"] == 0 and len(again["rows"]) == 18
    assert again["summary"] == saved["summary"]

    # One more attack: only its rows are measured; the noise draws repeat exactly.
    more = run_bench(_config(tiny_kit_dir, out, attacks=ATTACKS + ",hflip"), progress=False)
    assert more["evaluated_rows"] == 3 * 2 and len(more["rows"]) == 24


def test_same_seed_same_rows_and_other_seed_refused(tiny_kit_dir, tmp_path):
    config = dict(methods=("advsig",), attacks="noise0.05,jpeg75", num_images=2)
    a = run_bench(_config(tiny_kit_dir, tmp_path / "a", **config), progress=False)
    b = run_bench(_config(tiny_kit_dir, tmp_path / "b", **config), progress=False)
    key = ("image", "attack", "score_signed", "score_clean", "bit_accuracy")
    assert [[r[k] for k in key] for r in a["rows"]] == [[r[k] for k in key] for r in b["rows"]]
    with pytest.raises(ConfigError, match="seed"):
        run_bench(_config(tiny_kit_dir, tmp_path / "a", seed=1, **config), progress=False)


def test_an_interrupted_row_is_dropped_and_measured_again(tiny_kit_dir, tmp_path):
    out = tmp_path / "bench"
    config = _config(tiny_kit_dir, out, methods=("dwtDct",), attacks="jpeg75", num_images=2)
    run_bench(config, progress=False)
    text = (out / "rows.jsonl").read_text()
    first, second = text.splitlines()
    (out / "rows.jsonl").write_text(first + "\n" + second[: len(second) // 2])  # killed mid-line
    assert len(read_rows(out / "rows.jsonl")) == 1
    assert (out / "rows.jsonl").read_text() == first + "\n"
    again = run_bench(config, progress=False)
    assert again["evaluated_rows"] == 1 and len(again["rows"]) == 2


def _rows(attack: str, signed: list[float], clean: list[float]) -> list[dict]:
    return [
        {"image": f"i{k}", "method": "m", "attack": attack, "score_signed": s, "score_clean": c,
         "embed_psnr": 40.0, "embed_ssim": 0.99, "attack_psnr": None}
        for k, (s, c) in enumerate(zip(signed, clean))
    ]  # fmt: skip


def test_threshold_is_set_on_clean_scores_under_the_same_attack():
    """Same watermarked scores, but the attack that lifts clean scores has a higher threshold."""
    signed = [5.0] * 10
    rows = _rows("a", signed, list(np.linspace(0, 4, 10))) + _rows(
        "b", signed, list(np.linspace(2, 6, 10))
    )
    summary = summarize(rows, {"m": {"thresholds": {"0.001": 4.5, "0.01": 4.5}}})
    a, b = summary["robustness"]["m"]["a"], summary["robustness"]["m"]["b"]
    assert a["tpr_at_0.001"] == 1.0 and a["fpr_at_0.001"] == 0.0 and a["threshold_at_0.001"] == 4
    assert b["tpr_at_0.001"] == 0.0 and b["threshold_at_0.001"] == 6  # the highest clean score
    assert a["resolvable_fpr"] == 0.1
    # At the method's own fixed threshold, b flags clean images instead.
    assert b["own_tpr_at_0.001"] == 1.0 and b["own_fpr_at_0.001"] == pytest.approx(0.4)


def test_images_and_attacks_resolve(tmp_path, photo_folder):
    imgs = load_bench_images("embedded", size=48, num_images=7, seed=0)
    assert len(imgs) == 7 and all(img.shape == (3, 48, 48) for _, img in imgs)
    assert imgs[0][0] == "astronaut-center" and imgs[5][0] == "astronaut-crop1"
    again = load_bench_images("embedded", size=48, num_images=7, seed=0)
    assert all(torch.equal(x, y) for (_, x), (_, y) in zip(imgs, again))
    other = load_bench_images("embedded", size=48, num_images=7, seed=1)
    assert torch.equal(other[0][1], imgs[0][1]) and not torch.equal(other[5][1], imgs[5][1])
    native = load_bench_images(str(photo_folder), size=0, num_images=10, seed=0)
    assert [n for n, _ in native] == ["a", "b", "sub/c", "sub/deeper/d"]

    assert len(resolve_attacks("standard")) == 20
    labels = [a.label for a in resolve_attacks("jpeg75+resize0.75, crop50-resized,hflip")]
    assert labels == ["jpeg75+resize0.75", "crop50-resized", "hflip"]
    with pytest.raises(ConfigError, match="unknown attack 'jpeg42'"):
        resolve_attacks("jpeg42")
    with pytest.raises(ConfigError, match="not a folder|neither"):
        load_bench_images(str(tmp_path / "missing"), size=32, num_images=2, seed=0)


def test_attack_groups_mix_with_labels_and_keep_each_attack_once():
    pixel = [a.label for a in resolve_attacks("pixel")]
    assert "hflip" not in pixel and "jpeg75" in pixel
    assert [a.label for a in resolve_attacks("pixel,hflip")] == [*pixel, "hflip"]
    # A label a group already brought stays where the group put it.
    assert [a.label for a in resolve_attacks("jpeg75,pixel")][0] == "jpeg75"
    assert [a.label for a in resolve_attacks("standard,jpeg75")] == [
        a.label for a in resolve_attacks("standard")
    ]
    light = [a.label for a in resolve_attacks("light")]
    assert light == ["jpeg90", "jpeg75", "resize0.5-back", "noise0.02", "brightness1.3"]
    assert [a.label for a in resolve_attacks("light,hflip")] == [*light, "hflip"]
    with pytest.raises(ConfigError, match="named twice.*jpeg75"):
        resolve_attacks("jpeg75,noise0.02,jpeg75")


def test_adversary_rows_become_one_table_each():
    from advsig.bench.report import adversaries_section

    rows = [
        {"adversary": "pgd-linf", "param": "eps", "value": 4 / 255, "success_rate": 1.0},
        {"adversary": "pgd-linf", "param": "eps", "value": 8 / 255, "success_rate": 1.0,
         "psnr": 36.2},
        {"adversary": "estimation", "k": 16, "success_rate": 0.25, "note": None},
    ]  # fmt: skip
    text = "\n".join(adversaries_section(rows))
    assert "### pgd-linf" in text and "### estimation" in text
    assert "| param | value | success_rate | psnr |" in text  # union of the group's keys
    assert "| eps | 0.03137 | 1 | 36.2 |" in text and "| eps | 0.01569 | 1 | - |" in text
    assert "| k | success_rate | note |" in text and "| 16 | 0.25 | - |" in text
