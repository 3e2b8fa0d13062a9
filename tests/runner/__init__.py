"""Tests of runner/, the CLI: one module per runner module, plus the train and recovery harnesses."""
