"""The live view's rendering (runner/train/console.py) on a terminal, and its bytes when not one."""

from __future__ import annotations

import io
import re

from runner.train.console import Console


class Terminal(io.StringIO):
    """One terminal behind both stdout and stderr; screen() renders \\r, ESC[K and \\n as a terminal does."""

    def isatty(self) -> bool:
        return True

    def screen(self) -> list[str]:
        lines, row, col = [""], 0, 0
        text = re.sub(r"\x1b\[[0-9;]*m", "", self.getvalue()).replace("\x1b[K", "\0")  # colours are invisible
        for ch in text:
            if ch == "\n":
                lines.append("")
                row, col = row + 1, 0
            elif ch == "\r":
                col = 0
            elif ch == "\0":
                lines[row] = lines[row][:col]
            else:
                line = lines[row]
                lines[row] = line[:col] + ch + line[col + 1 :]
                col += 1
        return lines


def test_a_bar_is_redrawn_in_place_and_runner_messages_go_above_it(monkeypatch):
    term = Terminal()
    monkeypatch.setattr("sys.stdout", term)
    monkeypatch.setattr("sys.stderr", term)
    c = Console()
    c.log_line("step 0 header")
    c.partial(b"\r 1/3 [a]")
    c.partial(b"\r 1/3 [a]\r 2/3 [b]")
    assert term.screen() == ["step 0 header", " 2/3 [b]"]
    c.say("SSH link lost; reconnecting")
    assert term.screen() == ["step 0 header", "[runner] SSH link lost; reconnecting", " 2/3 [b]"]
    c.partial(b"\r 1/3 [a]\r 2/3 [b]")  # the same again after a reconnect: nothing new
    c.log_line("\r 1/3 [a]\r 2/3 [b]\r          \rstep 2 loss 1")  # the line ends as the log says
    c.log_line("next")
    assert term.screen() == ["step 0 header", "[runner] SSH link lost; reconnecting", "step 2 loss 1", "next", ""]


def test_a_line_the_log_ends_differently_replaces_what_was_shown(monkeypatch):
    term = Terminal()
    monkeypatch.setattr("sys.stdout", term)
    c = Console()
    c.partial(b"\r 5/9 [x]")
    c.log_line("===== other =====")
    c.end_partial()  # nothing unfinished: no extra newline
    assert term.screen() == ["===== other =====", ""]


def test_a_cut_multibyte_character_waits_for_its_rest(monkeypatch):
    term = Terminal()
    monkeypatch.setattr("sys.stdout", term)
    c = Console()
    data = "▉▉ 3/9".encode()
    c.partial(data[:4])  # the second ▉ cut after its first byte
    c.partial(data)
    c.log_line("▉▉ 3/9 done")
    assert term.getvalue() == "▉▉ 3/9 done\n"


def test_not_a_terminal_gets_whole_lines_only(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    c = Console()
    c.partial(b"\r 1/3 [a]")
    c.log_line("\r 1/3 [a]\r 2/3 [b]")
    c.end_partial()
    assert out.getvalue() == "\r 1/3 [a]\r 2/3 [b]\n"
