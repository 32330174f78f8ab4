# Shared settings of the local scripts. Every value can be overridden from
# the environment. Sourced, not run.
set -euo pipefail

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

# True while the process in pid file $1 runs.
running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

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
