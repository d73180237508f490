#!/usr/bin/env bash
# A simulated fleet of managed hosts on this one machine, for tests that move images between
# hosts over SSH. Each host is a real OpenSSH server on its own loopback address (port 2222,
# so a system sshd on port 22 never collides) running in its own mount namespace, in which
#
#   /run                    is a private tmpfs (so nothing of the machine's /run leaks in),
#   /run/docker.sock        is the host's own engine (the default DOCKER_HOST reaches it),
#   /var/tmp/airgap.docker  is the host's own staging directory, $ROOT/fleet/<host>/staging.
#
# Everything else (the managed venv under $ROOT, /usr, /root, /tmp) is the machine's.
#
#   host             address     engine (engines.sh)
#   src              127.0.0.11  source             Docker 20.10, classic store
#   tgt-classic      127.0.0.12  fleet-classic      Docker 20.10, classic store
#   tgt-modern       127.0.0.13  fleet-modern       Docker 26.1, containerd store
#   unreachable      127.0.0.14  none: nothing ever listens there
#   tgt-containerd2  127.0.0.15  fleet-containerd2  Docker 28.5, containerd 2.1 store
#
# Every host accepts the fleet key for root and for the unprivileged user airgap-op, who may
# sudo to root without a password.
#
# Usage: fleet.sh start | stop | status | inventory
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=${AIRGAP_ENGINES_ROOT:-/var/tmp/airgap-engines}
FLEET=$ROOT/fleet
KEY=$FLEET/id_ed25519
PORT=2222
STAGING_MOUNT=/var/tmp/airgap.docker
UNREACHABLE=127.0.0.14
HOSTS=("src 127.0.0.11 source" "tgt-classic 127.0.0.12 fleet-classic" "tgt-modern 127.0.0.13 fleet-modern"
  "tgt-containerd2 127.0.0.15 fleet-containerd2")
SSH_OPTS=(-i "$KEY" -p "$PORT" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=3 -o LogLevel=ERROR)

log() { printf 'fleet: %s\n' "$*" >&2; }

install_openssh() {
  local missing=() pkg
  for pkg in openssh-server openssh-client sudo; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# An unprivileged operator account (the same on every host, since they share /etc) that logs in
# with the fleet key and becomes root with sudo: the way most fleets are run, and the case where
# files must be transferred as the login user while modules run as root.
OPERATOR=airgap-op
ensure_operator() {
  id -u "$OPERATOR" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$OPERATOR"
  # No password, but not locked: without PAM, sshd refuses even key logins to a locked ('!') account.
  usermod -p '*' "$OPERATOR"
  printf '%s ALL=(ALL) NOPASSWD: ALL\n' "$OPERATOR" >/etc/sudoers.d/airgap-fleet
  chmod 0440 /etc/sudoers.d/airgap-fleet
}

# One controller key for every host; each host its own host key, as real machines have.
make_keys() {
  local name
  mkdir -p "$FLEET"
  [ -f "$KEY" ] || ssh-keygen -q -t ed25519 -N '' -C airgap-fleet -f "$KEY"
  [ -f "$FLEET/authorized_keys" ] || cp "$KEY.pub" "$FLEET/authorized_keys"
  for name in "${HOSTS[@]%% *}"; do
    mkdir -p "$FLEET/$name/staging"
    [ -f "$FLEET/$name/host_ed25519_key" ] ||
      ssh-keygen -q -t ed25519 -N '' -C "$name" -f "$FLEET/$name/host_ed25519_key"
  done
}

write_sshd_config() {
  local name=$1 address=$2 dir=$FLEET/$1
  cat >"$dir/sshd_config" <<EOF
ListenAddress $address:$PORT
HostKey $dir/host_ed25519_key
PidFile $dir/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AuthorizedKeysFile $FLEET/authorized_keys
# authorized_keys lives under /var/tmp, which is world-writable: StrictModes would refuse it.
StrictModes no
# Ansible copies modules with sftp; internal-sftp needs no helper binary.
Subsystem sftp internal-sftp
# Ansible's forks and ControlMaster multiplexing open many sessions at once.
MaxSessions 100
MaxStartups 100
PrintMotd no
PrintLastLog no
X11Forwarding no
UseDNS no
LogLevel ERROR
EOF
}

# The pid of the host's sshd if it is running; a stale pidfile (sshd gone, or the pid reused
# by another program) counts as not running.
running_pid() {
  local pidfile=$FLEET/$1/sshd.pid pid
  [ -f "$pidfile" ] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  grep -qF "$FLEET/$1/sshd_config" "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

engine_socket() { printf '%s/run/%s.sock' "$ROOT" "$1"; }

# The bind mount pins the socket's inode: after an engine restart (a new socket file) the
# host's /run/docker.sock is dead, so such a host must be restarted. /proc/<pid>/root shows
# the path as the host's namespace sees it.
sees_engine() {
  local pid=$1 engine=$2
  [ "$(stat -L -c %d:%i "/proc/$pid/root/run/docker.sock" 2>/dev/null)" = \
    "$(stat -L -c %d:%i "$(engine_socket "$engine")")" ]
}

# Runs in the new mount namespace, as root, just before exec'ing sshd. Only /run and the
# staging directory differ from the machine. /run/sshd is sshd's privilege separation
# chroot; /run/lock and /run/shm are there as on any Debian machine. Nothing else under /run
# is needed: pty logins are recorded in /run/utmp only if it exists (the machine has none).
# The bind-mounted socket, not a symlink, so that the host sees a socket as a real one does.
# shellcheck disable=SC2016  # expanded by the inner shell
HOST_SETUP='
  mount -t tmpfs -o mode=0755,size=16m airgap-fleet-run /run
  mkdir -m 0755 /run/sshd && mkdir -m 1777 /run/lock && ln -s /dev/shm /run/shm
  touch /run/docker.sock && mount --bind "$1" /run/docker.sock
  mount --bind "$2" "$3"
  shift 3
  exec "$@"'

launch_sshd() {
  local name=$1 engine=$2 dir=$FLEET/$1
  rm -f "$dir/sshd.pid"
  : >"$dir/sshd.log"  # the log of this start only, for the failure message
  # setsid: the sshd outlives this script and its terminal; env -i: nothing of the caller's
  # environment (DOCKER_HOST, proxies) reaches the host.
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin setsid \
    unshare --mount --propagation private \
    sh -ec "$HOST_SETUP" host-setup "$(engine_socket "$engine")" "$dir/staging" "$STAGING_MOUNT" \
    /usr/sbin/sshd -D -f "$dir/sshd_config" -E "$dir/sshd.log" \
    >"$dir/launch.log" 2>&1 </dev/null &
}

# timeout: a login to a listener that accepts but never answers must not hang `start`.
login_works() { timeout 10 ssh "${SSH_OPTS[@]}" "root@$1" true </dev/null >/dev/null 2>&1; }

# The launched process (setsid, unshare and sh exec into sshd) is alive and not a zombie.
# Its state, not its command line: right after the fork it may still be this script's copy.
launched_alive() {
  local state
  state=$(sed -n 's/^[0-9]* (.*) \([A-Z]\).*/\1/p' "/proc/$2/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

wait_for_login() {
  local name=$1 address=$2 launched=$3
  for _ in $(seq 1 40); do
    login_works "$address" && return 0
    launched_alive "$name" "$launched" || break
    sleep 0.25
  done
  log "$name ($address:$PORT) does not accept an ssh login; its namespace set-up and sshd logs follow"
  tail -n 40 "$FLEET/$name/launch.log" "$FLEET/$name/sshd.log" >&2 || true
  return 1
}

start_host() {
  local name=$1 address=$2 engine=$3 pid
  write_sshd_config "$name" "$address"
  if pid=$(running_pid "$name"); then
    sees_engine "$pid" "$engine" && { log "$name already running"; return 0; }
    log "$name: its engine ($engine) was restarted since; restarting $name"
    stop_host "$name"
  fi
  log "starting $name on $address:$PORT (engine $engine)"
  launch_sshd "$name" "$engine"
  wait_for_login "$name" "$address" $!
}

# Stops the sshd and every process left in its mount namespace (sessions of ControlPersist
# masters outlive the listener and would keep the old namespace alive).
stop_host() {
  local pid ns others=()
  pid=$(running_pid "$1") || { rm -f "$FLEET/$1/sshd.pid"; return 0; }
  ns=$(stat -L -c %i "/proc/$pid/ns/mnt")
  # Never sweep the machine's own namespace (an sshd started some other way).
  [ "$ns" = "$(stat -L -c %i /proc/self/ns/mnt)" ] || mapfile -t others < <(pids_in_namespace "$ns")
  kill "$pid" "${others[@]}" 2>/dev/null || true
  # running_pid, not kill -0: a killed sshd stays a zombie until init reaps it, which
  # here takes a while; a zombie has an empty cmdline.
  for _ in $(seq 1 40); do running_pid "$1" >/dev/null || break; sleep 0.1; done
  rm -f "$FLEET/$1/sshd.pid"
}

pids_in_namespace() {
  stat -L -c '%i %n' /proc/[0-9]*/ns/mnt 2>/dev/null | awk -v ns="$1" '$1 == ns { split($2, p, "/"); print p[3] }' || true
}

start() {
  install_openssh
  "$HERE/engines.sh" start
  make_keys
  ensure_operator
  mkdir -p "$STAGING_MOUNT"  # the mountpoint: stays empty in the machine's own namespace
  local host
  for host in "${HOSTS[@]}"; do
    # shellcheck disable=SC2086  # "name address engine"
    start_host $host
  done
}

status() {
  local host name address engine
  for host in "${HOSTS[@]}"; do
    read -r name address engine <<<"$host"
    if running_pid "$name" >/dev/null && login_works "$address"; then
      echo "$name: up on $address:$PORT (engine $engine)"
    else
      echo "$name: down"
    fi
  done
}

inventory_host() {
  local name=$1 address=$2 engine=$3
  cat <<EOF
$name:
  ansible_host: $address
  ansible_port: $PORT
  ansible_user: root
  ansible_ssh_private_key_file: $KEY
  ansible_ssh_common_args: '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ControlMaster=auto -o ControlPersist=60s'
  ansible_python_interpreter: $ROOT/managed-venv/bin/python
  fleet_engine: $engine
EOF
}

# YAML on stdout: group `fleet` with the three hosts; `unreachable` only in `all`.
inventory() {
  local host
  echo "all:"
  echo "  hosts:"
  inventory_host unreachable "$UNREACHABLE" null | sed 's/^/    /'
  echo "  children:"
  echo "    fleet:"
  echo "      hosts:"
  for host in "${HOSTS[@]}"; do
    # shellcheck disable=SC2086  # "name address engine"
    inventory_host $host | sed 's/^/        /'
  done
}

case ${1:-} in
  start) start ;;
  stop) for host in "${HOSTS[@]}"; do stop_host "${host%% *}"; done ;;
  status) status ;;
  inventory) inventory ;;
  *) echo "usage: $0 start|stop|status|inventory" >&2; exit 2 ;;
esac
