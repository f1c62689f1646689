"""The policy file: its typed model and a loader that reports EVERY problem at once, each with its path.

Called by ``cli`` (``check``, ``serve``), ``service`` and ``act``. Secrets (auth tokens, passwords) may be
given literally, as ``<name>_env: VAR`` or as ``<name>_file: PATH``; they are held as ``SecretStr`` and
never printed.

Modules: ``sections`` (server, store, prometheus, actions), ``groups`` (a group and its policies), ``loading``
(the whole file and its loader).
"""

from alertscaler.config.groups import GroupConfig, HealConfig, TrackConfig
from alertscaler.config.loading import PolicyFile, load_policy, load_policy_file
from alertscaler.config.sections import ActionsConfig, AuthConfig, PrometheusConfig, ServerConfig, StoreConfig

__all__ = ["ActionsConfig", "AuthConfig", "GroupConfig", "HealConfig", "PolicyFile", "PrometheusConfig",
           "ServerConfig", "StoreConfig", "TrackConfig", "load_policy", "load_policy_file"]
