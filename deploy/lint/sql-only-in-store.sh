#!/usr/bin/env bash
# Only crates/store speaks SQL (ARCHITECTURE.md, invariants). Fails, naming
# each place, when another crate
#   - depends on the clickhouse crate,
#   - holds a .sql file, or
#   - has SQL in its Rust source (a statement keyword such as SELECT,
#     INSERT INTO, ALTER TABLE, CREATE/DROP TABLE|VIEW|DATABASE).
# The end-to-end tests (tests/) may query ClickHouse to check what it holds.
set -euo pipefail
cd "$(dirname "$0")/../.."

status=0
complain() {
  echo "sql-only-in-store: $1" >&2
  status=1
}

for manifest in crates/*/Cargo.toml; do
  [ "$manifest" = crates/store/Cargo.toml ] && continue
  if grep -Eq '^clickhouse(\.workspace| *=)' "$manifest"; then
    complain "$manifest depends on the clickhouse crate; call distans-store instead"
  fi
done

while IFS= read -r file; do
  complain "$file: SQL files live in crates/store"
done < <(find crates -name '*.sql' -not -path 'crates/store/*')

keywords='\b(SELECT|INSERT INTO|ALTER TABLE|OPTIMIZE TABLE|(CREATE|DROP) (TABLE|VIEW|DATABASE|MATERIALIZED VIEW)|DROP PARTITION|REPLACE PARTITION)\b'
while IFS= read -r hit; do
  complain "$hit"
done < <(grep -rnE "$keywords" --include='*.rs' crates | grep -v '^crates/store/' || true)

if [ "$status" -eq 0 ]; then
  echo "sql-only-in-store: no SQL outside crates/store"
fi
exit "$status"
