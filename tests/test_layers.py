"""The layers' import rules, read from the source: who may depend on whom.

metrics (the plain definitions) stand on nothing but each other; the analysis never needs the
trainer or the model; the book reads the Record and the training logs, never the movie or the
trainer; the movie format stands alone; nothing in the package imports tasks.py.
"""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "duckling"
MODULES = sorted(p.stem for p in PKG.glob("*.py") if p.stem != "__init__")
METRICS = {"lattice", "cloud", "cooling", "coherence", "compare", "detector"}
ANALYSIS = {"record", "kernel", "frames"}
BOOK = {"report", "plots"}
TRAINING = {"train", "model", "forces"}


def imports(module: str) -> set[str]:
    """Every module a duckling module imports, anywhere in its code (lazy imports count too)."""
    out = set()
    for node in ast.walk(ast.parse((PKG / f"{module}.py").read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out |= {f"duckling.{a.name}" for a in node.names} if node.module == "duckling" else {node.module}
    return out


def deps(module: str) -> set[str]:
    """The duckling modules it imports."""
    return {n.split(".")[1] for n in imports(module) if n.startswith("duckling.")}


def test_the_layers_are_what_the_rules_expect():
    assert METRICS | ANALYSIS | BOOK | TRAINING | {"movie"} <= set(MODULES)


@pytest.mark.parametrize("module", sorted(METRICS))
def test_metrics_stand_on_each_other_alone(module):
    assert deps(module) <= METRICS | {"errors"}
    assert not any(n.split(".")[0] == "torch" for n in imports(module))


@pytest.mark.parametrize("module", sorted(ANALYSIS))
def test_the_analysis_never_needs_the_trainer(module):
    assert not deps(module) & TRAINING
    assert not any(n.split(".")[0] == "torch" for n in imports(module))


@pytest.mark.parametrize("module", sorted(BOOK))
def test_the_book_reads_the_record_never_the_movie_or_the_trainer(module):
    assert not deps(module) & (TRAINING | {"movie", "frames", "kernel"})


def test_the_movie_format_stands_alone():
    assert deps("movie") <= {"errors", "io"}


@pytest.mark.parametrize("module", MODULES)
def test_nothing_imports_the_tasks(module):
    assert "tasks" not in imports(module)


def test_the_rules_see_imports(tmp_path, monkeypatch):
    """The reader finds plain, from- and lazy imports (so an empty set above is not a blind spot)."""
    (tmp_path / "probe.py").write_text("import torch\nfrom duckling import movie\n"
                                       "def f():\n    from duckling.train import run\n")
    monkeypatch.setattr(__import__(__name__), "PKG", tmp_path)
    assert imports("probe") == {"torch", "duckling.movie", "duckling.train"}
    assert deps("probe") == {"movie", "train"}
