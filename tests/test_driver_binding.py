"""Driver C code as layers of the emulated binding: a filter and a miniport
written in C (tests/drivers/layers.c) make the binding's calls through
<ndis.h>, NBLs travel between Python and C layers, and a rule a C layer
breaks is a bug check that unwinds every driver frame it crossed."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import chain, live

import ndisemu
from ndisemu import driver, ffi, sanitize
from ndisemu.macros import NDIS_GET_NET_BUFFER_LIST_CANCEL_ID

pytestmark = pytest.mark.usefixtures("driver_cache")

DRIVERS = Path(__file__).resolve().parent / "drivers"
LAYERS_CDEF = """
PVOID filter_context(void);
void filter_attach(PVOID FilterModuleContext, NDIS_HANDLE FilterHandle, ULONG Bug);
ULONG filter_count(PVOID FilterModuleContext, ULONG Which);
void FilterSendNetBufferLists(NDIS_HANDLE FilterModuleContext, PNET_BUFFER_LIST NetBufferLists,
                              NDIS_PORT_NUMBER PortNumber, ULONG SendFlags);
void FilterSendNetBufferListsComplete(NDIS_HANDLE FilterModuleContext,
                                      PNET_BUFFER_LIST NetBufferLists, ULONG SendCompleteFlags);
void FilterReceiveNetBufferLists(NDIS_HANDLE FilterModuleContext,
                                 PNET_BUFFER_LIST NetBufferLists, NDIS_PORT_NUMBER PortNumber,
                                 ULONG NumberOfNetBufferLists, ULONG ReceiveFlags);
void FilterReturnNetBufferLists(NDIS_HANDLE FilterModuleContext,
                                PNET_BUFFER_LIST NetBufferLists, ULONG ReturnFlags);
void FilterCancelSendNetBufferLists(NDIS_HANDLE FilterModuleContext, PVOID CancelId);
ULONG_PTR mark_for_cancel(PNET_BUFFER_LIST NetBufferList, ULONG Low);
PVOID adapter_context(void);
NDIS_STATUS adapter_attach(PVOID MiniportAdapterContext, NDIS_HANDLE MiniportAdapterHandle);
void adapter_detach(PVOID MiniportAdapterContext);
NDIS_STATUS adapter_receive(PVOID MiniportAdapterContext, ULONG Length, UCHAR Fill);
ULONG adapter_count(PVOID MiniportAdapterContext, ULONG Which);
void MiniportSendNetBufferLists(NDIS_HANDLE MiniportAdapterContext,
                                PNET_BUFFER_LIST NetBufferLists, NDIS_PORT_NUMBER PortNumber,
                                ULONG SendFlags);
void MiniportReturnNetBufferLists(NDIS_HANDLE MiniportAdapterContext,
                                  PNET_BUFFER_LIST NetBufferLists, ULONG ReturnFlags);
"""
SENT, COMPLETED, RECEIVED, RETURNED, CANCELLED = range(5)
PASSES, COMPLETES_WHAT_IT_SENT, FREES_WHAT_IT_SENT = range(3)


@pytest.fixture(scope="module")
def layers():
    return driver.build("layers", [DRIVERS / "layers.c"], LAYERS_CDEF,
                        extra_compile_args=["-Wall", "-Wextra", "-Werror"])


class Protocol:
    """A Python protocol: records completions and receives, returns what it
    receives at once unless told to hold it."""

    def __init__(self, k, hold=False):
        self.k, self.hold, self.completed, self.received = k, hold, [], []

    def ProtocolSendNetBufferListsComplete(self, NetBufferLists, SendCompleteFlags):
        self.completed += chain(NetBufferLists)

    def ProtocolReceiveNetBufferLists(self, NetBufferLists, PortNumber, NumberOfNetBufferLists,
                                      ReceiveFlags):
        nbls = chain(NetBufferLists)
        self.received.append([self.k.nbl_bytes(nbl) for nbl in nbls])
        if not self.hold:
            self.k.NdisReturnNetBufferLists(self.handle, NetBufferLists, 0)


def bind(k, d, protocol, miniport, bug=PASSES):
    """The C filter between them; its context given once bound, as
    FilterAttach returns it once it has its handle."""
    f = ndisemu.DriverLayer(d, "filter")
    b = k.bind(protocol=protocol, filters=[f], miniport=miniport)
    f.context = d.filter_context()
    d.filter_attach(f.context, f.handle, bug)    # what its FilterAttach would store
    return b, f.context


def sent_nbls(k, pool, protocol, n):
    nbls = [k.build_nbl(pool, [bytes([i]) * 60]) for i in range(n)]
    for a, b in zip(nbls, nbls[1:], strict=False):
        a.Next = b
    for nbl in nbls:
        nbl.SourceHandle = protocol.handle
    return nbls


def test_a_c_filter_passes_sends_and_receives_between_python_layers(k, pool, layers):
    d = k.load(layers)
    P, M = Protocol(k, hold=True), ndisemu.LoopbackMiniport()
    b, f = bind(k, d, P, M)
    nbls = sent_nbls(k, pool, P, 2)
    k.NdisSendNetBufferLists(P.handle, nbls[0], 0, 0)
    assert P.completed == nbls and k.pending()["miniport"] == []
    assert (d.filter_count(f, SENT), d.filter_count(f, COMPLETED)) == (2, 2)
    frame = k.build_nbl(pool, [b"\x11" * 64])
    frame.SourceHandle = M.handle
    k.NdisMIndicateReceiveNetBufferLists(M.handle, frame, 0, 1, 0)
    assert P.received == [[[b"\x11" * 64]]] and b.owner(frame) == "protocol"
    k.NdisReturnNetBufferLists(P.handle, frame, 0)    # through the C filter's return
    assert M.returned == [frame] and d.filter_count(f, RETURNED) == 1
    b.unbind()
    for nbl in [*nbls, frame]:
        k.free_built(nbl)


def c_miniport_stack(k, d, P):
    """P above the C filter above the C miniport, both attached: the
    binding, the filter's context and the adapter's."""
    adapter = d.adapter_context()
    M = ndisemu.DriverLayer(d, "miniport", adapter)
    b, f = bind(k, d, P, M)
    assert d.adapter_attach(adapter, M.handle) == 0
    return b, f, adapter


def test_a_c_miniport_completes_sends_and_indicates_its_own_frames(k, pool, layers):
    d = k.load(layers)
    P = Protocol(k)
    b, f, adapter = c_miniport_stack(k, d, P)
    before = live(k)
    nbls = sent_nbls(k, pool, P, 3)
    for nbl in nbls:
        nbl.Status = -1
    k.NdisSendNetBufferLists(P.handle, nbls[0], 0, 0)
    assert P.completed == nbls and [nbl.Status for nbl in nbls] == [0, 0, 0]
    # the miniport's own frame: built in C, returned through the C filter, freed in C
    assert d.adapter_receive(adapter, 42, 0x5A) == 0
    assert P.received == [[[b"\x5a" * 42]]]
    assert (d.adapter_count(adapter, 0), d.adapter_count(adapter, 1)) == (1, 1)
    assert d.filter_count(f, RECEIVED) == d.filter_count(f, RETURNED) == 1
    for nbl in nbls:
        k.free_built(nbl)
    assert live(k) == before
    b.unbind()
    d.adapter_detach(adapter)


def test_the_dispatch_level_hint_reaches_c_and_comes_back(k, pool, layers):
    d = k.load(layers)
    P = Protocol(k)
    b, _, adapter = c_miniport_stack(k, d, P)
    nbl = sent_nbls(k, pool, P, 1)[0]
    k.irql = ndisemu.DISPATCH_LEVEL
    k.NdisSendNetBufferLists(P.handle, nbl, 0, ndisemu.NDIS_SEND_FLAGS_DISPATCH_LEVEL)
    k.irql = 0
    assert P.completed == [nbl]
    b.unbind()
    k.free_built(nbl)
    d.adapter_detach(adapter)


# A C filter breaking a rule inside its send handler: the binding's bug check
# is raised in Python, the C filter unwinds, and the Python send that entered
# it raises the same bug check; nothing is left half done.
C_BUGS = [
    (COMPLETES_WHAT_IT_SENT, "NdisFSendNetBufferListsComplete", 0x92,
     ["NBL completed by a layer that does not own it", "filter0 called; miniport owns it"]),
    (FREES_WHAT_IT_SENT, "NdisFreeNetBufferList", 0x92,
     ["NBL freed while it is in flight", "miniport owns it", "its home is protocol"]),
]


@pytest.mark.parametrize("bug,call,subcode,words", C_BUGS, ids=["complete", "free"])
def test_a_rule_a_c_filter_breaks_unwinds_it_and_raises_in_python(k, pool, layers, bug, call,
                                                                   subcode, words):
    d = k.load(layers)
    P, M = Protocol(k), ndisemu.LoopbackMiniport(defer=True)
    b, f = bind(k, d, P, M, bug=bug)
    nbl = sent_nbls(k, pool, P, 1)[0]
    k.irql = 1
    with pytest.raises(ndisemu.BugCheck) as info:
        k.NdisSendNetBufferLists(P.handle, nbl, 0, 0)
    err = info.value
    assert (err.code, err.parameters[0]) == (0x7C, subcode), str(err)
    assert str(err).startswith(f"layers.FilterSendNetBufferLists -> {call}: "), str(err)
    for word in words:
        assert word in str(err), str(err)
    assert k.irql == 1                     # restored by the C filter's unwind
    k.irql = 0
    assert b.owner(nbl) == "miniport" and P.completed == []
    assert d.filter_count(f, SENT) == 1
    b.complete_pending()                   # the NBL comes home through the C filter
    assert P.completed == [nbl] and d.filter_count(f, COMPLETED) == 1
    b.unbind()
    k.free_built(nbl)


def test_a_cancel_passes_through_a_c_filter_and_aborts_the_held_sends(k, pool, layers):
    d = k.load(layers)
    P, M = Protocol(k), ndisemu.LoopbackMiniport(defer=True)
    b, f = bind(k, d, P, M)
    nbls = sent_nbls(k, pool, P, 2)
    first = d.mark_for_cancel(nbls[0], 5)
    assert first >> 24 == 1 and first & 0xFFFFFF == 5
    assert NDIS_GET_NET_BUFFER_LIST_CANCEL_ID(k.view(nbls[0])) == first
    k.NdisSendNetBufferLists(P.handle, nbls[0], 0, 0)
    k.NdisCancelSendNetBufferLists(P.handle, first)
    assert d.filter_count(f, CANCELLED) == 1
    assert P.completed == [nbls[0]] and M.queued == [nbls[1]]
    assert nbls[0].Status & 0xFFFFFFFF == ndisemu.NDIS_STATUS_SEND_ABORTED
    assert d.filter_count(f, COMPLETED) == 1        # the aborted send came back through C
    b.complete_pending()
    b.unbind()
    for nbl in nbls:
        k.free_built(nbl)


class Raises:
    """A Python miniport whose send handler fails an assertion."""

    def MiniportSendNetBufferLists(self, NetBufferLists, PortNumber, SendFlags):
        raise AssertionError("the miniport's own check failed")


def test_an_exception_of_a_python_layer_below_c_code_reaches_the_caller(k, pool, layers):
    d = k.load(layers)
    P = Protocol(k)
    b, f = bind(k, d, P, Raises())
    nbl = sent_nbls(k, pool, P, 1)[0]
    with pytest.raises(AssertionError, match="the miniport's own check failed"):
        k.NdisSendNetBufferLists(P.handle, nbl, 0, 0)
    assert k.pending()["miniport"] == [nbl]   # it was handed over before the handler ran
    assert "_driver_exception" not in k.__dict__
    b.abandon()                            # what the failed test left in flight comes home
    k.free_built(nbl)


def test_binding_calls_from_c_check_their_arguments_as_bug_checks(k, pool, layers):
    d = k.load(layers)
    context = d.filter_context()
    f = ndisemu.DriverLayer(d, "filter", context)
    nbl = k.build_nbl(pool, [b"x" * 60])
    # no binding yet: the handle the filter holds is no layer's
    d.filter_attach(context, ffi.cast("void *", 0xFFFFD00000077000), PASSES)
    with pytest.raises(ndisemu.BugCheck) as info:
        d.FilterSendNetBufferLists(context, nbl, 0, 0)
    assert info.value.parameters[0] == 0x95, str(info.value)
    assert str(info.value).startswith("layers.FilterSendNetBufferLists -> "
                                      "NdisFSendNetBufferLists: not a live filter handle")
    b = k.bind(protocol=Protocol(k), filters=[f], miniport=ndisemu.LoopbackMiniport())
    d.filter_attach(context, f.handle, PASSES)
    nbl.SourceHandle = f.handle
    with pytest.raises(ndisemu.BugCheck) as info:     # a flag no NDIS_SEND_FLAGS_ bit
        d.FilterSendNetBufferLists(context, nbl, 0, 0x80000000)
    assert info.value.parameters[0] == 0x8F and "SendFlags" in str(info.value)
    assert d.filter_count(context, SENT) == 1 and b.owner(nbl) is None   # since the attach
    b.unbind()
    k.free_built(nbl)


def test_driver_layer_checks_what_it_is_given(k, layers):
    d = k.load(layers)
    with pytest.raises(TypeError, match="loaded with k.load"):
        ndisemu.DriverLayer(layers, "filter")
    with pytest.raises(ValueError, match="kind must be one of"):
        ndisemu.DriverLayer(d, "switch")
    with pytest.raises(ValueError, match="not a miniport's handler"):
        ndisemu.DriverLayer(d, "miniport", handlers={"FilterSendNetBufferLists": "x"})
    with pytest.raises(ValueError, match="no function 'MySend'"):
        ndisemu.DriverLayer(d, "filter", handlers={"FilterSendNetBufferLists": "MySend"})
    layer = ndisemu.DriverLayer(d, "protocol")      # layers.c has no protocol handlers
    assert not [name for name in dir(layer) if name.startswith("Protocol")]
    mapped = ndisemu.DriverLayer(d, "protocol",
                                 handlers={"ProtocolSendNetBufferListsComplete":
                                           "FilterSendNetBufferListsComplete"})
    assert callable(mapped.ProtocolSendNetBufferListsComplete)


try:
    sanitize.runtime_library()
    NO_ASAN = ""
except sanitize.SanitizerMissing as error:
    NO_ASAN = str(error)

SANITIZED_STACK = """
    import sys
    sys.path.insert(0, {tests!r})
    import ndisemu
    from ndisemu import driver
    from test_driver_binding import (COMPLETES_WHAT_IT_SENT, DRIVERS, LAYERS_CDEF, Protocol,
                                     bind, sent_nbls)

    k = ndisemu.Kernel()
    d = k.load(driver.build("layers", [DRIVERS / "layers.c"], LAYERS_CDEF, sanitize=True))
    pool = k.NdisAllocateNetBufferListPool(None, {{"fAllocateNetBuffer": True}})
    P, M = Protocol(k), ndisemu.LoopbackMiniport(defer=True)
    b, f = bind(k, d, P, M, bug=COMPLETES_WHAT_IT_SENT)
    nbl = sent_nbls(k, pool, P, 1)[0]
    try:
        k.NdisSendNetBufferLists(P.handle, nbl, 0, 0)
    except ndisemu.BugCheck as error:
        print("caught:", error)
    b.complete_pending()
    b.unbind()
    k.free_built(nbl)
    k.NdisFreeNetBufferListPool(pool)
    print("done")
"""


@pytest.mark.skipif(bool(NO_ASAN), reason=f"no sanitizer runtime: {NO_ASAN}")
def test_a_sanitized_c_layer_unwinds_through_the_binding_cleanly(tmp_path, driver_cache):
    """Driver code built with AddressSanitizer: the binding's bug check
    crosses back into C and unwinds it, and ASan has nothing to report."""
    script = tmp_path / "stack.py"
    script.write_text(textwrap.dedent(SANITIZED_STACK.format(tests=str(Path(__file__).parent))))
    command = [sys.executable, "-m", "ndisemu", "sanitized", "--", sys.executable, str(script)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "caught: layers.FilterSendNetBufferLists -> NdisFSendNetBufferListsComplete" \
        in done.stdout
    assert "done" in done.stdout and "AddressSanitizer" not in done.stderr
