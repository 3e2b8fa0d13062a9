"""`runner sweep`: several runs of one config with values varied, as one object.

plan.py     --set lr=1e-4,3e-4 --set batch=8,16 -> the runs (every combination), their run ids
record.py   the sweep on this machine: <state dir>/<stack>/sweeps/<id>.json (runs, pods, states)
driver.py   runs them on free pods of the stack, at most --concurrency at once, the rest queued; each
            run is a `runner train --pod P --run-id R --set ...` (recovery per pod as ever), its lines
            prefixed with its run id; the total budget; one stop
report.py   the group's status and the summary table (final loss, checkpoint, cost per run)
command.py  the command's entry: start, --status, --stop, --resume
"""
