"""Suite-wide marks: which tests are ``slow``, i.e. left out of the inner loop ``pytest -m "not slow"``.

A test is slow when it waits on something heavy, whichever file it is in (pytest gives it the mark here, at
collection, so a new test of that kind is slow without anyone remembering to say so):

* it uses the real OpenStack Heat (the ``heat`` fixture of tests/integration/heat_fixtures.py, directly or
  through ``heat_stacks`` / ``heat_stack``): Heat's engine converges in seconds per stack operation;
* it uses the real opera (the ``tosca`` fixture of tests/integration/test_tosca_provider.py, or the
  provider contract suite's ``tosca`` parameter): every operation is an Ansible run, 263 s for the contract
  suite alone;
* it is end to end (marker ``e2e``: real Prometheus, Alertmanager and alertscaler with 1 s intervals).

Any other test that takes more than ~5 s carries ``@pytest.mark.slow`` (or a module ``pytestmark``) itself.
``make test`` runs everything; ``make unit`` runs tests/unit and tests/api. See README, "Development".
"""

from __future__ import annotations

import pytest

# (module defining the fixture, fixture name) -> why a test that uses it is slow; by module, as other modules
# have fixtures of the same names (``heat`` and ``tosca`` configs in tests/unit) that start nothing
SLOW_FIXTURES = {
    ("tests.integration.heat_fixtures", "heat"): "real OpenStack Heat",
    ("tests.integration.test_tosca_provider", "tosca"): "real opera (Ansible)",
}
# (parametrised fixture, parameter) -> why
SLOW_PARAMETERS = {
    ("provider_harness", "tosca"): "the provider contract suite on real opera (Ansible)",
}


def slow_reason(item: pytest.Item) -> str | None:
    """Why ``item`` is slow by the rules above, or None."""
    if item.get_closest_marker("e2e") is not None:
        return "end to end"
    info = getattr(item, "_fixtureinfo", None)  # the fixtures the test uses, with where each is defined
    for name, definitions in (info.name2fixturedefs.items() if info is not None else ()):
        used = definitions[-1]  # the closest definition overrides the others (a module's own ``heat``)
        reason = SLOW_FIXTURES.get((getattr(used.func, "__module__", ""), name))
        if reason is not None:
            return reason
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        for (name, value), reason in SLOW_PARAMETERS.items():
            if callspec.params.get(name) == value:
                return reason
    return None


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow") is None and slow_reason(item) is not None:
            item.add_marker(pytest.mark.slow)
