"""Alertmanager's HTTP API v2, asked by alertscaler: ``client.AlertmanagerClient`` (the one client, built from the
policy file's ``alertmanager`` section). A layer beside ``prometheus``: it imports only ``model``."""
