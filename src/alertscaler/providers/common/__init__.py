"""alertscaler.providers.common."""
