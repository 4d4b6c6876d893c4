/*
 * bench.c - the loops `ndisemu bench` times, and the two floors it measures
 * them against.
 *
 * Each loop runs one operation `iterations` times inside C so that Python's
 * per-call cost is paid once per batch, not once per operation.  The
 * emulated operations go through the same internal functions as the public
 * calls (ndisemu_clone_nbl, ndisemu_deep_clone_nbl, ndisemu_free_clone_nbl)
 * with every check they make.  The floors are what no implementation can
 * beat on this machine:
 *   memcpy       one memcpy of the original's used bytes (all NBs together)
 *                from one contiguous buffer to another: the lower bound of
 *                any deep clone;
 *   floor_clone  takes a block from a free list, zeroes it and fills an NBL,
 *                one NB per original NB and one partial MDL per source MDL
 *                run with the same field values a clone gets (PFN array
 *                included), then puts the block back: no pointer checks,
 *                no pool headers, no sizing pass, no bookkeeping.  The lower
 *                bound of a shallow clone.
 * The original is checked once, fully, by ndisemu_bench_prepare; the floors
 * then trust it, which is what makes them floors.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include "kernel.h"

#define FLOOR_BLOCKS 2              /* blocks on the floor's free list */

struct ndisemu_bench {
    ndisemu_kernel *k;
    NET_BUFFER_LIST *orig;
    void *nbl_pool;
    void *nb_pool;
    uint8_t protocol_id;
    /* memcpy floor */
    uint8_t *src;
    uint8_t *dst;
    uint64_t total;                 /* used bytes of every NB of orig */
    /* floor_clone */
    uint64_t block_bytes;
    void *blocks;                   /* FLOOR_BLOCKS blocks, one allocation */
    void *free_list;                /* first word of a free block: the next */
};

/* Keeps the compiler from merging or dropping the stores of a loop body. */
#define BARRIER() __asm__ volatile("" ::: "memory")

static uint64_t align16(uint64_t n)
{
    return (n + 15u) & ~(uint64_t)15u;
}

static uint64_t align64(uint64_t n)
{
    return (n + 63u) & ~(uint64_t)63u;
}

static uint64_t partial_mdl_bytes(const uint8_t *va, uint64_t length)
{
    return align16(sizeof(MDL) + ndisemu_span_pages(va, length) * sizeof(PFN_NUMBER));
}

/* Bytes a floor clone of `orig` needs: the NBL, then per NB the NB and one
 * partial MDL per non-empty source MDL run (as clone.c's add_piece). */
static uint64_t floor_size(NET_BUFFER_LIST *orig)
{
    uint64_t bytes = align16(sizeof(NET_BUFFER_LIST));
    NET_BUFFER *nb;
    for (nb = orig->FirstNetBuffer; nb; nb = nb->Next) {
        MDL *m = nb->CurrentMdl;
        uint32_t in = nb->CurrentMdlOffset;
        uint64_t length = nb->DataLength;
        bytes += align16(sizeof(NET_BUFFER));
        for (; m && length; m = m->Next, in = 0) {
            uint64_t run = m->ByteCount - in, piece = run < length ? run : length;
            if (!run)
                continue;
            bytes += partial_mdl_bytes(ndisemu_mdl_va(m) + in, piece);
            length -= piece;
        }
    }
    return bytes;
}

int ndisemu_bench_prepare(ndisemu_kernel *k, NET_BUFFER_LIST *orig, void *nbl_pool,
                          void *nb_pool, ndisemu_bench **out)
{
    ndisemu_bench *b;
    ndisemu_pool *pool;
    NET_BUFFER *nb;
    uint64_t done = 0;
    int i, saved = k->verifier;
    *out = NULL;
    /* The full consistency walk, whatever the Kernel's verifier setting. */
    k->verifier = NDISEMU_VERIFIER_FULL;
    i = ndisemu_check_nbl(k, orig);
    k->verifier = saved;
    if (i)
        return NDISEMU_BUGCHECK;
    pool = ndisemu_check_pool(k, nbl_pool, NDISEMU_KIND_NBL_POOL);
    if (!pool || !ndisemu_check_pool(k, nb_pool, NDISEMU_KIND_NB_POOL))
        return NDISEMU_BUGCHECK;
    b = calloc(1, sizeof *b);
    if (!b)
        return NDISEMU_NO_MEMORY;
    b->k = k;
    b->orig = orig;
    b->nbl_pool = nbl_pool;
    b->nb_pool = nb_pool;
    b->protocol_id = pool->protocol_id;
    for (nb = orig->FirstNetBuffer; nb; nb = nb->Next)
        b->total += nb->DataLength;
    b->block_bytes = floor_size(orig);
    /* aligned_alloc wants a size that is a multiple of the alignment */
    b->src = aligned_alloc(64, align64(b->total) + 64);
    b->dst = aligned_alloc(64, align64(b->total) + 64);
    b->blocks = aligned_alloc(64, align64(b->block_bytes) * FLOOR_BLOCKS);
    if (!b->src || !b->dst || !b->blocks) {
        ndisemu_bench_release(b);
        return NDISEMU_NO_MEMORY;
    }
    /* The memcpy floor copies the same bytes, gathered once. */
    for (nb = orig->FirstNetBuffer; nb; nb = nb->Next)
        done += ndisemu_chain_copy_out(nb->CurrentMdl, nb->CurrentMdlOffset, nb->DataLength,
                                       b->src + done);
    memset(b->dst, 0, align64(b->total) + 64);
    for (i = FLOOR_BLOCKS - 1; i >= 0; i--) {
        void **block = (void **)((uint8_t *)b->blocks + align64(b->block_bytes) * i);
        *block = b->free_list;
        b->free_list = block;
    }
    *out = b;
    return NDISEMU_OK;
}

void ndisemu_bench_release(ndisemu_bench *b)
{
    if (!b)
        return;
    free(b->src);
    free(b->dst);
    free(b->blocks);
    free(b);
}

/* One floor clone: pop, zero, fill; the result stays in the popped block. */
static NET_BUFFER_LIST *floor_clone(ndisemu_bench *b, ndisemu_bench_report *report)
{
    ndisemu_kernel *k = b->k;
    uint8_t *at = b->free_list;
    NET_BUFFER_LIST *nbl = (NET_BUFFER_LIST *)at;
    NET_BUFFER **nb_link = &nbl->FirstNetBuffer;
    NET_BUFFER *src;
    b->free_list = *(void **)at;
    memset(at, 0, b->block_bytes);
    nbl->NdisPoolHandle = b->nbl_pool;
    nbl->NetBufferListInfo[NetBufferListProtocolId] = (void *)(uintptr_t)b->protocol_id;
    at += align16(sizeof(NET_BUFFER_LIST));
    for (src = b->orig->FirstNetBuffer; src; src = src->Next) {
        NET_BUFFER *nb = (NET_BUFFER *)at;
        MDL **mdl_link = &nb->MdlChain;
        MDL *m = src->CurrentMdl;
        uint32_t in = src->CurrentMdlOffset;
        uint64_t length = src->DataLength;
        at += align16(sizeof(NET_BUFFER));
        nb->NdisPoolHandle = b->nb_pool;
        *nb_link = nb;
        nb_link = &nb->Next;
        for (; m && length; m = m->Next, in = 0) {
            uint64_t run = m->ByteCount - in, piece = run < length ? run : length, pages, i;
            uint8_t *va = ndisemu_mdl_va(m) + in;
            MDL *mdl = (MDL *)at;
            PFN_NUMBER *pfn = (PFN_NUMBER *)(mdl + 1);
            uint64_t first;
            if (!run)
                continue;
            pages = ndisemu_span_pages(va, piece);
            at += align16(sizeof(MDL) + pages * sizeof(PFN_NUMBER));
            /* IoBuildPartialMdl over the source's bytes, as clone.c does */
            mdl->Size = (CSHORT)(sizeof(MDL) + pages * sizeof(PFN_NUMBER));
            mdl->StartVa = (void *)((uintptr_t)va & ~(uintptr_t)0xFFF);
            mdl->ByteOffset = (ULONG)((uintptr_t)va & 0xFFF);
            mdl->ByteCount = (ULONG)piece;
            mdl->MdlFlags = (CSHORT)(MDL_PARTIAL | (m->MdlFlags & MDL_SOURCE_IS_NONPAGED_POOL));
            if (m->MdlFlags & MDL_MAPPED_TO_SYSTEM_VA)
                mdl->MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA | MDL_PARTIAL_HAS_BEEN_MAPPED;
            if (m->MdlFlags & (MDL_SOURCE_IS_NONPAGED_POOL | MDL_MAPPED_TO_SYSTEM_VA))
                mdl->MappedSystemVa = va;
            first = (k->display_base + ((uintptr_t)mdl->StartVa - (uintptr_t)k->base)) >> 12;
            for (i = 0; i < pages; i++)
                pfn[i] = first + i;
            *mdl_link = mdl;
            mdl_link = &mdl->Next;
            if (report) {
                report->mdls++;
                report->mdl_bytes += piece;
            }
            length -= piece;
        }
        nb->CurrentMdl = nb->MdlChain;
        nb->DataLength = src->DataLength;
        if (report)
            report->nbs++;
    }
    return nbl;
}

static void floor_free(ndisemu_bench *b, NET_BUFFER_LIST *nbl)
{
    *(void **)nbl = b->free_list;
    b->free_list = nbl;
}

/* Sum of ByteCount over the MDL chains of a derived NBL's NBs. */
static uint64_t chain_bytes(NET_BUFFER_LIST *nbl)
{
    uint64_t total = 0;
    NET_BUFFER *nb;
    for (nb = nbl->FirstNetBuffer; nb; nb = nb->Next)
        total += ndisemu_chain_bytes(nb->MdlChain);
    return total;
}

/* One allocate + free of an emulated operation; `report` (may be NULL)
 * gets what the allocation made. */
static inline __attribute__((always_inline)) int emulated_once(
    ndisemu_bench *b, uint32_t op, uint32_t flags, uint32_t origin, uint32_t free_origin,
    ndisemu_bench_report *report)
{
    ndisemu_kernel *k = b->k;
    NET_BUFFER_LIST *clone;
    ndisemu_stats before;
    int rc;
    if (report)
        before = k->stats;
    rc = op == NDISEMU_BENCH_DEEP_CLONE
             ? ndisemu_deep_clone_nbl(k, b->orig, b->nbl_pool, b->nb_pool, &clone)
             : ndisemu_clone_nbl(k, b->orig, b->nbl_pool, b->nb_pool, flags, origin, &clone);
    if (rc)
        return rc;
    if (report) {
        report->nbs = (uint64_t)(k->stats.live[NDISEMU_KIND_NB] - before.live[NDISEMU_KIND_NB]);
        report->mdls = (uint64_t)(k->stats.live[NDISEMU_KIND_MDL] -
                                  before.live[NDISEMU_KIND_MDL]);
        report->mdl_bytes = flags ? 0 : chain_bytes(clone);   /* shared MDLs: none new */
        report->bytes_copied = k->stats.bytes_copied - before.bytes_copied;
        report->block_bytes = k->stats.bytes_live - before.bytes_live;
    }
    return ndisemu_free_clone_nbl(k, clone, flags, free_origin);
}

static int emulated(ndisemu_bench *b, uint32_t op, uint64_t iterations,
                    ndisemu_bench_report *report)
{
    uint32_t flags = op == NDISEMU_BENCH_CLONE_ORIGINAL_MDLS
                         ? (uint32_t)NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS : 0;
    uint32_t origin = op == NDISEMU_BENCH_FWPS_CLONE ? NDISEMU_ORIGIN_FWPS_CLONE
                                                     : NDISEMU_ORIGIN_CLONE;
    uint32_t free_origin = op == NDISEMU_BENCH_DEEP_CLONE ? NDISEMU_ORIGIN_FWPS_CLONE : origin;
    uint64_t n;
    int rc;
    /* only the reported (last) operation pays for the report */
    for (n = 0; n + 1 < iterations; n++)
        if ((rc = emulated_once(b, op, flags, origin, free_origin, NULL)))
            return rc;
    return emulated_once(b, op, flags, origin, free_origin, report);
}

int ndisemu_bench_run(ndisemu_bench *b, uint32_t op, uint64_t iterations,
                      ndisemu_bench_report *report)
{
    uint64_t n;
    if (report)
        memset(report, 0, sizeof *report);
    if (!iterations)
        return NDISEMU_OK;
    switch (op) {
    case NDISEMU_BENCH_CLONE:
    case NDISEMU_BENCH_CLONE_ORIGINAL_MDLS:
    case NDISEMU_BENCH_FWPS_CLONE:
    case NDISEMU_BENCH_DEEP_CLONE:
        return emulated(b, op, iterations, report);
    case NDISEMU_BENCH_MEMCPY:
        for (n = 0; n < iterations; n++) {
            memcpy(b->dst, b->src, b->total);
            BARRIER();
        }
        if (report) {
            report->bytes_copied = b->total;
            report->block_bytes = b->total;
        }
        return NDISEMU_OK;
    case NDISEMU_BENCH_FLOOR_CLONE:
        for (n = 0; n + 1 < iterations; n++) {
            floor_free(b, floor_clone(b, NULL));
            BARRIER();
        }
        floor_free(b, floor_clone(b, report));
        if (report)
            report->block_bytes = b->block_bytes;
        return NDISEMU_OK;
    default:
        return ndisemu_bugcheck(b->k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER, op, 0, 0,
                                NULL, "unknown benchmark operation");
    }
}
