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
    wait_until 60 "ingester /healthz" curl -sf "http://127.0.0.1:$INGESTER_HTTP_PORT/healthz"
    wait_until 60 "sink /healthz" curl -sf "http://127.0.0.1:$SINK_HTTP_PORT/healthz"
    wait_until 300 "detector /healthz (state rebuilt)" curl -sf "http://127.0.0.1:$DETECTOR_HTTP_PORT/healthz"
    ;;
  stop)
    "$ROOT/deploy/local/down.sh" ingester sink detector
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
