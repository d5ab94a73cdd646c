#!/usr/bin/env bash
# Storage benchmarks: fio baselines and the Hermod storage scenarios
# (crates/storage/examples/storage_bench.rs) on the same disk in one run,
# ending with a markdown table of the figures and their ratio to the baseline.
#
#   bench/storage.sh [--quick] [--data DIR]
#
# --quick   a short smoke run (small sizes, 2 s durations)
# --data    where to put benchmark files (default target/bench-data); it must be
#           on the disk to measure, not on a tmpfs. It is removed at the end.
#
# Sizes are binary (GiB, MiB/s). Needs fio (installed with apt-get if missing),
# python3 and cargo. Dropping the page cache needs root; without it, read and
# open figures are warm-cache and say so.

set -euo pipefail

QUICK=0
DATA=
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --data) DATA="$2"; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DATA=${DATA:-$ROOT/target/bench-data}

if [ "$QUICK" = 1 ]; then
    SECS=2; APPEND_GIB=0.25; INMEM_GIB=0.25; READ_GIB=0.25
    OPEN_GIB=0.5; OPEN_SEGMENTS=50; FIO_SEQ=256m; FIO_SYNC_SECS=2; FIO_SYNC_SIZE=256m
    NEED_GIB=3
else
    SECS=10; APPEND_GIB=2; INMEM_GIB=1; READ_GIB=2
    OPEN_GIB=10; OPEN_SEGMENTS=1000; FIO_SEQ=2g; FIO_SYNC_SECS=30; FIO_SYNC_SIZE=4g
    NEED_GIB=16
fi

# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"

# ---------------------------------------------------------------- checks

prepare_bench "$DATA"
AVAIL_GIB=$(( $(df --output=avail -k "$DATA" | tail -1) / 1024 / 1024 ))
if [ "$AVAIL_GIB" -lt "$NEED_GIB" ]; then
    echo "$DATA has ${AVAIL_GIB} GiB free, this run needs about ${NEED_GIB} GiB" >&2
    exit 1
fi

RESULTS="$DATA/results.tsv"
: > "$RESULTS"
cleanup() {
    rm -rf "$DATA"/fio "$DATA"/hermod "$DATA"/storage_bench "$DATA"/results.tsv
    rmdir "$DATA" 2>/dev/null || true
}
trap cleanup EXIT

# Drops the page cache if allowed; prints cold or warm.
drop_caches() {
    sync
    if echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; then echo cold; else echo warm; fi
}

# ---------------------------------------------------------------- build

log "building storage_bench (release)"
cargo build --release -q -p hermod-storage --example storage_bench
# What was built (the tree may change while the benchmarks run).
REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git status --porcelain -- crates/storage 2>/dev/null | grep -c . || true)
TARGET=$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
# A frozen copy, so that edits made to the tree during the run (the machine is
# shared) cannot trigger a rebuild between scenarios.
BIN="$DATA/storage_bench"
cp "$TARGET/release/examples/storage_bench" "$BIN"

# Runs one Hermod scenario: label, then storage_bench arguments.
hermod() {
    local label=$1; shift
    log "hermod $label: $*"
    local out
    out=$("$BIN" "$@")
    printf '%s\n' "$out" | grep '^#' >&2
    printf '%s\t%s\n' "$label" "$(printf '%s\n' "$out" | grep '^{')" >> "$RESULTS"
}

# Runs one fio job: label, then fio arguments. Keeps fio's JSON.
fio_job() {
    local label=$1; shift
    log "fio $label: $*"
    rm -rf "$DATA/fio"; mkdir -p "$DATA/fio"
    local out
    out=$(fio --directory="$DATA/fio" --output-format=json --ioengine=psync \
        --direct=0 --fallocate=none "$@")
    printf '%s\t%s\n' "$label" "$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))')" >> "$RESULTS"
    rm -rf "$DATA/fio"
}

H="$DATA/hermod"
READ_MIB=$(python3 -c "print(int($READ_GIB * 1024))")
START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- hermod appends

for w in 1 16 64; do
    hermod "fsync-w$w" append --durability fsync --writers "$w" --record-bytes 1024 \
        --batch 1 --seconds "$SECS" --dir "$H/fsync"
done
# Batched appends, stopped after the same size as the fio sequential write.
hermod interval append --durability interval --interval-ms 100 --writers 1 \
    --record-bytes 1024 --batch 100 --gib "$APPEND_GIB" --seconds 120 --dir "$H/interval"
# The same with a Flusher thread (10 ms period), as a broker would run one.
hermod interval-flusher append --durability interval --interval-ms 100 --flusher-ms 10 \
    --writers 1 --record-bytes 1024 --batch 100 --gib "$APPEND_GIB" --seconds 120 \
    --dir "$H/interval"
hermod memory append --durability memory --writers 1 --record-bytes 1024 \
    --batch 100 --gib "$APPEND_GIB" --seconds 120 --dir "$H/memory"
hermod in-memory append --durability in-memory --writers 1 --record-bytes 1024 \
    --batch 100 --gib "$INMEM_GIB" --seconds 120

# The exact size of one Hermod batch of 100 x 1 KiB records.
BATCH_BYTES=$(grep -P '^interval\t' "$RESULTS" | cut -f2 \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["bytes"]//r["appends"])')

# ---------------------------------------------------------------- fio baselines

fio_job seqwrite --name=seqwrite --rw=write --bs="$BATCH_BYTES" --size="$FIO_SEQ" \
    --end_fsync=1
fio_job syncwrite --name=syncwrite --rw=write --bs=4k --fdatasync=1 \
    --size="$FIO_SYNC_SIZE" --runtime="$FIO_SYNC_SECS" --time_based=0
# Sequential read of a file as large as the Hermod read, from a cold cache.
rm -rf "$DATA/fio"; mkdir -p "$DATA/fio"
fio --directory="$DATA/fio" --name=seqread --rw=write --bs=1m --size="${READ_MIB}m" \
    --ioengine=psync --end_fsync=1 --fallocate=none --output=/dev/null
FIO_READ_CACHE=$(drop_caches)
log "fio seqread ($FIO_READ_CACHE cache)"
printf '%s\t%s\n' seqread "$(fio --directory="$DATA/fio" --name=seqread --rw=read --bs=1m \
    --size="${READ_MIB}m" --ioengine=psync --direct=0 --output-format=json \
    | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))')" >> "$RESULTS"
rm -rf "$DATA/fio"

# ---------------------------------------------------------------- hermod read, open

hermod read read --gib "$READ_GIB" --record-bytes 1024 --batch 100 \
    --read-bytes 1048576 --drop-caches --dir "$H/read"
hermod open open --gib "$OPEN_GIB" --segments "$OPEN_SEGMENTS" --record-bytes 1024 \
    --batch 100 --repeat 3 --drop-caches --dir "$H/open"

END_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report

MODE=$([ "$QUICK" = 1 ] && echo "quick (smoke) run" || echo "full run")
python3 - "$RESULTS" <<EOF
import json, sys
rows = {}
for line in open(sys.argv[1]):
    label, js = line.rstrip("\n").split("\t", 1)
    rows[label] = json.loads(js)

def fio_write(label):
    return rows[label]["jobs"][0]["write"]
def fio_read(label):
    return rows[label]["jobs"][0]["read"]

seq = fio_write("seqwrite")["bw_bytes"] / 2**20
sync = rows["syncwrite"]["jobs"][0]
sync_iops = sync["write"]["iops"]
sync_pct = sync["sync"]["lat_ns"].get("percentile", {})
sync_p50 = sync_pct.get("50.000000", 0) / 1000
sync_p99 = sync_pct.get("99.000000", 0) / 1000
read_bw = fio_read("seqread")["bw_bytes"] / 2**20

def ratio(a, b):
    return f"{a / b:.2f}" if b else "n/a"
def check(ok):
    return "yes" if ok else "**no**"

print()
print(f"## Hermod storage benchmark ($MODE)")
print()
print(f"Commit $REV (+$DIRTY changed files under crates/storage), $(nproc) cores, "
      f"data in $DATA ($FSTYPE on $(df --output=source "$DATA" | tail -1)), "
      f"load average $START_LOAD at start, $END_LOAD at end (machine shared with other jobs: figures are noisy).")
print()
print("| Scenario | Hermod | fio baseline | Ratio | Target | Met |")
print("|---|---|---|---|---|---|")
print(f"| fio seq write, bs=$BATCH_BYTES B (one Hermod batch), $FIO_SEQ, end_fsync | | {seq:.0f} MiB/s | | | |")
print(f"| fio 4 KiB write + fdatasync each | | {sync_iops:.0f} syncs/s (p50 {sync_p50:.0f} us, p99 {sync_p99:.0f} us) | | | |")
print(f"| fio seq read, bs=1 MiB, ${READ_GIB} GiB ($FIO_READ_CACHE cache) | | {read_bw:.0f} MiB/s | | | |")
for w in (1, 16, 64):
    r = rows[f"fsync-w{w}"]
    target = "≥ 100,000 records/s" if w == 64 else ""
    met = check(r["records_per_s"] >= 100000) if w == 64 else ""
    print(f"| append fsync, {w} writer{'s' if w > 1 else ''}, 1 KiB records, 1/append | "
          f"{r['records_per_s']:,.0f} records/s, {r['syncs_per_s']:,.0f} syncs/s "
          f"({r['records_per_sync']:.1f} records/sync), p50 {r['lat_p50_us']:,.0f} us, "
          f"p99 {r['lat_p99_us']:,.0f} us, p999 {r['lat_p999_us']:,.0f} us | "
          f"{sync_iops:.0f} syncs/s | syncs {ratio(r['syncs_per_s'], sync_iops)} | {target} | {met} |")
for label, name in (("interval", "interval 100 ms"),
                    ("interval-flusher", "interval 100 ms + Flusher 10 ms"), ("memory", "memory (on disk, never synced)"),
                    ("in-memory", "memory (open_in_memory, SimFs)")):
    r = rows[label]
    mib = r["mib_per_s_incl_final_sync"]
    target = "≥ 0.8 × fio" if label == "interval" else ""
    met = check(mib >= 0.8 * seq) if label == "interval" else ""
    extra = f", RSS {r['rss_after_kib'] / 1024:,.0f} MiB after" if label == "in-memory" else ""
    if label.startswith("interval"):
        extra = f", p999 {r['lat_p999_us']:,.0f} us, max {r['lat_max_us']:,.0f} us, {r['syncs']} syncs"
    print(f"| append {name}, 1 writer, 100 × 1 KiB/append, {r['bytes'] / 2**30:.2f} GiB | "
          f"{mib:,.0f} MiB/s incl. final sync ({r['mib_per_s']:,.0f} before it), "
          f"{r['records_per_s']:,.0f} records/s, p99 {r['lat_p99_us']:,.0f} us{extra} | "
          f"{seq:.0f} MiB/s | {ratio(mib, seq)} | {target} | {met} |")
r = rows["read"]
print(f"| read {r['gib']:.2f} GiB sequentially, 1 MiB reads ({r['cache']} cache) | "
      f"{r['mib_per_s']:,.0f} MiB/s; RSS {r['rss_before_kib'] / 1024:.1f} MiB before, "
      f"max {r['rss_max_during_kib'] / 1024:.1f} MiB during, VmHWM {r['vm_hwm_kib'] / 1024:.1f} MiB"
      f"{' (reset before the read)' if r['hwm_reset_before_read'] else ''} | "
      f"{read_bw:.0f} MiB/s | {ratio(r['mib_per_s'], read_bw)} | | |")
r = rows["open"]
print(f"| open {r['gib']:.2f} GiB in {r['segments']} segments, clean ({r['cache']} cache) | "
      f"{r['clean_open_ms']:,.1f} ms (runs {r['clean_open_ms_all']}) | | | | |")
print(f"| open after crash, same log ({r['cache']} cache) | "
      f"{r['crash_open_ms']:,.1f} ms (runs {r['crash_open_ms_all']}), scanned "
      f"{r['crash_scanned_bytes'] / 2**20:.1f} MiB | | | | |")
print()
print("All Hermod scenarios checked their results (offsets contiguous and equal to the "
      "acknowledged records; every record read back; recovered end offset equal to the one before the crash).")
EOF
