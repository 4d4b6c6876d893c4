"""Corrupts one field of a freshly built NBL at random, then runs random
calls on it: every one must return or raise BugCheck, never crash.  Run in a
subprocess by tests/test_verifier.py (a crash would kill pytest itself).

Corruptions include what hostile drivers do: wild pointers (anywhere in the
arena, at and just past its ends and its carved top), MDL chains shared
between NBs and NBLs, counters at their limits, and writes through stale
pointers into objects freed earlier, followed by the allocations that reuse
them.  Some NBLs are then shown (k.show with every option, k.dt, repr of
views), which must return text whatever the calls left; half the seeds run
with the event trace on, so BugCheck messages carry it.

    python chaos.py SEED          one seed, prints "ok CAUGHT"
    python chaos.py --seeds N     seeds 0 .. N-1 in this process (make test-sanitize)
"""

import random
import sys

import ndisemu
from ndisemu import ffi, lib

VALUES = [0, 1, 0xFFFFFFFF, 8, 4096]


class Chaos:
    """One seed's machine: 300 NBLs, each corrupted once and handed to 5
    random calls."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.k = ndisemu.Kernel(arena_size=4 << 20, verifier=bool(self.rng.getrandbits(1)))
        self.freed = []             # (address, size) of freed objects: stale pointers
        # A second stream for inspection, so each seed's calls stay what they were.
        self.look = random.Random(seed ^ 0x5EED)
        self.k.trace = bool(self.look.getrandbits(1))

    def run(self):
        """Returns how many calls raised BugCheck."""
        pool = self.k.NdisAllocateNetBufferListPool(None, {"fAllocateNetBuffer": True})
        caught, previous = 0, None
        for _ in range(300):
            n, previous = self.one_nbl(pool, previous)
            caught += n
        return caught

    def anywhere(self, ctype):
        """A pointer to a random 16-byte-aligned spot of the arena, or just
        around its ends and its carved top."""
        top = self.k._base + self.k.stats()["arena_bytes_used"]
        end = self.k._base + self.k.arena_size
        return ffi.cast(ctype, self.rng.choice([
            self.k._base + 16 * self.rng.randrange(self.k.arena_size // 16),
            end - self.rng.choice([1, 8, 16, 32, 48]), end, end + 16,
            top - self.rng.choice([16, 32, 48]), top, top + 16, self.k._base, self.k._base + 16]))


    def stale_write(self):
        """A driver's write through a pointer to something it freed."""
        if self.freed:
            address, size = self.rng.choice(self.freed)
            at = address + self.rng.randrange(max(size, 1))
            ffi.cast("uint8_t *", at)[0] = self.rng.randrange(256)


    def corrupt(self, nbl, nb, previous):
        mdl = nb.MdlChain
        choice = self.rng.randrange(16)
        if choice == 0:
            nb.DataOffset = self.rng.choice(VALUES + [self.rng.randrange(1 << 32)])
        elif choice == 1:
            nb.DataLength = self.rng.choice(VALUES + [self.rng.randrange(1 << 32)])
        elif choice == 2:
            nb.CurrentMdlOffset = self.rng.choice(VALUES)
        elif choice == 3:
            nb.CurrentMdl = self.rng.choice([ffi.cast("MDL *", 0x1000), self.anywhere("MDL *")])
        elif choice == 4 and mdl != ffi.NULL:
            mdl.ByteCount = self.rng.choice(VALUES)
        elif choice == 5 and mdl != ffi.NULL:
            mdl.Next = self.anywhere("MDL *")
        elif choice == 6 and mdl != ffi.NULL:
            mdl.StartVa = ffi.cast("void *", self.rng.choice([0, 0x7FFF0000, self.k._base]))
        elif choice == 7:
            nb.Next = self.anywhere("NET_BUFFER *")
        elif choice == 8:
            nbl.Context = self.anywhere("NET_BUFFER_LIST_CONTEXT *")
        elif choice == 9:
            nbl.FirstNetBuffer = self.anywhere("NET_BUFFER *")
        elif choice == 10 and mdl != ffi.NULL:
            mdl.ByteOffset = self.rng.choice(VALUES)
        elif choice == 11 and previous is not None:
            # this NB's chain shared with an earlier NBL's (maybe already self.freed)
            nb.MdlChain = nb.CurrentMdl = previous
        elif choice == 12:
            nbl.ChildRefCount = self.rng.choice([0x7FFFFFFF, -1, -0x80000000])
        elif choice == 13:
            self.stale_write()
        elif choice == 14 and nb.Next != ffi.NULL:
            nb.Next.MdlChain = nb.MdlChain              # two NBs, one chain
        elif choice == 15 and mdl != ffi.NULL:
            # an overrun: one byte past what the (fresh, sound) MDL describes
            (ffi.cast("uint8_t *", mdl.MappedSystemVa) + mdl.ByteCount)[0] = 0x41


    def read_first_mdl(self, nbl):
        """Walks the checked views (None where a pointer is NULL), reads the
        MDL's bytes, then reads them again with k.read, and from its
        MappedSystemVa one byte more.  Draws nothing from the seed's generator, so every seed makes
        the same calls as before k.read was added."""
        nb = self.k.view(nbl).FirstNetBuffer
        mdl = nb.MdlChain if nb is not None else None
        if mdl is None:
            return None
        described = mdl.bytes()
        # the range View.bytes read is described by this live MDL: k.read agrees
        va = ffi.cast("uint8_t *", mdl.StartVa) + mdl.ByteOffset
        assert self.k.read(va, mdl.ByteCount) == described
        try:
            self.k.read(mdl.MappedSystemVa, mdl.ByteCount + 1)
        except ndisemu.BugCheck:
            pass
        return described


    def operations(self, nbl, nb):
        k, rng = self.k, self.rng
        return [
            lambda: k.NdisAllocateCloneNetBufferList(nbl, None, None, rng.choice([0, 2])),
            lambda: k.FwpsAllocateDeepCloneNetBufferList0(nbl, None, None),
            lambda: k.NdisAllocateFragmentNetBufferList(nbl, None, None, rng.randrange(5),
                                                        rng.randrange(1, 40),
                                                        rng.randrange(10), 0),
            lambda: k.NdisAllocateReassembledNetBufferList(nbl, None, 0, rng.randrange(10), 0),
            lambda: k.NdisRetreatNetBufferDataStart(nb, rng.randrange(64), 0, None),
            lambda: k.NdisAdvanceNetBufferDataStart(nb, rng.randrange(64), True, None),
            lambda: k.NdisGetDataBuffer(nb, rng.randrange(64), bytearray(64), 1, 0),
            lambda: k.NdisCopyFromNetBufferToNetBuffer(nb, 0, 50, nb, 3),
            lambda: k.nbl_bytes(nbl),
            lambda: k.NdisAdjustNetBufferCurrentMdl(nb),
            lambda: self.read_first_mdl(nbl),
            lambda: k.free_built(nbl),
            lambda: k.NdisAllocateNetBufferListContext(nbl, 16, 0, 1),
            lambda: k.NdisFreeNetBufferListContext(nbl, 16),
            lambda: k.FwpsAllocateCloneNetBufferList0(nbl, None, None, 0),
            lambda: k.NdisRetreatNetBufferListDataStart(nbl, rng.randrange(64), 0, None, None),
            lambda: k.NdisAdvanceNetBufferListDataStart(nbl, rng.randrange(8), True, None),
            lambda: k.NdisCopySendNetBufferListInfo(nbl, nbl),
            lambda: ndisemu.NET_BUFFER_LIST_CONTEXT_DATA_START(nbl),
            lambda: k.check_nbl(nbl),
            k.scan_quarantine,
            lambda: k.NdisFreeMemoryWithTagPriority(
                None, k.NdisAllocateMemoryWithTagPriority(None, rng.randrange(1, 200), 1, 16),
                1),
        ]


    def inspect(self, nbl, nb):
        """The views of whatever the calls left: text, never an exception."""
        try:
            for ptr in (nbl, nb):
                self.k.show(ptr, chain=True, data=True, info=True, log=True)
                self.k.dt(ptr)
                repr(self.k.view(ptr))
        except Exception as error:
            raise AssertionError(f"inspection raised on a corrupted object: {error!r}") \
                from error


    def candidates(self, nbl, nb):
        """The objects a call may free: the NBL, its first NB and that NB's MDLs."""
        objects = [(nbl, ffi.sizeof("NET_BUFFER_LIST")), (nb, ffi.sizeof("NET_BUFFER"))]
        try:
            mdl = self.k.view(nb).MdlChain
            while mdl is not None and len(objects) < 8:
                objects.append((mdl.ptr, ffi.sizeof("MDL")))
                mdl = mdl.Next
        except ndisemu.BugCheck:
            pass
        return objects


    def remember_freed(self, objects):
        """Objects live before a call and dead after it: stale-pointer targets."""
        for ptr, size in objects:
            if lib.ndisemu_object_kind(self.k._k, ptr) < 0:
                self.freed.append((int(ffi.cast("uintptr_t", ptr)), size))


    def one_nbl(self, pool, previous):
        """Builds, corrupts and uses one NBL: (BugChecks raised, its first MDL)."""
        caught = 0
        payloads = [bytes(self.rng.randrange(0, 100)) for _ in range(self.rng.randrange(1, 4))]
        try:
            nbl = self.k.build_nbl(pool, payloads, mdl_sizes=[self.rng.randrange(1, 20)],
                              data_offset=self.rng.randrange(0, 30))
        except ndisemu.BugCheck:                        # a stale write found at reuse
            return 1, previous
        if nbl == ffi.NULL:                             # the arena is full
            return 0, previous
        nb = nbl.FirstNetBuffer
        self.corrupt(nbl, nb, previous)
        first_mdl = nb.MdlChain
        for op in self.rng.sample(self.operations(nbl, nb), 5):
            before = self.candidates(nbl, nb)
            try:
                op()
            except ndisemu.BugCheck:
                caught += 1
            self.remember_freed(before)
            del self.freed[:-500]
            if self.rng.random() < 0.3:
                self.stale_write()
        if self.look.random() < 0.2:
            self.inspect(nbl, nb)
        return caught, first_mdl


if __name__ == "__main__":
    if sys.argv[1] == "--seeds":
        for seed in range(int(sys.argv[2])):
            Chaos(seed).run()
        print("ok", sys.argv[2], "seeds")
    else:
        print("ok", Chaos(int(sys.argv[1])).run())
