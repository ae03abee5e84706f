# syntax=docker/dockerfile:1
# One image for every Switchboard component; the Helm chart sets each container's command
# (python -m services.<name>, python -m gateway, python -m services.bootstrap).

ARG PYTHON_IMAGE=python:3.11-slim
ARG NODE_IMAGE=node:24-slim

# --- ui: the operator web UI (gateway/ui) built by Vite from its package-lock.json
FROM ${NODE_IMAGE} AS ui
WORKDIR /ui
COPY gateway/ui/package.json gateway/ui/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY gateway/ui/index.html gateway/ui/vite.config.ts gateway/ui/tsconfig.json ./
COPY gateway/ui/src/ src/
RUN npm run build

# --- builder: the locked runtime dependencies in /app/.venv, the protobuf code in /app/gen
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

RUN pip install uv==0.13.9

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lock changes. No dev group, no
# extras (the embedded servers of `make run` stay out), not the project itself.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

# grpcio-tools is a dev dependency: install it (with the locked versions of what it needs)
# into a separate directory used only here, so the final image, which copies /app/.venv,
# never contains it.
RUN uv export --frozen --all-groups --no-hashes --no-emit-project -o /tmp/constraints.txt \
 && uv pip install --python /app/.venv/bin/python --target /opt/protogen \
      --constraint /tmp/constraints.txt grpcio-tools==1.85.1

COPY protos/ protos/
COPY services/__init__.py services/__init__.py
COPY services/runtime/__init__.py services/runtime/protogen.py services/runtime/
RUN PYTHONPATH=/opt/protogen /app/.venv/bin/python -m services.runtime.protogen \
 && /app/.venv/bin/python -m compileall -q /app/gen

# --- runtime
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="switchboard" \
      org.opencontainers.image.description="Switchboard services, gateway and bootstrap" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 switchboard \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin switchboard

WORKDIR /app
COPY --from=builder /app/.venv /app/.venv
COPY --from=builder /app/gen /app/gen
COPY services/ services/
COPY gateway/ gateway/
COPY --from=ui /ui/dist gateway/ui/dist
RUN /app/.venv/bin/python -m compileall -q /app/services /app/gateway

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONPATH=/app:/app/gen \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

USER 10001:10001

# gRPC (every service), HTTP (gateway), SMTP (ingestion).
EXPOSE 50051 8080 2525

# The chart always sets the command; this default only shows the interpreter works.
CMD ["python", "-c", "import sys; print('switchboard image, python', sys.version.split()[0], '- set the command, e.g. python -m services.tickets')"]
