"""The layers' import rules, read from the source: who may depend on whom.

The package's folders are its layers: data (tokenizer, corpus), train (model, loop, forces), movie
(the file format), metrics (the plain definitions), analyze (the pass that computes the Record) and
book (what chapters call, the figures, the renderers), beside ops and the shared config/io/errors.
metrics stand on nothing but each other; the analysis never needs the trainer or the model; the
book reads the Record and the training logs, never the movie or the trainer; the movie format
stands alone; nothing in the package imports tasks.py.
"""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "duckling"
LAYERS = ("data", "train", "movie", "metrics", "analyze", "book", "ops")
MODULES = sorted(".".join(p.relative_to(PKG).with_suffix("").parts) for p in PKG.rglob("*.py"))


def layer_of(module: str) -> str:
    return module.split(".")[0]


def of(layer: str) -> list[str]:
    return [m for m in MODULES if layer_of(m) == layer]


def imports(module: str) -> set[str]:
    """Every module a duckling module imports, anywhere in its code (lazy imports count too)."""
    out = set()
    path = PKG.joinpath(*module.split(".")).with_suffix(".py")
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out |= {f"{node.module}.{a.name}" for a in node.names} if node.module.count(".") < 2 and \
                node.module.startswith("duckling") else {node.module}
    return out


def deps(module: str) -> set[str]:
    """The duckling modules it imports, as paths inside the package (metrics.cloud, config, ...)."""
    found = set()
    for n in imports(module):
        if n.startswith("duckling."):
            parts = n.split(".")[1:]
            while parts and ".".join(parts) not in MODULES and ".".join(parts + ["__init__"]) not in MODULES:
                parts = parts[:-1]  # `from duckling.movie import Movie`: the module is duckling.movie
            found.add(".".join(parts))
    return found - {""}


def test_the_folders_are_the_layers():
    assert {layer_of(m) for m in MODULES if "." in m} == set(LAYERS)
    assert set(of("metrics")) >= {"metrics.lattice", "metrics.cloud", "metrics.cooling", "metrics.coherence",
                                  "metrics.compare", "metrics.detector"}


@pytest.mark.parametrize("module", of("metrics"))
def test_metrics_stand_on_each_other_alone(module):
    assert {layer_of(d) for d in deps(module)} <= {"metrics", "errors"}
    assert not any(n.split(".")[0] == "torch" for n in imports(module))


@pytest.mark.parametrize("module", of("analyze"))
def test_the_analysis_never_needs_the_trainer(module):
    assert not {layer_of(d) for d in deps(module)} & {"train", "book"}
    assert not any(n.split(".")[0] == "torch" for n in imports(module))


@pytest.mark.parametrize("module", of("book"))
def test_the_book_reads_the_record_never_the_movie_or_the_trainer(module):
    assert not {layer_of(d) for d in deps(module)} & {"train", "movie", "data"}
    assert not deps(module) & {"analyze.fast", "analyze.parallel"}  # only the Record's loader


@pytest.mark.parametrize("module", of("movie"))
def test_the_movie_format_stands_alone(module):
    assert {layer_of(d) for d in deps(module)} <= {"movie", "errors", "io"}


@pytest.mark.parametrize("module", MODULES)
def test_nothing_imports_the_tasks(module):
    assert "tasks" not in imports(module)


def test_the_rules_see_imports(tmp_path, monkeypatch):
    """The reader finds plain, from- and lazy imports (so an empty set above is not a blind spot)."""
    (tmp_path / "probe.py").write_text("import torch\nfrom duckling import movie\nfrom duckling.metrics import cloud\n"
                                       "def f():\n    from duckling.train.loop import run\n")
    monkeypatch.setattr(__import__(__name__), "PKG", tmp_path)
    monkeypatch.setattr(__import__(__name__), "MODULES", ["probe", "movie.__init__", "metrics.cloud", "train.loop"])
    assert imports("probe") == {"torch", "duckling.movie", "duckling.metrics.cloud", "duckling.train.loop"}
    assert deps("probe") == {"movie", "metrics.cloud", "train.loop"}
