"""alertscaler.providers.local.provider."""
