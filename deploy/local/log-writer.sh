#!/usr/bin/env bash
# log-writer.sh FILE: appends the lines on stdin to FILE, rotating FILE
# whenever it reaches DISTANS_LOG_MAX_BYTES (see rotate_log in common.sh), so
# that a service's log stays capped while it runs. Exits at end of input
# (the service stopped or was killed). Started by `launch`.
source "$(dirname "$0")/common.sh"
set +e
# Like the service under nohup, survive the terminal going away; a Ctrl-C
# stops the service, and this ends with its output.
trap '' HUP INT
file=$1
# If the log cannot be opened (its directory removed), the output is
# dropped rather than the service's writes failing.
reopen() { exec 3>>"$file" || exec 3>/dev/null; } 2>/dev/null
reopen
written=0
while IFS= read -r line || [ -n "$line" ]; do
  printf '%s\n' "$line" >&3
  written=$((written + ${#line} + 1))
  # Look at the size every 64 KiB written, not at every line.
  if [ "$written" -ge 65536 ] || [ "$written" -ge "$LOG_MAX_BYTES" ]; then
    written=0
    exec 3>&-
    rotate_log "$file" 2>/dev/null
    reopen
  fi
done
