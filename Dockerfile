# syntax=docker/dockerfile:1
# Ratatouille image for docker-compose.yml / docker-compose.minimal.yml: the package installed the
# way `make demo` installs it (a venv + pip install of this checkout), JupyterLab with the
# Ratatouille extension (built here from labextension/ with the committed yarn.lock), jupysql for
# the getting-started notebook, and the `[dagster]` extra. Default command: JupyterLab on :8888.
#
#   docker build -t ratatouille-nb .            (docker compose builds it for you)
#   docker build --build-arg RAT_UID=$(id -u) .  when ./workspaces on the host is not owned by uid 1000

ARG PYTHON_VERSION=3.11
ARG NODE_VERSION=20

FROM node:${NODE_VERSION}-bookworm-slim AS node

# -- build: the venv with everything installed ---------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
COPY --from=node /usr/local/bin/node /usr/local/bin/node
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv && pip install --upgrade pip \
 && pip install "jupyterlab>=4.6,<4.7" "jupysql>=0.10"
WORKDIR /src

# The JupyterLab extension: TypeScript -> ratatouille_nb/labextension (jlpm and jupyter-builder
# come with JupyterLab; node from the stage above).
COPY package.json yarn.lock .yarnrc.yml tsconfig.json ./
COPY labextension/ labextension/
RUN jlpm install --immutable && jlpm build:prod

# The package (.dockerignore keeps a host build of ratatouille_nb/labextension out of the way).
COPY pyproject.toml README.md ./
COPY ratatouille/ ratatouille/
COPY ratatouille_nb/ ratatouille_nb/
COPY jupyter-config/ jupyter-config/
RUN pip install ".[dagster]"

# The extension and the Jupyter config (server extension on, jupysql-plugin's labextension off)
# where JupyterLab finds them, whether or not the wheel already put them there; then check.
RUN set -eux; \
    ext=/opt/venv/share/jupyter/labextensions/ratatouille-nb; \
    if [ ! -f "$ext/package.json" ]; then mkdir -p "$(dirname "$ext")"; cp -r ratatouille_nb/labextension "$ext"; fi; \
    mkdir -p /opt/venv/etc/jupyter/jupyter_server_config.d /opt/venv/etc/jupyter/labconfig/page_config.d; \
    cp jupyter-config/server-config/*.json /opt/venv/etc/jupyter/jupyter_server_config.d/; \
    cp jupyter-config/labconfig/page_config.d/*.json /opt/venv/etc/jupyter/labconfig/page_config.d/; \
    jupyter labextension list 2>&1 | grep -q "ratatouille-nb"; \
    jupyter server extension list 2>&1 | grep -q "ratatouille_nb.server"; \
    python -c "import ratatouille_nb.server, ratatouille_nb.orchestration.dagster_defs"; \
    rat --help > /dev/null

# -- runtime: the venv, the notebooks, a non-root user -------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm
ARG RAT_UID=1000
ARG RAT_GID=1000
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    RAT_HOME=/data/rat \
    RAT_WORKSPACE=/app/workspaces/demo
COPY --from=build /opt/venv /opt/venv
RUN groupadd --gid "$RAT_GID" rat \
 && useradd --uid "$RAT_UID" --gid "$RAT_GID" --create-home --shell /bin/bash rat \
 && mkdir -p /app/workspaces /app/config/profiles /app/notebooks /data/rat /data/dagster \
 && chown -R rat:rat /app /data
COPY --chown=rat:rat notebooks/ /app/notebooks/
COPY --chown=rat:rat config/profiles/ /app/config/profiles/

# Container start: RAT_HOME and DAGSTER_HOME ready; on the first start (per RAT_HOME) build the demo
# workspace with RAT_DEMO_ROWS rows (0 or unset: skip); then run the command.
COPY --chmod=0755 <<'EOF' /usr/local/bin/rat-entrypoint
#!/bin/sh
set -e
home="${RAT_HOME:-/data/rat}"
mkdir -p "$home"
if [ -n "${DAGSTER_HOME:-}" ]; then
  mkdir -p "$DAGSTER_HOME"
  if [ ! -f "$DAGSTER_HOME/dagster.yaml" ]; then
    # one run at a time: each run gets the whole profile's memory budget
    printf 'concurrency:\n  runs:\n    max_concurrent_runs: 1\ntelemetry:\n  enabled: false\n' > "$DAGSTER_HOME/dagster.yaml"
  fi
fi
rows="${RAT_DEMO_ROWS:-0}"
demo="${RAT_DEMO_PATH:-/app/workspaces/demo}"
if [ "$rows" -gt 0 ] 2>/dev/null && [ ! -f "$home/.demo-built" ]; then
  echo "ratatouille: first start, building the demo workspace in $demo ($rows rows; RAT_DEMO_ROWS=0 skips this)"
  if rat demo --path "$demo" --rows "$rows"; then
    touch "$home/.demo-built"
  else
    echo "ratatouille: WARNING: the demo build failed (see above); starting anyway" >&2
  fi
fi
exec "$@"
EOF

USER rat
WORKDIR /app
EXPOSE 8888 3000
ENTRYPOINT ["/usr/local/bin/rat-entrypoint"]
CMD ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser", "--ServerApp.root_dir=/app"]
