"""``report.html``: one self-contained file from a ``report.md`` (tables, plots inlined).

Why a converter and not a second report writer: the Markdown report is what the benchmarks
and the demo already build and test; rendering it (markdown-it-py, which rich already brings)
keeps one source of truth. Local images are inlined as base64 data URIs, so the file opens
anywhere (mail, a CI artifact) with nothing beside it and nothing loaded from the network.
"""

from __future__ import annotations

import base64
import html
import logging
import re
from pathlib import Path

from markdown_it import MarkdownIt

from advsig.utils import write_text_atomic

logger = logging.getLogger(__name__)

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}
_IMG_SRC = re.compile(r'(<img [^>]*src=")([^"]+)(")')
_STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #1f2328; }
table { border-collapse: collapse; margin: 1em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: 4px 10px; text-align: left; }
th { background: #f6f8fa; }
tr:nth-child(even) td { background: #fbfbfc; }
img { max-width: 100%; image-rendering: pixelated; }
code { background: #f6f8fa; padding: 1px 4px; border-radius: 4px; }
pre { background: #f6f8fa; padding: 10px; overflow-x: auto; }
"""


def _inline(match: re.Match, root: Path) -> str:
    src = html.unescape(match.group(2))
    path = (root / src).resolve()
    mime = _MIME.get(path.suffix.lower())
    if src.startswith(("data:", "http:", "https:")) or mime is None or not path.is_file():
        if not src.startswith("data:"):
            logger.warning("report.html: image %s not inlined (missing or not local)", src)
        return match.group(0)
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"{match.group(1)}data:{mime};base64,{data}{match.group(3)}"


def markdown_to_html(text: str, *, root: str | Path, title: str = "advsig report") -> str:
    """A complete HTML page for Markdown ``text``; images relative to ``root`` are inlined."""
    # "js-default": CommonMark plus tables, and raw HTML in the source escaped, not passed on.
    body = MarkdownIt("js-default").render(text)
    body = _IMG_SRC.sub(lambda m: _inline(m, Path(root)), body)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n"
        f"<body>\n{body}</body></html>\n"
    )


def write_html_report(markdown_path: str | Path) -> Path:
    """Write ``report.html`` beside ``markdown_path`` (atomically); returns its path."""
    md = Path(markdown_path)
    text = md.read_text(encoding="utf-8")
    heading = next((ln[2:].strip() for ln in text.splitlines() if ln.startswith("# ")), None)
    out = md.with_suffix(".html")
    write_text_atomic(out, markdown_to_html(text, root=md.parent, title=heading or "advsig"))
    return out
