# Bananacord: slim Python, a non-root user, the SQLite file on a volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    BANANACORD_DATABASE__PATH=/data/bananacord.sqlite3

RUN useradd --create-home --uid 10001 bananacord \
    && mkdir -p /data /app \
    && chown bananacord:bananacord /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip install .

USER bananacord
VOLUME ["/data"]

# The job loop touches a heartbeat file next to the database at least every 30 s.
HEALTHCHECK --interval=60s --timeout=10s --start-period=30s --retries=3 \
    CMD ["bananacord", "health"]

# `docker stop` sends SIGTERM: the bot starts no new job step, gives the steps in flight
# [jobs] shutdown_grace_seconds (default 20) to finish, then up to 5 s for answers to members in flight and
# [database] busy_timeout_seconds (default 5) for a write in flight, closes the gateway and exits 0: about
# 30 s with the defaults. Docker kills it after its own timeout (10 s unless told otherwise), so stop with
# `docker stop -t 35` or set compose's `stop_grace_period: 35s`: the grace period plus 10 s, and a margin.
STOPSIGNAL SIGTERM

# BANANACORD_DATABASE__PATH above wins over [database] path in a mounted config.toml (check and the bot's
# start-up warn when both are set); change the database's path with -e BANANACORD_DATABASE__PATH=...
# Mount config.toml at /app/config.toml (or set BANANACORD_* variables); pass DISCORD_TOKEN and the
# provider keys as environment variables, never in the image. Exec form, so the bot is PID 1 and gets
# the signal itself. One container per database: a second one on the same volume exits at once.
ENTRYPOINT ["bananacord", "run"]
