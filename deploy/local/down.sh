#!/usr/bin/env bash
# Stops what up.sh and services.sh started, by PID: SIGTERM, then SIGKILL
# after 15 s. With names (e.g. "sink"), stops only those.
source "$(dirname "$0")/common.sh"
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(ingester sink detector tansu clickhouse)
for name in "${names[@]}"; do
  pid_file="$RUN_DIR/$name.pid"
  [ -f "$pid_file" ] || continue
  pid=$(cat "$pid_file")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 75); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$pid_file"
done
