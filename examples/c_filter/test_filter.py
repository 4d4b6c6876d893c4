"""A filter driver's send path in C, run as a layer of ndisemu's emulated
binding: a Python protocol sends chains of NBLs through the C filter in
filter.c to a loopback miniport, and Hypothesis checks that every send
completes once, with the miniport's status and its bytes unchanged, while
the binding checks every ownership rule the C code's calls must keep.

    pytest examples/c_filter                 # the correct filter passes
    BUG=early pytest examples/c_filter       # ... and each bug is found
"""

import contextlib
import functools
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ndisemu
from ndisemu import driver, ffi
from ndisemu.strategies import nbls

HERE = Path(__file__).resolve().parent

BUGS = {"early": "BUG_COMPLETES_PARENT_EARLY", "status": "BUG_LOSES_STATUS"}
BUG = os.environ.get("BUG")

CDEF = """
PVOID FilterAttachContext(NDIS_HANDLE FilterHandle);
LONG FilterDetachContext(PVOID FilterModuleContext);
void FilterSendNetBufferLists(NDIS_HANDLE FilterModuleContext, PNET_BUFFER_LIST NetBufferLists,
                              NDIS_PORT_NUMBER PortNumber, ULONG SendFlags);
void FilterSendNetBufferListsComplete(NDIS_HANDLE FilterModuleContext,
                                      PNET_BUFFER_LIST NetBufferLists, ULONG SendCompleteFlags);
"""
STATUSES = [ndisemu.NDIS_STATUS_SUCCESS, ndisemu.NDIS_STATUS_FAILURE]

FUZZ = settings(max_examples=int(os.environ.get("EXAMPLES", "200")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@functools.cache
def build() -> driver.Driver:
    """The filter, with the bug BUG selects (built once, then cached)."""
    macros = [(BUGS[BUG], None)] if BUG in BUGS else []
    return driver.build("filter", [HERE / "filter.c"], CDEF, define_macros=macros,
                        extra_compile_args=["-Wall", "-Werror"])


class Protocol:
    """Sends what the test gives it; records what is completed to it."""

    def __init__(self):
        self.completed = []

    def ProtocolSendNetBufferListsComplete(self, NetBufferLists, SendCompleteFlags):
        nbl = NetBufferLists
        while nbl:
            self.completed.append(nbl)
            nbl = nbl.Next


@contextlib.contextmanager
def stack(k, status, defer):
    """The protocol, the C filter and a loopback miniport, bound; afterwards
    the filter is detached and the binding ended.  After a bug check (the
    machine stopped) it puts back only what the frees need, so that the
    next example starts clean: the NBLs in flight come home, and the clones
    the C code still holds are freed."""
    protocol, miniport = Protocol(), ndisemu.LoopbackMiniport(defer=defer, status=status)
    f = ndisemu.DriverLayer(k.load(build()), "filter")
    b = k.bind(protocol=protocol, filters=[f], miniport=miniport)
    f.context = f.driver.FilterAttachContext(f.handle)     # what FilterAttach stores
    try:
        yield protocol, b
        assert f.driver.FilterDetachContext(f.context) == 0, "clones outstanding at detach"
        b.unbind()
    finally:
        if b.live:
            b.abandon()
            for o in k.live_objects():
                if o["kind"] == "NET_BUFFER_LIST" and o["call"] == "NdisAllocateCloneNetBufferList":
                    o["pointer"].ParentNetBufferList.ChildRefCount -= 1
                    k.NdisFreeCloneNetBufferList(o["pointer"], 0)
            with contextlib.suppress(ndisemu.BugCheck):   # detached already
                f.driver.FilterDetachContext(f.context)


def send(k, protocol, nbls):
    """The protocol sends `nbls` as one chain, its handle their SourceHandle."""
    for nbl, following in zip(nbls, nbls[1:] + [ffi.NULL], strict=True):
        nbl.Next, nbl.SourceHandle = following, protocol.handle
    k.NdisSendNetBufferLists(protocol.handle, nbls[0], 0, 0)


@FUZZ
@given(data=st.data())
def test_every_send_completes_once_with_the_miniports_status(ndis_kernel, data):
    k = ndis_kernel
    sent = [data.draw(nbls(k, max_len=1514, max_nbs=3), label=f"NBL {i}")
            for i in range(data.draw(st.integers(1, 4), label="NBLs in the chain"))]
    status = data.draw(st.sampled_from(STATUSES), label="the miniport's status")
    defer = data.draw(st.booleans(), label="the miniport completes later")
    expected = [k.nbl_bytes(nbl) for nbl in sent]
    with stack(k, status, defer) as (protocol, b):
        send(k, protocol, sent)
        if defer:
            b.complete_pending()
        assert [k.addr(n) for n in protocol.completed] == [k.addr(n) for n in sent]
        for nbl, before in zip(sent, expected, strict=True):
            assert f"{nbl.Status & 0xFFFFFFFF:#x}" == f"{status:#x}"
            assert nbl.ChildRefCount == 0
            assert k.nbl_bytes(nbl) == before


@pytest.mark.ndis(inject_failures=0.2)
@FUZZ
@given(data=st.data())
def test_a_clone_that_cannot_be_allocated_fails_only_its_send(ndis_kernel, data):
    """With allocations failing at random, a send whose clone cannot be
    made completes at once with NDIS_STATUS_RESOURCES; the others go on."""
    k = ndis_kernel
    sent = [data.draw(nbls(k, max_len=100), label=f"NBL {i}")
            for i in range(data.draw(st.integers(1, 4), label="NBLs in the chain"))]
    with stack(k, ndisemu.NDIS_STATUS_SUCCESS, False) as (protocol, b):
        send(k, protocol, sent)
        assert sorted(k.addr(n) for n in protocol.completed) == sorted(k.addr(n) for n in sent)
        for nbl in sent:
            assert nbl.Status & 0xFFFFFFFF in (ndisemu.NDIS_STATUS_SUCCESS,
                                               ndisemu.NDIS_STATUS_RESOURCES)
