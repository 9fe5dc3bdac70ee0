"""report.html: a self-contained page rendered from report.md."""

from PIL import Image

from advsig.html_report import markdown_to_html, write_html_report


def test_tables_and_local_images_inline_and_raw_html_escaped(tmp_path):
    (tmp_path / "plots").mkdir()
    Image.new("RGB", (4, 4), "red").save(tmp_path / "plots" / "p.png")
    md = tmp_path / "report.md"
    md.write_text(
        "# My bench\n\n| attack | TPR |\n|---|---|\n| jpeg75 | 0.95 |\n\n"
        "![plot](plots/p.png)\n\n![gone](plots/missing.png)\n\n<script>alert(1)</script>\n"
    )
    page = write_html_report(md).read_text()
    assert (tmp_path / "report.html").is_file()
    assert "<title>My bench</title>" in page and "<td>jpeg75</td>" in page
    assert page.count('src="data:image/png;base64,') == 1  # the file that exists, inlined
    assert 'src="plots/missing.png"' in page  # a missing one is left as a link, not dropped
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_remote_images_are_not_fetched(tmp_path):
    page = markdown_to_html("![x](https://example.com/x.png)", root=tmp_path)
    assert 'src="https://example.com/x.png"' in page
