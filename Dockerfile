# Studio's production image: one image for web, worker, worker-gpu and beat (see docker-compose.yml).
#
#   docker build -t studio .
#   docker build -t studio:gpu --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/<cuda tag> .
#
# Three stages: front-end assets (node only here), Python dependencies (a venv), and the runtime.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- 1. Front-end assets: npm packages copied into frontend/static/vendor by scripts/assets.sh -------
FROM ${PYTHON_IMAGE} AS assets
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY scripts/assets.sh scripts/assets.sh
COPY frontend/package.json frontend/package-lock.json frontend/
COPY frontend/scripts frontend/scripts
RUN bash scripts/assets.sh

# --- 2. Python dependencies, installed the way scripts/install.sh does: torch first, then the rest ---
FROM ${PYTHON_IMAGE} AS python-deps
# The CPU wheel by default: PyPI's torch for Linux is a multi-GB CUDA build. GPU hosts build with a
# CUDA index instead (see docs/operations.md).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml ./
# The torch pin lives in pyproject.toml only; read it from there as scripts/install.sh does.
RUN torch_spec=$(grep -oE '"torch==[^"]+"' pyproject.toml | tr -d '"') \
    && pip install "$torch_spec" --index-url "$TORCH_INDEX_URL"
# Dependencies before the source, so that a code change does not reinstall them.
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
COPY . .
RUN pip install --no-deps .

# --- 3. Runtime ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# PYTHONPATH: the source tree in /app (templates, static, Procfile beside the code) wins over the copy
# of the package that `pip install .` put in site-packages.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STUDIO_DATA_DIR=/data
RUN groupadd --gid 1000 studio \
    && useradd --uid 1000 --gid studio --create-home --shell /usr/sbin/nologin studio \
    && mkdir -p /data \
    && chown studio:studio /data
COPY --from=python-deps /opt/venv /opt/venv
WORKDIR /app
COPY . .
COPY --from=assets /src/frontend/static/vendor frontend/static/vendor
# Static files are baked into the image (served by WhiteNoise). The key below exists only for this
# command: settings refuse to load without one, and the real key comes from the environment at run time.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput

USER studio
# Artifacts, notebooks and the rest of Studio's files; share it between web and the workers.
VOLUME ["/data"]
EXPOSE 8000
# 0.0.0.0 inside the container; docker-compose.yml publishes the port on 127.0.0.1 of the host only.
CMD ["uvicorn", "studio.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--no-server-header"]
