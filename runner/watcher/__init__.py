"""`runner watch`: recovery, and the run's reports, with no terminal attached.

runs.py        which run of the stack is still unfinished (this machine's run records)
one_pass.py    one look at the pod through RunPod's API and, when an interruption is confirmed, the
               recovery `runner train` would make, then the relaunch (detached)
background.py  the watcher a detached `runner train` leaves running on this machine
"""
