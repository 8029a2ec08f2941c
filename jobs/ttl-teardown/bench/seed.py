#!/usr/bin/env python3
"""Helpers for compare-custodian.sh (run with the moto venv's python: it has boto3).

  seed.py seed ENDPOINT N            RunInstances in batches; prints the expected counts as JSON
  seed.py describe ENDPOINT          bare paginated DescribeInstances (the floor); prints JSON
  seed.py count-ttl EVENT.json       counts ttl-teardown's findings; prints JSON
  seed.py count-c7n RESOURCES.json   counts custodian's matched resources; prints JSON
  seed.py first-request PORT ENDPOINT CMD...
                                     runs CMD behind a relay on 127.0.0.1:PORT to ENDPOINT; prints
                                     the ms from starting CMD to its first connection (then stops it)

The tag mix, every instance in region us-east-1 of moto's account 123456789012, ttl 7d:
  ~10% expired and already warned (created 10 days ago, ttl-notified-stage=warn-24h@deadline):
       both tools should select exactly these;
  ~5%  prod (environment=prod, created 20 days ago): protected / filtered out;
  ~5%  bad tags (no cost-center, ttl=90d, created 1 day ago): a tag violation for ttl-teardown,
       too young for custodian's age filter;
  rest fresh (created 0-4 days ago): nothing to do.
The same tags go on each instance's root volume (TagSpecifications for `volume`).
"""

import json
import os
import resource
import sys
import time
from datetime import datetime, timedelta, timezone

import boto3

REGION = "us-east-1"
BATCH = 100  # MaxCount per RunInstances call


def client(endpoint):
    return boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def base_tags(created, **overrides):
    tags = {
        "environment": "dev",
        "owner": "dev@example.com",
        "project": "checkout",
        "cost-center": "cc-1",
        "ttl": "7d",
        "created_at": iso(created),
        "auto-teardown": "true",
        "data-class": "internal",
    }
    tags.update(overrides)
    return {k: v for k, v in tags.items() if v is not None}


def plan(n, now):
    """[(category, count, tags)] summing to n; each entry becomes ceil(count/BATCH) calls."""
    expired = round(n * 0.10)
    prod = round(n * 0.05)
    bad = round(n * 0.05)
    fresh = n - expired - prod - bad
    created_expired = now - timedelta(days=10)
    deadline = created_expired + timedelta(days=7)
    groups = [
        ("expired", expired,
         lambda i: base_tags(created_expired, **{"ttl-notified-stage": "warn-24h@" + iso(deadline)})),
        ("prod", prod, lambda i: base_tags(now - timedelta(days=20), environment="prod")),
        ("bad-tags", bad,
         lambda i: base_tags(now - timedelta(days=1), **{"cost-center": None, "ttl": "90d"})),
        # Spread the fresh ones over 0-4 days of age, one age per call.
        ("fresh", fresh, lambda i: base_tags(now - timedelta(days=i % 5, hours=i % 7))),
    ]
    return groups


def seed(endpoint, n):
    ec2 = client(endpoint)
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    now = datetime.now(timezone.utc).replace(microsecond=0)
    counts = {}
    calls = 0
    t0 = time.monotonic()
    for category, count, make_tags in plan(n, now):
        counts[category] = count
        left, i = count, 0
        while left > 0:
            k = min(BATCH, left)
            tags = [{"Key": key, "Value": v} for key, v in make_tags(i).items()]
            ec2.run_instances(
                ImageId=ami,
                MinCount=k,
                MaxCount=k,
                InstanceType="t3.large",
                TagSpecifications=[
                    {"ResourceType": "instance", "Tags": tags},
                    {"ResourceType": "volume", "Tags": tags},
                ],
            )
            left -= k
            i += 1
            calls += 1
    counts["total"] = n
    counts["run_instances_calls"] = calls
    counts["seconds"] = round(time.monotonic() - t0, 1)
    print(json.dumps(counts))


def describe(endpoint):
    ec2 = client(endpoint)
    # Build the client (and load botocore's models) before the clock starts.
    ec2.meta.events  # noqa: B018
    c0, t0 = os.times(), time.monotonic()
    instances = pages = 0
    for page in ec2.get_paginator("describe_instances").paginate(
        PaginationConfig={"PageSize": 1000}
    ):
        pages += 1
        instances += sum(len(r["Instances"]) for r in page["Reservations"])
    wall = time.monotonic() - t0
    c1 = os.times()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall": round(wall, 2), "cpu": round(cpu, 2), "rss_mb": round(rss_mb, 1),
                      "instances": instances, "pages": pages}))


def count_ttl(path):
    with open(path) as f:
        event = json.load(f)
    findings = event.get("findings", [])
    by = {}
    delete_instances = delete_total = 0
    for f in findings:
        key = "%s/%s" % (f.get("type"), f.get("action", "-"))
        by[key] = by.get(key, 0) + 1
        if f.get("action") == "delete":
            delete_total += 1
            if ":instance/" in f.get("resource", ""):
                delete_instances += 1
    kinds = {}
    for f in findings:
        kind = f.get("kind") or f.get("resource", "").split(":")[-1].split("/")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    print(json.dumps({
        "status": event.get("status"),
        "dry_run": event.get("dry_run"),
        "summary": event.get("summary"),
        "findings": len(findings),
        "delete_instances": delete_instances,
        "delete_total": delete_total,
        "by_type_action": dict(sorted(by.items())),
        "by_kind": dict(sorted(kinds.items())),
        "errors": len(event.get("errors", [])),
    }))


def count_c7n(path):
    with open(path) as f:
        resources = json.load(f)
    print(json.dumps({"matched": len(resources)}))


def first_request(port, endpoint, cmd):
    """Milliseconds from starting `cmd` to the first connection it opens to a relay on `port`,
    which forwards to `endpoint` (the command's config or AWS_ENDPOINT_URL names the relay).
    The command is stopped once that connection has been made (its run is not what is measured);
    it must connect within 20 s."""
    import socket
    import subprocess
    import threading
    import urllib.parse

    target = urllib.parse.urlparse(endpoint)
    listener = socket.create_server(("127.0.0.1", port))
    first = threading.Event()
    at = []

    def pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            try:
                b.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def relay():
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if not at:
                at.append(time.monotonic())
                first.set()
            upstream = socket.create_connection((target.hostname, target.port))
            threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()

    threading.Thread(target=relay, daemon=True).start()
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    connected = first.wait(20)
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    listener.close()
    if not connected:
        sys.exit("%s made no connection within 20 s" % cmd[0])
    print(json.dumps({"first_request_ms": round(1000 * (at[0] - start), 1)}))


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    cmd = argv[1]
    if cmd == "seed" and len(argv) == 4:
        seed(argv[2], int(argv[3]))
    elif cmd == "describe":
        describe(argv[2])
    elif cmd == "count-ttl":
        count_ttl(argv[2])
    elif cmd == "count-c7n":
        count_c7n(argv[2])
    elif cmd == "first-request" and len(argv) >= 5:
        first_request(int(argv[2]), argv[3], argv[4:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
