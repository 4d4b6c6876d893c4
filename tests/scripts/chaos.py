"""Corrupts one field of a freshly built NBL at random, then runs random
calls on it: every one must return or raise BugCheck, never crash.  Run in a
subprocess by tests/test_verifier.py (a crash would kill pytest itself).

    python chaos.py SEED
"""

import random
import sys

import ndisemu
from ndisemu import ffi

rng = random.Random(int(sys.argv[1]))
k = ndisemu.Kernel(arena_size=4 << 20, verifier=bool(rng.getrandbits(1)))
pool = k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True})
VALUES = [0, 1, 0xFFFFFFFF, 8, 4096]


def anywhere(ctype):
    """A pointer to a random 16-byte-aligned spot of the arena."""
    return ffi.cast(ctype, k._base + 16 * rng.randrange(k.arena_size // 16))


def corrupt(nbl, nb):
    mdl = nb.MdlChain
    choice = rng.randrange(11)
    if choice == 0:
        nb.DataOffset = rng.choice(VALUES + [rng.randrange(1 << 32)])
    elif choice == 1:
        nb.DataLength = rng.choice(VALUES + [rng.randrange(1 << 32)])
    elif choice == 2:
        nb.CurrentMdlOffset = rng.choice(VALUES)
    elif choice == 3:
        nb.CurrentMdl = rng.choice([ffi.cast("MDL *", 0x1000), anywhere("MDL *")])
    elif choice == 4 and mdl != ffi.NULL:
        mdl.ByteCount = rng.choice(VALUES)
    elif choice == 5 and mdl != ffi.NULL:
        mdl.Next = anywhere("MDL *")
    elif choice == 6 and mdl != ffi.NULL:
        mdl.StartVa = ffi.cast("void *", rng.choice([0, 0x7FFF0000, k._base]))
    elif choice == 7:
        nb.Next = anywhere("NET_BUFFER *")
    elif choice == 8:
        nbl.Context = anywhere("NET_BUFFER_LIST_CONTEXT *")
    elif choice == 9:
        nbl.FirstNetBuffer = anywhere("NET_BUFFER *")
    elif choice == 10 and mdl != ffi.NULL:
        mdl.ByteOffset = rng.choice(VALUES)


def read_first_mdl(nbl):
    """Walks the checked views: None where a pointer is NULL."""
    nb = k.view(nbl).FirstNetBuffer
    mdl = nb.MdlChain if nb is not None else None
    return mdl.bytes() if mdl is not None else None


def operations(nbl, nb):
    return [
        lambda: k.NdisAllocateCloneNetBufferList(nbl, None, None, rng.choice([0, 2])),
        lambda: k.FwpsAllocateDeepCloneNetBufferList0(nbl, None, None),
        lambda: k.NdisAllocateFragmentNetBufferList(nbl, None, None, rng.randrange(5),
                                                    rng.randrange(1, 40), rng.randrange(10), 0),
        lambda: k.NdisAllocateReassembledNetBufferList(nbl, None, 0, rng.randrange(10), 0),
        lambda: k.NdisRetreatNetBufferDataStart(nb, rng.randrange(64), 0, None),
        lambda: k.NdisAdvanceNetBufferDataStart(nb, rng.randrange(64), True, None),
        lambda: k.NdisGetDataBuffer(nb, rng.randrange(64), bytearray(64), 1, 0),
        lambda: k.NdisCopyFromNetBufferToNetBuffer(nb, 0, 50, nb, 3),
        lambda: k.nbl_bytes(nbl),
        lambda: k.NdisAdjustNetBufferCurrentMdl(nb),
        lambda: read_first_mdl(nbl),
        lambda: k.free_built(nbl),
        lambda: k.NdisAllocateNetBufferListContext(nbl, 16, 0, 1),
        lambda: k.NdisFreeNetBufferListContext(nbl, 16),
        lambda: k.FwpsAllocateCloneNetBufferList0(nbl, None, None, 0),
        lambda: k.NdisRetreatNetBufferListDataStart(nbl, rng.randrange(64), 0, None, None),
        lambda: k.NdisAdvanceNetBufferListDataStart(nbl, rng.randrange(8), True, None),
        lambda: k.NdisCopySendNetBufferListInfo(nbl, nbl),
        lambda: ndisemu.NET_BUFFER_LIST_CONTEXT_DATA_START(nbl),
        lambda: k.check_nbl(nbl),
    ]


caught = 0
for _ in range(300):
    payloads = [bytes(rng.randrange(0, 100)) for _ in range(rng.randrange(1, 4))]
    nbl = k.build_nbl(pool, payloads, mdl_sizes=[rng.randrange(1, 20)],
                      data_offset=rng.randrange(0, 30))
    nb = nbl.FirstNetBuffer
    corrupt(nbl, nb)
    for op in rng.sample(operations(nbl, nb), 5):
        try:
            op()
        except ndisemu.BugCheck:
            caught += 1
print("ok", caught)
