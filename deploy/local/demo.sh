#!/usr/bin/env bash
# The main job end to end: tools, broker and ClickHouse up, services up, a
# generated year of Jämtland Härjedalen's invoice lines produced, waited for
# in ClickHouse, and reported.
source "$(dirname "$0")/common.sh"
REGION=${DISTANS_DEMO_REGION:-23}
YEAR=${DISTANS_DEMO_YEAR:-2025}

"$ROOT/deploy/local/install.sh"
"$ROOT/deploy/local/up.sh"
log "building distans"
(cd "$ROOT" && cargo build --quiet --workspace --bins)
BIN_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/debug
"$ROOT/deploy/local/services.sh" start

mkdir -p "$DATA_DIR/demo"
file="$DATA_DIR/demo/region-$REGION-$YEAR.jsonl"
"$BIN_DIR/distans" generate --region "$REGION" --year "$YEAR" --out "$file"
# The region's listing register, pseudonymised on import with the ingester's key.
unset DISTANS__PSEUDONYM__KEY
key_file=$(pseudonym_key_file)
export DISTANS__PSEUDONYM__KEY_FILE=$key_file
"$BIN_DIR/distans" listing import "$file.listing.csv" --county "$REGION"
start_ns=$(date +%s%N)
# Lines written from now on: a second run rewrites the same lines, and they
# still count once.
"$BIN_DIR/distans" produce "$file"
"$BIN_DIR/distans" wait --summary "$file.summary.json" --written-since "$((start_ns / 1000000000))" --timeout-secs 600
end_ns=$(date +%s%N)
log "all valid lines, findings and aggregates queryable $(( (end_ns - start_ns) / 1000000 )) ms after produce started"
echo
# This region's report, also when other regions' lines are in ClickHouse.
buyer=$(grep -o '"buyer_org_number": *"[0-9]*"' "$file.summary.json" | grep -o '[0-9]\{10\}')
"$BIN_DIR/distans" report --buyer "$buyer" --year "$YEAR" --html "$DATA_DIR/demo/report.html"
echo
"$BIN_DIR/distans" dead-letters
echo
log "report as HTML (open in a browser, no server needed): $DATA_DIR/demo/report.html"
log "running: broker 127.0.0.1:$KAFKA_PORT, ClickHouse http://127.0.0.1:$CH_HTTP_PORT (database distans),"
log "metrics http://127.0.0.1:$INGESTER_HTTP_PORT/metrics and http://127.0.0.1:$SINK_HTTP_PORT/metrics; 'make down' stops all"
