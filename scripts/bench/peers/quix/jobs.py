"""The reference jobs (WORKLOAD.md) on Quix Streams, written as its users write them.

exactly-once processing guarantee, RocksDB state (changelog topics), commit interval 1 s; the
projection as a stateful update, the revenue windows as a tumbling window with a grace period.
Quix Streams has no end of input: the job stops once it has processed the topic's message count.

  python jobs.py --job upsert|windows --lateness stream-time|per-partition --brokers B --topic T
                 --group G --messages N --dir D --out F
"""

import argparse
import json
import sys
import time
from decimal import Decimal

from quixstreams import Application, message_context

p = argparse.ArgumentParser()
for name in ("job", "brokers", "topic", "group", "messages", "dir", "out"):
    p.add_argument(f"--{name}", required=True)
p.add_argument("--lateness", default="stream-time")
p.add_argument("--parallelism", default="1")
p.add_argument("--timeout-s", default="1800")
args = p.parse_args()
messages = int(args.messages)
deadline = time.monotonic() + float(args.timeout_s)

span = {"first": 0, "last": 0, "seen": 0, "forwarded": 0, "arrived": 0}


def position(value):
    """Commit order: snapshot rows below streamed changes, then (commit LSN, change LSN)."""
    source = value["source"]
    commit, change = None, None
    if source.get("sequence") is not None:
        commit, change = json.loads(source["sequence"])
    return (0 if value["op"] == "r" else 1, int(commit or 0), int(change if change is not None else source["lsn"]))


def maybe_stop():
    if span["seen"] >= messages and span["arrived"] >= span["forwarded"]:
        app.stop()
    elif time.monotonic() > deadline:
        print(f"timed out after {span['seen']} of {messages} messages", file=sys.stderr)
        sys.exit(3)


def on_processed(topic, partition, offset):
    if topic != args.topic:
        return
    now = int(time.time() * 1000)
    span["first"] = span["first"] or now
    span["last"] = now
    span["seen"] += 1
    maybe_stop()


app = Application(
    broker_address=args.brokers,
    consumer_group=args.group,
    auto_offset_reset="earliest",
    processing_guarantee="exactly-once",
    commit_interval=1.0,
    state_dir=args.dir,
    loglevel="WARNING",
    on_message_processed=on_processed,
)
source = app.topic(
    args.topic,
    key_deserializer="bytes",
    value_deserializer="json",
    timestamp_extractor=lambda value, headers, ts, kind: value["source"]["ts_ms"] if value else ts,
)
sdf = app.dataframe(source)
live = {"keys": 0, "cents": 0}
output = []

if args.job == "upsert":

    def upsert(value, state):
        if value is None:
            return  # a tombstone: the delete before it did the work
        pos = position(value)
        previous = state.get("latest")
        if previous is not None and tuple(previous["position"]) >= pos:
            return
        row = value["after"] if value["op"] != "d" else None
        cents = int(Decimal(row["amount"]) * 100) if row is not None else 0
        state.set("latest", {"position": pos, "row": row, "cents": cents})
        # For the bench's oracle check only: live rows and the sum of their amounts.
        if previous is not None and previous["row"] is not None:
            live["keys"] -= 1
            live["cents"] -= previous["cents"]
        if row is not None:
            live["keys"] += 1
            live["cents"] += cents

    sdf = sdf.update(upsert, stateful=True)
else:
    per_partition = args.lateness == "per-partition"
    max_ts = {}

    def on_time(value):
        """The reference rule per source partition (Quix's own grace is per key after group_by)."""
        if not per_partition:
            return True
        partition = message_context().partition
        ts = value["source"]["ts_ms"]
        window_end = ts - ts % 60_000 + 60_000
        top = max_ts.get(partition)
        late = top is not None and window_end - 1 + 30_000 <= top - 5_000 - 1
        max_ts[partition] = ts if top is None else max(top, ts)
        if late:
            output.append({"late": {"lsn": value["source"]["lsn"], "id": value["after"]["id"]}})
        return not late

    def slim(value):
        span["forwarded"] += 1
        return {"status": value["after"]["status"], "cents": int(Decimal(value["after"]["amount"]) * 100), "lsn": value["source"]["lsn"], "id": value["after"]["id"]}

    def arrived(value):
        # The span ends when the window stage has had the last record, not when the source had it.
        span["last"] = int(time.time() * 1000)
        span["arrived"] += 1
        maybe_stop()

    def late(value, key, timestamp_ms, late_by_ms, start, end, store_name, topic, partition, offset):
        output.append({"late": {"lsn": value["lsn"], "id": value["id"]}})
        return False

    results = {}

    def collect(value, key, timestamp, headers):
        status = key.decode() if isinstance(key, bytes) else str(key)
        cents = value["value"]["cents"]
        results[(value["start"], status)] = {"windowStart": value["start"], "windowEnd": value["end"], "status": status, "sum": f"{cents // 100}.{cents % 100:02d}" if cents >= 0 else str(Decimal(cents) / 100), "count": value["value"]["count"]}

    sdf = sdf.filter(lambda v: v is not None and v["op"] in ("c", "u", "r") and v["after"] is not None)
    sdf = sdf.filter(on_time).apply(slim)
    sdf = sdf.group_by(lambda v: v["status"], name="by-status", key_serializer="str", key_deserializer="str")
    sdf = sdf.update(arrived)
    grace_ms = 86_400_000 if per_partition else 35_000
    sdf = (
        sdf.tumbling_window(duration_ms=60_000, grace_ms=grace_ms, on_late=late)
        .reduce(reducer=lambda agg, v: {"cents": agg["cents"] + v["cents"], "count": agg["count"] + 1}, initializer=lambda v: {"cents": v["cents"], "count": 1})
        .current()
    )
    sdf = sdf.update(collect, metadata=True)

app.run()
with open(args.out, "w") as f:
    if args.job == "upsert":
        cents = live["cents"]
        f.write(json.dumps({"keys": live["keys"], "amount": f"{cents // 100}.{cents % 100:02d}"}) + "\n")
    else:
        for row in results.values():
            f.write(json.dumps({"window": row}) + "\n")
        for line in output:
            f.write(json.dumps(line) + "\n")
print("RESULT " + json.dumps({"first": span["first"], "last": span["last"], "records": span["seen"]}), flush=True)
