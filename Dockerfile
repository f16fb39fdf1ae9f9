# syntax=docker/dockerfile:1
# JustStorage: build the wheels in one stage (the server and juststorage-client, the SDK its
# object commands use), install them into a slim runtime image.
#   docker build -t juststorage:latest .
#   docker run -p 8080:8080 -e JWT_SECRET=... -v js-hot:/data/hot -v js-cold:/data/cold \
#     -v js-meta:/data/meta juststorage:latest
# /metrics (operator data: dedup hits, per-tenant counts) is served on port 9091 only,
# the public port answers 404 for it: publish 9091 to the monitoring network alone.
# The container starts as root only for its entry point (juststorage-entrypoint, in the
# package): it hands the storage directories to uid 10001, which PaaS volumes mounted
# root-owned need, drops root for good and runs `juststorage`. Started as 10001
# (`--user`, Kubernetes' runAsUser) it only checks that the directories are writable.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
RUN python -m venv /opt/juststorage
COPY pyproject.toml README.md ./
COPY src ./src
COPY sdks/python ./sdks/python
# The server's wheel names juststorage-client as a dependency; pip takes it from /wheels.
RUN /opt/juststorage/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/juststorage/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /wheels ./sdks/python . \
    && /opt/juststorage/bin/pip install --no-cache-dir --find-links /wheels /wheels/juststorage-[0-9]*.whl

FROM python:${PYTHON_VERSION}-slim AS runtime
LABEL org.opencontainers.image.title="JustStorage" \
      org.opencontainers.image.description="Content-addressed internal object storage"
RUN groupadd --system --gid 10001 juststorage \
    && useradd --system --uid 10001 --gid juststorage --home-dir /data --no-create-home juststorage \
    && mkdir -p /data/hot /data/cold /data/meta \
    && chown -R juststorage:juststorage /data
COPY --from=build /opt/juststorage /opt/juststorage
ENV PATH=/opt/juststorage/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    JUSTSTORAGE_HOST=0.0.0.0 \
    JUSTSTORAGE_PORT=8080 \
    JUSTSTORAGE_METRICS_ADDR=0.0.0.0:9091 \
    JUSTSTORAGE_DATA_DIR=/data/meta \
    JUSTSTORAGE_HOT_ROOT=/data/hot \
    JUSTSTORAGE_COLD_ROOT=/data/cold
WORKDIR /data
VOLUME ["/data/hot", "/data/cold", "/data/meta"]
EXPOSE 8080 9091
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('JUSTSTORAGE_PORT', '8080'), timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["juststorage-entrypoint"]
CMD ["serve"]
