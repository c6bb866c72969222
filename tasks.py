"""Invoke tasks: each parses options and calls the duckling package; nothing else lives here.

    invoke all --profile demo          # the whole study offline
    invoke train --run demo --force    # one stage again
"""
import functools
import shlex
import subprocess
import sys

from invoke import Exit, task

from duckling import config
from duckling.errors import DucklingError

RUN_HELP = {
    "profile": "smoke, demo (offline), 10pct (default when the hub is reachable), 50pct, 100pct",
    "run": "run name (default: the profile's name, plus -fF with --fraction F); an existing run reuses its saved config",
    "fraction": "Chinchilla fraction of the token budget, on top of the profile",
    "set": "override one config field, NAME=VALUE (repeatable), e.g. --set precision=pure-bf16",
    "force": "redo the stage even if its outputs are up to date",
}


def _clean_errors(fn):
    """Bad input ends as one line on stderr and a non-zero exit, never a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DucklingError as e:
            print(f"error: {e}", file=sys.stderr)
            raise Exit(code=1) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise Exit(code=130) from None
    return wrapper


def _cfg(stage, profile, run, fraction, set_):
    return config.resolve(profile=profile, run=run, fraction=fraction, set_=list(set_ or ()), stage=stage)


def _stage(name, doc):
    def stage_task(c, profile=None, run=None, fraction=None, set_=None, force=False):
        from duckling import pipeline

        pipeline.run_stage(name, _cfg(name, profile, run, fraction, set_), force=force)
    stage_task.__doc__ = doc
    return task(name=name, help=RUN_HELP, iterable=["set_"])(_clean_errors(stage_task))


tokenizer = _stage("tokenizer", "Build the truncated GPT-2 tokenizer (8,000 live ids) and the dead-row mask.")
corpus = _stage("corpus", "Tokenise the run's stories into train and validation token streams.")
train = _stage("train", "Train the model, recording the embedding matrix W after every step (resumes if killed).")
analyze = _stage("analyze", "Compute the Record (every metric of the study) from the run's movie.")


@task(help={**RUN_HELP, "runs": "comma-separated runs to overlay in a comparison chapter"}, iterable=["set_"])
@_clean_errors
def report(c, profile=None, run=None, fraction=None, set_=None, force=False, runs=None):
    """Render The Duckling Record (Quarto when installed, else the Jupyter fallback to HTML)."""
    from duckling import pipeline

    extra = {"compare": [r for r in runs.split(",") if r]} if runs else {}
    pipeline.run_stage("report", _cfg("report", profile, run, fraction, set_), force=force, **extra)


@task(name="all", help=RUN_HELP, iterable=["set_"])
@_clean_errors
def all_(c, profile=None, run=None, fraction=None, set_=None, force=False):
    """Run every stage in order: tokenizer, corpus, train, analyze, report."""
    from duckling import pipeline

    pipeline.run_all(_cfg("all", profile, run, fraction, set_), force=force)


@task(help={"fast": "skip the slow end-to-end tests", "k": "only tests matching this expression"})
def test(c, fast=False, k=None):
    """Run the test suite (pytest)."""
    args = [sys.executable, "-m", "pytest", "-q"] + (["-m", "not slow"] if fast else []) + (["-k", k] if k else [])
    raise Exit(code=subprocess.call(args))


@task(help={"only": "run only benchmarks whose file name contains this"})
def bench(c, only=""):
    """Run the benchmarks in bench/; each writes its JSON result to bench/results/."""
    from duckling.ops.benchmarks import run_all

    raise Exit(code=run_all(only))


@task(help={"max_children": "mutants tested side by side (default 2)"})
def mutants(c, max_children=2):
    """Mutation testing of the answer layer (mutmut; slow): score and survivors to bench/results/mutants.json."""
    from duckling.ops.benchmarks import BENCH

    raise Exit(code=subprocess.call([sys.executable, str(BENCH / "mutants.py"), "--max-children", str(max_children)]))


@task(help={"run": "the run whose outputs to delete (default: every run)", "yes": "do not ask"})
@_clean_errors
def clean(c, run=None, yes=False):
    """Delete generated outputs (data/, movies/, runs/, report/_output/) of one run or all."""
    from duckling.ops.clean import clean as do_clean

    do_clean(run=run, yes=yes)


@task(name="docker-build", help={"tag": "image tag", "pull": "pull a newer base image", "no_cache": "build afresh"})
@_clean_errors
def docker_build(c, tag="duckling", pull=False, no_cache=False):
    """Build the CUDA Docker image (pinned base, hashed lock, Quarto)."""
    from duckling.ops import container

    container.build_image(tag, pull=pull, no_cache=no_cache)


@task(name="docker-run", help={"tag": "image tag", "gpus": "pass --gpus all (default on)"})
@_clean_errors
def docker_run(c, tag="duckling", gpus=True):
    """Run a command in the image, outputs mounted: invoke docker-run -- invoke all --profile smoke"""
    from duckling.ops import container

    args = getattr(c, "remainder", "")
    raise Exit(code=container.run_image(shlex.split(args) or ["invoke", "all"], tag, gpus=gpus))


@task(help={"upgrade": "re-resolve every pin to the newest allowed version"})
@_clean_errors
def lock(c, upgrade=False):
    """Regenerate requirements/lock.txt (hashed pins for the image) from pyproject.toml."""
    from duckling.ops import container

    container.lock(upgrade=upgrade)
