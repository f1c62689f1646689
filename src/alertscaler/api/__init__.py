"""The HTTP API: webhook ingest, groups, decisions, actions, http_sd targets, health, metrics, OpenAPI."""
