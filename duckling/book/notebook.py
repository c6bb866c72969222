"""Executed notebooks as both renderers read them: figures, pages without stderr, their text."""
from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from duckling.book.api import FIGURE
from duckling.errors import DucklingError


def write_notebook(nb, path: Path) -> None:
    import nbformat

    tmp = path.with_name(f".{path.name}.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, path)



def figures(nb) -> list[tuple[object, dict]]:
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


def pages_only(nb):
    """A copy without stderr streams (warnings, progress bars), as Quarto does with `warning: false`;
    the saved notebook keeps them."""
    import copy

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
    return nb


def cells_text(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


FRONT = re.compile(r"\A\s*---\s*\n.*?\n---\s*\n?", re.DOTALL)


def last_line(text: str) -> str:
    """The line that says what went wrong: Quarto's ERROR line, else the exception, else the last line."""
    lines = [ln.strip() for ln in ANSI.sub("", text).splitlines() if ln.strip()]
    errs = [ln for ln in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b", ln)]
    quarto = [ln[len("ERROR:"):].strip() for ln in lines if ln.startswith("ERROR:")]
    return (errs or quarto or lines or ["(no output)"])[-1]


def shown(p: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(p.resolve().relative_to(Path.cwd()))
    return str(p)
