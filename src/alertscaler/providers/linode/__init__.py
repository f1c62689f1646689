"""alertscaler.providers.linode.provider."""
