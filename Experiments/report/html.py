"""DIR/report.html: the report as one self-contained page. The figures'
SVGs are inlined (their ids prefixed per figure so that they cannot clash,
their metadata dropped); there is no script, stylesheet, font or image to
fetch, so the page opens offline. Byte-identical for the same input, like
everything the report writes."""

from __future__ import annotations

import html
import os
import re

from .tables import cell

STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 80em;
       padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.9em; color: #444; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def _inline(text: str) -> str:
    """Escape, then `code` and **bold** and *italic* as in the Markdown."""
    s = html.escape(text, quote=False)
    s = re.sub(r"`([^`]*)`", r"<code>\1</code>", s)
    s = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", s)
    s = re.sub(r"(?<![*\w])\*([^*]+)\*(?!\*)", r"<em>\1</em>", s)
    return s


def inline_svg(path: str, prefix: str) -> str:
    with open(path, encoding="utf-8") as fh:
        svg = fh.read()
    svg = re.sub(r"<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg)
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r'\bid="', f'id="{prefix}', svg)
    svg = re.sub(r'(xlink:href|href)="#', rf'\1="#{prefix}', svg)
    svg = re.sub(r"url\(#", f"url(#{prefix}", svg)
    return svg.strip()


def _table(header, rows, left) -> list:
    def cls(i):
        return "" if i in left else ' class="num"'
    out = ["<table>", "<tr>" + "".join(
        f"<th{cls(i)}>{_inline(cell(h))}</th>" for i, h in enumerate(header))
        + "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join(
            f"<td{cls(i)}>{_inline(cell(c))}</td>" for i, c in enumerate(r))
            + "</tr>")
    out.append("</table>")
    return out


def _markdown_lines(lines, out_dir, next_id) -> list:
    """The small Markdown another module appends (coherence.py): headings,
    images (inlined from the SVG beside the PNG), tables, lists and
    paragraphs; links become text."""
    out, table, items = [], [], []

    def flush():
        if table:
            rows = [r for r in table if not re.fullmatch(r"[\s|:-]+", r)]
            cells = [[c.strip() for c in r.strip().strip("|").split("|")]
                     for r in rows]
            if cells:
                out.extend(_table(cells[0], cells[1:], left=(0,)))
            table.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{_inline(t)}</li>"
                                        for t in items) + "</ul>")
            items.clear()

    for line in lines:
        if line.startswith("|"):
            table.append(line)
            continue
        if line.startswith("- "):
            items.append(line[2:])
            continue
        flush()
        m = re.match(r"(#+) (.*)", line)
        img = re.match(r"!\[([^]]*)\]\(([^)]+)\.png\)", line)
        if m:
            n = min(len(m.group(1)), 6)
            out.append(f"<h{n}>{_inline(m.group(2))}</h{n}>")
        elif img:
            svg = os.path.join(out_dir, img.group(2) + ".svg")
            if os.path.isfile(svg):
                out += ["<figure>", inline_svg(svg, f"f{next_id()}-"),
                        f"<figcaption>{_inline(img.group(1))}</figcaption>",
                        "</figure>"]
        elif line.strip() and not line.startswith("Also: ["):
            text = re.sub(r"\[([^]]*)\]\([^)]*\)", r"\1", line)
            out.append(f"<p>{_inline(text)}</p>")
    flush()
    return out


def render_html(blocks, out_dir) -> str:
    title = next((b[2] for b in blocks if b[0] == "h"), "LockLab report")
    lines = ["<!DOCTYPE html>", '<html lang="en">', "<head>",
             '<meta charset="utf-8">',
             f"<title>{html.escape(title)}</title>",
             "<style>" + STYLE + "</style>", "</head>", "<body>"]
    n = 0

    def next_id():
        nonlocal n
        n += 1
        return n

    for b in blocks:
        kind = b[0]
        if kind == "h":
            lines.append(f"<h{b[1]}>{_inline(b[2])}</h{b[1]}>")
        elif kind == "p":
            lines.append(f"<p>{_inline(b[1])}</p>")
        elif kind == "ul":
            lines.append("<ul>" + "".join(f"<li>{_inline(t)}</li>"
                                          for t in b[1]) + "</ul>")
        elif kind == "table":
            lines += _table(b[1], b[2], b[3])
        elif kind == "markdown":
            lines += _markdown_lines(b[1], out_dir, next_id)
        elif kind == "figure":
            rel = b[2]
            svg = inline_svg(os.path.join(out_dir, rel + ".svg"),
                             f"f{next_id()}-")
            lines += ["<figure>", svg,
                      f"<figcaption>{_inline(b[1])}: "
                      f'<a href="{html.escape(rel)}.pdf">PDF</a>, '
                      f'<a href="{html.escape(rel)}.png">PNG</a>'
                      f"</figcaption>", "</figure>"]
    lines += ["</body>", "</html>"]
    return "\n".join(lines) + "\n"


def write_html(path, blocks, out_dir) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(render_html(blocks, out_dir))


__all__ = ["write_html", "render_html", "inline_svg"]
