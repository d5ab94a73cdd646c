#!/usr/bin/env bash
# Hermod against peer brokers on the same machine, disk and workload: fio as
# the disk baseline, then RabbitMQ, NATS JetStream and Redis streams (Debian
# packages, started here on loopback with durable settings) and Hermod (the
# HTTP API of `hermod serve`, and the engine in process), one at a time.
# Ends with a markdown table: each figure, the peer's, and the ratio.
#
#   bench/peers.sh [--quick] [--data DIR] [--count N] [--out FILE] [--no-install]
#                  [--only LIST]
#
# --quick       a smoke run (2,000 messages per run)
# --data        where the brokers keep their data (default target/bench-peers);
#               it must be on the disk to measure, not a tmpfs. The brokers'
#               data is removed at the end; the Python venv in it is kept.
# --count       messages per run (default 20,000)
# --out         where to write the table (default DIR/peers-results.md)
# --no-install  do not apt-get/pip anything; fail if something is missing
# --only        comma-separated subset of: hermod,embedded,rabbitmq,nats,redis
#               (the table then has holes)
#
# Needs root for apt-get (rabbitmq-server, nats-server, redis-server, fio,
# python3-venv), PyPI for the venv (pinned below), and cargo. Ports used, all
# on 127.0.0.1: 19080 (Hermod), 15673 (AMQP), 15674 and 14369 (Erlang
# distribution and epmd), 14223 (NATS), 16380 and 16381 (Redis).

set -euo pipefail

QUICK=0
DATA=
COUNT=
OUT=
INSTALL=1
ONLY=hermod,embedded,rabbitmq,nats,redis
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --data) DATA="$2"; shift ;;
        --count) COUNT="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        --no-install) INSTALL=0 ;;
        --only) ONLY="$2"; shift ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DATA=${DATA:-$ROOT/target/bench-peers}
if [ "$QUICK" = 1 ]; then
    COUNT=${COUNT:-2000}; FIO_SECS=3; FIO_SIZE=32m
else
    COUNT=${COUNT:-20000}; FIO_SECS=10; FIO_SIZE=128m
fi
OUT=${OUT:-$DATA/peers-results.md}
SIZE=1024
PRODUCERS=4
CONSUMERS=4

HERMOD_PORT=19080
AMQP_PORT=15673
ERL_DIST_PORT=15674
EPMD_PORT=14369
NATS_PORT=14223
REDIS_PORT=16380
REDIS_MEM_PORT=16381

PY_PINS=(pika==1.4.4 nats-py==2.9.0 redis==5.3.1)

# shellcheck source=bench/common.sh
. "$ROOT/bench/common.sh"

# ---------------------------------------------------------------- install

# Installs the Debian packages missing. Their maintainer scripts would start
# each service system-wide on its default port and on every address: a
# policy-rc.d that refuses service starts is put in place for the install,
# unless the machine already has one.
install_packages() {
    local missing=()
    command -v rabbitmq-server >/dev/null || missing+=(rabbitmq-server)
    command -v nats-server >/dev/null || missing+=(nats-server)
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v fio >/dev/null || missing+=(fio)
    python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
    [ ${#missing[@]} -gt 0 ] || return 0
    if [ "$INSTALL" = 0 ]; then
        echo "missing: ${missing[*]} (and --no-install given)" >&2
        exit 1
    fi
    log "installing ${missing[*]}"
    local policy=/usr/sbin/policy-rc.d ours=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod +x "$policy"
        ours=1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    if [ "$ours" = 1 ]; then rm -f "$policy"; fi
}

install_venv() {
    VENV="$DATA/venv"
    local have pin ok=1
    have=$("$VENV/bin/pip" freeze 2>/dev/null || true)
    for pin in "${PY_PINS[@]}"; do
        grep -qx "$pin" <<<"$have" || ok=0
    done
    [ "$ok" = 0 ] || return 0
    [ "$INSTALL" = 1 ] || { echo "no venv with ${PY_PINS[*]} in $VENV" >&2; exit 1; }
    log "making a venv with ${PY_PINS[*]}"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "${PY_PINS[@]}"
}

# ---------------------------------------------------------------- processes

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    rm -rf "$DATA/run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Stops one process we started: TERM, up to 15 s, then KILL.
stop_pid() {
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Stops every process started so far.
stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    PIDS=()
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Refuses to start if a port is taken: the figures would not be ours.
check_port_free() {
    if port_open "$1"; then
        echo "port $1 on 127.0.0.1 is in use; stop what holds it" >&2
        exit 1
    fi
}

# Waits until the last process started listens on port $2, at most $3 s;
# $1 names it for messages, $4 is its log.
wait_ready() {
    local name=$1 port=$2 secs=$3 logf=$4 pid=${PIDS[-1]}
    for _ in $(seq $(( secs * 10 ))); do
        if port_open "$port"; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$name exited while starting; its log ($logf):" >&2
            tail -n 30 "$logf" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "$name did not listen on $port within $secs s; its log ($logf):" >&2
    tail -n 30 "$logf" >&2
    exit 1
}

# ---------------------------------------------------------------- servers

start_hermod() {
    local d="$DATA/run/hermod"
    mkdir -p "$d"
    check_port_free "$HERMOD_PORT"
    "$BIN" serve --data-dir "$d/data" --http "127.0.0.1:$HERMOD_PORT" \
        --log-level warn > "$d/log" 2>&1 &
    PIDS+=("$!")
    wait_ready hermod "$HERMOD_PORT" 30 "$d/log"
}

# RabbitMQ 3.10 from Debian, as root, with everything (node data, logs,
# cookie, config) under the data dir and every listener on 127.0.0.1. epmd
# is started here in the foreground so that it is ours to stop.
start_rabbitmq() {
    local d="$DATA/run/rabbitmq"
    mkdir -p "$d/home" "$d/log"
    for p in "$AMQP_PORT" "$ERL_DIST_PORT" "$EPMD_PORT"; do check_port_free "$p"; done
    cat > "$d/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
log.file.level = warning
EOF
    echo '[].' > "$d/enabled_plugins"
    epmd -address 127.0.0.1 -port "$EPMD_PORT" > "$d/log/epmd.log" 2>&1 &
    PIDS+=("$!")
    wait_ready epmd "$EPMD_PORT" 10 "$d/log/epmd.log"
    HOME="$d/home" ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT="$EPMD_PORT" \
    RABBITMQ_NODENAME=hermodbench@localhost \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="$AMQP_PORT" \
    RABBITMQ_DIST_PORT="$ERL_DIST_PORT" \
    RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" \
    RABBITMQ_MNESIA_BASE="$d/mnesia" \
    RABBITMQ_LOG_BASE="$d/log" \
    RABBITMQ_PID_FILE="$d/rabbitmq.pid" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        /usr/lib/rabbitmq/bin/rabbitmq-server > "$d/log/stdout.log" 2>&1 &
    PIDS+=("$!")
    wait_ready rabbitmq "$AMQP_PORT" 120 "$d/log/stdout.log"
}

# nats-server 2.9 with JetStream on file storage under the data dir. 2.9
# has no sync_interval setting: the file store writes each message to the
# OS at once and fsyncs every 2 minutes (the default of later versions too).
start_nats() {
    local d="$DATA/run/nats"
    mkdir -p "$d"
    check_port_free "$NATS_PORT"
    cat > "$d/nats.conf" <<EOF
listen: 127.0.0.1:$NATS_PORT
jetstream {
    store_dir: "$d/js"
}
EOF
    nats-server -c "$d/nats.conf" > "$d/log" 2>&1 &
    PIDS+=("$!")
    wait_ready nats "$NATS_PORT" 30 "$d/log"
}

# Redis 7.0 with the append-only file fsync'd before every reply
# (appendfsync always), no RDB snapshots; or ($1 = memory) no AOF at all.
start_redis() {
    local mode=$1 port d aof
    if [ "$mode" = memory ]; then
        port=$REDIS_MEM_PORT; d="$DATA/run/redis-memory"; aof=(--appendonly no)
    else
        port=$REDIS_PORT; d="$DATA/run/redis"; aof=(--appendonly yes --appendfsync always)
    fi
    mkdir -p "$d"
    check_port_free "$port"
    redis-server --bind 127.0.0.1 --port "$port" --dir "$d" --save '' \
        "${aof[@]}" --daemonize no --logfile "$d/log" > "$d/stdout" 2>&1 &
    PIDS+=("$!")
    wait_ready redis "$port" 30 "$d/log"
}

# ---------------------------------------------------------------- runs

RESULTS="$DATA/results"

# Records one run's JSON report as $RESULTS/<label>.json, or its failure.
record() {
    local label=$1 out=$2 status=$3
    if [ "$status" = 0 ]; then
        printf '%s\n' "$out" > "$RESULTS/$label.json"
        python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("   ", round(r["messages_per_s"]), "msgs/s, latency us", r["latency_us"], r["check"])' \
            "$RESULTS/$label.json" >&2
    else
        printf '%s\n' "$out" > "$RESULTS/$label.failed"
        echo "    FAILED (status $status); output in $RESULTS/$label.failed" >&2
    fi
}

# hermod bench: label, scenario, then more arguments.
hermod_run() {
    local label=$1 scenario=$2; shift 2
    local cmd=("$BIN" bench "$scenario" --count "$COUNT" --size "$SIZE" --batch 1
        --producers "${RUN_PRODUCERS:-$PRODUCERS}" --consumers "$CONSUMERS" --json --quiet "$@")
    log "$label: ${cmd[*]}"
    local out status=0
    out=$("${cmd[@]}" 2>&1) || status=$?
    record "$label" "$out" "$status"
}

# A Python driver: label, driver, url, scenario, then more arguments.
peer_run() {
    local label=$1 driver=$2 url=$3 scenario=$4; shift 4
    local cmd=("$VENV/bin/python" "$ROOT/bench/peers/$driver.py" "$scenario" --url "$url"
        --count "$COUNT" --size "$SIZE" --producers "$PRODUCERS" --consumers "$CONSUMERS" "$@")
    log "$label: ${cmd[*]}"
    local out status=0
    out=$("${cmd[@]}" 2>"$RESULTS/$label.stderr") || status=$?
    record "$label" "$out" "$status"
}

wanted() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

# ---------------------------------------------------------------- main

install_packages
prepare_bench "$DATA"
install_venv
rm -rf "$RESULTS" "$DATA/run"
mkdir -p "$RESULTS" "$DATA/run"

log "building hermod (release)"
cargo build --release -q --bin hermod
TARGET=$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
# A frozen copy, so that a rebuild of the tree during the run (the machine is
# shared) cannot change the binary between runs.
BIN="$DATA/run/hermod-bin"
cp "$TARGET/release/hermod" "$BIN"
REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')

log "fio: 1 KiB write + fdatasync each, one job"
rm -rf "$DATA/run/fio"; mkdir -p "$DATA/run/fio"
fio --directory="$DATA/run/fio" --output-format=json --ioengine=psync --direct=0 \
    --fallocate=none --name=sync1k --rw=write --bs=1k --fdatasync=1 \
    --size="$FIO_SIZE" --runtime="$FIO_SECS" > "$RESULTS/fio.json"
rm -rf "$DATA/run/fio"

# Hermod over HTTP: fsync (the peers' durable settings), then the durability
# closest to NATS 2.9's (write at once, sync within 2 minutes), then the
# queue with one producer for the latency below the peak rate.
run_hermod() {
    local url="http://127.0.0.1:$HERMOD_PORT" s
    start_hermod
    for s in publish queue; do
        hermod_run "hermod-http-fsync-$s" "$s" --server "$url" --durability fsync
    done
    for s in publish queue; do
        hermod_run "hermod-http-interval-$s" "$s" --server "$url" --durability interval:120000
    done
    RUN_PRODUCERS=1 hermod_run hermod-http-fsync-queue-1p queue --server "$url" --durability fsync
    stop_all
}

# Hermod in process, the same runs.
run_embedded() {
    local dir="$DATA/run/embedded" s
    mkdir -p "$dir"
    for s in publish queue; do
        hermod_run "hermod-embedded-fsync-$s" "$s" --embedded --data-dir "$dir" --durability fsync
    done
    for s in publish queue; do
        hermod_run "hermod-embedded-interval-$s" "$s" --embedded --data-dir "$dir" \
            --durability interval:120000
    done
    RUN_PRODUCERS=1 hermod_run hermod-embedded-fsync-queue-1p queue --embedded \
        --data-dir "$dir" --durability fsync
}

run_rabbitmq() {
    local url="amqp://guest:guest@127.0.0.1:$AMQP_PORT/%2F" v s
    start_rabbitmq
    # transient: the same client against a queue kept in memory, for its
    # own ceiling.
    for v in classic quorum transient; do
        for s in publish queue; do
            peer_run "rabbitmq-$v-$s" rabbitmq "$url" "$s" --variant "$v"
        done
    done
    stop_all
}

run_nats() {
    local s
    start_nats
    for s in publish queue; do
        peer_run "nats-$s" nats_js "nats://127.0.0.1:$NATS_PORT" "$s"
    done
    for s in publish queue; do
        peer_run "nats-memory-$s" nats_js "nats://127.0.0.1:$NATS_PORT" "$s" --variant memory
    done
    stop_all
}

# Redis with the AOF fsync'd before every reply; then, for the Python
# client's own ceiling, the same driver against Redis with no persistence.
run_redis() {
    local s
    start_redis always
    for s in publish queue; do
        peer_run "redis-$s" redis_streams "redis://127.0.0.1:$REDIS_PORT/0" "$s"
    done
    stop_all
    start_redis memory
    for s in publish queue; do
        peer_run "redis-memory-$s" redis_streams "redis://127.0.0.1:$REDIS_MEM_PORT/0" "$s"
    done
    stop_all
}

# One at a time, so that no broker idles beside another's run.
for what in hermod embedded rabbitmq nats redis; do
    if wanted "$what"; then "run_$what"; fi
done

END_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report

python3 "$ROOT/bench/peers/report.py" "$RESULTS" \
    --count "$COUNT" --rev "$REV" --date "$STARTED" --cores "$(nproc)" \
    --load "$START_LOAD at start, $END_LOAD at end" \
    --disk "$FSTYPE on $(df --output=source "$DATA" | tail -1)" \
    --versions "$(dpkg-query -W -f '${Package} ${Version}; ' rabbitmq-server nats-server redis-server erlang-base 2>/dev/null)python $("$VENV/bin/python" -c 'import sys; print(sys.version.split()[0])') with ${PY_PINS[*]}" \
    > "$OUT"
cat "$OUT"
log "table written to $OUT"
if ls "$RESULTS"/*.failed >/dev/null 2>&1; then
    echo "some runs failed: $(cd "$RESULTS" && ls ./*.failed)" >&2
    exit 1
fi
