"""The live conformance check: `python -m runner.livecheck` (docs/getting-started/first-run.md).

It asks the real RunPod API (or whatever RUNPOD_REST_URL / RUNPOD_GRAPHQL_URL name: the suite points
them at the fake) what the client assumes, and prints which of the UNCONFIRMED assumptions (docs/internals/runpod-api.md)
it confirmed, refuted or could not check. By default it only reads. `--lifecycle --max-spend USD`
adds one short lifecycle (the cheapest pod created, read, stopped, terminated) under that cap,
cleaning up everything it created even on Ctrl-C, SIGTERM or a failure.

  findings.py    the assumptions, a Verdict per assumption, the report
  reads.py       the read-only probes
  lifecycle.py   the one short lifecycle (create, read, stop, terminate) and its probes
  created.py     what the lifecycle created: a record on disk, and the cleanup
  __main__.py    flags, the key check, signals, exit codes
"""
