"""NATS JetStream driver for bench/peers.sh (nats-py).

A stream with file storage (one subject, limits retention, one replica: the
server is alone), and one durable pull consumer with explicit acks shared
by every consumer process (a work queue: each message goes to one of them).
Producers publish through JetStream and wait for each PubAck; consumers
pull up to RECEIVE_MAX (waiting up to WAIT_S for the first), ack each
message (`+ACK`, NATS's only per-message ack) and then flush the connection
once (a PING/PONG round trip), so each batch costs one round trip as in
`hermod bench`. Each process runs its own asyncio loop; the shared harness
is synchronous, so every call goes through `run_until_complete`.
`--variant memory` (memory storage) measures the client's own ceiling.
"""

import asyncio
import json
import time

import nats
from nats.js.api import AckPolicy, ConsumerConfig, StorageType
from nats.js.client import JetStreamContext

import harness

DURABLE = "bench"


def subject(args):
    return f"{args.name}.in"


class Peer:
    def setup(self, args):
        async def go():
            nc = await nats.connect(args.url)
            js = nc.jetstream()
            try:
                await js.delete_stream(args.name)
            except nats.js.errors.NotFoundError:
                pass
            await js.add_stream(name=args.name, subjects=[subject(args)],
                                storage=(StorageType.MEMORY if args.variant == "memory"
                                         else StorageType.FILE),
                                num_replicas=1)
            await js.add_consumer(args.name, ConsumerConfig(
                durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT,
                ack_wait=300, max_ack_pending=-1, max_waiting=512))
            await nc.close()
        asyncio.run(go())

    def producer(self, args):
        return Producer(args)

    def consumer(self, args, index):
        return Consumer(args)

    def verify(self, args):
        async def go():
            nc = await nats.connect(args.url)
            js = nc.jetstream()
            info = await js.consumer_info(args.name, DURABLE)
            stream = await js.stream_info(args.name)
            await nc.close()
            return info, stream.state.messages
        # Acks are processed by the server after the PONG: give them a moment.
        # A publish run leaves every message undelivered; a queue run none.
        undelivered = args.count if args.scenario == "publish" else 0
        for _ in range(20):
            info, stored = asyncio.run(go())
            ok = (info.num_ack_pending == 0 and info.num_pending == undelivered
                  and stored == args.count and info.num_redelivered == 0)
            if ok:
                break
            time.sleep(0.25)
        return ok, (f"{stored} stored, {info.num_ack_pending} unacked, "
                    f"{info.num_pending} undelivered, {info.num_redelivered} redelivered")

    def teardown(self, args):
        async def go():
            nc = await nats.connect(args.url)
            await nc.jetstream().delete_stream(args.name)
            await nc.close()
        asyncio.run(go())


class Producer:
    def __init__(self, args):
        self.loop = asyncio.new_event_loop()
        self.nc = self.loop.run_until_complete(nats.connect(args.url))
        self.js = self.nc.jetstream()
        self.subject = subject(args)

    def publish(self, body):
        # Waits for the PubAck (stream and sequence); an error raises.
        self.loop.run_until_complete(self.js.publish(self.subject, body, timeout=30))

    def close(self):
        self.loop.run_until_complete(self.nc.close())


class Consumer:
    """Pulls by hand rather than with nats-py's `fetch`, which after the
    first message waits out its whole timeout for the rest of the batch:
    first a `no_wait` request for up to RECEIVE_MAX (the server sends what
    it has, then a 404 status if that was fewer), and only when nothing was
    there a request for one message that expires after WAIT_S."""

    def __init__(self, args):
        self.loop = asyncio.new_event_loop()
        self.nc = self.loop.run_until_complete(nats.connect(args.url))
        self.api = f"$JS.API.CONSUMER.MSG.NEXT.{args.name}.{DURABLE}"
        self.inbox = self.nc.new_inbox()
        self.sub = self.loop.run_until_complete(self.nc.subscribe(self.inbox))

    def receive(self):
        return self.loop.run_until_complete(self._receive())

    async def _pull(self, request, most):
        await self.nc.publish(self.api, json.dumps(request).encode(), reply=self.inbox)
        msgs = []
        while len(msgs) < most:
            try:
                m = await self.sub.next_msg(timeout=harness.WAIT_S + 5)
            except nats.errors.TimeoutError:
                break
            if JetStreamContext.is_status_msg(m):
                break  # 404 no messages, 408 expired
            msgs.append(m)
        return msgs

    async def _receive(self):
        msgs = await self._pull({"batch": harness.RECEIVE_MAX, "no_wait": True},
                                harness.RECEIVE_MAX)
        if not msgs:
            expires_ns = int(harness.WAIT_S * 1e9)
            msgs = await self._pull({"batch": 1, "expires": expires_ns}, 1)
        for m in msgs:
            await m.ack()
        if msgs:
            await self.nc.flush()
        return [m.data for m in msgs]

    def close(self):
        self.loop.run_until_complete(self.nc.close())


if __name__ == "__main__":
    harness.main(Peer, "NATS JetStream")
