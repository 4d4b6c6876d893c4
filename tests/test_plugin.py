"""The pytest plugin (ndisemu.pytest_plugin), run by pytest itself on
generated test files (pytester): the ndis_kernel fixture, the ndis marker,
the leak check as the test's own failure, and life without Hypothesis."""

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import ndisemu

HEALTH = "suppress_health_check=[HealthCheck.function_scoped_fixture], database=None"


def run(pytester, source, *args):
    pytester.makepyfile(textwrap.dedent(source))
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def test_a_leak_fails_the_test_and_names_each_object(pytester):
    result = run(pytester, """
        def test_leaks(ndis_kernel):
            pool = ndis_kernel.NdisAllocateNetBufferListPool(None, {"PoolTag": 0x6B61654C})
            ndis_kernel.NdisAllocateNetBufferList(pool, 0, 0)

        def test_clean(ndis_kernel):
            k = ndis_kernel
            pool = k.NdisAllocateNetBufferListPool(None, {})
            k.NdisFreeNetBufferList(k.NdisAllocateNetBufferList(pool, 0, 0))
            k.NdisFreeNetBufferListPool(pool)

        def test_without_the_fixture_nothing_is_checked():
            import ndisemu
            ndisemu.Kernel().NdisAllocateNetBufferListPool(None, {})

        def test_fails_on_its_own(ndis_kernel):
            ndis_kernel.NdisAllocateNetBufferListPool(None, {})
            assert False, "its own failure"
    """)
    result.assert_outcomes(passed=2, failed=2, errors=0)
    # the same calls on a fresh Kernel give the same display addresses
    k = ndisemu.Kernel()
    pool = k.NdisAllocateNetBufferListPool(None, {"PoolTag": 0x6B61654C})
    nbl = k.NdisAllocateNetBufferList(pool, 0, 0)
    result.stdout.fnmatch_lines([
        "*test_leaks*",
        "ndis_kernel: test_leaks left 2 objects allocated:",
        f"  NBL pool at {k.display(pool):#018x}, tag 'Leak', * bytes, allocated by "
        "NdisAllocateNetBufferListPool",
        f"  NET_BUFFER_LIST at {k.display(nbl):#018x}, tag 'Leak', * bytes, allocated by "
        "NdisAllocateNetBufferList",
        "*its own failure*",
        "FAILED *::test_leaks - Fail*",
    ])
    assert "test_fails_on_its_own left" not in result.stdout.str()


def test_the_marker_configures_the_kernel(pytester):
    result = run(pytester, """
        import pytest
        from ndisemu import ffi

        def test_defaults(ndis_kernel):
            k = ndis_kernel
            assert (k.ndis_version, k.verifier, k.seed, k.arena_size) == ("6.87", True, 0, 64 << 20)

        @pytest.mark.ndis(ndis_version="6.30", verifier=False, seed=7, arena_size=1 << 20)
        def test_options(ndis_kernel):
            k = ndis_kernel
            assert (k.ndis_version, k.verifier, k.seed, k.arena_size) == ("6.30", False, 7, 1 << 20)

        @pytest.mark.ndis(inject_failures=1.0)
        def test_failures(ndis_kernel):
            assert ndis_kernel.NdisAllocateNetBufferListPool(None, {}) == ffi.NULL

        @pytest.mark.ndis(ndis_version="6.20")
        class TestOnAClass:
            def test_inherits(self, ndis_kernel):
                assert ndis_kernel.ndis_version == "6.20"

        @pytest.mark.ndis(bogus=1)
        def test_unknown_option(ndis_kernel):
            pass
    """)
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(["*unknown option(s) bogus (choose from ndis_version, *"])


def test_the_marker_is_registered(pytester):
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.ndis(ndis_version='6.87', verifier=True, "
                                 "inject_failures=0.0, seed=0, arena_size=67108864):*"])


def test_strategies_free_what_they_built_at_each_example(pytester):
    result = run(pytester, f"""
        import pytest
        from hypothesis import HealthCheck, given, settings, strategies as st
        from ndisemu import ffi
        from ndisemu.strategies import derived_nbls, nbls

        @pytest.mark.ndis(inject_failures=1.0)
        @settings(max_examples=40, {HEALTH})
        @given(data=st.data())
        def test_each_example_starts_clean(ndis_kernel, data):
            k = ndis_kernel
            assert k.stats()["nbl"] == 0          # the last example's NBLs are gone
            k.nbl_bytes(data.draw(nbls(k, max_len=100)))
            nbl, expected = data.draw(derived_nbls(k, max_len=100))
            assert k.nbl_bytes(nbl) == expected
            # inputs were built with failures paused; the test's own calls fail
            assert k.NdisAllocateCloneNetBufferList(nbl, None, None, 0) == ffi.NULL
    """)
    result.assert_outcomes(passed=1)


def test_an_example_that_keeps_a_strategy_nbl_fails_and_shrinks(pytester):
    result = run(pytester, f"""
        from hypothesis import HealthCheck, given, settings, strategies as st
        from ndisemu.strategies import nbls

        @settings(max_examples=60, {HEALTH})
        @given(data=st.data())
        def test_keeps_a_clone(ndis_kernel, data):
            k = ndis_kernel
            nbl = data.draw(nbls(k, max_len=100))
            if len(k.nbl_bytes(nbl)) > 1:
                k.NdisAllocateCloneNetBufferList(nbl, None, None, 0)    # never freed
    """)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*ndisemu.strategies could not free the NBL at 0x* at the end of the example: "
        "free_built: *NdisAllocateCloneNetBufferList*",
        "*nbls: the NBL at 0x* = k.build_nbl(pool, **{*})",
    ])
    # the shape printed is the smallest that fails: two NBs, one byte in all
    printed = re.search(r"k\.build_nbl\(pool, \*\*(\{.*\})\)", result.stdout.str()).group(1)
    shape = eval(printed)  # noqa: S307 - printed by our own strategy, pasteable by design
    assert len(shape["payloads"]) == 2 and sum(map(len, shape["payloads"])) == 1, printed


def test_an_example_that_leaves_an_nbl_in_flight_fails_naming_the_owner(pytester):
    result = run(pytester, f"""
        import ndisemu
        from hypothesis import HealthCheck, given, settings, strategies as st
        from ndisemu.strategies import nbls

        class Protocol:
            def ProtocolSendNetBufferListsComplete(self, nbls, flags):
                pass

        @settings(max_examples=1, {HEALTH})
        @given(data=st.data())
        def test_sends_and_never_completes(ndis_kernel, data):
            k = ndis_kernel
            b = k._binding or k.bind(protocol=Protocol(),
                                     miniport=ndisemu.LoopbackMiniport(defer=True))
            nbl = data.draw(nbls(k, max_len=100, max_nbs=1))
            nbl.SourceHandle = b.protocol.handle
            k.NdisSendNetBufferLists(b.protocol.handle, nbl, 0, 0)
    """)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*ndisemu.strategies could not free the NBL at 0x* at the end of the example: "
        "free_built: NBL freed while it is in flight*miniport owns it*its home is protocol*",
    ])


def test_each_example_meets_the_same_injected_failures(pytester):
    result = run(pytester, f"""
        import pytest
        from hypothesis import HealthCheck, given, settings, strategies as st
        from ndisemu import ffi

        PATTERNS = set()

        @pytest.mark.ndis(inject_failures=0.5, seed=1)
        @settings(max_examples=20, {HEALTH})
        @given(st.integers(0, 10))
        def test_allocations(ndis_kernel, n):
            k, pattern = ndis_kernel, []
            for _ in range(16 + n):
                va = k.NdisAllocateMemoryWithTagPriority(None, 8, 1, 16)
                pattern.append(va != ffi.NULL)
                if va != ffi.NULL:
                    k.NdisFreeMemoryWithTagPriority(None, va, 1)
            PATTERNS.add(tuple(pattern[:16]))

        def test_one_pattern():
            (pattern,) = PATTERNS
            assert 0 < sum(pattern) < 16
    """, "-W", "error")
    result.assert_outcomes(passed=2)


NO_HYPOTHESIS = """
import sys
class NoHypothesis:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "hypothesis":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoHypothesis())
import pytest
try:
    import ndisemu.strategies
except ImportError as error:
    print("strategies:", error)
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", *sys.argv[1:]]))
"""


def test_the_plugin_works_without_hypothesis(pytester):
    """Hypothesis absent (its own pytest plugin with it): the fixture and
    the leak check still work, and the strategies say what to install."""
    pytester.makepyfile(textwrap.dedent("""
        def test_clean(ndis_kernel):
            ndis_kernel.NdisFreeNetBufferListPool(
                ndis_kernel.NdisAllocateNetBufferListPool(None, {}))

        def test_leaks(ndis_kernel):
            ndis_kernel.NdisAllocateNetBufferListPool(None, {})
    """))
    script = pytester.makefile(".py", no_hypothesis=NO_HYPOTHESIS)
    done = subprocess.run([sys.executable, str(script),
                           "test_the_plugin_works_without_hypothesis.py"],
                          check=False, cwd=pytester.path, capture_output=True, text=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 1 passed" in done.stdout, done.stdout
    assert "test_leaks left 1 object allocated" in done.stdout
    assert "strategies: ndisemu.strategies needs Hypothesis: install the fuzz extra" in done.stdout


def test_import_ndisemu_imports_neither_hypothesis_nor_pytest():
    code = ("import sys, ndisemu; k = ndisemu.Kernel(); ndisemu.NET_BUFFER_LIST_FIRST_NB; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('hypothesis', 'pytest', '_pytest', 'ndisemu.strategies', 'ndisemu.pytest_plugin')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_make_installs_the_fuzz_extra():
    """make test installs what the fuzz extra asks for, at the same pin."""
    root = Path(__file__).resolve().parent.parent
    extra = re.search(r"^fuzz = \[(.*)\]$", (root / "pyproject.toml").read_text(), re.M)
    makefile = (root / "Makefile").read_text()
    requirements = re.findall(r'"([^"]+)"', extra.group(1))
    assert requirements and all(f'"{r}"' in makefile for r in requirements)
