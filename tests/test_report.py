"""The report: helpers, every figure on full and empty token sets, clear errors, and a rendered smoke run."""
import html
import json
import re
import shutil
from pathlib import Path

import jupytext
import nbformat
import numpy as np
import pytest

from duckling import config, pipeline, plots, report
from duckling.errors import DucklingError

GPT2 = Path(__file__).resolve().parents[2] / "shared" / "data" / "gpt2"
# image outputs each chapter makes, whatever the data (an empty token set gets a labelled empty panel)
FIGURES = {"index": 0, "01-run-card": 0, "02-learning": 2, "03-cloud": 5, "04-cooling": 2, "05-fimbulwinter": 3,
           "06-coherence": 1, "07-phantom-vs-dead": 3, "08-methods": 0}


# ---- helpers ---------------------------------------------------------------------------------
def test_fmt_and_table():
    assert [report.fmt(v) for v in (None, float("nan"), 12345, 0.5, 1e-5, True, np.int64(7))] == \
        ["n/a", "n/a", "12,345", "0.5", "1.00e-05", "yes", "7"]
    assert report.step(None) == "never" and report.step(1200) == "step 1,200"
    t = report.table(["a", "b"], [["x|y", 0.25]])
    assert t.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | 0.25 |"]
    assert report.escape("*bold* <b> #1") == "\\*bold\\* \\<b\\> \\#1"


def test_chapters_are_quarto_scripts_listed_in_the_book():
    src = report.source_dir()
    names = report.chapters(src)
    assert names[0] == "index.py" and len(names) == 9
    assert report.chapters(src, compare=True) == names + [report.COMPARE_CHAPTER]
    for name in names + [report.COMPARE_CHAPTER]:
        text = (src / name).read_text()
        # Quarto renders a script only if it opens with a markdown cell holding a YAML header
        assert text.startswith("# %% [markdown]\n# ---\n"), name
        nb = jupytext.reads(text, fmt="py:percent")
        assert nb.cells[0].cell_type == "markdown" and any(c.cell_type == "code" for c in nb.cells)


def test_prepare_drops_the_yaml_header_and_numbers_the_title():
    nb = jupytext.reads("# %% [markdown]\n# ---\n# jupyter: python3\n# ---\n#\n# # Cooling {#sec-c}\n#\n# text\n\n"
                        "# %% [markdown]\n# ## Curves\n\n# %%\nx = 1\n", fmt="py:percent")
    title, sections = report._prepare(nb, 4)
    assert (title, sections) == ("Cooling", ["Curves"])
    assert "---" not in nb.cells[0].source and nb.cells[0].source.lstrip().startswith("# 4&nbsp;&nbsp;Cooling\n")


def test_last_line_prefers_the_exception():
    text = "Traceback\n  File x\n\x1b[31mValueError\x1b[0m: boom\n\nsome trailer\n"
    assert report._last_line(text) == "ValueError: boom"


# ---- figures ---------------------------------------------------------------------------------
def synthetic(T=9, dead=True):
    """A Record-shaped series and summary (keys as duckling.record writes them)."""
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
            plots.radius(s), plots.shape(s, summ), plots.cooling(s, summ), plots.cumulative(s),
            plots.regimes(s, summ), plots.lattice_views(s, summ, "phantom"),
            plots.lattice_views(s, summ, "natural_dead"), plots.coherence(s, summ), plots.pair_metrics(s, summ),
            plots.regimes(s, summ, sets=plots.PAIR), plots.speed_distributions(s, summ),
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
        report.render(cfg, engine="fallback")


def test_missing_metrics_names_the_train_task(root):
    cfg = config.build("smoke", run="r")
    cfg.save()
    cfg.record_dir.mkdir(parents=True)
    for name in ("record.json", "series.npz"):
        (cfg.record_dir / name).write_text("{}")
    with pytest.raises(DucklingError, match=r"invoke train --run r"):
        report.render(cfg, engine="fallback")


def test_engine_is_checked(root, monkeypatch):
    cfg = config.build("smoke", run="r")
    with pytest.raises(DucklingError, match="report engine 'pdf'"):
        report.render(cfg, engine="pdf")
    monkeypatch.setattr(report, "_quarto", lambda: None)
    with pytest.raises(DucklingError, match="Quarto is not installed"):
        report.render(cfg, engine="quarto")


FAKE_QUARTO = """#!{python}
# stands in for `quarto render SRC --output-dir OUT`: reports progress, then writes what it was given
import json, os, sys
from pathlib import Path
if sys.argv[1:] == ["--version"]:
    sys.exit(print("1.10.19"))
src, out = Path(sys.argv[2]), Path(sys.argv[sys.argv.index("--output-dir") + 1])
assert sys.argv[1] == "render" and src.is_dir()
for i, name in enumerate(("index.py", "01-run-card.py")):
    print(f"[{{i + 1}}/2] {{name}}", flush=True)
if os.environ.get("FAKE_QUARTO_FAIL"):
    print("An error occurred while executing the following cell:")
    print("\x1b[0;31mValueError\x1b[0m: boom")
    print("ERROR: execution failed")
    sys.exit(1)
out.mkdir(parents=True)
kernels = Path(os.environ["JUPYTER_PATH"].split(os.pathsep)[0]) / "kernels" / "python3" / "kernel.json"
seen = {{k: os.environ.get(k) for k in ("DUCKLING_RUN", "DUCKLING_RUNS", "DUCKLING_ROOT", "DUCKLING_RENDERER",
                                       "QUARTO_PYTHON")}}
seen["kernel"] = json.loads(kernels.read_text())
seen["book"] = (src / "_quarto.yml").read_text()
(out / "index.html").write_text(json.dumps(seen))
(out / "The-Duckling-Record.pdf").write_bytes(b"%PDF-1.7")
"""


def _inputs_only(run):
    """A run whose report inputs exist (enough for render's checks, not for executing chapters)."""
    cfg = config.build("smoke", run=run)
    cfg.save()
    cfg.record_dir.mkdir(parents=True)
    for p in (cfg.record_dir / "record.json", cfg.record_dir / "series.npz", cfg.run_dir / "metrics.csv",
              cfg.run_dir / "evals.csv"):
        p.write_text("{}")
    return cfg


def test_quarto_gets_the_run_this_interpreter_and_the_comparison_chapter(root, monkeypatch, capsys):
    import sys

    fake = root / "quarto"
    fake.write_text(FAKE_QUARTO.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setattr(report, "_quarto", lambda: str(fake))
    cfg, _ = _inputs_only("a"), _inputs_only("b")
    index = report.render(cfg, compare=["b"], progress=False)
    seen = json.loads(index.read_text())
    assert seen["DUCKLING_RUN"] == "a" and seen["DUCKLING_RUNS"] == "a,b"
    assert seen["DUCKLING_ROOT"] == str(root.resolve()) and seen["QUARTO_PYTHON"] == sys.executable
    assert seen["DUCKLING_RENDERER"] == "quarto 1.10.19"
    assert seen["kernel"]["argv"][0] == sys.executable and seen["kernel"]["env"]["DUCKLING_RUN"] == "a"
    assert report.COMPARE_CHAPTER in seen["book"]
    assert (cfg.report_dir / "The-Duckling-Record.pdf").exists()
    assert "Quarto HTML + PDF The-Duckling-Record.pdf" in capsys.readouterr().out

    monkeypatch.setenv("FAKE_QUARTO_FAIL", "1")
    with pytest.raises(DucklingError, match=r"chapter 01-run-card\.py failed under Quarto: ValueError: boom"):
        report.render(cfg, force=True, progress=False)
    assert json.loads(index.read_text())["DUCKLING_RUN"] == "a", "a failed render must keep the last report"
    assert [p.name for p in cfg.report_dir.parent.iterdir()] == ["a"]
    assert "ValueError: boom" in (cfg.run_dir / "quarto.log").read_text()


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
    source = report.source_dir(cfg)
    env = report._env(cfg, runs, tmp_path, "fallback (test)")
    report._render_fallback(source, names, tmp_path, tmp_path / "out", env, progress=False)
    return tmp_path / "out"


@pytest.mark.slow
def test_smoke_report_executes_every_chapter_with_its_figures(smoke):
    out = smoke.report_dir
    summary = json.loads((smoke.record_dir / "record.json").read_text())
    names = [Path(n).stem for n in report.chapters(report.source_dir(smoke))]
    assert set(names) == set(FIGURES)
    for stem in names:
        nb = nbformat.read(out / "notebooks" / f"{stem}.ipynb", as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(c.execution_count for c in code), stem
        assert not [o for c in code for o in c.outputs if o.output_type == "error"], stem
        assert image_outputs(nb) == FIGURES[stem], stem
        page = out / ("index.html" if stem == "index" else f"{stem}.html")
        assert page.read_text().count("<img") == FIGURES[stem], stem
    index = page_text(out / "index.html")
    for answer in (summary["learning"]["answer"], summary["compare"]["answer"], summary["lifecycle"]["sentence"]):
        assert " ".join(answer.split()) in index
    assert summary["fimbulwinter"]["phantom"]["verdict"] in page_text(out / "05-fimbulwinter.html")
    assert " ".join(summary["learning"]["answer"].split()) in page_text(out / "02-learning.html")
    assert summary["compare"]["answer"] in page_text(out / "07-phantom-vs-dead.html")
    assert summary["provenance"]["movie_sha256"] in page_text(out / "01-run-card.html")
    for href in [f"{n}.html" for n in names if n != "index"]:
        assert f'href="{href}"' in (out / "index.html").read_text()
    assert "report" in json.loads((smoke.run_dir / "timings.json").read_text())
    assert not list(out.parent.glob(f".{smoke.run}*")), "temporary folders left behind"


@pytest.mark.slow
def test_unchanged_inputs_skip_and_a_failing_chapter_is_named(smoke, tmp_path, monkeypatch, capsys):
    index = smoke.report_dir / "index.html"
    before = index.stat().st_mtime_ns
    report.render(smoke, progress=False)
    assert "up to date" in capsys.readouterr().out and index.stat().st_mtime_ns == before

    src = tmp_path / "book"
    src.mkdir()
    (src / "_quarto.yml").write_text("book:\n  chapters:\n    - index.py\n    - bad.py\n")
    shutil.copy(report.source_dir(smoke) / "index.py", src / "index.py")
    (src / "bad.py").write_text("# %% [markdown]\n# ---\n# jupyter: python3\n# ---\n# # Bad\n\n"
                                "# %%\nraise ValueError('boom at the end')\n")
    monkeypatch.setenv("DUCKLING_REPORT_SRC", str(src))
    with pytest.raises(DucklingError, match=r"chapter bad\.py failed: ValueError: boom at the end"):
        report.render(smoke, force=True, progress=False)
    assert index.stat().st_mtime_ns == before, "a failed render must leave the last report in place"
    assert not list(index.parent.parent.glob(f".{smoke.run}*"))


@pytest.mark.slow
def test_comparison_chapter_and_a_corpus_without_natural_dead_tokens(smoke, tmp_path):
    _copy_run(smoke, "smoke-b")
    out = _chapters_only(smoke, [report.COMPARE_CHAPTER], [smoke.run, "smoke-b"], tmp_path / "cmp")
    nb = nbformat.read(out / "notebooks" / f"{Path(report.COMPARE_CHAPTER).stem}.ipynb", as_version=4)
    assert image_outputs(nb) == 3
    assert "smoke-b" in page_text(out / f"{Path(report.COMPARE_CHAPTER).stem}.html")

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
        nb = nbformat.read(out / "notebooks" / f"{Path(name).stem}.ipynb", as_version=4)
        assert image_outputs(nb) == FIGURES[Path(name).stem], name
    assert "no natural dead tokens in this corpus" in page_text(out / "07-phantom-vs-dead.html")
