"""alertscaler.providers.kubernetes.provider."""
