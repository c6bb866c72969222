"""The container: lock files, `docker build` and `docker run` with the project's folders mounted.

The image installs every Python package from `requirements/lock.txt` (hash-pinned, generated from
pyproject.toml by `uv pip compile`), then this project with --no-deps. `requirements/build.txt`
pins setuptools, which builds the two sdists (quarto-cli and duckling) without build isolation,
so no unpinned build tool is fetched.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from duckling.errors import DucklingError

ROOT = Path(__file__).resolve().parents[2]
LOCK = Path("requirements/lock.txt")
BUILD_IN = Path("requirements/build.in")
BUILD_LOCK = Path("requirements/build.txt")
LOCK_EXTRAS = ("image",)  # optional-dependency groups the image installs besides the runtime ones
INDEX = "https://pypi.org/simple"

WORKDIR = "/duckling"
# project folders that hold outputs, mounted from the current directory at the same place under WORKDIR
SHM_SIZE = "1g"  # room for the frame ring of MAX_WORKERS analyze workers, with plenty to spare
MOUNTS = ("data", "movies", "runs", "report/_output", ".cache")  # .cache holds HF_HOME and the tokenizer cache

# the image's marker environment: CPython 3.12 on linux x86_64 (for reading the universal lock)
IMAGE_ENV = {"implementation_name": "cpython", "implementation_version": "3.12.14", "os_name": "posix",
             "platform_machine": "x86_64", "platform_python_implementation": "CPython",
             "platform_release": "", "platform_system": "Linux", "platform_version": "",
             "python_full_version": "3.12.14", "python_version": "3.12", "sys_platform": "linux"}


# ---- lock files ----------------------------------------------------------------------------------
def _uv() -> str:
    found = shutil.which("uv")
    if found:
        return found
    try:  # the `uv` package from PyPI installed in this interpreter, venv not activated
        from uv import find_uv_bin

        return find_uv_bin()
    except Exception:  # noqa: BLE001 (not installed, or installed without its binary)
        raise DucklingError("uv not found: install it (`pip install uv`) to regenerate the lock files") from None


def _python_floor(root: Path) -> str:
    """'3.11' from requires-python '>=3.11': the universal lock must hold for the lowest Python too."""
    import tomllib

    spec = tomllib.loads((root / "pyproject.toml").read_text())["project"].get("requires-python", "")
    m = re.search(r">=\s*(\d+\.\d+)", spec)
    if not m:
        raise DucklingError(f"pyproject.toml: requires-python {spec!r} has no '>=X.Y' lower bound")
    return m.group(1)


def lock_commands(root: str | os.PathLike = ROOT, uv: str = "uv") -> list[list[str]]:
    """The two `uv pip compile` calls, run from `root`.

    --universal with the lowest supported Python keeps one file valid for the image (3.12, Linux)
    and for a 3.11 checkout that replays it; markers pick each interpreter's lines.
    """
    py = _python_floor(Path(root))
    common = ["--universal", "--python-version", py, "--generate-hashes", "--default-index", INDEX]
    extras = [a for e in LOCK_EXTRAS for a in ("--extra", e)]
    return [
        [uv, "pip", "compile", "pyproject.toml", *extras, *common, "-o", str(LOCK)],
        [uv, "pip", "compile", str(BUILD_IN), "-c", str(LOCK), *common, "-o", str(BUILD_LOCK)],
    ]


def lock(root: str | os.PathLike = ROOT, upgrade: bool = False, run=subprocess.run) -> list[Path]:
    """Regenerate requirements/lock.txt and requirements/build.txt from pyproject.toml.

    Existing pins are kept where they still satisfy pyproject.toml (uv's default); `upgrade`
    re-resolves everything to the newest allowed versions.
    """
    root = Path(root)
    uv = _uv()
    for cmd in lock_commands(root, uv):
        if upgrade:
            cmd.append("--upgrade")
        shown = " ".join(["uv", *cmd[1:]])
        print(f"lock: {shown}")
        res = run(cmd, cwd=root, stdout=subprocess.DEVNULL)  # uv echoes the whole file on stdout too
        if res.returncode != 0:
            raise DucklingError(f"`{shown}` failed with exit status {res.returncode} (its output is above)")
    pins = lock_requirements(root / LOCK, environment=IMAGE_ENV)
    print(f"lock: {LOCK} pins {len(pins)} packages for the image (CPython 3.12, linux x86_64), "
          f"torch {pins.get('torch', ('?',))[0]}; {BUILD_LOCK} pins the build backend")
    return [root / LOCK, root / BUILD_LOCK]


def normalize(name: str) -> str:
    """PEP 503 name: 'Jinja2' and 'jinja2', 'ruamel.yaml' and 'ruamel-yaml' are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;]+)\s*(?:;\s*(.*))?$")


def lock_entries(path: str | os.PathLike) -> list[dict]:
    """Every requirement of a `--generate-hashes` lock file, in order:
    {name, version, marker, hashes, via}; `via` lists uv's annotations ('duckling (pyproject.toml)', ...)."""
    entries: list[dict] = []
    logical = ""
    for raw in Path(path).read_text().splitlines() + [""]:
        line = raw.strip()
        if line.startswith("#"):
            if entries and logical == "":
                note = line.lstrip("#").strip()
                if note.startswith("via"):
                    note = note[3:].strip()
                if note:
                    entries[-1]["via"].append(note)
            continue
        logical += " " + line.rstrip("\\").strip()
        if line.endswith("\\"):
            continue
        text, logical = logical.strip(), ""
        if not text or text.startswith("-"):  # options such as --index-url
            continue
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", text)
        spec = re.sub(r"\s--hash=\S+", "", " " + text).strip()
        m = _ENTRY.match(spec)
        if not m:
            raise DucklingError(f"{path}: {spec[:80]!r} is not a NAME==VERSION pin")
        entries.append({"name": normalize(m.group(1)), "version": m.group(3),
                        "marker": (m.group(4) or "").strip(), "hashes": hashes, "via": []})
    return entries


def lock_requirements(path: str | os.PathLike, environment: dict | None = None) -> dict[str, tuple[str, tuple[str, ...]]]:
    """{normalised name: (version, sha256 hashes)} for the lines whose markers hold in `environment`
    (marker variables; None: this interpreter). A universal lock may pin one name twice under
    disjoint markers; the environment picks one."""
    from packaging.markers import Marker, default_environment

    env = {**default_environment(), **(environment or {})}
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for e in lock_entries(path):
        if e["marker"] and not Marker(e["marker"]).evaluate(env):
            continue
        if e["name"] in out and out[e["name"]][0] != e["version"]:
            raise DucklingError(f"{path}: {e['name']} pinned to both {out[e['name']][0]} and {e['version']}")
        out[e["name"]] = (e["version"], tuple(e["hashes"]))
    return out


# ---- docker ----------------------------------------------------------------------------------------
def _docker() -> str:
    found = shutil.which("docker")
    if not found:
        raise DucklingError("docker not found: install Docker (https://docs.docker.com/engine/install/) "
                            "and, for --gpus, the NVIDIA Container Toolkit")
    return found


def image_version(root: str | os.PathLike = ROOT) -> str:
    """pyproject's version, plus the commit ('0.1.0+g48255c2', '.dirty' with local changes) when in git."""
    import tomllib

    root = Path(root)
    version = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    git = shutil.which("git")
    if not git:
        return version
    sha = subprocess.run([git, "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                         check=False)
    if sha.returncode != 0:
        return version
    dirty = subprocess.run([git, "status", "--porcelain", "--untracked-files=no"], cwd=root,
                           capture_output=True, text=True, check=False).stdout.strip()
    return f"{version}+g{sha.stdout.strip()}{'.dirty' if dirty else ''}"


def build_command(tag: str = "duckling", root: str | os.PathLike = ROOT, version: str | None = None,
                  pull: bool = False, no_cache: bool = False, docker: str = "docker") -> list[str]:
    cmd = [docker, "build", "--tag", tag,
           "--build-arg", f"DUCKLING_IMAGE_VERSION={version or image_version(root)}"]
    if pull:
        cmd.append("--pull")
    if no_cache:
        cmd.append("--no-cache")
    return [*cmd, "--file", str(Path(root) / "Dockerfile"), str(root)]


def build_image(tag: str = "duckling", root: str | os.PathLike = ROOT, version: str | None = None,
                pull: bool = False, no_cache: bool = False, run=subprocess.run) -> str:
    """`docker build` the image from the project folder; returns the tag."""
    cmd = build_command(tag, root, version, pull, no_cache, docker=_docker())
    print("image: " + " ".join(["docker", *cmd[1:]]))
    res = run(cmd)
    if res.returncode != 0:
        raise DucklingError(f"docker build failed with exit status {res.returncode} (its output is above)")
    return tag


def run_command(args: list[str], tag: str = "duckling", gpus: bool = True, cwd: str | os.PathLike | None = None,
                tty: bool | None = None, docker: str = "docker") -> list[str]:
    here = Path(cwd or os.getcwd()).resolve()
    cmd = [docker, "run", "--rm", "--init"]  # --init: a real PID 1 that reaps the report's subprocesses
    cmd += ["--shm-size", SHM_SIZE]  # the analyze workers share their frames in /dev/shm (64 MB by default)
    if tty if tty is not None else sys.stdin.isatty() and sys.stdout.isatty():
        cmd.append("-it")  # Ctrl-C reaches the run; progress bars draw
    if gpus:
        cmd += ["--gpus", "all"]
    if hasattr(os, "getuid"):  # outputs on the host belong to the caller, not to uid 1000
        cmd += ["--user", f"{os.getuid()}:{os.getgid()}"]
    for sub in MOUNTS:
        cmd += ["--volume", f"{here / sub}:{WORKDIR}/{sub}"]
    for name in ("HF_TOKEN", "HF_HUB_OFFLINE"):
        if os.environ.get(name):
            cmd += ["--env", name]  # by name only: the value stays off the command line
    return [*cmd, tag, *args]


def run_image(args: list[str], tag: str = "duckling", gpus: bool = True, cwd: str | os.PathLike | None = None,
              tty: bool | None = None, run=subprocess.run) -> int:
    """`docker run` the image with data/, movies/, runs/, report/_output/ and .cache/ of `cwd` mounted;
    e.g. run_image(["invoke", "all", "--profile", "smoke"], gpus=False). Returns the exit status."""
    cmd = run_command(args, tag, gpus, cwd, tty, docker=_docker())
    here = Path(cwd or os.getcwd()).resolve()
    for sub in MOUNTS:  # the daemon would create missing ones owned by root, unwritable for --user
        (here / sub).mkdir(parents=True, exist_ok=True)
    print("image: " + " ".join(["docker", *cmd[1:]]))
    return run(cmd).returncode
