#!/usr/bin/env bash
# Private Docker engines for the tests, demo and benchmarks.
#
#   classic: Debian bookworm's docker.io 20.10, graph-driver (overlay2) image store
#   modern:  Debian trixie's docker.io 26.1 with the containerd image store
#   containerd2: Debian forky's docker.io 28.5 and containerd 2.1, containerd image store (API 1.51)
#   source:  a second classic engine, the source host of the simulated fleet (fleet.sh)
#   fleet-classic, fleet-modern, fleet-containerd2: the fleet's target hosts, one of each kind
#   podman:  Debian bookworm's podman 4.3 (`podman system service`, its Docker-compatible API),
#            rootful, with a private storage root; used by the fleet session's tests
#   podman-rootless: the same Podman run by the unprivileged user airgap-podman (a user namespace
#            from its subordinate ids), as many Podman hosts run it; its socket in $RUN is a link to
#            the one in the user's runtime directory
#   fleet-podman: a third, rootful, for the fleet session's role test (a fleet host's engine)
#   fleet-classic-05, fleet-modern-06, fleet-containerd2-07, fleet-classic-08, ...: the engines of
#     the extra targets tgt-05, tgt-06, ... of a fleet larger than four hosts (AIRGAP_FLEET_SIZE,
#     see fleet.sh), the three kinds in turn
#
# The fleet (and the benchmark smoke test, which uses it) has engines of its own, so that the
# role's tests and the module tests can run at the same time without seeing each other's images.
#
# Each engine has its own data-root, exec-root, pidfile, socket and containerd
# namespace, no bridge and no iptables rules, and a proxy pointing at a closed
# local port so that an accidental pull fails at once instead of going out.
#
# The engines' stores (data-roots and Podman's storage) live on a journaled ext4 of their own,
# $ROOT/stores, a sparse file ($ROOT/stores.img) on a loop device, mounted by `start` and
# unmounted by `stop`. An ext4 without a journal (as this machine's root may be) skips every inode
# freed in the last 60 s or more when it creates a file; a load after the removal of an image of
# 30,000 files then took 10 to 28 s instead of 1.4 s to create them, and the tests and benchmarks
# remove and load images all the time. AIRGAP_ENGINES_LOOP=0, or a machine without loop devices,
# keeps the stores in a plain directory there instead.
#
# The fleet's size is AIRGAP_FLEET_SIZE if set, else that of the running fleet (recorded by
# fleet.sh start in $ROOT/fleet/config), else 4: `start` starts the engines of that size and stops
# extra engines beyond it, `stop` stops every engine (extra ones of any size included).
#
# Usage: engines.sh install | start | stop | status | env
#        engines.sh fleet-engines   the extra engines of the fleet's size, in host order (fleet.sh)
#        engines.sh stop-extras     stop every extra fleet engine (fleet.sh stop)
set -euo pipefail

ROOT=${AIRGAP_ENGINES_ROOT:-/var/tmp/airgap-engines}
TRIXIE=$ROOT/trixie            # unpacked trixie .debs (dpkg -x), not installed
FORKY=$ROOT/forky              # unpacked forky .debs, likewise
# Forky's runc needs a newer glibc than bookworm's, so the containerd2 engine runs bookworm's
# runc: this directory holds only a link to it and comes first on that engine's PATH.
BOOKWORM_RUNC=$ROOT/bookworm-runc
RUN=$ROOT/run
STORES=$ROOT/stores
STORES_IMAGE=$ROOT/stores.img
CLOSED_PROXY=http://127.0.0.1:9  # discard port: nothing listens, a pull fails fast
BASE_ENGINES=(classic modern containerd2 source fleet-classic fleet-modern fleet-containerd2 podman podman-rootless fleet-podman)
KINDS=(classic modern containerd2)

log() { printf 'engines: %s\n' "$*" >&2; }

socket_of() { printf '%s/%s.sock' "$RUN" "$1"; }

# Which Docker an engine runs: classic (bookworm), modern (trixie) or containerd2 (forky).
# fleet-modern-06 is an extra fleet engine of the modern kind.
kind_of() {
  local name=${1#fleet-}
  name=${name%-[0-9]*}
  case $name in
    source) echo classic ;;
    *) echo "$name" ;;
  esac
}

# The fleet's number of hosts: AIRGAP_FLEET_SIZE, else the running fleet's, else 4.
fleet_size() {
  local size=${AIRGAP_FLEET_SIZE:-}
  [ -n "$size" ] || size=$(sed -n 's/^size=//p' "$ROOT/fleet/config" 2>/dev/null || true)
  size=${size:-4}
  if ! [[ $size =~ ^[1-9][0-9]*$ ]] || ((size > 200)); then
    log "AIRGAP_FLEET_SIZE must be 1 to 200, not '$size'"
    return 1
  fi
  echo "$size"
}

# Host 5, 6, 7, ... of the fleet (tgt-05, tgt-06, ...) has engine fleet-<kind>-05, ..., the kinds in turn.
fleet_engines() {
  local size i
  size=$(fleet_size)
  for ((i = 5; i <= size; i++)); do
    printf 'fleet-%s-%02d\n' "${KINDS[(i - 5) % 3]}" "$i"
  done
}

# Extra fleet engines that have a pidfile, whatever the size they were started for.
started_extras() {
  local pidfile name
  for pidfile in "$RUN"/fleet-*-[0-9]*.pid; do
    [ -e "$pidfile" ] || continue
    name=${pidfile##*/}
    echo "${name%.pid}"
  done
}

install_bookworm_packages() {
  local missing=()
  for pkg in docker.io runc busybox-static zstd python3-venv shellcheck podman uidmap; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]} from the system's apt sources"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # A system Docker engine (the machine's, or one the docker.io package started) is never stopped or
  # reconfigured: the private engines run beside it with their own sockets, roots and namespaces.
  if command -v systemctl >/dev/null && systemctl is-active -q docker 2>/dev/null; then
    log "the system Docker engine runs; it is left alone (the tests use private engines)"
  fi
}

# Fetch a Debian suite's docker.io and containerd with a private apt configuration (own
# sources, lists and cache) and unpack them into $2, so that the system's apt sources and
# packages stay untouched.
install_debian_engine() {
  local suite=$1 target=$2 apt=$ROOT/apt-$1
  [ -x "$target/usr/sbin/dockerd" ] && [ -x "$target/usr/bin/containerd" ] && return 0
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs" "$target"
  printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian %s main\n' \
    "$suite" >"$apt/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o APT::Sandbox::User=root)
  log "fetching $suite docker.io and containerd"
  apt-get "${opts[@]}" update -qq
  rm -f "$apt"/debs/*.deb
  (cd "$apt/debs" && apt-get "${opts[@]}" download docker.io containerd >/dev/null)
  for deb in "$apt"/debs/*.deb; do dpkg -x "$deb" "$target"; done
}

link_bookworm_runc() {
  local runc
  runc=$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v runc) || { log "bookworm's runc is missing"; return 1; }
  mkdir -p "$BOOKWORM_RUNC"
  ln -sfn "$runc" "$BOOKWORM_RUNC/runc"
}

install_engines() {
  install_bookworm_packages
  install_debian_engine trixie "$TRIXIE"
  install_debian_engine forky "$FORKY"
  link_bookworm_runc
}

# The stores' file system: created once (sparse, sized from the free space: it never holds more
# than the disk can), mounted at each start. Without a loop device, a plain directory.
mount_stores() {
  mountpoint -q "$STORES" && return 0
  mkdir -p "$STORES"
  if [ "${AIRGAP_ENGINES_LOOP:-1}" = 0 ]; then
    log "AIRGAP_ENGINES_LOOP=0: the engines' stores stay in $STORES, on the file system of $ROOT"
    return 0
  fi
  create_stores_image || return 0
  local dev
  # Direct I/O: the backing file's pages are not cached a second time under the file system's.
  if ! dev=$(losetup --direct-io=on --find --show "$STORES_IMAGE" 2>/dev/null); then
    log "no loop device: the engines' stores stay in $STORES, on the file system of $ROOT"
    return 0
  fi
  # discard gives the blocks of deleted files back to the disk; noinit_itable: the inode tables of
  # a sparse file read as zeros, so nothing has to write them in the background.
  if ! mount -o discard,noinit_itable "$dev" "$STORES"; then
    losetup -d "$dev"
    log "could not mount $STORES_IMAGE: the engines' stores stay in $STORES"
  fi
}

create_stores_image() {
  [ -e "$STORES_IMAGE" ] && return 0
  local free_kib size_gib
  free_kib=$(df --output=avail -k "$ROOT" | tail -n 1)
  size_gib=$((free_kib * 8 / 10 / 1024 / 1024))
  ((size_gib <= 256)) || size_gib=256
  if ((size_gib < 8)); then
    log "under 10 GiB free in $ROOT: the engines' stores stay in $STORES, on the file system of $ROOT"
    return 1
  fi
  log "creating the stores' file system ($size_gib GiB, sparse) in $STORES_IMAGE"
  truncate -s "${size_gib}G" "$STORES_IMAGE.partial"
  mkfs.ext4 -q -F -L airgap-stores -i 32768 -E nodiscard,lazy_itable_init=1,lazy_journal_init=1 \
    "$STORES_IMAGE.partial"
  mv "$STORES_IMAGE.partial" "$STORES_IMAGE"
}

# After every engine has stopped: what the engines mounted under the stores goes with them.
unmount_stores() {
  mountpoint -q "$STORES" || return 0
  umount -R "$STORES" 2>/dev/null || { log "$STORES is busy: unmounted lazily"; umount -R -l "$STORES"; }
  losetup -j "$STORES_IMAGE" -n -O NAME | xargs -r -n 1 losetup -d
}

write_configs() {
  mkdir -p "$RUN"
  local name
  for name in "$@"; do
    if [[ $name == *podman* ]]; then
      write_podman_configs
    elif [ "$(kind_of "$name")" = classic ]; then
      printf '{"storage-driver": "overlay2"}\n' >"$ROOT/$name.json"
    else
      printf '{"features": {"containerd-snapshotter": true}}\n' >"$ROOT/$name.json"
    fi
  done
}

# Podman reads registries.conf and containers.conf from files of its own, never the system's: short
# names search only Docker Hub (as Docker resolves them), and the service needs no systemd.
PODMAN=$ROOT/podman
write_podman_configs() {
  mkdir -p "$PODMAN"
  printf 'unqualified-search-registries = ["docker.io"]\nshort-name-mode = "permissive"\n' >"$PODMAN/registries.conf"
  # runc, not crun: crun refuses this machine's hybrid cgroup layout. Podman raises a container's
  # open files and processes to the host's maximum, which the sandbox may not allow: fixed limits.
  printf '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n[containers]\nnetns = "none"\n%s\n' \
    'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]' >"$PODMAN/containers.conf"
}

# podman_service NAME DIR SOCKET PODMAN...: the service of engine NAME on SOCKET in the background,
# run by the command PODMAN... (podman and its storage options, as its user), with the private
# configuration and the closed proxy. Podman's service writes no pidfile: the harness records the
# pid of the process it started.
podman_service() {
  local name=$1 dir=$2 socket=$3; shift 3
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HTTP_PROXY=$CLOSED_PROXY HTTPS_PROXY=$CLOSED_PROXY \
    http_proxy=$CLOSED_PROXY https_proxy=$CLOSED_PROXY NO_PROXY= HOME="$dir/home" XDG_RUNTIME_DIR="$dir/run" \
    CONTAINERS_REGISTRIES_CONF="$PODMAN/registries.conf" CONTAINERS_CONF="$PODMAN/containers.conf" \
    setsid "$@" --log-level=warn system service --time=0 "$socket" >"$RUN/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

# Podman's storage (its --root) under the engines' stores: $STORES/podman-rootful for $PODMAN/rootful.
# The rest stays under $1: Podman refuses a runroot longer than 50 characters.
podman_store() { echo "$STORES/podman-${1##*/}"; }

podman_storage() {  # the storage options of the private store of $1
  printf -- '--root %s --runroot %s/runroot --tmpdir %s/tmp --network-config-dir %s/networks --storage-driver overlay' \
    "$(podman_store "$1")" "$1" "$1" "$1"
}

# The private store of a rootful Podman engine: podman's is rootful/, fleet-podman's fleet/.
podman_dir() { if [ "$1" = podman ]; then echo "$PODMAN/rootful"; else echo "$PODMAN/fleet"; fi; }

launch_podman() {
  local name=$1 dir
  dir=$(podman_dir "$name")
  mkdir -p "$(podman_store "$dir")" "$dir/runroot" "$dir/tmp" "$dir/networks" "$dir/run" "$dir/home"
  log "starting $name engine on $(socket_of "$name")"
  # shellcheck disable=SC2046  # podman_storage's words are options
  podman_service "$name" "$dir" "unix://$(socket_of "$name")" podman $(podman_storage "$dir")
}

PODMAN_USER=airgap-podman
ensure_podman_user() {
  local home=$PODMAN/rootless/home
  id -u "$PODMAN_USER" >/dev/null 2>&1 ||
    useradd --system --home-dir "$home" --no-create-home --shell /usr/sbin/nologin "$PODMAN_USER"
  [ "$(getent passwd "$PODMAN_USER" | cut -d: -f6)" = "$home" ] || usermod --home "$home" "$PODMAN_USER"
  # 65536 subordinate ids, beyond those of other users, for the user namespace of its containers.
  grep -q "^$PODMAN_USER:" /etc/subuid 2>/dev/null || usermod --add-subuids 400000-465535 "$PODMAN_USER"
  grep -q "^$PODMAN_USER:" /etc/subgid 2>/dev/null || usermod --add-subgids 400000-465535 "$PODMAN_USER"
}

launch_podman_rootless() {
  local dir=$PODMAN/rootless
  ensure_podman_user
  mkdir -p "$(podman_store "$dir")" "$dir/runroot" "$dir/tmp" "$dir/networks" "$dir/run" "$dir/home"
  chown -R "$PODMAN_USER:" "$dir" "$(podman_store "$dir")"
  chmod 0700 "$dir/run"
  ln -sfn "$dir/run/podman.sock" "$(socket_of podman-rootless)"
  log "starting podman-rootless engine (user $PODMAN_USER) on $(socket_of podman-rootless)"
  # shellcheck disable=SC2046
  podman_service podman-rootless "$dir" "unix://$dir/run/podman.sock" runuser -u "$PODMAN_USER" -- podman $(podman_storage "$dir")
}

engine_ready() { docker -H "unix://$(socket_of "$1")" version >/dev/null 2>&1; }

# Starts the engine in the background; wait_for_engine then waits for it. Every engine is
# launched before the first is waited for, so that they come up side by side.
launch_engine() {
  local name=$1 dockerd path
  case $name in
    podman | fleet-podman) launch_podman "$name"; return ;;
    podman-rootless) launch_podman_rootless; return ;;
  esac
  # dockerd starts the containerd it finds on PATH, containerd the shim, the shim runc.
  case $(kind_of "$name") in
    modern) dockerd=$TRIXIE/usr/sbin/dockerd; path=$TRIXIE/usr/sbin:$TRIXIE/usr/bin:/usr/sbin:/usr/bin:/sbin:/bin ;;
    containerd2) dockerd=$FORKY/usr/sbin/dockerd
                 path=$BOOKWORM_RUNC:$FORKY/usr/sbin:$FORKY/usr/bin:/usr/sbin:/usr/bin:/sbin:/bin ;;
    *) dockerd=/usr/sbin/dockerd; path=/usr/sbin:/usr/bin:/sbin:/bin ;;  # the classic kind
  esac
  mkdir -p "$STORES/$name" "$ROOT/$name/exec"
  log "starting $name engine on $(socket_of "$name")"
  env -i PATH="$path" HOME=/root HTTP_PROXY=$CLOSED_PROXY HTTPS_PROXY=$CLOSED_PROXY \
    http_proxy=$CLOSED_PROXY https_proxy=$CLOSED_PROXY NO_PROXY= \
    setsid "$dockerd" --config-file "$ROOT/$name.json" \
      --data-root "$STORES/$name" --exec-root "$ROOT/$name/exec" \
      --pidfile "$RUN/$name.pid" --host "unix://$(socket_of "$name")" \
      --containerd-namespace "airgap-$name" --containerd-plugins-namespace "airgap-$name-plugins" \
      --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
      --userland-proxy=false --log-level=warn \
      >"$RUN/$name.log" 2>&1 </dev/null &
}

wait_for_engine() {
  local name=$1
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
  # A Podman container runs under a conmon of its own, outside the service; a rootless service
  # also leaves the process that holds its user namespace. Its user runs nothing else.
  case $1 in
    podman | fleet-podman)
      local dir store
      dir=$(podman_dir "$1")
      store=$(podman_store "$dir")
      pkill -f "conmon .*($dir|$store)/" || true
      # Its store stays mounted after the service exits.
      awk -v dir="$dir/" -v store="$store/" 'index($2, dir) == 1 || index($2, store) == 1 { print $2 }' /proc/mounts |
        sort -r | xargs -r umount || true ;;
    podman-rootless) pkill -u "$PODMAN_USER" 2>/dev/null || true
                     rm -f "$(socket_of podman-rootless)" ;;
  esac
}

# Stops engines side by side (each waits up to 30 s for its dockerd to exit).
stop_engines() {
  local name pids=()
  for name in "$@"; do stop_engine "$name" & pids+=($!); done
  ((${#pids[@]} == 0)) || wait "${pids[@]}"
}

start_engines() {
  local name launched=() extras=() wanted
  fleet_size >/dev/null  # a bad AIRGAP_FLEET_SIZE stops here, not inside the process substitution
  mapfile -t extras < <(fleet_engines)
  ENGINES=("${BASE_ENGINES[@]}" "${extras[@]}")
  install_engines
  mount_stores
  write_configs "${ENGINES[@]}"
  # The extra engines of a larger fleet than the configured one serve no host any more.
  wanted=" ${extras[*]} "
  for name in $(started_extras); do
    [[ $wanted == *" $name "* ]] || { log "stopping $name (beyond the fleet's size)"; stop_engine "$name"; }
  done
  for name in "${ENGINES[@]}"; do
    if engine_ready "$name"; then log "$name already running"; else launch_engine "$name"; launched+=("$name"); fi
  done
  for name in "${launched[@]}"; do wait_for_engine "$name"; done
}

case ${1:-} in
  install) install_engines ;;
  start) start_engines ;;
  stop) mapfile -t extras < <(started_extras)
        stop_engines "${BASE_ENGINES[@]}" "${extras[@]}"
        unmount_stores ;;
  stop-extras) mapfile -t extras < <(started_extras)
               stop_engines "${extras[@]}" ;;
  fleet-engines) fleet_engines ;;
  status) mapfile -t extras < <(fleet_engines)
          for e in "${BASE_ENGINES[@]}" "${extras[@]}"; do
            if engine_ready "$e"; then echo "$e: $(docker -H "unix://$(socket_of "$e")" version -f '{{.Server.Version}}') on unix://$(socket_of "$e")"
            else echo "$e: down"; fi
          done ;;
  env) mapfile -t extras < <(fleet_engines)
       for e in "${BASE_ENGINES[@]}" "${extras[@]}"; do
         var=${e//-/_}
         echo "AIRGAP_${var^^}_HOST=unix://$(socket_of "$e")"
       done ;;
  *) echo "usage: $0 install|start|stop|status|env|fleet-engines|stop-extras" >&2; exit 2 ;;
esac
