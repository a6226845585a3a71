# authserver: production image. Build with `docker build -t authserver .`
#
# The image never migrates on start (several replicas would race). Apply the
# migrations as an explicit step before starting or upgrading the server:
#
#   docker run --rm --env-file authserver.env authserver authserver db upgrade
#   docker run -d -p 8000:8000 --env-file authserver.env authserver
#
# authserver.env needs at least AUTHSERVER_ISSUER (https), AUTHSERVER_SECRET_KEY
# (32+ characters) and AUTHSERVER_DATABASE_URL (postgresql://...).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
# Dependencies first, so code changes do not reinstall them.
COPY pyproject.toml README.md ./
COPY authserver ./authserver
# Editable install: the app finds migrations/, templates/ and static/ next to the
# package, so the code stays at /app in the final image too.
RUN pip install --upgrade pip && pip install -e .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    AUTHSERVER_ENV=production \
    AUTHSERVER_INSTANCE_PATH=/var/lib/authserver
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin authserver \
    && mkdir -p /var/lib/authserver \
    && chown authserver:authserver /var/lib/authserver
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
COPY wsgi.py ./
USER authserver
EXPOSE 8000
# /healthz answers 200 while the database answers, 503 otherwise (Redis never fails it).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
# granian, the fastest server measured (bench/RESULTS.md): one process per core, each serving
# one request at a time. GRANIAN_WORKERS (and any other GRANIAN_* variable) overrides.
ENV GRANIAN_WORKERS=2
# argon2id's 19 MiB per sign-in in transparent huge pages, not 4,900 page faults (README).
ENV GLIBC_TUNABLES=glibc.malloc.hugetlb=1
CMD ["granian", "--interface", "wsgi", "--host", "0.0.0.0", "--port", "8000", \
     "--blocking-threads", "1", "--no-ws", "--access-log", "--log-level", "warning", "wsgi:app"]
