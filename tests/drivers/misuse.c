/*
 * misuse.c - driver code that breaks NDIS's rules, one function per rule:
 * each must stop the driver with a bug check raised from the Python call,
 * leave the IRQL as the call found it, and leave the Kernel usable.
 */
#include <ndis.h>
#include <fwpsk.h>

static ULONG reached;                 /* how far a function got before it stopped */

ULONG last_reached(void) { return reached; }

VOID double_free(PNET_BUFFER_LIST nbl)
{
    PNET_BUFFER_LIST clone = NdisAllocateCloneNetBufferList(nbl, NULL, NULL, 0);
    reached = 1;
    NdisFreeCloneNetBufferList(clone, 0);
    reached = 2;
    NdisFreeCloneNetBufferList(clone, 0);
    reached = 3;                       /* never: the bug check stopped the driver */
}

/* Raises the IRQL, then misuses a pointer: the IRQL goes back to what the
 * call began at. */
VOID wild_pointer_at_dispatch(void)
{
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    reached = 1;
    NdisFreeNetBufferList((PNET_BUFFER_LIST)(ULONG_PTR)0x4141414141);
    reached = 2;
}

ULONG assert_value(ULONG value)
{
    NT_ASSERT(value == 42);
    return value;
}

VOID bug_check(ULONG code)
{
    KeBugCheckEx(code, 1, 2, 3, 4);
}

VOID reserved_clone_flag(PNET_BUFFER_LIST nbl)
{
    PNET_BUFFER_LIST clone = NdisAllocateCloneNetBufferList(nbl, NULL, NULL,
                                                            NDIS_CLONE_FLAGS_RESERVED);
    NdisFreeCloneNetBufferList(clone, 0);
}

VOID fragment_flags(PNET_BUFFER_LIST nbl)
{
    (void)NdisAllocateFragmentNetBufferList(nbl, NULL, NULL, 0, 8, 0, 0, 1);
}

VOID io_mdl_with_irp(void)
{
    (void)IoAllocateMdl(NULL, 8, FALSE, FALSE, (PIRP)(ULONG_PTR)8);
}

VOID lower_above_current(void)
{
    KeLowerIrql(DISPATCH_LEVEL);
}

VOID call_above_dispatch(PNET_BUFFER_LIST nbl)
{
    KIRQL old;
    KeRaiseIrql(HIGH_LEVEL, &old);
    (void)NdisAllocateCloneNetBufferList(nbl, NULL, NULL, 0);
}

/* A retreat whose allocator fails on the second NB: the first is put back
 * and its MDL given to the free handler. */
static ULONG handler_calls, handler_frees;

static MDL *allocate_once(ULONG *size)
{
    PVOID buffer;
    if (handler_calls++)
        return NULL;
    buffer = NdisAllocateMemoryWithTagPriority(NULL, *size, 'lbdH', NormalPagePriority);
    return buffer ? NdisAllocateMdl(NULL, buffer, *size) : NULL;
}

static VOID free_handler_mdl(MDL *mdl)
{
    PVOID buffer = MmGetMdlVirtualAddress(mdl);
    NdisFreeMdl(mdl);
    NdisFreeMemoryWithTagPriority(NULL, buffer, 'lbdH');
    handler_frees++;
}

NDIS_STATUS retreat_all_or_nothing(PNET_BUFFER_LIST nbl)
{
    handler_calls = handler_frees = 0;
    return NdisRetreatNetBufferListDataStart(nbl, 64, 0, allocate_once, free_handler_mdl);
}

ULONG handler_frees_seen(void) { return handler_frees; }

/* NdisGetDataBuffer into Storage on the driver's stack (outside the arena). */
ULONG gather(PNET_BUFFER nb, ULONG needed)
{
    UCHAR storage[64];
    PUCHAR bytes = NdisGetDataBuffer(nb, needed, storage, 1, 0);
    ULONG sum = 0, i;
    if (!bytes)
        return 0xFFFFFFFF;
    for (i = 0; i < needed; i++)
        sum += bytes[i];
    return sum + (bytes == storage ? 0x10000 : 0);
}

/* A protocol frees an NBL it has sent before the send is completed to it:
 * the miniport owns it (the emulated binding marked it in flight). */
VOID free_in_flight(PNET_BUFFER_LIST nbl)
{
    NdisFreeNetBufferList(nbl);
    reached = 4;                       /* never */
}
