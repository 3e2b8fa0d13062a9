"""remote/podside/logbook.py: launcher lines always start on a line of their own."""

from __future__ import annotations

from remote.podside import logbook
from remote.podside.contract import Footer


def test_a_line_after_a_redrawn_progress_bar_gets_a_newline_first(tmp_path):
    log = tmp_path / "current.log"
    log.write_bytes(b"epoch 1\n\r 10%|#    |\r 20%|##   |")
    footer = Footer("2026-12-01T00:00:00Z", "r", 1, "succeeded", 0, None).line()
    logbook.append_line(str(log), footer)
    assert log.read_bytes() == b"epoch 1\n\r 10%|#    |\r 20%|##   |\n" + footer.encode() + b"\n"


def test_no_extra_newline_when_the_log_ends_a_line_or_is_empty(tmp_path):
    log = tmp_path / "current.log"
    logbook.append_line(str(log), "first")
    logbook.Log(str(log)).note("second")
    assert log.read_text() == "first\n[remote_train] second\n"


def test_start_line_returns_where_the_next_attempt_begins(tmp_path):
    log = tmp_path / "current.log"
    assert logbook.start_line(str(log)) == 0 and log.read_bytes() == b""
    log.write_bytes(b"killed mid-line")
    offset = logbook.start_line(str(log))
    assert offset == len(b"killed mid-line\n") and log.read_bytes() == b"killed mid-line\n"
    assert logbook.start_line(str(log)) == offset


def test_say_survives_a_closed_pane(monkeypatch):
    import os

    def closed(fd, data):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "write", closed)
    logbook.say("the pane is gone")  # no exception
