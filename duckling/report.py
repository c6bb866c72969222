"""The report stage: render The Duckling Record, a book of executable chapters in report/.

Chapters are Jupyter percent-format scripts listed in report/_quarto.yml. Each is executed once, in
one kernel (nbclient); the executed notebooks are then rendered by Quarto (`quarto` on PATH or the
quarto-cli Python package) into an HTML book and a PDF (Typst), or, without Quarto, by nbconvert into
standalone HTML pages joined by an index. Either way the output replaces report/_output/<run>/ only
when complete, and a render's scratch folders are removed by the next render if it was killed.

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
FIGURE = "duckling/figure"  # output metadata key of a figure shown by show()
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
    body = [[cell(v) for v in r] for r in rows]
    # Pandoc sizes the columns of a wide table (a row over 72 characters) by the dashes under the header:
    # as many as the column's widest cell (up to 48: longer text wraps), at least its header's longest
    # word (headers wrap between words), so a 64-digit hash gets the room it needs and no label collides
    dashes = [max(3, *(len(w) + 1 for w in h.split()), min(48, max((len(r[i]) + 1 for r in body), default=0)))
              for i, h in enumerate(header)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("-" * n for n in dashes) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


_SPACE = re.compile(r"\bR\^(\w+|\{\w+\})")


def math(text: str) -> str:
    """Plain text with the space R^d (or R^32) written as math."""
    return _SPACE.sub(lambda m: rf"$\mathbb{{R}}^{{{m.group(1).strip('{}')}}}$", text)


# ---- a docstring as text and math (the Methods chapter's definitions) ---------------------------
_PROSE = [(">=", "≥"), ("<=", "≤"), ("!=", "≠"), ("+-", "±"), ("->", "→"), ("**", "^"), (" * ", " × ")]
_FUNCS = {"max": r"\max", "min": r"\min", "ln": r"\ln", "log": r"\log", "exp": r"\exp", "cos": r"\cos",
          "trace": r"\operatorname{trace}", "ulp": r"\operatorname{ulp}", "atan2": r"\operatorname{atan2}"}


def _braced(f: str, opener: str, head: str) -> str:
    r"""opener( ... ) -> head{ ... }, parentheses balanced (sqrt(x) -> \sqrt{x}, ^(x) -> ^{x})."""
    while (i := f.find(opener + "(")) >= 0:
        depth, j = 0, i + len(opener)
        for j in range(i + len(opener), len(f)):
            depth += {"(": 1, ")": -1}.get(f[j], 0)
            if depth == 0:
                break
        f = f[:i] + head + "{" + f[i + len(opener) + 1:j] + "}" + f[j + 1:]
    return f


def _tex(formula: str) -> str:
    r"""One ASCII formula as TeX: sqrt, sums, powers, relations; one-letter names italic, longer ones
    upright (l_max -> l_{\max}, r_ij -> r_{ij}, n_moving -> n_{\mathrm{moving}})."""
    f = _braced(_braced(formula.replace("**", "^"), "sqrt", "\x00sqrt"), "^", "^")
    for a, b in (("!=", "\x00ne "), (">=", "\x00ge "), ("<=", "\x00le "), (" * ", " \x00cdot "), ("~", "\x00approx ")):
        f = f.replace(a, b)

    def name(m):
        base, sub = m.group(1), m.group(2) or m.group(3)
        head = (r"\sum" if base == "sum" else _FUNCS.get(base) or
                (base if len(base) == 1 else r"\text{" + base + "}"))
        if sub:
            sub = _FUNCS.get(sub) or (sub if len(sub) <= 2 else r"\mathrm{" + sub + "}")
            head += "_{" + sub + "}"
        return head.replace("\\", "\x00")
    f = re.sub(r"(?<![\x00\w])([A-Za-z][A-Za-z0-9]*)(?:_(?:\{([A-Za-z0-9]+)\}|([A-Za-z0-9]+)))?(?![A-Za-z0-9])",
               name, f)
    f = re.sub(r"\x00text\{([^}]*)\} \x00text\{", "\x00text{\\1 ", f)  # "effective dimension"
    return f.replace("\x00", "\\")


def _prose(text: str) -> str:
    for a, b in _PROSE:
        text = text.replace(a, b)
    return math(re.sub(r"([\\`*_\[\]<>#$|])", r"\\\1", text))


def definition(doc: str) -> str:
    """A metric's docstring as Markdown: paragraphs reflowed as text, formula lines (indented 4) as display
    math, aligned rule lines (indented 2: `name  condition`) as a list."""
    import inspect

    out = []
    for block in re.split(r"\n\s*\n", inspect.cleandoc(doc)):
        lines = block.splitlines()
        if all(ln.startswith("    ") for ln in lines):
            for ln in lines:
                parts = re.split(r"\s{3,}", ln.strip().rstrip(".,"))
                tex = [_tex(p.rstrip(",")) if not p.startswith(("with ", "i.e.")) else rf"\text{{{p}}}"
                       for p in parts]
                out.append("$$" + r",\qquad ".join(tex) + "$$")
            continue
        para = []
        for ln in lines:
            m = re.match(r"^  (\S.*?)\s{2,}(\S.*)$", ln)
            if m:
                if para:
                    out.append(_prose(" ".join(para)))
                    para = []
                item = f"- *{_prose(m.group(1).strip(chr(34)))}*: {_prose(m.group(2))}"
                if out and out[-1].startswith("- "):  # one list: items on consecutive lines
                    out[-1] += "\n" + item
                else:
                    out.append(item)
            else:
                para.append(ln.strip())
        if para:
            out.append(_prose(" ".join(para)))
    return "\n\n".join(out)


def md(text: str) -> None:
    from IPython.display import Markdown, display

    display(Markdown(text))


def code(v) -> str:
    """A value as inline code for a table cell; an empty value as *empty* (an empty code span breaks the table)."""
    s = str(v)
    if not s:
        return "*empty*"
    fence = "``" if "`" in s else "`"
    return f"{fence}{s}{fence}"


def show(plot, label: str) -> None:
    """Display a plots.Plot as one figure: a PNG (150 dpi) carrying its label and caption.

    One figure per cell. The engines turn it into a numbered figure: Quarto through the cell's
    `label`/`fig-cap` options, the fallback with a caption line below the image. label: fig-NAME,
    unique in the book, for cross-references (@fig-NAME in the chapter's markdown)."""
    from IPython.display import Image, display

    from duckling import plots

    if not re.fullmatch(r"fig-[a-z0-9-]+", label):
        raise DucklingError(f"figure label {label!r}: use fig- and lowercase letters, digits or dashes")
    display(Image(data=plots.png(plot)), metadata={FIGURE: {
        "label": label, "caption": plot.caption, "width_in": float(plot.fig.get_figwidth())}})
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
    files += [source / n for n in names] + [p for p in sorted(source.iterdir()) if p.is_file() and p.suffix != ".py"]
    files += [Path(__file__), Path(__file__).with_name("plots.py")]
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
    Either way each chapter is executed once (nbclient); the engine only turns the executed notebooks
    into pages: Quarto into an HTML book and a PDF (Typst), the fallback into HTML pages (nbconvert).
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
    out = cfg.report_dir.resolve()  # absolute: Quarto runs in another working directory
    fp = _fingerprint(cfgs, source, names, engine)
    stamp = out / STAMP
    out.parent.mkdir(parents=True, exist_ok=True)
    sweep(out.parent)
    if not force and (out / "index.html").exists() and stamp.exists() and read_json(stamp).get("fingerprint") == fp:
        print(f"report: up to date, skipped ({_shown(out / 'index.html')}; use --force to re-render)")
        return cfg.report_dir / "index.html"

    with _scratch(out.parent, f".{cfg.run}.tmp-") as work:
        env = _env(cfg, run_names, work, _engine_label(engine, quarto))
        build = work / "out"
        nbs = _execute(source, names, work, env, progress)
        if engine == "quarto":
            _render_quarto(quarto, source, nbs, work, build, progress, log=cfg.run_dir / "quarto.log")
        else:
            _render_fallback(nbs, build, env["DUCKLING_RUN"])
        (build / "notebooks").mkdir(exist_ok=True)
        for name, nb in nbs:
            write_notebook(nb, build / "notebooks" / f"{Path(name).stem}.ipynb")
        write_json(build / STAMP, {"fingerprint": fp, "engine": engine, "runs": run_names, "chapters": names})
        _replace(build, out)
    pdfs = sorted(out.glob("*.pdf"))
    how = f"Quarto HTML + PDF {pdfs[0].name}" if pdfs else (
        "Quarto HTML" if engine == "quarto" else "fallback HTML; install Quarto for PDF")
    print(f"report: {len(names)} chapters -> {_shown(out / 'index.html')} ({how})")
    return cfg.report_dir / "index.html"


def write_notebook(nb, path: Path) -> None:
    import nbformat

    tmp = path.with_name(f".{path.name}.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, path)


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
    """The line that says what went wrong: Quarto's ERROR line, else the exception, else the last line."""
    lines = [ln.strip() for ln in _ANSI.sub("", text).splitlines() if ln.strip()]
    errs = [ln for ln in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b", ln)]
    quarto = [ln[len("ERROR:"):].strip() for ln in lines if ln.startswith("ERROR:")]
    return (errs or quarto or lines or ["(no output)"])[-1]


# ---- scratch folders: owned by a live process, or swept ------------------------------------------
OWNER = ".owner"  # inside each scratch folder, flock-ed by the process that made it for its lifetime
KERNEL_PREFIX = "duckling-kernel-"
_SWEPT = (".*.tmp-*", ".*.old-*")  # in report/_output/: renders in progress, replaced outputs


@contextlib.contextmanager
def _scratch(parent: Path, prefix: str):
    """A fresh folder under parent, removed on exit; while it exists this process holds its owner lock,
    so a later render can tell a folder left by a killed one (lock free) from a live one's."""
    import fcntl

    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent)).resolve()
    with open(path / OWNER, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)


def _orphaned(path: Path) -> bool:
    """True if no live process owns the scratch folder (a killed render left it)."""
    import fcntl
    import time

    lock = path / OWNER
    try:
        with open(lock) as f:
            # a folder made a moment ago may not hold its lock yet
            if time.time() - os.fstat(f.fileno()).st_mtime < 2:
                return False
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False  # its owner is alive
            return True
    except FileNotFoundError:  # killed before it took its lock, or a replaced output mid-removal
        with contextlib.suppress(FileNotFoundError):
            return time.time() - path.stat().st_mtime > 60
        return False


def sweep(output_dir: Path) -> list[Path]:
    """Remove what killed renders left: their folders in output_dir and their kernels' socket folders in
    the temp folder, but only those no live process owns. Returns what was removed."""
    found = [p for pat in _SWEPT for p in output_dir.glob(pat)]
    found += Path(tempfile.gettempdir()).glob(f"{KERNEL_PREFIX}*")
    gone = [p for p in found if p.is_dir() and not p.is_symlink() and _orphaned(p)]
    for p in gone:
        shutil.rmtree(p, ignore_errors=True)
    return gone


# ---- execution: every chapter once, one kernel ----------------------------------------------------
def _execute(source: Path, names: list[str], work: Path, env: dict, progress: bool) -> list[tuple[str, object]]:
    """Execute the chapters in book order; return (name, executed notebook) with the chapters' own
    markdown untouched, for either engine to render."""
    import jupytext
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, DeadKernelError
    from tqdm.auto import tqdm

    kernels = work / "kernels"
    _kernelspec(kernels, "duckling-python", env)
    ksm = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
    done = []
    # One kernel for the whole book, its namespace wiped before each chapter: chapters stay
    # independent without paying interpreter start-up and imports once per chapter.
    # IPC sockets, not TCP (ipykernel warns about unencrypted TCP), in a short path: socket paths are
    # limited to ~100 characters and the work folder can sit deep in a checkout
    with _scratch(Path(tempfile.gettempdir()), KERNEL_PREFIX) as sockets:
        km = KernelManager(kernel_name="duckling-python", kernel_spec_manager=ksm, transport="ipc",
                           ip=str(sockets / "k"))
        km.start_kernel(cwd=str(work))
        try:
            for name in tqdm(names, desc="report", unit="chapter", disable=not progress):
                nb = jupytext.read(source / name, fmt="py:percent")
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
                done.append((name, nb))
        finally:
            with contextlib.suppress(Exception):
                km.shutdown_kernel(now=True)
    return done


def _figures(nb) -> list[tuple[object, dict]]:
    """(cell, figure metadata) for each cell that shows a figure; one figure per cell."""
    found = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        figs = [o.metadata[FIGURE] for o in cell.outputs if FIGURE in o.get("metadata", {})]
        if len(figs) > 1:
            raise DucklingError(f"report: a cell shows {len(figs)} figures ({', '.join(f['label'] for f in figs)}); "
                                "give each show() its own cell")
        if figs:
            found.append((cell, figs[0]))
    return found


def _pages_only(nb):
    """A copy without stderr streams (warnings, progress bars), as Quarto does with `warning: false`;
    the saved notebook keeps them."""
    import copy

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
    return nb


# ---- Quarto -----------------------------------------------------------------------------------
def _caption(text: str) -> str:
    return re.sub(r"([\\\[\]`*_<])", r"\\\1", text)


def _for_quarto(nb, stem: str, src: Path) -> str:
    """The executed chapter as the Markdown Quarto renders (nothing is left to execute): its markdown, its
    outputs in place, each figure a PNG under figures/ as a labelled, captioned image. Markdown rather than
    the notebook itself, because Quarto numbers an .ipynb chapter even when its title is .unnumbered."""
    import base64

    _figures(nb)  # one figure per cell
    parts = []
    for cell in _pages_only(nb).cells:
        if cell.cell_type == "markdown":
            parts.append(_FRONT.sub("", cell.source) if not parts else cell.source)
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


def _render_quarto(quarto: str, source: Path, nbs: list, work: Path, build: Path, progress: bool,
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
                if re.match(r"^\s*\[\s*\d+/\s*\d+\]\s+\S", _ANSI.sub("", line)):
                    bar.update(1)
            rcs = html.wait(), typst.wait()
            bar.close()
        finally:
            for proc in (typst, html):
                if proc is not None and proc.poll() is None:
                    proc.kill()
        typst_log.seek(0)
        text = "".join(lines) + typst_log.read()
    log.write_text(_ANSI.sub("", text))
    if any(rcs):
        raise DucklingError(f"report: Quarto failed: {_last_line(text)} (log: {_shown(log)})")
    os.replace(src / "_book", build)
    for pdf in (pdf_src / "_book").glob("*.pdf"):
        os.replace(pdf, build / pdf.name)
    if not (build / "index.html").exists():
        raise DucklingError(f"report: Quarto finished but wrote no index.html in {build}")


# ---- fallback: nbconvert ------------------------------------------------------------------------
_FRONT = re.compile(r"\A\s*---\s*\n.*?\n---\s*\n?", re.DOTALL)
_ATTRS = re.compile(r"^(#+\s.*?)\s*\{[^}]*\}\s*$", re.MULTILINE)
_REF = re.compile(r"@(fig-[a-z0-9-]+)")


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


def _captioned(nb, href: str, number: int | None, refs: dict) -> None:
    """Number the chapter's figures (Figure N.k, as Quarto does) with their captions below, sized like a
    96-dpi screen (CSS caps them at the page width); record each label's link in refs."""
    import nbformat

    for k, (cell, fig) in enumerate(_figures(nb), 1):
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
    def sub(text):
        return _REF.sub(lambda m: refs.get(m.group(1), m.group(0)), text)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = sub(cell.source)
        elif cell.cell_type == "code":
            for o in cell.outputs:
                if "text/markdown" in o.get("data", {}):
                    o.data["text/markdown"] = sub(o.data["text/markdown"])


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


def _render_fallback(nbs: list, build: Path, run: str) -> None:
    """The executed notebooks as standalone HTML pages joined by navigation and an index."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    build.mkdir(parents=True)
    pages, sections, prepared, refs = [], [], [], {}
    number = 0
    for name, nb in nbs:  # first pass: titles and figure numbers (references may point ahead)
        nb = _pages_only(nb)
        unnumbered = bool(re.search(r"^#\s.*\{[^}]*\.unnumbered[^}]*\}", _cells_text(nb), re.MULTILINE))
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
        body, _ = exporter.from_notebook_node(nb, resources={
            "metadata": {"name": f"{label} · The Duckling Record ({run})"}})
        top = _nav(pages, i) + (_toc(pages, sections, run) if href == "index.html" else "")
        (build / href).write_text(_inject(body, _CSS, top))
    if not (build / "index.html").exists():  # a book without an index chapter still gets a contents page
        (build / "index.html").write_text(f"<!doctype html><html><head><meta charset='utf-8'>"
                                          f"<title>The Duckling Record</title>{_CSS}</head><body>"
                                          f"{_toc(pages, sections, run)}</body></html>")


def _cells_text(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
