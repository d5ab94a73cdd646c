#!/usr/bin/env bash
# Messaging-core benchmarks: an fio baseline and the in-process broker
# scenarios (crates/core/examples/core_bench.rs) on the same disk in one run,
# ending with a markdown table of the figures and their ratio to the baseline.
#
#   bench/core.sh [--quick] [--data DIR] [--backlog N] [--count N]
#
# --quick    a short smoke run (20,000 messages, backlog 100,000)
# --data     where to put benchmark files (default target/bench-data); it must
#            be on the disk to measure, not on a tmpfs. It is removed at the end.
# --backlog  records in the backlog run (default 10,000,000: about 11 GiB of
#            disk); lowered to what fits if the disk is short, and said so.
# --count    messages per measured run (default 200,000)
#
# Needs fio (installed with apt-get if missing), python3 and cargo.

set -euo pipefail

QUICK=0
DATA=
BACKLOG=
COUNT=
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --data) DATA="$2"; shift ;;
        --backlog) BACKLOG="$2"; shift ;;
        --count) COUNT="$2"; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DATA=${DATA:-$ROOT/target/bench-data}

if [ "$QUICK" = 1 ]; then
    COUNT=${COUNT:-20000}; BACKLOG=${BACKLOG:-100000}; FIO_SECS=3; FIO_SIZE=64m
else
    COUNT=${COUNT:-200000}; BACKLOG=${BACKLOG:-10000000}; FIO_SECS=15; FIO_SIZE=256m
fi
SIZE=1024

# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"

# ---------------------------------------------------------------- checks

prepare_bench "$DATA"
df -h "$DATA" >&2
# A stored 1 KiB message takes about 1,160 bytes (record framing, headers,
# the message id); keep 2 GiB spare for the other runs and the journals.
AVAIL_KIB=$(df --output=avail -k "$DATA" | tail -1)
FITS=$(( (AVAIL_KIB - 2 * 1024 * 1024) * 1024 / 1200 ))
BACKLOG_WANTED=$BACKLOG
if [ "$FITS" -lt "$BACKLOG" ]; then
    BACKLOG=$(( FITS / 1000000 * 1000000 ))
    [ "$BACKLOG" -gt 0 ] || BACKLOG=$(( FITS > 0 ? FITS : 0 ))
    echo "WARNING: $DATA has $(( AVAIL_KIB / 1024 / 1024 )) GiB free: the backlog run uses" \
         "$BACKLOG records instead of $BACKLOG_WANTED" >&2
fi

RESULTS="$DATA/core-results.tsv"
: > "$RESULTS"
cleanup() {
    rm -rf "$DATA"/fio-core "$DATA"/core "$DATA"/core_bench "$DATA"/core-results.tsv
    rmdir "$DATA" 2>/dev/null || true
}
trap cleanup EXIT

# ---------------------------------------------------------------- build

log "building core_bench (release)"
cargo build --release -q -p hermod-core --example core_bench
REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git status --porcelain -- crates 2>/dev/null | grep -c . || true)
TARGET=$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
# A frozen copy, so that edits made to the tree during the run (the machine is
# shared) cannot trigger a rebuild between scenarios.
BIN="$DATA/core_bench"
cp "$TARGET/release/examples/core_bench" "$BIN"

# Runs one scenario: label, then core_bench arguments. Keeps the JSON line.
core() {
    local label=$1; shift
    log "core $label: $*"
    local out
    out=$("$BIN" --dir "$DATA/core" "$@")
    printf '%s\n' "$out" | grep '^#' >&2
    printf '%s\t%s\n' "$label" "$(printf '%s\n' "$out" | grep '^{')" >> "$RESULTS"
}

# Runs one fio job: label, then fio arguments. Keeps fio's JSON.
fio_job() {
    local label=$1; shift
    log "fio $label: $*"
    rm -rf "$DATA/fio-core"; mkdir -p "$DATA/fio-core"
    local out
    out=$(fio --directory="$DATA/fio-core" --output-format=json --ioengine=psync \
        --direct=0 --fallocate=none "$@")
    printf '%s\t%s\n' "$label" "$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))')" >> "$RESULTS"
    rm -rf "$DATA/fio-core"
}

START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- baseline

# What one fsync'd 1 KiB record costs the disk without a broker: a 1 KiB
# write followed by fdatasync, one at a time.
fio_job sync1k --name=sync1k --rw=write --bs=1k --fdatasync=1 \
    --size="$FIO_SIZE" --runtime="$FIO_SECS" --time_based=0

# ---------------------------------------------------------------- scenarios

C="--count $COUNT --size $SIZE"
core queue-empty --scenario queue $C --producers 4 --consumers 4
core queue-backlog --scenario queue $C --producers 4 --consumers 4 --backlog "$BACKLOG"
# The empty queue again, so drift of the shared machine over the long
# backlog run shows.
core queue-empty-2 --scenario queue $C --producers 4 --consumers 4
core queue-batch10 --scenario queue $C --producers 4 --consumers 4 --batch 10
core fanout --scenario fanout $C --producers 1 --consumers 1
core fanout-exchange --scenario fanout-exchange --count $(( COUNT / 4 )) --size $SIZE \
    --producers 1 --consumers 1
core ordered --scenario ordered $C --producers 4 --consumers 4 --keys 1000

END_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report

MODE=$([ "$QUICK" = 1 ] && echo "quick (smoke) run" || echo "full run")
python3 - "$RESULTS" <<EOF
import json, sys
rows = {}
for line in open(sys.argv[1]):
    label, js = line.rstrip("\n").split("\t", 1)
    rows[label] = json.loads(js)

job = rows["sync1k"]["jobs"][0]
sync_iops = job["write"]["iops"]
pct = job["sync"]["lat_ns"].get("percentile", {})
sync_p50 = pct.get("50.000000", 0) / 1000
sync_p99 = pct.get("99.000000", 0) / 1000

def mib(kib):
    return f"{kib / 1024:,.0f} MiB"

print()
print(f"## Hermod messaging core benchmark ($MODE)")
print()
print(f"Commit $REV (+$DIRTY changed files under crates), $(nproc) cores, "
      f"data in $DATA ($FSTYPE on $(df --output=source "$DATA" | tail -1)), "
      f"load average $START_LOAD at start, $END_LOAD at end (machine shared with other jobs: figures are noisy). "
      f"Backlog run: $BACKLOG records (wanted $BACKLOG_WANTED).")
print()
print(f"Baseline: fio 1 KiB write + fdatasync each, one job: {sync_iops:,.0f} writes/s "
      f"(p50 {sync_p50:.0f} us, p99 {sync_p99:.0f} us).")
print()
print("| Scenario | msgs/s | MiB/s | vs fio | publish p50 / p99 | ack call p50 / p99 | end-to-end p50 / p99 / max | syncs/msg (log + journal) | RSS max | data dir |")
print("|---|---|---|---|---|---|---|---|---|---|")
for label in ("queue-empty", "queue-backlog", "queue-empty-2", "queue-batch10",
              "fanout", "fanout-exchange", "ordered"):
    r = rows[label]
    extra = ""
    if r["subscriptions"] > 1:
        extra = f" ({r['deliveries_per_s']:,.0f} deliveries/s)"
    e2e = (f"{r['e2e_p50_us']:,.0f} / {r['e2e_p99_us']:,.0f} / {r['e2e_max_us']:,.0f} us"
           if r["backlog"] == 0 else "n/a (backlog age)")
    name = label + (f" ({r['backlog']:,} records)" if r["backlog"] else "")
    print(f"| {name} | {r['msgs_per_s']:,.0f}{extra} | {r['mib_per_s']:.1f} | "
          f"{r['msgs_per_s'] / sync_iops:.2f} | "
          f"{r['publish_p50_us']:,.0f} / {r['publish_p99_us']:,.0f} us | "
          f"{r['ack_p50_us']:,.0f} / {r['ack_p99_us']:,.0f} us | {e2e} | "
          f"{r['syncs_per_msg']:.2f} ({r['topic_syncs']:,} + {r['journal_syncs']:,}) | "
          f"{mib(r['rss_max_kib'])} | {r['dir_bytes'] / 2**20:,.0f} MiB |")
e, b = rows["queue-empty"], rows["queue-backlog"]
e2 = rows["queue-empty-2"]
print()
print(f"Backlog vs empty: {b['msgs_per_s'] / e['msgs_per_s']:.2f} of the first empty run, "
      f"{b['msgs_per_s'] / e2['msgs_per_s']:.2f} of the second (target: within 10%). "
      f"Prefill: {b['backlog']:,} records in {b['prefill_s']:,.0f} s "
      f"({b['prefill_records_per_s']:,.0f} records/s, batches of 1,000). "
      f"Memory with the backlog: RSS max {mib(b['rss_max_kib'])} during the measured phase "
      f"(VmHWM {mib(b['vm_hwm_kib'])}{' after a reset at the end of the prefill' if b['hwm_reset'] else ''}; "
      f"{mib(b['vm_hwm_before_kib'])} peak during the prefill) (target: under 200 MB).")
print()
print("Every scenario checked its result: each message acked exactly once per "
      "subscription, every ack accepted, every publish at its own offset, the "
      "depth after the run as expected; ordered: at most one message per key "
      "in flight and offsets increasing per key.")
EOF
