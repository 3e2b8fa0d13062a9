"""Tests of bench/: the benchmark harness runs end to end in a tiny mode."""
