#!/usr/bin/env bash
# Build the Dockerfile and run the image for real, against the calsync simulator on the host.
#
#   bash deploy/container-test.sh
#
# No Docker engine or registry is needed: the script makes the base image
# (debian:bookworm-slim) with debootstrap, builds with Debian's buildah, and runs with podman
# (runtime runc, network host). It needs root and the packages buildah, podman, debootstrap, runc.
# Without them it prints why and exits 0 (a skip), unless CALSYNC_REQUIRE_CONTAINER=1: then it
# installs what is missing with apt-get (root only) and fails when it cannot run.
#
# Steps: base image (the debootstrap tarball is cached in $CALSYNC_CI_CACHE, default
# /var/cache/calsync-ci, refreshed after 30 days) + the host's extra CA certificates (HTTPS from
# some build machines is re-signed by a local CA; they go into the local base image only, never
# into the repository) -> buildah bud -> image checks (user, healthcheck, stop signal, labels) ->
# `calsync sim` on the host -> podman run --read-only with the config mounted at /etc/calsync,
# the secret as a file at /run/secrets/ (as compose mounts it), a named volume at /var/lib/calsync -> `sync_finished` for
# every mailbox in `podman logs` -> `podman healthcheck run` healthy -> `podman stop -t 30` ->
# exit code 0 and `daemon_stopped` in the logs. Everything else (images, containers, volumes)
# lives in a temporary podman storage that is removed at exit (CALSYNC_CONTAINER_KEEP=1 keeps it
# and the simulator, for debugging).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${CALSYNC_CI_CACHE:-/var/cache/calsync-ci}"
REQUIRE="${CALSYNC_REQUIRE_CONTAINER:-0}"
SYNC_TIMEOUT="${CALSYNC_CONTAINER_SYNC_TIMEOUT:-120}"
MAILBOXES=3
NAME="calsync-ci-$$"
IMAGE="localhost/calsync-ci:test"
START=$SECONDS

step() { printf '== %s (%ss)\n' "$*" "$((SECONDS - START))"; }
fail() { printf 'container-test: FAIL: %s\n' "$*" >&2; exit 1; }
skip() {
  if [ "$REQUIRE" = 1 ]; then
    fail "$* (CALSYNC_REQUIRE_CONTAINER=1)"
  fi
  printf 'container-test: SKIPPED: %s\n' "$*"
  printf 'container-test: (set CALSYNC_REQUIRE_CONTAINER=1 to make this an error)\n'
  exit 0
}

# --- prerequisites --------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || skip "needs root (buildah/podman rootful, debootstrap)"
missing=()
for tool in buildah podman debootstrap runc; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$REQUIRE" = 1 ] && command -v apt-get >/dev/null 2>&1; then
    step "installing ${missing[*]} with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      "${missing[@]}" >/dev/null || { apt-get update -q >/dev/null &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >/dev/null; } || fail "apt-get could not install ${missing[*]}"
  else
    skip "missing tools: ${missing[*]} (apt-get install buildah podman debootstrap runc)"
  fi
fi
CALSYNC="$REPO/.venv/bin/calsync"
PYTHON="$REPO/.venv/bin/python"
[ -x "$CALSYNC" ] || skip "no $CALSYNC: create the venv first (see the README's set-up commands)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/calsync-container.XXXXXX")"
SIM_PID=""
cleanup() {
  local rc=$?
  set +e
  if [ "${CALSYNC_CONTAINER_KEEP:-0}" = 1 ]; then
    printf 'container-test: kept %s (export CONTAINERS_CONF=%s/containers.conf CONTAINERS_STORAGE_CONF=%s/storage.conf)\n' "$WORK" "$WORK" "$WORK"
    exit "$rc"
  fi
  if [ "$rc" != 0 ] && [ -f "$WORK/containers.conf" ]; then
    echo "---- last container log lines" >&2
    podman logs --tail 40 "$NAME" 2>&1 | cut -c1-400 >&2
    echo "---- simulator stderr" >&2
    tail -n 20 "$WORK/sim.err" 2>/dev/null >&2
  fi
  [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null
  if [ -f "$WORK/containers.conf" ]; then
    podman rm -f -t 0 "$NAME" >/dev/null 2>&1
    podman volume rm -f "$NAME-state" >/dev/null 2>&1
    buildah rm --all >/dev/null 2>&1
    podman rmi -a -f >/dev/null 2>&1
  fi
  # the storage lives in $WORK: unmount whatever the storage driver left mounted there
  findmnt -rn -o TARGET | grep -F "$WORK" | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$WORK"
  printf 'container-test: total %ss\n' "$((SECONDS - START))"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# podman/buildah settings for this machine kind (../shared/research/container-build.md):
# crun refuses hybrid cgroups -> runc; podman's default ulimits exceed the hard limits -> cap
# them; no systemd as PID 1 -> cgroupfs, file events, k8s-file logs. Storage is private to $WORK.
nofile="$(ulimit -Hn)"
nproc="$(ulimit -Hu)"
[ "$nofile" = unlimited ] && nofile=1048576
{ [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
cat >"$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
log_driver = "k8s-file"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
cat >"$WORK/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$WORK/storage"
runroot = "$WORK/run"
EOF
export CONTAINERS_CONF="$WORK/containers.conf" CONTAINERS_STORAGE_CONF="$WORK/storage.conf"

# --- 1. base image: debootstrap (cached) + host CAs -----------------------------------------------
step "base image"
mkdir -p "$CACHE"
TARBALL="$CACHE/debian-bookworm-slim-v2.tar"  # bump the suffix when the recipe changes
mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
mirror="${mirror:-http://deb.debian.org/debian}"
(
  flock 9
  if [ -z "$(find "$TARBALL" -mtime -30 2>/dev/null)" ]; then
    step "debootstrap bookworm (minbase) from $mirror"
    rootfs="$WORK/rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
      { tail -n 20 "$WORK/debootstrap.log" >&2; fail "debootstrap"; }
    # slim it like debian:*-slim: no docs, man pages, locales or apt lists
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
      'path-exclude /usr/share/man/*' 'path-exclude /usr/share/locale/*' \
      'path-exclude /usr/share/info/*' >"$rootfs/etc/dpkg/dpkg.cfg.d/slim"
    # and, like its /etc/apt/apt.conf.d/docker-clean, no downloaded .deb files kept
    printf '%s\n' 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };' \
      'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };' \
      'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";' >"$rootfs/etc/apt/apt.conf.d/docker-clean"
    rm -rf "$rootfs"/usr/share/{man,info,locale}/* "$rootfs"/var/lib/apt/lists/* \
      "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
    find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
    rm -f "$rootfs/etc/apt/sources.list"
    printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: %s-security\nSuites: bookworm-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$mirror" "$mirror" >"$rootfs/etc/apt/sources.list.d/debian.sources"
    tar --numeric-owner -C "$rootfs" -cf "$TARBALL.tmp" .
    mv "$TARBALL.tmp" "$TARBALL"
    rm -rf "$rootfs"
  fi
) 9>"$CACHE/.lock"
podman import --quiet --change 'CMD ["bash"]' "$TARBALL" localhost/calsync-ci-base:bookworm >/dev/null
ctr="$(buildah from --pull=never localhost/calsync-ci-base:bookworm)"
shopt -s nullglob
cas=(/usr/local/share/ca-certificates/*.crt)
shopt -u nullglob
if [ "${#cas[@]}" -gt 0 ]; then
  buildah copy "$ctr" "${cas[@]}" /usr/local/share/ca-certificates/ >/dev/null
fi
# the exact name the Dockerfile's FROM uses; the build never pulls
buildah commit --quiet --rm "$ctr" docker.io/library/debian:bookworm-slim >/dev/null

# --- 2. build -------------------------------------------------------------------------------------
step "buildah bud (the project's Dockerfile)"
build_start=$SECONDS
buildah bud --quiet --isolation chroot --pull=never --format docker --layers \
  -t "$IMAGE" -f "$REPO/Dockerfile" "$REPO" >"$WORK/build.log" 2>&1 ||
  { tail -n 40 "$WORK/build.log" >&2; fail "buildah bud"; }
echo "built in $((SECONDS - build_start))s, $(podman image inspect --format '{{.Size}}' "$IMAGE" |
  awk '{printf "%.0f MB", $1 / 1e6}')"

step "image configuration"
inspect() { podman image inspect --format "$1" "$IMAGE"; }
[ "$(inspect '{{.Config.User}}')" = "10001:10001" ] || fail "USER is not 10001:10001"
[ "$(inspect '{{.Config.StopSignal}}')" = "SIGTERM" ] || fail "STOPSIGNAL is not SIGTERM"
inspect '{{json .Config.Healthcheck}}' | grep -q '"calsync","health"' ||
  fail "HEALTHCHECK is not calsync health (built without --format docker?)"
inspect '{{json .Config.Volumes}}' | grep -q '/var/lib/calsync' || fail "no VOLUME /var/lib/calsync"
inspect '{{index .Config.Labels "org.opencontainers.image.version"}}' | grep -q . ||
  fail "no org.opencontainers.image.version label"
podman run --rm --entrypoint id "$IMAGE" -u 2>/dev/null | grep -qx 10001 || fail "does not run as uid 10001"

# --- 3. simulator on the host + config for the container ------------------------------------------
step "simulator (calsync sim, $MAILBOXES mailboxes)"
"$CALSYNC" sim --state-dir "$WORK/sim" --host 127.0.0.1 --mailboxes "$MAILBOXES" \
  --events-per-mailbox 8 >"$WORK/sim.out" 2>"$WORK/sim.err" &
SIM_PID=$!
for _ in $(seq 150); do
  [ -s "$WORK/sim/sim.json" ] && break
  kill -0 "$SIM_PID" 2>/dev/null || fail "the simulator exited"
  sleep 0.2
done
[ -s "$WORK/sim/sim.json" ] || fail "the simulator wrote no sim.json within 30 s"

mkdir -m 0755 "$WORK/etc"
cp "$WORK/sim/ca.pem" "$WORK/etc/ca.pem"
"$PYTHON" - "$WORK/sim/sim.json" "$WORK/etc/calsync.toml" "$WORK/secret" <<'EOF'
import json, sys
sim = json.load(open(sys.argv[1]))
tenant = sim["tenants"][0]
open(sys.argv[3], "w").write(tenant["client_secret"])
lines = [
    "# written by deploy/container-test.sh: the container syncs the host's simulator",
    "[store]", 'url = "sqlite:////var/lib/calsync/calsync.db"',
    "[logging]", 'format = "json"',
    "[daemon]", "shutdown_grace = 20",
    "[[tenants]]", f'name = "{tenant["name"]}"',
    f'tenant_id = "{tenant["tenant_id"]}"', f'client_id = "{tenant["client_id"]}"',
    # a Docker/podman secret, as in production
    'client_secret_file = "/run/secrets/contoso_client_secret"',
    f'authority = "{sim["authority"]}"', f'ews_url = "{sim["ews_url"]}"', 'ca_file = "ca.pem"',
]
for address in tenant["mailboxes"]:
    lines += ["[[mailboxes]]", f'address = "{address}"', f'tenant = "{tenant["name"]}"']
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
EOF
chmod 0644 "$WORK/etc/calsync.toml" "$WORK/etc/ca.pem"
# what `docker compose` does with a file secret: a read-only bind mount at /run/secrets/NAME,
# readable by the container's user only (podman 4.3's own --secret cannot mount into a
# --read-only container)
chown 10001:10001 "$WORK/secret"
chmod 0400 "$WORK/secret"

# --- 4. run ---------------------------------------------------------------------------------------
step "podman run"
podman run -d --name "$NAME" --network host --stop-timeout 30 \
  -v "$WORK/etc:/etc/calsync:ro" -v "$NAME-state:/var/lib/calsync" \
  -v "$WORK/secret:/run/secrets/contoso_client_secret:ro" --read-only --tmpfs /tmp "$IMAGE" >/dev/null 2>"$WORK/run.err" ||
  { cat "$WORK/run.err" >&2; fail "podman run"; }
run_start=$SECONDS

synced() {
  podman logs "$NAME" 2>&1 | grep '"event": "sync_finished"' |
    grep -o '"mailbox": "[^"]*"' | sort -u | wc -l
}
while [ "$(synced)" -lt "$MAILBOXES" ]; do
  [ "$(podman inspect --format '{{.State.Running}}' "$NAME")" = true ] ||
    fail "the container stopped before syncing"
  [ $((SECONDS - run_start)) -lt "$SYNC_TIMEOUT" ] ||
    fail "sync_finished for $(synced) of $MAILBOXES mailboxes after ${SYNC_TIMEOUT}s"
  sleep 0.5
done
echo "sync_finished for all $MAILBOXES mailboxes after $((SECONDS - run_start))s"

step "podman healthcheck run"
# podman 4.3 answers a passing check with exit 0 and no output; the container's health state
# then reads "healthy" (podman cannot schedule the checks itself without systemd as PID 1)
healthy=0
for _ in $(seq 30); do
  if podman healthcheck run "$NAME" >"$WORK/health.out" 2>"$WORK/health.err"; then
    healthy=1
    break
  fi
  sleep 1
done
[ "$healthy" = 1 ] || fail "healthcheck: $(cat "$WORK/health.out") $(grep -v 'level=error' "$WORK/health.err")"
state="$(podman inspect --format '{{.State.Health.Status}}' "$NAME")"
[ "$state" = healthy ] || fail "health status '$state' after a passing check"
podman exec "$NAME" calsync health

# --- 5. stop --------------------------------------------------------------------------------------
step "podman stop -t 30"
stop_start=$SECONDS
podman stop -t 30 "$NAME" >/dev/null
exit_code="$(podman inspect --format '{{.State.ExitCode}}' "$NAME")"
echo "stopped in $((SECONDS - stop_start))s, exit code $exit_code"
[ "$exit_code" = 0 ] || fail "exit code $exit_code (expected 0)"
podman logs "$NAME" 2>&1 | grep '"event": "daemon_stopped"' | grep -q '"exit_code": 0' ||
  fail "no daemon_stopped with exit_code 0 in the logs"
step "container-test: OK"
