"""Tests of the stand-ins themselves (standins/): the fakes must behave like what they replace."""
