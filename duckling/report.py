"""The report stage: render The Duckling Record, a book of executable chapters in report/.

Chapters are Jupyter percent-format scripts listed in report/_quarto.yml. With Quarto available
(`quarto` on PATH or the quarto-cli Python package) the book renders to HTML and PDF (Typst);
otherwise each chapter is executed with nbclient and exported with nbconvert to standalone HTML
pages joined by an index. Either way the output replaces report/_output/<run>/ only when complete.

Chapters read their run through `context()`, which follows the environment that `render` sets:
DUCKLING_RUN, DUCKLING_ROOT and, for the comparison chapter, DUCKLING_RUNS (comma-separated).
"""
from __future__ import annotations

import contextlib
import html
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from duckling import config as config_mod
from duckling.config import Config
from duckling.errors import DucklingError
from duckling.io import fingerprint, read_csv, read_json, sha256_file, write_json

REPO = Path(__file__).resolve().parents[1]
COMPARE_CHAPTER = "09-compare.py"
STAMP = ".render.json"
ENGINES = ("auto", "quarto", "fallback")
CELL_TIMEOUT = 900  # seconds; a chapter of the 100% run reads a ~14k-frame Record
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# ---- what chapters call -----------------------------------------------------------------------
@dataclass
class Context:
    """Everything a chapter shows about one run."""
    cfg: Config
    series: dict
    summary: dict
    metrics: dict
    evals: dict
    samples: list = field(default_factory=list)
    train: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    tokenizer_meta: dict = field(default_factory=dict)
    corpus_meta: dict = field(default_factory=dict)

    @property
    def run(self) -> str:
        return self.cfg.run


def _optional_json(path: Path, default):
    return read_json(path) if path.exists() else default


def context(run: str | None = None, root: str | None = None) -> Context:
    """Load one run's Record and training logs (run and root default to DUCKLING_RUN, DUCKLING_ROOT)."""
    with warnings.catch_warnings():  # tqdm.auto under a kernel without ipywidgets complains on import
        warnings.filterwarnings("ignore", message="IProgress not found")
        from duckling import record

    run = run or os.environ.get("DUCKLING_RUN")
    if not run:
        raise DucklingError("no run given: set DUCKLING_RUN (the `invoke report` task does) or pass run=")
    cfg = config_mod.load(run, root or os.environ.get("DUCKLING_ROOT", "."))
    series, summary = record.load(cfg)
    return Context(
        cfg=cfg, series=series, summary=summary,
        metrics=read_csv(cfg.run_dir / "metrics.csv"), evals=read_csv(cfg.run_dir / "evals.csv"),
        samples=_optional_json(cfg.run_dir / "samples.json", []),
        train=_optional_json(cfg.run_dir / "train.json", {}),
        timings=_optional_json(cfg.run_dir / "timings.json", {}),
        tokenizer_meta=_optional_json(cfg.tokenizer_dir / "meta.json", {}),
        corpus_meta=_optional_json(cfg.corpus_dir / "meta.json", {}),
    )


def runs() -> list[str]:
    """The runs of the comparison chapter: DUCKLING_RUNS, else just DUCKLING_RUN."""
    names = [r for r in os.environ.get("DUCKLING_RUNS", "").split(",") if r]
    if not names and os.environ.get("DUCKLING_RUN"):
        names = [os.environ["DUCKLING_RUN"]]
    return names


def fmt(x, digits: int = 3) -> str:
    """A number for prose: integers with separators, floats to `digits` significant digits, n/a for None/NaN."""
    if x is None:
        return "n/a"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not np.isfinite(x):
        return "n/a"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.{max(digits - 1, 0)}e}"
    return f"{x:.{digits}g}"


def step(x) -> str:
    """A step for prose ('never' when the event did not happen)."""
    return "never" if x is None else f"step {int(x):,}"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~$])")


def escape(text: str) -> str:
    """Plain text (e.g. a generated story) made safe inside Markdown."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown pipe table; cells are shown with fmt() unless already strings."""
    def cell(v):
        return (v if isinstance(v, str) else fmt(v)).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def md(text: str) -> None:
    from IPython.display import Markdown, display

    display(Markdown(text))


def show(plot) -> None:
    """Display a plots.Plot as a PNG (150 dpi) with its caption below it."""
    from IPython.display import Image, Markdown, display

    from duckling import plots

    # fallback pages size images like a 96-dpi screen (CSS caps them at the page width); Quarto sizes
    # them itself (HTML: page width; Typst: the PNG's own 150 dpi)
    fallback = os.environ.get("DUCKLING_RENDERER", "").startswith("fallback")
    width = round(plot.fig.get_figwidth() * 96) if fallback else None
    display(Image(data=plots.png(plot), width=width))
    display(Markdown(f"*{plot.caption}*"))
    plot.fig.clear()


# ---- the stage --------------------------------------------------------------------------------
def source_dir(cfg: Config | None = None) -> Path:
    """The book's sources: DUCKLING_REPORT_SRC, else report/ under the run root (the container installs
    the package apart from its checkout), else report/ beside the package."""
    candidates = [os.environ.get("DUCKLING_REPORT_SRC"), cfg and Path(cfg.root) / "report", REPO / "report"]
    for c in candidates:
        if c and (Path(c) / "_quarto.yml").exists():
            return Path(c).resolve()
    raise DucklingError("report: no report/_quarto.yml found (set DUCKLING_REPORT_SRC to the book's folder)")


def chapters(source: Path, compare: bool = False) -> list[str]:
    """Chapter files in book order, from _quarto.yml (plus the comparison chapter if asked)."""
    import yaml

    book = yaml.safe_load((source / "_quarto.yml").read_text())["book"]
    names = [c for c in book["chapters"] if isinstance(c, str)]
    return names + [COMPARE_CHAPTER] if compare else names


def _quarto() -> str | None:
    """The quarto executable: on PATH, beside this interpreter, or inside the quarto-cli package."""
    found = shutil.which("quarto") or shutil.which("quarto", path=str(Path(sys.executable).parent))
    if found:
        return found
    spec = importlib.util.find_spec("quarto_cli")
    if spec and spec.origin:
        exe = Path(spec.origin).parent / "bin" / "quarto"
        if exe.exists():
            return str(exe)
    return None


def _check_inputs(cfg: Config) -> None:
    for path in (cfg.record_dir / "record.json", cfg.record_dir / "series.npz"):
        if not path.exists():
            raise DucklingError(f"{path}: no Record for run {cfg.run}; run `invoke analyze --run {cfg.run}` first")
    for path in (cfg.run_dir / "metrics.csv", cfg.run_dir / "evals.csv"):
        if not path.exists():
            raise DucklingError(f"{path}: no training metrics for run {cfg.run}; "
                                f"run `invoke train --run {cfg.run}` first")


def _inputs(cfg: Config) -> list[Path]:
    return [cfg.record_dir / "record.json", cfg.record_dir / "series.npz", cfg.run_dir / "metrics.csv",
            cfg.run_dir / "evals.csv", cfg.run_dir / "samples.json", cfg.run_dir / "train.json"]


def _fingerprint(cfgs: list[Config], source: Path, names: list[str], engine: str) -> str:
    files = [p for c in cfgs for p in _inputs(c)]
    files += [source / n for n in names] + [source / "_quarto.yml", Path(__file__), Path(__file__).with_name("plots.py")]
    return fingerprint({"files": {str(p): sha256_file(p) if p.exists() else None for p in files},
                        "engine": engine, "runs": [c.run for c in cfgs],
                        "image": os.environ.get("DUCKLING_IMAGE_VERSION", "")})


def _env(cfg: Config, run_names: list[str], work: Path, renderer: str) -> dict[str, str]:
    """What the chapters' kernels see: which run, where, and this interpreter's packages."""
    pythonpath = os.pathsep.join([str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    return {"DUCKLING_RUN": cfg.run, "DUCKLING_ROOT": str(Path(cfg.root).resolve()),
            "DUCKLING_RUNS": ",".join(run_names), "DUCKLING_RENDERER": renderer, "PYTHONPATH": pythonpath,
            "MPLBACKEND": "Agg", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


def _kernelspec(kernels: Path, name: str, env: dict) -> None:
    """A kernelspec running ipykernel in this very interpreter, with the chapters' environment."""
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (duckling)", "language": "python", "env": env}
    (kernels / name).mkdir(parents=True, exist_ok=True)
    (kernels / name / "kernel.json").write_text(json.dumps(spec, indent=1))


def render(cfg: Config, force: bool = False, compare: list[str] | None = None, engine: str | None = None,
           progress: bool = True) -> Path:
    """Render the run's report into cfg.report_dir and return its index.html.

    compare: other runs to overlay in a comparison chapter (included when there are two runs or more).
    engine: auto (Quarto when available), quarto, or fallback; default from DUCKLING_REPORT_ENGINE.
    """
    engine = engine or os.environ.get("DUCKLING_REPORT_ENGINE", "auto")
    if engine not in ENGINES:
        raise DucklingError(f"report engine {engine!r}: choose one of {', '.join(ENGINES)}")
    quarto = _quarto()
    if engine == "quarto" and quarto is None:
        raise DucklingError("report: Quarto is not installed (pip install quarto-cli, or the `image` extra)")
    engine = ("quarto" if quarto else "fallback") if engine == "auto" else engine

    run_names = list(dict.fromkeys([cfg.run] + [r for r in (compare or []) if r]))
    cfgs = [cfg] + [config_mod.load(r, cfg.root) for r in run_names[1:]]
    for c in cfgs:
        _check_inputs(c)
    source = source_dir(cfg)
    names = chapters(source, compare=len(run_names) > 1)
    out = cfg.report_dir
    fp = _fingerprint(cfgs, source, names, engine)
    stamp = out / STAMP
    if not force and (out / "index.html").exists() and stamp.exists() and read_json(stamp).get("fingerprint") == fp:
        print(f"report: up to date, skipped ({out / 'index.html'}; use --force to re-render)")
        return out / "index.html"

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{cfg.run}.tmp-", dir=out.parent))
    try:
        env = _env(cfg, run_names, work, _engine_label(engine, quarto))
        build = work / "out"
        if engine == "quarto":
            _render_quarto(quarto, source, names, work, build, env, progress, log=cfg.run_dir / "quarto.log")
        else:
            _render_fallback(source, names, work, build, env, progress)
        write_json(build / STAMP, {"fingerprint": fp, "engine": engine, "runs": run_names, "chapters": names})
        _replace(build, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    pdfs = sorted(out.glob("*.pdf"))
    how = f"Quarto HTML + PDF {pdfs[0].name}" if pdfs else (
        "Quarto HTML" if engine == "quarto" else "fallback HTML; install Quarto for PDF")
    print(f"report: {len(names)} chapters -> {_shown(out / 'index.html')} ({how})")
    return out / "index.html"


def _engine_label(engine: str, quarto: str | None) -> str:
    """What the run card names as the renderer."""
    from importlib.metadata import version

    if engine == "quarto":
        try:
            out = subprocess.run([quarto, "--version"], check=False, capture_output=True, text=True,
                                 timeout=120).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        return f"quarto {out.strip() or '(version unknown)'}"
    return f"fallback (nbclient {version('nbclient')}, nbconvert {version('nbconvert')})"


def _shown(p: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(p.resolve().relative_to(Path.cwd()))
    return str(p)


def _replace(build: Path, out: Path) -> None:
    """Swap the finished folder in; the old one is removed only after the new one is in place."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    os.replace(build, out)
    shutil.rmtree(old, ignore_errors=True)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in _ANSI.sub("", text).splitlines() if ln.strip()]
    errs = [ln for ln in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b", ln)]
    return (errs or lines or ["(no output)"])[-1]


# ---- Quarto -----------------------------------------------------------------------------------
def _copy_sources(source: Path, names: list[str], dest: Path) -> None:
    import yaml

    dest.mkdir(parents=True)
    for p in source.iterdir():
        if p.is_file() and not p.name.startswith("."):
            shutil.copy2(p, dest / p.name)
    if COMPARE_CHAPTER in names:  # the book lists it only when there is something to compare
        conf = yaml.safe_load((source / "_quarto.yml").read_text())
        conf["book"]["chapters"] = names
        (dest / "_quarto.yml").write_text(yaml.safe_dump(conf, sort_keys=False, allow_unicode=True))


def _render_quarto(quarto: str, source: Path, names: list[str], work: Path, build: Path, env: dict,
                   progress: bool, log: Path) -> None:
    from tqdm.auto import tqdm

    src = work / "src"
    _copy_sources(source, names, src)
    jupyter = work / "jupyter"
    # a kernel named python3 first on JUPYTER_PATH: the chapters' `jupyter: python3` runs this interpreter
    _kernelspec(jupyter / "kernels", "python3", env)
    penv = {**os.environ, **env, "JUPYTER_PATH": os.pathsep.join([str(jupyter), os.environ.get("JUPYTER_PATH", "")]),
            "QUARTO_PYTHON": sys.executable}
    cmd = [quarto, "render", str(src), "--output-dir", str(build)]
    lines: list[str] = []
    current = "(setup)"
    # Quarto prints "[ i/N] chapter" as it goes, once per chapter and format
    bar = tqdm(total=len(names), desc="report (quarto)", unit="file", disable=not progress)
    proc = subprocess.Popen(cmd, cwd=src, env=penv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        lines.append(line)
        m = re.match(r"^\s*\[\s*\d+/\s*(\d+)\]\s+(\S+)", _ANSI.sub("", line))
        if m:
            current = m.group(2)
            bar.total = int(m.group(1))
            bar.update(1)
    rc = proc.wait()
    bar.close()
    text = "".join(lines)
    log.write_text(_ANSI.sub("", text))
    if rc != 0:
        raise DucklingError(f"report: chapter {current} failed under Quarto: {_last_line(text)} (log: {_shown(log)})")
    if not (build / "index.html").exists():
        raise DucklingError(f"report: Quarto finished but wrote no index.html in {build}")


# ---- fallback: nbclient + nbconvert ------------------------------------------------------------
_FRONT = re.compile(r"\A\s*---\s*\n.*?\n---\s*\n?", re.DOTALL)
_ATTRS = re.compile(r"^(#+\s.*?)\s*\{[^}]*\}\s*$", re.MULTILINE)


def _prepare(nb, number: int | None) -> tuple[str, list[str]]:
    """Turn a Quarto chapter into a plain notebook: drop the YAML header, number the title,
    drop heading attributes; return (title, section titles)."""
    title, sections = "", []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        text = _FRONT.sub("", cell.source) if not title else cell.source
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


_CSS = """<style>
.duckling-nav{font:14px/1.4 system-ui,sans-serif;padding:.6em 1.2em;border-bottom:1px solid #ddd;
display:flex;gap:1.5em;background:#fafafa}
.duckling-nav a{text-decoration:none;color:#1b4965}
.duckling-toc{font:15px/1.5 system-ui,sans-serif;margin:1em 2em 2em;padding:1em 1.5em;border:1px solid #ddd;
border-radius:6px;background:#fcfcfc}
.duckling-toc ul{margin:.3em 0;list-style:none;padding-left:.5em}.duckling-toc li span{color:#666;font-size:90%}
.jp-RenderedImage img{max-width:100%;height:auto}
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


def _render_fallback(source: Path, names: list[str], work: Path, build: Path, env: dict, progress: bool) -> None:
    import jupytext
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, DeadKernelError
    from nbconvert import HTMLExporter
    from tqdm.auto import tqdm

    kernels = work / "kernels"
    _kernelspec(kernels, "duckling-python", env)
    ksm = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    (build / "notebooks").mkdir(parents=True)
    pages, sections, bodies = [], [], []
    number = 0
    # One kernel for the whole book, its namespace wiped before each chapter: chapters stay as
    # independent as under Quarto, without paying interpreter start-up and imports nine times.
    # IPC sockets, not TCP (ipykernel warns about unencrypted TCP), in a short path: socket paths are
    # limited to ~100 characters and the work folder can sit deep in a checkout
    sockets = Path(tempfile.mkdtemp(prefix="duckling-kernel-"))
    km = KernelManager(kernel_name="duckling-python", kernel_spec_manager=ksm, transport="ipc",
                       ip=str(sockets / "k"))
    km.start_kernel(cwd=str(work))
    try:
        for name in tqdm(names, desc="report", unit="chapter", disable=not progress):
            nb = jupytext.read(source / name, fmt="py:percent")
            unnumbered = bool(re.search(r"^#\s.*\{[^}]*\.unnumbered[^}]*\}", _cells_text(nb), re.MULTILINE))
            number += not unnumbered
            title, secs = _prepare(nb, None if unnumbered else number)
            nb.metadata["kernelspec"] = {"name": "duckling-python", "display_name": "Python 3 (duckling)",
                                         "language": "python"}
            nb.cells.insert(0, nbformat.v4.new_code_cell("%reset -f"))
            client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, allow_errors=False)
            try:
                client.execute()
            except CellExecutionError as e:
                raise DucklingError(f"report: chapter {name} failed: {_last_line(str(e))}") from None
            except DeadKernelError as e:
                raise DucklingError(f"report: chapter {name} failed: the kernel died ({e})") from None
            finally:
                if client.kc is not None:
                    client.kc.stop_channels()
            del nb.cells[0]
            stem = Path(name).stem
            nbformat.write(nb, build / "notebooks" / f"{stem}.ipynb")
            label = title if unnumbered else f"{number}. {title}"
            body, _ = exporter.from_notebook_node(_without_stderr(nb), resources={
                "metadata": {"name": f"{label} · The Duckling Record ({env['DUCKLING_RUN']})"}})
            href = "index.html" if stem == "index" else f"{stem}.html"
            pages.append((href, label))
            sections.append(secs)
            bodies.append(body)
    finally:
        with contextlib.suppress(Exception):
            km.shutdown_kernel(now=True)
        shutil.rmtree(sockets, ignore_errors=True)
    run = env["DUCKLING_RUN"]
    for i, ((href, _), body) in enumerate(zip(pages, bodies)):
        top = _nav(pages, i)
        if href == "index.html":
            top += _toc(pages, sections, run)
        (build / href).write_text(_inject(body, _CSS, top))
    if not (build / "index.html").exists():  # a book without an index chapter still gets a contents page
        (build / "index.html").write_text(f"<!doctype html><html><head><meta charset='utf-8'>"
                                          f"<title>The Duckling Record</title>{_CSS}</head><body>"
                                          f"{_toc(pages, sections, run)}</body></html>")


def _without_stderr(nb):
    """The page leaves out stderr streams (warnings, progress bars), as Quarto does with `warning: false`;
    the saved notebook keeps them."""
    import copy

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
    return nb


def _cells_text(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
