# Both images from one build, from the repository root (the project's wheel packages services/,
# operator/socialhub_operator and scripts/devstack, so both images carry the same venv):
#   docker build --target services -t ghcr.io/socialhub/socialhub:0.1.0 .
#   docker build --target operator -t ghcr.io/socialhub/socialhub-operator:0.1.0 .
# services: every SocialHub service, run as `python -m socialhub.<service> serve|migrate` (and
# `python -m socialhub.kit.events.topics`). operator: `socialhub run` (Kopf), one replica
# (manifests/base); it renders the gateway's nginx.conf with socialhub.gateway, the template
# `make up` uses. Base images are pinned by tag; pin them by digest in your registry mirror.
# `make image` builds both without a registry (scripts/devstack/images.py): it passes a Debian
# base made by debootstrap as PYTHON_IMAGE (python3.11 in /usr/bin, not /usr/local/bin) and an
# image holding only /uv as UV_IMAGE, and mounts its uv cache on /root/.cache/uv.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.5.31

FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
# UV_PYTHON by name: both bases have python3.11 on PATH, only the python image has `python`.
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PYTHON=python3.11
WORKDIR /app
# Dependencies first: this layer is reused until pyproject.toml or uv.lock change.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
# The project wheel packages these three trees (pyproject.toml [tool.hatch.build]).
COPY services ./services
COPY operator/socialhub_operator ./operator/socialhub_operator
COPY scripts/devstack ./scripts/devstack
# --reinstall-package: a mounted uv cache would otherwise reuse a wheel of the project built from
# older sources (uv keys a local project's wheel on pyproject.toml, not on its code).
RUN uv sync --frozen --no-dev --no-editable --reinstall-package socialhub

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --gid 10001 socialhub && useradd --uid 10001 --gid 10001 --no-create-home socialhub
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /app

FROM runtime AS operator
EXPOSE 8080
ENTRYPOINT ["socialhub"]
CMD ["run", "--liveness", "http://0.0.0.0:8080/healthz"]

FROM runtime AS services
ENV SERVICE_HOST=0.0.0.0 SOCIALHUB_ENV=production
EXPOSE 5000 5001 5002 5003 5004
CMD ["python", "-m", "socialhub.auth", "serve"]
