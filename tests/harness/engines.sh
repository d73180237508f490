#!/usr/bin/env bash
# Private Docker engines for the tests, demo and benchmarks.
#
#   classic: Debian bookworm's docker.io 20.10, graph-driver (overlay2) image store
#   modern:  Debian trixie's docker.io 26.1 with the containerd image store
#   source:  a second classic engine, the source host of the simulated fleet (fleet.sh)
#
# Each engine has its own data-root, exec-root, pidfile, socket and containerd
# namespace, no bridge and no iptables rules, and a proxy pointing at a closed
# local port so that an accidental pull fails at once instead of going out.
#
# Usage: engines.sh install | start | stop | status | env
set -euo pipefail

ROOT=${AIRGAP_ENGINES_ROOT:-/var/tmp/airgap-engines}
TRIXIE=$ROOT/trixie            # unpacked trixie .debs (dpkg -x), not installed
RUN=$ROOT/run
CLOSED_PROXY=http://127.0.0.1:9  # discard port: nothing listens, a pull fails fast
ENGINES=(classic modern source)

log() { printf 'engines: %s\n' "$*" >&2; }

socket_of() { printf '%s/%s.sock' "$RUN" "$1"; }

install_bookworm_packages() {
  local missing=()
  for pkg in docker.io busybox-static zstd python3-venv shellcheck; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  local fresh_engine=false
  [[ " ${missing[*]} " == *" docker.io "* ]] && fresh_engine=true
  if ((${#missing[@]})); then
    log "installing ${missing[*]} from the system's apt sources"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # A system engine that was there before is the machine owner's: never touched. Only the one the
  # package install above has just started (none of it in use yet) is stopped again, and we say so.
  if $fresh_engine && command -v systemctl >/dev/null && systemctl is-active -q docker 2>/dev/null; then
    log "stopping the system engine that installing docker.io just started (the tests use private engines)"
    systemctl stop docker docker.socket || true
  fi
}

# Fetch trixie's docker.io and containerd with a private apt configuration (own
# sources, lists and cache) so that the system's apt sources stay untouched.
install_trixie_engine() {
  [ -x "$TRIXIE/usr/sbin/dockerd" ] && [ -x "$TRIXIE/usr/bin/containerd" ] && return 0
  local apt=$ROOT/apt
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs" "$TRIXIE"
  printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main\n' \
    >"$apt/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o APT::Sandbox::User=root)
  log "fetching trixie docker.io and containerd"
  apt-get "${opts[@]}" update -qq
  (cd "$apt/debs" && apt-get "${opts[@]}" download docker.io containerd >/dev/null)
  for deb in "$apt"/debs/*.deb; do dpkg -x "$deb" "$TRIXIE"; done
}

write_configs() {
  mkdir -p "$RUN"
  local classic
  for classic in classic source; do
    printf '{"storage-driver": "overlay2"}\n' >"$ROOT/$classic.json"
  done
  cat >"$ROOT/modern.json" <<JSON
{"features": {"containerd-snapshotter": true}}
JSON
}

engine_ready() { docker -H "unix://$(socket_of "$1")" version >/dev/null 2>&1; }

start_engine() {
  local name=$1 dockerd path
  engine_ready "$name" && { log "$name already running"; return 0; }
  if [ "$name" != modern ]; then  # classic and source: bookworm's dockerd
    dockerd=/usr/sbin/dockerd; path=/usr/sbin:/usr/bin:/sbin:/bin
  else
    dockerd=$TRIXIE/usr/sbin/dockerd; path=$TRIXIE/usr/sbin:$TRIXIE/usr/bin:/usr/sbin:/usr/bin:/sbin:/bin
  fi
  mkdir -p "$ROOT/$name/data" "$ROOT/$name/exec"
  log "starting $name engine on $(socket_of "$name")"
  env -i PATH="$path" HOME=/root HTTP_PROXY=$CLOSED_PROXY HTTPS_PROXY=$CLOSED_PROXY \
    http_proxy=$CLOSED_PROXY https_proxy=$CLOSED_PROXY NO_PROXY= \
    setsid "$dockerd" --config-file "$ROOT/$name.json" \
      --data-root "$ROOT/$name/data" --exec-root "$ROOT/$name/exec" \
      --pidfile "$RUN/$name.pid" --host "unix://$(socket_of "$name")" \
      --containerd-namespace "airgap-$name" --containerd-plugins-namespace "airgap-$name-plugins" \
      --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
      --userland-proxy=false --log-level=warn \
      >"$RUN/$name.log" 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    engine_ready "$name" && return 0
    sleep 0.5
  done
  log "$name engine did not come up; its log follows"; tail -n 40 "$RUN/$name.log" >&2
  return 1
}

stop_engine() {
  local pidfile=$RUN/$1.pid pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f "$pidfile"
}

case ${1:-} in
  install) install_bookworm_packages; install_trixie_engine ;;
  start) install_bookworm_packages; install_trixie_engine; write_configs
         for e in "${ENGINES[@]}"; do start_engine "$e"; done ;;
  stop) for e in "${ENGINES[@]}"; do stop_engine "$e"; done ;;
  status) for e in "${ENGINES[@]}"; do
            if engine_ready "$e"; then echo "$e: $(docker -H "unix://$(socket_of "$e")" version -f '{{.Server.Version}}') on unix://$(socket_of "$e")"
            else echo "$e: down"; fi
          done ;;
  env) echo "AIRGAP_CLASSIC_HOST=unix://$(socket_of classic)"
       echo "AIRGAP_MODERN_HOST=unix://$(socket_of modern)"
       echo "AIRGAP_SOURCE_HOST=unix://$(socket_of source)" ;;
  *) echo "usage: $0 install|start|stop|status|env" >&2; exit 2 ;;
esac
