#!/usr/bin/env bash
# Tests of the local scripts' process handling, without a broker or
# ClickHouse: a dummy long-running program started the way services.sh
# starts a service, SIGKILLed, restarted. Run by tests/tests/deploy_local.rs.
work=$(mktemp -d)
# The log writers end with their services' output; give them a moment.
trap 'sleep 0.5; rm -rf "$work"' EXIT
export DISTANS_RUN_DIR=$work/run DISTANS_DATA_DIR=$work/data
source "$(dirname "$0")/common.sh"
mkdir -p "$RUN_DIR"

failures=0
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAILED: $what"; failures=$((failures + 1)); fi
}
not() { ! "$@"; }

# The dummy service: a copy of sleep under a service's name, so that its
# command line is its own.
dummy=$work/distans-dummy
cp "$(command -v sleep)" "$dummy"
pid_file=$RUN_DIR/dummy.pid
log_file=$RUN_DIR/dummy.log

# 1. A process SIGKILLed while its parent does not reap it stays a zombie:
# `kill -0` still succeeds, `running` must say no. The parent here is a
# shell that launches the dummy and then becomes `sleep`, which never waits.
bash -c "source '$ROOT/deploy/local/common.sh'; launch '$pid_file' '$log_file' '$work' '$dummy' 300; exec sleep 30" &
parent=$!
wait_until 10 "dummy started" test -s "$pid_file"
wait_until 10 "dummy running" running "$pid_file"
check "a started dummy is running" running "$pid_file"
pid=$(pid_of "$pid_file")
check "its pid file records the program" test "$(sed -n 2p "$pid_file")" = "$dummy"
kill -KILL "$pid"
wait_until 10 "dummy a zombie" grep -q ') Z ' "/proc/$pid/stat"
check "the SIGKILLed dummy is a zombie (kill -0 still succeeds)" kill -0 "$pid"
check "a zombie is not running" not running "$pid_file"

# 2. A restart appends to the log: the crashed run's lines stay.
echo "line written by the first run" >> "$log_file"
launch "$pid_file" "$log_file" "$work" "$dummy" 300
check "the restarted dummy is running" running "$pid_file"
check "the restart got a new pid" test "$(pid_of "$pid_file")" != "$pid"
check "the restart kept the first run's log" grep -q "line written by the first run" "$log_file"
check "the log holds both starts" test "$(grep -c "starting $dummy" "$log_file")" -eq 2

# 3. A PID reused by another program is not running: the pid file names
# the dummy, the PID is a plain sleep's.
sleep 300 &
other=$!
printf '%s\n%s\n' "$other" "$dummy" > "$RUN_DIR/reused.pid"
check "a reused pid is not running" not running "$RUN_DIR/reused.pid"
check "a pid that does not exist is not running" not running <(printf '999999999\n%s\n' "$dummy")
check "a missing pid file is not running" not running "$work/none.pid"

# 4. down.sh refuses a name it does not know, stops the dummy and leaves
# the stranger alone.
check "down.sh refuses a name it does not know" not env DISTANS_RUN_DIR="$RUN_DIR" "$ROOT/deploy/local/down.sh" dumy
check "down.sh left the dummy running then" running "$pid_file"
DISTANS_RUN_DIR=$RUN_DIR "$ROOT/deploy/local/down.sh" dummy reused
check "down.sh stopped the dummy" not running "$pid_file"
check "down.sh removed the dummy's pid file" not test -e "$pid_file"
check "down.sh removed the stale pid file" not test -e "$RUN_DIR/reused.pid"
check "down.sh left the reused pid's process alone" kill -0 "$other"
kill -KILL "$other" "$parent" 2>/dev/null || true
wait "$other" "$parent" 2>/dev/null || true

# 5. Rotation: a log at the size cap is rotated at the next start, the old
# lines kept in .1, .2, ..., at most DISTANS_LOG_KEEP files.
export DISTANS_LOG_MAX_BYTES=1000 DISTANS_LOG_KEEP=2
LOG_MAX_BYTES=1000 LOG_KEEP=2
for run in 1 2 3; do
  head -c 2000 /dev/zero | tr '\0' "$run" >> "$log_file"
  launch "$work/r.pid" "$log_file" "$work" "$dummy" 0
done
check "the log was rotated to .1" grep -q 2 "$log_file.1"
check "the older one to .2" grep -q 1 "$log_file.2"
check "no more than two rotated files" not test -e "$log_file.3"
check "the current log is below the cap" test "$(stat -c %s "$log_file")" -lt 2000

# 6. A service that writes without end keeps its log capped while it runs:
# the writer rotates it, at most DISTANS_LOG_KEEP rotated files.
export DISTANS_LOG_MAX_BYTES=100000
chatty=$work/distans-chatty
cp "$(command -v yes)" "$chatty"
chatty_log=$RUN_DIR/chatty.log
launch "$RUN_DIR/chatty.pid" "$chatty_log" "$work" "$chatty" "a line of a service that logs a lot"
wait_until 30 "chatty log rotated twice" test -e "$chatty_log.2"
sleep 0.5
check "the chatty service still runs" running "$RUN_DIR/chatty.pid"
# The files are looked at once it stopped, and its log writer (which may
# finish a last rotation after the service is gone) is done: during a
# rotation FILE.1 -> FILE.2 is done and FILE -> FILE.1 not yet.
DISTANS_RUN_DIR=$RUN_DIR "$ROOT/deploy/local/down.sh" chatty
check "down.sh stopped the chatty service" not running "$RUN_DIR/chatty.pid"
wait_until 10 "the chatty log writer done" not pgrep -f "log-writer.sh $chatty_log"
check "its log was rotated while it ran" test -e "$chatty_log.1" -a -e "$chatty_log.2"
check "no more than two rotated files" not test -e "$chatty_log.3"
check "its log stays near the cap" test "$(stat -c %s "$chatty_log")" -lt $((100000 + 70000))
check "a rotated file holds the service's lines" grep -q "a line of a service that logs a lot" "$chatty_log.1"

# 5. A launched service and its log writer leave the caller's stdout: a
# script that starts services through a pipe (`make demo | tee log`) ends
# while they run.
# The reader ends when the pipe does: 124 (timed out) if something kept it.
timeout 20 bash -c "source '$ROOT/deploy/local/common.sh'; launch '$RUN_DIR/piped.pid' '$RUN_DIR/piped.log' '$work' '$dummy' 300; echo launched" \
  | timeout 20 cat > "$work/piped.out"
reader=${PIPESTATUS[1]}
check "a launch through a pipe ends the pipe while the service runs" test "$reader" = 0
check "the launch went through" grep -qx launched "$work/piped.out"
check "the piped service runs" running "$RUN_DIR/piped.pid"
DISTANS_RUN_DIR=$RUN_DIR "$ROOT/deploy/local/down.sh" piped > /dev/null

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
