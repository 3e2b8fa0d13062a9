import os

from standins.private_tmux import CALLER_TMUX

# Every tmux server the suite starts is its own (TMUX_TMPDIR); run inside a tmux pane, $TMUX would point
# tmux commands at the pane's server instead, so no test process inherits it.
for _name in CALLER_TMUX:
    os.environ.pop(_name, None)

# Fixtures shared by every integration test live in tests/fixtures/ (one module per stand-in).
pytest_plugins = [
    "tests.fixtures.fake_api",  # the fake RunPod API on 127.0.0.1
    "tests.fixtures.sshd",  # a real OpenSSH server on 127.0.0.1 playing the pod
    "tests.fixtures.stub_pulumi",  # a stub `pulumi` executable on PULUMI_BINARY
    "tests.fixtures.venv_templates",  # a warm and a cold venv from one real launcher run
]
