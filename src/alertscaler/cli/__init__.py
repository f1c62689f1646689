"""The ``alertscaler`` command. ``serve`` runs the service; ``check`` validates a policy file (and the
Prometheus side generated from it, with promtool and amtool when installed); ``render`` writes that
Prometheus side; ``status``, ``decisions`` and ``scale`` talk to a running service over its HTTP API;
``demo`` runs the whole pipeline locally on a real traffic shape (``alertscaler.demo.running``); ``simulate``
replays a load trace through a policy and the baselines (``alertscaler.sim``); ``backtest`` does the same on
a Prometheus range query (``alertscaler.sim.backtest``).

Exit codes: 0 success; 1 the command ran but the answer is "no" (invalid file, refused request);
2 usage error; 3 the service cannot be reached; 141 stdout was closed by its reader (``| head``).

Modules: ``parsing`` (``main``, the parser, ``completion``), ``local``, ``remote``, ``simulating`` (the commands),
``common`` (exit codes, ``-o json|yaml``), ``tables`` (tables fitted to the terminal, plain when piped).
"""

from alertscaler.cli.common import EXIT_NO, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, CliError
from alertscaler.cli.parsing import main

__all__ = ["EXIT_NO", "EXIT_OK", "EXIT_UNREACHABLE", "EXIT_USAGE", "CliError", "main"]
