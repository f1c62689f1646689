"""alertscaler.providers.openstack.nova."""
