"""Benchmarks of the runner on loopback: the real local sshd plays the pod, the fake API plays RunPod.

Run: `bash scripts/bench.sh` (sets up, then `python -m bench`). docs/internals/benchmarks.md explains every figure.
"""
