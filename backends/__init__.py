"""Where a GPU cloud plugs in: one package per cloud, plus the helpers every one of them needs.

    backends/polling.py     Backoff and poll_until: bounded waits with backoff (provider waits, reconnects)
    backends/ssh_probe.py   is an SSH server answering at host:port (its banner), without logging in
    backends/runpod/        RunPod: the HTTP client (REST v2, and GraphQL where v2 has nothing)

The Pulumi program (infra/) and the runner import a cloud's package; nothing here imports them.
"""
