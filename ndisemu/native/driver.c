/*
 * driver.c - the emulated calls as driver C code reaches them: the table
 * of ndisemu_api.h, filled with functions that act on the machine the
 * current trampoline entered, turn a refused call into an unwind to that
 * trampoline (the Python call into the driver raises the bug check), and
 * return what the WDK's functions return (NULL, NDIS_STATUS_RESOURCES,
 * STATUS_INSUFFICIENT_RESOURCES) where an allocation fails.
 *
 * The core follows only pointers into the arena that it has checked; what
 * the driver passes outside it (pool parameters, out parameters, Storage)
 * is read and written by <ndis.h>'s inline functions in the driver's own
 * code.  Argument errors the Python API reports as TypeError/ValueError are,
 * from C, BugCheck 0x7C/0x8F.
 */
#include <stdio.h>
#include <stdlib.h>
#include "kernel.h"
#include "ndisemu_api.h"

#define ASSERTION_FAILURE 0xC0000420u       /* STATUS_ASSERTION_FAILURE */
#define KMODE_EXCEPTION_NOT_HANDLED 0x1Eu

/* The machine the innermost trampoline on this thread entered. */
static _Thread_local ndisemu_kernel *current;

/* The machine a call acts on.  With no trampoline below it (another thread,
 * or driver code keeping a function pointer past the call) there is no
 * Python caller to raise into: stop, as a bug check stops a machine. */
static ndisemu_kernel *machine(const char *call)
{
    ndisemu_kernel *k = current;
    if (!k || !k->frame) {
        fprintf(stderr, "ndisemu: %s called with no emulated machine: driver code must run "
                "inside a call from Python (d.Function(...)) on the thread that made it\n",
                call);
        fflush(stderr);
        abort();
    }
    return k;
}

/* Back to the trampoline, which restores the IRQL; Python raises k->bug. */
static _Noreturn void unwind(ndisemu_kernel *k)
{
    NDISEMU_FRAME *frame = k->frame;
    frame->Unwound = 1;
    longjmp(frame->Unwind, 1);
}

static void check(ndisemu_kernel *k, int rc)
{
    if (rc == NDISEMU_BUGCHECK)
        unwind(k);
}

static _Noreturn void bad_parameter(ndisemu_kernel *k, const char *call, uint64_t value,
                                    uint32_t kind, const void *object, const char *rule)
{
    NDISEMU_CALL(k, call);
    ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER, value, 0, kind, object,
                     rule);
    unwind(k);
}

/* Working memory that lives until the trampoline returns (an unwind frees
 * it too): a stack in one block kept for the Kernel's life. */
static void *scratch(ndisemu_kernel *k, uint64_t bytes)
{
    uint64_t need = k->scratch_used + ndisemu_align_up(bytes ? bytes : 1, 16);
    void *p;
    if (need > k->scratch_size) {
        uint64_t size = k->scratch_size ? k->scratch_size : 4096;
        uint8_t *grown;
        while (size < need)
            size *= 2;
        grown = realloc(k->scratch, size);
        if (!grown)
            return NULL;
        k->scratch = grown;
        k->scratch_size = size;
    }
    p = k->scratch + k->scratch_used;
    k->scratch_used = need;
    return p;
}

/* ---- the trampolines' side ---------------------------------------------- */

static VOID enter(void *kernel, NDISEMU_FRAME *frame)
{
    ndisemu_kernel *k = kernel;
    frame->Previous = k->frame;
    frame->PreviousKernel = current;
    frame->Irql = k->irql;
    frame->Unwound = 0;
    frame->Scratch = k->scratch_used;
    k->frame = frame;
    k->unwound = 0;
    current = k;
}

static VOID leave(void *kernel, NDISEMU_FRAME *frame)
{
    ndisemu_kernel *k = kernel;
    if (frame->Unwound)
        k->irql = frame->Irql;         /* the IRQL the call began at */
    /* this call's outcome, whatever a call nested in it (driver code that
     * called the binding, whose handlers called driver code) left here */
    k->unwound = (int)frame->Unwound;
    k->scratch_used = frame->Scratch;
    k->frame = frame->Previous;
    current = frame->PreviousKernel;
}

int ndisemu_driver_unwound(ndisemu_kernel *k)
{
    return k->unwound;
}

void ndisemu_set_info_slots(ndisemu_kernel *k, int which, const uint32_t *slots, uint32_t n)
{
    uint32_t i;
    if (which < 0 || which > 1)
        return;
    if (n > 32)
        n = 32;
    for (i = 0; i < n; i++)
        k->info_slots[which][i] = slots[i];
    k->info_count[which] = n;
}

/* ---- pools --------------------------------------------------------------- */

static NDIS_HANDLE drv_allocate_nbl_pool(NET_BUFFER_LIST_POOL_PARAMETERS params)
{
    ndisemu_kernel *k = machine("NdisAllocateNetBufferListPool");
    void *pool;
    check(k, ndisemu_allocate_nbl_pool(k, &params, 0, &pool));
    return pool;
}

static VOID drv_NdisFreeNetBufferListPool(NDIS_HANDLE pool)
{
    ndisemu_kernel *k = machine("NdisFreeNetBufferListPool");
    check(k, ndisemu_free_nbl_pool(k, pool));
}

static NDIS_HANDLE drv_allocate_nb_pool(NET_BUFFER_POOL_PARAMETERS params)
{
    ndisemu_kernel *k = machine("NdisAllocateNetBufferPool");
    void *pool;
    check(k, ndisemu_allocate_nb_pool(k, &params, 0, &pool));
    return pool;
}

static VOID drv_NdisFreeNetBufferPool(NDIS_HANDLE pool)
{
    ndisemu_kernel *k = machine("NdisFreeNetBufferPool");
    check(k, ndisemu_free_nb_pool(k, pool));
}

static NDIS_HANDLE drv_NdisGetPoolFromNetBufferList(const NET_BUFFER_LIST *nbl)
{
    ndisemu_kernel *k = machine("NdisGetPoolFromNetBufferList");
    void *pool;
    check(k, ndisemu_pool_from_nbl(k, (NET_BUFFER_LIST *)nbl, &pool));
    return pool;
}

static NDIS_HANDLE drv_NdisGetPoolFromNetBuffer(const NET_BUFFER *nb)
{
    ndisemu_kernel *k = machine("NdisGetPoolFromNetBuffer");
    void *pool;
    check(k, ndisemu_pool_from_nb(k, (NET_BUFFER *)nb, &pool));
    return pool;
}

/* ---- NBLs, NBs, contexts ----------------------------------------------------- */

static NET_BUFFER_LIST *drv_NdisAllocateNetBufferList(NDIS_HANDLE pool, USHORT size,
                                                      USHORT backfill)
{
    ndisemu_kernel *k = machine("NdisAllocateNetBufferList");
    NET_BUFFER_LIST *nbl;
    check(k, ndisemu_allocate_nbl(k, pool, size, backfill, &nbl));
    return nbl;
}

static NET_BUFFER_LIST *drv_NdisAllocateNetBufferAndNetBufferList(
    NDIS_HANDLE pool, USHORT size, USHORT backfill, MDL *chain, ULONG offset, SIZE_T length)
{
    ndisemu_kernel *k = machine("NdisAllocateNetBufferAndNetBufferList");
    NET_BUFFER_LIST *nbl;
    check(k, ndisemu_allocate_nb_and_nbl(k, pool, size, backfill, chain, offset, length, &nbl));
    return nbl;
}

static VOID drv_NdisFreeNetBufferList(NET_BUFFER_LIST *nbl)
{
    ndisemu_kernel *k = machine("NdisFreeNetBufferList");
    check(k, ndisemu_free_nbl(k, nbl));
}

static NET_BUFFER *drv_NdisAllocateNetBuffer(NDIS_HANDLE pool, MDL *chain, ULONG offset,
                                             SIZE_T length)
{
    ndisemu_kernel *k = machine("NdisAllocateNetBuffer");
    NET_BUFFER *nb;
    check(k, ndisemu_allocate_nb(k, pool, chain, offset, length, &nb));
    return nb;
}

static NET_BUFFER *drv_NdisAllocateNetBufferMdlAndData(NDIS_HANDLE pool)
{
    ndisemu_kernel *k = machine("NdisAllocateNetBufferMdlAndData");
    NET_BUFFER *nb;
    check(k, ndisemu_allocate_nb_mdl_and_data(k, pool, &nb));
    return nb;
}

static VOID drv_NdisFreeNetBuffer(NET_BUFFER *nb)
{
    ndisemu_kernel *k = machine("NdisFreeNetBuffer");
    check(k, ndisemu_free_nb(k, nb));
}

static NDIS_STATUS status_of(int rc)
{
    return rc == NDISEMU_OK ? (NDIS_STATUS)NDIS_STATUS_SUCCESS : (NDIS_STATUS)NDIS_STATUS_RESOURCES;
}

static NDIS_STATUS drv_NdisAllocateNetBufferListContext(NET_BUFFER_LIST *nbl, USHORT size,
                                                        USHORT backfill, ULONG tag)
{
    ndisemu_kernel *k = machine("NdisAllocateNetBufferListContext");
    int rc = ndisemu_allocate_nbl_context(k, nbl, size, backfill, tag);
    check(k, rc);
    return status_of(rc);
}

static VOID drv_NdisFreeNetBufferListContext(NET_BUFFER_LIST *nbl, USHORT size)
{
    ndisemu_kernel *k = machine("NdisFreeNetBufferListContext");
    check(k, ndisemu_free_nbl_context(k, nbl, size));
}

/* ---- derived NBLs --------------------------------------------------------- */

/* NULL pool handles stand for the Kernel's default pools. */
static void *nbl_pool_or_default(ndisemu_kernel *k, NDIS_HANDLE pool)
{
    return pool ? pool : k->default_nbl_pool;
}

static void *nb_pool_or_default(ndisemu_kernel *k, NDIS_HANDLE pool)
{
    return pool ? pool : k->default_nb_pool;
}

static NET_BUFFER_LIST *drv_NdisAllocateCloneNetBufferList(NET_BUFFER_LIST *orig,
                                                           NDIS_HANDLE nbl_pool,
                                                           NDIS_HANDLE nb_pool, ULONG flags)
{
    ndisemu_kernel *k = machine("NdisAllocateCloneNetBufferList");
    NET_BUFFER_LIST *clone;
    check(k, ndisemu_clone_nbl(k, orig, nbl_pool_or_default(k, nbl_pool),
                               nb_pool_or_default(k, nb_pool), flags, NDISEMU_ORIGIN_CLONE,
                               &clone));
    return clone;
}

static VOID drv_NdisFreeCloneNetBufferList(NET_BUFFER_LIST *clone, ULONG flags)
{
    ndisemu_kernel *k = machine("NdisFreeCloneNetBufferList");
    check(k, ndisemu_free_clone_nbl(k, clone, flags, NDISEMU_ORIGIN_CLONE));
}

static NET_BUFFER_LIST *drv_NdisAllocateFragmentNetBufferList(
    NET_BUFFER_LIST *orig, NDIS_HANDLE nbl_pool, NDIS_HANDLE nb_pool, ULONG start,
    ULONG max_length, ULONG delta, ULONG backfill, ULONG flags)
{
    ndisemu_kernel *k = machine("NdisAllocateFragmentNetBufferList");
    NET_BUFFER_LIST *frag;
    if (flags)
        bad_parameter(k, "NdisAllocateFragmentNetBufferList", flags, NDISEMU_KIND_NBL, orig,
                      "AllocateFragmentFlags must be 0");
    check(k, ndisemu_fragment_nbl(k, orig, nbl_pool_or_default(k, nbl_pool),
                                  nb_pool_or_default(k, nb_pool), start, max_length, delta,
                                  backfill, &frag));
    return frag;
}

static VOID drv_NdisFreeFragmentNetBufferList(NET_BUFFER_LIST *frag, ULONG delta, ULONG flags)
{
    ndisemu_kernel *k = machine("NdisFreeFragmentNetBufferList");
    if (flags)
        bad_parameter(k, "NdisFreeFragmentNetBufferList", flags, NDISEMU_KIND_NBL, frag,
                      "FreeFragmentFlags must be 0");
    check(k, ndisemu_free_fragment_nbl(k, frag, delta));
}

static NET_BUFFER_LIST *drv_NdisAllocateReassembledNetBufferList(
    NET_BUFFER_LIST *frag, NDIS_HANDLE pool, ULONG start, ULONG delta, ULONG backfill,
    ULONG flags)
{
    ndisemu_kernel *k = machine("NdisAllocateReassembledNetBufferList");
    NET_BUFFER_LIST *nbl;
    if (flags)
        bad_parameter(k, "NdisAllocateReassembledNetBufferList", flags, NDISEMU_KIND_NBL, frag,
                      "AllocateReassembleFlags must be 0");
    check(k, ndisemu_reassemble_nbl(k, frag, nbl_pool_or_default(k, pool), pool != NULL,
                                    start, delta, backfill, &nbl));
    return nbl;
}

static VOID drv_NdisFreeReassembledNetBufferList(NET_BUFFER_LIST *nbl, ULONG delta,
                                                 ULONG flags)
{
    ndisemu_kernel *k = machine("NdisFreeReassembledNetBufferList");
    if (flags)
        bad_parameter(k, "NdisFreeReassembledNetBufferList", flags, NDISEMU_KIND_NBL, nbl,
                      "FreeReassembleFlags must be 0");
    check(k, ndisemu_free_reassembled_nbl(k, nbl, delta));
}

/* ---- retreat and advance ----------------------------------------------------- */

/* One NB: within the unused space, or with one new MDL from the handler (or
 * NDIS's default allocator) at the head of the chain.  0 when no MDL could
 * be had (nothing changed).  A handler that bug checks unwinds from inside
 * it: nothing has changed by then. */
static int retreat_nb(ndisemu_kernel *k, NET_BUFFER *nb, ULONG delta, ULONG backfill,
                      NET_BUFFER_ALLOCATE_MDL *handler)
{
    uint32_t need;
    MDL *mdl = NULL;
    int rc;
    check(k, ndisemu_retreat_commit(k, nb, delta, backfill, NULL, &need));
    if (!need)
        return 1;
    if (handler) {
        ULONG size = need;
        mdl = handler(&size);
    } else {
        check(k, ndisemu_retreat_allocate(k, need, &mdl));
    }
    if (!mdl)
        return 0;
    rc = ndisemu_retreat_commit(k, nb, delta, backfill, mdl, &need);
    if (rc != NDISEMU_OK) {
        if (!handler) {                /* the default MDL is NDIS's to take back */
            ndisemu_bug bug = k->bug;
            ndisemu_retreat_free_default(k, mdl);
            k->bug = bug;
        }
        unwind(k);
    }
    return 1;
}

static NDIS_STATUS drv_NdisRetreatNetBufferDataStart(NET_BUFFER *nb, ULONG delta,
                                                     ULONG backfill,
                                                     NET_BUFFER_ALLOCATE_MDL *handler)
{
    ndisemu_kernel *k = machine("NdisRetreatNetBufferDataStart");
    return status_of(retreat_nb(k, nb, delta, backfill, handler) ? NDISEMU_OK
                                                                 : NDISEMU_NO_MEMORY);
}

/* The NBs of a checked NBL, in order, in scratch memory. */
static NET_BUFFER **nbs_of(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, uint64_t *count)
{
    NET_BUFFER **list, *nb;
    uint64_t n = 0;
    for (nb = nbl->FirstNetBuffer; nb; nb = nb->Next)
        n++;
    list = scratch(k, n * sizeof *list);
    if (list) {
        n = 0;
        for (nb = nbl->FirstNetBuffer; nb; nb = nb->Next)
            list[n++] = nb;
    }
    *count = n;
    return list;
}

/* Every NB or none: the NBs already retreated when one fails are put back
 * exactly and their new MDLs freed (FreeMdlHandler, or NDIS's freer). */
static NDIS_STATUS drv_NdisRetreatNetBufferListDataStart(NET_BUFFER_LIST *nbl, ULONG delta,
                                                         ULONG backfill,
                                                         NET_BUFFER_ALLOCATE_MDL *alloc,
                                                         NET_BUFFER_FREE_MDL *free_handler)
{
    ndisemu_kernel *k = machine("NdisRetreatNetBufferListDataStart");
    ndisemu_nb_state *saved;
    NET_BUFFER **nbs;
    uint64_t count, i, done;
    uint32_t need;
    check(k, ndisemu_check_nbl(k, nbl));
    nbs = nbs_of(k, nbl, &count);
    saved = scratch(k, count * sizeof *saved);
    if (!nbs || !saved)
        return status_of(NDISEMU_NO_MEMORY);
    for (i = 0; i < count; i++)       /* every NB checked before any changes */
        check(k, ndisemu_retreat_plan(k, nbs[i], delta, backfill, &need));
    for (done = 0; done < count; done++) {
        check(k, ndisemu_nb_save(k, nbs[done], &saved[done]));
        if (!retreat_nb(k, nbs[done], delta, backfill, alloc))
            break;
    }
    if (done == count)
        return status_of(NDISEMU_OK);
    while (done--) {
        MDL *added;
        NDISEMU_CALL(k, "NdisRetreatNetBufferListDataStart");
        check(k, ndisemu_nb_restore(k, nbs[done], &saved[done], &added));
        if (!added)
            continue;
        if (ndisemu_object_origin(k, added) == NDISEMU_ORIGIN_RETREAT)
            check(k, ndisemu_retreat_free_default(k, added));
        else if (free_handler)
            free_handler(added);
    }
    return status_of(NDISEMU_NO_MEMORY);
}

/* Applies an advance to one NB (planned already) and hands the MDLs a
 * FreeMdlHandler must free to `out` (room for `count`). */
static uint32_t advance_nb(ndisemu_kernel *k, NET_BUFFER *nb, ULONG delta, BOOLEAN free_mdl,
                           int have_handler, MDL **out, uint32_t count)
{
    uint32_t handed;
    check(k, ndisemu_advance_commit(k, nb, delta, free_mdl, have_handler, out, count, &handed));
    return handed;
}

static VOID drv_NdisAdvanceNetBufferDataStart(NET_BUFFER *nb, ULONG delta, BOOLEAN free_mdl,
                                              NET_BUFFER_FREE_MDL *handler)
{
    ndisemu_kernel *k = machine("NdisAdvanceNetBufferDataStart");
    uint32_t count, handed, i;
    MDL **mdls;
    check(k, ndisemu_advance_plan(k, nb, delta, free_mdl, handler != NULL, &count));
    mdls = scratch(k, (uint64_t)count * sizeof *mdls);
    if (!mdls)
        bad_parameter(k, "NdisAdvanceNetBufferDataStart", count, NDISEMU_KIND_NB, nb,
                      "no host memory to hand MDLs to FreeMdlHandler");
    handed = advance_nb(k, nb, delta, free_mdl, handler != NULL, mdls, count);
    for (i = 0; i < handed; i++)
        handler(mdls[i]);
}

/* Every NB is checked (planned) before any changes; the handler's MDLs are
 * handed to it once every NB has advanced. */
static VOID drv_NdisAdvanceNetBufferListDataStart(NET_BUFFER_LIST *nbl, ULONG delta,
                                                  BOOLEAN free_mdl,
                                                  NET_BUFFER_FREE_MDL *handler)
{
    ndisemu_kernel *k = machine("NdisAdvanceNetBufferListDataStart");
    uint64_t count, i, total = 0, handed = 0;
    uint32_t *plans, n;
    NET_BUFFER **nbs;
    MDL **mdls;
    check(k, ndisemu_check_nbl(k, nbl));
    nbs = nbs_of(k, nbl, &count);
    plans = scratch(k, count * sizeof *plans);
    if (!nbs || !plans)
        bad_parameter(k, "NdisAdvanceNetBufferListDataStart", count, NDISEMU_KIND_NBL, nbl,
                      "no host memory for the NBs' plans");
    for (i = 0; i < count; i++) {
        check(k, ndisemu_advance_plan(k, nbs[i], delta, free_mdl, handler != NULL, &n));
        plans[i] = n;
        total += n;
    }
    mdls = scratch(k, total * sizeof *mdls);
    if (!mdls)
        bad_parameter(k, "NdisAdvanceNetBufferListDataStart", total, NDISEMU_KIND_NBL, nbl,
                      "no host memory to hand MDLs to FreeMdlHandler");
    for (i = 0; i < count; i++)
        handed += advance_nb(k, nbs[i], delta, free_mdl, handler != NULL, mdls + handed,
                             plans[i]);
    for (i = 0; i < handed; i++)
        handler(mdls[i]);
}

static VOID drv_NdisAdjustNetBufferCurrentMdl(NET_BUFFER *nb)
{
    ndisemu_kernel *k = machine("NdisAdjustNetBufferCurrentMdl");
    check(k, ndisemu_adjust_current_mdl(k, nb));
}

/* NdisGetDataBuffer: a Storage in the arena is written by the core (checked
 * to be live data); one outside it is filled by the inline caller from a
 * copy made here. */
static NDISEMU_DATA_RESULT drv_get_data_buffer(NET_BUFFER *nb, ULONG needed, PVOID storage,
                                               ULONG align_multiple, ULONG align_offset)
{
    ndisemu_kernel *k = machine("NdisGetDataBuffer");
    NDISEMU_DATA_RESULT r = { NULL, NULL };
    int outside = storage && ((uint8_t *)storage < k->base ||
                              (uint8_t *)storage >= k->base + k->size);
    uint8_t *copy = outside ? scratch(k, needed) : storage;
    void *out;
    if (outside && !copy)
        return r;                     /* no host memory: as if no Storage */
    check(k, ndisemu_get_data_buffer(k, nb, needed, copy, align_multiple, align_offset, &out));
    if (out && out == copy && outside) {
        r.Data = storage;
        r.CopyFrom = copy;
    } else {
        r.Data = out;
    }
    return r;
}

static NDISEMU_COPY_RESULT drv_copy_nb_to_nb(NET_BUFFER *dst, ULONG dst_offset, ULONG bytes,
                                             const NET_BUFFER *src, ULONG src_offset)
{
    ndisemu_kernel *k = machine("NdisCopyFromNetBufferToNetBuffer");
    NDISEMU_COPY_RESULT r;
    uint32_t copied;
    int rc = ndisemu_copy_nb_to_nb(k, dst, dst_offset, bytes, (NET_BUFFER *)src, src_offset,
                                   &copied);
    check(k, rc);
    r.Status = status_of(rc);
    r.BytesCopied = copied;
    return r;
}

static void copy_info(const char *call, NET_BUFFER_LIST *dst, const NET_BUFFER_LIST *src,
                      int which)
{
    ndisemu_kernel *k = machine(call);
    check(k, ndisemu_copy_nbl_info(k, dst, (NET_BUFFER_LIST *)src, k->info_slots[which],
                                   k->info_count[which]));
    k->bug.call = call;
}

static VOID drv_NdisCopySendNetBufferListInfo(NET_BUFFER_LIST *dst, const NET_BUFFER_LIST *src)
{
    copy_info("NdisCopySendNetBufferListInfo", dst, src, 0);
}

static VOID drv_NdisCopyReceiveNetBufferListInfo(NET_BUFFER_LIST *dst,
                                                 const NET_BUFFER_LIST *src)
{
    copy_info("NdisCopyReceiveNetBufferListInfo", dst, src, 1);
}

static UCHAR drv_NdisGetNetBufferListProtocolId(const NET_BUFFER_LIST *nbl)
{
    ndisemu_kernel *k = machine("NdisGetNetBufferListProtocolId");
    uint8_t value = 0;
    check(k, ndisemu_nbl_protocol_id(k, (NET_BUFFER_LIST *)nbl, NetBufferListProtocolId, 0,
                                     &value));
    return value;
}

static VOID drv_NdisSetNetBufferListProtocolId(NET_BUFFER_LIST *nbl, UCHAR id)
{
    ndisemu_kernel *k = machine("NdisSetNetBufferListProtocolId");
    uint8_t value = id;
    check(k, ndisemu_nbl_protocol_id(k, nbl, NetBufferListProtocolId, 1, &value));
}

/* ---- memory and MDLs ----------------------------------------------------------- */

static PVOID drv_NdisAllocateMemoryWithTagPriority(NDIS_HANDLE handle, UINT length, ULONG tag,
                                                   EX_POOL_PRIORITY priority)
{
    ndisemu_kernel *k = machine("NdisAllocateMemoryWithTagPriority");
    void *va;
    (void)handle;
    (void)priority;
    check(k, ndisemu_allocate_memory(k, length, tag, NDISEMU_KIND_MEMORY, &va));
    return va;
}

static VOID drv_NdisFreeMemoryWithTagPriority(NDIS_HANDLE handle, PVOID va, ULONG tag)
{
    ndisemu_kernel *k = machine("NdisFreeMemoryWithTagPriority");
    (void)handle;
    check(k, ndisemu_free_memory(k, va, tag, NDISEMU_KIND_MEMORY));
}

static VOID drv_NdisFreeMemory(PVOID va, UINT length, UINT flags)
{
    ndisemu_kernel *k = machine("NdisFreeMemory");
    (void)length;
    (void)flags;
    NDISEMU_CALL(k, "NdisFreeMemory");
    check(k, ndisemu_memory_free(k, va, 0, 0, NDISEMU_KIND_MEMORY));
}

static PVOID drv_ExAllocatePoolWithTag(POOL_TYPE type, SIZE_T bytes, ULONG tag)
{
    ndisemu_kernel *k = machine("ExAllocatePoolWithTag");
    void *va;
    (void)type;
    NDISEMU_CALL(k, "ExAllocatePoolWithTag");
    check(k, ndisemu_memory_alloc(k, bytes, tag, NDISEMU_KIND_MEMORY, &va));
    return va;
}

static VOID drv_ExFreePoolWithTag(PVOID va, ULONG tag)
{
    ndisemu_kernel *k = machine("ExFreePoolWithTag");
    NDISEMU_CALL(k, "ExFreePoolWithTag");
    check(k, ndisemu_memory_free(k, va, tag, 1, NDISEMU_KIND_MEMORY));
}

static VOID drv_ExFreePool(PVOID va)
{
    ndisemu_kernel *k = machine("ExFreePool");
    NDISEMU_CALL(k, "ExFreePool");
    check(k, ndisemu_memory_free(k, va, 0, 0, NDISEMU_KIND_MEMORY));
}

static PMDL drv_NdisAllocateMdl(NDIS_HANDLE handle, PVOID va, UINT length)
{
    ndisemu_kernel *k = machine("NdisAllocateMdl");
    MDL *mdl;
    (void)handle;
    check(k, ndisemu_allocate_mdl(k, va, length, NDISEMU_ORIGIN_NDIS_MDL, &mdl));
    return mdl;
}

static VOID drv_NdisFreeMdl(PMDL mdl)
{
    ndisemu_kernel *k = machine("NdisFreeMdl");
    check(k, ndisemu_free_mdl(k, mdl, NDISEMU_ORIGIN_NDIS_MDL));
}

static PMDL drv_IoAllocateMdl(PVOID va, ULONG length, BOOLEAN secondary, BOOLEAN quota,
                              PIRP irp)
{
    ndisemu_kernel *k = machine("IoAllocateMdl");
    MDL *mdl;
    if (irp || secondary || quota)
        bad_parameter(k, "IoAllocateMdl", irp ? 1 : secondary ? 2 : 3, NDISEMU_KIND_MDL, NULL,
                      "IRPs are not emulated: Irp must be NULL, SecondaryBuffer and "
                      "ChargeQuota FALSE");
    check(k, ndisemu_allocate_mdl(k, va, length, NDISEMU_ORIGIN_IO_MDL, &mdl));
    return mdl;
}

static VOID drv_IoFreeMdl(PMDL mdl)
{
    ndisemu_kernel *k = machine("IoFreeMdl");
    check(k, ndisemu_free_mdl(k, mdl, NDISEMU_ORIGIN_IO_MDL));
}

static VOID drv_MmBuildMdlForNonPagedPool(PMDL mdl)
{
    ndisemu_kernel *k = machine("MmBuildMdlForNonPagedPool");
    check(k, ndisemu_build_mdl_for_nonpaged_pool(k, mdl));
}

/* Priority may carry MdlMappingNoExecute / MdlMappingNoWrite: any value. */
static PVOID drv_MmGetSystemAddressForMdlSafe(PMDL mdl, ULONG priority)
{
    ndisemu_kernel *k = machine("MmGetSystemAddressForMdlSafe");
    void *va;
    (void)priority;
    check(k, ndisemu_system_address(k, mdl, &va));
    return va;
}

static VOID drv_MmInitializeMdl(PMDL mdl, PVOID va, SIZE_T length)
{
    ndisemu_kernel *k = machine("MmInitializeMdl");
    check(k, ndisemu_initialize_mdl(k, mdl, va, length));
}

static VOID drv_NdisAdjustMdlLength(PMDL mdl, UINT length)
{
    ndisemu_kernel *k = machine("NdisAdjustMdlLength");
    check(k, ndisemu_adjust_mdl_length(k, mdl, length));
}

/* ---- WFP -------------------------------------------------------------------- */

static NDISEMU_NBL_RESULT nbl_result(int rc, NET_BUFFER_LIST *nbl)
{
    NDISEMU_NBL_RESULT r;
    r.Status = rc == NDISEMU_OK ? (NTSTATUS)STATUS_SUCCESS
                                : (NTSTATUS)STATUS_INSUFFICIENT_RESOURCES;
    r.NetBufferList = nbl;
    return r;
}

static NDISEMU_NBL_RESULT drv_fwps_clone(NET_BUFFER_LIST *orig, NDIS_HANDLE nbl_pool,
                                         NDIS_HANDLE nb_pool, ULONG flags)
{
    ndisemu_kernel *k = machine("FwpsAllocateCloneNetBufferList0");
    NET_BUFFER_LIST *clone;
    int rc = ndisemu_clone_nbl(k, orig, nbl_pool_or_default(k, nbl_pool),
                               nb_pool_or_default(k, nb_pool), flags,
                               NDISEMU_ORIGIN_FWPS_CLONE, &clone);
    check(k, rc);
    return nbl_result(rc, clone);
}

static NDISEMU_NBL_RESULT drv_fwps_deep_clone(NET_BUFFER_LIST *orig, NDIS_HANDLE nbl_pool,
                                              NDIS_HANDLE nb_pool)
{
    ndisemu_kernel *k = machine("FwpsAllocateDeepCloneNetBufferList0");
    NET_BUFFER_LIST *clone;
    int rc = ndisemu_deep_clone_nbl(k, orig, nbl_pool_or_default(k, nbl_pool),
                                    nb_pool_or_default(k, nb_pool), &clone);
    check(k, rc);
    return nbl_result(rc, clone);
}

static VOID drv_FwpsFreeCloneNetBufferList0(NET_BUFFER_LIST *clone, ULONG flags)
{
    ndisemu_kernel *k = machine("FwpsFreeCloneNetBufferList0");
    if (flags)
        bad_parameter(k, "FwpsFreeCloneNetBufferList0", flags, NDISEMU_KIND_NBL, clone,
                      "freeCloneFlags must be 0");
    check(k, ndisemu_free_clone_nbl(k, clone, 0, NDISEMU_ORIGIN_FWPS_CLONE));
}

static NDISEMU_NBL_RESULT drv_fwps_allocate_nbl(NDIS_HANDLE pool, USHORT size, USHORT backfill,
                                                MDL *chain, ULONG offset, SIZE_T length)
{
    ndisemu_kernel *k = machine("FwpsAllocateNetBufferAndNetBufferList0");
    NET_BUFFER_LIST *nbl;
    int rc = ndisemu_fwps_allocate_nb_and_nbl(k, nbl_pool_or_default(k, pool), size, backfill,
                                              chain, offset, length, &nbl);
    check(k, rc);
    return nbl_result(rc, nbl);
}

static VOID drv_FwpsFreeNetBufferList0(NET_BUFFER_LIST *nbl)
{
    ndisemu_kernel *k = machine("FwpsFreeNetBufferList0");
    check(k, ndisemu_fwps_free_nbl(k, nbl));
}

static VOID drv_FwpsReferenceNetBufferList0(NET_BUFFER_LIST *nbl, BOOLEAN modify)
{
    ndisemu_kernel *k = machine("FwpsReferenceNetBufferList0");
    (void)modify;
    check(k, ndisemu_fwps_reference(k, nbl, 1, 0));
}

static VOID drv_FwpsDereferenceNetBufferList0(NET_BUFFER_LIST *nbl, BOOLEAN dispatch_level)
{
    ndisemu_kernel *k = machine("FwpsDereferenceNetBufferList0");
    check(k, ndisemu_fwps_reference(k, nbl, -1, dispatch_level != 0));
}

/* ---- IRQL --------------------------------------------------------------------- */

/* Driver Verifier's rules for KeRaiseIrql/KeLowerIrql: 0xC4, P1 0x30 for a
 * raise to a lower IRQL, 0x31 for a lower to a higher one (P2 the current
 * IRQL, P3 the one asked for). */
static _Noreturn void irql_move_bug(ndisemu_kernel *k, uint64_t rule, KIRQL to, const char *text)
{
    uint64_t p[4] = { rule, k->irql, to, 0 };
    ndisemu_stop(k, DRIVER_VERIFIER_DETECTED_VIOLATION, p, 0, NULL, text);
    unwind(k);
}

static KIRQL drv_KeGetCurrentIrql(void)
{
    return (KIRQL)machine("KeGetCurrentIrql")->irql;
}

static KIRQL drv_KfRaiseIrql(KIRQL irql)
{
    ndisemu_kernel *k = machine("KeRaiseIrql");
    KIRQL old = (KIRQL)k->irql;
    NDISEMU_CALL(k, "KeRaiseIrql");
    if (irql < old || irql > HIGH_LEVEL)
        irql_move_bug(k, 0x30, irql, "KeRaiseIrql to an IRQL below the current one");
    k->irql = irql;
    return old;
}

static VOID drv_KeLowerIrql(KIRQL irql)
{
    ndisemu_kernel *k = machine("KeLowerIrql");
    NDISEMU_CALL(k, "KeLowerIrql");
    if (irql > k->irql)
        irql_move_bug(k, 0x31, irql, "KeLowerIrql to an IRQL above the current one");
    k->irql = irql;
}

/* ---- the binding's calls ---------------------------------------------------------- */

/* The binding is Python's (ndisemu/binding.py): the call goes there through
 * the Kernel's dispatch function, and a bug check it raised (or any
 * exception a layer's handler raised) unwinds the driver like one of the
 * core's; the Python call into the driver raises it. */
static void binding_call(const char *name, int call, NDIS_HANDLE handle,
                         PNET_BUFFER_LIST nbls, ULONG port, ULONG count, ULONG flags,
                         PVOID cancel_id)
{
    ndisemu_kernel *k = machine(name);
    NDISEMU_CALL(k, name);
    if (!k->binding_dispatch) {        /* the Kernel registers it when it loads a driver */
        ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_HANDLE,
                         (uint64_t)(uintptr_t)handle, 0, 0, NULL,
                         "no binding: the Kernel has none for driver code to call");
        unwind(k);
    }
    if (k->binding_dispatch(k, call, handle, nbls, port, count, flags, cancel_id) != NDISEMU_OK)
        unwind(k);
}

static VOID drv_NdisSendNetBufferLists(NDIS_HANDLE handle, PNET_BUFFER_LIST nbls,
                                       NDIS_PORT_NUMBER port, ULONG flags)
{
    binding_call("NdisSendNetBufferLists", NDISEMU_BINDING_SEND, handle, nbls, port, 0, flags,
                 NULL);
}

static VOID drv_NdisFSendNetBufferLists(NDIS_HANDLE handle, PNET_BUFFER_LIST nbls,
                                        NDIS_PORT_NUMBER port, ULONG flags)
{
    binding_call("NdisFSendNetBufferLists", NDISEMU_BINDING_FILTER_SEND, handle, nbls, port, 0,
                 flags, NULL);
}

static VOID drv_NdisMSendNetBufferListsComplete(NDIS_HANDLE handle, PNET_BUFFER_LIST nbls,
                                                ULONG flags)
{
    binding_call("NdisMSendNetBufferListsComplete", NDISEMU_BINDING_MINIPORT_SEND_COMPLETE,
                 handle, nbls, 0, 0, flags, NULL);
}

static VOID drv_NdisFSendNetBufferListsComplete(NDIS_HANDLE handle, PNET_BUFFER_LIST nbls,
                                                ULONG flags)
{
    binding_call("NdisFSendNetBufferListsComplete", NDISEMU_BINDING_FILTER_SEND_COMPLETE,
                 handle, nbls, 0, 0, flags, NULL);
}

static VOID drv_NdisMIndicateReceiveNetBufferLists(NDIS_HANDLE handle, PNET_BUFFER_LIST nbls,
                                                   NDIS_PORT_NUMBER port, ULONG count,
                                                   ULONG flags)
{
    binding_call("NdisMIndicateReceiveNetBufferLists", NDISEMU_BINDING_MINIPORT_INDICATE,
                 handle, nbls, port, count, flags, NULL);
}

static VOID drv_NdisFIndicateReceiveNetBufferLists(NDIS_HANDLE handle, PNET_BUFFER_LIST nbls,
                                                   NDIS_PORT_NUMBER port, ULONG count,
                                                   ULONG flags)
{
    binding_call("NdisFIndicateReceiveNetBufferLists", NDISEMU_BINDING_FILTER_INDICATE,
                 handle, nbls, port, count, flags, NULL);
}

static VOID drv_NdisReturnNetBufferLists(NDIS_HANDLE handle, PNET_BUFFER_LIST nbls, ULONG flags)
{
    binding_call("NdisReturnNetBufferLists", NDISEMU_BINDING_RETURN, handle, nbls, 0, 0, flags,
                 NULL);
}

static VOID drv_NdisFReturnNetBufferLists(NDIS_HANDLE handle, PNET_BUFFER_LIST nbls,
                                          ULONG flags)
{
    binding_call("NdisFReturnNetBufferLists", NDISEMU_BINDING_FILTER_RETURN, handle, nbls, 0,
                 0, flags, NULL);
}

static VOID drv_NdisCancelSendNetBufferLists(NDIS_HANDLE handle, PVOID cancel_id)
{
    binding_call("NdisCancelSendNetBufferLists", NDISEMU_BINDING_CANCEL, handle, NULL, 0, 0, 0,
                 cancel_id);
}

static VOID drv_NdisFCancelSendNetBufferLists(NDIS_HANDLE handle, PVOID cancel_id)
{
    binding_call("NdisFCancelSendNetBufferLists", NDISEMU_BINDING_FILTER_CANCEL, handle, NULL,
                 0, 0, 0, cancel_id);
}

static UCHAR drv_NdisGeneratePartialCancelId(void)
{
    return ndisemu_partial_cancel_id(machine("NdisGeneratePartialCancelId"));
}

/* ---- assertions, debug print, bug checks ----------------------------------------- */

static VOID drv_assert_failed(const char *expression, const char *file, ULONG line)
{
    ndisemu_kernel *k = machine("NT_ASSERT");
    uint64_t p[4] = { ASSERTION_FAILURE, 0, 0, 0 };
    NDISEMU_CALL(k, "NT_ASSERT");
    ndisemu_stop(k, KMODE_EXCEPTION_NOT_HANDLED, p, 0, NULL, "assertion failed");
    snprintf(k->bug.detail, sizeof k->bug.detail, "ASSERT(%s) at %s:%u", expression, file,
             (unsigned)line);
    unwind(k);
}

static VOID drv_debug_print(const char *text)
{
    machine("DbgPrint");
    fputs(text, stderr);
    fflush(stderr);
}

static VOID drv_KeBugCheckEx(ULONG code, ULONG_PTR p1, ULONG_PTR p2, ULONG_PTR p3, ULONG_PTR p4)
{
    ndisemu_kernel *k = machine("KeBugCheckEx");
    uint64_t p[4] = { p1, p2, p3, p4 };
    NDISEMU_CALL(k, "KeBugCheckEx");
    ndisemu_stop(k, code, p, 0, NULL, "the driver called KeBugCheckEx");
    unwind(k);
}

/* ---- the table ------------------------------------------------------------------- */

#define drv_ndisemu_allocate_nbl_pool drv_allocate_nbl_pool
#define drv_ndisemu_allocate_nb_pool drv_allocate_nb_pool
#define drv_ndisemu_get_data_buffer drv_get_data_buffer
#define drv_ndisemu_copy_nb_to_nb drv_copy_nb_to_nb
#define drv_ndisemu_fwps_clone drv_fwps_clone
#define drv_ndisemu_fwps_deep_clone drv_fwps_deep_clone
#define drv_ndisemu_fwps_allocate_nbl drv_fwps_allocate_nbl
#define drv_ndisemu_assert_failed drv_assert_failed
#define drv_ndisemu_debug_print drv_debug_print

#define ENTRY(ret, name, params, args) .name = drv_##name,
#define VOID_ENTRY(name, params, args) .name = drv_##name,
static const NDISEMU_API api = {
    .Version = NDISEMU_API_VERSION,
    .Size = sizeof(NDISEMU_API),
    .Enter = enter,
    .Leave = leave,
    NDISEMU_API_LIST(ENTRY, VOID_ENTRY)
};

const void *ndisemu_driver_api(void)
{
    return &api;
}
