#!/usr/bin/env bash
# Starts ClickHouse and the tansu broker on loopback, data under .data/,
# PIDs under .run/. Idempotent: what runs already is left running.
source "$(dirname "$0")/common.sh"
mkdir -p "$RUN_DIR" "$DATA_DIR/clickhouse" "$DATA_DIR/tansu"

# start NAME PORT DIR COMMAND...: runs COMMAND in DIR in the background,
# records its PID, and waits until that process (not another) serves PORT.
start() {
  local name=$1 port=$2 dir=$3; shift 3
  local pid_file="$RUN_DIR/$name.pid"
  if running "$pid_file"; then
    log "$name already running (pid $(pid_of "$pid_file"))"
    return
  fi
  # A previous instance may still be letting go of the port.
  if ! wait_until 15 "port $port to be free" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null"; then
    log "port $port is in use by a process not started here; stop it or set another port (see deploy/local/common.sh)"
    return 1
  fi
  log "starting $name on 127.0.0.1:$port (log: $RUN_DIR/$name.out, appended)"
  launch "$pid_file" "$RUN_DIR/$name.out" "$dir" "$@"
  local deadline=$((SECONDS + 30))
  until tcp_open "$port"; do
    if ! running "$pid_file" || [ $SECONDS -ge $deadline ]; then
      log "$name did not start; last lines of $RUN_DIR/$name.out:"
      tail -n 20 "$RUN_DIR/$name.out" >&2
      return 1
    fi
    sleep 0.2
  done
}

ch="$DATA_DIR/clickhouse"
for f in config.xml users.xml; do
  sed -e "s|@DATA@|$ch|g" -e "s|@HTTP_PORT@|$CH_HTTP_PORT|g" -e "s|@TCP_PORT@|$CH_TCP_PORT|g" \
    "$ROOT/deploy/local/clickhouse/$f.in" > "$ch/$f"
done
start clickhouse "$CH_HTTP_PORT" "$ch" "$CLICKHOUSE_BIN" --config-file="$ch/config.xml"
wait_until 30 "clickhouse /ping" curl -sf "http://127.0.0.1:$CH_HTTP_PORT/ping"

# The index tansu 0.6 lacks for its per-record header lookups (see the file).
sqlite3 "$DATA_DIR/tansu/tansu.db" < "$ROOT/deploy/local/tansu/header-index.sql"
start tansu "$KAFKA_PORT" "$DATA_DIR/tansu" "$TANSU_BIN" broker \
  --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
  --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
  --storage-engine "sqlite://tansu.db"
