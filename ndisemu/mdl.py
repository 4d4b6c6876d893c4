"""Memory and MDLs: NdisAllocateMemoryWithTagPriority, NdisAllocateMdl,
IoAllocateMdl, MmBuildMdlForNonPagedPool and the wdm.h MDL macros.
Reference: docs/mdl.md.

Rules and choices:
- NdisAllocateMdl returns a fully built MDL (MmInitializeMdl +
  MmBuildMdlForNonPagedPool: MDL_SOURCE_IS_NONPAGED_POOL, MappedSystemVa,
  PFN array); its buffer must lie in live arena memory (BugCheck 0x7C/0x8E).
- IoAllocateMdl only initializes the header (MdlFlags =
  MDL_ALLOCATED_FIXED_SIZE, PFNs untouched).  IRPs are not emulated: Irp must
  be None, and so SecondaryBuffer and ChargeQuota must be FALSE (ValueError).
- Each MDL is freed with its allocator's counterpart (NdisFreeMdl /
  IoFreeMdl); MDLs that belong to an NBL, NB, clone or retreat are freed with
  their owner.  NdisFreeMdl checks ByteCount is back at its allocated length.
- PFNs are page numbers of display addresses, so MDL bytes are deterministic.
- MmInitializeMdl re-initializes an existing MDL object whose storage is large
  enough (MmSizeOfMdl); it does not turn arbitrary memory into an MDL.
"""

from __future__ import annotations

from typing import Any

from ndisemu._args import boolean, pointer_arg, uint
from ndisemu._args import opt as _p
from ndisemu._native import ffi, lib
from ndisemu.constants import for_version
from ndisemu.nbl import Scratch

_C = for_version()
MAX_IO_MDL_LENGTH = (1 << 32) - 0x1000   # 4 GB - PAGE_SIZE since Windows 7


class MdlCalls:
    """Memory and MDL calls of :class:`ndisemu.Kernel`."""

    def NdisAllocateMemoryWithTagPriority(self, NdisHandle: Any, Length: int, Tag: int,
                                          Priority: int) -> Any:
        """A nonpaged block of `Length` bytes (`void *`), or NULL."""
        uint(Length, "Length")
        uint(Tag, "Tag")
        uint(Priority, "Priority")
        rc = lib.ndisemu_allocate_memory(self._k, Length, Tag, lib.NDISEMU_KIND_MEMORY,
                                         self._out_void)
        return self._done("NdisAllocateMemoryWithTagPriority", rc, self._out_void[0])

    def NdisFreeMemoryWithTagPriority(self, NdisHandle: Any, VirtualAddress: Any,
                                      Tag: int) -> None:
        """Frees a block from NdisAllocateMemoryWithTagPriority.  A different
        `Tag`, or a buffer that is part of a larger NDIS allocation, is
        BugCheck 0x7C/0x84; twice is 0x82."""
        uint(Tag, "Tag")
        self._check("NdisFreeMemoryWithTagPriority",
                    lib.ndisemu_free_memory(self._k, pointer_arg(VirtualAddress,
                                                                 "VirtualAddress"),
                                            Tag, lib.NDISEMU_KIND_MEMORY))

    def NdisAllocateMdl(self, NdisHandle: Any, VirtualAddress: Any, Length: int) -> Any:
        """An MDL over `Length` bytes at `VirtualAddress`, fully built (nonpaged,
        mapped, PFNs filled); the range must be live data memory (0x7C/0x8E)."""
        uint(Length, "Length")
        rc = lib.ndisemu_allocate_mdl(self._k, pointer_arg(VirtualAddress, "VirtualAddress"),
                                      Length, lib.NDISEMU_ORIGIN_NDIS_MDL, self._out_mdl)
        return self._done("NdisAllocateMdl", rc, self._out_mdl[0])

    def NdisFreeMdl(self, Mdl: Any) -> None:
        """Frees an MDL from NdisAllocateMdl; its ByteCount must be back at the
        allocated length (0x7C/0x8D); another allocator's MDL is 0x7C/0x84."""
        self._check("NdisFreeMdl", lib.ndisemu_free_mdl(self._k, _p(Mdl),
                                                        lib.NDISEMU_ORIGIN_NDIS_MDL))

    def IoAllocateMdl(self, VirtualAddress: Any, Length: int, SecondaryBuffer: Any,
                      ChargeQuota: Any, Irp: Any) -> Any:
        """An MDL header for the range (MDL_ALLOCATED_FIXED_SIZE, PFNs untouched:
        call MmBuildMdlForNonPagedPool).  Irp must be None; NULL beyond 4 GB - 4 KB."""
        uint(Length, "Length")
        if Irp is not None:
            raise ValueError("Irp: IRPs are not emulated; pass None")
        if boolean(SecondaryBuffer, "SecondaryBuffer"):
            raise ValueError("SecondaryBuffer must be FALSE when no IRP is given")
        if boolean(ChargeQuota, "ChargeQuota"):
            raise ValueError("ChargeQuota must be FALSE")
        if Length > MAX_IO_MDL_LENGTH:
            return ffi.NULL
        rc = lib.ndisemu_allocate_mdl(self._k, pointer_arg(VirtualAddress, "VirtualAddress"),
                                      Length, lib.NDISEMU_ORIGIN_IO_MDL, self._out_mdl)
        return self._done("IoAllocateMdl", rc, self._out_mdl[0])

    def IoFreeMdl(self, Mdl: Any) -> None:
        """Frees an MDL from IoAllocateMdl (another allocator's MDL is 0x7C/0x84)."""
        self._check("IoFreeMdl", lib.ndisemu_free_mdl(self._k, _p(Mdl), lib.NDISEMU_ORIGIN_IO_MDL))

    def MmBuildMdlForNonPagedPool(self, MemoryDescriptorList: Any) -> None:
        """Fills the PFN array and MappedSystemVa and sets
        MDL_SOURCE_IS_NONPAGED_POOL; the range must be live nonpaged memory."""
        self._check("MmBuildMdlForNonPagedPool",
                    lib.ndisemu_build_mdl_for_nonpaged_pool(self._k, _p(MemoryDescriptorList)))

    def MmGetSystemAddressForMdlSafe(self, Mdl: Any, Priority: int) -> Any:
        """MappedSystemVa for a mapped or nonpaged-pool MDL; otherwise maps it
        (NULL when the range is not live memory or a failure is injected)."""
        uint(Priority, "Priority")
        rc = lib.ndisemu_system_address(self._k, _p(Mdl), self._out_void)
        return self._done("MmGetSystemAddressForMdlSafe", rc, self._out_void[0])

    def NdisAdjustMdlLength(self, Mdl: Any, Length: int) -> None:
        """Sets ByteCount; not beyond the length given at allocation."""
        uint(Length, "Length")
        self._check("NdisAdjustMdlLength", lib.ndisemu_adjust_mdl_length(self._k, _p(Mdl), Length))

    def NdisQueryMdl(self, Mdl: Any,
                     Priority: int = _C["NormalPagePriority"]) -> tuple[Any, int]:
        """(VirtualAddress, Length): MmGetSystemAddressForMdlSafe with
        MdlMappingNoExecute, and the byte count."""
        Mdl = _p(Mdl)
        va = self.MmGetSystemAddressForMdlSafe(Mdl, Priority | _C["MdlMappingNoExecute"])
        return va, pointer_arg(Mdl, "Mdl").ByteCount

    def NdisQueryMdlOffset(self, Mdl: Any) -> tuple[int, int]:
        """(Offset, Length): ByteOffset and ByteCount."""
        Mdl = self._probe(Mdl, lib.NDISEMU_KIND_MDL, "NdisQueryMdlOffset")
        return Mdl.ByteOffset, Mdl.ByteCount

    def NdisGetNextMdl(self, CurrentMdl: Any) -> Any:
        """The next MDL of the chain (NULL at the end)."""
        CurrentMdl = self._probe(CurrentMdl, lib.NDISEMU_KIND_MDL, "NdisGetNextMdl")
        return CurrentMdl.Next

    def MmGetMdlByteCount(self, Mdl: Any) -> int:
        """ByteCount, after checking the MDL is live (BugCheck 0x50 otherwise)."""
        Mdl = self._probe(Mdl, lib.NDISEMU_KIND_MDL, "MmGetMdlByteCount")
        return Mdl.ByteCount

    def MmGetMdlByteOffset(self, Mdl: Any) -> int:
        """ByteOffset, after checking the MDL is live (BugCheck 0x50 otherwise)."""
        Mdl = self._probe(Mdl, lib.NDISEMU_KIND_MDL, "MmGetMdlByteOffset")
        return Mdl.ByteOffset

    def MmGetMdlVirtualAddress(self, Mdl: Any) -> Any:
        """StartVa + ByteOffset."""
        Mdl = self._probe(Mdl, lib.NDISEMU_KIND_MDL, "MmGetMdlVirtualAddress")
        return ffi.cast("void *", ffi.cast("uint8_t *", Mdl.StartVa) + Mdl.ByteOffset)

    @staticmethod
    def MmSizeOfMdl(Base: Any, Length: int) -> int:
        """sizeof(MDL) + sizeof(PFN_NUMBER) * pages spanned by Base..+Length."""
        uint(Length, "Length", 64)
        address = Base if isinstance(Base, int) else int(ffi.cast("uintptr_t",
                                                                  pointer_arg(Base, "Base")))
        return lib.ndisemu_size_of_mdl(ffi.cast("void *", address), Length)

    def MmInitializeMdl(self, MemoryDescriptorList: Any, BaseVa: Any, Length: int) -> None:
        """Re-initializes an existing MDL object for BaseVa/Length (its storage must
        hold MmSizeOfMdl bytes); it does not turn arbitrary memory into an MDL."""
        uint(Length, "Length")
        self._check("MmInitializeMdl",
                    lib.ndisemu_initialize_mdl(self._k, _p(MemoryDescriptorList),
                                               pointer_arg(BaseVa, "BaseVa"), Length))

    # -- checked reads ---------------------------------------------------------

    def read(self, address: Any, n: int) -> bytes:
        """`n` bytes at a raw address (int or pointer cdata), checked: every
        byte must lie in bytes some live MDL describes (within live data) or
        in the length a live NdisAllocateMemoryWithTagPriority block was asked
        for; else BugCheck 0x50 with P1 the first byte that does not.  What a
        harness uses instead of ``ffi.buffer`` on MappedSystemVa, which reads
        whatever the arena holds there.  One native call."""
        if n.__class__ is not int or not 0 <= n < 1 << 64:
            uint(n, "n", 64)
        if address.__class__ is not ffi.CData:
            if isinstance(address, int) and not isinstance(address, bool):
                address = ffi.cast("uint8_t *", uint(address, "address", 64))
            else:
                address = pointer_arg(address, "address")
        if n > self.arena_size:
            # no such range lies in the arena: the core only names the first bad byte
            self._check("read", lib.ndisemu_read(self._k, address, n, ffi.NULL))
        # Into the Kernel's reusable buffer (nbl_bytes's) when the bytes fit it.
        out = self._scratch
        if n > out.capacity:
            out = Scratch.grown(self, n)
            self._scratch.register(self)          # read passes its buffer itself
        if lib.ndisemu_read(self._k, address, n, out.data):
            raise self._raise("read")
        return out.view[0:n]

    def _probe(self, ptr: Any, kind: int, call: str) -> Any:
        """A macro's dereference: the raw pointer once `ptr` (cdata or a view)
        is checked to be a live object of `kind`; BugCheck 0x50 otherwise
        (raw cdata would crash the interpreter instead).  Shared by the MDL
        macros here and the module-level macros (ndisemu.macros)."""
        ptr = pointer_arg(ptr, "pointer")
        if lib.ndisemu_object_kind(self._k, ptr) != kind:
            lib.ndisemu_probe(self._k, ptr, 0, kind)
            raise self._raise(call)
        return ptr
