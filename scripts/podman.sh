#!/usr/bin/env bash
# scripts/podman.sh - prepare Podman and QEMU user emulation for rtbuild's `make test`,
# `make demo` and `make bench`, next to scripts/engine.sh (which prepares Docker).
#
# Idempotent: a second run changes nothing and returns in well under 2 seconds.
#   1. installs (as root) what is missing of: podman buildah skopeo qemu-user-static
#      binfmt-support  (waits for a busy dpkg lock)
#   2. storage: /etc/containers/storage.conf with the overlay driver (vfs where overlay
#      does not mount, e.g. /var/lib/containers on overlayfs); default_ulimits in
#      /etc/containers/containers.conf within this machine's hard limits
#   3. QEMU: mounts binfmt_misc when needed and makes sure the aarch64 handler is
#      registered with the F (fix binary) flag, so containers need no qemu binary inside
#   4. base images, since no public registry can be reached:
#        podman: docker.io/library/busybox:latest  docker.io/rtbuild/busybox:{latest,amd64}
#        both:   rtbuild/busybox:arm64  (FROM scratch + Debian's busybox-static:arm64, which is
#                downloaded with `apt-get download` and extracted, never installed)
#        docker: rtbuild/busybox:amd64  (a tag of engine.sh's busybox:latest)
#      The Docker images are made only when a Docker engine answers: podman needs none.
#   5. prints a one-line summary.
#
# Exit codes: 0 ready, 1 failure, 2 not root and something must be installed or set up.
set -euo pipefail

PKGS=(podman buildah skopeo qemu-user-static binfmt-support)
CACHE_DIR=/var/cache/rtbuild
ARM64_BUSYBOX=$CACHE_DIR/arm64/busybox
BINFMT=/proc/sys/fs/binfmt_misc
STORAGE_CONF=/etc/containers/storage.conf

log() { printf 'podman.sh: %s\n' "$*" >&2; }
die() { local rc=$1; shift; log "ERROR: $*"; exit "$rc"; }
is_root() { [ "$(id -u)" -eq 0 ]; }

not_root_hint() {
    cat >&2 <<EOF
podman.sh: $1
  rtbuild's Podman and multi-platform tests need, as root:
    apt-get update && apt-get install -y ${PKGS[*]}
    update-binfmts --enable qemu-aarch64
  or simply run this script as root:  sudo $0
EOF
    exit 2
}

installed() { [[ "$(dpkg -s "$1" 2>/dev/null)" == *$'\nStatus: install ok installed'* ]]; }

wait_dpkg_lock() {
    local waited=0 locks=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock)
    while command -v fuser >/dev/null 2>&1 && fuser "${locks[@]}" >/dev/null 2>&1; do
        [ "$waited" -eq 0 ] && log "waiting for another apt/dpkg run to finish (dpkg lock busy)..."
        [ "$waited" -ge 900 ] && die 1 "dpkg lock still busy after ${waited}s"
        sleep 2; waited=$((waited + 2))
    done
}

apt_get() {
    wait_dpkg_lock
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@" >&2
}

# --- 1. packages --------------------------------------------------------------

ensure_packages() {
    local p missing=()
    for p in "${PKGS[@]}"; do installed "$p" || missing+=("$p"); done
    [ "${#missing[@]}" -eq 0 ] && return 0
    is_root || not_root_hint "missing Debian packages: ${missing[*]}"
    log "installing: ${missing[*]}"
    if ! apt_get install -y -q --no-install-recommends "${missing[@]}"; then
        log "install failed; refreshing package lists and retrying"
        apt_get update -q
        apt_get install -y -q --no-install-recommends "${missing[@]}"
    fi
}

# --- 2. storage ---------------------------------------------------------------

ensure_storage() {
    [ -s "$STORAGE_CONF" ] && return 0
    is_root || return 0  # rootless podman has its own ~/.config/containers/storage.conf
    local driver=overlay
    # Overlay cannot stack on overlayfs (podman inside a container): vfs is slow but sure.
    if [ "$(stat -f -c %T /var/lib 2>/dev/null || true)" = overlayfs ]; then driver=vfs; fi
    log "writing $STORAGE_CONF (driver $driver)"
    mkdir -p "$(dirname "$STORAGE_CONF")"
    cat >"$STORAGE_CONF" <<EOF
# Written by rtbuild's scripts/podman.sh: rootful podman storage.
[storage]
driver = "$driver"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
EOF
}

ensure_ulimits() {
    # Podman asks runc for nofile/nproc limits far above this machine's hard limits (and
    # runc then fails: "error setting rlimit type 7: operation not permitted"). Default
    # limits within ours, for every `podman run` and every RUN of `podman build`.
    local conf=/etc/containers/containers.conf
    [ -e "$conf" ] && grep -q '^default_ulimits' "$conf" && return 0
    is_root || return 0
    local nofile nproc
    nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] || [ "$nofile" -gt 1048576 ] && nofile=1048576
    nproc=$(ulimit -Hu); [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ] && nproc=32768
    log "writing default_ulimits (nofile=$nofile, nproc=$nproc) to $conf"
    if [ -e "$conf" ] && grep -q '^\[containers\]' "$conf"; then
        sed -i "/^\[containers\]/a default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]" "$conf"
    else
        printf '# Written by rtbuild scripts/podman.sh\n[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' \
            "$nofile" "$nofile" "$nproc" "$nproc" >>"$conf"
    fi
}

# --- 3. QEMU user emulation -----------------------------------------------------

aarch64_handler_ok() {
    local entry=$BINFMT/qemu-aarch64
    [ -r "$entry" ] || return 1
    local text; text=$(cat "$entry")
    [[ "$text" == enabled* ]] && [[ "$text" == *$'\nflags: '*F* ]]
}

ensure_binfmt() {
    aarch64_handler_ok && return 0
    is_root || not_root_hint "the qemu-aarch64 binfmt handler is not registered (with the F flag)"
    if [ ! -e "$BINFMT/register" ]; then
        log "mounting binfmt_misc on $BINFMT"
        mount -t binfmt_misc binfmt_misc "$BINFMT" || die 1 "cannot mount binfmt_misc (kernel without CONFIG_BINFMT_MISC?)"
    fi
    if [ -e "$BINFMT/qemu-aarch64" ]; then
        # Registered without F (or disabled): re-register from binfmt-support's record.
        echo -1 >"$BINFMT/qemu-aarch64"
    fi
    log "registering the qemu-aarch64 binfmt handler (fix_binary: F flag)"
    update-binfmts --enable qemu-aarch64 >&2 || true
    aarch64_handler_ok || die 1 "the qemu-aarch64 binfmt handler is still not registered with the F flag ($BINFMT/qemu-aarch64)"
}

# --- 4. base images -----------------------------------------------------------

arm64_busybox() {  # the extracted busybox-static:arm64 binary, cached
    [ -x "$ARM64_BUSYBOX" ] && return 0
    is_root || not_root_hint "busybox-static:arm64 must be downloaded"
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        log "dpkg --add-architecture arm64 (to download busybox-static:arm64; nothing arm64 is installed)"
        dpkg --add-architecture arm64
    fi
    local dir; dir=$(mktemp -d)
    chmod 755 "$dir"  # apt downloads as _apt
    if ! (cd "$dir" && apt_get download busybox-static:arm64); then
        apt_get update -q
        (cd "$dir" && apt_get download busybox-static:arm64) || { rm -rf "$dir"; die 1 "apt-get download busybox-static:arm64 failed"; }
    fi
    dpkg-deb -x "$dir"/busybox-static_*_arm64.deb "$dir/x"
    mkdir -p "$(dirname "$ARM64_BUSYBOX")"
    cp "$dir/x/bin/busybox" "$ARM64_BUSYBOX.tmp" && mv "$ARM64_BUSYBOX.tmp" "$ARM64_BUSYBOX"
    rm -rf "$dir"
}

busybox_context() {  # busybox_context BINARY: prints a FROM scratch context dir
    # The applet links are made here, not by a RUN in the image: the arm64 image then needs
    # no emulation to be built, and both architectures get the same layout.
    local binary=$1 ctx app
    ctx=$(mktemp -d)
    mkdir -p "$ctx/rootfs/bin" "$ctx/rootfs/etc" "$ctx/rootfs/tmp" "$ctx/rootfs/root" "$ctx/rootfs/usr/bin" \
        "$ctx/rootfs/usr/sbin" "$ctx/rootfs/sbin" "$ctx/rootfs/var"
    chmod 1777 "$ctx/rootfs/tmp"
    cp "$binary" "$ctx/rootfs/bin/busybox"
    # The host's busybox-static lists the applets (the same Debian version on both arches).
    for app in $(/bin/busybox --list-full); do
        [ "$app" = bin/busybox ] && continue
        [ -e "$ctx/rootfs/$app" ] || ln -s /bin/busybox "$ctx/rootfs/$app"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$ctx/rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$ctx/rootfs/etc/group"
    cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["sh"]
EOF
    echo "$ctx"
}

podman_has() { podman image exists "$1" 2>/dev/null; }

PODMAN_IMAGES=(docker.io/library/busybox:latest docker.io/rtbuild/busybox:latest docker.io/rtbuild/busybox:amd64
    docker.io/rtbuild/busybox:arm64)

make_podman_images() {
    local ctx missing=0 t
    # One podman call when everything is there (each call costs 0.1-0.5 s on a busy machine).
    podman image inspect --format '{{.Id}}' "${PODMAN_IMAGES[@]}" >/dev/null 2>&1 && return 0
    for t in docker.io/library/busybox:latest docker.io/rtbuild/busybox:latest docker.io/rtbuild/busybox:amd64; do
        podman_has "$t" || missing=1
    done
    if [ "$missing" -eq 1 ]; then
        log "creating podman busybox:latest (FROM scratch + Debian busybox-static)"
        ctx=$(busybox_context /bin/busybox)
        podman build -q --platform linux/amd64 -t docker.io/library/busybox:latest -t docker.io/rtbuild/busybox:latest \
            -t docker.io/rtbuild/busybox:amd64 "$ctx" >/dev/null || { rm -rf "$ctx"; die 1 "podman build of busybox failed"; }
        rm -rf "$ctx"
        [ "$(podman run --rm busybox:latest sh -c 'echo ok')" = ok ] || die 1 "podman's busybox:latest does not run"
    fi
    if ! podman_has docker.io/rtbuild/busybox:arm64; then
        arm64_busybox
        log "creating podman rtbuild/busybox:arm64 (FROM scratch + busybox-static:arm64)"
        ctx=$(busybox_context "$ARM64_BUSYBOX")
        podman build -q --platform linux/arm64 -t docker.io/rtbuild/busybox:arm64 "$ctx" >/dev/null \
            || { rm -rf "$ctx"; die 1 "podman build of rtbuild/busybox:arm64 failed"; }
        rm -rf "$ctx"
        [ "$(podman run --rm --platform linux/arm64 docker.io/rtbuild/busybox:arm64 uname -m)" = aarch64 ] \
            || die 1 "rtbuild/busybox:arm64 does not run under QEMU in podman"
    fi
}

docker_bin() { if [ -x /usr/bin/docker ]; then echo /usr/bin/docker; else command -v docker || true; fi; }

make_docker_images() {
    local docker; docker=$(docker_bin)
    [ -n "$docker" ] && "$docker" image inspect rtbuild/busybox:amd64 rtbuild/busybox:arm64 >/dev/null 2>&1 && return 0
    [ -n "$docker" ] && timeout 10 "$docker" info >/dev/null 2>&1 || { log "no Docker engine answers: Docker images skipped"; return 0; }
    if ! "$docker" image inspect rtbuild/busybox:amd64 >/dev/null 2>&1; then
        "$docker" image inspect busybox:latest >/dev/null 2>&1 || die 1 "docker has no busybox:latest (run scripts/engine.sh first)"
        "$docker" tag busybox:latest rtbuild/busybox:amd64
    fi
    "$docker" image inspect rtbuild/busybox:arm64 >/dev/null 2>&1 && return 0
    arm64_busybox
    log "creating docker rtbuild/busybox:arm64 (FROM scratch + busybox-static:arm64)"
    local ctx; ctx=$(busybox_context "$ARM64_BUSYBOX")
    DOCKER_BUILDKIT=1 "$docker" build -q --platform linux/arm64 -t rtbuild/busybox:arm64 "$ctx" >/dev/null \
        || { rm -rf "$ctx"; die 1 "docker build of rtbuild/busybox:arm64 failed"; }
    rm -rf "$ctx"
    [ "$("$docker" run --rm --platform linux/arm64 rtbuild/busybox:arm64 uname -m)" = aarch64 ] \
        || die 1 "rtbuild/busybox:arm64 does not run under QEMU in docker"
}

# --- main ---------------------------------------------------------------------

main() {
    local lock=/var/lock/rtbuild-podman.lock
    is_root || lock=${TMPDIR:-/tmp}/rtbuild-podman.$(id -u).lock
    exec 9>"$lock"
    flock -w 1200 9 || die 1 "another podman.sh still holds $lock after 20 min"

    ensure_packages
    ensure_storage
    ensure_ulimits
    ensure_binfmt
    make_podman_images
    make_docker_images
    local driver
    driver=$(sed -n 's/^driver *= *"\(.*\)"/\1/p' "$STORAGE_CONF" 2>/dev/null | head -n 1)
    echo "podman ready: podman $(dpkg-query -W -f '${Version}' podman 2>/dev/null)," \
        "storage ${driver:-default}, qemu-aarch64 binfmt (F), images: busybox:latest rtbuild/busybox:{amd64,arm64}"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
