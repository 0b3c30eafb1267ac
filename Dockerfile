# One image for every publisher process (web, scheduler, worker, migrate); the command picks the role.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml requirements.lock README.md ./
COPY publisher ./publisher
COPY templates ./templates
# tzdata: the slim image has no system time zone database, and digests run on regional clocks.
RUN pip install -c requirements.lock -e . tzdata \
    && useradd --system --home /app publisher \
    && mkdir -p /app/var /app/feeds \
    && chown -R publisher /app/var /app/feeds

USER publisher
EXPOSE 8000
# publisher handles SIGTERM itself (workers finish in-flight messages, the scheduler lets go of
# its lock), so it runs as PID 1 directly.
STOPSIGNAL SIGTERM
CMD ["publisher", "serve", "--host", "0.0.0.0", "--port", "8000"]
