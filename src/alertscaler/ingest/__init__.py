"""Signals in: Alertmanager webhooks parsed and validated, alerts routed to groups and policies."""
