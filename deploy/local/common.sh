# Shared settings of the local scripts. Every value can be overridden from
# the environment. Sourced, not run.
# The scripts stop at the first error; an operator's interactive shell that
# sources this for the DISTANS__ variables keeps its own options (with -e a
# failing command would close the terminal).
case $- in
  *i*) ;;
  *) set -euo pipefail ;;
esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DATA_DIR=${DISTANS_DATA_DIR:-$ROOT/.data}
RUN_DIR=${DISTANS_RUN_DIR:-$ROOT/.run}
# Built tools are cached per machine, outside the work tree.
TOOLS_DIR=${DISTANS_TOOLS:-$HOME/.cache/distans/tools}
TANSU_VERSION=0.6.0
TANSU_BIN=$TOOLS_DIR/bin/tansu
CLICKHOUSE_BIN=${DISTANS_CLICKHOUSE_BIN:-/usr/sbin/clickhouse-server}

KAFKA_PORT=${DISTANS_KAFKA_PORT:-19092}
CH_HTTP_PORT=${DISTANS_CH_HTTP_PORT:-18123}
CH_TCP_PORT=${DISTANS_CH_TCP_PORT:-19000}
INGESTER_HTTP_PORT=${DISTANS_INGESTER_HTTP_PORT:-19181}
SINK_HTTP_PORT=${DISTANS_SINK_HTTP_PORT:-19182}
DETECTOR_HTTP_PORT=${DISTANS_DETECTOR_HTTP_PORT:-19183}

# What the services and the distans command read (see crates/runtime/src/defaults.toml).
export DISTANS__KAFKA__BROKERS=127.0.0.1:$KAFKA_PORT
export DISTANS__CLICKHOUSE__URL=http://127.0.0.1:$CH_HTTP_PORT
export DISTANS__INGESTER__HTTP_LISTEN=127.0.0.1:$INGESTER_HTTP_PORT
export DISTANS__SINK__HTTP_LISTEN=127.0.0.1:$SINK_HTTP_PORT
export DISTANS__DETECTOR__HTTP_LISTEN=127.0.0.1:$DETECTOR_HTTP_PORT
# The synthetic home regions of `distans generate` (organisation number ->
# county), so that `patient_not_resident` is checked for them.
export DISTANS__DETECTOR__RULES__HOME_REGIONS__2321000198=19
export DISTANS__DETECTOR__RULES__HOME_REGIONS__2321000230=23
export DISTANS__DETECTOR__RULES__HOME_REGIONS__2321000255=25

# The generator's digital provider whose group also runs a health centre in
# its listing register (report_same_group_listing).
export DISTANS__REPORTING__PROVIDER_GROUPS__5591000012=Nordvård
# The detector's review of rules judged in ClickHouse, every 2 s for the demo.
export DISTANS__DETECTOR__REVIEW_INTERVAL_MS=${DISTANS__DETECTOR__REVIEW_INTERVAL_MS:-2000}

log() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }

# A pid file holds two lines: the PID, and the program it was started as.
pid_of() { head -n 1 "$1" 2>/dev/null; }

# True while the process in pid file $1 runs and is the program recorded
# there. `kill -0` alone is not enough: it succeeds for a zombie (a process
# SIGKILLed and not yet reaped by its parent) and for a PID the kernel has
# since given to another program.
running() {
  local pid_file=$1 pid program stat state argv0
  [ -f "$pid_file" ] || return 1
  pid=$(pid_of "$pid_file")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  # The state is the field after the command name, which is in parentheses
  # and may itself hold spaces or parentheses.
  state=${stat##*) }
  state=${state%% *}
  case "$state" in Z | X | x | "") return 1 ;; esac
  program=$(sed -n 2p "$pid_file")
  [ -n "$program" ] || return 0
  # The recorded program must be the process's argv[0] (or, under nohup,
  # argv[1], for the instant before nohup execs it).
  local -a argv=()
  mapfile -d '' -t argv 2>/dev/null < "/proc/$pid/cmdline" || return 1
  argv0=${argv[0]:-}
  [ "$argv0" = "$program" ] && return 0
  [ "${argv0##*/}" = nohup ] && [ "${argv[1]:-}" = "$program" ]
}

# Log files are appended to, never truncated. A log that reaches
# DISTANS_LOG_MAX_BYTES (at a start, or while its service writes) is
# rotated: FILE -> FILE.1 -> ... -> FILE.$DISTANS_LOG_KEEP, the oldest dropped.
LOG_MAX_BYTES=${DISTANS_LOG_MAX_BYTES:-10485760}
LOG_KEEP=${DISTANS_LOG_KEEP:-3}
rotate_log() {
  local file=$1 size i
  [ -f "$file" ] || return 0
  size=$(stat -c %s "$file")
  [ "$size" -ge "$LOG_MAX_BYTES" ] || return 0
  for ((i = LOG_KEEP - 1; i >= 1; i--)); do
    [ -f "$file.$i" ] && mv -f "$file.$i" "$file.$((i + 1))"
  done
  if [ "$LOG_KEEP" -ge 1 ]; then
    mv -f "$file" "$file.1"
  else
    rm -f "$file"
  fi
}

# launch PID_FILE LOG_FILE DIR PROGRAM ARGS...: runs PROGRAM in DIR in the
# background under nohup, its output appended to LOG_FILE through
# log-writer.sh (rotated at the cap, at start and while it runs), records its
# PID and PROGRAM in PID_FILE, and waits until the process is PROGRAM itself
# (nohup has exec'd it), so that `running` can be trusted at once.
launch() {
  local pid_file=$1 log_file=$2 dir=$3; shift 3
  rotate_log "$log_file"
  printf '%s starting %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >> "$log_file"
  # exec, so that the recorded PID is the program's own.
  # The log writer's own output goes nowhere: it would hold the caller's
  # stdout open (`make demo | tee` would never end).
  (cd "$dir" && exec nohup "$@") > >(exec bash "$ROOT/deploy/local/log-writer.sh" "$log_file" > /dev/null 2>&1) 2>&1 < /dev/null &
  printf '%s\n%s\n' "$!" "$1" > "$pid_file"
  local pid=$! i argv0 stat
  for i in $(seq 1 250); do
    argv0=$(tr '\0' '\n' 2>/dev/null < "/proc/$pid/cmdline" | head -n 1) || true
    [ "$argv0" = "$1" ] && return 0
    # Gone already (or a zombie): `running` says so, the caller reports it.
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 0
    [[ "$stat" == *") Z "* ]] && return 0
    sleep 0.02
  done
}

# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.2 s.
wait_until() {
  local seconds=$1 what=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      log "$what not ready after ${seconds}s"
      return 1
    fi
    sleep 0.2
  done
}

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The demo's pseudonymisation key file: 32 random bytes as hex, made once
# and kept with the data, so a patient keeps one pseudonym across restarts;
# readable by its owner only (0600, also when an older release left it
# 0644). Prints its path. The services read it as pseudonym.key_file, so the
# key is not in their environment.
pseudonym_key_file() {
  local key_file="$DATA_DIR/pseudonym.key"
  mkdir -p "$DATA_DIR"
  [ -s "$key_file" ] || (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$key_file")
  chmod 600 "$key_file"
  echo "$key_file"
}
