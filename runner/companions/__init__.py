"""The companion commands' work: sync, tensorboard, status, logs, stop, ssh and ssh-config (their flags: runner/commands/)."""
