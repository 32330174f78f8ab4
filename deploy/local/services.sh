#!/usr/bin/env bash
# services.sh start|stop: the ingester, the sink and the detector, built in target/debug,
# as background processes with PIDs and logs under .run/.
source "$(dirname "$0")/common.sh"
mkdir -p "$RUN_DIR" "$DATA_DIR"
BIN_DIR=${DISTANS_BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/debug}

# The demo's pseudonymisation key (common.sh: made once, mode 0600), read from its file.
unset DISTANS__PSEUDONYM__KEY
key_file=$(pseudonym_key_file)
export DISTANS__PSEUDONYM__KEY_FILE=$key_file

# ready NAME PORT SECONDS: until distans-NAME answers /healthz; a service
# that stopped (a bad setting) is said at once, with the end of its log.
ready() {
  local name=$1 port=$2 seconds=$3
  local deadline=$((SECONDS + seconds))
  until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
    if ! running "$RUN_DIR/$name.pid"; then
      log "distans-$name stopped while starting; the end of $RUN_DIR/$name.log:"
      tail -n 5 "$RUN_DIR/$name.log" >&2
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "$name /healthz not ready after ${seconds}s (see $RUN_DIR/$name.log)"
      return 1
    fi
    sleep 0.2
  done
}

case "${1:-}" in
  start)
    for service in ingester sink detector; do
      pid_file="$RUN_DIR/$service.pid"
      if running "$pid_file"; then
        log "$service already running (pid $(pid_of "$pid_file"))"
        continue
      fi
      log "starting distans-$service (log: $RUN_DIR/$service.log, appended)"
      launch "$pid_file" "$RUN_DIR/$service.log" "$PWD" "$BIN_DIR/distans-$service"
    done
    ready ingester "$INGESTER_HTTP_PORT" 60
    ready sink "$SINK_HTTP_PORT" 60
    ready detector "$DETECTOR_HTTP_PORT" 300 # its state rebuilt
    ;;
  stop)
    "$ROOT/deploy/local/down.sh" ingester sink detector
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
