"""alertscaler.providers.tosca.provider."""
