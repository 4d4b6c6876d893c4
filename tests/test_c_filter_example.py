"""examples/c_filter runs as its README says: the C filter passes as a
layer of the emulated binding, the binding stops the early completion of a
parent with the report the README shows, and the test's check finds the
lost status."""

import pytest
from example_runs import fresh_copy, pytest_command, readme_blocks, run_example, shown_in

SHOWN = readme_blocks("c_filter")     # early, status


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One driver cache for the module's runs: each build is made once."""
    return tmp_path_factory.mktemp("c_filter_cache")


@pytest.fixture
def example(tmp_path, cache):
    return fresh_copy("c_filter", ("filter.c", "test_filter.py"), tmp_path, cache)


def test_the_correct_filter_passes(example):
    done = run_example(example, pytest_command("test_filter.py"), BUG="", EXAMPLES="60")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


@pytest.mark.parametrize("bug,block,failed", [("early", 0, 2), ("status", 1, 1)])
def test_each_bug_is_found_as_the_readme_shows(example, bug, block, failed):
    done = run_example(example, pytest_command("test_filter.py"), BUG=bug)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED test_filter.py::test_every_send_completes_once_with_the_miniports_status" \
        in done.stdout
    assert f"{failed} failed" in done.stdout
    assert not shown_in(SHOWN[block], done.stdout), done.stdout[-4000:]
