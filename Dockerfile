# quartproxy: small, non-root image. Untested here (no Docker on the build machine); every
# command in it is the one the tests run outside a container.
#   docker build -t quartproxy .
#   docker run --env-file .env -p 127.0.0.1:8000:8000 quartproxy
# Python 3.11 is the version the test suite runs on (requirements.txt also pins 3.13 sets).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /venv && /venv/bin/pip install -r /tmp/requirements.txt

FROM python:3.11-slim-bookworm
ENV PATH=/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DEPLOYMENT_MODE=production \
    LOG_FORMAT=json
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin quartproxy
COPY --from=build /venv /venv
WORKDIR /app
COPY quartproxy ./quartproxy
COPY static ./static
COPY hypercorn.toml ./hypercorn.toml
USER 10001
EXPOSE 8000
# The process answers /health at all: 200 (ok) or 503 (degraded: n8n or Redis down, or
# draining). Only "not answering" is unhealthy here; load balancers should use the status code
# itself to route traffic away from a degraded or draining instance.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-m", "quartproxy.healthcheck", "http://127.0.0.1:8000/health"]
# SIGTERM (docker stop) starts the drain; python -m quartproxy is PID 1's only child when run
# with `--init` (compose: init: true), or PID 1 itself, which handles SIGTERM either way.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "quartproxy", "--bind", "0.0.0.0:8000", "--workers", "2"]
