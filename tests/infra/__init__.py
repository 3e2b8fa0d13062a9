"""Tests of infra/: the stack config, the Pulumi program, the dynamic providers and the RunPod client."""
