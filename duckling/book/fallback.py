"""The fallback renderer: nbconvert HTML pages joined by an index, when no Quarto is at hand."""
from __future__ import annotations

import html
import re
from pathlib import Path

from duckling.book.api import FIGURE
from duckling.book.notebook import FRONT, cells_text, figures, pages_only

_ATTRS = re.compile(r"^(#+\s.*?)\s*\{[^}]*\}\s*$", re.MULTILINE)
_REF = re.compile(r"@(fig-[a-z0-9-]+)")
# code spans (left alone), then $$display$$ and $inline$ math as pandoc reads them: no space inside
# the dollars, and a closing $ not followed by a digit
_MATH = re.compile(r"(`+).*?\1|(?<![\\$])\$\$(.+?)\$\$|(?<![\\$])\$(?=[^\s$])([^$\n]*?[^\s\\$])\$(?!\d)",
                   re.DOTALL)
_ALIAS = {r"\le": r"\leq", r"\ge": r"\geq", r"\ne": r"\neq"}  # TeX's short names mathtext lacks
_ALIASES = re.compile(r"\\(le|ge|ne)(?![A-Za-z])")
# the lab template's scripts from a CDN (MathJax, require.js, Mermaid): the pages need none of them,
# and the math is drawn into them instead, so they read the same offline
_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def _prepare(nb, number: int | None) -> tuple[str, list[str]]:
    """Turn a Quarto chapter into a plain notebook: drop the YAML header, number the title,
    drop heading attributes; return (title, section titles)."""
    title, sections = "", []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        text = FRONT.sub("", cell.source) if not title else cell.source
        for m in re.finditer(r"^(#{1,2})\s+(.*)$", text, re.MULTILINE):
            name = re.sub(r"\s*\{[^}]*\}\s*$", "", m.group(2)).strip()
            if m.group(1) == "#" and not title:
                title = name
            elif m.group(1) == "##":
                sections.append(name)
        text = _ATTRS.sub(r"\1", text)
        if number is not None and title:
            text = re.sub(rf"^#\s+{re.escape(title)}\s*$", f"# {number}&nbsp;&nbsp;{title}", text, count=1,
                          flags=re.MULTILINE)
        cell.source = text
    return title, sections


def _captioned(nb, href: str, number: int | None, refs: dict) -> None:
    """Number the chapter's figures (Figure N.k, as Quarto does) with their captions below, sized like a
    96-dpi screen (CSS caps them at the page width); record each label's link in refs."""
    import nbformat

    for k, (cell, fig) in enumerate(figures(nb), 1):
        name = f"Figure {number}.{k}" if number is not None else f"Figure {k}"
        refs[fig["label"]] = f"[{name}]({href}#{fig['label']})"
        outs = []
        for o in cell.outputs:
            outs.append(o)
            if FIGURE in o.get("metadata", {}):
                o.metadata["image/png"] = {"width": round(fig["width_in"] * 96)}
                outs.append(nbformat.v4.new_output("display_data", data={
                    "text/markdown": f'<span id="{fig["label"]}"></span>*{name}: {fig["caption"]}*'}))
        cell.outputs = outs


def _linked(nb, refs: dict) -> None:
    """@fig-NAME in markdown (cells and outputs) becomes a link to the numbered figure."""
    _each_markdown(nb, lambda text: _REF.sub(lambda m: refs.get(m.group(1), m.group(0)), text))


def _each_markdown(nb, fn) -> None:
    """fn applied to every markdown text of a notebook: markdown cells and markdown outputs."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = fn(cell.source)
        elif cell.cell_type == "code":
            for o in cell.outputs:
                if "text/markdown" in o.get("data", {}):
                    o.data["text/markdown"] = fn(o.data["text/markdown"])


def formula(tex: str, display: bool) -> str:
    """TeX math as inline SVG drawn by matplotlib's mathtext (the page needs no script and no network),
    its source as the label; what mathtext cannot set stays TeX source, as code."""
    import hashlib
    import io

    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.mathtext import MathTextParser

    text, prop = "$" + _ALIASES.sub(lambda m: _ALIAS[m.group(0)], " ".join(tex.split())) + "$", FontProperties(size=11)
    try:
        width, height, depth, _, _ = MathTextParser("path").parse(text, dpi=72, prop=prop)
    except ValueError:  # pyparsing's errors are ValueErrors
        return f"<code>{html.escape(tex)}</code>"
    fig, buf = Figure(figsize=(width / 72, height / 72)), io.BytesIO()
    fig.text(0, depth / height, text, fontproperties=prop)
    fig.savefig(buf, format="svg", transparent=True, metadata={"Date": None})
    # one line of markup for the page: without the XML prolog, metadata, comments and the style sheet
    # (it would apply to the whole page), its ids made the formula's own
    svg = re.sub(r"\A.*?(?=<svg)|<metadata>.*?</metadata>|<!--.*?-->|<style.*?</style>", "",
                 buf.getvalue().decode(), flags=re.DOTALL)
    key = hashlib.sha256(tex.encode()).hexdigest()[:8]
    svg = re.sub(r'(id="|href="#)', rf"\g<1>m{key}-", " ".join(svg.split()))
    svg = svg.replace("<svg ", f'<svg style="vertical-align:-{depth:.1f}pt" ', 1)
    span = f'<span class="duckling-math" role="img" aria-label="{html.escape(tex)}">{svg}</span>'
    return f'<div class="duckling-math-display">{span}</div>' if display else span


def _math(text: str) -> str:
    return _MATH.sub(lambda m: m.group(0) if m.group(1) else formula(m.group(2) or m.group(3), bool(m.group(2))),
                     text)


def _drawn(nb) -> None:
    """The math in markdown (cells and outputs) drawn in place."""
    _each_markdown(nb, _math)


_CSS = """<style>
.duckling-nav{font:14px/1.4 system-ui,sans-serif;padding:.6em 1.2em;border-bottom:1px solid #ddd;
display:flex;gap:1.5em;background:#fafafa}
.duckling-nav a{text-decoration:none;color:#1b4965}
.duckling-toc{font:15px/1.5 system-ui,sans-serif;margin:1em 2em 2em;padding:1em 1.5em;border:1px solid #ddd;
border-radius:6px;background:#fcfcfc}
.duckling-toc ul{margin:.3em 0;list-style:none;padding-left:.5em}.duckling-toc li span{color:#666;font-size:90%}
.jp-RenderedImage img{max-width:100%;height:auto}
.duckling-math-display{text-align:center;margin:.8em 0;overflow-x:auto}
</style>"""


def _nav(pages: list[tuple[str, str]], i: int) -> str:
    links = ['<a href="index.html">Contents</a>']
    if i > 0:
        links.insert(0, f'<a href="{pages[i - 1][0]}">&larr; {html.escape(pages[i - 1][1])}</a>')
    if i + 1 < len(pages):
        links.append(f'<a href="{pages[i + 1][0]}">{html.escape(pages[i + 1][1])} &rarr;</a>')
    return f'<nav class="duckling-nav">{"".join(links)}</nav>'


def _toc(pages: list[tuple[str, str]], sections: list[list[str]], run: str) -> str:
    items = []
    for (href, title), secs in zip(pages, sections):
        sub = f"<br><span>{html.escape(' · '.join(secs))}</span>" if secs else ""
        items.append(f'<li><a href="{href}">{html.escape(title)}</a>{sub}</li>')
    return (f'<div class="duckling-toc"><strong>The Duckling Record &middot; run {html.escape(run)}</strong>'
            f'<ul>{"".join(items)}</ul><small>Fallback HTML rendering; with Quarto installed the same '
            f"chapters render as a book with a PDF.</small></div>")


def _inject(page: str, head: str, top: str) -> str:
    page = page.replace("</head>", head + "\n</head>", 1)
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + top, page, count=1)


def render(nbs: list, build: Path, run: str) -> None:
    """The executed notebooks as standalone HTML pages joined by navigation and an index."""
    import jinja2
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True, template_file="duckling.html.j2",
                            extra_loaders=[jinja2.DictLoader({"duckling.html.j2": _TEMPLATE})])
    build.mkdir(parents=True)
    pages, sections, prepared, refs = [], [], [], {}
    number = 0
    for name, nb in nbs:  # first pass: titles and figure numbers (references may point ahead)
        nb = pages_only(nb)
        unnumbered = bool(re.search(r"^#\s.*\{[^}]*\.unnumbered[^}]*\}", cells_text(nb), re.MULTILINE))
        number += not unnumbered
        title, secs = _prepare(nb, None if unnumbered else number)
        stem = Path(name).stem
        href = "index.html" if stem == "index" else f"{stem}.html"
        _captioned(nb, href, None if unnumbered else number, refs)
        pages.append((href, title if unnumbered else f"{number}. {title}"))
        sections.append(secs)
        prepared.append(nb)
    for i, ((href, label), nb) in enumerate(zip(pages, prepared)):
        _linked(nb, refs)
        _drawn(nb)
        body, _ = exporter.from_notebook_node(nb, resources={
            "metadata": {"name": f"{label} · The Duckling Record ({run})"}})
        top = _nav(pages, i) + (_toc(pages, sections, run) if href == "index.html" else "")
        (build / href).write_text(_inject(body, _CSS, top))
    if not (build / "index.html").exists():  # a book without an index chapter still gets a contents page
        (build / "index.html").write_text(f"<!doctype html><html><head><meta charset='utf-8'>"
                                          f"<title>The Duckling Record</title>{_CSS}</head><body>"
                                          f"{_toc(pages, sections, run)}</body></html>")
