"""python -m standins.runpod_api --port 0 --api-key KEY [--ssh-host 127.0.0.1 --ssh-ports 2201,2202]"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .server import FakeRunPod


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m standins.runpod_api", description="Fake RunPod API on 127.0.0.1")
    ap.add_argument("--host", default="127.0.0.1", help="listen address (keep it on loopback)")
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    ap.add_argument("--api-key", default=None, help="the account key clients must send (default: random)")
    ap.add_argument("--ssh-host", default="127.0.0.1", help="host reported as the pods' direct SSH endpoint")
    ap.add_argument("--ssh-ports", default="", help="comma list; each pod start takes the next one, cycling")
    ap.add_argument("--boot-seconds", type=float, default=0.2, help="simulated PROVISIONING+STARTING time")
    args = ap.parse_args(argv)
    ports = [int(p) for p in args.ssh_ports.split(",") if p.strip()]
    fake = FakeRunPod(
        args.api_key,
        host=args.host,
        port=args.port,
        boot_seconds=args.boot_seconds,
        ssh_host=args.ssh_host,
        ssh_ports=ports,
    )
    # The handlers come before the URL is printed: whoever reads it may stop the fake right away.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    fake.start()
    print(fake.url, flush=True)  # first line: the base URL (REST); GraphQL is <url>/graphql
    print(f"RUNPOD_REST_URL={fake.rest_url}", flush=True)
    print(f"RUNPOD_GRAPHQL_URL={fake.graphql_url}", flush=True)
    if args.api_key is None:
        print(f"api key (random): {fake.api_key}", file=sys.stderr, flush=True)
    stop.wait()
    fake.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
