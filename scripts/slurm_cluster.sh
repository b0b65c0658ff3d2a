#!/usr/bin/env bash
# A real single-node SLURM cluster on this Debian/Ubuntu machine, to rehearse `launcher=slurm` end to end.
#   scripts/slurm_cluster.sh up             install slurm-wlm + munge if missing, start munged, slurmctld, slurmd;
#                                           prints `export SLURM_CONF=<path>` (the only line on stdout)
#   scripts/slurm_cluster.sh down [--purge] stop the daemons (--purge: also remove the scratch folder)
#   scripts/slurm_cluster.sh status         which daemons run, and sinfo
# Everything (munge key and socket, slurm.conf, state, spool, logs, PID files) lives in one scratch folder,
# ${SLURM_SCRATCH:-/tmp/dsvdd-slurm}: nothing under /etc is used, no systemd is needed. Run as root.
set -euo pipefail
umask 022  # munged refuses a key, socket or log in a group/other-writable folder

SCRATCH=${SLURM_SCRATCH:-/tmp/dsvdd-slurm}
CONF=$SCRATCH/etc/slurm.conf
MUNGE_DIR=$SCRATCH/munge
MUNGE_SOCKET=$MUNGE_DIR/munge.socket
RUN_DIR=$SCRATCH/run
LOG_DIR=$SCRATCH/log
NODE=$(hostname -s)
export SLURM_CONF=$CONF   # every slurm command below (and slurmd -C) reads this cluster's file, not /etc/slurm

elapsed() { local ms=$((($(date +%s%N) - $1) / 1000000)); printf '%d.%01d' $((ms / 1000)) $((ms % 1000 / 100)); }
say() { echo "slurm_cluster: $*" >&2; }
die() { say "$*"; exit 1; }

pidfile() {  # munged writes its own (as the munge user), next to its socket
    if [[ $1 == munged ]]; then echo "$MUNGE_DIR/munged.pid"; else echo "$RUN_DIR/$1.pid"; fi
}

# The daemon behind a PID file, if it is alive and really is that daemon (a stale PID may be reused by
# anything, e.g. a training process, which must never be signalled).
daemon_pid() {  # name
    local pid file
    file=$(pidfile "$1")
    [[ -s $file ]] || return 1
    pid=$(<"$file")
    [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$1" ]] || return 1
    echo "$pid"
}

# SIGTERM to each, then wait for all together (each takes 1-2 s to shut down); SIGKILL after 5 s.
stop_daemons() {  # names
    local name pid pids=() names=()
    for name in "$@"; do
        if pid=$(daemon_pid "$name"); then kill -TERM "$pid" 2>/dev/null || true; pids+=("$pid"); names+=("$name"); fi
    done
    local alive
    for _ in $(seq 50); do
        alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for i in "${!pids[@]}"; do
        if kill -0 "${pids[i]}" 2>/dev/null; then say "${names[i]} ignored SIGTERM for 5 s: SIGKILL"; kill -KILL "${pids[i]}" || true; fi
        say "stopped ${names[i]} (pid ${pids[i]})"
    done
    for name in "$@"; do rm -f "$(pidfile "$name")"; done
}

all_running() {
    daemon_pid munged >/dev/null && daemon_pid slurmctld >/dev/null && daemon_pid slurmd >/dev/null
}

died() { [[ -s $(pidfile "$1") ]] && ! daemon_pid "$1" >/dev/null; }  # wrote its PID file, then exited

node_state() { timeout 5 sinfo -h -N -n "$NODE" -o %t 2>/dev/null | head -n1; }

# Idle, and registered by a slurmd started at or after $1 (epoch s): slurmctld reports the node idle from its
# saved state before the new slurmd has registered, and jobs submitted then wait for it.
node_ready() {
    local info started
    info=$(timeout 5 scontrol show node "$NODE" 2>/dev/null) || return 1
    started=$(grep -o 'SlurmdStartTime=[^ ]*' <<<"$info" | cut -d= -f2)
    [[ $info =~ State=IDLE[[:space:]] && $started =~ ^[0-9] ]] && (($(date -d "$started" +%s) >= $1))
}

show_logs() {
    local log
    for log in "$MUNGE_DIR/munged.log" "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log"; do
        [[ -f $log ]] && { say "--- last lines of $log"; tail -n 15 "$log" >&2; }
    done
    return 0
}

install_packages() {
    command -v apt-get >/dev/null || die "slurmctld/slurmd/munged are missing and this machine has no apt-get (not Debian/Ubuntu): install slurm and munge yourself"
    local start=$SECONDS added_policy=0
    # Debian's postinst scripts would start a system-wide munged/slurmd from /etc; this script runs its own.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && added_policy=1
    fi
    say "installing slurm-wlm and munge with apt-get"
    { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge; } >&2 ||
        { ((added_policy)) && rm -f /usr/sbin/policy-rc.d; die "apt-get install slurm-wlm munge failed"; }
    ((added_policy)) && rm -f /usr/sbin/policy-rc.d
    say "installed slurm-wlm and munge in $((SECONDS - start)) s"
}

# A fresh key for this cluster only; munged refuses a key that is not owned by its own user or is readable by others.
make_munge_key() {
    rm -f "$MUNGE_DIR/munge.key"
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile="$MUNGE_DIR/munge.key" >&2
    else
        dd if=/dev/urandom of="$MUNGE_DIR/munge.key" bs=1024 count=1 status=none
    fi
    chmod 0400 "$MUNGE_DIR/munge.key"
    chown "$MUNGE_USER:" "$MUNGE_DIR/munge.key"
}

write_conf() {
    # `slurmd -C` prints this machine's layout, e.g. "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ..."
    local layout cpus sockets cores threads memory
    layout=$(slurmd -C | head -n1)
    field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$layout"; }
    cpus=$(field CPUs) sockets=$(field SocketsPerBoard) cores=$(field CoresPerSocket) threads=$(field ThreadsPerCore)
    memory=$(field RealMemory)
    [[ -n $cpus && -n $memory ]] || die "could not read the node's layout from 'slurmd -C': $layout"
    # Leave the OS some memory: a node that reports less RealMemory than configured is drained.
    memory=$((memory * 95 / 100))
    cat >"$CONF" <<EOF
# Generated by scripts/slurm_cluster.sh: a single-node cluster, everything under $SCRATCH.
ClusterName=dsvdd
# The address in parentheses spares slurm a DNS look-up of the host name.
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# slurm's munge plugins use munge's default socket (/run/munge) unless told otherwise. A requeued job
# waits cred_expire seconds before it may start again (default 120 s; 10 s keeps rehearsals short).
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=10
StateSaveLocation=$SCRATCH/state
SlurmdSpoolDir=$SCRATCH/spool
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
# No cgroups (containers often lack a writable cgroup tree), no accounting database.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default, a job that asks no memory takes the whole node and jobs run one at a time.
DefMemPerCPU=$((memory / cpus))
ReturnToService=2
# Preemption/requeue rehearsals: requeue allowed, SIGTERM then SIGKILL 10 s later, finished jobs kept 5 min.
JobRequeue=1
KillWait=10
MinJobAge=300
# Pending jobs (a requeued one, once eligible) are looked at every 5 s instead of every 30-60 s.
SchedulerParameters=sched_interval=5,bf_interval=5
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus Sockets=${sockets:-1} CoresPerSocket=${cores:-$cpus} ThreadsPerCore=${threads:-1} RealMemory=$memory State=UNKNOWN
PartitionName=cpu Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

up() {
    [[ $(id -u) == 0 ]] || die "must run as root (it starts munged, slurmctld and slurmd): sudo $0 up"
    if all_running && [[ $(node_state) =~ ^(idle|mix|alloc) ]]; then
        say "already up"
        echo "export SLURM_CONF=$CONF"
        return 0
    fi
    local missing=0 bin
    for bin in slurmctld slurmd munged sinfo; do command -v "$bin" >/dev/null || missing=1; done
    if ((missing)); then install_packages; fi

    local start
    start=$(date +%s%N)
    down_daemons  # a half-started cluster from an earlier attempt would hold the ports and PID files
    MUNGE_USER=$(getent passwd munge >/dev/null && echo munge || echo root)
    mkdir -p "$SCRATCH"/{etc,state,spool} "$RUN_DIR" "$LOG_DIR" "$MUNGE_DIR"
    chmod 0755 "$MUNGE_DIR"
    chown "$MUNGE_USER:" "$MUNGE_DIR"
    make_munge_key
    write_conf

    # munged runs as the key's owner; its socket must stay reachable by every user that submits jobs.
    runuser -u "$MUNGE_USER" -- munged --socket="$MUNGE_SOCKET" --pid-file="$(pidfile munged)" \
        --log-file="$MUNGE_DIR/munged.log" --key-file="$MUNGE_DIR/munge.key" --seed-file="$MUNGE_DIR/munged.seed" >&2 ||
        { show_logs; die "munged failed to start"; }
    munge -n -S "$MUNGE_SOCKET" | unmunge -S "$MUNGE_SOCKET" >/dev/null ||
        { show_logs; down_daemons; die "munge does not work (see $MUNGE_DIR/munged.log)"; }

    slurmctld -f "$CONF" >&2 || { show_logs; down_daemons; die "slurmctld failed to start"; }
    slurmd -f "$CONF" -N "$NODE" >&2 || { show_logs; down_daemons; die "slurmd failed to start"; }

    # A deadline, not a count of polls: sinfo itself may hang for seconds when the controller does not answer.
    local ready=0 state deadline=$((SECONDS + 30)) since=$((start / 1000000000))
    while ((SECONDS < deadline)) && ! died slurmctld && ! died slurmd; do
        if node_ready "$since"; then ready=1; break; fi
        sleep 0.5
    done
    if ((!ready)); then
        state=$(node_state || true)
        show_logs
        down_daemons
        die "node $NODE did not become idle within 30 s (state: ${state:-no answer}); logs in $LOG_DIR"
    fi
    say "cluster up in $(elapsed "$start") s: node $NODE idle in partition cpu (scratch $SCRATCH)"
    echo "export SLURM_CONF=$CONF"
}

down_daemons() {
    # Cancel jobs first: slurmstepd and the job's processes outlive slurmd, and would keep running unmanaged.
    if daemon_pid slurmctld >/dev/null && [[ -n $(timeout 10 squeue -h -o %i 2>/dev/null) ]]; then
        say "cancelling the jobs still queued or running"
        timeout 10 scancel --full --quiet --partition=cpu 2>/dev/null || true
        for _ in $(seq 30); do [[ -z $(timeout 10 squeue -h -o %i 2>/dev/null) ]] && break; sleep 0.5; done
    fi
    stop_daemons slurmd slurmctld
    stop_daemons munged  # last: the slurm daemons may still talk while they shut down
}

down() {
    [[ $(id -u) == 0 ]] || die "must run as root: sudo $0 down"
    down_daemons
    if [[ ${1:-} == --purge && -d $SCRATCH ]]; then
        # SLURM_SCRATCH might name a folder that holds other things: remove only one this script made
        [[ -f $CONF ]] || die "not removing $SCRATCH: it has no etc/slurm.conf, so it is not this script's folder"
        rm -rf "$SCRATCH"
        say "removed $SCRATCH"
    fi
    say "down"
}

status() {
    local name pid up=1
    for name in munged slurmctld slurmd; do
        if pid=$(daemon_pid "$name"); then echo "$name: running (pid $pid)"; else echo "$name: stopped"; up=0; fi
    done
    if ((up)); then
        echo "SLURM_CONF=$CONF"
        timeout 10 sinfo || up=0
    fi
    ((up)) && echo "cluster: up" || echo "cluster: down"
    ((up))
}

case ${1:-} in
    up) up ;;
    down) down "${2:-}" ;;
    status) status ;;
    *) echo "usage: $0 up | down [--purge] | status" >&2; exit 2 ;;
esac
