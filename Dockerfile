# Duckling: tokenizer, corpus, training (CUDA), analysis and the Quarto report in one image.
# The host needs an NVIDIA driver new enough for the CUDA 13 wheels torch 2.13.0 pulls (R580 or
# later) and the NVIDIA Container Toolkit for `--gpus all`.
#   docker build -t duckling .
#   docker run --rm --gpus all -v "$PWD/runs:/duckling/runs" ... duckling invoke all

# python:3.12.14-slim-bookworm, pinned to the multi-platform index digest recorded in
# docker-library/repo-info (repos/python/remote/3.12.14-slim-bookworm.md, build of 2026-08-25).
# With a digest present Docker ignores the tag; the tag only says what the digest is.
ARG BASE_IMAGE=python:3.12.14-slim-bookworm@sha256:0f5b26b9518d002b6173fd61daad821fa340635ebfec5bba471013f9ca114579

# ---- deps: /opt/venv from the hash-pinned lock; only the venv leaves this stage -----------------------
FROM ${BASE_IMAGE} AS deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1
COPY requirements/build.txt requirements/lock.txt /tmp/requirements/
# setuptools first, hash-checked: quarto-cli is an sdist, and build isolation would fetch an unpinned
# setuptools to build it. Building it downloads the Quarto release of exactly that version (Pandoc,
# Typst, Deno). The pip cache mount keeps the CUDA wheels across rebuilds after a lock change.
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m venv /opt/venv \
    && /opt/venv/bin/pip install --require-hashes --no-deps -r /tmp/requirements/build.txt \
    && /opt/venv/bin/pip install --require-hashes --no-deps --no-build-isolation -r /tmp/requirements/lock.txt \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/quarto --version
# the project last, with --no-deps: everything it needs is already in the lock. The import runs
# from /, so it checks the installed package, and that torch loads without a GPU.
COPY . /src
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps --no-build-isolation /src \
    && /opt/venv/bin/python -c "import duckling, torch; print('duckling', duckling.__version__, 'torch', torch.__version__)"

# ---- the image --------------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
ARG BASE_IMAGE
# duckling.ops.container.build_image passes pyproject's version plus the commit; the run card reads it
# from the environment
ARG DUCKLING_IMAGE_VERSION=0.1.0
LABEL org.opencontainers.image.title="duckling" \
      org.opencontainers.image.description="Train a tiny GPT on TinyStories, film its embedding matrix every step, analyse it and render the report." \
      org.opencontainers.image.version="${DUCKLING_IMAGE_VERSION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

ENV DUCKLING_IMAGE_VERSION=${DUCKLING_IMAGE_VERSION} \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH} \
    HOME=/home/duckling \
    USER=duckling \
    DUCKLING_ROOT=/duckling \
    XDG_CACHE_HOME=/duckling/.cache \
    HF_HOME=/duckling/.cache/huggingface \
    NUMBA_CACHE_DIR=/duckling/.cache/numba \
    QUARTO_PYTHON=/opt/venv/bin/python \
    MPLBACKEND=Agg \
    PYTHONUNBUFFERED=1 \
    PYTHONHASHSEED=0 \
    CUBLAS_WORKSPACE_CONFIG=:4096:8
# HOME and USER are set for runs under another uid (docker run --user), which have no passwd entry:
# without them HOME is / and torch's getpass.getuser() fails. Unbuffered: logs reach `docker logs` live.
# PYTHONHASHSEED and CUBLAS_WORKSPACE_CONFIG: the same run gives the same numbers (deterministic cuBLAS).
# NUMBA_CACHE_DIR: the analysis kernels compile once and are reused (site-packages is read-only).

# uid 1000 owns everything, matching the usual first user of a Linux host. The folders are open to
# all and HOME is sticky like /tmp, so `--user "$(id -u):$(id -g)"` works too and the files written
# to bind mounts belong to the caller.
RUN useradd --uid 1000 --user-group --create-home --home-dir /home/duckling duckling \
    && chmod 1777 /home/duckling
COPY --from=deps /opt/venv /opt/venv
WORKDIR /duckling
COPY --chown=duckling:duckling . .
RUN mkdir -p data movies runs report/_output .cache/huggingface \
    && chown duckling:duckling /duckling data movies runs report report/_output .cache .cache/huggingface \
    && chmod -R a+rwX /duckling

# numeric, so runtimes can check it is not root without reading /etc/passwd
USER 1000:1000
# outputs and caches: mount them (README, "Run it in Docker") so they outlive the container
VOLUME ["/duckling/data", "/duckling/movies", "/duckling/runs", "/duckling/report/_output", "/duckling/.cache"]
# docker stop sends SIGINT: Python raises KeyboardInterrupt and the stage stops cleanly
STOPSIGNAL SIGINT
# `docker run IMAGE` runs the whole study at the default profile; `docker run IMAGE invoke train ...` one task
CMD ["invoke", "all"]
