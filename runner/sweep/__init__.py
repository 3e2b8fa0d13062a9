"""`runner sweep`: several runs of one config with values varied, as one object.

plan.py        --set lr=1e-4,3e-4 --set batch=8,16 -> the runs (every combination), their run ids
record.py      the sweep on this machine: <state dir>/<stack>/sweeps/<id>.json (runs, pods, states)
lock.py        who decides for it: the driver for its whole life, a watcher for one start
progress.py    how it moves on, whoever moves it: runs' ends from their run records, the total budget,
               which queued run starts on which free pod, the `runner train` that runs it
driver.py      runs them from a terminal, at most --concurrency at once, the rest queued; each run is a
               `runner train --pod P --run-id R --set ...` (recovery per pod as ever), its lines
               prefixed with its run id; Ctrl-C detaches the running ones
unattended.py  with nobody driving it: every watcher pass starts its queued runs as pods free up
report.py      the group's status and the summary table (final loss, checkpoint, cost per run)
command.py     the command's entry: start, --status, --stop, --resume
"""
