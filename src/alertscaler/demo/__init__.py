"""Building blocks of ``alertscaler demo`` and the end-to-end tests.

* ``running``  — ``run_demo``: the whole demo (``options``: its settings and policy; ``summaries``: the
  closing summary; ``workdirs``: its working directory and saved logs).
* ``trace``    — the bundled World Cup 1998 traffic shape, scaled and time-compressed (pure).
* ``stack``    — Prometheus, Alertmanager and alertscaler as child processes; no orphans, ever
  (``preparing``: binaries and ports; ``children``: one child process; ``sweeping``: the watchdog).
* ``loadgen``  — an open-loop load generator spreading requests over alertscaler's live targets
  (``scheduling``: arrivals and balancing; ``requesting``: the HTTP client; ``load_stats``: counts).
* ``view``     — the live terminal view (``view_states``: what it shows; ``polling``: how it is collected).

Import the submodules directly; this package imports nothing (``python -m alertscaler.demo.stack`` runs
the stack's watchdog).
"""
