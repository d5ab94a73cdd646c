"""Redis streams driver for bench/peers.sh (redis-py).

Producers XADD each message (one field, `d`) and wait for the reply; with
`appendonly yes` and `appendfsync always` Redis writes and fsyncs the AOF
before it replies (one fsync covers the writes of every client served in the
same event-loop turn). Consumers share one consumer group: XREADGROUP
COUNT RECEIVE_MAX BLOCK WAIT_S, then one XACK of every id received, as
`hermod bench` acks the batch it received in one request.
"""

import redis

import harness

GROUP = "bench"


class Peer:
    def setup(self, args):
        r = redis.Redis.from_url(args.url)
        r.delete(args.name)
        r.xgroup_create(args.name, GROUP, id="0", mkstream=True)

    def producer(self, args):
        return Producer(args)

    def consumer(self, args, index):
        return Consumer(args, index)

    def verify(self, args):
        r = redis.Redis.from_url(args.url)
        pending = r.xpending(args.name, GROUP)["pending"]
        length = r.xlen(args.name)
        ok = pending == 0 and length == args.count
        return ok, f"{pending} pending (unacked), {length} entries in the stream"

    def teardown(self, args):
        redis.Redis.from_url(args.url).delete(args.name)


class Producer:
    def __init__(self, args):
        self.r = redis.Redis.from_url(args.url)
        self.name = args.name

    def publish(self, body):
        self.r.xadd(self.name, {"d": body})

    def close(self):
        self.r.close()


class Consumer:
    def __init__(self, args, index):
        self.r = redis.Redis.from_url(args.url)
        self.name = args.name
        self.me = f"c{index}"

    def receive(self):
        got = self.r.xreadgroup(GROUP, self.me, {self.name: ">"},
                                count=harness.RECEIVE_MAX, block=int(harness.WAIT_S * 1000))
        if not got:
            return []
        entries = got[0][1]
        self.r.xack(self.name, GROUP, *[e[0] for e in entries])
        return [e[1][b"d"] for e in entries]

    def close(self):
        self.r.close()


if __name__ == "__main__":
    harness.main(Peer, "Redis")
