"""A Markdown report as one self-contained HTML page: readable offline, sent as one file.

Images become ``data:`` URIs and the style is inline, so the page fetches nothing: it
opens from an e-mail attachment, a USB stick or a Space exactly as it was written.
"""

from __future__ import annotations

import base64
import html
import mimetypes
import os
from pathlib import Path

STYLE = """
body { font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       max-width: 62rem; margin: 2rem auto; padding: 0 1.25rem; }
h1, h2, h3 { line-height: 1.25; } h2 { border-bottom: 1px solid #d8dee4; padding-bottom: .3rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 1rem 0; display: block; overflow-x: auto; font-size: 14px; }
th, td { border: 1px solid #d0d7de; padding: .35rem .7rem; text-align: left; }
th { background: #f6f8fa; } tr:nth-child(2n) td { background: #fbfcfd; }
img { max-width: 100%; height: auto; display: block; margin: 1rem 0; }
code { background: #f2f4f6; padding: .1rem .3rem; border-radius: 4px; font-size: 90%; }
strong { color: #0b3d91; }
"""


def _markdown():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")


def data_uri(path: Path) -> str:
    """The file as a ``data:`` URI (its MIME type from its name)."""
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def markdown_body(text: str, base: Path) -> str:
    """Markdown → an HTML fragment, each local image embedded (missing ones are an error)."""
    md = _markdown()
    tokens = md.parse(text)
    for token in tokens:
        for child in token.children or ():
            if child.type != "image":
                continue
            src = child.attrGet("src") or ""
            if src.startswith(("data:", "http://", "https://")):
                continue
            path = (base / src).resolve()
            if not path.is_file():
                raise ValueError(f"{base}: the report links the image {src!r}, which does not exist")
            child.attrSet("src", data_uri(path))
    return md.renderer.render(tokens, md.options, {})


def page(body: str, title: str) -> str:
    """A complete HTML document around ``body``."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}</body>\n</html>\n"
    )


def write_html_report(markdown_path: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """``report.md`` → ``report.html`` beside it (or ``out``), one file with everything inside."""
    source = Path(markdown_path)
    text = source.read_text(encoding="utf-8")
    title = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), source.stem)
    target = Path(out) if out is not None else source.with_suffix(".html")
    target.write_text(page(markdown_body(text, source.parent), title), encoding="utf-8")
    return target
