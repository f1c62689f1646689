"""alertscaler.providers.openstack.heat."""
