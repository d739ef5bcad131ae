#!/usr/bin/env bash
# Instructions a request costs in the overhead bench (`benches/overhead.rs`), counted by
# valgrind's callgrind: far steadier than the clock on a noisy machine, so a cut too
# small for the clock shows here, though not exact (work done by the clock, such as the
# relay's flush every 10 ms, is counted per second, not per request: read differences
# under about 150 as noise; BENCHMARKS.md, 2026-12-08).
#
#   benches/instructions.sh [steer|direct|steer_budget]   (default: steer)
#
# The bench runs twice, profiling for 1 s and for 4 s; the difference of the two
# totals over the difference of the requests made (counted by calls of the bench's
# provider) is the cost of one request, 64 at a time, with the bench's own work (its
# request built, its futures joined) and without the bench's fixed start-up.
set -euo pipefail
cd "$(dirname "$0")/.."
bench="${1:-steer}"
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)"; exit 1; }
binary="$(cargo bench --features mock --bench overhead --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "overhead" and m.get("executable"):
        print(m["executable"])')"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'; }
calls() {
  callgrind_annotate --tree=calling "$1" 2>/dev/null |
    grep -E '>   .*Immediate as steer_llm::provider::Provider>::generate::\{\{closure\}\} \(' |
    sed -E 's/.*\(([0-9,]+)x\).*/\1/' | tr -d , | awk '{s += $1} END {print s}'
}
for t in 1 4; do
  valgrind --tool=callgrind --callgrind-out-file="$out/$t" "$binary" \
    --bench "overhead/$bench/64\$" --profile-time "$t" >/dev/null 2>&1
done
python3 - "$(total "$out/1")" "$(calls "$out/1")" "$(total "$out/4")" "$(calls "$out/4")" "$bench" <<'EOF'
import sys
t1, n1, t4, n4 = (int(x) for x in sys.argv[1:5])
print(f"{sys.argv[5]}: {(t4 - t1) / (n4 - n1):.0f} instructions a request ({n4 - n1} requests apart)")
EOF
