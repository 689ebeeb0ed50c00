#!/usr/bin/env bash
# Replaces the block between <!-- BEGIN name --> and <!-- END name --> in docs/RESULTS.md with the
# contents of a Markdown file (appending the block when it is new).
#   bench/update_results.sh NAME FILE.md
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1
table=$2
doc=docs/RESULTS.md
[ -f "$doc" ] || printf '# Results\n' > "$doc"
# One writer at a time: bench scripts for different datasets may run side by side.
exec 9>>"$doc.lock"
flock 9
begin="<!-- BEGIN $name -->"
end="<!-- END $name -->"
if ! grep -qF "$begin" "$doc"; then
  printf '\n%s\n%s\n' "$begin" "$end" >> "$doc"
fi
tmp=$(mktemp)
awk -v b="$begin" -v e="$end" -v f="$table" '
  $0 == b { print; while ((getline line < f) > 0) print line; skip = 1; next }
  $0 == e { skip = 0 }
  !skip { print }' "$doc" > "$tmp"
mv "$tmp" "$doc"
