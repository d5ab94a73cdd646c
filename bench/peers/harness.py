"""The load generator the peer drivers share: the same two scenarios as
`hermod bench` (`publish`, `queue`), the same message (a sequence number and
the send time in microseconds as 32 hexadecimal digits, padded with 'x' to
the size asked) and the same report (messages/s over the whole run, latency
percentiles, a check that every message came exactly once).

Producers and consumers are separate processes (multiprocessing, fork), so
the Python client is not one interpreter's bottleneck. A driver module gives
a `Peer` class with:

    setup(args)            create the queue / stream (run once, in the parent)
    producer(args)         -> object with publish(body): returns once acked
    consumer(args, index)  -> object with receive(): list of bodies, already
                              acked (at most RECEIVE_MAX, waiting up to WAIT_S
                              for the first), and close()
    verify(args)           -> (ok, text): the broker's own view after the run
                              (nothing left unacked)
    teardown(args)

As in `hermod bench`, the end-to-end latency of a message is taken after the
consumer's ack of the batch it came in returned, from the send time written
in the message just before the publish call; in `publish` it is the publish
call's round trip (ack or confirm included).
"""

import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import time
from array import array

HEADER_BYTES = 32
RECEIVE_MAX = 100
WAIT_S = 0.5
STALL_S = 10.0


def now_us():
    return time.time_ns() // 1000


def make(seq, size):
    head = b"%016x%016x" % (seq, now_us())
    return head + b"x" * max(0, size - HEADER_BYTES)


def read(body):
    try:
        head = bytes(body[:HEADER_BYTES]).decode("ascii")
        return int(head[:16], 16), int(head[16:], 16)
    except (ValueError, UnicodeDecodeError):
        return None


def parse_args(argv, name):
    p = argparse.ArgumentParser(prog=name, description=__doc__.split("\n\n")[0])
    p.add_argument("scenario", choices=["publish", "queue"])
    p.add_argument("--url", required=True, help="where the peer listens")
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--count", type=int, default=20000)
    p.add_argument("--producers", type=int, default=4)
    p.add_argument("--consumers", type=int, default=4)
    p.add_argument("--name", default="hermod-bench", help="queue or stream name")
    p.add_argument("--variant", default="", help="peer-specific setting (see the driver)")
    return p.parse_args(argv)


def _producer(peer_cls, args, index, barrier, out, timed):
    try:
        client = peer_cls().producer(args)
        lat = array("q")
        barrier.wait()
        for seq in range(index, args.count, args.producers):
            body = make(seq, args.size)
            sent = time.perf_counter_ns()
            client.publish(body)
            if timed:
                lat.append((time.perf_counter_ns() - sent) // 1000)
        out.put(("producer", index, time.time(), lat.tobytes(), b"", 0, None))
        client.close()
    except BaseException as e:  # reported to the parent, which fails the run
        out.put(("producer", index, time.time(), b"", b"", 0, repr(e)))
        raise


def _consumer(peer_cls, args, index, barrier, out, received, producers_done):
    try:
        client = peer_cls().consumer(args, index)
        seqs, lat = array("q"), array("q")
        foreign = 0
        barrier.wait()
        idle_since = None
        while True:
            if received.value >= args.count:
                break
            bodies = client.receive()
            now = now_us()
            for b in bodies:
                got = read(b)
                if got is None:
                    foreign += 1
                    continue
                seqs.append(got[0])
                lat.append(max(1, now - got[1]))
            if bodies:
                with received.get_lock():
                    received.value += len(bodies)
                idle_since = None
            elif producers_done.value:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > STALL_S:
                    break
        out.put(("consumer", index, time.time(), lat.tobytes(), seqs.tobytes(), foreign, None))
        client.close()
    except BaseException as e:
        out.put(("consumer", index, time.time(), b"", b"", 0, repr(e)))
        raise


def percentiles(values):
    if not values:
        return {"p50": 0, "p90": 0, "p99": 0, "p999": 0, "max": 0}
    s = sorted(values)

    def at(q):
        return s[max(0, math.ceil(q * len(s)) - 1)]

    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "p999": at(0.999), "max": s[-1]}


def main(peer_cls, target_name, argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv, target_name)
    queue = args.scenario == "queue"
    peer_cls().setup(args)
    ctx = mp.get_context("fork")
    consumers = args.consumers if queue else 0
    barrier = ctx.Barrier(args.producers + consumers + 1)
    out = ctx.Queue()
    received = ctx.Value("q", 0)
    producers_done = ctx.Value("b", 0)
    procs = [ctx.Process(target=_producer, args=(peer_cls, args, i, barrier, out, not queue))
             for i in range(args.producers)]
    procs += [ctx.Process(target=_consumer,
                          args=(peer_cls, args, i, barrier, out, received, producers_done))
              for i in range(consumers)]
    for p in procs:
        p.start()
    barrier.wait(timeout=60)
    started = time.time()
    results = []
    finished_producers = 0
    while len(results) < len(procs):
        r = out.get(timeout=600)
        results.append(r)
        if r[0] == "producer":
            finished_producers += 1
            if finished_producers == args.producers:
                producers_done.value = 1
    for p in procs:
        p.join(timeout=30)
    errors = [f"{r[0]} {r[1]}: {r[6]}" for r in results if r[6]]
    ended = max(r[2] for r in results if r[0] == ("consumer" if queue else "producer"))
    seconds = max(ended - started, 1e-9)

    lat = array("q")
    seen = bytearray(args.count)
    duplicated = foreign = 0
    for r in results:
        lat.frombytes(r[3])
        foreign += r[5]
        s = array("q")
        s.frombytes(r[4])
        for seq in s:
            if 0 <= seq < args.count:
                if seen[seq]:
                    duplicated += 1
                seen[seq] = min(255, seen[seq] + 1)
            else:
                foreign += 1
    missing = seen.count(0) if queue else 0
    ok_peer, peer_check = peer_cls().verify(args)
    passed = not errors and missing == 0 and duplicated == 0 and foreign == 0 and ok_peer
    check = (f"{args.count} expected, {missing} missing, {duplicated} duplicated, "
             f"{foreign} unknown; broker: {peer_check}")
    if errors:
        check += "; errors: " + "; ".join(errors)
    peer_cls().teardown(args)
    report = {
        "scenario": args.scenario,
        "target": target_name + (f" ({args.variant})" if args.variant else ""),
        "size": args.size,
        "batch": 1,
        "producers": args.producers,
        "consumers": consumers,
        "messages": args.count,
        "seconds": seconds,
        "messages_per_s": args.count / seconds,
        "latency": ("end to end: publish call to receipt by a consumer, after its ack"
                    if queue else "publish round trip, per request"),
        "latency_us": percentiles(lat),
        "passed": passed,
        "check": check,
        "client": f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, "
                  f"{args.producers}+{consumers} processes",
    }
    print(json.dumps(report, indent=2))
    if not passed:
        print(f"{target_name}: the check failed: {check}", file=sys.stderr)
        sys.exit(1)
