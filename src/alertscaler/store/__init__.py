"""Durable state: notifications, de-duplication keys, groups, decisions, actions, active alerts."""
