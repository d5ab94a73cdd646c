#!/usr/bin/env bash
# The shop: the scenario Hermod is built for, run against a live server with
# curl and the `hermod` CLI.
#
# The member service and the order service publish domain events to the
# fanout exchange `shop-events`. The mail service reads every event from its
# queue `mail`; the coupon service reads only `OrderCompleted` events from its
# queue `coupons`. The coupon service's handler fails three times, so the event
# is dead-lettered to `coupon-dlq`; after the fix it is redriven and handled,
# and the message's trace tells the whole story.
#
# It does not start a server. Environment:
#   HERMOD_SERVER  the server's URL (default http://127.0.0.1:9080)
#   HERMOD         the hermod binary (default `hermod` on the PATH)
# Needs bash, curl, grep and sed. Deletes what it creates before it starts, so
# it can be run again on the same server. Ends with `shop scenario: ok`.
set -euo pipefail

SERVER=${HERMOD_SERVER:-http://127.0.0.1:9080}
SERVER=${SERVER%/}
HERMOD=${HERMOD:-hermod}
export HERMOD_SERVER=$SERVER

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "shop.sh: FAILED: $*" >&2
    exit 1
}

# expect WHAT EXPECTED ACTUAL: stops the scenario when ACTUAL is not EXPECTED.
expect() {
    if [[ "$3" != "$2" ]]; then
        fail "$1: expected '$2', got '$3'"
    fi
}

# expect_in WHAT NEEDLE TEXT: stops the scenario when TEXT lacks NEEDLE.
expect_in() {
    if [[ "$3" != *"$2"* ]]; then
        fail "$1: expected to find '$2' in: $3"
    fi
}

# api METHOD PATH [JSON]: one HTTP request; sets $status and $body.
api() {
    local args=(-sS -X "$1" -o "$tmp/body" -w '%{http_code}')
    if [[ $# -ge 3 ]]; then
        args+=(-H 'content-type: application/json' --data-binary "$3")
    fi
    status=$(curl "${args[@]}" "$SERVER$2") || fail "curl $1 $2 could not reach $SERVER"
    body=$(cat "$tmp/body")
}

# hermod ARGS...: the CLI; stops the scenario when it fails.
hermod() {
    "$HERMOD" "$@" || fail "hermod $* exited with status $?"
}

# count PATTERN TEXT: how many times PATTERN (a fixed string) occurs in TEXT.
count() {
    { grep -oF -- "$1" <<<"$2" || true; } | wc -l | tr -d ' '
}

# field NAME JSON: the text of the first string field NAME in compact JSON.
field() {
    { grep -oE "\"$1\":\"[^\"]*\"" <<<"$2" || true; } | sed -n '1s/^[^:]*:"\(.*\)"$/\1/p'
}

# queue_figure QUEUE NAME: a number from the queue's description (curl).
queue_figure() {
    api GET "/v1/queues/$1"
    expect "GET /v1/queues/$1 status" 200 "$status"
    sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" <<<"$body"
}

type -P "$HERMOD" >/dev/null || fail "no hermod binary at '$HERMOD' (set HERMOD)"
api GET /readyz
expect "server at $SERVER ready (GET /readyz)" 200 "$status"

echo "==> clean up what an earlier run left (not_found is fine)"
for path in /v1/exchanges/shop-events /v1/queues/coupons /v1/queues/mail /v1/queues/coupon-dlq; do
    api DELETE "$path"
    if [[ $status != 204 && $status != 404 ]]; then
        fail "DELETE $path: expected 204 or 404, got $status: $body"
    fi
done

echo "==> create the fanout exchange shop-events (CLI)"
hermod exchange create shop-events --kind fanout >/dev/null
api GET /v1/exchanges/shop-events
expect "exchange shop-events exists" 200 "$status"
expect_in "exchange shop-events kind" '"kind":"fanout"' "$body"

echo "==> create the queues coupon-dlq and mail (CLI)"
hermod queue create coupon-dlq >/dev/null
hermod queue create mail >/dev/null

echo "==> create the queue coupons: 3 deliveries at most, then coupon-dlq (curl)"
api PUT /v1/queues/coupons '{"max_deliveries": 3, "dead_letter": "coupon-dlq"}'
expect "PUT /v1/queues/coupons status" 201 "$status"
expect_in "coupons max_deliveries" '"max_deliveries":3' "$body"
expect_in "coupons dead_letter" '"dead_letter":"coupon-dlq"' "$body"
api PUT /v1/queues/coupons '{"max_deliveries": 3, "dead_letter": "coupon-dlq"}'
expect "PUT /v1/queues/coupons again, same settings (idempotent)" 200 "$status"

echo "==> bind shop-events -> mail, every event (CLI)"
hermod bind shop-events mail >/dev/null

echo "==> bind shop-events -> coupons, only type=OrderCompleted (curl)"
api POST /v1/bindings '{"exchange": "shop-events", "destination": "coupons",
  "filter": {"policy": "{\"type\": [\"OrderCompleted\"]}", "scope": "attributes"}}'
expect "POST /v1/bindings status" 201 "$status"
api GET '/v1/bindings?exchange=shop-events'
expect "GET /v1/bindings status" 200 "$status"
expect "bindings of shop-events" 2 "$(count '"destination":' "$body")"

echo "==> the member service publishes MemberJoined (curl)"
api POST /v1/exchanges/shop-events/messages \
    '{"value": {"type": "MemberJoined", "member": "m-42"}, "headers": {"type": "MemberJoined"}}'
expect "publish MemberJoined status" 200 "$status"
routed=$(sed -n 's/.*"routed":\[\([^]]*\)\].*/\1/p' <<<"$body")
expect_in "MemberJoined routed to mail" '"destination":"mail"' "$routed"
expect "MemberJoined destinations" 1 "$(count '"destination":' "$routed")"
member_id=$(field id "$body")
[[ -n $member_id ]] || fail "publish MemberJoined: no message id in: $body"

echo "==> the order service publishes OrderCompleted (CLI)"
order_id=$(hermod publish --exchange shop-events --header type=OrderCompleted \
    '{"type":"OrderCompleted","order":1001,"member":"m-42","total":59.9}')
expect "message ids printed by hermod publish" 1 "$(grep -c . <<<"$order_id")"
echo "    OrderCompleted is message $order_id"

echo "==> the mail service consumes its queue and gets both events (CLI, acks)"
mail=$(hermod consume --queue mail --max 10 --wait-ms 2000 --format raw)
expect "mail: MemberJoined events" 1 "$(count '"type":"MemberJoined"' "$mail")"
expect "mail: OrderCompleted events" 1 "$(count '"type":"OrderCompleted"' "$mail")"
expect "mail: events received" 2 "$(grep -c '"type":' <<<"$mail")"
expect "mail depth after the acks" 0 "$(queue_figure mail depth)"
expect "mail in flight after the acks" 0 "$(queue_figure mail in_flight)"

echo "==> the coupon service receives only OrderCompleted; its handler fails (curl: receive, nack)"
api POST /v1/queues/coupons/receive '{"max": 10, "wait_ms": 2000}'
expect "receive coupons status" 200 "$status"
expect "coupons: messages received" 1 "$(count '"receipt":' "$body")"
expect_in "coupons: the message" "\"id\":\"$order_id\"" "$body"
expect_in "coupons: first delivery" '"delivery_count":1' "$body"
receipt=$(field receipt "$body")
api POST /v1/queues/coupons/nack "{\"receipts\": [\"$receipt\"]}"
expect "nack status" 200 "$status"
expect_in "nack result" '"ok":true' "$body"

echo "==> the handler fails twice more (CLI: consume --nack)"
for delivery in 2 3; do
    got=$(hermod consume --queue coupons --max 1 --nack --wait-ms 2000 --format raw)
    expect "coupons: delivery $delivery" 1 "$(count '"type":"OrderCompleted"' "$got")"
done

echo "==> after 3 failed deliveries, coupons is empty"
api POST /v1/queues/coupons/receive '{"max": 10, "wait_ms": 1000}'
expect "receive coupons status" 200 "$status"
expect "coupons: messages received" 0 "$(count '"receipt":' "$body")"

echo "==> the event waits in coupon-dlq, with why it left (curl: receive, nack back)"
api POST /v1/queues/coupon-dlq/receive '{"max": 10, "wait_ms": 2000}'
expect "receive coupon-dlq status" 200 "$status"
expect "coupon-dlq: messages received" 1 "$(count '"receipt":' "$body")"
expect_in "coupon-dlq: the message" "\"id\":\"$order_id\"" "$body"
expect_in "coupon-dlq: dead-letter reason" '"reason":"max_deliveries"' "$body"
expect_in "coupon-dlq: dead-letter source" '"topic":"coupons"' "$body"
receipt=$(field receipt "$body")
api POST /v1/queues/coupon-dlq/nack "{\"receipts\": [\"$receipt\"]}"
expect "nack coupon-dlq status" 200 "$status"
dlq=$(hermod queue describe coupon-dlq --json)
expect "coupon-dlq depth (hermod queue describe --json)" 1 \
    "$(sed -n 's/.*"depth": *\([0-9]*\).*/\1/p' <<<"$dlq" | head -n 1)"

echo "==> after the fix: redrive coupon-dlq back to coupons (CLI)"
moved=$(hermod queue redrive coupon-dlq)
expect "messages moved by hermod queue redrive" 1 "$(grep -oE '[0-9]+' <<<"$moved" | head -n 1)"
expect "coupon-dlq depth after the redrive" 0 "$(queue_figure coupon-dlq depth)"

echo "==> the coupon service consumes the event and acks it (CLI)"
got=$(hermod consume --queue coupons --max 1 --wait-ms 5000 --format raw)
expect "coupons: OrderCompleted after the redrive" 1 "$(count '"type":"OrderCompleted"' "$got")"
expect "coupons depth after the ack" 0 "$(queue_figure coupons depth)"
expect "coupons in flight after the ack" 0 "$(queue_figure coupons in_flight)"

echo "==> where did OrderCompleted go? (CLI: hermod trace)"
hermod trace "$order_id"
api GET "/v1/messages/$order_id/trace"
expect "GET trace status" 200 "$status"
# Three failed deliveries: two nacks, and the third nack dead-letters it.
expect "trace: deliveries to the coupon service (3 failed, 1 after the fix)" 4 \
    "$(count '"event":"delivered","topic":"coupons"' "$body")"
expect "trace: nacks by the coupon service before the last try" 2 \
    "$(count '"event":"nacked","topic":"coupons"' "$body")"
expect "trace: moves to coupon-dlq" 1 "$(count '"to":"coupon-dlq"' "$body")"
expect "trace: acked by the mail service" 1 "$(count '"event":"acked","topic":"mail"' "$body")"
expect "trace: acked by the coupon service" 1 "$(count '"event":"acked","topic":"coupons"' "$body")"
api GET "/v1/messages/$member_id/trace"
expect "MemberJoined trace status" 200 "$status"
expect_in "MemberJoined: not routed to coupons" '"event":"not_routed"' "$body"

echo "shop scenario: ok"
