# callbridge: the webhook and media-stream server. See docs/deploy.md.
#   docker build -t callbridge .
#   docker run --env-file deploy/.env -p 8080:8080 callbridge

# Build stage: install the package and its dependencies (all binary wheels) into a virtualenv.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install .

# Runtime stage: the virtualenv only; no compiler, no Debian packages beyond the base image.
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# A fixed, numeric, non-root UID so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 callbridge \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /var/lib/callbridge --shell /usr/sbin/nologin callbridge \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/callbridge
COPY --from=build /opt/venv /opt/venv
# The default SQLite file (callbridge.db) and the journal (callbridge-journal.jsonl) are relative
# to this directory: mount a volume here to keep them.
WORKDIR /var/lib/callbridge
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4); sys.exit(r.status != 200)"]
# On SIGTERM callbridge stops admitting calls and drains live ones for CALLBRIDGE_DRAIN_SECONDS.
STOPSIGNAL SIGTERM
ENTRYPOINT ["callbridge"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
