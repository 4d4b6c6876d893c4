"""The emulated binding (docs/binding.md): NBLs travel between a protocol,
its filters and a miniport as NDIS passes them, and every ownership rule of
the send and receive paths is a bug check naming the layer and the NBL."""

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import chain, expect_bugcheck
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

import ndisemu
from ndisemu import ffi
from ndisemu.macros import NDIS_GET_NET_BUFFER_LIST_CANCEL_ID, NDIS_SET_NET_BUFFER_LIST_CANCEL_ID

RESOURCES = ndisemu.NDIS_RECEIVE_FLAGS_RESOURCES
README = Path(__file__).resolve().parent.parent / "README.md"


def addresses(nbls):
    return [int(ffi.cast("uintptr_t", n)) for n in nbls]


class Protocol:
    """Records what NDIS hands it; keeps what it receives for a later return."""

    def __init__(self):
        self.completed = []        # (chain, SendCompleteFlags)
        self.received = []         # (chain, PortNumber, NumberOfNetBufferLists, ReceiveFlags)
        self.on_receive = None

    def ProtocolSendNetBufferListsComplete(self, NetBufferLists, SendCompleteFlags):
        self.completed.append((chain(NetBufferLists), SendCompleteFlags))

    def ProtocolReceiveNetBufferLists(self, NetBufferLists, PortNumber, NumberOfNetBufferLists,
                                      ReceiveFlags):
        self.received.append((chain(NetBufferLists), PortNumber, NumberOfNetBufferLists,
                              ReceiveFlags))
        if self.on_receive:
            self.on_receive(NetBufferLists, ReceiveFlags)


class PassFilter:
    """A filter with every handler, passing everything on with the NdisF*
    calls; `before` hooks run first and let a test misbehave at one point."""

    def __init__(self, k, **before):
        self.k, self.before, self.seen = k, before, []

    def _hook(self, what, nbls):
        self.seen.append((what, addresses(chain(nbls))))
        if what in self.before:
            return self.before[what](self, nbls)
        return None

    def FilterSendNetBufferLists(self, NetBufferLists, PortNumber, SendFlags):
        if self._hook("send", NetBufferLists) != "keep":
            self.k.NdisFSendNetBufferLists(self.handle, NetBufferLists, PortNumber, SendFlags)

    def FilterSendNetBufferListsComplete(self, NetBufferLists, SendCompleteFlags):
        if self._hook("complete", NetBufferLists) != "keep":
            self.k.NdisFSendNetBufferListsComplete(self.handle, NetBufferLists,
                                                   SendCompleteFlags)

    def FilterReceiveNetBufferLists(self, NetBufferLists, PortNumber, NumberOfNetBufferLists,
                                    ReceiveFlags):
        if self._hook("receive", NetBufferLists) != "keep":
            self.k.NdisFIndicateReceiveNetBufferLists(self.handle, NetBufferLists, PortNumber,
                                                      NumberOfNetBufferLists, ReceiveFlags)

    def FilterReturnNetBufferLists(self, NetBufferLists, ReturnFlags):
        if self._hook("return", NetBufferLists) != "keep":
            self.k.NdisFReturnNetBufferLists(self.handle, NetBufferLists, ReturnFlags)


class Stack:
    """A Kernel's binding and the NBLs a test builds for it (freed at the end)."""

    def __init__(self, k, pool):
        self.k, self.pool, self.built = k, pool, []

    def bind(self, filters=1, defer=True, protocol=None, miniport=None, **before):
        """`filters`: how many PassFilters (with `before` hooks), or the objects."""
        self.P = protocol or Protocol()
        self.F = (filters if isinstance(filters, list) else
                  [PassFilter(self.k, **before) for _ in range(filters)])
        self.M = miniport or ndisemu.LoopbackMiniport(defer=defer)
        self.b = self.k.bind(protocol=self.P, filters=self.F, miniport=self.M)
        return self

    def nbl(self, layer, payloads=(b"\x45" + bytes(59),), **shape):
        nbl = self.k.build_nbl(self.pool, list(payloads), **shape)
        nbl.SourceHandle = layer.handle
        self.built.append(nbl)
        return nbl

    def nbls(self, layer, n):
        out = [self.nbl(layer) for _ in range(n)]
        for a, b in zip(out, out[1:], strict=False):
            a.Next = b
        return out

    def send(self, n=1, flags=0):
        nbls = self.nbls(self.P, n)
        self.k.NdisSendNetBufferLists(self.P.handle, nbls[0], 0, flags)
        return nbls

    def indicate(self, n=1, flags=0):
        nbls = self.nbls(self.M, n)
        self.k.NdisMIndicateReceiveNetBufferLists(self.M.handle, nbls[0], 0, n, flags)
        return nbls

    def owners(self):
        return {name: addresses(nbls) for name, nbls in self.k.pending().items()}

    def free(self):
        if getattr(self, "b", None) is not None and self.b.live:
            self.b.abandon()           # NBLs a bug check left in flight come home
        for nbl in self.built:
            self.k.free_built(nbl)


@pytest.fixture
def s(k, pool):
    stack = Stack(k, pool)
    yield stack
    stack.free()


# -- NBLs travel through ---------------------------------------------------------------

def test_sends_pass_through_two_filters_and_complete_to_the_protocol(s):
    s.bind(filters=2, defer=True)
    nbls = s.send(3)
    assert s.owners() == {"protocol": [], "filter0": [], "filter1": [],
                          "miniport": addresses(nbls)}
    assert [what for f in s.F for what, _ in f.seen] == ["send", "send"]
    assert s.b.owner(nbls[1]) == "miniport" and s.b.home(nbls[1]) == "protocol"
    assert s.b.complete_pending() == 3
    assert s.P.completed == [(nbls, 0)]
    assert s.owners() == {"protocol": [], "filter0": [], "filter1": [], "miniport": []}
    assert s.b.owner(nbls[1]) is None
    assert [f.seen for f in s.F] == [[("send", addresses(nbls)), ("complete", addresses(nbls))]] * 2
    s.b.unbind()


def test_a_send_completed_at_once_carries_the_miniports_status(s):
    s.bind(filters=1, miniport=ndisemu.LoopbackMiniport(status=ndisemu.NDIS_STATUS_RESOURCES))
    nbls = s.send(2)
    assert s.P.completed == [(nbls, 0)]
    assert all(ndisemu.NET_BUFFER_LIST_STATUS(n) == ndisemu.NDIS_STATUS_RESOURCES
               for n in nbls)
    s.b.unbind()


def test_receives_without_resources_stay_with_the_protocol_until_returned(s):
    s.bind(filters=2)
    nbls = s.indicate(2)
    assert s.P.received == [(nbls, 0, 2, 0)]
    assert s.owners()["protocol"] == addresses(nbls)
    s.k.NdisReturnNetBufferLists(s.P.handle, nbls[1], 0)
    assert s.M.returned == [nbls[1]]
    nbls[0].Next = ffi.NULL                   # the owner may relink what it returns
    s.k.NdisReturnNetBufferLists(s.P.handle, nbls[0], 0)
    assert s.M.returned == [nbls[1], nbls[0]]
    assert [what for what, _ in s.F[0].seen] == ["receive", "return", "return"]
    s.b.unbind()


def test_receives_with_resources_come_back_when_the_indication_returns(s):
    s.bind(filters=2)
    seen = []
    s.P.on_receive = lambda nbls, flags: seen.append(s.owners()["protocol"])
    nbls = s.indicate(2, RESOURCES)
    assert seen == [addresses(nbls)]          # the protocol owned them during the call
    assert s.P.received[0][3] == RESOURCES
    assert s.owners() == {"protocol": [], "filter0": [], "filter1": [], "miniport": []}
    assert s.M.returned == []                 # no return call for these
    s.b.unbind()


def test_filters_without_handlers_are_passed_through(s):
    s.bind(filters=[SimpleNamespace(), PassFilter(s.k)])
    nbls = s.send()
    assert s.owners()["miniport"] == addresses(nbls)
    s.b.complete_pending()
    assert s.P.completed == [(nbls, 0)] and s.F[1].seen[-1][0] == "complete"
    nbls = s.indicate()
    assert s.owners()["protocol"] == addresses(nbls)
    s.k.NdisReturnNetBufferLists(s.P.handle, nbls[0], 0)
    assert s.M.returned == nbls
    s.b.unbind()


def test_a_completion_mixing_layers_goes_to_each_in_chain_order(s):
    """F0 forwards sends but has no completion handler: the protocol's NBLs
    skip it on the way back, its own stop at it."""
    class SendOnly:
        def __init__(self, k):
            self.k = k

        def FilterSendNetBufferLists(self, NetBufferLists, PortNumber, SendFlags):
            self.k.NdisFSendNetBufferLists(self.handle, NetBufferLists, PortNumber, SendFlags)

    s.bind(filters=[SendOnly(s.k)])
    mine = s.send()
    theirs = s.nbl(s.F[0])
    s.k.NdisFSendNetBufferLists(s.F[0].handle, theirs, 0, 0)
    mine += s.send()
    assert s.owners()["miniport"] == addresses([mine[0], theirs, mine[1]])
    s.b.complete_pending()          # one call: protocol's, filter's, protocol's
    assert s.P.completed == [([mine[0], mine[1]], 0)]
    assert theirs.Next == ffi.NULL and s.b.owner(theirs) is None
    s.b.unbind()


def test_layers_without_end_handlers_get_ndis_behaviour(s):
    """A miniport without a send handler completes at once (success); a
    protocol without a receive handler has its receives returned at once."""
    s.bind(miniport=SimpleNamespace())
    nbls = s.send()
    assert s.P.completed == [(nbls, 0)] and s.owners()["miniport"] == []
    assert ndisemu.NET_BUFFER_LIST_STATUS(nbls[0]) == ndisemu.NDIS_STATUS_SUCCESS
    s.b.unbind()
    s.bind(protocol=SimpleNamespace())
    nbls = s.indicate()
    assert s.M.returned == nbls and s.owners()["protocol"] == []
    s.b.unbind()


def named(name, obj):
    return f"{name} {int(ffi.cast('uintptr_t', obj.handle)):#x}"


def test_the_trace_records_every_hand_over(s):
    s.k.trace = True
    s.bind()
    nbl = s.send()[0]
    s.b.complete_pending()
    p, f, m = named("protocol", s.P), named("filter0", s.F[0]), named("miniport", s.M)
    assert [f"{e['call']}: {e['text']}" for e in s.k.trace_log(nbl)
            if e["event"] == "handed over"] == [
        f"NdisSendNetBufferLists: handed over from {p} to {f}",
        f"NdisFSendNetBufferLists: handed over from {f} to {m}",
        f"NdisMSendNetBufferListsComplete: handed over from {m} to {f}",
        f"NdisFSendNetBufferListsComplete: handed over from {f} to {p}",
    ]
    assert f"handed over from {p} to {f}" in s.k.show(nbl, log=True)
    s.send()
    err = expect_bugcheck(s.b.unbind, 0x27)         # the message ends with the NBL's events
    assert str(err).splitlines()[-1].endswith(f"handed over from {f} to {m}")
    s.b.complete_pending()
    s.b.unbind()


def test_handles_are_distinct_deterministic_and_not_arena_memory(k):
    layers = [SimpleNamespace() for _ in range(4)]
    before = k.stats()
    b = k.bind(protocol=layers[0], filters=layers[1:3], miniport=layers[3])
    values = [int(ffi.cast("uintptr_t", obj.handle)) for obj in layers]
    assert values == [0xFFFFD00000001000 + i * 0x1000 for i in range(4)]
    assert not any(k.owns(obj.handle) for obj in layers) and k.stats() == before
    assert (b.protocol, b.filters, b.miniport) == (layers[0], layers[1:3], layers[3])
    b.unbind()
    b = k.bind(protocol=layers[0], miniport=layers[3])     # new handles, old ones dead
    assert int(ffi.cast("uintptr_t", layers[0].handle)) == 0xFFFFD00000005000
    assert list(k.pending()) == ["protocol", "miniport"]
    b.unbind()
    assert k.pending() == {}


def test_single_vlan_and_ether_type_hold_when_true(s):
    s.bind()
    nbls = s.nbls(s.M, 2)
    for nbl, tag in zip(nbls, (0x2A0, 0x2A5), strict=True):     # priorities differ
        ndisemu.NET_BUFFER_LIST_INFO_SET(nbl, ndisemu.Ieee8021QNetBufferListInfo, tag)
    flags = ndisemu.NDIS_RECEIVE_FLAGS_SINGLE_VLAN | ndisemu.NDIS_RECEIVE_FLAGS_SINGLE_ETHER_TYPE
    s.k.NdisMIndicateReceiveNetBufferLists(s.M.handle, nbls[0], 0, 2, flags | RESOURCES)
    assert s.P.received[0][3] == flags | RESOURCES
    s.b.unbind()


def test_dispatch_level_hints_at_dispatch_level(s):
    s.bind(defer=False)
    s.k.irql = ndisemu.DISPATCH_LEVEL
    nbls = s.send(flags=ndisemu.NDIS_SEND_FLAGS_DISPATCH_LEVEL)
    assert s.P.completed == [(nbls, ndisemu.NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL)]
    nbls = s.send()                             # the hint is optional at DISPATCH_LEVEL
    assert s.P.completed[-1] == (nbls, ndisemu.NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL)
    s.k.irql = 0
    s.b.unbind()


# -- each rule broken ---------------------------------------------------------------
#
# A scenario breaks one rule on a binding of a protocol, one PassFilter
# (given the hooks of its RULES row) and a deferring LoopbackMiniport.

def unset_source_handle(s):
    nbl = s.nbl(s.P)
    nbl.SourceHandle = ffi.NULL
    s.k.NdisSendNetBufferLists(s.P.handle, nbl, 0, 0)


def retag(f, nbl):
    nbl.SourceHandle = f.handle


def filter_completes_what_the_miniport_owns(s):
    nbl = s.send()[0]
    s.k.NdisFSendNetBufferListsComplete(s.F[0].handle, nbl, 0)


def protocol_sends_again_before_completion(s):
    nbl = s.send()[0]
    s.k.NdisSendNetBufferLists(s.P.handle, nbl, 0, 0)


def miniport_completes_twice(s):
    nbl = s.send()[0]
    s.b.complete_pending()
    s.k.NdisMSendNetBufferListsComplete(s.M.handle, nbl, 0)


def miniport_completes_what_it_never_got(s):
    s.k.NdisMSendNetBufferListsComplete(s.M.handle, s.nbl(s.P), 0)


def filter_passes_up_its_own_completion(s):
    own = s.nbl(s.F[0])
    s.k.NdisFSendNetBufferLists(s.F[0].handle, own, 0, 0)
    s.b.complete_pending()          # PassFilter passes every completion up: its own too


def protocol_returns_twice(s):
    nbl = s.indicate()[0]
    s.k.NdisReturnNetBufferLists(s.P.handle, nbl, 0)
    s.k.NdisReturnNetBufferLists(s.P.handle, nbl, 0)


def return_inside_a_resources_indication(s):
    s.P.on_receive = lambda nbls, flags: s.k.NdisReturnNetBufferLists(s.P.handle, nbls, 0)
    s.indicate(flags=RESOURCES)


def return_after_a_resources_indication(s):
    nbl = s.indicate(flags=RESOURCES)[0]
    s.k.NdisReturnNetBufferLists(s.P.handle, nbl, 0)


def protocol_sends_what_it_received(s):
    nbl = s.indicate()[0]
    nbl.SourceHandle = s.P.handle
    s.k.NdisSendNetBufferLists(s.P.handle, nbl, 0, 0)


def filter_returns_a_send(s):
    nbl = s.send()[0]
    s.k.NdisFReturnNetBufferLists(s.F[0].handle, nbl, 0)


def keep(f, nbl):
    return "keep"


def clone(f, nbl):
    """Makes a child of `nbl` as the caller of an NDIS clone must: parent
    pointer and ChildRefCount by hand (kept on the filter for the cleanup)."""
    f.clone = f.k.NdisAllocateCloneNetBufferList(nbl, None, None, 0)
    f.clone.ParentNetBufferList = nbl
    nbl.ChildRefCount += 1


def clone_and_complete(f, nbl):
    clone(f, nbl)
    f.k.NdisFSendNetBufferListsComplete(f.handle, nbl, 0)


def clone_and_return(f, nbl):
    clone(f, nbl)
    f.k.NdisFReturnNetBufferLists(f.handle, nbl, 0)


def send_and_complete(s):
    s.send()
    s.b.complete_pending()


def indicate_and_return(s):
    nbl = s.indicate()[0]
    s.k.NdisReturnNetBufferLists(s.P.handle, nbl, 0)


def miniport_changes_data_offset(s):
    nbl = s.send()[0]
    s.k.NdisAdvanceNetBufferListDataStart(nbl, 14, False, None)
    s.b.complete_pending()


def tag_vlan(f, nbl):
    ndisemu.NET_BUFFER_LIST_INFO_SET(nbl, ndisemu.Ieee8021QNetBufferListInfo, 0x2A5)


def miniport_flags_an_mdl(s):
    nbl = s.send()[0]
    nbl.FirstNetBuffer.MdlChain.MdlFlags |= ndisemu.MDL_NETWORK_HEADER
    s.b.complete_pending()


def miniport_writes_read_only_data(s):
    nbl = s.nbl(s.P)
    ndisemu.NdisSetNblFlag(nbl, ndisemu.NDIS_NBL_FLAGS_SEND_READ_ONLY)
    s.k.NdisSendNetBufferLists(s.P.handle, nbl, 0, 0)
    ffi.cast("uint8_t *", nbl.FirstNetBuffer.MdlChain.MappedSystemVa)[0] = 0x46
    s.b.complete_pending()


def protocol_keeps_an_advance_on_a_receive(s):
    nbl = s.indicate()[0]
    s.k.NdisAdvanceNetBufferListDataStart(nbl, 14, False, None)
    s.k.NdisReturnNetBufferLists(s.P.handle, nbl, 0)


def unlink_second_nb(f, nbl):
    nbl.FirstNetBuffer.Next = ffi.NULL


def send_two_nbs(s):
    nbl = s.nbl(s.P, [b"a" * 20, b"b" * 20])
    s.k.NdisSendNetBufferLists(s.P.handle, nbl, 0, 0)


def steal_nb(f, nbl):
    own = f.k.build_nbl(f.k.default_nbl_pool, [])
    own.SourceHandle = f.handle
    own.FirstNetBuffer = nbl.FirstNetBuffer
    f.own = own
    f.k.NdisFSendNetBufferLists(f.handle, own, 0, 0)
    return "keep"


def one_nb_on_two_nbls(s):
    first, second = s.nbls(s.P, 2)
    second.FirstNetBuffer = first.FirstNetBuffer
    s.k.NdisSendNetBufferLists(s.P.handle, first, 0, 0)


def freed_in_flight(s):
    s.k.free_built(s.send()[0])


def leak_at_unbind(s):
    s.send()
    s.b.unbind()


def dead_handle(s):
    nbl = s.nbl(s.P)
    s.b.unbind()
    s.k.NdisSendNetBufferLists(s.P.handle, nbl, 0, 0)


def protocol_handle_to_a_filter_call(s):
    s.k.NdisFSendNetBufferLists(s.P.handle, s.nbl(s.P), 0, 0)


def dispatch_hint_at_passive(s):
    s.k.NdisSendNetBufferLists(s.P.handle, s.nbl(s.P), 0, ndisemu.NDIS_SEND_FLAGS_DISPATCH_LEVEL)


def wrong_count(s):
    nbls = s.nbls(s.M, 2)
    s.k.NdisMIndicateReceiveNetBufferLists(s.M.handle, nbls[0], 0, 3, 0)


def pass_up_without_resources(f, nbl):
    f.k.NdisFIndicateReceiveNetBufferLists(f.handle, nbl, 0, 1, 0)
    return "keep"


def resources_chain_not_put_back(s):
    s.P.on_receive = lambda nbls, flags: setattr(nbls, "Next", ffi.NULL)
    s.indicate(2, RESOURCES)


def null_chain(s):
    s.k.NdisMSendNetBufferListsComplete(s.M.handle, None, 0)


def vlans_differ_under_single_vlan(s):
    nbls = s.nbls(s.M, 2)
    for nbl, tag in zip(nbls, (0x2A0, 0x2B3), strict=True):     # VlanId 0x2a, 0x2b
        ndisemu.NET_BUFFER_LIST_INFO_SET(nbl, ndisemu.Ieee8021QNetBufferListInfo, tag)
    s.k.NdisMIndicateReceiveNetBufferLists(s.M.handle, nbls[0], 0, 2,
                                           ndisemu.NDIS_RECEIVE_FLAGS_SINGLE_VLAN)


def ether_types_differ_under_single_ether_type(s):
    nbls = s.nbls(s.M, 2)
    ndisemu.NET_BUFFER_LIST_INFO_SET(nbls[1], ndisemu.NetBufferListFrameType, 0xDD86)
    s.k.NdisMIndicateReceiveNetBufferLists(s.M.handle, nbls[0], 0, 2,
                                           ndisemu.NDIS_RECEIVE_FLAGS_SINGLE_ETHER_TYPE)


def chain_loops(s):
    nbls = s.nbls(s.P, 2)
    nbls[1].Next = nbls[0]
    s.k.NdisSendNetBufferLists(s.P.handle, nbls[0], 0, 0)


def above_dispatch_level(s):
    nbl = s.nbl(s.P)
    s.k.irql = 3
    s.k.NdisSendNetBufferLists(s.P.handle, nbl, 0, 0)


def freed_nbl_sent(s):
    nbl = s.nbl(s.P)
    s.built.remove(nbl)
    s.k.free_built(nbl)
    s.k.NdisSendNetBufferLists(s.P.handle, nbl, 0, 0)


RULES = [
    # (scenario, the PassFilter's hooks, stop code, parameter 1, words in the message)
    (unset_source_handle, {}, 0x7C, 0x94,
     ["NdisSendNetBufferLists", "SourceHandle is not the sender's", "protocol sent it",
      "NULL (not set)"]),
    (send_and_complete, {"send": retag}, 0x7C, 0x94,
     ["NdisFSendNetBufferLists", "did not originate", "filter0 passed it on"]),
    (filter_completes_what_the_miniport_owns, {}, 0x7C, 0x92,
     ["NBL completed by a layer that does not own it", "filter0 called", "miniport owns it"]),
    (protocol_sends_again_before_completion, {}, 0x7C, 0x92,
     ["NBL sent by a layer that does not own it", "protocol called; miniport owns it"]),
    (miniport_completes_twice, {}, 0x7C, 0x92, ["NBL completed twice", "completed to protocol"]),
    (miniport_completes_what_it_never_got, {}, 0x7C, 0x92, ["not in flight", "not sent"]),
    (filter_passes_up_its_own_completion, {}, 0x7C, 0x92,
     ["NdisFSendNetBufferListsComplete", "NBL completed by the layer that originated it",
      "completed to filter0: filter0 must not pass it on"]),
    (protocol_returns_twice, {}, 0x7C, 0x92, ["NBL returned twice", "returned to miniport"]),
    (return_inside_a_resources_indication, {}, 0x7C, 0x92,
     ["RESOURCES returned", "indication to protocol returns"]),
    (return_after_a_resources_indication, {}, 0x7C, 0x92,
     ["RESOURCES returned", "returned to miniport"]),
    (protocol_sends_what_it_received, {}, 0x7C, 0x92,
     ["receive path sent", "protocol owns it"]),
    (filter_returns_a_send, {"send": keep}, 0x7C, 0x92,
     ["send path indicated or returned", "filter0"]),
    (send_and_complete, {"send": clone_and_complete}, 0x7C, 0x85,
     ["NdisFSendNetBufferListsComplete", "ChildRefCount is not 0", "filter0 completed it"]),
    (indicate_and_return, {"receive": clone_and_return}, 0x7C, 0x85,
     ["NdisFReturnNetBufferLists", "filter0 returned it with ChildRefCount 1"]),
    (miniport_changes_data_offset, {}, 0x7C, 0x93,
     ["NdisMSendNetBufferListsComplete", "DataOffset 0x0 -> 0xe",
      "while miniport owned it (handed over by filter0)"]),
    (send_and_complete, {"send": tag_vlan}, 0x7C, 0x93,
     ["NdisFSendNetBufferListsComplete", "Ieee8021QNetBufferListInfo) 0x0 -> 0x2a5",
      "while filter0 owned it (handed over by protocol)"]),
    (miniport_flags_an_mdl, {}, 0x7C, 0x93, ["MDL 0x", "MdlFlags 0x4 -> 0x1004"]),
    (miniport_writes_read_only_data, {}, 0x7C, 0x93, ["its data at +0x0", "read-only"]),
    (protocol_keeps_an_advance_on_a_receive, {}, 0x7C, 0x93,
     ["NdisReturnNetBufferLists", "while protocol owned it"]),
    (send_two_nbs, {"send": unlink_second_nb}, 0x7C, 0x93,
     ["NET_BUFFER list changed", "filter0 handed it on with 1 NB(s)"]),
    (send_and_complete, {"send": steal_nb}, 0x7C, 0x93,
     ["NET_BUFFER moved onto another NBL", "filter0 handed it on", "left protocol"]),
    (one_nb_on_two_nbls, {}, 0x7C, 0x93, ["NET_BUFFER moved onto another NBL", "also on"]),
    (leak_at_unbind, {}, 0x7C, 0x27, ["unbind", "miniport owns it, its home is protocol"]),
    (freed_in_flight, {}, 0x7C, 0x92,
     ["free_built", "NBL freed while it is in flight", "miniport owns it", "home is protocol"]),
    (dead_handle, {}, 0x7C, 0x95, ["not a live protocol handle", "since unbound"]),
    (protocol_handle_to_a_filter_call, {}, 0x7C, 0x95,
     ["not a live filter handle", "is the protocol's"]),
    (dispatch_hint_at_passive, {}, 0x7C, 0x8F, ["NDIS_SEND_FLAGS_DISPATCH_LEVEL", "IRQL 0"]),
    (wrong_count, {}, 0x7C, 0x8F, ["NumberOfNetBufferLists", "said 3", "holds 2"]),
    (resources_chain_not_put_back, {}, 0x7C, 0x93,
     ["chain not put back", "protocol left Next 0x0"]),
    (vlans_differ_under_single_vlan, {}, 0x7C, 0x8F,
     ["NDIS_RECEIVE_FLAGS_SINGLE_VLAN but the NBLs differ", "VlanId 0x2a and 0x2b"]),
    (ether_types_differ_under_single_ether_type, {}, 0x7C, 0x8F,
     ["SINGLE_ETHER_TYPE", "NetBufferListFrameType 0x0 and 0xdd86"]),
    (chain_loops, {}, 0x7C, 0x8F, ["loops back"]),
    (null_chain, {}, 0x7C, 0x81, ["NdisMSendNetBufferListsComplete", "NULL pointer"]),
    (above_dispatch_level, {}, 0xC4, 0x91001, ["NdisSendNetBufferLists", "maximum IRQL"]),
    (freed_nbl_sent, {}, 0x7C, 0x83, ["NdisSendNetBufferLists", "freed"]),
]


def _rule_id(row):
    scenario, hooks = row[0], row[1]
    return "-".join([scenario.__name__] + [h.__name__ for h in hooks.values()])


@pytest.mark.parametrize(("scenario", "hooks", "code", "subcode", "words"), RULES,
                         ids=[_rule_id(r) for r in RULES])
def test_each_rule_is_a_bug_check(s, scenario, hooks, code, subcode, words):
    s.bind(**hooks)
    err = expect_bugcheck(lambda: scenario(s), subcode, *words, code=code)
    if code == 0x7C and subcode not in (0x27, 0x95, 0x81):  # P2 is the NBL, named as such
        assert f"NET_BUFFER_LIST at {err.parameters[1]:#018x}" in str(err)
    # A bug check stops the machine: put back only what the frees need.
    s.k.irql = 0
    f = s.F[0]
    if hasattr(f, "clone"):
        f.clone.ParentNetBufferList.ChildRefCount -= 1
        s.k.NdisFreeCloneNetBufferList(f.clone, 0)
    if hasattr(f, "own"):
        s.k.free_built(f.own)


def test_resources_passed_on_without_the_flag_names_the_filter(s):
    s.bind(receive=pass_up_without_resources)
    expect_bugcheck(lambda: s.indicate(flags=RESOURCES), 0x8F, "NdisFIndicateReceive",
                    "RESOURCES passed on without it", "filter0 would keep it")


def test_the_leak_at_unbind_is_microsofts_0x27_and_the_binding_stays(s):
    s.bind(filters=2)
    nbls = s.send(2)
    err = expect_bugcheck(s.b.unbind, 0x27, "2 NBL(s) in flight",
                          "(protocol 0, filter0 0, filter1 0, miniport 2)")
    assert err.parameters == (0x27, 1, 0, 0)
    assert f"NET_BUFFER_LIST at {s.k.addr(nbls[0]):#018x}" in str(err)
    assert s.b.live
    s.b.complete_pending()
    s.b.unbind()
    assert not s.b.live


# Freeing what is in flight: the free calls are the core's, and the core knows
# which NBLs (and the NBs they left home with) are away, so the free itself is
# refused, whoever calls it, and nothing changes.
IN_FLIGHT = [
    # (how the NBL got away, the owner named, the home named)
    ("send, miniport holds it", lambda s: s.send()[0], "miniport", "protocol"),
    ("send, the filter keeps it", lambda s: s.send()[0], "filter0", "protocol"),
    ("indication, protocol holds it", lambda s: s.indicate()[0], "protocol", "miniport"),
]


@pytest.mark.parametrize(("away", "owner", "home"), [r[1:] for r in IN_FLIGHT],
                         ids=[r[0] for r in IN_FLIGHT])
def test_freeing_an_nbl_in_flight_is_refused_at_the_free(s, away, owner, home):
    s.bind(send=keep) if owner == "filter0" else s.bind()
    nbl = away(s)
    assert s.b.owner(nbl) == owner
    before = s.k.live_objects()
    err = expect_bugcheck(lambda: s.k.free_built(nbl), 0x92, "free_built",
                          "NBL freed while it is in flight", f"{owner} owns it",
                          f"its home is {home}")
    owner_handle = next(layer.handle for layer in s.b.layers if layer.name == owner)
    assert err.parameters == (0x92, s.k.addr(nbl), s.k.addr(owner_handle), 0)
    assert s.k.live_objects() == before and s.b.owner(nbl) == owner


def test_an_nbl_back_home_may_be_freed(s):
    s.bind()
    nbl = s.send()[0]
    expect_bugcheck(lambda: s.k.free_built(nbl), 0x92)
    s.b.complete_pending()
    s.built.remove(nbl)
    s.k.free_built(nbl)                    # home again: its home frees it
    s.b.unbind()


def test_freeing_an_nb_of_an_nbl_in_flight_is_refused(s):
    s.bind()
    nb = s.k.NdisAllocateNetBuffer(s.k.default_nb_pool, ffi.NULL, 0, 0)
    nbl = s.k.NdisAllocateNetBufferList(s.pool, 0, 0)
    nbl.FirstNetBuffer = nb
    nbl.SourceHandle = s.P.handle
    s.k.NdisSendNetBufferLists(s.P.handle, nbl, 0, 0)
    expect_bugcheck(lambda: s.k.NdisFreeNetBuffer(nb), 0x92, "NdisFreeNetBuffer",
                    "NET_BUFFER freed while its NBL is in flight", "miniport owns it")
    s.b.complete_pending()
    nbl.FirstNetBuffer = ffi.NULL
    s.k.NdisFreeNetBuffer(nb)              # home: the protocol may take it apart
    s.k.NdisFreeNetBufferList(nbl)
    s.b.unbind()


def test_abandon_brings_every_nbl_home_and_ends_the_binding(s):
    s.bind(filters=2)
    sent, indicated = s.send(2), s.indicate(1)
    assert s.b.owner(indicated[0]) == "protocol"
    s.b.abandon()
    assert not s.b.live and s.k.pending() == {}
    assert s.P.completed == [] and s.F[0].seen[-1][0] == "receive"   # no handler called
    for nbl in sent + indicated:
        s.built.remove(nbl)
        s.k.free_built(nbl)                # each is home: its home may free it
    expect_bugcheck(lambda: s.k.NdisSendNetBufferLists(s.P.handle, s.nbl(s.P), 0, 0), 0x95)
    with pytest.raises(ValueError, match="unbound"):
        s.b.abandon()
    s.bind()                               # the Kernel takes a new binding


# Cancelling sends: NDIS_SET_NET_BUFFER_LIST_CANCEL_ID marks them, the cancel
# call goes to the next lower layer with a cancel handler, and whoever holds
# the marked sends completes them with NDIS_STATUS_SEND_ABORTED.
def set_cancel_id(k, nbl, value):
    NDIS_SET_NET_BUFFER_LIST_CANCEL_ID(k.view(nbl), value)


def cancel_id(k, nbl):
    return NDIS_GET_NET_BUFFER_LIST_CANCEL_ID(k.view(nbl))


class CancellingFilter(PassFilter):
    """Holds the sends marked with a cancel ID it is told to hold, and
    completes them aborted when cancelled; passes every cancel down."""

    def __init__(self, k, hold):
        super().__init__(k)
        self.hold, self.held, self.cancels = hold, [], []

    def FilterSendNetBufferLists(self, NetBufferLists, PortNumber, SendFlags):
        nbls = chain(NetBufferLists)
        keep = [n for n in nbls if cancel_id(self.k, n) == self.hold]
        self.held += keep
        rest = [n for n in nbls if n not in keep]
        for a, b in zip(rest, rest[1:] + [ffi.NULL], strict=True):
            a.Next = b
        if rest:
            self.k.NdisFSendNetBufferLists(self.handle, rest[0], PortNumber, SendFlags)

    def FilterCancelSendNetBufferLists(self, CancelId):
        self.cancels.append(int(ffi.cast("uintptr_t", CancelId)))
        mine = [n for n in self.held if cancel_id(self.k, n) == self.cancels[-1]]
        self.held = [n for n in self.held if n not in mine]
        for a, b in zip(mine, mine[1:] + [ffi.NULL], strict=True):
            a.Next, a.Status = b, ndisemu.NDIS_STATUS_SEND_ABORTED - (1 << 32)
        if mine:
            self.k.NdisFSendNetBufferListsComplete(self.handle, mine[0], 0)
        self.k.NdisFCancelSendNetBufferLists(self.handle, CancelId)


def test_a_cancel_reaches_the_miniport_through_filters_without_a_handler(s):
    s.bind(filters=2)
    partial = s.k.NdisGeneratePartialCancelId()
    mark = partial << 24 | 7
    nbls = s.nbls(s.P, 3)
    set_cancel_id(s.k, nbls[0], mark)
    set_cancel_id(s.k, nbls[2], mark)
    s.k.NdisSendNetBufferLists(s.P.handle, nbls[0], 0, 0)
    s.k.NdisCancelSendNetBufferLists(s.P.handle, mark)
    assert s.P.completed == [([nbls[0], nbls[2]], 0)]
    assert [n.Status & 0xFFFFFFFF for n in (nbls[0], nbls[2])] == \
        [ndisemu.NDIS_STATUS_SEND_ABORTED] * 2
    assert s.M.queued == [nbls[1]] and s.b.owner(nbls[1]) == "miniport"
    s.k.NdisCancelSendNetBufferLists(s.P.handle, partial << 24 | 8)     # marks nothing
    assert s.M.queued == [nbls[1]]
    s.b.complete_pending()
    s.b.unbind()


def test_a_filter_with_a_cancel_handler_aborts_what_it_holds_and_passes_it_down(k, pool):
    s = Stack(k, pool)
    f = CancellingFilter(k, hold=0x0100_0001)
    s.bind(filters=[f])
    nbls = s.nbls(s.P, 3)
    set_cancel_id(k, nbls[0], 0x0100_0001)      # held by the filter
    set_cancel_id(k, nbls[1], 0x0100_0001)      # held by the filter
    k.NdisSendNetBufferLists(s.P.handle, nbls[0], 0, 0)
    assert f.held == nbls[:2] and s.M.queued == [nbls[2]]
    k.NdisCancelSendNetBufferLists(s.P.handle, ffi.cast("void *", 0x0100_0001))
    assert f.cancels == [0x0100_0001]
    assert s.P.completed == [(nbls[:2], 0)] and s.M.queued == [nbls[2]]
    s.b.complete_pending()
    s.b.unbind()
    s.free()


def test_cancel_calls_check_the_handle_and_the_irql(s):
    s.bind()
    expect_bugcheck(lambda: s.k.NdisCancelSendNetBufferLists(s.F[0].handle, 1), 0x95,
                    "NdisCancelSendNetBufferLists", "not a live protocol handle")
    expect_bugcheck(lambda: s.k.NdisFCancelSendNetBufferLists(s.P.handle, 1), 0x95,
                    "not a live filter handle")
    with pytest.raises(TypeError):
        s.k.NdisCancelSendNetBufferLists(s.P.handle, "id")
    with pytest.raises(ValueError):
        s.k.NdisCancelSendNetBufferLists(s.P.handle, -1)
    s.k.irql = 3
    expect_bugcheck(lambda: s.k.NdisCancelSendNetBufferLists(s.P.handle, 1), 0x91001,
                    code=0xC4)
    s.k.irql = 0
    s.b.unbind()


def test_partial_cancel_ids_count_from_one_and_skip_zero(k):
    ids = [k.NdisGeneratePartialCancelId() for _ in range(256)]
    assert ids[:3] == [1, 2, 3] and ids[254] == 255 and ids[255] == 1 and 0 not in ids


def test_refused_calls_change_nothing(s):
    s.bind()
    good, bad = s.nbls(s.P, 2)
    bad.SourceHandle = ffi.NULL
    expect_bugcheck(lambda: s.k.NdisSendNetBufferLists(s.P.handle, good, 0, 0), 0x94)
    assert s.owners()["miniport"] == [] and s.F[0].seen == []
    bad.SourceHandle = s.P.handle
    s.k.NdisSendNetBufferLists(s.P.handle, good, 0, 0)
    assert s.owners()["miniport"] == addresses([good, bad])
    s.b.complete_pending()
    s.b.unbind()


def test_what_lower_layers_may_write_is_left_out(s):
    """Next, Status, the reserved and scratch areas, Flags, the LSO info, NB
    reserved areas and (without READ_ONLY) the data may change."""
    s.bind()
    nbl = s.send()[0]
    nb = nbl.FirstNetBuffer
    nbl.Status = -1
    nbl.Scratch = ffi.cast("void *", 0x1234)
    nbl.MiniportReserved[0] = ffi.cast("void *", 1)
    nbl.ProtocolReserved[3] = ffi.cast("void *", 1)
    nbl.NdisReserved[1] = ffi.cast("void *", 1)
    nbl.Flags = 0xFFFFFFFF
    ndisemu.NET_BUFFER_LIST_INFO_SET(nbl, ndisemu.TcpLargeSendNetBufferListInfo, 0x5DC)
    nb.MiniportReserved[2] = ffi.cast("void *", 7)
    nb.ProtocolReserved[5] = ffi.cast("void *", 7)
    ffi.cast("uint8_t *", nb.MdlChain.MappedSystemVa)[5] = 0x99
    s.b.complete_pending()
    assert s.P.completed == [([nbl], 0)]
    s.b.unbind()


def test_mapping_an_unmapped_mdl_is_allowed(s):
    k = s.k
    s.bind()
    buffer = k.NdisAllocateMemoryWithTagPriority(None, 64, 0x74736554, ndisemu.NormalPagePriority)
    mdl = k.IoAllocateMdl(buffer, 64, False, False, None)       # not mapped yet
    nbl = k.NdisAllocateNetBufferAndNetBufferList(s.pool, 0, 0, mdl, 0, 64)
    nbl.SourceHandle = s.P.handle
    k.NdisSendNetBufferLists(s.P.handle, nbl, 0, 0)
    assert k.MmGetSystemAddressForMdlSafe(mdl, ndisemu.NormalPagePriority) != ffi.NULL
    assert mdl.MdlFlags & ndisemu.MDL_MAPPED_TO_SYSTEM_VA
    s.b.complete_pending()
    s.b.unbind()
    k.NdisFreeNetBufferList(nbl)
    k.IoFreeMdl(mdl)
    k.NdisFreeMemoryWithTagPriority(None, buffer, 0x74736554)


def test_bind_refuses_what_would_never_be_called(k):
    class Typo:
        def FilterSendNetBufferList(self, *args):
            pass

    class WrongKind:
        def MiniportReturnNetBufferLists(self, *args):
            pass

    m = SimpleNamespace()
    with pytest.raises(ValueError, match="FilterSendNetBufferList is not an NDIS handler"):
        k.bind(protocol=SimpleNamespace(), filters=[Typo()], miniport=m)
    with pytest.raises(ValueError, match="MiniportReturnNetBufferLists is not a protocol's"):
        k.bind(protocol=WrongKind(), miniport=m)
    with pytest.raises(ValueError, match="one object cannot be two layers"):
        k.bind(protocol=m, miniport=m)
    with pytest.raises(TypeError, match="cannot set .handle"):
        k.bind(protocol=object(), miniport=m)
    with pytest.raises(TypeError, match="filters must be a list"):
        k.bind(protocol=SimpleNamespace(), filters=SimpleNamespace(), miniport=m)
    with pytest.raises(TypeError, match="must be callable"):
        k.bind(protocol=SimpleNamespace(ProtocolReceiveNetBufferLists=1), miniport=m)
    b = k.bind(protocol=SimpleNamespace(), miniport=m)
    with pytest.raises(ValueError, match="already has a live binding"):
        k.bind(protocol=SimpleNamespace(), miniport=SimpleNamespace())
    with pytest.raises(TypeError, match="LoopbackMiniport"):
        b.complete_pending()
    b.unbind()
    with pytest.raises(ValueError, match="unbound"):
        b.unbind()


@pytest.mark.parametrize(("call", "layer", "args", "error", "match"), [
    ("NdisSendNetBufferLists", "P", (0, 0x40), ValueError, "SendFlags=0x40"),
    ("NdisSendNetBufferLists", "P", (-1, 0), ValueError, "PortNumber"),
    ("NdisSendNetBufferLists", "P", (0, "0"), TypeError, "SendFlags"),
    ("NdisMIndicateReceiveNetBufferLists", "M", (0, 1, 0x10000), ValueError, "ReceiveFlags"),
    ("NdisReturnNetBufferLists", "P", (0x8,), ValueError, "ReturnFlags"),
    ("NdisFSendNetBufferListsComplete", "F0", (0x8,), ValueError, "SendCompleteFlags"),
    ("NdisSendNetBufferLists", "P", (0, 0), TypeError, "NET_BUFFER_LIST \\*"),
])
def test_argument_errors_come_first(s, call, layer, args, error, match):
    s.bind()
    handle = s.F[0].handle if layer == "F0" else getattr(s, layer).handle
    nbl = s.nbl(s.P) if match != "NET_BUFFER_LIST \\*" else ffi.cast("void *", 0x10)
    with pytest.raises(error, match=match):
        getattr(s.k, call)(handle, nbl, *args)
    assert s.owners()["miniport"] == []


# -- random interleavings through a loopback binding -------------------------------------

class LoopbackMachine(RuleBasedStateMachine):
    """Sends, deferred completions, indications with and without RESOURCES
    and returns, interleaved at random, through 0-2 pass-through filters
    (with every handler, or with none): the owners the binding reports
    always match a model, nothing leaks at unbind, and every NBL comes back
    to its home exactly once."""

    kept = Bundle("kept")

    @initialize(filters=st.lists(st.booleans(), max_size=2))
    def setup(self, filters):
        self.k = ndisemu.Kernel(arena_size=1 << 20)
        self.pool = self.k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True})
        self.s = Stack(self.k, self.pool)
        self.s.bind(filters=[PassFilter(self.k) if full else SimpleNamespace()
                             for full in filters])
        self.model: dict[int, str] = {}     # NBL in flight -> the layer that must own it
        self.home: dict[int, str] = {}      # every NBL -> its home
        self.resourced: list[int] = []      # indicated with RESOURCES: home at once
        self.s.P.on_receive = self._received

    def _received(self, nbls, flags):
        for a in addresses(chain(nbls)):
            if not flags & RESOURCES:
                self.model[a] = "protocol"

    @rule(n=st.integers(1, 3))
    def send(self, n):
        for a in addresses(self.s.send(n)):
            self.model[a], self.home[a] = "miniport", "protocol"

    @precondition(lambda self: self.s.M.queued)
    @rule(count=st.integers(1, 4))
    def complete(self, count):
        done = addresses(self.s.M.queued[:count])
        before = len(self.s.P.completed)
        assert self.s.b.complete_pending(count) == len(done)
        got = [a for nbls, _ in self.s.P.completed[before:] for a in addresses(nbls)]
        assert got == done
        for a in done:
            del self.model[a]

    @rule(target=kept, n=st.integers(1, 3), resources=st.booleans())
    def indicate(self, n, resources):
        nbls = self.s.nbls(self.s.M, n)
        for a in addresses(nbls):
            self.home[a] = "miniport"
        self.k.NdisMIndicateReceiveNetBufferLists(self.s.M.handle, nbls[0], 0, n,
                                                  RESOURCES if resources else 0)
        if resources:
            self.resourced += addresses(nbls)
            return []
        return nbls

    @rule(nbls=consumes(kept), one_by_one=st.booleans())
    def give_back(self, nbls, one_by_one):
        for group in ([[n] for n in nbls] if one_by_one else [nbls] if nbls else []):
            for a, b in zip(group, group[1:] + [ffi.NULL], strict=True):
                a.Next = b
            before = len(self.s.M.returned)
            self.k.NdisReturnNetBufferLists(self.s.P.handle, group[0], 0)
            assert addresses(self.s.M.returned[before:]) == addresses(group)
            for a in addresses(group):
                del self.model[a]

    @invariant()
    def owners_match_the_model(self):
        pending = self.k.pending()
        owned = {a: name for name, nbls in pending.items() for a in addresses(nbls)}
        assert sum(map(len, pending.values())) == len(owned)      # a partition
        assert owned == self.model
        for a in owned:
            assert self.s.b.home(ffi.cast("NET_BUFFER_LIST *", a)) == self.home[a]

    def teardown(self):
        if not hasattr(self, "s"):
            return
        self.s.b.complete_pending()
        for nbl in self.k.pending()["protocol"]:
            nbl.Next = ffi.NULL
            self.k.NdisReturnNetBufferLists(self.s.P.handle, nbl, 0)
        self.s.b.unbind()                                  # nothing leaked: no bug check
        completed = [a for nbls, _ in self.s.P.completed for a in addresses(nbls)]
        returned = addresses(self.s.M.returned) + self.resourced
        assert sorted(completed) == sorted(a for a, h in self.home.items() if h == "protocol")
        assert sorted(returned) == sorted(a for a, h in self.home.items() if h == "miniport")
        self.s.free()
        self.k.NdisFreeNetBufferListPool(self.pool)        # nothing else left behind


LoopbackMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=25,
                                             deadline=None)
TestLoopbackMachine = LoopbackMachine.TestCase


# -- the README's worked example ---------------------------------------------------------

def test_readme_binding_example_runs_and_shows_the_bug_check():
    text = README.read_text()
    section = text[text.index("## Who owns an NBL"):]
    section = section[:section.index("\n## ", 10)]
    python = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shown = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    scope: dict = {}
    exec(compile(python, str(README), "exec"), scope)  # noqa: S102 - our own README
    assert str(scope["bug"]).splitlines()[0] == " ".join(shown.split())
    assert scope["bug"].parameters[0] == 0x85
