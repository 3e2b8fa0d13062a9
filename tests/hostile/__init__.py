"""The hostile-pod suite (issue 26): what a compromised pod, a full volume or a second runner can do.

The pod runs the training repo and every dependency as root and faces the Internet; these tests play
it as an attacker would (hostile SFTP listings and S3 keys, escape sequences in the log, a re-keyed
pod, a raw TCP connection to sshd) and as a long run's faults do (a 1 MiB volume filled up, a damaged state
file, two runners on one stack). docs/guide/security.md lists what the tool trusts and what it does not.
"""
