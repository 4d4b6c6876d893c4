/*
 * cxx_driver.cpp - packet-path helpers written in C++ the way WFP callout
 * drivers write them: C++ linkage, references, nullptr, casts, a template,
 * a small class; one function with extern "C" linkage beside them.
 */
#include <ndis.h>
#include <fwpsk.h>

namespace {

template <typename T>
T smaller(T a, T b)
{
    return a < b ? a : b;
}

/* Walks an NB's used bytes MDL by MDL from the current MDL. */
class NbCursor {
public:
    explicit NbCursor(NET_BUFFER* nb)
        : mdl_(NET_BUFFER_CURRENT_MDL(nb)), offset_(NET_BUFFER_CURRENT_MDL_OFFSET(nb)),
          left_(NET_BUFFER_DATA_LENGTH(nb)) {}

    /* Copies up to `size` bytes into `out`; the count copied. */
    UINT32 read(BYTE* out, UINT32 size)
    {
        UINT32 done = 0;
        while (mdl_ != nullptr && left_ != 0 && done < size) {
            BYTE* va = static_cast<BYTE*>(
                MmGetSystemAddressForMdlSafe(mdl_, NormalPagePriority | MdlMappingNoExecute));
            if (va == nullptr)
                break;
            ULONG n = smaller<ULONG>(MmGetMdlByteCount(mdl_) - offset_, left_);
            n = smaller<ULONG>(n, size - done);
            RtlCopyMemory(out + done, va + offset_, n);
            done += n;
            left_ -= n;
            offset_ += n;
            if (offset_ == MmGetMdlByteCount(mdl_)) {
                mdl_ = NDIS_MDL_LINKAGE(mdl_);
                offset_ = 0;
            }
        }
        return done;
    }

private:
    MDL* mdl_;
    ULONG offset_;
    ULONG left_;
};

}  // namespace

/* C++ linkage, as WFPSampler's helpers: the first `size` bytes of the NBL's
 * first NB. */
UINT32 copy_first_bytes(_In_ NET_BUFFER_LIST* netBufferList, _Out_ BYTE* buffer, UINT32 size)
{
    NbCursor cursor(NET_BUFFER_LIST_FIRST_NB(netBufferList));
    return cursor.read(buffer, size);
}

/* A clone through the unsuffixed FWPS name, its ChildRefCount read, freed. */
NTSTATUS clone_and_free(_In_ NET_BUFFER_LIST* netBufferList, _Out_ LONG* childRefCount)
{
    NET_BUFFER_LIST* clone = nullptr;
    NTSTATUS status = FwpsAllocateCloneNetBufferList(netBufferList, nullptr, nullptr, 0, &clone);
    if (!NT_SUCCESS(status))
        return status;
    NT_ASSERT(clone->ParentNetBufferList == netBufferList);
    *childRefCount = netBufferList->ChildRefCount;
    FwpsFreeCloneNetBufferList(clone, 0);
    return STATUS_SUCCESS;
}

/* The classic: the clone freed twice.  A bug check ends the C++ code. */
VOID free_clone_twice(_In_ NET_BUFFER_LIST* netBufferList)
{
    NET_BUFFER_LIST* clone = nullptr;
    if (NT_SUCCESS(FwpsAllocateCloneNetBufferList(netBufferList, nullptr, nullptr, 0, &clone))) {
        FwpsFreeCloneNetBufferList(clone, 0);
        FwpsFreeCloneNetBufferList(clone, 0);
    }
}

extern "C" ULONG total_length(_In_ PNET_BUFFER_LIST netBufferList)
{
    ULONG total = 0;
    for (NET_BUFFER* nb = NET_BUFFER_LIST_FIRST_NB(netBufferList); nb != nullptr;
         nb = NET_BUFFER_NEXT_NB(nb))
        total += NET_BUFFER_DATA_LENGTH(nb);
    return total;
}
