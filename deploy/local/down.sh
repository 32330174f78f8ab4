#!/usr/bin/env bash
# Stops what up.sh and services.sh started, by PID: SIGTERM, then SIGKILL
# after 15 s; a stale pid file (a zombie, a reused PID) is only removed. With names (e.g. "sink"), stops only those.
source "$(dirname "$0")/common.sh"
names=("$@")
all=(ingester sink detector tansu clickhouse)
[ ${#names[@]} -gt 0 ] || names=("${all[@]}")
for name in "${names[@]}"; do
  # A name that is neither one of these nor has a pid file here is a typo.
  if [[ ! " ${all[*]} " == *" $name "* ]] && [ ! -f "$RUN_DIR/$name.pid" ]; then
    echo "down.sh: no service $name (the names: ${all[*]})" >&2
    exit 2
  fi
done
for name in "${names[@]}"; do
  pid_file="$RUN_DIR/$name.pid"
  [ -f "$pid_file" ] || continue
  pid=$(pid_of "$pid_file")
  # Only the process started here: not a zombie, not a PID since reused.
  if running "$pid_file"; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 75); do
      running "$pid_file" || break
      sleep 0.2
    done
    if running "$pid_file"; then kill -KILL "$pid"; fi
  fi
  rm -f "$pid_file"
done
