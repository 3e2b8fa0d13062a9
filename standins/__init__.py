"""Stand-ins: what the tests and the benchmarks run instead of RunPod, the pod and the Pulumi CLI.

Everything here runs on this machine, on 127.0.0.1, with no cloud account:

  runpod_api   a faithful fake of the RunPod APIs we use (REST v2 + the GraphQL spot operations),
               real HTTP on 127.0.0.1 (`python -m standins.runpod_api --port 0 --api-key KEY`)
  pod_sandbox  a real OpenSSH server on 127.0.0.1 playing the pod (Sshd)
  pulumi_cli   a stub `pulumi` executable that records its calls and answers from a JSON file
  preemption   the pretend pod's "container" processes, and killing them as a preemption does
  hostile_sftp a hostile pod's SFTP server (paramiko's server side) listing names no file system holds
  demo         all of the above wired together for `bash scripts/demo.sh` (python -m standins.demo)

The pytest fixtures over them are thin wrappers in tests/fixtures/; bench/ uses them directly.
"""
