#!/usr/bin/env bash
# scripts/engine.sh - prepare a real Docker engine for rtbuild's `make test`,
# `make demo` and `make bench`, on a fresh Debian machine or an already set up one.
#
# Idempotent: a second run changes nothing and returns in about a second.
#   1. installs (as root) what is missing of: docker.io docker-registry
#      busybox-static debootstrap apache2-utils  (waits for a busy dpkg lock),
#      and openssh-server, never started as a service (the ssh:// tests run their own)
#   2. starts dockerd in the background unless `docker info` already answers
#      (clears a stale /var/run/docker.pid first; log: /var/log/rtbuild-dockerd.log)
#   3. creates local base images, since no public registry can be reached:
#        busybox:latest   rtbuild/busybox:latest            (FROM scratch + busybox-static)
#        debian:bookworm  debian:bookworm-slim  rtbuild/debian:bookworm
#                         (debootstrap minbase, rootfs cached in /var/cache/rtbuild)
#   4. checks that a BuildKit build works with Debian's /usr/bin/docker client
#   5. bounds the build cache (RTBUILD_BUILD_CACHE_MAX_GB) and prints a one-line summary.
#
# Environment knobs:
#   RTBUILD_DEBIAN_MIRROR   mirror for debootstrap and the image's sources.list
#                           (default http://deb.debian.org/debian)
#   RTBUILD_DOCKERD_ARGS    extra arguments for dockerd (e.g. "--storage-driver vfs")
#   RTBUILD_DOCKERD_START_TIMEOUT  seconds a live dockerd may take to answer (default 900)
#   RTBUILD_BUILD_CACHE_MAX_GB     prune the build cache to half this when it is over it
#                           (default 16; 0: never)
#   RTBUILD_ENGINE_VERIFY_APT=1  also run `apt-get update` inside debian:bookworm
#
# Exit codes: 0 ready, 1 engine/image failure, 2 not root and something must be
# installed or started.
set -euo pipefail

PKGS=(docker.io docker-registry busybox-static debootstrap apache2-utils)
DOCKERD_LOG=/var/log/rtbuild-dockerd.log
PIDFILE=/var/run/docker.pid
CACHE_DIR=/var/cache/rtbuild
ROOTFS_TAR=$CACHE_DIR/bookworm-minbase.tar
MIRROR=${RTBUILD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${MIRROR%/debian}/debian-security
START_TIMEOUT=60
# A dockerd that is alive but slow (BuildKit opens every build-cache record before the
# API listens: ~90 s for 14,000 records) gets this long before we give up on it.
SLOW_TIMEOUT=${RTBUILD_DOCKERD_START_TIMEOUT:-900}

log() { printf 'engine.sh: %s\n' "$*" >&2; }
die() { local rc=$1; shift; log "ERROR: $*"; exit "$rc"; }

docker_bin() {
    # Debian's client (20.10) does BuildKit builds with DOCKER_BUILDKIT=1; the
    # /usr/local/bin/docker 28.x client that may come first on PATH has no buildx.
    if [ -x /usr/bin/docker ]; then echo /usr/bin/docker; else command -v docker || true; fi
}

is_root() { [ "$(id -u)" -eq 0 ]; }

docker_up() {
    local d; d=$(docker_bin)
    [ -n "$d" ] && timeout 10 "$d" info >/dev/null 2>&1
}

missing_pkgs() {
    local p
    for p in "${PKGS[@]}"; do
        # No `dpkg -s | grep -q`: with pipefail, grep's early exit SIGPIPEs dpkg
        # and the pipeline fails at random for installed packages.
        [[ "$(dpkg -s "$p" 2>/dev/null)" == *$'\nStatus: install ok installed'* ]] || echo "$p"
    done
}

not_root_hint() {
    cat >&2 <<EOF
engine.sh: $1
  rtbuild's real-engine tests need, as root:
    apt-get update && apt-get install -y docker.io docker-registry busybox-static debootstrap apache2-utils
    dockerd >/var/log/rtbuild-dockerd.log 2>&1 &      # or: systemctl start docker
  or simply run this script as root:  sudo $0
EOF
    exit 2
}

# --- 1. packages --------------------------------------------------------------

wait_dpkg_lock() {
    # Another apt/dpkg (e.g. an install started in the background) may hold the
    # locks; wait for it instead of failing.
    local waited=0 locks=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock)
    while :; do
        local busy=0
        if command -v fuser >/dev/null 2>&1; then
            fuser "${locks[@]}" >/dev/null 2>&1 && busy=1
        elif pgrep -x 'apt-get|apt|dpkg|unattended-upgr' >/dev/null 2>&1; then
            busy=1
        fi
        [ "$busy" -eq 0 ] && return 0
        [ "$waited" -eq 0 ] && log "waiting for another apt/dpkg run to finish (dpkg lock busy)..."
        [ "$waited" -ge 900 ] && die 1 "dpkg lock still busy after ${waited}s"
        sleep 2; waited=$((waited + 2))
    done
}

apt_get() {
    wait_dpkg_lock
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@" >&2
}

ensure_packages() {
    local missing
    missing=$(missing_pkgs | tr '\n' ' ')
    missing=${missing% }
    [ -z "$missing" ] && return 0
    is_root || not_root_hint "missing Debian packages: $missing"
    wait_dpkg_lock
    missing=$(missing_pkgs | tr '\n' ' '); missing=${missing% }   # a background install may have done it
    [ -z "$missing" ] && return 0
    log "installing: $missing"
    local p need_update=0
    for p in $missing; do
        [[ "$(apt-cache policy "$p" 2>/dev/null)" == *'Candidate: '[!\(]* ]] || need_update=1
    done
    [ "$need_update" -eq 1 ] && apt_get update -q
    # shellcheck disable=SC2086
    if ! apt_get install -y -q --no-install-recommends $missing; then
        log "install failed; refreshing package lists and retrying"
        apt_get update -q
        # shellcheck disable=SC2086
        apt_get install -y -q --no-install-recommends $missing
    fi
}

# The ssh:// engine tests start their own sshd on 127.0.0.1 (a test's host key and
# config); the package must not start a system sshd on port 22 while it installs.
ensure_sshd() {
    [ -x /usr/sbin/sshd ] && return 0
    is_root || not_root_hint "missing Debian package: openssh-server"
    local policy=/usr/sbin/policy-rc.d made=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && made=1
    fi
    log "installing: openssh-server (not started)"
    local rc=0
    apt_get install -y -q --no-install-recommends openssh-server || {
        apt_get update -q && apt_get install -y -q --no-install-recommends openssh-server; } || rc=$?
    [ "$made" -eq 0 ] || rm -f "$policy"
    [ "$rc" -eq 0 ] || die 1 "could not install openssh-server (exit $rc)"
}

# --- 2. dockerd ---------------------------------------------------------------

pid_alive_as() {  # pid_alive_as PIDFILE NAME: true when PIDFILE names a live NAME process
    local pid
    [ -s "$1" ] || return 1
    pid=$(cat "$1" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = "$2" ]
}

clear_stale_pids() {
    if [ -e "$PIDFILE" ] && ! pid_alive_as "$PIDFILE" dockerd; then
        log "removing stale $PIDFILE ($(cat "$PIDFILE" 2>/dev/null || true))"
        rm -f "$PIDFILE"
    fi
    # dockerd's managed containerd: a pid file naming a dead (or reused) pid
    # makes dockerd wait for the wrong process.
    local cpid=/var/run/docker/containerd/containerd.pid
    if [ -e "$cpid" ] && ! pid_alive_as "$cpid" containerd; then
        rm -f "$cpid"
    fi
}

wait_docker() {  # wait_docker SECONDS PID: 0 when up, 1 on timeout, 3 when dockerd died
    local deadline=$((SECONDS + $1)) pid=$2
    while [ "$SECONDS" -lt "$deadline" ]; do
        docker_up && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 3; fi
        sleep 0.5
    done
    return 1
}

wait_started() {  # wait_started PID: like wait_docker, but a live, slow dockerd gets SLOW_TIMEOUT
    local pid=$1 rc=0 waited=$START_TIMEOUT
    wait_docker "$START_TIMEOUT" "$pid" || rc=$?
    while [ "$rc" -eq 1 ] && [ "$waited" -lt "$SLOW_TIMEOUT" ] && kill -0 "$pid" 2>/dev/null; do
        log "dockerd (pid $pid) is alive but not answering after ${waited}s; waiting (up to ${SLOW_TIMEOUT}s)"
        rc=0; wait_docker 30 "$pid" || rc=$?
        waited=$((waited + 30))
    done
    return "$rc"
}

launch_dockerd() {  # launch_dockerd ARGS...: prints the pid of the new dockerd
    local dockerd
    dockerd=$(command -v dockerd || echo /usr/sbin/dockerd)
    [ -x "$dockerd" ] || die 1 "dockerd not found (is docker.io installed?)"
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    printf '\n==== %s engine.sh: %s %s\n' "$(date -Is)" "$dockerd" "$*" >>"$DOCKERD_LOG"
    # setsid+nohup: the daemon outlives this script and the shell that ran it.
    # 9>&-: it must not inherit our lock fd, or it would hold the lock forever.
    setsid nohup "$dockerd" "$@" </dev/null >>"$DOCKERD_LOG" 2>&1 9>&- &
    echo $!
}

start_dockerd() {
    if ! is_root; then
        if [ -S /var/run/docker.sock ] && [ ! -w /var/run/docker.sock ]; then
            not_root_hint "/var/run/docker.sock is not writable by $(id -un) (join the docker group, or run as root)"
        fi
        not_root_hint "no Docker engine answers \`$(docker_bin) info\`"
    fi
    # A dockerd already starting (pid file names a live one): just wait for it.
    if pid_alive_as "$PIDFILE" dockerd; then
        log "dockerd (pid $(cat "$PIDFILE")) is running but not answering yet; waiting"
        wait_started "$(cat "$PIDFILE")" && return 0
        tail -n 30 "$DOCKERD_LOG" >&2 2>/dev/null || true
        die 1 "dockerd pid $(cat "$PIDFILE") does not answer after ${SLOW_TIMEOUT}s (log: $DOCKERD_LOG)"
    fi
    clear_stale_pids
    local extra=() pid rc=0
    # shellcheck disable=SC2206
    [ -n "${RTBUILD_DOCKERD_ARGS:-}" ] && extra=(${RTBUILD_DOCKERD_ARGS})
    log "starting dockerd (log: $DOCKERD_LOG)"
    pid=$(launch_dockerd "${extra[@]}")
    wait_started "$pid" || rc=$?
    [ "$rc" -eq 0 ] && return 0
    # overlay2 is expected; it fails when /var/lib/docker itself sits on overlayfs
    # (docker in docker) or the kernel lacks it. Fall back to vfs (slow but sure).
    if [ "$rc" -eq 3 ] && [ -z "${RTBUILD_DOCKERD_ARGS:-}" ] &&
        tail -n 40 "$DOCKERD_LOG" | grep -iE 'overlay|storage.driver|graphdriver' >/dev/null; then
        log "dockerd failed with the default storage driver; retrying with --storage-driver vfs"
        clear_stale_pids
        pid=$(launch_dockerd --storage-driver vfs)
        rc=0; wait_docker "$START_TIMEOUT" "$pid" || rc=$?
        [ "$rc" -eq 0 ] && return 0
    fi
    log "last 30 lines of $DOCKERD_LOG:"
    tail -n 30 "$DOCKERD_LOG" >&2 || true
    if [ "$rc" -eq 3 ]; then die 1 "dockerd exited during startup"; fi
    die 1 "dockerd did not answer within ${SLOW_TIMEOUT}s"
}

# --- 3. base images -----------------------------------------------------------

have_image() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

tag_all() {  # tag_all SRC DST...: add the tags that are missing
    local src=$1 t; shift
    for t in "$@"; do have_image "$t" || "$DOCKER" tag "$src" "$t"; done
}

make_busybox() {
    local src
    if have_image busybox:latest; then tag_all busybox:latest rtbuild/busybox:latest; return 0; fi
    if have_image rtbuild/busybox:latest; then tag_all rtbuild/busybox:latest busybox:latest; return 0; fi
    dpkg -s busybox-static >/dev/null 2>&1 || {
        is_root || not_root_hint "busybox-static is needed to make busybox:latest"
        ensure_packages; }
    src=/bin/busybox   # busybox-static's (it conflicts with the dynamic busybox package)
    log "creating busybox:latest (FROM scratch + Debian busybox-static)"
    local ctx; ctx=$(mktemp -d)
    cp "$src" "$ctx/busybox"
    mkdir -p "$ctx/etc"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$ctx/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$ctx/etc/group"
    cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
COPY etc/ /etc/
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin && mkdir -p /tmp /root /usr/bin /usr/sbin /sbin /var && chmod 1777 /tmp"]
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["sh"]
EOF
    DOCKER_BUILDKIT=1 "$DOCKER" build -q -t busybox:latest -t rtbuild/busybox:latest "$ctx" >/dev/null \
        || { rm -rf "$ctx"; die 1 "building busybox:latest failed"; }
    rm -rf "$ctx"
    [ "$("$DOCKER" run --rm busybox:latest sh -c 'echo ok')" = ok ] \
        || die 1 "busybox:latest was built but \`sh -c 'echo ok'\` does not work in it"
}

make_rootfs_tar() {
    [ -s "$ROOTFS_TAR" ] && return 0
    is_root || not_root_hint "debootstrap (root) is needed to make debian:bookworm"
    dpkg -s debootstrap >/dev/null 2>&1 || ensure_packages
    mkdir -p "$CACHE_DIR"
    local dir; dir=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
    log "debootstrap --variant=minbase bookworm from $MIRROR (about 30-60 s)"
    if ! debootstrap --variant=minbase bookworm "$dir" "$MIRROR" >"$CACHE_DIR/debootstrap.log" 2>&1; then
        tail -n 30 "$CACHE_DIR/debootstrap.log" >&2 || true
        tail -n 30 "$dir/debootstrap/debootstrap.log" >&2 2>/dev/null || true
        rm -rf "$dir"
        die 1 "debootstrap failed (log: $CACHE_DIR/debootstrap.log)"
    fi
    # Like the official image: main + updates + security, over plain http.
    cat >"$dir/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY_MIRROR bookworm-security main
EOF
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/tmp/* "$dir"/var/log/*.log
    : >"$dir/etc/resolv.conf"      # docker bind-mounts its own
    tar --numeric-owner -C "$dir" -cf "$ROOTFS_TAR.tmp" .
    mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
    rm -rf "$dir"
}

make_debian() {
    local t
    for t in debian:bookworm debian:bookworm-slim rtbuild/debian:bookworm; do
        if have_image "$t"; then
            tag_all "$t" debian:bookworm debian:bookworm-slim rtbuild/debian:bookworm
            return 0
        fi
    done
    make_rootfs_tar
    log "importing debian:bookworm from $ROOTFS_TAR"
    "$DOCKER" import \
        --change 'CMD ["bash"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        "$ROOTFS_TAR" debian:bookworm >/dev/null || die 1 "docker import of $ROOTFS_TAR failed"
    tag_all debian:bookworm debian:bookworm-slim rtbuild/debian:bookworm
    [ "$("$DOCKER" run --rm debian:bookworm bash -c 'echo ok')" = ok ] \
        || die 1 "debian:bookworm was imported but does not run"
    RTBUILD_ENGINE_VERIFY_APT=1   # a new image: prove apt reaches the mirror once
}

verify_apt() {
    [ "${RTBUILD_ENGINE_VERIFY_APT:-0}" = 1 ] || return 0
    log "checking that apt-get update works inside debian:bookworm"
    "$DOCKER" run --rm debian:bookworm apt-get update -q >/tmp/rtbuild-engine-apt.log 2>&1 || {
        tail -n 15 /tmp/rtbuild-engine-apt.log >&2
        die 1 "apt-get update inside debian:bookworm failed (containers must reach $MIRROR over http)"
    }
}

# --- 4. BuildKit check --------------------------------------------------------

verify_buildkit() {
    local ctx out
    ctx=$(mktemp -d)
    printf 'FROM busybox:latest\nRUN echo rtbuild-buildkit-check > /check\n' >"$ctx/Dockerfile"
    if ! out=$(DOCKER_BUILDKIT=1 "$DOCKER" build -q -t rtbuild/engine-check:latest "$ctx" 2>&1); then
        rm -rf "$ctx"
        printf '%s\n' "$out" | tail -n 20 >&2
        die 1 "BuildKit build with DOCKER_BUILDKIT=1 $DOCKER failed"
    fi
    rm -rf "$ctx"
}

# --- 5. build cache bound ------------------------------------------------------

# Every test run and bench adds build cache (1-3 GB a run here) that nothing removes; at
# 20 GB (14,572 records) dockerd took 117 s to start listening. Above the bound, prune down
# to half of it (about a minute per GB removed), the most recently used records kept.
bound_build_cache() {
    local max=${RTBUILD_BUILD_CACHE_MAX_GB:-16} size gb
    [ "$max" = 0 ] && return 0
    size=$("$DOCKER" system df --format '{{.Type}} {{.Size}}' 2>/dev/null | awk '/^Build Cache/ {print $3}')
    gb=$(awk -v s="$size" 'BEGIN {
        n = s + 0; u = s; sub(/^[0-9.]+/, "", u)
        f = (u == "TB") ? 1000 : (u == "GB") ? 1 : (u == "MB") ? 0.001 : (u == "kB") ? 0.000001 : 0
        printf "%d", n * f }')
    [ -n "$gb" ] && [ "$gb" -gt "$max" ] || return 0
    log "build cache is ${size} (over ${max} GB): pruning it to $((max / 2)) GB (slow: about a minute per GB)"
    "$DOCKER" builder prune -f --keep-storage "$((max / 2))GB" >/dev/null 2>&1 \
        || log "warning: docker builder prune failed (the build cache stays ${size})"
}

# --- main ---------------------------------------------------------------------

main() {
    # Serialise concurrent runs (make test and make demo started together).
    local lock=/var/lock/rtbuild-engine.lock
    is_root || lock=${TMPDIR:-/tmp}/rtbuild-engine.$(id -u).lock
    exec 9>"$lock"
    flock -w 1200 9 || die 1 "another engine.sh still holds $lock after 20 min"

    # Everything the tests use, the registry, htpasswd and sshd included.
    ensure_packages
    ensure_sshd
    DOCKER=$(docker_bin)
    [ -n "$DOCKER" ] || die 1 "no docker client found"
    docker_up || start_dockerd

    local driver
    driver=$("$DOCKER" info --format '{{.Driver}}')
    make_busybox
    make_debian
    verify_apt
    verify_buildkit
    bound_build_cache

    local imgs="" t
    for t in busybox:latest rtbuild/busybox:latest debian:bookworm debian:bookworm-slim rtbuild/debian:bookworm; do
        have_image "$t" && imgs="$imgs $t"
    done
    echo "engine ready: docker $("$DOCKER" version --format '{{.Server.Version}}') ($DOCKER)," \
        "storage $driver, images:$imgs"
}

# Sourcing (for tests of the functions) does not run main.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
