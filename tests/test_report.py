"""The report: helpers, every figure on full and empty token sets, clear errors, and a rendered smoke run."""
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import nbformat
import numpy as np
import pytest

from duckling import config, pipeline
from duckling.book import api, fallback, notebook, plots, render
from duckling.book import quarto as quarto_book
from duckling.errors import DucklingError

REPO = Path(__file__).resolve().parents[1]
GPT2 = REPO.parent / "shared" / "data" / "gpt2"
# image outputs each chapter makes, whatever the data (an empty token set gets a labelled empty panel)
FIGURES = {"index": 0, "01-run-card": 0, "02-learning": 2, "03-cloud": 6, "04-cooling": 2, "05-fimbulwinter": 3,
           "06-coherence": 1, "07-phantom-vs-dead": 3, "10-spectrum": 1,
           "11-why-they-move": 3, "08-methods": 0}


# ---- helpers ---------------------------------------------------------------------------------
def test_fmt_and_table():
    assert [api.fmt(v) for v in (None, float("nan"), 12345, 0.5, 1e-5, True, np.int64(7))] == \
        ["n/a", "n/a", "12,345", "0.5", "1.00e-05", "yes", "7"]
    assert api.step(None) == "never" and api.step(1200) == "step 1,200"
    t = api.table(["a", "b"], [["x|y", 0.25]])
    assert t.splitlines() == ["| a | b |", "|-----|-----|", "| x\\|y | 0.25 |"]
    assert api.escape("*bold* <b> #1") == "\\*bold\\* \\<b\\> \\#1"


def test_chapters_are_quarto_scripts_listed_in_the_book():
    src = render.source_dir()
    names = render.chapters(src)
    assert names[0] == "index.py" and len(names) == 11
    assert render.chapters(src, compare=True) == names + [render.COMPARE_CHAPTER]
    for name in names + [render.COMPARE_CHAPTER]:
        text = (src / name).read_text()
        # Quarto renders a script only if it opens with a markdown cell holding a YAML header
        assert text.startswith("# %% [markdown]\n# ---\n"), name
        nb = jupytext.reads(text, fmt="py:percent")
        assert nb.cells[0].cell_type == "markdown" and any(c.cell_type == "code" for c in nb.cells)


def test_prepare_drops_the_yaml_header_and_numbers_the_title():
    nb = jupytext.reads("# %% [markdown]\n# ---\n# jupyter: python3\n# ---\n#\n# # Cooling {#sec-c}\n#\n# text\n\n"
                        "# %% [markdown]\n# ## Curves\n\n# %%\nx = 1\n", fmt="py:percent")
    title, sections = fallback._prepare(nb, 4)
    assert (title, sections) == ("Cooling", ["Curves"])
    assert "---" not in nb.cells[0].source and nb.cells[0].source.lstrip().startswith("# 4&nbsp;&nbsp;Cooling\n")


def test_last_line_prefers_the_exception_then_quartos_error():
    text = "Traceback\n  File x\n\x1b[31mValueError\x1b[0m: boom\n\nsome trailer\n"
    assert notebook.last_line(text) == "ValueError: boom"
    text = ("[1/9] index.ipynb\n\x1b[91mERROR: No valid input files passed to render\x1b[39m\n\nStack trace:\n"
            "    at renderProject (file:///q/src/command/render/project.ts:12:3)\n"
            "    at async file:///q/src/quarto.ts:221:3\n")
    assert notebook.last_line(text) == "No valid input files passed to render"


def test_table_sizes_columns_by_their_widest_cell_and_code_marks_empty_values():
    t = api.table(["input", "sha256"], [["movie", api.code("ab" * 32)], ["path", api.code("")]])
    assert t.splitlines()[1] == "|" + "-" * 6 + "|" + "-" * 48 + "|"
    assert "*empty*" in t and "``" not in t
    assert api.code("a`b") == "``a`b``"


def test_math_and_definitions_become_text_and_math():
    assert api.math("sd 0.1 in R^32, or R^d") == r"sd 0.1 in $\mathbb{R}^{32}$, or $\mathbb{R}^{d}$"
    doc = """Mean cosine, with |D_i| > 0 and n >= 2:

        mean_cos = (|sum_i u_i|**2 - n) / (n (n - 1)),   sd = sqrt(2 / (n (n - 1) d))

    Rules:
      "frozen"   L1 = 0
      "moving"   otherwise
    """
    out = api.definition(doc)
    assert r"$$\text{mean}_{\cos} = (|\sum_{i} u_{i}|^{2} - n)" not in out  # ** became a power, not ^{2}
    assert r"\sum_{i} u_{i}|^2 - n) / (n (n - 1)),\qquad \text{sd} = \sqrt{2 / (n (n - 1) d)}$$" in out
    assert "with \\|D\\_i\\| \\> 0 and n ≥ 2" in out  # prose: escaped, operators as symbols
    assert "- *frozen*: L1 = 0\n- *moving*: otherwise" in out
    assert "```" not in out and "**" not in out


def _executed(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("---\njupyter: python3\n---\n\n# Title\n\nSee @fig-a.")]
    for labels in cells:
        c = nbformat.v4.new_code_cell("show(p)")
        c.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="},
                                            metadata={render.FIGURE: {"label": n, "caption": f'"{n}" says \\o/',
                                                                      "width_in": 9.0}}) for n in labels]
        nb.cells.append(c)
    return nb


def test_figures_become_numbered_captioned_figures_for_each_engine(tmp_path):
    text = quarto_book._for_quarto(_executed(["fig-a"], ["fig-b"]), "02-x", tmp_path)
    assert text.startswith("# Title\n\nSee @fig-a.\n\n")  # no YAML header: nothing left to execute
    assert '!["fig-a" says \\\\o/](figures/02-x/fig-a.png){#fig-a}' in text
    assert (tmp_path / "figures" / "02-x" / "fig-b.png").read_bytes()[:3] == b"\x89PN"

    nb, refs = _executed(["fig-a"], ["fig-b"]), {}
    fallback._captioned(nb, "02-x.html", 2, refs)
    fallback._linked(nb, refs)
    assert "[Figure 2.1](02-x.html#fig-a)" in nb.cells[0].source
    caps = [o.data["text/markdown"] for c in nb.cells[1:] for o in c.outputs if "text/markdown" in o.data]
    assert caps[1].startswith('<span id="fig-b"></span>*Figure 2.2: ')
    assert nb.cells[1].outputs[0].metadata["image/png"] == {"width": 864}
    with pytest.raises(DucklingError, match="give each show"):
        quarto_book._for_quarto(_executed(["fig-a", "fig-b"]), "02-x", tmp_path)


# ---- figures ---------------------------------------------------------------------------------
def synthetic(T=9, dead=True):
    """A Record-shaped series and summary (keys as duckling.analyze.stage writes them)."""
    rng = np.random.default_rng(0)
    steps = np.arange(T)
    s = {"steps": steps, "test_steps": steps[[1, T // 2, T - 1]]}
    sizes = {"phantom": 20, "natural_dead": 7 if dead else 0, "live": 30}
    for S, n in sizes.items():
        decay = 0.01 * (1.0 + steps) ** -0.7
        v = {k: decay * rng.uniform(0.5, 2.0, T) for k in report_keys()}
        v["n_zero"] = np.floor(n * steps / T)
        v["path2d"] = np.c_[np.cumsum(decay), np.cumsum(decay) * 0.1]
        reg = rng.dirichlet(np.ones(5), T)
        v["regimes"] = reg
        for k in ("velocity", "axis_turn", "speed_q10", "speed_q50", "speed_q90", "speed_mean", "ulp_q50",
                  "ulp_q90", "zero_cross_frac", "coherence", "coherence_k", "alignment", "n_zero"):
            v[k][0] = np.nan
        v["regimes"][0] = np.nan
        for k, a in v.items():
            s[f"{S}/{k}"] = a if n else np.full(np.shape(a), np.nan)
        if S != "live":
            s[f"{S}/speeds_at_tests"] = rng.lognormal(-5, 0.5, (3, n))
    fw = {"verdict": "cold, not frozen", "onset_50": 4, "onset_99": None, "window_start_step": T - 1,
          "meaning": "m"}
    live = [S for S, n in sizes.items() if n]
    summ = {"sets": sizes, "k": 3, "config": {"d_model": 32},
            "fimbulwinter": {S: fw for S in live},
            "cooling": {S: {"slope": -0.7, "intercept": -2.0, "r2": 0.9, "start_step": 3} for S in live},
            "velocity_trend": {S: {"trend": "decelerating", "slope": -0.1, "intercept": -4.0, "start_step": 4}
                               for S in live},
            "coherence": {S: {"expected_random": 0.01} for S in live},
            "drift_plane": {S: {"explained": [0.9, 0.1]} for S in live},
            "compare": {"tests": [{"step": int(t), "ks_p": 0.5} for t in s["test_steps"]]},
            "learning": {"plateau": 6.75, "unigram_entropy": 5.7, "final_val_bpb": 1.3}}
    return s, summ


def report_keys():
    return ("drift", "velocity", "rms_radius", "median_radius", "anisotropy", "effective_dim", "axis_turn",
            "speed_q10", "speed_q50", "speed_q90", "speed_mean", "cum_q10", "cum_q50", "cum_q90", "ulp_q50",
            "ulp_q90", "zero_cross_frac", "coherence", "coherence_k", "alignment", "n_zero")


def figures(s, summ):
    metrics = {"step": np.arange(1, 9), "loss": np.linspace(9, 4, 8), "lr": np.full(8, 1e-3),
               "grad_norm": np.linspace(2, 1, 8), "phantom_mass": np.geomspace(0.2, 1e-3, 8)}
    evals = {"step": np.array([4, 8]), "val_loss": np.array([6.0, 4.5]), "val_bpb": np.array([2.0, 1.5])}
    recs = [("a", s, summ), ("b", s, summ)]
    return [plots.loss_curves(metrics, evals, summ["learning"]), plots.optimizer(metrics),
            plots.driving_force(metrics), plots.centroid_paths(s, summ), plots.drift_velocity(s, summ),
            plots.radius_curves(s), plots.shape_curves(s, summ), plots.speed_curves(s, summ), plots.cumulative(s),
            plots.regime_shares(s, summ), plots.lattice_views(s, summ, "phantom"),
            plots.lattice_views(s, summ, "natural_dead"), plots.coherence_curves(s, summ), plots.pair_metrics(s, summ),
            plots.regime_shares(s, summ, sets=plots.PAIR), plots.speed_distributions(s, summ),
            plots.overlay_regimes(recs), plots.overlay_cooling(recs), plots.overlay_drift(recs)]


@pytest.mark.parametrize("dead", [True, False], ids=["with-natural-dead", "no-natural-dead"])
def test_every_figure_draws_and_has_a_caption(dead):
    s, summ = synthetic(dead=dead)
    texts = []
    for p in figures(s, summ):
        assert isinstance(p, plots.Plot) and p.caption.strip()
        drawn = [a for a in p.fig.axes if a.has_data()]
        assert drawn or p.caption == plots.EMPTY["natural_dead"] + ".", p.caption
        assert all(a.get_xlabel() or a.get_ylabel() for a in drawn), p.caption  # labelled axes
        assert plots.png(p)[:8] == b"\x89PNG\r\n\x1a\n"
        texts += [t.get_text() for a in p.fig.axes for t in a.texts]
    assert ("no natural dead tokens in this corpus" in texts) is (not dead)


def test_colours_are_fixed_per_token_set():
    s, summ = synthetic()
    p = plots.drift_velocity(s, summ)
    a = p.fig.axes[0]
    assert {line.get_label(): line.get_color() for line in a.lines} == \
        {plots.LABELS[S]: plots.COLORS[S] for S in plots.SETS}


# ---- errors ----------------------------------------------------------------------------------
def test_missing_record_names_the_analyze_task(root):
    cfg = config.build("smoke", run="r")
    cfg.save()
    with pytest.raises(DucklingError, match=r"invoke analyze --run r"):
        render.render(cfg, engine="fallback")


def test_missing_metrics_names_the_train_task(root):
    cfg = config.build("smoke", run="r")
    cfg.save()
    cfg.record_dir.mkdir(parents=True)
    for name in ("record.json", "series.npz"):
        (cfg.record_dir / name).write_text("{}")
    with pytest.raises(DucklingError, match=r"invoke train --run r"):
        render.render(cfg, engine="fallback")


def test_engine_is_checked(root, monkeypatch):
    cfg = config.build("smoke", run="r")
    with pytest.raises(DucklingError, match="report engine 'pdf'"):
        render.render(cfg, engine="pdf")
    monkeypatch.setattr(render, "_quarto", lambda: None)
    with pytest.raises(DucklingError, match="Quarto is not installed"):
        render.render(cfg, engine="quarto")


FAKE_QUARTO = """#!/bin/sh
# stands in for a Quarto that fails the way Quarto does: an ERROR line, then a stack trace
echo "[1/9] index.ipynb"
printf '\\033[91mERROR: Typst compilation failed\\033[39m\\n\\nStack trace:\\n'
echo "    at async file:///q/src/quarto.ts:221:3"
exit 1
"""


@pytest.mark.slow
def test_a_failing_quarto_is_one_line_and_keeps_the_last_report(smoke, monkeypatch):
    fake = smoke.root_dir / "quarto-fails"
    fake.write_text(FAKE_QUARTO)
    fake.chmod(0o755)
    index = smoke.report_dir / "index.html"
    before = index.read_text()
    saved = [(n, nbformat.read(smoke.report_dir / "notebooks" / f"{Path(n).stem}.ipynb", as_version=4))
             for n in render.chapters(render.source_dir(smoke))]
    monkeypatch.setattr(render, "_execute", lambda *a: saved)  # executed already: only Quarto is tested
    monkeypatch.setattr(render, "_quarto", lambda: str(fake))
    with pytest.raises(DucklingError, match=r"^report: Quarto failed: Typst compilation failed \(log: "):
        render.render(smoke, engine="quarto", force=True, progress=False)
    assert index.read_text() == before, "a failed render must keep the last report"
    assert not list(smoke.report_dir.parent.glob(f".{smoke.run}*")), "temporary folders left behind"
    assert "Stack trace" in (smoke.run_dir / "quarto.log").read_text()


# ---- a real smoke run, rendered --------------------------------------------------------------
def page_text(path: Path) -> str:
    raw = re.sub(r"<(script|style)\b.*?</\1>", " ", path.read_text(), flags=re.DOTALL)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", raw)).split())


def image_outputs(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    if not (GPT2 / "vocab.json").exists():
        pytest.skip("needs ../shared/data/gpt2 (GPT-2 vocab.json and merges.txt)")
    root = tmp_path_factory.mktemp("root")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DUCKLING_ROOT", str(root))
        mp.setenv("DUCKLING_GPT2_DIR", str(GPT2))
        mp.setenv("DUCKLING_REPORT_ENGINE", "fallback")  # the Quarto path is not what this test checks
        mp.delenv("DUCKLING_REPORT_SRC", raising=False)
        cfg = config.resolve(profile="smoke", root=str(root))
        pipeline.run_all(cfg)
        yield cfg


def _copy_run(cfg, name, edit=None):
    """Another run made of the smoke run's files (runs/ and the Record), optionally edited."""
    for d in ("runs", "data/record"):
        shutil.copytree(cfg.root_dir / d / cfg.run, cfg.root_dir / d / name)
    c = json.loads((cfg.root_dir / "runs" / name / "config.json").read_text())
    (cfg.root_dir / "runs" / name / "config.json").write_text(json.dumps({**c, "run": name}))
    other = config.load(name, cfg.root)
    if edit:
        with np.load(other.record_dir / "series.npz") as z:
            series = {k: z[k] for k in z.files}
        summary = json.loads((other.record_dir / "record.json").read_text())
        edit(series, summary)
        np.savez(other.record_dir / "series.npz", **series)
        (other.record_dir / "record.json").write_text(json.dumps(summary))
    return other


def _chapters_only(cfg, names, runs, tmp_path):
    """Execute some chapters through the fallback, as render does, into tmp_path/out."""
    source = render.source_dir(cfg)
    env = render._env(cfg, runs, tmp_path, "fallback (test)")
    nbs = render._execute(source, names, tmp_path, env, progress=False)
    fallback.render(nbs, tmp_path / "out", cfg.run)
    for name, nb in nbs:
        notebook.write_notebook(nb, tmp_path / "out" / f"{Path(name).stem}.ipynb")
    return tmp_path / "out"


@pytest.mark.slow
def test_smoke_report_executes_every_chapter_with_its_figures(smoke):
    out = smoke.report_dir
    summary = json.loads((smoke.record_dir / "record.json").read_text())
    names = [Path(n).stem for n in render.chapters(render.source_dir(smoke))]
    assert set(names) == set(FIGURES)
    for stem in names:
        nb = nbformat.read(out / "notebooks" / f"{stem}.ipynb", as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(c.execution_count for c in code), stem
        assert not [o for c in code for o in c.outputs if o.output_type == "error"], stem
        assert image_outputs(nb) == FIGURES[stem], stem
        page = out / ("index.html" if stem == "index" else f"{stem}.html")
        assert page.read_text().count("<img") == FIGURES[stem], stem
        number = names.index(stem)  # the index chapter is unnumbered
        assert [f"Figure {number}.{k}:" in page_text(page) for k in range(1, FIGURES[stem] + 2)] == \
            [True] * FIGURES[stem] + [False], stem
    index = page_text(out / "index.html")
    for answer in (summary["learning"]["answer"], summary["compare"]["answer"], summary["lifecycle"]["sentence"]):
        assert " ".join(answer.split()) in index
    assert summary["fimbulwinter"]["phantom"]["verdict"] in page_text(out / "05-fimbulwinter.html")
    assert " ".join(summary["learning"]["answer"].split()) in page_text(out / "02-learning.html")
    assert summary["compare"]["answer"] in page_text(out / "07-phantom-vs-dead.html")
    assert summary["provenance"]["movie_sha256"] in page_text(out / "01-run-card.html")
    for href in [f"{n}.html" for n in names if n != "index"]:
        assert f'href="{href}"' in (out / "index.html").read_text()
    check_book_text("\n".join(page_text(p) for p in sorted(out.glob("*.html"))), smoke, "fallback HTML")
    assert "report" in json.loads((smoke.run_dir / "timings.json").read_text())
    assert not list(out.parent.glob(f".{smoke.run}*")), "temporary folders left behind"


@pytest.mark.slow
def test_unchanged_inputs_skip_and_a_failing_chapter_is_named(smoke, tmp_path, monkeypatch, capsys):
    index = smoke.report_dir / "index.html"
    before = index.stat().st_mtime_ns
    render.render(smoke, progress=False)
    assert "up to date" in capsys.readouterr().out and index.stat().st_mtime_ns == before

    src = tmp_path / "book"
    src.mkdir()
    (src / "_quarto.yml").write_text("book:\n  chapters:\n    - index.py\n    - bad.py\n")
    shutil.copy(render.source_dir(smoke) / "index.py", src / "index.py")
    (src / "bad.py").write_text("# %% [markdown]\n# ---\n# jupyter: python3\n# ---\n# # Bad\n\n"
                                "# %%\nraise ValueError('boom at the end')\n")
    monkeypatch.setenv("DUCKLING_REPORT_SRC", str(src))
    with pytest.raises(DucklingError, match=r"chapter bad\.py failed: ValueError: boom at the end"):
        render.render(smoke, force=True, progress=False)
    assert index.stat().st_mtime_ns == before, "a failed render must leave the last report in place"
    assert not list(index.parent.parent.glob(f".{smoke.run}*"))


@pytest.mark.slow
def test_comparison_chapter_and_a_corpus_without_natural_dead_tokens(smoke, tmp_path):
    _copy_run(smoke, "smoke-b")
    out = _chapters_only(smoke, [render.COMPARE_CHAPTER], [smoke.run, "smoke-b"], tmp_path / "cmp")
    nb = nbformat.read(out / f"{Path(render.COMPARE_CHAPTER).stem}.ipynb", as_version=4)
    assert image_outputs(nb) == 3
    assert "smoke-b" in page_text(out / f"{Path(render.COMPARE_CHAPTER).stem}.html")

    def no_dead(series, summary):
        for k in list(series):
            if k.startswith("natural_dead/"):
                series[k] = (np.zeros((series[k].shape[0], 0)) if k.endswith("speeds_at_tests")
                             else np.full(series[k].shape, np.nan))
        summary["sets"]["natural_dead"] = 0
        for part in ("fimbulwinter", "cooling", "velocity_trend", "coherence", "drift_plane"):
            summary[part].pop("natural_dead", None)
        summary["compare"]["tests"] = [{**t, "n_b": 0, "ks_p": None, "ks_stat": None} for t in summary["compare"]["tests"]]
        summary["compare"]["drift_angle_deg"] = None
    lone = _copy_run(smoke, "no-dead", no_dead)
    names = ["03-cloud.py", "04-cooling.py", "05-fimbulwinter.py", "06-coherence.py", "07-phantom-vs-dead.py"]
    out = _chapters_only(lone, names, [lone.run], tmp_path / "lone")
    for name in names:
        nb = nbformat.read(out / f"{Path(name).stem}.ipynb", as_version=4)
        assert image_outputs(nb) == FIGURES[Path(name).stem], name
    assert "no natural dead tokens in this corpus" in page_text(out / "07-phantom-vs-dead.html")


# ---- a killed render ---------------------------------------------------------------------------
INVOKE = Path(sys.executable).with_name("invoke")


@pytest.mark.slow
def test_the_next_run_removes_what_a_killed_report_left(smoke, tmp_path):
    """Killed mid-render, a report leaves its work folder and its kernel's socket folder; the next
    `invoke report` removes both, and leaves alone a folder a live render owns."""
    out, tmp = smoke.report_dir.parent, tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "DUCKLING_ROOT": str(smoke.root_dir), "DUCKLING_REPORT_ENGINE": "fallback",
           "TMPDIR": str(tmp)}
    proc = subprocess.Popen([str(INVOKE), "report", "--run", smoke.run, "--force"], cwd=REPO, env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (list(out.glob(f".{smoke.run}.tmp-*")) and list(tmp.glob("duckling-kernel-*"))):
            assert proc.poll() is None and time.monotonic() < deadline, "the render never started its kernel"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole render: invoke and its kernel
        proc.wait()
    left = list(out.glob(f".{smoke.run}.tmp-*")) + list(tmp.glob("duckling-kernel-*"))
    assert len(left) == 2
    with render._scratch(out, f".{smoke.run}.tmp-") as live:
        time.sleep(2.5)  # older than a folder that may not hold its lock yet
        r = subprocess.run([str(INVOKE), "report", "--run", smoke.run], cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        assert not [p for p in left if p.exists()], "a killed render's folders survived the next run"
        assert live.exists(), "a live render's folder was removed"


# ---- the real Quarto: HTML and PDF -------------------------------------------------------------
KIT = REPO.parent / "shared" / "tools" / "quarto"
HEADINGS = re.compile(r"^#\s+(.+?)\s*(\{[^}]*\})?\s*$", re.MULTILINE)


@pytest.fixture(scope="module")
def quarto():
    """A real Quarto: one the report finds (PATH, beside Python, quarto-cli), else the kit installed into its
    default prefix; skipped where there is neither."""
    found = render._quarto()
    if found:
        return found
    if not (KIT / "install.sh").exists():
        pytest.skip("no Quarto: none on PATH and no kit at ../shared/tools/quarto "
                    "(install Quarto or `pip install quarto-cli` to run the Quarto tests)")
    prefix = Path.home() / ".cache" / "duckling-quarto"
    r = subprocess.run(["bash", str(KIT / "install.sh"), str(prefix)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"the Quarto kit did not install: {r.stdout[-2000:]}{r.stderr[-2000:]}"
    return str(prefix / "bin" / "quarto")


@pytest.fixture(scope="module")
def book(smoke, quarto):
    """The smoke run rendered by `invoke report` with the real Quarto (a copy of the run, so the fallback
    report stays as the other tests expect)."""
    run = _copy_run(smoke, "smoke-quarto")
    env = {**os.environ, "DUCKLING_ROOT": str(smoke.root_dir), "DUCKLING_REPORT_ENGINE": "quarto",
           "PATH": os.pathsep.join([str(Path(quarto).parent), os.environ["PATH"]])}
    r = subprocess.run([str(INVOKE), "report", "--run", run.run], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Quarto HTML + PDF The-Duckling-Record.pdf" in r.stdout
    assert "without encryption" not in r.stdout + r.stderr  # kernels on IPC sockets, not TCP
    return run, r


def chapter_titles(cfg):
    """(stem, title, number or None) in book order, from the chapters' own first heading."""
    src, n, out = render.source_dir(cfg), 0, []
    for name in render.chapters(src):
        nb = jupytext.read(src / name, fmt="py:percent")
        m = HEADINGS.search(notebook.FRONT.sub("", notebook.cells_text(nb)))
        unnumbered = ".unnumbered" in (m.group(2) or "")
        n += not unnumbered
        out.append((Path(name).stem, m.group(1), None if unnumbered else n))
    return out


def check_book_text(text: str, cfg, where: str) -> None:
    """What every rendering of the book must show, and what none may show."""
    text = " ".join(text.split())
    for stem, title, number in chapter_titles(cfg):
        assert title in text, f"{where}: chapter title {title!r} missing"
        for k in range(1, FIGURES[stem] + 1):
            assert f"Figure {number}.{k}" in text, f"{where}: Figure {number}.{k} ({stem}) missing"
    assert not re.search(r"\|\s*:?-{3,}|\| (field|value|set|stage) \|", text), f"{where}: raw table markup"
    assert "``" not in text and "R^" not in text, f"{where}: raw code span or caret"
    assert not re.search(r"Traceback|\w+Error\b|ERROR|Exception:|Stack trace", text), f"{where}: error text"
    assert re.search(r"see Figure 5\.1|Figure 5\.1 follows", text, re.IGNORECASE), f"{where}: cross-reference"


@pytest.mark.slow
def test_quarto_pdf(book):
    import pypdf

    run, _ = book
    pdf = run.report_dir / "The-Duckling-Record.pdf"
    reader = pypdf.PdfReader(pdf)
    pages = [p.extract_text() for p in reader.pages]
    assert 20 <= len(pages) <= 45, len(pages)
    assert sum(len(p.images) for p in reader.pages) == sum(FIGURES.values()), "a figure is missing"
    assert all(t.strip() for t in pages[2:]), "a blank page inside the book"  # page 2: the cover's back
    assert not [i for i, t in enumerate(pages[1:], 2) if re.fullmatch(r"\s*\d*\s*", t)], "a blank page"
    check_book_text("\n".join(pages), run, "PDF")
    assert "$" not in "".join(pages), "TeX left unset"
    summary = json.loads((run.record_dir / "record.json").read_text())
    assert summary["provenance"]["movie_sha256"] in "".join("".join(pages).split())


@pytest.mark.slow
def test_quarto_pdf_text_stays_inside_the_page_margins(book):
    if not shutil.which("pdftotext"):
        pytest.skip("needs pdftotext (poppler-utils) for word positions")
    run, _ = book
    box = subprocess.run(["pdftotext", "-bbox", str(run.report_dir / "The-Duckling-Record.pdf"), "-"],
                         capture_output=True, text=True, check=True).stdout
    margin = 3 * 72 / 2.54 - 10  # the book template's 3 cm side margins, less a table cell's inset of slack
    for i, page in enumerate(box.split("<page ")[1:], 1):
        width, height = (float(v) for v in re.search(r'width="([\d.]+)" height="([\d.]+)"', page).groups())
        for x0, y0, x1, y1, word in re.findall(
                r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<', page):
            # section numbers hang into the left margin by design; nothing may cross the right one
            assert float(x1) <= width - margin and float(x0) >= 28 and 28 <= float(y0) <= float(y1) <= height - 28, \
                f"page {i}: {word!r} at x {x0}..{x1} (page width {width:.0f})"


@pytest.mark.slow
def test_quarto_html(book):
    run, _ = book
    out = run.report_dir
    text = []
    for stem, _title, number in chapter_titles(run):
        page = out / ("index.html" if stem == "index" else f"{stem}.html")
        raw = page.read_text()
        main = raw[raw.index("<main"):raw.index("</main>")]
        assert main.count("<img") == FIGURES[stem], stem
        assert main.count("<figcaption") == FIGURES[stem], stem
        if number is None:
            assert 'class="chapter-number"' not in main[:main.index("</h1>")], f"{stem} is unnumbered"
        text.append(page_text(page))
    check_book_text("\n".join(text), run, "HTML")
    assert not list(out.parent.glob(".*")), "temporary folders left behind"


# ---- Quarto while the chapters execute; the fallback offline ------------------------------------
def _stand_ins(tmp_path, stems):
    """A document of stand-ins as quarto.Book writes them (title, then a pending div), with the filter."""
    (tmp_path / quarto_book.FILTER).write_text(quarto_book.LUA)
    doc = ""
    for stem in stems:
        md, lock = tmp_path / f"{stem}.md", tmp_path / f"{stem}.lock"
        doc += f'# Chapter {stem}\n\n::: {{.{quarto_book.PENDING} file="{md}" lock="{lock}"}}\n:::\n\n'
    (tmp_path / "book.md").write_text(doc)
    return ["pandoc", "-f", "markdown", "-t", "json", "-L", str(tmp_path / quarto_book.FILTER),
            str(tmp_path / "book.md")]


def _headers(ast):
    return [(b["c"][0], b["c"][1][0]) for b in ast["blocks"] if b["t"] == "Header"]


def test_a_pending_chapter_waits_for_its_markdown_and_keeps_heading_ids_unique(quarto, tmp_path):
    import fcntl

    args = _stand_ins(tmp_path, ["a", "b"])
    (tmp_path / "a.md").write_text("## Radius\n\nfirst text\n")
    with open(tmp_path / "b.lock", "w") as lock:  # the render holds b's lock while b executes
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.Popen([quarto, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        assert proc.poll() is None, "the filter did not wait for chapter b: " + proc.communicate()[1]
        (tmp_path / "b.md").write_text("## Radius\n\nsecond $x$ text\n")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    ast = json.loads(out)
    assert _headers(ast) == [(1, "chapter-a"), (2, "radius"), (1, "chapter-b"), (2, "radius-1")]
    assert "first" in out and "second" in out and '"Math"' in out and quarto_book.PENDING not in out


def test_a_pending_chapter_fails_at_once_when_the_render_is_gone(quarto, tmp_path):
    args = _stand_ins(tmp_path, ["a"])
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'w'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print(flush=True); time.sleep(60)",
                               str(tmp_path / "a.lock")], stdout=subprocess.PIPE)  # a render, killed
    try:
        holder.stdout.readline()  # it holds the lock
        proc = subprocess.Popen([quarto, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        assert proc.poll() is None, "the filter did not wait"
    finally:
        holder.kill()
        holder.wait()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "the render stopped before" in err


def test_a_chapter_opens_with_its_title(tmp_path):
    (tmp_path / "a.py").write_text("# %% [markdown]\n# ---\n# jupyter: python3\n# ---\n#\n# # Cooling {#sec-c}\n#\n"
                                   "# text\n\n# %%\nx = 1\n")
    (tmp_path / "b.py").write_text("# %% [markdown]\n# ---\n# jupyter: python3\n# ---\n#\n# Some prose.\n\n"
                                   "# %% [markdown]\n# # Late title\n")
    assert quarto_book.title(tmp_path, "a.py") == "# Cooling {#sec-c}"
    with pytest.raises(DucklingError, match=r"b\.py: its first markdown cell holds no `# Title` line"):
        quarto_book.title(tmp_path, "b.py")


@pytest.mark.slow
def test_quarto_renders_pages_while_later_chapters_execute(quarto, tmp_path):
    """The first page is rendered while the second chapter is still executing; the book then
    completes with the second chapter in place, as HTML and PDF."""
    src = tmp_path / "book"
    src.mkdir()
    (src / "_quarto.yml").write_text("project:\n  type: book\nbook:\n  title: T\n  author: A\n"
                                     "  chapters:\n    - index.py\n    - b.py\n")
    for name, text in (("index.py", "# Start {.unnumbered}\n#\n# first chapter"), ("b.py", "# Bee\n#\n# beeswax")):
        (src / name).write_text(f"# %% [markdown]\n# ---\n# jupyter: python3\n# ---\n#\n# {text}\n")
    nbs = [(n, jupytext.read(src / n, fmt="py:percent")) for n in ("index.py", "b.py")]
    work, build = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    with quarto_book.Book(quarto, src, ["index.py", "b.py"], work, log=tmp_path / "quarto.log") as book:
        book.ready(*nbs[0])
        deadline = time.monotonic() + 300
        while "[2/2]" not in (work / "quarto-html.log").read_text():  # page 1 done, page 2 begun
            assert time.monotonic() < deadline, "Quarto did not render the first page before the second chapter"
            assert all(p.poll() is None for p in book.procs.values()), (work / "quarto-html.log").read_text()
            time.sleep(0.1)
        assert all(p.poll() is None for p in book.procs.values()), "Quarto did not wait for chapter b"
        book.ready(*nbs[1])
        book.finish(nbs, build, progress=False)
    assert "beeswax" in page_text(build / "b.html") and "first chapter" in page_text(build / "index.html")
    assert [p.name for p in build.glob("*.pdf")] == ["T.pdf"]


def test_fallback_math_is_drawn_into_the_page():
    text = r"in $\mathbb{R}^d$, `$HOME`, $5 and $6, \$ sign; $$\mathrm{sd} = \sqrt{2 / d}$$ and $a \le b$"
    out = fallback._math(text)
    assert "`$HOME`" in out and "$5 and $6" in out and r"\$ sign" in out  # not math
    spans = re.findall(r'<span class="duckling-math" role="img" aria-label="([^"]*)"><svg .*?</svg></span>', out)
    assert spans == [r"\mathbb{R}^d", r"\mathrm{sd} = \sqrt{2 / d}", r"a \le b"]  # \le set as \leq
    assert out.count('<div class="duckling-math-display">') == 1 and "<metadata>" not in out and "<style" not in out
    assert fallback.formula(r'x = (\text{how}="\sum")', False).startswith("<code>")  # mathtext can't: source
    a, b = fallback.formula("x^2", False), fallback.formula("y^2", False)
    assert not set(re.findall(r'id="([^"]+)"', a)) & set(re.findall(r'id="([^"]+)"', b)), "ids shared across formulas"


@pytest.mark.slow
def test_fallback_pages_need_no_network(smoke):
    for page in sorted(smoke.report_dir.glob("*.html")):
        raw = page.read_text()
        assert not re.search(r"<script[^>]*\ssrc=\"https?:", raw), f"{page.name} loads a script from the network"
        assert "mathjax" not in raw.lower(), page.name
    methods = (smoke.report_dir / "08-methods.html").read_text()
    assert 'class="duckling-math"' in methods and "<svg" in methods
    assert "\\mathbb" not in page_text(smoke.report_dir / "08-methods.html")  # TeX left as text
