"""The Quarto renderer: the executed chapters as a Quarto book, HTML and a PDF (Typst).

Quarto starts before the first chapter executes. Each chapter stands in as its title and a pending div;
a Lua filter holds that div until the chapter's executed Markdown is written, then puts it in its place.
So Quarto's start-up, its theme and each HTML page overlap the execution of the chapters after them,
and what is left once the last chapter is done is its page, the book's last touches and the PDF (one
pandoc run over the whole book, then Typst). HTML and PDF are two Quarto processes, each in its own
copy of the book."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from duckling.book.api import FIGURE
from duckling.book.notebook import ANSI, FRONT, figures, last_line, pages_only, shown
from duckling.errors import DucklingError
from duckling.io import atomic_write_text

OVERLAP = True  # start Quarto before the chapters execute (False: once all are written, as a baseline)
PENDING = "duckling-pending"  # the class of a chapter's stand-in div
FILTER = "_pending.lua"
FORMATS = ("typst", "html")  # one Quarto process each, the PDF's first (it has more left at the end)
# The render holds an exclusive flock on each chapter's lock file until the chapter is written; the
# filter waits for a shared one (no polling, and the lock is freed if the render dies). Heading ids
# stay unique over the whole document, as if it had been read at once (the PDF's book is one).
LUA = r"""-- A chapter still executing stands in as a div of class duckling-pending: wait until the render
-- frees the chapter's lock (lock=), then put the chapter's Markdown (file=) in the div's place.
local function chapter(div)
  local path = div.attributes.file
  local f = io.open(path, "r")
  if not f then
    pandoc.pipe("flock", {"--shared", div.attributes.lock, "true"}, "")
    f = io.open(path, "r")
    if not f then error("the render stopped before " .. path .. " was written") end
  end
  local text = f:read("a")
  f:close()
  return pandoc.read(text, "markdown", PANDOC_READER_OPTIONS).blocks
end

function Pandoc(doc)
  local used = {}
  doc.blocks:walk({Header = function(h) used[h.identifier] = true end})
  local function unique(h)
    local id, n = h.identifier, 0
    while id ~= "" and used[id] do n = n + 1; id = h.identifier .. "-" .. n end
    used[id] = true
    h.identifier = id
    return h
  end
  return doc:walk({Div = function(div)
    if div.classes:includes("duckling-pending") then return chapter(div):walk({Header = unique}) end
  end})
end
"""
_TITLE = re.compile(r"^#\s.*$", re.MULTILINE)


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


def title(source: Path, name: str) -> str:
    """The chapter's opening up to its title line, from its script: what Quarto reads before it executes
    (Quarto takes a chapter's title, number and place in the contents from it)."""
    import jupytext

    cells = [c for c in jupytext.read(source / name, fmt="py:percent").cells if c.cell_type == "markdown"]
    m = _TITLE.search(FRONT.sub("", cells[0].source)) if cells else None
    if m is None:
        raise DucklingError(f"report: {source / name}: its first markdown cell holds no `# Title` line; "
                            "open the chapter with its title")
    return FRONT.sub("", cells[0].source)[:m.end()]


def _book(source: Path, names: list[str]) -> str:
    """The book's _quarto.yml for the executed chapters, with the filter that waits for them."""
    import yaml

    conf = yaml.safe_load((source / "_quarto.yml").read_text())
    conf["book"]["chapters"] = [f"{Path(n).stem}.md" for n in names]
    conf["project"]["output-dir"] = "_book"
    conf.pop("jupyter", None)  # executed already: plain Markdown
    formats = conf.setdefault("format", {})
    for name in FORMATS:  # the filter first, before the book's own (if any)
        fmt = formats[name] = formats.get(name) if isinstance(formats.get(name), dict) else {}
        fmt["filters"] = [{"path": FILTER, "at": "pre-ast"}] + list(fmt.get("filters") or [])
    return yaml.safe_dump(conf, sort_keys=False, allow_unicode=True)


class Book:
    """Quarto rendering the book while its chapters execute: `ready` hands it each executed chapter,
    `finish` waits for the HTML book and the PDF. Leaving the block kills what still runs. Without the
    flock command (util-linux) Quarto starts only once every chapter is written."""

    def __init__(self, quarto: str, source: Path, names: list[str], work: Path, log: Path):
        import fcntl

        self.quarto, self.work, self.log, self.names = quarto, work, log, names
        self.src, self.pdf_src, self.chapters = work / "src", work / "src-pdf", work / "chapters"
        self.heads = {n: title(source, n) for n in names}
        self.procs: dict[str, subprocess.Popen] = {}
        self.early = OVERLAP and shutil.which("flock") is not None
        for d in (self.src, self.chapters):
            d.mkdir()
        self.locks = {}  # held until the chapter is written; children do not inherit them (close_fds)
        for n in names:
            self.locks[n] = open(self._chapter(n).with_suffix(".lock"), "w")
            fcntl.flock(self.locks[n], fcntl.LOCK_EX)
        for p in source.iterdir():  # what the book uses beside its chapters (e.g. its Typst include)
            if p.is_file() and not p.name.startswith(".") and p.suffix != ".py":
                shutil.copy2(p, self.src / p.name)
        (self.src / "_quarto.yml").write_text(_book(source, names))
        (self.src / FILTER).write_text(LUA)
        for n in names:
            md = self._chapter(n)
            stand_in = f'::: {{.{PENDING} file="{md}" lock="{md.with_suffix(".lock")}"}}\n:::\n'
            (self.src / f"{Path(n).stem}.md").write_text(f"{self.heads[n]}\n\n{stand_in}")
        shutil.copytree(self.src, self.pdf_src)

    def _chapter(self, name: str) -> Path:
        return self.chapters / f"{Path(name).stem}.md"

    def _start(self) -> None:
        env = {**os.environ, "QUARTO_PYTHON": sys.executable}
        for fmt, cwd in zip(FORMATS, (self.pdf_src, self.src)):
            with open(self.work / f"quarto-{fmt}.log", "w") as out:  # a process group: Quarto is a tree
                self.procs[fmt] = subprocess.Popen([self.quarto, "render", ".", "--to", fmt], cwd=cwd, env=env,
                                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def __enter__(self):
        if self.early:
            self._start()
        return self

    def __exit__(self, *exc):
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for f in self.locks.values():
            f.close()

    def ready(self, name: str, nb) -> None:
        """The executed chapter, written where its stand-in waits for it (figures first)."""
        stem = Path(name).stem
        text = _for_quarto(nb, stem, self.src)
        if not text.startswith(self.heads[name]):
            raise DucklingError(f"report: chapter {name} shows output before its title; "
                                "open the chapter with its title")
        if (self.src / "figures" / stem).exists():
            shutil.copytree(self.src / "figures" / stem, self.pdf_src / "figures" / stem, dirs_exist_ok=True)
        atomic_write_text(self._chapter(name), text[len(self.heads[name]):])
        self.locks.pop(name).close()  # frees the stand-in's wait

    def finish(self, nbs: list, build: Path, progress: bool) -> None:
        """Wait for both books; move the HTML book to build and the PDF beside it."""
        from tqdm.auto import tqdm

        for name, nb in nbs:  # any chapter not handed over while it executed
            if name in self.locks:
                self.ready(name, nb)
        if not self.procs:
            self._start()
        bar = tqdm(total=len(self.names), desc="report (quarto)", unit="page", disable=not progress)
        while any(p.poll() is None for p in self.procs.values()):
            time.sleep(0.05)
            bar.update(min(self._pages(), bar.total) - bar.n)
        bar.update(min(self._pages(), bar.total) - bar.n)
        bar.close()
        text = "".join((self.work / f"quarto-{fmt}.log").read_text() for fmt in ("html", "typst"))
        self.log.write_text(ANSI.sub("", text))
        if any(p.returncode for p in self.procs.values()):
            raise DucklingError(f"report: Quarto failed: {last_line(text)} (log: {shown(self.log)})")
        os.replace(self.src / "_book", build)
        for pdf in (self.pdf_src / "_book").glob("*.pdf"):
            os.replace(pdf, build / pdf.name)
        if not (build / "index.html").exists():
            raise DucklingError(f"report: Quarto finished but wrote no index.html in {build}")

    def _pages(self) -> int:
        """HTML pages Quarto has begun ("[ i/N] chapter" lines)."""
        text = ANSI.sub("", (self.work / "quarto-html.log").read_text())
        return len(re.findall(r"^\s*\[\s*\d+/\s*\d+\]\s+\S", text, re.MULTILINE))
