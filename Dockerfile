# optivgi-csms: OCPP on port 9000, the operator API and dashboard on 8080, data in the /data volume.
# Build from the repository root: `docker build -t optivgi-csms .`; run with docker-compose.yml (PostgreSQL)
# or alone (SQLite in /data): `docker run -p 9000:9000 -p 8080:8080 -v csms-data:/data optivgi-csms`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The package is built from the repository's own files (the wheel carries the migrations), then the
# sources are dropped: the image runs the installed package, as `pip install .` would anywhere else.
WORKDIR /build
COPY pyproject.toml README.md ./
COPY optivgi_csms ./optivgi_csms
COPY migrations ./migrations
COPY simulators ./simulators
RUN pip install . && rm -rf /build

# A system user owns /data and nothing else; the CSMS never runs as root.
RUN useradd --system --user-group --uid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin csms \
    && mkdir -p /data \
    && chown csms:csms /data
COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/optivgi-csms-entrypoint

# The SQLite file (when DATABASE_URL is not set) lives in the volume; logs are JSON lines on stdout.
ENV OPTIVGI_DATA_DIR=/data \
    OPTIVGI_LOG_FORMAT=json

WORKDIR /data
VOLUME ["/data"]
USER csms
EXPOSE 9000 8080

# Healthy when the API answers and reaches the database (503 or no answer: unhealthy).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('OPTIVGI_API_PORT', '8080') + '/api/v1/health', timeout=4)"]

# SIGTERM (docker stop) reaches the CSMS itself, which answers what stations sent, closes them with 1001
# and exits within shutdown_grace (10 s): give `docker stop` a longer timeout than that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["optivgi-csms-entrypoint"]
CMD []
