"""RabbitMQ driver for bench/peers.sh (pika, AMQP 0-9-1).

A durable queue (`--variant classic`, the default, or `--variant quorum`),
persistent messages (delivery_mode 2) published to it through the default
exchange on a channel in confirm mode: each publish returns when the broker's
basic.ack (the publisher confirm) arrived, which for a persistent message on
a durable queue means it was written to disk. Consumers use manual acks with
a prefetch of RECEIVE_MAX: each takes what has arrived (waiting up to WAIT_S
for the first) and acks it with one basic.ack(multiple=True), as
`hermod bench` acks the batch of up to RECEIVE_MAX it received in one
request. `--variant transient` (a non-durable classic queue, transient
messages, still confirms and acks) measures the client's own ceiling.
"""

import pika

import harness


def params(url):
    p = pika.URLParameters(url)
    p.heartbeat = 0
    return p


class Peer:
    def setup(self, args):
        with pika.BlockingConnection(params(args.url)) as conn:
            ch = conn.channel()
            ch.queue_delete(args.name)
            transient = args.variant == "transient"
            qtype = "classic" if transient else (args.variant or "classic")
            ch.queue_declare(args.name, durable=not transient,
                             arguments={"x-queue-type": qtype})

    def producer(self, args):
        return Producer(args)

    def consumer(self, args, index):
        return Consumer(args)

    def verify(self, args):
        with pika.BlockingConnection(params(args.url)) as conn:
            q = conn.channel().queue_declare(args.name, passive=True)
            left = q.method.message_count
        # A publish run leaves every message in the queue; a queue run none.
        want = args.count if args.scenario == "publish" else 0
        return left == want, f"{left} messages in the queue (ready or unacked), {want} expected"

    def teardown(self, args):
        with pika.BlockingConnection(params(args.url)) as conn:
            conn.channel().queue_delete(args.name)


class Producer:
    def __init__(self, args):
        self.conn = pika.BlockingConnection(params(args.url))
        self.ch = self.conn.channel()
        self.ch.confirm_delivery()
        self.name = args.name
        self.props = pika.BasicProperties(delivery_mode=1 if args.variant == "transient" else 2)

    def publish(self, body):
        # In confirm mode this blocks until the broker's basic.ack; a nack or
        # an unroutable message raises.
        self.ch.basic_publish("", self.name, body, self.props, mandatory=True)

    def close(self):
        self.conn.close()


class Consumer:
    def __init__(self, args):
        self.conn = pika.BlockingConnection(params(args.url))
        self.ch = self.conn.channel()
        self.ch.basic_qos(prefetch_count=harness.RECEIVE_MAX)
        self.got = []
        self.last_tag = None
        self.ch.basic_consume(args.name, self.on_message, auto_ack=False)

    def on_message(self, _ch, method, _props, body):
        self.got.append(body)
        self.last_tag = method.delivery_tag

    def receive(self):
        if not self.got:
            # Returns as soon as deliveries are dispatched, or after WAIT_S.
            self.conn.process_data_events(time_limit=harness.WAIT_S)
        bodies, self.got = self.got, []
        if bodies:
            self.ch.basic_ack(self.last_tag, multiple=True)
            # Send the ack now rather than with the next read.
            self.conn.process_data_events(time_limit=0)
        return bodies

    def close(self):
        self.conn.close()


if __name__ == "__main__":
    harness.main(Peer, "RabbitMQ")
