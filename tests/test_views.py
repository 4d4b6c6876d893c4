"""Every call that takes a pointer takes a checked view in its place and
behaves exactly as with the view's pointer.  Each row runs twice on fresh,
identical Kernels, once with raw pointers and once with views; the results
(pointers as display addresses, bug checks as their messages) must match."""

import inspect
from types import SimpleNamespace

import pytest

import ndisemu
from ndisemu import ffi, macros
from ndisemu.inspection import View

USE_ORIGINAL = ndisemu.NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS


def world(k):
    """The objects every row works on."""
    e = SimpleNamespace()
    e.pool = k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True, "PoolTag": 0x54})
    e.plain_pool = k.NdisAllocateNetBufferListPool(None, {"PoolTag": 0x55})
    e.nb_pool = k.NdisAllocateNetBufferPool(None, {"PoolTag": 0x56})
    e.nbl = k.build_nbl(e.pool, [b"0123456789abcdef", b"xyz"], mdl_sizes=[5], data_offset=4)
    e.nb = e.nbl.FirstNetBuffer
    e.nb2 = e.nb.Next
    e.mdl = e.nb.MdlChain
    e.va = k.NdisAllocateMemoryWithTagPriority(None, 64, 9, 16)
    e.my_mdl = k.NdisAllocateMdl(None, e.va, 64)
    return e


def handler_mdl(k, w):
    """An AllocateMdlHandler that returns a view when views are tested."""
    def allocate(size):
        return w(k.NdisAllocateMdl(None, k.NdisAllocateMemoryWithTagPriority(None, size, 9, 16),
                                   size))
    return allocate


def refused(call):
    """The bug check `call` raises (parameter 1), else None."""
    try:
        call()
    except ndisemu.BugCheck as error:
        return error.parameters[0]
    return None


def with_context(k, e, w):
    assert k.NdisAllocateNetBufferListContext(w(e.nbl), 16, 0, 7) == 0
    size = ndisemu.NET_BUFFER_LIST_CONTEXT_DATA_SIZE(e.nbl)
    k.NdisFreeNetBufferListContext(e.nbl, 16)
    return size


def free_context(k, e, w):
    k.NdisAllocateNetBufferListContext(e.nbl, 16, 0, 7)
    k.NdisFreeNetBufferListContext(w(e.nbl), 16)
    return k.stats()["context"]


def copy_info(name):
    def row(k, e, w):
        other = k.build_nbl(e.pool, [b"a"])
        ndisemu.NET_BUFFER_LIST_INFO_SET(e.nbl, ndisemu.Ieee8021QNetBufferListInfo, 0x1234)
        getattr(k, name)(w(other), w(e.nbl))
        return ndisemu.NET_BUFFER_LIST_INFO(other, ndisemu.Ieee8021QNetBufferListInfo)
    return row


class Keeper:
    """A protocol or filter that keeps whatever reaches it (its handlers
    named by `handlers`), so the row can hand it back itself."""

    def __init__(self, *handlers):
        for name in handlers:
            setattr(self, name, lambda *args: None)


def bound(k, e, sender, receiver=None):
    """A protocol, one filter and a deferring loopback miniport; e.nbl's
    SourceHandle set to `sender`'s handle (a layer name)."""
    layers = SimpleNamespace(
        protocol=Keeper(*(["ProtocolReceiveNetBufferLists"] if receiver == "protocol" else [])),
        filter=Keeper(*({"send": ["FilterSendNetBufferLists"],
                         "receive": ["FilterReceiveNetBufferLists"]}.get(receiver, []))),
        miniport=ndisemu.LoopbackMiniport(defer=True))
    k.bind(protocol=layers.protocol, filters=[layers.filter], miniport=layers.miniport)
    e.nbl.SourceHandle = getattr(layers, sender).handle
    return layers


def owners(k):
    """k.pending() as comparable rows."""
    return sorted((name, [k.display(n) for n in nbls]) for name, nbls in k.pending().items())


def binding_row(call):
    """Each of the eight calls, with the NBL passed through `w`."""
    def row(k, e, w):
        if call == "NdisSendNetBufferLists":
            b = bound(k, e, "protocol")
            k.NdisSendNetBufferLists(b.protocol.handle, w(e.nbl), 0, 0)
        elif call == "NdisFSendNetBufferLists":
            b = bound(k, e, "filter")
            k.NdisFSendNetBufferLists(b.filter.handle, w(e.nbl), 0, 0)
        elif call == "NdisMSendNetBufferListsComplete":
            b = bound(k, e, "protocol")
            k.NdisSendNetBufferLists(b.protocol.handle, e.nbl, 0, 0)
            k.NdisMSendNetBufferListsComplete(b.miniport.handle, w(e.nbl), 0)
        elif call == "NdisFSendNetBufferListsComplete":
            b = bound(k, e, "protocol", "send")
            k.NdisSendNetBufferLists(b.protocol.handle, e.nbl, 0, 0)
            k.NdisFSendNetBufferListsComplete(b.filter.handle, w(e.nbl), 0)
        elif call == "NdisMIndicateReceiveNetBufferLists":
            b = bound(k, e, "miniport", "protocol")
            k.NdisMIndicateReceiveNetBufferLists(b.miniport.handle, w(e.nbl), 0, 1, 0)
        elif call == "NdisFIndicateReceiveNetBufferLists":
            b = bound(k, e, "filter", "protocol")
            k.NdisFIndicateReceiveNetBufferLists(b.filter.handle, w(e.nbl), 0, 1, 0)
        elif call == "NdisReturnNetBufferLists":
            b = bound(k, e, "miniport", "protocol")
            k.NdisMIndicateReceiveNetBufferLists(b.miniport.handle, e.nbl, 0, 1, 0)
            k.NdisReturnNetBufferLists(b.protocol.handle, w(e.nbl), 0)
        else:
            b = bound(k, e, "miniport", "receive")
            k.NdisMIndicateReceiveNetBufferLists(b.miniport.handle, e.nbl, 0, 1, 0)
            k.NdisFReturnNetBufferLists(b.filter.handle, w(e.nbl), 0)
        return owners(k), [k.display(n) for n in b.miniport.returned]
    return row


BINDING_CALLS = ["NdisSendNetBufferLists", "NdisFSendNetBufferLists",
                 "NdisMSendNetBufferListsComplete", "NdisFSendNetBufferListsComplete",
                 "NdisMIndicateReceiveNetBufferLists", "NdisFIndicateReceiveNetBufferLists",
                 "NdisReturnNetBufferLists", "NdisFReturnNetBufferLists"]


# method -> row(k, world, wrap): the call with every NBL, NB, MDL or context
# pointer passed through wrap (identity, or k.view).
ROWS = {
    "FwpsAllocateCloneNetBufferList0": lambda k, e, w: k.nbl_bytes(
        k.FwpsAllocateCloneNetBufferList0(w(e.nbl), None, None, 0)[1]),
    "FwpsAllocateDeepCloneNetBufferList0": lambda k, e, w: k.nbl_bytes(
        k.FwpsAllocateDeepCloneNetBufferList0(w(e.nbl), None, None)[1]),
    "FwpsAllocateNetBufferAndNetBufferList0": lambda k, e, w: k.nbl_bytes(
        k.FwpsAllocateNetBufferAndNetBufferList0(e.pool, 0, 0, w(e.my_mdl), 2, 9)[1]),
    "FwpsDereferenceNetBufferList0": lambda k, e, w: (
        k.FwpsReferenceNetBufferList0(e.nbl, False),
        k.FwpsDereferenceNetBufferList0(w(e.nbl), False), k.free_built(e.nbl)),
    "FwpsFreeCloneNetBufferList0": lambda k, e, w: (k.FwpsFreeCloneNetBufferList0(
        w(k.FwpsAllocateCloneNetBufferList0(e.nbl, None, None, 0)[1]), 0), e.nbl.ChildRefCount),
    "FwpsFreeNetBufferList0": lambda k, e, w: (k.FwpsFreeNetBufferList0(
        w(k.FwpsAllocateNetBufferAndNetBufferList0(e.pool, 0, 0, e.my_mdl, 0, 8)[1])),
        k.stats()["nbl"]),
    "FwpsReferenceNetBufferList0": lambda k, e, w: (
        k.FwpsReferenceNetBufferList0(w(e.nbl), False), refused(lambda: k.free_built(e.nbl))),
    "IoFreeMdl": lambda k, e, w: (
        k.IoFreeMdl(w(k.IoAllocateMdl(e.va, 8, False, False, None))), k.stats()["mdl"]),
    "MmBuildMdlForNonPagedPool": lambda k, e, w: (
        k.MmBuildMdlForNonPagedPool(w(m := k.IoAllocateMdl(e.va, 8, False, False, None))),
        m.MdlFlags, m.MappedSystemVa),
    "MmGetMdlByteCount": lambda k, e, w: k.MmGetMdlByteCount(w(e.mdl)),
    "MmGetMdlByteOffset": lambda k, e, w: k.MmGetMdlByteOffset(w(e.mdl)),
    "MmGetMdlVirtualAddress": lambda k, e, w: k.MmGetMdlVirtualAddress(w(e.mdl)),
    "MmGetSystemAddressForMdlSafe": lambda k, e, w: k.MmGetSystemAddressForMdlSafe(
        w(e.mdl), ndisemu.NormalPagePriority),
    "MmInitializeMdl": lambda k, e, w: (k.MmInitializeMdl(w(e.my_mdl), e.va, 32),
                                        e.my_mdl.ByteCount),
    "NdisAdjustMdlLength": lambda k, e, w: (k.NdisAdjustMdlLength(w(e.my_mdl), 10),
                                            e.my_mdl.ByteCount),
    "NdisAdjustNetBufferCurrentMdl": lambda k, e, w: (k.NdisAdjustNetBufferCurrentMdl(w(e.nb)),
                                                      e.nb.CurrentMdl),
    "NdisAdvanceNetBufferDataStart": lambda k, e, w: (
        k.NdisAdvanceNetBufferDataStart(w(e.nb), 3, False, None), k.nb_bytes(e.nb)),
    "NdisAdvanceNetBufferListDataStart": lambda k, e, w: (
        k.NdisAdvanceNetBufferListDataStart(w(e.nbl), 2, False, None), k.nbl_bytes(e.nbl)),
    "NdisAllocateCloneNetBufferList": lambda k, e, w: [
        k.nbl_bytes(k.NdisAllocateCloneNetBufferList(w(e.nbl), None, None, flags))
        for flags in (0, USE_ORIGINAL)] + [k.nbl_bytes(
            k.NdisAllocateCloneNetBufferList(w(e.nbl), e.plain_pool, e.nb_pool, 0))],
    "NdisAllocateFragmentNetBufferList": lambda k, e, w: k.nbl_bytes(
        k.NdisAllocateFragmentNetBufferList(w(e.nbl), None, None, 2, 5, 3, 1)),
    "NdisAllocateNetBuffer": lambda k, e, w: k.nb_bytes(
        k.NdisAllocateNetBuffer(e.nb_pool, w(e.my_mdl), 2, 10)),
    "NdisAllocateNetBufferAndNetBufferList": lambda k, e, w: k.nbl_bytes(
        k.NdisAllocateNetBufferAndNetBufferList(e.pool, 0, 0, w(e.my_mdl), 1, 5)),
    "NdisAllocateNetBufferListContext": with_context,
    "NdisAllocateReassembledNetBufferList": lambda k, e, w: k.nbl_bytes(
        k.NdisAllocateReassembledNetBufferList(w(e.nbl), None, 1, 2, 0)),
    "NdisCopyFromNetBufferToNetBuffer": lambda k, e, w: (
        k.NdisCopyFromNetBufferToNetBuffer(w(e.nb2), 0, 3, w(e.nb), 0), k.nb_bytes(e.nb2)),
    "NdisCopyReceiveNetBufferListInfo": copy_info("NdisCopyReceiveNetBufferListInfo"),
    "NdisCopySendNetBufferListInfo": copy_info("NdisCopySendNetBufferListInfo"),
    "NdisFreeCloneNetBufferList": lambda k, e, w: (k.NdisFreeCloneNetBufferList(
        w(k.NdisAllocateCloneNetBufferList(e.nbl, None, None, 0)), 0), k.stats()["nbl"]),
    "NdisFreeFragmentNetBufferList": lambda k, e, w: (k.NdisFreeFragmentNetBufferList(
        w(k.NdisAllocateFragmentNetBufferList(e.nbl, None, None, 0, 4, 3, 0)), 3),
        k.stats()["nbl"]),
    "NdisFreeMdl": lambda k, e, w: (k.NdisFreeMdl(w(e.my_mdl)), k.stats()["mdl"]),
    "NdisFreeNetBuffer": lambda k, e, w: (k.NdisFreeNetBuffer(
        w(k.NdisAllocateNetBuffer(e.nb_pool, e.my_mdl, 0, 8))), k.stats()["nb"]),
    "NdisFreeNetBufferList": lambda k, e, w: (k.NdisFreeNetBufferList(
        w(k.NdisAllocateNetBufferList(e.pool, 0, 0))), k.stats()["nbl"]),
    "NdisFreeNetBufferListContext": free_context,
    "NdisFreeReassembledNetBufferList": lambda k, e, w: (k.NdisFreeReassembledNetBufferList(
        w(k.NdisAllocateReassembledNetBufferList(e.nbl, None, 0, 2, 0)), 2), k.stats()["nbl"]),
    "NdisGetDataBuffer": lambda k, e, w: [k.NdisGetDataBuffer(w(e.nb), n, None, 1, 0)
                                          for n in (1, 9)],
    "NdisGetNetBufferListProtocolId": lambda k, e, w: k.NdisGetNetBufferListProtocolId(w(e.nbl)),
    "NdisGetNextMdl": lambda k, e, w: k.NdisGetNextMdl(w(e.mdl)),
    "NdisGetPoolFromNetBuffer": lambda k, e, w: k.NdisGetPoolFromNetBuffer(w(e.nb)),
    "NdisGetPoolFromNetBufferList": lambda k, e, w: k.NdisGetPoolFromNetBufferList(w(e.nbl)),
    "NdisQueryMdl": lambda k, e, w: k.NdisQueryMdl(w(e.mdl)),
    "NdisQueryMdlOffset": lambda k, e, w: k.NdisQueryMdlOffset(w(e.mdl)),
    "NdisRetreatNetBufferDataStart": lambda k, e, w: (
        k.NdisRetreatNetBufferDataStart(w(e.nb), 10, 0, handler_mdl(k, w)), k.nb_bytes(e.nb)),
    "NdisRetreatNetBufferListDataStart": lambda k, e, w: (
        k.NdisRetreatNetBufferListDataStart(w(e.nbl), 9, 2, None, None), k.nbl_bytes(e.nbl)),
    "NdisSetNetBufferListProtocolId": lambda k, e, w: (
        k.NdisSetNetBufferListProtocolId(w(e.nbl), 5), k.NdisGetNetBufferListProtocolId(e.nbl)),
    "check_nb": lambda k, e, w: k.check_nb(w(e.nb)),
    "check_nbl": lambda k, e, w: k.check_nbl(w(e.nbl)),
    "display": lambda k, e, w: k.display(w(e.nb)),
    "free_built": lambda k, e, w: (k.free_built(w(e.nbl)), k.stats()["nbl"]),
    "nb_bytes": lambda k, e, w: k.nb_bytes(w(e.nb)),
    "nbl_bytes": lambda k, e, w: k.nbl_bytes(w(e.nbl)),
    "owns": lambda k, e, w: k.owns(w(e.mdl)),
    "read": lambda k, e, w: k.read(w(e.mdl), 4),     # an MDL's own bytes: refused either way
    "view": lambda k, e, w: k.view(w(e.nbl)).ptr,
    "show": lambda k, e, w: k.show(w(e.nbl), chain=True, data=True),
    "dt": lambda k, e, w: k.dt(w(e.nb)),
    "addr": lambda k, e, w: k.addr(w(e.mdl)),
    "trace_log": lambda k, e, w: (setattr(k, "trace", True),
                                  k.NdisAdvanceNetBufferListDataStart(e.nbl, 1, False, None),
                                  k.trace_log(w(e.nbl))),
    **{call: binding_row(call) for call in BINDING_CALLS},
}

# Methods whose pointer parameters can never be views: views are of NBLs, NBs,
# MDLs and contexts, and these take pools, memory or nothing of the kind.
NO_VIEWABLE_POINTER = {
    "IoAllocateMdl", "MmSizeOfMdl", "NdisAllocateMdl", "NdisAllocateMemoryWithTagPriority",
    "NdisFreeMemoryWithTagPriority", "NdisAllocateNetBufferList", "NdisAllocateNetBufferListPool",
    "NdisAllocateNetBufferMdlAndData", "NdisAllocateNetBufferPool", "NdisFreeNetBufferListPool",
    "NdisFreeNetBufferPool", "build_nbl", "pool_info", "from_display", "info_index",
    "inject_failures", "live_objects", "scan_quarantine", "stats",
    "ptr",      # takes a display address and a type name
    "load",     # takes a built Driver
    "bind", "pending",      # take layer objects, nothing
    # a layer's handle and an opaque CancelId; nothing
    "NdisCancelSendNetBufferLists", "NdisFCancelSendNetBufferLists", "NdisGeneratePartialCancelId",
}

# Macro -> (world attribute of its first argument, further arguments).
MACRO_ARGS = {
    "NET_BUFFER_LIST_INFO": ("nbl", (ndisemu.Ieee8021QNetBufferListInfo,)),
    "NET_BUFFER_LIST_INFO_SET": ("nbl", (ndisemu.Ieee8021QNetBufferListInfo, 7)),
    "NDIS_SET_NET_BUFFER_LIST_CANCEL_ID": ("nbl", (0x01000007,)),
    "NdisSetNblFlag": ("nbl", (1,)), "NdisClearNblFlag": ("nbl", (1,)),
    "NdisTestNblFlag": ("nbl", (1,)), "NdisTestNblFlags": ("nbl", (3,)),
    "NBL_TEST_FLAG": ("nbl", (1,)), "NBL_SET_FLAG": ("nbl", (1,)),
    "NBL_CLEAR_FLAG": ("nbl", (1,)),
    "NET_BUFFER_LIST_SET_HASH_VALUE": ("nbl", (0x1234,)),
    "NET_BUFFER_LIST_SET_HASH_TYPE": ("nbl", (0x100,)),
    "NET_BUFFER_LIST_SET_HASH_FUNCTION": ("nbl", (1,)),
}


def kernel_methods():
    names = set()
    for klass in ndisemu.Kernel.__mro__:
        if klass.__module__.startswith("ndisemu"):
            names |= {n for n, m in vars(klass).items() if not n.startswith("_")
                      and (inspect.isfunction(m) or isinstance(m, staticmethod))}
    return names


def plain(k, value):
    """A value comparable across two Kernels: pointers as display addresses."""
    if isinstance(value, View):
        value = value.ptr
    if isinstance(value, ffi.CData):
        return None if value == ffi.NULL else ("pointer", k.display(value))
    if isinstance(value, (list, tuple)):
        return [plain(k, v) for v in value]
    return value


def outcome(call, wrap):
    k = ndisemu.Kernel(arena_size=1 << 22)
    e = world(k)
    w = k.view if wrap else (lambda p: p)
    try:
        return ("returned", plain(k, call(k, e, w)))
    except ndisemu.BugCheck as error:
        return ("BugCheck", str(error))


def test_every_method_is_classified():
    """A new method that takes a pointer needs a row here."""
    assert kernel_methods() == set(ROWS) | NO_VIEWABLE_POINTER


@pytest.mark.parametrize("method", sorted(ROWS))
def test_kernel_methods_take_views(method):
    raw = outcome(ROWS[method], wrap=False)
    assert outcome(ROWS[method], wrap=True) == raw
    assert raw[0] == ("BugCheck" if method == "read" else "returned"), raw


def _macro_row(name):
    attr, args = MACRO_ARGS.get(name, ("nb" if "nb" in inspect.signature(
        getattr(macros, name)).parameters else "nbl", ()))
    return lambda k, e, w: (getattr(macros, name)(w(getattr(e, attr)), *args),
                            e.nbl.NblFlags, e.nbl.Flags,
                            [e.nbl.NetBufferListInfo[i] for i in range(k.max_info)])


@pytest.mark.parametrize("name", macros.__all__)
def test_macros_take_views(name):
    row = _macro_row(name)
    assert outcome(row, wrap=True) == outcome(row, wrap=False)


def test_views_are_accepted_as_values_and_handler_results(k, pool):
    nbl = k.build_nbl(pool, [b"abc"])
    ndisemu.NET_BUFFER_LIST_INFO_SET(nbl, 0, k.view(nbl.FirstNetBuffer))
    assert ndisemu.NET_BUFFER_LIST_INFO(nbl, 0) == nbl.FirstNetBuffer
    ndisemu.NET_BUFFER_LIST_INFO_SET(nbl, 0, None)
    view = k.view(nbl)
    assert isinstance(ndisemu.NET_BUFFER_LIST_FIRST_NB(view), ffi.CData)  # raw out
    with pytest.raises(TypeError, match="a view or None"):
        k.display("0x10")
    k.free_built(view)
