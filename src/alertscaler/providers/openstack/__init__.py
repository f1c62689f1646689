"""alertscaler.providers.openstack."""
