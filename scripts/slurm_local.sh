#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine (for the submitit_slurm tests and trying launchers).
#
#   scripts/slurm_local.sh up      # install (Debian, root) if missing, configure, start munged/slurmctld/slurmd
#   scripts/slurm_local.sh down    # stop the daemons started by `up` (by their recorded PIDs)
#   scripts/slurm_local.sh status
#
# One node (this host, `slurmd -C`), partition `local`, ProctrackType=proctrack/linuxproc, TaskPlugin=task/none,
# no cgroups, no accounting (accounting_storage/none: `sacct` fails, so every submitit wait in segbench is
# bounded, see hydra_plugins/segbench_launcher/launchers.py). Daemons run in the foreground (-D) in the background of this script with
# PIDs in $SEGBENCH_SLURM_DIR (default /tmp/segbench-slurm); `up` tears down what it started if it fails.
# Needs root (writes /etc/slurm/slurm.conf, runs slurmd). Exit status 0 = a node is idle and sbatch works.
set -euo pipefail

STATE="${SEGBENCH_SLURM_DIR:-/tmp/segbench-slurm}"
CONF=/etc/slurm/slurm.conf
HOST="$(hostname -s)"

log() { echo "[slurm_local] $*"; }

install_packages() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
    && command -v munged >/dev/null && return 0
  [ "$(id -u)" = 0 ] || { log "SLURM is not installed and this is not root: cannot install"; return 1; }
  command -v apt-get >/dev/null || { log "SLURM is not installed and there is no apt-get"; return 1; }
  log "installing slurmctld slurmd slurm-client munge (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
}

write_config() {
  mkdir -p /etc/slurm "$STATE/spool/ctld" "$STATE/spool/d" /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  chmod 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
  fi
  local node
  node="$(slurmd -C | head -n 1)"
  cat > "$CONF" <<EOF
# written by segbench scripts/slurm_local.sh (single-node test cluster)
ClusterName=segbench
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MailProg=/bin/true
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/slurmctld.pidfile
SlurmdPidFile=$STATE/slurmd.pidfile
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
${node}
PartitionName=local Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
}

start_bg() {  # start_bg NAME CMD...: run in background, record the PID
  local name="$1"; shift
  "$@" >"$STATE/$name.out" 2>&1 &
  echo $! >"$STATE/$name.pid"
}

stop_pid() {
  local f="$STATE/$1.pid"
  [ -f "$f" ] || return 0
  local pid; pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

down() {
  stop_pid slurmd
  stop_pid slurmctld
  stop_pid munged
  log "down"
}

up() {
  mkdir -p "$STATE"
  if [ -f "$STATE/slurmctld.pid" ] && kill -0 "$(cat "$STATE/slurmctld.pid")" 2>/dev/null; then
    log "already up (slurmctld pid $(cat "$STATE/slurmctld.pid"))"; return 0
  fi
  trap 'log "bring-up failed, stopping what was started"; down; exit 1' ERR INT TERM
  install_packages
  write_config
  start_bg munged runuser -u munge -- /usr/sbin/munged -F
  for _ in $(seq 50); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.1; done
  [ -S /run/munge/munge.socket.2 ] || { log "munged did not start: $(tail -n 3 "$STATE/munged.out")"; false; }
  start_bg slurmctld /usr/sbin/slurmctld -D -i
  start_bg slurmd /usr/sbin/slurmd -D -N "$HOST"
  local state=""
  for _ in $(seq 150); do
    state="$(sinfo -h -n "$HOST" -o %T 2>/dev/null || true)"
    [ "$state" = idle ] && break
    sleep 0.2
  done
  if [ "$state" != idle ]; then
    log "node $HOST is '${state:-unreachable}', not idle; slurmctld.log: $(tail -n 3 "$STATE/slurmctld.log" 2>/dev/null)"
    false
  fi
  trap - ERR INT TERM
  log "up: node $HOST idle, partition local (state in $STATE)"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) sinfo 2>/dev/null || { log "not running"; exit 1; } ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
