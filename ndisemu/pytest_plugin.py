"""pytest plugin: the ``ndis_kernel`` fixture and the ``ndis`` marker.
Reference: docs/fuzzing.md.

Registered through the ``pytest11`` entry point, so installing ndisemu is
enough.  It is inert unless a test uses them: it registers the marker and
imports nothing else until a test asks for ``ndis_kernel`` (not ndisemu's
Kernel, not Hypothesis, which it never needs).

    @pytest.mark.ndis(ndis_version="6.30", verifier=True, inject_failures=0.01, seed=0)
    def test_my_parser(ndis_kernel): ...

The fixture yields a fresh ``Kernel`` configured by the marker.  When the
test function returns, whatever ``ndisemu.strategies`` built and no
Hypothesis cleanup freed is freed, and anything else still allocated fails
the test (FAILED, in the test's own report), naming each object: kind,
display address, tag, size and the call that allocated it.  A test that
already failed is not checked: its own failure is the news.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

# Options of @pytest.mark.ndis and their defaults.
MARKER_OPTIONS: dict[str, Any] = {
    "ndis_version": "6.87",
    "verifier": True,
    "inject_failures": 0.0,
    "seed": 0,
    "arena_size": 64 << 20,
}
_MAX_LISTED = 40                       # leaked objects named one by one


def pytest_configure(config: Any) -> None:
    """Registers the ``ndis`` marker (``pytest --markers`` lists it)."""
    options = ", ".join(f"{name}={value!r}" for name, value in MARKER_OPTIONS.items())
    config.addinivalue_line("markers", f"ndis({options}): configures ndisemu's ndis_kernel "
                                       "fixture")


def marker_options(node: Any) -> dict[str, Any]:
    """The ``ndis_kernel`` options for a test: the defaults, overridden by the
    closest ``@pytest.mark.ndis`` (test, class or module)."""
    options = dict(MARKER_OPTIONS)
    marker = node.get_closest_marker("ndis")
    if marker is not None:
        if marker.args:
            raise TypeError("@pytest.mark.ndis takes keyword arguments only: "
                            f"{', '.join(MARKER_OPTIONS)}")
        unknown = set(marker.kwargs) - set(MARKER_OPTIONS)
        if unknown:
            raise TypeError(f"@pytest.mark.ndis: unknown option(s) {', '.join(sorted(unknown))} "
                            f"(choose from {', '.join(MARKER_OPTIONS)})")
        options.update(marker.kwargs)
    return options


class _FailureSeeds:
    """Restarts the Kernel's failure injection at every Hypothesis example.
    Hypothesis seeds each generator registered with ``register_random``
    before every example and restores it after, so each example (and its
    replay when Hypothesis reports it) meets the same failures for the same
    calls, whatever earlier examples did."""

    def __init__(self, kernel: Any, rate: float, seed: int):
        self.kernel, self.rate, self.base, self.state = kernel, rate, seed, 0

    def seed(self, value: Any) -> None:
        self.state = value
        self.kernel.inject_failures(self.rate, (self.base + hash(value)) % (1 << 64))

    def getstate(self) -> Any:
        return self.state

    def setstate(self, state: Any) -> None:
        self.seed(state)


@pytest.fixture
def ndis_kernel(request: Any) -> Any:
    """A fresh ``ndisemu.Kernel`` (verifier on), configured by
    ``@pytest.mark.ndis``; the test fails if it leaves objects allocated."""
    import ndisemu
    options = marker_options(request.node)
    kernel = ndisemu.Kernel(arena_size=options["arena_size"],
                            ndis_version=options["ndis_version"], seed=options["seed"],
                            verifier=options["verifier"])
    seeds = None
    if options["inject_failures"]:
        kernel.inject_failures(options["inject_failures"], options["seed"])
        if "hypothesis" in sys.modules:      # a @given test: one failure sequence per example
            from hypothesis import register_random
            seeds = _FailureSeeds(kernel, options["inject_failures"], options["seed"])
            register_random(seeds)
    yield kernel
    del seeds                                # Hypothesis holds it weakly: it goes with the test


def leak_report(kernel: Any, test: str = "the test") -> str:
    """What a test left allocated in `kernel`, one line per object (inner
    objects, freed with their block, and the default pools left out); empty
    when nothing is.  The strategies' own objects are freed first."""
    strategies = sys.modules.get("ndisemu.strategies")
    errors = strategies.release_all(kernel) if strategies else []
    leaked = [o for o in kernel.live_objects() if not o["inner"]]
    if not leaked and not errors:
        return ""
    lines = list(errors)
    if leaked:
        lines.append(f"ndis_kernel: {test} left {len(leaked)} object"
                     f"{'s' if len(leaked) != 1 else ''} allocated:")
        lines += [f"  {o['kind']} at {o['address']:#018x}, tag {o['tag']!r}, {o['size']} bytes, "
                  f"allocated by {o['call']}" for o in leaked[:_MAX_LISTED]]
        if len(leaked) > _MAX_LISTED:
            lines.append(f"  ... and {len(leaked) - _MAX_LISTED} more")
    return "\n".join(lines)


# An old-style wrapper: new-style ones (wrapper=True) need pluggy 1.2, and a
# plugin that fails to load would break every pytest run beside ndisemu.
@pytest.hookimpl(hookwrapper=True)
def pytest_pyfunc_call(pyfuncitem: Any) -> Any:
    """The leak check, run when the test function returns so that a leak is
    the test's own failure rather than an error in fixture teardown."""
    outcome = yield
    kernel = pyfuncitem.funcargs.get("ndis_kernel")
    if kernel is None or outcome.excinfo is not None:   # a test that raised is not checked
        return
    report = leak_report(kernel, pyfuncitem.name)
    if report:
        failure = pytest.fail.Exception(report, pytrace=False)
        if hasattr(outcome, "force_exception"):          # pluggy >= 1.1
            outcome.force_exception(failure)
        else:
            raise failure
