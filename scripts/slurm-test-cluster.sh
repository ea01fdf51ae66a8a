#!/usr/bin/env bash
# A single-node Slurm cluster for tests and for trying `fstream sweep run --executor slurm`
# on one machine (Debian's slurmctld, slurmd, slurm-client and munge; run as root).
#
#   scripts/slurm-test-cluster.sh install      # the Debian packages, if missing
#   scripts/slurm-test-cluster.sh start DIR    # config, state and logs in DIR; waits for the node
#   export SLURM_CONF=DIR/slurm.conf           # for sbatch, squeue, scancel, sinfo
#   scripts/slurm-test-cluster.sh stop DIR     # stops the daemons it started, by PID
#
# slurm.conf is generated from `hostname -s` and `slurmd -C`, with process tracking by
# /proc (proctrack/linuxproc, no cgroups), no task binding and no accounting.
set -euo pipefail

command=${1:?usage: slurm-test-cluster.sh install|start DIR|stop DIR}

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
      && command -v sbatch >/dev/null && command -v munged >/dev/null; then
    return
  fi
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    slurmctld slurmd slurm-client munge >/dev/null
}

# Waits (polling) until `sinfo` shows the node idle; fails after a minute.
wait_idle() {
  for _ in $(seq 600); do
    if [[ $(sinfo --noheader --format=%T 2>/dev/null) == idle ]]; then
      return 0
    fi
    sleep 0.1
  done
  echo "slurm-test-cluster: the node never became idle; see $dir/*.log" >&2
  sinfo >&2 || true
  return 1
}

start() {
  mkdir -p "$dir/state" "$dir/spool"
  dir=$(cd "$dir" && pwd)
  local host node
  host=$(hostname -s)
  node=$(slurmd -C | head -n 1)
  cat >"$dir/slurm.conf" <<EOF
ClusterName=fstream-test
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
$node
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF="$dir/slurm.conf"
  if ! munge -n >/dev/null 2>&1; then
    install -d -o munge -g munge -m 0755 /run/munge
    su -s /bin/sh munge -c /usr/sbin/munged
    cp /run/munge/munged.pid "$dir/munged.pid"
  fi
  /usr/sbin/slurmctld -f "$SLURM_CONF"
  /usr/sbin/slurmd -f "$SLURM_CONF"
  wait_idle
  echo "export SLURM_CONF=$SLURM_CONF"
}

stop() {
  local name pid
  for name in slurmd slurmctld munged; do
    if [[ -f "$dir/$name.pid" ]]; then
      pid=$(cat "$dir/$name.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      rm -f "$dir/$name.pid"
    fi
  done
}

case "$command" in
  install) install_packages ;;
  start) dir=${2:?usage: slurm-test-cluster.sh start DIR}; start ;;
  stop) dir=${2:?usage: slurm-test-cluster.sh stop DIR}; stop ;;
  *) echo "usage: slurm-test-cluster.sh install|start DIR|stop DIR" >&2; exit 2 ;;
esac
