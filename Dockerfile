# syntax=docker/dockerfile:1
#
# calsync container image.
#
#   docker build -t calsync .
#   docker run -d --name calsync \
#     -v /srv/calsync/calsync.toml:/etc/calsync/calsync.toml:ro \
#     -v calsync-state:/var/lib/calsync \
#     calsync                      # secrets: see deploy/docker-compose.yml (/run/secrets/…)
#   docker stop -t 30 calsync      # 30 s > [daemon] shutdown_grace (20 s by default)
#
# The final image is debian:bookworm-slim with Debian's own python3 (3.11), so it builds with
# Debian's buildah/podman and a locally debootstrapped base (deploy/container-test.sh does this).
# No heredocs (RUN <<EOF): bookworm's buildah 1.28 does not know them.

# --- build stage: a virtual environment from the runtime lock file -------------------------------
FROM debian:bookworm-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# DL3008 (pin apt package versions) is ignored on purpose: Debian removes the previous version of
# a package from the mirror when a security update lands, so pinned versions break the build
# within weeks. The release (bookworm) is pinned by the base image tag instead.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Dependencies first (their layer is reused while only calsync's code changes), exactly as locked.
COPY requirements.lock ./
RUN python3 -m venv /opt/calsync \
 && /opt/calsync/bin/pip install --no-cache-dir --require-virtualenv -r requirements.lock

COPY pyproject.toml README.md ./
COPY calsync ./calsync
# --no-deps: everything calsync needs came from the lock file above; compile the bytecode now,
# since the image runs read-only and as a user who may not write /opt.
# pip and setuptools are not needed at run time (23 MB): removed from the final venv.
RUN /opt/calsync/bin/pip install --no-cache-dir --require-virtualenv --no-deps . \
 && /opt/calsync/bin/python -m compileall -q /opt/calsync/lib \
 && /opt/calsync/bin/calsync --version \
 && /opt/calsync/bin/python -m pip uninstall -q -y pip setuptools

# --- final stage: python3 + the virtual environment, nothing else --------------------------------
FROM debian:bookworm-slim

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="calsync" \
      org.opencontainers.image.description="Syncs Microsoft Exchange mailbox calendars (EWS, app-only OAuth) with a local SQL store" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/calsync/calsync" \
      org.opencontainers.image.documentation="https://github.com/calsync/calsync#readme" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# DL3008: see the build stage. python3 must be the same Debian python3 the venv was built with.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 calsync \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /var/lib/calsync --shell /usr/sbin/nologin calsync \
 && install -d -m 0750 -o 10001 -g 10001 /var/lib/calsync \
 && install -d -m 0755 /etc/calsync

COPY --from=build /opt/calsync /opt/calsync

# The config file is mounted at /etc/calsync/calsync.toml; secrets are Docker secrets files
# (client_secret_file = "/run/secrets/<name>" in the config); the store and the heartbeat that
# `calsync health` reads live in the volume.
ENV PATH=/opt/calsync/bin:$PATH \
    CALSYNC_CONFIG=/etc/calsync/calsync.toml \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TZ=UTC

VOLUME ["/var/lib/calsync"]
WORKDIR /var/lib/calsync
USER 10001:10001

# calsync handles SIGTERM itself (it is PID 1 here): no new runs, running syncs get
# [daemon] shutdown_grace seconds (default 20), then `daemon_stopped` and exit 0. Give it more
# than that before SIGKILL: `docker stop -t 30`, compose `stop_grace_period: 30s`,
# `podman run --stop-timeout 30`. Docker's default of 10 s would cut running syncs short.
STOPSIGNAL SIGTERM

# Healthy = the daemon's dispatcher wrote its heartbeat (every 15 s) less than 60 s ago. An
# Exchange outage does not make the container unhealthy; failing mailboxes show in the logs.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["calsync", "health"]

ENTRYPOINT ["calsync"]
CMD ["run"]
