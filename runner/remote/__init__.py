"""Running things on the training machine: SSH (paramiko, or the system's OpenSSH), the local shell, and
what travels over them.

Importing this package first keeps paramiko from importing `invoke` (runner/remote/paramiko_light.py):
every module here that imports paramiko is a submodule, so the package runs before it, whatever order a
formatter gives the imports inside a module."""

from runner.remote import paramiko_light as _paramiko_light  # noqa: F401
