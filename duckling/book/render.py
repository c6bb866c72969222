"""The report stage: render The Duckling Record, a book of executable chapters in report/.

Chapters are Jupyter percent-format scripts listed in report/_quarto.yml. Each is executed once, in
one kernel (nbclient); the executed notebooks are rendered by Quarto (`quarto` on PATH or the
quarto-cli Python package) into an HTML book and a PDF (Typst), each chapter as soon as it is executed
(duckling.book.quarto), or, without Quarto, by nbconvert into standalone HTML pages joined by an
index. Either way the output replaces report/_output/<run>/ only when complete, and a render's
scratch folders are removed by the next render if it was killed.

Chapters read their run through `api.context()`, from the parameters file `render` writes beside
the executed notebooks (DUCKLING_PARAMS names it): run, root, the comparison's runs, the renderer.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from duckling import config as config_mod
from duckling.book import api, fallback, quarto
from duckling.book.notebook import last_line, shown, write_notebook
from duckling.config import Config
from duckling.errors import DucklingError
from duckling.io import fingerprint, read_json, sha256_file, write_json

REPO = Path(__file__).resolve().parents[2]
COMPARE_CHAPTER = "09-compare.py"
STAMP = ".render.json"
FIGURE = "duckling/figure"  # output metadata key of a figure shown by show()
ENGINES = ("auto", "quarto", "fallback")
CELL_TIMEOUT = 900  # seconds; a chapter of the 100% run reads a ~14k-frame Record


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
    files += sorted(Path(__file__).parent.glob("*.py"))  # the book's code
    return fingerprint({"files": {str(p): sha256_file(p) if p.exists() else None for p in files},
                        "engine": engine, "runs": [c.run for c in cfgs],
                        "image": os.environ.get("DUCKLING_IMAGE_VERSION", "")})


def _env(cfg: Config, run_names: list[str], work: Path, renderer: str) -> dict[str, str]:
    """What the chapters' kernels see: the parameters file (which run, where, by what) and this
    interpreter's packages."""
    params = work / "params.json"
    write_json(params, {"run": cfg.run, "root": str(Path(cfg.root).resolve()), "runs": run_names,
                        "renderer": renderer, "image": os.environ.get("DUCKLING_IMAGE_VERSION", "")})
    pythonpath = os.pathsep.join([str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    return {api.PARAMS: str(params), "PYTHONPATH": pythonpath, "MPLBACKEND": "Agg",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


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
    exe = _quarto()
    if engine == "quarto" and exe is None:
        raise DucklingError("report: Quarto is not installed (pip install quarto-cli, or the `image` extra)")
    engine = ("quarto" if exe else "fallback") if engine == "auto" else engine

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
        print(f"report: up to date, skipped ({shown(out / 'index.html')}; use --force to re-render)")
        return cfg.report_dir / "index.html"

    with _scratch(out.parent, f".{cfg.run}.tmp-") as work:
        env = _env(cfg, run_names, work, _engine_label(engine, exe))
        build = work / "out"
        if engine == "quarto":  # Quarto renders each chapter as soon as it is executed
            with quarto.Book(exe, source, names, work, log=cfg.run_dir / "quarto.log") as book:
                nbs = _execute(source, names, work, env, progress, book.ready)
                book.finish(nbs, build, progress)
        else:
            nbs = _execute(source, names, work, env, progress)
            fallback.render(nbs, build, cfg.run)
        (build / "notebooks").mkdir(exist_ok=True)
        for name, nb in nbs:
            write_notebook(nb, build / "notebooks" / f"{Path(name).stem}.ipynb")
        write_json(build / STAMP, {"fingerprint": fp, "engine": engine, "runs": run_names, "chapters": names})
        _replace(build, out)
    pdfs = sorted(out.glob("*.pdf"))
    how = f"Quarto HTML + PDF {pdfs[0].name}" if pdfs else (
        "Quarto HTML" if engine == "quarto" else "fallback HTML; install Quarto for PDF")
    print(f"report: {len(names)} chapters -> {shown(out / 'index.html')} ({how})")
    return cfg.report_dir / "index.html"


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


def _replace(build: Path, out: Path) -> None:
    """Swap the finished folder in; the old one is removed only after the new one is in place."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    os.replace(build, out)
    shutil.rmtree(old, ignore_errors=True)


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
def _execute(source: Path, names: list[str], work: Path, env: dict, progress: bool,
             done=None) -> list[tuple[str, object]]:
    """Execute the chapters in book order; return (name, executed notebook) with the chapters' own
    markdown untouched, for either engine to render. done(name, notebook) is called as each finishes."""
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
    executed = []
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
                    raise DucklingError(f"report: chapter {name} failed: {last_line(str(e))}") from None
                except DeadKernelError as e:
                    raise DucklingError(f"report: chapter {name} failed: the kernel died ({e})") from None
                finally:
                    if client.kc is not None:
                        client.kc.stop_channels()
                del nb.cells[0]
                executed.append((name, nb))
                if done:
                    done(name, nb)
        finally:
            with contextlib.suppress(Exception):
                km.shutdown_kernel(now=True)
    return executed
