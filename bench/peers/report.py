"""Writes the markdown table of bench/peers.sh from its results directory:
one JSON report per run (`hermod bench --json` or a peer driver), `fio.json`
for the disk, `<label>.failed` for a run that failed."""

import argparse
import json
import os
import sys


def load(results):
    runs, failed = {}, []
    for name in sorted(os.listdir(results)):
        label, ext = os.path.splitext(name)
        if ext == ".json" and label != "fio":
            with open(os.path.join(results, name)) as f:
                runs[label] = json.load(f)
        elif ext == ".failed":
            failed.append(label)
    return runs, failed


def fio_line(results):
    path = os.path.join(results, "fio.json")
    if not os.path.exists(path):
        return "fio: not run", None
    with open(path) as f:
        job = json.load(f)["jobs"][0]
    iops = job["write"]["iops"]
    pct = job["sync"]["lat_ns"].get("percentile", {})
    p50 = pct.get("50.000000", 0) / 1000
    p99 = pct.get("99.000000", 0) / 1000
    return (f"fio, 1 KiB `write` + `fdatasync` each, one job: **{iops:,.0f} writes/s** "
            f"(sync p50 {p50:,.0f} µs, p99 {p99:,.0f} µs)"), iops


def ms(us):
    return f"{us / 1000:,.1f}"


def fig(r):
    if r is None:
        return "—"
    lat = r["latency_us"]
    mark = "" if r.get("passed", True) else " (check FAILED)"
    return f"{r['messages_per_s']:,.0f}; {ms(lat['p50'])} / {ms(lat['p99'])} ms{mark}"


def ratio(a, b):
    if a is None or b is None:
        return "—"
    return f"**{a['messages_per_s'] / b['messages_per_s']:.2f}**"


PEERS = [
    ("rabbitmq-classic", "fsync", "RabbitMQ, classic durable queue, persistent messages, "
                                  "publisher confirms, manual acks"),
    ("rabbitmq-quorum", "fsync", "RabbitMQ, quorum queue (1 node), same"),
    ("nats", "fsync", "NATS JetStream, file storage, PubAck, durable pull consumer, "
                      "explicit acks (**acked before fsync**)"),
    ("nats", "interval", "the same NATS run, against Hermod `interval:120000` "
                         "(acked after the write, synced within 2 min, as NATS 2.9)"),
    ("redis", "fsync", "Redis streams, `appendfsync always`: XADD, XREADGROUP, XACK"),
]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("results")
    for flag in ("count", "rev", "date", "cores", "load", "disk", "versions"):
        p.add_argument("--" + flag, default="?")
    a = p.parse_args()
    runs, failed = load(a.results)
    fio, _ = fio_line(a.results)
    get = runs.get

    print("## Hermod against peer brokers (`bench/peers.sh`)")
    print()
    print(f"{a.date}, commit `{a.rev}`, {a.cores} cores, data on {a.disk}, "
          f"load average {a.load}. {a.versions}.")
    print()
    print(f"Every run: {int(a.count):,} messages of 1 KiB, 4 producers, each "
          "publish (batch 1) waiting for its ack or confirm; `queue` adds 4 "
          "consumers at the same time, each message received and acked once. "
          "msgs/s over the whole run; latency p50 / p99: `publish`, the publish "
          "round trip; `queue`, end to end (send time in the message to the "
          "consumer's return from acking it).")
    print()
    print(f"Disk baseline (same run): {fio}.")
    print()
    print("| Workload | Peer | Peer: msgs/s; p50 / p99 | Hermod HTTP: msgs/s; p50 / p99 | "
          "HTTP ÷ peer | Hermod embedded: msgs/s; p50 / p99 | embedded ÷ peer |")
    print("|---|---|---|---|---|---|---|")
    for scenario in ("publish", "queue"):
        for peer, mode, desc in PEERS:
            r = get(f"{peer}-{scenario}")
            h = get(f"hermod-http-{mode}-{scenario}")
            e = get(f"hermod-embedded-{mode}-{scenario}")
            print(f"| `{scenario}` | {desc} | {fig(r)} | {fig(h)} | {ratio(h, r)} | "
                  f"{fig(e)} | {ratio(e, r)} |")
    print()
    print("Reference runs, same machine and run:")
    print()
    print("| Run | msgs/s; p50 / p99 | Note |")
    print("|---|---|---|")
    ceilings = [("rabbitmq-transient", "RabbitMQ, non-durable queue, transient messages "
                                       "(confirms and acks kept)"),
                ("nats-memory", "NATS JetStream, memory storage"),
                ("redis-memory", "Redis streams, no persistence")]
    for label, desc in ceilings:
        for s in ("publish", "queue"):
            print(f"| {desc}, `{s}`, same Python driver | {fig(get(f'{label}-{s}'))} | "
                  "that client's ceiling on this machine (nothing on disk) |")
    for where in ("http", "embedded"):
        low, peak = get(f"hermod-{where}-fsync-queue-1p"), get(f"hermod-{where}-fsync-queue")
        share = (f"{low['messages_per_s'] / peak['messages_per_s']:.2f} of the 4-producer rate"
                 if low and peak else "")
        print(f"| Hermod {where}, `queue`, fsync, **1 producer** | {fig(low)} | {share} |")
    for s in ("publish", "queue"):
        for mode in ("fsync", "interval"):
            h, e = get(f"hermod-http-{mode}-{s}"), get(f"hermod-embedded-{mode}-{s}")
            if h and e:
                print(f"| Hermod embedded ÷ HTTP, `{s}`, {mode} | "
                      f"{e['messages_per_s'] / h['messages_per_s']:.2f}× | |")
    print()
    checks = [f"{k}: {'ok' if v.get('passed') else 'FAILED'}" for k, v in sorted(runs.items())]
    print("Checks (every message received once; the broker's own count of what is left): "
          + "; ".join(checks) + ".")
    if failed:
        print()
        print("**Runs that failed**: " + ", ".join(failed) + ".")


if __name__ == "__main__":
    sys.exit(main())
