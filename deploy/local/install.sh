#!/usr/bin/env bash
# Installs what distans needs on a Debian machine, skipping what is there:
# ClickHouse server and client (Debian's packages), a C toolchain and the
# OpenSSL and zstd headers for librdkafka, stunnel4 for the TLS tests, and the tansu Kafka-protocol broker (built from crates.io
# once per machine and cached in $DISTANS_TOOLS).
source "$(dirname "$0")/common.sh"

packages=()
[ -x "$CLICKHOUSE_BIN" ] || packages+=(clickhouse-server clickhouse-client)
command -v cc >/dev/null || packages+=(gcc)
command -v c++ >/dev/null || packages+=(g++)
command -v make >/dev/null || packages+=(make)
command -v curl >/dev/null || packages+=(curl)
command -v pkg-config >/dev/null || packages+=(pkg-config)
# librdkafka's TLS and SASL (system OpenSSL) and zstd (system libzstd), found
# through pkg-config; the tests' CAs (openssl CLI: the TLS and registry
# tests make their own) and TLS in front of tansu,
# which takes no TLS itself (stunnel4).
pkg-config --exists openssl 2>/dev/null || packages+=(libssl-dev)
pkg-config --exists libzstd 2>/dev/null || packages+=(libzstd-dev)
command -v openssl >/dev/null || packages+=(openssl)
[ -x /usr/bin/stunnel4 ] || packages+=(stunnel4)
# The index tansu 0.6's header lookups lack (deploy/local/tansu/header-index.sql).
command -v sqlite3 >/dev/null || packages+=(sqlite3)
# The HTML report's test renders it in headless Chromium.
command -v chromium >/dev/null || packages+=(chromium)
python3 -c 'import ensurepip' 2>/dev/null || packages+=(python3 python3-venv)
# The JavaScript example producer (examples/javascript), run by the registry
# test, and the Adaptive Cards renderer the alert previews' test runs.
command -v npm >/dev/null || packages+=(nodejs npm)
if [ ${#packages[@]} -gt 0 ]; then
  log "installing Debian packages: ${packages[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

if [ ! -x "$TANSU_BIN" ] || ! "$TANSU_BIN" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
  log "building tansu $TANSU_VERSION with its SQLite engine (once per machine, ~10 min on 2 cores)"
  cargo install --quiet --locked --root "$TOOLS_DIR" tansu --version "$TANSU_VERSION" \
    --no-default-features --features libsql
fi
# A current ClickHouse release in process (chdb-core from PyPI), so the tests
# run the SQL on it as well as on Debian's ClickHouse 18.16.
CHDB_VERSION=26.9.0
if ! "$TOOLS_DIR/chdb/bin/python" -c "import chdb" 2>/dev/null; then
  log "installing chdb-core $CHDB_VERSION (a current ClickHouse in process) into $TOOLS_DIR/chdb"
  python3 -m venv "$TOOLS_DIR/chdb"
  "$TOOLS_DIR/chdb/bin/pip" install --quiet "chdb-core==$CHDB_VERSION" pandas pyarrow
fi

# The example producers' client libraries, run by the end-to-end registry
# test (tests/tests/registry.rs) against a schema-registry stand-in: Python's
# confluent-kafka with its AvroSerializer, and kafkajs with
# @kafkajs/confluent-schema-registry.
CONFLUENT_KAFKA_VERSION=2.16.1
if ! "$TOOLS_DIR/registry-py/bin/python" -c "import importlib.metadata as m, fastavro; assert m.version('confluent-kafka') == '$CONFLUENT_KAFKA_VERSION'" 2>/dev/null; then
  log "installing confluent-kafka $CONFLUENT_KAFKA_VERSION with its Avro serializer into $TOOLS_DIR/registry-py"
  python3 -m venv "$TOOLS_DIR/registry-py"
  "$TOOLS_DIR/registry-py/bin/pip" install --quiet "confluent-kafka[avro,schemaregistry]==$CONFLUENT_KAFKA_VERSION"
fi
KAFKAJS_VERSION=2.2.4
SCHEMA_REGISTRY_JS_VERSION=4.1.0

# npm_tools DIR NAME@VERSION...: installs the packages into $TOOLS_DIR/DIR
# with npm, unless each is there at its version already.
npm_tools() {
  local dir=$TOOLS_DIR/$1 spec missing=()
  shift
  for spec in "$@"; do
    grep -q "\"version\": \"${spec##*@}\"" "$dir/node_modules/${spec%@*}/package.json" 2>/dev/null || missing+=("$spec")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  log "installing $* into $dir"
  mkdir -p "$dir"
  (cd "$dir" && [ -f package.json ] || echo '{"private": true}' > package.json)
  npm install --silent --no-audit --no-fund --prefix "$dir" "$@"
}
npm_tools registry-js "kafkajs@$KAFKAJS_VERSION" "@kafkajs/confluent-schema-registry@$SCHEMA_REGISTRY_JS_VERSION"

# Microsoft's Adaptive Cards renderer, and markdown-it for the Markdown
# Teams renders in a card's text, for the alert previews' test
# (tests/tests/alert_previews.rs).
ADAPTIVECARDS_VERSION=3.0.6
MARKDOWN_IT_VERSION=14.1.0
npm_tools adaptivecards "adaptivecards@$ADAPTIVECARDS_VERSION" "markdown-it@$MARKDOWN_IT_VERSION"

log "tools ready: $("$TANSU_BIN" --version | head -1), ClickHouse $(clickhouse-client --version 2>/dev/null | grep -o '[0-9][0-9.]*' | head -1)"
