"""Building blocks of ``alertscaler demo`` and the end-to-end tests.

* ``trace``   — the bundled World Cup 1998 traffic shape, scaled and time-compressed (pure).
* ``stack``   — Prometheus, Alertmanager and alertscaler as child processes; no orphans, ever.
* ``loadgen`` — an open-loop load generator spreading requests over alertscaler's live targets.

Import the submodules directly; this package imports nothing (``python -m alertscaler.demo.stack`` runs
the stack's watchdog).
"""
