"""alertscaler.providers.exec.provider."""
