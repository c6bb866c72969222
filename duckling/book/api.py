"""What chapters call: one run's Record and logs (`context`), and prose, tables and figures.

Chapters read their run from the parameters file that `invoke report` writes (DUCKLING_PARAMS names it)."""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from duckling import config as config_mod
from duckling.config import Config
from duckling.errors import DucklingError
from duckling.io import read_csv, read_json

FIGURE = "duckling/figure"  # output metadata key of a figure shown by show()


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


PARAMS = "DUCKLING_PARAMS"  # names the parameters file `invoke report` writes for the chapters


def params() -> dict:
    """What `invoke report` hands the chapters: run, root, runs (the comparison's), renderer and image."""
    path = os.environ.get(PARAMS)
    if not path:
        raise DucklingError(f"no run given: chapters run under `invoke report`, which sets {PARAMS}; "
                            "or pass run= and root=")
    return read_json(Path(path))


def context(run: str | None = None, root: str | None = None) -> Context:
    """Load one run's Record and training logs (run and root default to the parameters file's)."""
    with warnings.catch_warnings():  # tqdm.auto under a kernel without ipywidgets complains on import
        warnings.filterwarnings("ignore", message="IProgress not found")
        from duckling.analyze import stage

    p = params() if run is None or root is None and os.environ.get(PARAMS) else {}
    cfg = config_mod.load(run or p["run"], root or p.get("root"))
    series, summary = stage.load(cfg)
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
    """The runs of the comparison chapter (just this run's when none were given)."""
    p = params()
    return list(p.get("runs") or [p["run"]])


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

    from duckling.book import plots

    if not re.fullmatch(r"fig-[a-z0-9-]+", label):
        raise DucklingError(f"figure label {label!r}: use fig- and lowercase letters, digits or dashes")
    display(Image(data=plots.png(plot)), metadata={FIGURE: {
        "label": label, "caption": plot.caption, "width_in": float(plot.fig.get_figwidth())}})
    plot.fig.clear()
