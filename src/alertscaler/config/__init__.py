"""The policy file: its typed model and a loader that reports EVERY problem at once, each with its path.

Called by ``cli`` (``check``, ``serve``), ``service``, ``act`` and ``confgen`` (which renders what is described
here: it sits above ``config`` in the layers). Secrets (auth tokens, passwords) may be given literally, as
``<name>_env: VAR`` or as ``<name>_file: PATH``; they are held as ``SecretStr`` and never printed.

Where each part of the policy file is defined (``config.loading.PolicyFile`` puts them together):

=======================================  =============================================================
key                                      module (class)
=======================================  =============================================================
``server`` (``auth``, ``tls``)           ``config.sections`` (``ServerConfig``, ``AuthConfig``, ``TlsConfig``)
``store``                                ``config.sections`` (``StoreConfig``)
``prometheus``                           ``config.sections`` (``PrometheusConfig``)
``actions``                              ``config.sections`` (``ActionsConfig``)
``inputs`` (signed URLs, Aodh, Monasca)  ``config.inputs`` (``InputsConfig``)
``tacker`` (aspects, healing, auth)      ``config.tacker`` (``TackerSection``): policies and heal sections
                                         it gives the mapped groups (``tacker_groups``)
``groups.<name>``: sizes, ``dry_run``,   ``config.groups`` (``GroupConfig``); the default drain from
``drain``                                ``scrape`` (``PolicyFile.drain_of``)
``groups.<name>.scale_out|scale_in``     ``config.groups`` (``ScaleOutPolicy``, ``ScaleInPolicy``) on
                                         ``model.policies.StepPolicy``
``groups.<name>.heal``                   ``config.groups`` (``HealConfig``), whose rules are
                                         ``model.healing.HealRules``
``groups.<name>.track``                  ``config.groups`` (``TrackConfig``), whose rules are
                                         ``model.tracking.TrackingRules``
``groups.<name>.schedule``               ``model.schedules`` (``Schedule``)
``groups.<name>.approval``               ``model.approvals`` (``ApprovalRules``)
``groups.<name>.change_freeze``          ``model.approvals`` (``ChangeFreeze``)
``groups.<name>.provider``               the provider family's own model, found by ``type`` through
                                         ``providers.registry.config_model``: ``providers.<family>.config``
                                         (local, exec, linode, kubernetes, openstack.heat),
                                         ``providers.openstack.nova.provider``, ``providers.tosca.provider``,
                                         ``providers.fake``
``rules``, ``alertmanager``, ``scrape``  ``config.prometheus_side`` (``PrometheusRules``,
                                         ``AlertmanagerRoute``, ``ScrapeJobs``)
(``render`` options, not in the file)    ``config.render_input`` (``RenderInput``, default token file and
                                         Alertmanager URL)
=======================================  =============================================================

Why three homes: the values ``decide`` computes with (step policies, bounds, heal, tracking and schedule rules)
are in ``model`` because ``decide`` may not import ``config``; each provider family keeps its config model
beside its code (families are self-contained, and ``config`` reads them only through ``providers.registry``).
Everything else is here: ``sections`` (server, store, prometheus, actions), ``groups`` (a group and its
policies), ``prometheus_side`` (what ``confgen`` renders), ``render_input`` (what ``confgen`` is given),
``loading`` (the whole file and its loader).
"""

from alertscaler.config.groups import GroupConfig, HealConfig, TrackConfig
from alertscaler.config.loading import PolicyFile, load_policy, load_policy_file
from alertscaler.config.sections import ActionsConfig, AuthConfig, PrometheusConfig, ServerConfig, StoreConfig

__all__ = ["ActionsConfig", "AuthConfig", "GroupConfig", "HealConfig", "PolicyFile", "PrometheusConfig",
           "ServerConfig", "StoreConfig", "TrackConfig", "load_policy", "load_policy_file"]
