import json

from advsig.data.datasets import EMBEDDED_SPLITS
from advsig.demo import run_demo


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
