"""Providers: the narrow boundary to where instances live (local processes, commands, clouds)."""
