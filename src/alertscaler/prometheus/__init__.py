"""alertscaler.prometheus."""
