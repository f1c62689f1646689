"""The simulator: replay a load trace through a group's policies, using the real ``decide`` code, and measure
decision quality (SPEC RG elasticity metrics, instance-hours against an oracle).

``traces`` loads demand curves, ``scenarios`` describes what is replayed and the policies (with the
baselines), ``controllers`` calls ``decide``, ``running`` is the loop, ``metrics`` the figures, ``comparing``
one policy against both baselines, ``plotting`` the PNG. Used by ``alertscaler simulate`` and
``bench/decision_quality.py``.
"""
