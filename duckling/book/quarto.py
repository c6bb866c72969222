"""The Quarto renderer: executed notebooks as .ipynb chapters of a Quarto book (HTML + Typst PDF)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from duckling.book.api import FIGURE
from duckling.book.notebook import ANSI, FRONT, figures, last_line, pages_only, shown
from duckling.errors import DucklingError


def _caption(text: str) -> str:
    return re.sub(r"([\\\[\]`*_<])", r"\\\1", text)


def _for_quarto(nb, stem: str, src: Path) -> str:
    """The executed chapter as the Markdown Quarto renders (nothing is left to execute): its markdown, its
    outputs in place, each figure a PNG under figures/ as a labelled, captioned image. Markdown rather than
    the notebook itself, because Quarto numbers an .ipynb chapter even when its title is .unnumbered."""
    import base64

    figures(nb)  # one figure per cell
    parts = []
    for cell in pages_only(nb).cells:
        if cell.cell_type == "markdown":
            parts.append(FRONT.sub("", cell.source) if not parts else cell.source)
        elif cell.cell_type == "code":
            for o in cell.outputs:
                data = o.get("data", {})
                if FIGURE in o.get("metadata", {}):
                    fig = o.metadata[FIGURE]
                    png = Path("figures") / stem / f"{fig['label']}.png"
                    (src / png).parent.mkdir(parents=True, exist_ok=True)
                    (src / png).write_bytes(base64.b64decode(data["image/png"]))
                    parts.append(f"![{_caption(fig['caption'])}]({png}){{#{fig['label']}}}")
                elif "text/markdown" in data:
                    parts.append(data["text/markdown"])
                elif o.output_type == "stream" or "text/plain" in data:
                    parts.append("```\n" + (o.get("text") or data["text/plain"]).rstrip() + "\n```")
    return "\n\n".join(parts) + "\n"


def _book(source: Path, names: list[str]) -> str:
    """The book's _quarto.yml for the executed notebooks."""
    import yaml

    conf = yaml.safe_load((source / "_quarto.yml").read_text())
    conf["book"]["chapters"] = [f"{Path(n).stem}.md" for n in names]
    conf["project"]["output-dir"] = "_book"
    conf.pop("jupyter", None)  # executed already: plain Markdown
    return yaml.safe_dump(conf, sort_keys=False, allow_unicode=True)


def render(quarto: str, source: Path, nbs: list, work: Path, build: Path, progress: bool,
                   log: Path) -> None:
    """HTML and PDF from the executed chapters: two Quarto processes at once (HTML costs most, and the
    Typst book is one more pandoc run and a compile), each in its own copy of the book."""
    from tqdm.auto import tqdm

    src = work / "src"
    src.mkdir()
    for p in source.iterdir():  # what the book uses beside its chapters (e.g. its Typst include)
        if p.is_file() and not p.name.startswith(".") and p.suffix != ".py":
            shutil.copy2(p, src / p.name)
    (src / "_quarto.yml").write_text(_book(source, [n for n, _ in nbs]))
    for name, nb in nbs:
        (src / f"{Path(name).stem}.md").write_text(_for_quarto(nb, Path(name).stem, src))
    pdf_src = work / "src-pdf"
    shutil.copytree(src, pdf_src)
    env = {**os.environ, "QUARTO_PYTHON": sys.executable}
    html = None
    with open(work / "typst.log", "w+") as typst_log:
        typst = subprocess.Popen([quarto, "render", ".", "--to", "typst"], cwd=pdf_src, env=env,
                                 stdout=typst_log, stderr=subprocess.STDOUT)
        try:
            html = subprocess.Popen([quarto, "render", ".", "--to", "html"], cwd=src, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            lines: list[str] = []
            bar = tqdm(total=len(nbs), desc="report (quarto)", unit="chapter", disable=not progress)
            for line in html.stdout:  # "[ i/N] chapter" as each page is rendered
                lines.append(line)
                if re.match(r"^\s*\[\s*\d+/\s*\d+\]\s+\S", ANSI.sub("", line)):
                    bar.update(1)
            rcs = html.wait(), typst.wait()
            bar.close()
        finally:
            for proc in (typst, html):
                if proc is not None and proc.poll() is None:
                    proc.kill()
        typst_log.seek(0)
        text = "".join(lines) + typst_log.read()
    log.write_text(ANSI.sub("", text))
    if any(rcs):
        raise DucklingError(f"report: Quarto failed: {last_line(text)} (log: {shown(log)})")
    os.replace(src / "_book", build)
    for pdf in (pdf_src / "_book").glob("*.pdf"):
        os.replace(pdf, build / pdf.name)
    if not (build / "index.html").exists():
        raise DucklingError(f"report: Quarto finished but wrote no index.html in {build}")
