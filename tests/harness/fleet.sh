#!/usr/bin/env bash
# A simulated fleet of managed hosts on this one machine, for tests that move images between
# hosts over SSH. Each host is a real OpenSSH server in a network namespace of its own, on a
# real, shaped network link:
#
#   controller (this machine's own namespace, where ansible-playbook and pytest run)
#       airgap0 198.18.77.1/24 ── veth ── port1 ┐
#                                               │ bridge br0 in namespace airgap-switch
#   host src:  eth0 198.18.77.11/24 ── veth ── port11 ┤
#   host tgt-classic:  eth0 198.18.77.12/24 ── port12 ┤   ... one port per host
#   host unreachable:  eth0 198.18.77.10/24 ── port10 ┘
#
# 198.18.77.0/24 is in the RFC 2544 benchmarking range. The machine's own namespace has one
# route there (through airgap0) and the hosts have no other route at all: nothing is ever sent
# anywhere else. The bridge lives in a namespace of its own, so that nothing of the machine's
# namespace (its firewall, br_netfilter, a Docker FORWARD DROP policy) sees the bridged traffic.
#
# Every link is shaped on both ends' egress (the host's end: its upload; the switch's end: its
# download) by a token bucket (tbf) of AIRGAP_FLEET_RATE (default 100mbit; a 100 Mbit/s link
# carries about 96 Mbit/s of TCP payload), plus AIRGAP_FLEET_DELAY of latency (netem, e.g. 5ms;
# default none) on each end, so one way between two machines crosses two links: 2 x the delay.
# The controller's link is shaped the same way.
#
# Each host's sshd runs in the host's network namespace and in a mount namespace of its own, in which
#
#   /run                    is a private tmpfs (so nothing of the machine's /run leaks in),
#   /run/docker.sock        is the host's own engine (the default DOCKER_HOST reaches it),
#   /var/tmp/airgap.docker  is the host's own staging directory, $ROOT/fleet/<host>/staging,
#   /sys                    shows the host's own network interfaces.
#
# Everything else (the managed venv under $ROOT, /usr, /root, /tmp) is the machine's.
#
#   host             address       namespace               engine (engines.sh)
#   src              198.18.77.11  airgap-src              source             Docker 20.10, classic store
#   tgt-classic      198.18.77.12  airgap-tgt-classic      fleet-classic      Docker 20.10, classic store
#   tgt-modern       198.18.77.13  airgap-tgt-modern       fleet-modern       Docker 26.1, containerd store
#   tgt-containerd2  198.18.77.14  airgap-tgt-containerd2  fleet-containerd2  Docker 28.5, containerd 2.1 store
#   tgt-05, tgt-06   198.18.77.15  airgap-tgt-05           fleet-classic-05, fleet-modern-06,
#   ...              ...                                   fleet-containerd2-07, ... in turn
#   unreachable      198.18.77.10  airgap-unreachable      none: nothing listens, a connection is refused
#
# AIRGAP_FLEET_SIZE hosts (default 4: src and the three targets above; more adds tgt-05, ...).
# `start` records the size, rate and delay it used; later commands use the recorded ones
# unless the variables are set, and `stop` forgets them. Every host accepts the fleet key for
# root and for the unprivileged user airgap-op, who may sudo to root without a password; sshd
# listens on port 22 of the host's address.
#
# Usage: fleet.sh start | stop | status | inventory
#        fleet.sh shape NAME [RATE [DELAY]]  reshape both ends of NAME's link (NAME: a host,
#                                            unreachable or controller); no RATE: the configured one
#        fleet.sh fault down NAME | up NAME  NAME's link down (switch port down: nobody reaches
#                                            NAME, the controller included) or up again
#        fleet.sh fault block A B            A and B cannot reach each other: every packet between
#                                            them dropped, both ways, by rules in A's namespace
#                                            (B's if A is the controller)
#        fleet.sh fault unblock A B          undo `block A B` (or `block B A`)
#        fleet.sh fault cut-after HOST BYTES [PEER]
#                                            once HOST has sent BYTES bytes (IP packets, headers
#                                            and retransmissions counted; to PEER's address only
#                                            if given), everything further it sends (to PEER) is
#                                            dropped: a link lost in the middle of a transfer
#        fleet.sh fault clear [NAME]         undo every fault and shape of NAME (of all if none)
#
# `stop` undoes every fault as it tears the fleet down; `start` leaves faults in place (it
# warns of them) but restores any link it finds torn down, and applies the configured shaping.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=${AIRGAP_ENGINES_ROOT:-/var/tmp/airgap-engines}
FLEET=$ROOT/fleet
KEY=$FLEET/id_ed25519
PORT=22
STAGING_MOUNT=/var/tmp/airgap.docker
NET=198.18.77            # the fleet's subnet, $NET.0/24
CONTROLLER_ADDRESS=$NET.1
UNREACHABLE_ADDRESS=$NET.10
SWITCH=airgap-switch     # the namespace of the bridge
BRIDGE=br0
UPLINK=airgap0           # the controller's end of its link, in the machine's own namespace
BASE_HOSTS=("src source" "tgt-classic fleet-classic" "tgt-modern fleet-modern" "tgt-containerd2 fleet-containerd2")
SSH_OPTS=(-i "$KEY" -p "$PORT" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=3 -o LogLevel=ERROR)

log() { printf 'fleet: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# The configuration: the variable if set, else what `start` recorded, else the default.
recorded() { sed -n "s/^$1=//p" "$FLEET/config" 2>/dev/null || true; }
SIZE=${AIRGAP_FLEET_SIZE:-$(recorded size)}
SIZE=${SIZE:-4}
RATE=${AIRGAP_FLEET_RATE:-$(recorded rate)}
RATE=${RATE:-100mbit}
DELAY=${AIRGAP_FLEET_DELAY-$(recorded delay)}  # set and empty: no delay

valid_rate() { [[ ${1,,} =~ ^[0-9]+(\.[0-9]+)?(bit|kbit|mbit|gbit)$ ]]; }
valid_delay() { [ -z "$1" ] || [[ $1 =~ ^[0-9]+(\.[0-9]+)?(us|ms|s)$ ]]; }
check_config() {
  if ! [[ $SIZE =~ ^[1-9][0-9]*$ ]] || ((SIZE > 200)); then die "AIRGAP_FLEET_SIZE must be 1 to 200, not '$SIZE'"; fi
  valid_rate "$RATE" || die "AIRGAP_FLEET_RATE must be a number and bit, kbit, mbit or gbit (100mbit), not '$RATE'"
  valid_delay "$DELAY" || die "AIRGAP_FLEET_DELAY must be a number and us, ms or s (5ms), not '$DELAY'"
}

# "name address engine" of each host of the configured size: the four base hosts, then tgt-05, ...
# whose engines engines.sh names.
HOSTS=()
load_hosts() {
  local entry engine i=0 extras
  for entry in "${BASE_HOSTS[@]}"; do
    ((i < SIZE)) || break
    i=$((i + 1))
    HOSTS+=("${entry%% *} $NET.$((10 + i)) ${entry#* }")
  done
  extras=$(AIRGAP_FLEET_SIZE=$SIZE "$HERE/engines.sh" fleet-engines)
  for engine in $extras; do
    i=$((i + 1))
    HOSTS+=("$(printf 'tgt-%02d' "$i") $NET.$((10 + i)) $engine")
  done
}

host_entry() {
  local host
  for host in "${HOSTS[@]}"; do
    [ "${host%% *}" = "$1" ] && { echo "$host"; return 0; }
  done
  return 1
}

# Any link owner: a host, unreachable or controller.
address_of() {
  local entry
  case $1 in
    controller) echo "$CONTROLLER_ADDRESS" ;;
    unreachable) echo "$UNREACHABLE_ADDRESS" ;;
    *) entry=$(host_entry "$1") || die "'$1' is not a fleet host (nor unreachable, nor controller)"
       read -r _ address _ <<<"$entry"; echo "$address" ;;
  esac
}
ns_of() { printf 'airgap-%s' "$1"; }
port_of() { printf 'port%s' "${1##*.}"; }  # the switch's end of the link of an address
# The MAC address of an address's link (02:...: locally administered), the same each time the
# link is made: a link put back by `start` is not a new machine to its peers' ARP caches.
mac_of() { printf '02:00:c6:12:4d:%02x' "${1##*.}"; }

# --- Packages, keys, the operator account ------------------------------------------------

install_packages() {
  local missing=() pkg
  for pkg in openssh-server openssh-client sudo iproute2 iptables util-linux; do
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
  local host name
  mkdir -p "$FLEET"
  [ -f "$KEY" ] || ssh-keygen -q -t ed25519 -N '' -C airgap-fleet -f "$KEY"
  [ -f "$FLEET/authorized_keys" ] || cp "$KEY.pub" "$FLEET/authorized_keys"
  for host in "${HOSTS[@]}"; do
    name=${host%% *}
    mkdir -p "$FLEET/$name/staging"
    [ -f "$FLEET/$name/host_ed25519_key" ] ||
      ssh-keygen -q -t ed25519 -N '' -C "$name" -f "$FLEET/$name/host_ed25519_key"
  done
}

# --- Namespaces, links, shaping ----------------------------------------------------------

in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" "$@"; }
ns_alive() { [ -e "/run/netns/$1" ] && nsenter --net="/run/netns/$1" true 2>/dev/null; }
ns_inode() { stat -L -c %i "/run/netns/$1"; }
ROOT_NET=$(stat -L -c %i /proc/self/ns/net)
ROOT_MNT=$(stat -L -c %i /proc/self/ns/mnt)

# Pids of the processes in a namespace: kind (net, mnt) and inode.
pids_in_namespace() {
  stat -L -c '%i %n' /proc/[0-9]*/ns/"$1" 2>/dev/null | awk -v ns="$2" '$1 == ns { split($2, p, "/"); print p[3] }' || true
}

ensure_ns() {
  local ns=$1
  ns_alive "$ns" && return 0
  ip netns del "$ns" 2>/dev/null || true
  ip netns add "$ns"
  # IPv4 only: no link-local addresses, router solicitations or MLD reports on the links.
  in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
  ip -n "$ns" link set lo up
}

# Kills what runs in the namespace (never the machine's own), then deletes it with its link.
delete_ns() {
  local ns=$1 inode pids=()
  if ns_alive "$ns"; then
    inode=$(ns_inode "$ns")
    if [ "$inode" != "$ROOT_NET" ]; then
      mapfile -t pids < <(pids_in_namespace net "$inode")
      ((${#pids[@]} == 0)) || kill "${pids[@]}" 2>/dev/null || true
    fi
    ip -n "$ns" link del eth0 2>/dev/null || true
  fi
  ip netns del "$ns" 2>/dev/null || true
}

ensure_switch() {
  ensure_ns "$SWITCH"
  ip -n "$SWITCH" link show "$BRIDGE" >/dev/null 2>&1 || ip -n "$SWITCH" link add "$BRIDGE" type bridge
  # Bridged frames skip even this namespace's (empty) firewall.
  in_ns "$SWITCH" sysctl -qw net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-arptables=0 2>/dev/null || true
  is_up "$SWITCH" "$BRIDGE" || ip -n "$SWITCH" link set "$BRIDGE" up
}

is_up() { ip -n "$1" -o link show "$2" 2>/dev/null | grep -q '[<,]UP[,>]'; }
has_link() { ip -n "$1" link show "$2" >/dev/null 2>&1; }

# The switch's end of a link: in the bridge, and up unless a `fault down` holds it down (or
# created just now: $2).
attach_port() {
  local port=$1 created=$2 name=$3
  ip -n "$SWITCH" -o link show "$port" | grep -q " master $BRIDGE " || ip -n "$SWITCH" link set "$port" master "$BRIDGE"
  if ! is_up "$SWITCH" "$port"; then
    if [ -z "$created" ] && [ -e "$FLEET/faults/down-$name" ]; then
      log "$name: its link is down (fault down; fleet.sh fault up $name)"
    else
      ip -n "$SWITCH" link set "$port" up
    fi
  fi
}

# A host's (or unreachable's) namespace and link: eth0 with its address, port<n> in the switch.
ensure_host_link() {
  local name=$1 address=$2 ns port created=''
  ns=$(ns_of "$name")
  port=$(port_of "$address")
  ensure_ns "$ns"
  if ! has_link "$ns" eth0; then
    ip -n "$SWITCH" link del "$port" 2>/dev/null || true  # the end of a link whose host end is gone
    ip link add eth0 address "$(mac_of "$address")" netns "$ns" type veth peer name "$port" netns "$SWITCH"
    # One segment per packet (no GSO): `fault cut-after` then counts and cuts per packet.
    ip -n "$ns" link set eth0 gso_max_segs 1
    created=1
  fi
  ip -n "$ns" -4 -o addr show dev eth0 | grep -q " $address/24 " || ip -n "$ns" addr add "$address/24" dev eth0
  is_up "$ns" eth0 || ip -n "$ns" link set eth0 up
  attach_port "$port" "$created" "$name"
  ensure_shaped "$ns" eth0
  ensure_shaped "$SWITCH" "$port"
}

# The controller's link: airgap0 in the machine's own namespace, port1 in the switch.
ensure_uplink() {
  local port created='' others
  port=$(port_of "$CONTROLLER_ADDRESS")
  if ip link show "$UPLINK" >/dev/null 2>&1; then
    ip -d link show "$UPLINK" | grep -qw veth || die "$UPLINK exists and is not this fleet's link; leaving it alone"
  else
    others=$(ip -4 -o addr show | awk -v net="$NET." 'index($4, net) == 1 { print $2 }')
    [ -z "$others" ] || die "$NET.0/24 is in use on this machine ($others); the fleet needs it"
    ip -n "$SWITCH" link del "$port" 2>/dev/null || true
    ip link add "$UPLINK" address "$(mac_of "$CONTROLLER_ADDRESS")" type veth peer name "$port" netns "$SWITCH"
    sysctl -qw "net.ipv6.conf.$UPLINK.disable_ipv6=1" 2>/dev/null || true
    created=1
  fi
  ip -4 -o addr show dev "$UPLINK" | grep -q " $CONTROLLER_ADDRESS/24 " || ip addr add "$CONTROLLER_ADDRESS/24" dev "$UPLINK"
  ip -o link show "$UPLINK" | grep -q '[<,]UP[,>]' || ip link set "$UPLINK" up
  attach_port "$port" "$created" controller
  ensure_shaped - "$UPLINK"
  ensure_shaped "$SWITCH" "$port"
}

# Every address of the fleet is reached through airgap0, nothing else (a VPN's more specific route...).
check_routing() {
  local route
  route=$(ip -4 route get "$NET.11" 2>&1) || true
  [[ $route == *" dev $UPLINK "* ]] || die "this machine routes $NET.11 elsewhere than $UPLINK: $route"
}

tc_in() { local ns=$1; shift; if [ "$ns" = - ]; then tc "$@"; else tc -n "$ns" "$@"; fi; }

# tbf's bucket: 4 ms of the rate, at least 16 KB (several full-size packets).
burst_of() {
  local rate=${1,,}
  awk -v n="${rate%%[a-z]*}" -v unit="${rate##*[0-9.]}" 'BEGIN {
    m = (unit == "gbit") ? 1e9 : (unit == "mbit") ? 1e6 : (unit == "kbit") ? 1e3 : 1
    b = int(n * m / 8 * 0.004); if (b < 16384) b = 16384; print b }'
}

# Shape one end of a link (the machine's own namespace: ns -): tbf, behind netem if a delay.
shape_end() {
  local ns=$1 dev=$2 rate=$3 delay=$4 burst
  burst=$(burst_of "$rate")
  tc_in "$ns" qdisc del dev "$dev" root 2>/dev/null || true
  if [ -n "$delay" ]; then
    tc_in "$ns" qdisc add dev "$dev" root handle 1: netem delay "$delay" limit 100000 ||
      die "cannot add a delay (netem) on $dev: this kernel may lack sch_netem; run without AIRGAP_FLEET_DELAY"
    tc_in "$ns" qdisc add dev "$dev" parent 1:1 handle 10: tbf rate "$rate" burst "$burst" latency 50ms
  else
    tc_in "$ns" qdisc add dev "$dev" root handle 1: tbf rate "$rate" burst "$burst" latency 50ms
  fi
  mkdir -p "$FLEET/links"
  echo "$rate $delay" >"$FLEET/links/$ns.$dev"
}

# Shaped as configured already (the record of the last shaping, and the qdisc still there)?
ensure_shaped() {
  local ns=$1 dev=$2 kind=tbf
  [ -z "$DELAY" ] || kind=netem
  if [ "$(cat "$FLEET/links/$ns.$dev" 2>/dev/null)" = "$RATE $DELAY" ] &&
    tc_in "$ns" qdisc show dev "$dev" | head -n 1 | grep -q "^qdisc $kind 1: root"; then
    return 0
  fi
  shape_end "$ns" "$dev" "$RATE" "$DELAY"
}

# Both ends of a link owner's link: "ns dev" lines.
link_ends() {
  local address
  address=$(address_of "$1")
  if [ "$1" = controller ]; then echo "- $UPLINK"; else echo "$(ns_of "$1") eth0"; fi
  echo "$SWITCH $(port_of "$address")"
}

shape() {
  local name=${1:-} rate=${2:-$RATE} delay=${3-$DELAY} ns dev
  [ -n "$name" ] || usage
  address_of "$name" >/dev/null  # a known name: link_ends below runs in a subshell
  valid_rate "$rate" || die "a rate is a number and bit, kbit, mbit or gbit (40mbit), not '$rate'"
  valid_delay "$delay" || die "a delay is a number and us, ms or s (5ms), not '$delay'"
  while read -r ns dev; do
    [ "$ns" = - ] || ns_alive "$ns" || die "$1 is not running (fleet.sh start)"
    shape_end "$ns" "$dev" "$rate" "$delay"
  done < <(link_ends "$name")
}

# --- sshd per host -----------------------------------------------------------------------

# Writes the host's sshd_config; true if it changed (a running sshd must then restart).
write_sshd_config() {
  local name=$1 address=$2 dir=$FLEET/$1 new
  new=$(cat <<EOF
ListenAddress $address:$PORT
AddressFamily inet
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
)
  [ "$(cat "$dir/sshd_config" 2>/dev/null)" != "$new" ] || return 1
  printf '%s\n' "$new" >"$dir/sshd_config"
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

# The sshd runs in the host's (current) network namespace, not in an earlier one or the machine's.
in_host_ns() { [ "$(stat -L -c %i "/proc/$1/ns/net" 2>/dev/null)" = "$(ns_inode "$2")" ]; }

# Runs in the new mount namespace, as root, just before exec'ing sshd. Only /run, /sys and the
# staging directory differ from the machine. /run/sshd is sshd's privilege separation
# chroot; /run/lock and /run/shm are there as on any Debian machine. Nothing else under /run
# is needed: pty logins are recorded in /run/utmp only if it exists (the machine has none).
# The bind-mounted socket, not a symlink, so that the host sees a socket as a real one does.
# A sysfs mounted in the host's network namespace lists the host's interfaces.
# shellcheck disable=SC2016  # expanded by the inner shell
HOST_SETUP='
  mount -t tmpfs -o mode=0755,size=16m airgap-fleet-run /run
  mkdir -m 0755 /run/sshd && mkdir -m 1777 /run/lock && ln -s /dev/shm /run/shm
  touch /run/docker.sock && mount --bind "$1" /run/docker.sock
  mount --bind "$2" "$3"
  mount -t sysfs airgap-fleet-sys /sys
  shift 3
  exec "$@"'

launch_sshd() {
  local name=$1 engine=$2 dir=$FLEET/$1
  rm -f "$dir/sshd.pid"
  : >"$dir/sshd.log"  # the log of this start only, for the failure message
  # setsid: the sshd outlives this script and its terminal; env -i: nothing of the caller's
  # environment (DOCKER_HOST, proxies) reaches the host.
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin setsid \
    nsenter --net="/run/netns/$(ns_of "$name")" \
    unshare --mount --propagation private \
    sh -ec "$HOST_SETUP" host-setup "$(engine_socket "$engine")" "$dir/staging" "$STAGING_MOUNT" \
    /usr/sbin/sshd -D -f "$dir/sshd_config" -E "$dir/sshd.log" \
    >"$dir/launch.log" 2>&1 </dev/null 9>&- &
}

# timeout: a login to a listener that accepts but never answers must not hang `start`.
login_works() { timeout 10 ssh "${SSH_OPTS[@]}" "root@$1" true </dev/null >/dev/null 2>&1; }

# The launched process (setsid, nsenter, unshare and sh exec into sshd) is alive and not a
# zombie. Its state, not its command line: right after the fork it may still be this script's copy.
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

# A fault that keeps the controller from logging in to the host: its link or the
# controller's down, or fault rules in its namespace.
has_faults() {
  local ns
  ns=$(ns_of "$1")
  [ -e "$FLEET/faults/down-$1" ] || [ -e "$FLEET/faults/down-controller" ] ||
    in_ns "$ns" iptables -w -S 2>/dev/null | grep -q '^-A AIRGAP-\(IN\|OUT\) '
}

# The hosts whose running sshd accepts a login, tried side by side (a login takes up to a
# second on a busy machine): start_host then need not try them one by one.
declare -A LOGIN_OK=()
try_logins() {
  local host name address pids=() names=() i
  for host in "${HOSTS[@]}"; do
    read -r name address _ <<<"$host"
    running_pid "$name" >/dev/null || continue
    login_works "$address" &
    pids+=($!)
    names+=("$name")
  done
  for i in "${!pids[@]}"; do
    if wait "${pids[i]}"; then LOGIN_OK[${names[i]}]=1; fi
  done
}

start_host() {
  local name=$1 address=$2 engine=$3 ns pid changed=
  ns=$(ns_of "$name")
  write_sshd_config "$name" "$address" && changed=1
  if pid=$(running_pid "$name"); then
    if ! in_host_ns "$pid" "$ns"; then
      log "$name: its sshd is not in namespace $ns (an earlier fleet's); restarting $name"
    elif ! sees_engine "$pid" "$engine"; then
      log "$name: its engine ($engine) was restarted since; restarting $name"
    elif [ -n "$changed" ]; then
      log "$name: its sshd configuration changed; restarting $name"
    elif has_faults "$name"; then
      log "$name already running, with faults (fleet.sh status; fleet.sh fault clear $name)"
      return 0
    elif [ -n "${LOGIN_OK[$name]:-}" ] || login_works "$address" || { sleep 1 && login_works "$address"; }; then
      log "$name already running"
      return 0
    else
      log "$name: its sshd refuses a login; restarting $name"
    fi
    stop_host "$name"
  fi
  log "starting $name on $address:$PORT in namespace $ns (engine $engine)"
  launch_sshd "$name" "$engine"
  wait_for_login "$name" "$address" $!
}

# Stops the sshd and every process left in its mount and network namespaces (sessions of
# ControlPersist masters outlive the listener and would keep the old namespace alive).
stop_host() {
  local pid mnt net others=()
  pid=$(running_pid "$1") || { rm -f "$FLEET/$1/sshd.pid"; return 0; }
  mnt=$(stat -L -c %i "/proc/$pid/ns/mnt")
  net=$(stat -L -c %i "/proc/$pid/ns/net")
  # Never sweep the machine's own namespaces (an sshd of the earlier fleet ran in its network one).
  [ "$mnt" = "$ROOT_MNT" ] || mapfile -t -O "${#others[@]}" others < <(pids_in_namespace mnt "$mnt")
  [ "$net" = "$ROOT_NET" ] || mapfile -t -O "${#others[@]}" others < <(pids_in_namespace net "$net")
  kill "$pid" "${others[@]}" 2>/dev/null || true
  # running_pid, not kill -0: a killed sshd stays a zombie until init reaps it, which
  # here takes a while; a zombie has an empty cmdline.
  for _ in $(seq 1 40); do running_pid "$1" >/dev/null || break; sleep 0.1; done
  rm -f "$FLEET/$1/sshd.pid"
}

# --- Faults ------------------------------------------------------------------------------

# The fault rules of a namespace live in chains of their own, AIRGAP-IN and AIRGAP-OUT.
ensure_fault_chains() {
  local ns=$1 chain hook
  for hook in INPUT OUTPUT; do
    chain=AIRGAP-IN
    [ "$hook" = INPUT ] || chain=AIRGAP-OUT
    in_ns "$ns" iptables -w -n -L "$chain" >/dev/null 2>&1 || in_ns "$ns" iptables -w -N "$chain"
    in_ns "$ns" iptables -w -C "$hook" -j "$chain" 2>/dev/null || in_ns "$ns" iptables -w -I "$hook" 1 -j "$chain"
  done
}

host_ns() {  # call it in an assignment: it dies in a subshell
  local ns
  [ "$1" != controller ] || die "no fault rules in the controller's (this machine's) namespace"
  ns=$(ns_of "$1")
  ns_alive "$ns" || die "$1 is not running (fleet.sh start)"
  echo "$ns"
}

# Delete a rule as often as it is there.
delete_rule() {
  local ns=$1; shift
  while in_ns "$ns" iptables -w -D "$@" 2>/dev/null; do :; done
}

block_rules() {  # ns peer-address add|delete
  local ns=$1 peer=$2
  if [ "$3" = add ]; then
    ensure_fault_chains "$ns"
    in_ns "$ns" iptables -w -C AIRGAP-OUT -d "$peer/32" -m comment --comment block -j DROP 2>/dev/null ||
      in_ns "$ns" iptables -w -A AIRGAP-OUT -d "$peer/32" -m comment --comment block -j DROP
    in_ns "$ns" iptables -w -C AIRGAP-IN -s "$peer/32" -m comment --comment block -j DROP 2>/dev/null ||
      in_ns "$ns" iptables -w -A AIRGAP-IN -s "$peer/32" -m comment --comment block -j DROP
  else
    delete_rule "$ns" AIRGAP-OUT -d "$peer/32" -m comment --comment block -j DROP
    delete_rule "$ns" AIRGAP-IN -s "$peer/32" -m comment --comment block -j DROP
  fi
}

set_link() {  # name up|down
  local address port
  address=$(address_of "$1")
  port=$(port_of "$address")
  has_link "$SWITCH" "$port" || die "$1 has no link (fleet.sh start)"
  mkdir -p "$FLEET/faults"
  if [ "$2" = down ]; then touch "$FLEET/faults/down-$1"; else rm -f "$FLEET/faults/down-$1"; fi
  ip -n "$SWITCH" link set "$port" "$2"
}

clear_faults() {
  local name=$1 ns chain
  set_link "$name" up
  if [ "$name" != controller ]; then
    ns=$(ns_of "$name")
    for chain in AIRGAP-IN AIRGAP-OUT; do
      in_ns "$ns" iptables -w -F "$chain" 2>/dev/null || true
    done
  fi
  shape "$name"
}

fault() {
  local what=${1:-} a b ns peer bytes
  case $what in
    down | up)
      [ $# -eq 2 ] || usage
      set_link "$2" "$what" ;;
    block | unblock)
      [ $# -eq 3 ] || usage
      a=$2 b=$3
      [ "$a" != "$b" ] || die "a host cannot be blocked from itself"
      address_of "$a" >/dev/null
      address_of "$b" >/dev/null
      if [ "$what" = block ]; then
        [ "$a" != controller ] || { a=$3; b=$2; }
        ns=$(host_ns "$a")
        peer=$(address_of "$b")
        block_rules "$ns" "$peer" add
      else
        if [ "$a" != controller ]; then ns=$(host_ns "$a"); peer=$(address_of "$b"); block_rules "$ns" "$peer" delete; fi
        if [ "$b" != controller ]; then ns=$(host_ns "$b"); peer=$(address_of "$a"); block_rules "$ns" "$peer" delete; fi
      fi ;;
    cut-after)
      [ $# -eq 3 ] || [ $# -eq 4 ] || usage
      bytes=$3
      [[ $bytes =~ ^[0-9]+$ ]] || die "BYTES must be a number of bytes, not '$bytes'"
      address_of "$2" >/dev/null
      ns=$(host_ns "$2")
      ensure_fault_chains "$ns"
      # The quota, inverted: not matched (and counted down) while bytes remain, matched ever after.
      if [ $# -eq 4 ]; then
        address_of "$4" >/dev/null
        peer=$(address_of "$4")
        in_ns "$ns" iptables -w -A AIRGAP-OUT -d "$peer/32" -m quota ! --quota "$bytes" \
          -m comment --comment cut-after -j DROP
      else
        in_ns "$ns" iptables -w -A AIRGAP-OUT -m quota ! --quota "$bytes" -m comment --comment cut-after -j DROP
      fi ;;
    clear)
      [ $# -le 2 ] || usage
      if [ $# -eq 2 ]; then
        clear_faults "$2"
      else
        for a in controller unreachable "${HOSTS[@]%% *}"; do
          peer=$(address_of "$a")
          # Every link there is (a fleet half started has fewer).
          ! has_link "$SWITCH" "$(port_of "$peer")" || clear_faults "$a"
        done
        rm -rf "$FLEET/faults"
      fi ;;
    *) usage ;;
  esac
}

# --- start, stop, status, inventory ------------------------------------------------------

# Hosts of an earlier, larger fleet: their sshd, namespace and link go.
retire_other_hosts() {
  local config name ns wanted=" "
  for name in "${HOSTS[@]}"; do wanted+="${name%% *} "; done
  for config in "$FLEET"/*/sshd_config; do
    [ -e "$config" ] || continue
    name=$(basename "$(dirname "$config")")
    [[ $wanted == *" $name "* ]] && continue
    log "$name: beyond the fleet's size ($SIZE); stopping it"
    stop_host "$name"
    delete_ns "$(ns_of "$name")"
    rm -f "$FLEET/$name/sshd_config" "$FLEET/links/$(ns_of "$name").eth0"
  done
  for ns in $(fleet_namespaces); do
    name=${ns#airgap-}
    [[ $wanted == *" $name "* ]] || [ "$name" = switch ] || [ "$name" = unreachable ] || delete_ns "$ns"
  done
}

# This fleet's namespaces, whatever its size was.
fleet_namespaces() {
  ip netns list 2>/dev/null | awk '{ print $1 }' |
    grep -E '^airgap-(switch|unreachable|src|tgt-classic|tgt-modern|tgt-containerd2|tgt-[0-9]{2,3})$' || true
}

# One fleet.sh at a time changes the fleet. The lock's descriptor (9) must not reach what this
# script leaves running (dockerd, sshd): it would hold the lock for as long as it runs.
lock() {
  mkdir -p "$FLEET"
  exec 9>"$FLEET/.lock"
  flock -w 300 9 || die "another fleet.sh has held $FLEET/.lock for 5 minutes"
}

start() {
  local host config
  check_config
  install_packages
  lock
  config=$(printf 'size=%s\nrate=%s\ndelay=%s' "$SIZE" "$RATE" "$DELAY")
  [ "$(cat "$FLEET/config" 2>/dev/null)" = "$config" ] || printf '%s\n' "$config" >"$FLEET/config"
  AIRGAP_FLEET_SIZE=$SIZE "$HERE/engines.sh" start 9>&-
  load_hosts
  make_keys
  ensure_operator
  mkdir -p "$STAGING_MOUNT"  # the mountpoint: stays empty in the machine's own namespace
  retire_other_hosts
  ensure_switch
  ensure_uplink
  ensure_host_link unreachable "$UNREACHABLE_ADDRESS"
  for host in "${HOSTS[@]}"; do
    # shellcheck disable=SC2086  # "name address engine"
    ensure_host_link $host
  done
  check_routing
  try_logins
  for host in "${HOSTS[@]}"; do
    # shellcheck disable=SC2086  # "name address engine"
    start_host $host
  done
}

stop() {
  local config ns
  lock
  for config in "$FLEET"/*/sshd_config; do
    [ -e "$config" ] && stop_host "$(basename "$(dirname "$config")")"
  done
  for ns in $(fleet_namespaces); do
    [ "$ns" = "$SWITCH" ] || delete_ns "$ns"
  done
  if ip -d link show "$UPLINK" 2>/dev/null | grep -qw veth; then ip link del "$UPLINK"; fi
  delete_ns "$SWITCH"
  "$HERE/engines.sh" stop-extras 9>&-
  rm -rf "$FLEET/config" "$FLEET/links" "$FLEET/faults"
}

link_status() {  # ns dev: "100Mbit" or "down"
  local ns=$1 dev=$2 rate
  rate=$(tc_in "$ns" qdisc show dev "$dev" 2>/dev/null | grep -o ' rate [^ ]*' | head -n 1) || true
  printf '%s' "${rate# rate }"
  tc_in "$ns" qdisc show dev "$dev" 2>/dev/null | grep -o ' delay [^ ]*' | head -n 1 || true
}

status_line() {  # name address: link and fault state
  local name=$1 address=$2 ns port state
  port=$(port_of "$address")
  if [ "$name" = controller ]; then ns=-; else ns=$(ns_of "$name"); fi
  if [ "$ns" != - ] && ! ns_alive "$ns"; then echo "no namespace"; return 0; fi
  has_link "$SWITCH" "$port" 2>/dev/null || { echo "no link"; return 0; }
  if is_up "$SWITCH" "$port"; then state="link up"; else state="LINK DOWN"; fi
  printf '%s, up %s, down %s' "$state" "$(link_status "$ns" "$([ "$ns" = - ] && echo "$UPLINK" || echo eth0)" | tr -d '\n')" \
    "$(link_status "$SWITCH" "$port" | tr -d '\n')"
  if [ "$ns" != - ]; then
    in_ns "$ns" iptables -w -S 2>/dev/null | sed -n 's/^-A \(AIRGAP-[A-Z]*\) /; fault rule \1 /p' | tr -d '\n'
  fi
  echo
}

status() {
  local host name address engine
  load_hosts
  echo "size $SIZE, rate $RATE, delay ${DELAY:-none}"
  if ns_alive "$SWITCH"; then echo "switch: namespace $SWITCH, bridge $BRIDGE"; else echo "switch: down"; fi
  if ip link show "$UPLINK" >/dev/null 2>&1; then
    echo "controller: $CONTROLLER_ADDRESS on $UPLINK: $(status_line controller "$CONTROLLER_ADDRESS")"
  else
    echo "controller: no link"
  fi
  echo "unreachable: $UNREACHABLE_ADDRESS: $(status_line unreachable "$UNREACHABLE_ADDRESS")"
  for host in "${HOSTS[@]}"; do
    read -r name address engine <<<"$host"
    if running_pid "$name" >/dev/null && login_works "$address"; then
      echo "$name: up on $address:$PORT (namespace $(ns_of "$name"), engine $engine): $(status_line "$name" "$address")"
    else
      echo "$name: down (sshd does not answer on $address:$PORT): $(status_line "$name" "$address")"
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
  fleet_address: $address
  fleet_namespace: $(ns_of "$name")
EOF
}

# YAML on stdout: group `fleet` with the hosts; `unreachable` only in `all`.
inventory() {
  local host
  check_config
  load_hosts
  echo "all:"
  echo "  vars:"
  echo "    fleet_subnet: $NET.0/24"
  echo "    fleet_controller_address: $CONTROLLER_ADDRESS"
  echo "    fleet_rate: $RATE"
  echo "    fleet_delay: '$DELAY'"
  echo "  hosts:"
  inventory_host unreachable "$UNREACHABLE_ADDRESS" null | sed 's/^/    /'
  echo "  children:"
  echo "    fleet:"
  echo "      hosts:"
  for host in "${HOSTS[@]}"; do
    # shellcheck disable=SC2086  # "name address engine"
    inventory_host $host | sed 's/^/        /'
  done
}

usage() {
  sed -n '/^# Usage:/,/^#$/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  inventory) inventory ;;
  shape) shift; check_config; lock; load_hosts; shape "$@" ;;
  fault) shift; check_config; lock; load_hosts; fault "$@" ;;
  *) usage ;;
esac
