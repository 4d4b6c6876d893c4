/*
 * dataspace.c - data-space operations on a NET_BUFFER: retreat and advance
 * (NdisRetreat/AdvanceNetBuffer[List]DataStart), NdisGetDataBuffer,
 * NdisCopyFromNetBufferToNetBuffer, the NBL info copies and the protocol id.
 * Reference: docs/data-space.md; the choices where Microsoft's documentation
 * is silent are also listed in ndisemu/dataspace.py.
 *
 * Every call keeps DataOffset == bytes of the MDLs before CurrentMdl +
 * CurrentMdlOffset (ndisemu_check_nb).  Refused calls change nothing.
 *
 * An allocating retreat puts one MDL at the head of the chain and counts it
 * in the NB's record (retreat_mdls).  Whether it came from NDIS's default
 * allocator or from the caller's AllocateMdlHandler is the MDL record's
 * origin: NDISEMU_ORIGIN_RETREAT only for the default allocator (which owns
 * its buffer, the record's u.mdl.buffer); anything else came from a handler.
 */
#include <stdlib.h>
#include "kernel.h"

#define RETREAT_TAG 0x74655252  /* "RRet" */
#define COPY_STACK 2048

static int is_default_mdl(ndisemu_kernel *k, MDL *mdl)
{
    ndisemu_rec *r = ndisemu_rec_of(k, mdl);
    return !ndisemu_is_inner(r) && r->origin == NDISEMU_ORIGIN_RETREAT;
}

/* ---- retreat ------------------------------------------------------------ */

int ndisemu_retreat_plan(ndisemu_kernel *k, NET_BUFFER *nb, uint32_t delta, uint32_t backfill,
                         uint32_t *need)
{
    uint64_t size;
    *need = 0;
    NDISEMU_CALL(k, "NdisRetreatNetBufferDataStart");
    if (ndisemu_check_irql(k) || ndisemu_check_nb(k, nb))
        return NDISEMU_BUGCHECK;
    if ((uint64_t)nb->DataLength + delta > UINT32_MAX)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER, delta,
                                nb->DataLength, NDISEMU_KIND_NB, nb,
                                "DataLength + DataOffsetDelta does not fit a ULONG");
    /* delta == DataOffset fits in the unused space (the documentation's two
     * thresholds disagree on this case; no allocation is needed). */
    if (delta <= nb->DataOffset)
        return NDISEMU_OK;
    size = (uint64_t)(delta - nb->DataOffset) + backfill;
    if (size > UINT32_MAX)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER, delta,
                                backfill, NDISEMU_KIND_NB, nb,
                                "new MDL's size (DataOffsetDelta - DataOffset + DataBackFill) "
                                "does not fit a ULONG");
    *need = (uint32_t)size;
    return NDISEMU_OK;
}

int ndisemu_retreat_allocate(ndisemu_kernel *k, uint32_t size, MDL **out)
{
    uint8_t *data;
    MDL *mdl;
    ndisemu_rec *r;
    *out = NULL;
    if (ndisemu_check_irql(k))
        return NDISEMU_BUGCHECK;
    data = ndisemu_block_alloc(k, size, NDISEMU_KIND_DATA, RETREAT_TAG, NULL);
    if (!data)
        return ndisemu_alloc_rc(k);
    mdl = ndisemu_block_alloc(k, ndisemu_mdl_bytes((uint32_t)ndisemu_span_pages(data, size)),
                              NDISEMU_KIND_MDL, RETREAT_TAG, NULL);
    if (!mdl) {
        int rc = ndisemu_alloc_rc(k);
        ndisemu_block_free(k, data, NULL);
        return rc;
    }
    ndisemu_mdl_init_built(k, mdl, data, size);
    r = ndisemu_rec_of(k, mdl);
    r->origin = NDISEMU_ORIGIN_RETREAT;
    r->u.mdl.length = size;
    r->u.mdl.buffer = ndisemu_rec_of(k, data)->id;
    *out = mdl;
    return NDISEMU_OK;
}

int ndisemu_retreat_free_default(ndisemu_kernel *k, MDL *mdl)
{
    ndisemu_rec *r;
    if (ndisemu_check_irql(k) || !(r = ndisemu_check_object(k, mdl, NDISEMU_KIND_MDL)))
        return NDISEMU_BUGCHECK;
    if (!is_default_mdl(k, mdl))
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_WRONG_FREE,
                                NDISEMU_ORIGIN_RETREAT, r->origin, NDISEMU_KIND_MDL, mdl,
                                "NDIS's default freer only frees MDLs its default allocator made");
    if (ndisemu_check_owned_mdl_release(k, r))
        return NDISEMU_BUGCHECK;
    ndisemu_free_owned_mdl(k, r);
    return NDISEMU_OK;
}

/* Checks an MDL about to go to the head of nb's chain.  Changes nothing. */
static int check_new_head(ndisemu_kernel *k, NET_BUFFER *nb, MDL *mdl, uint32_t need)
{
    MDL *m;
    if (!ndisemu_check_object(k, mdl, NDISEMU_KIND_MDL)) {
        k->bug.rule = "AllocateMdlHandler returned a pointer that is not a live MDL";
        return NDISEMU_BUGCHECK;
    }
    if (mdl->ByteCount < need)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER,
                                mdl->ByteCount, need, NDISEMU_KIND_MDL, mdl,
                                "MDL for the retreat is smaller than the BufferSize asked for");
    if (mdl->ByteCount && !ndisemu_range_is_live(k, ndisemu_mdl_va(mdl), mdl->ByteCount))
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_RANGE,
                                ndisemu_display(k, ndisemu_mdl_va(mdl)), mdl->ByteCount,
                                NDISEMU_KIND_MDL, mdl,
                                "MDL for the retreat describes memory outside live pool");
    if (mdl->Next)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER,
                                ndisemu_display(k, mdl->Next), 0, NDISEMU_KIND_MDL, mdl,
                                "MDL for the retreat is already linked (Next is not NULL)");
    for (m = nb->MdlChain; m; m = m->Next)
        if (m == mdl)
            return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER,
                                    ndisemu_display(k, mdl), 0, NDISEMU_KIND_NB, nb,
                                    "MDL for the retreat is already in this NET_BUFFER's chain");
    return NDISEMU_OK;
}

int ndisemu_retreat_commit(ndisemu_kernel *k, NET_BUFFER *nb, uint32_t delta, uint32_t backfill,
                           MDL *mdl, uint32_t *need_out)
{
    uint32_t need;
    *need_out = 0;
    if (ndisemu_retreat_plan(k, nb, delta, backfill, &need))
        return NDISEMU_BUGCHECK;
    if (need && !mdl) {              /* the caller must get an MDL first */
        *need_out = need;
        return NDISEMU_OK;
    }
    if (!need) {
        if (mdl)
            return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER,
                                    ndisemu_display(k, mdl), 0, NDISEMU_KIND_NB, nb,
                                    "retreat within the unused space takes no new MDL");
        if (!delta)
            return NDISEMU_OK;
        /* Within the unused space only the four data-space fields move. */
        if (delta <= nb->CurrentMdlOffset) {
            nb->CurrentMdlOffset -= delta;
            nb->DataOffset -= delta;
            nb->DataLength += delta;
        } else {
            ndisemu_nb_fill(nb, nb->MdlChain, nb->DataOffset - delta,
                            (uint64_t)nb->DataLength + delta);
        }
        ndisemu_trace_at(k, nb, NDISEMU_TRACE_RETREATED, delta, 0, nb->DataOffset);
        return NDISEMU_OK;
    }
    if (check_new_head(k, nb, mdl, need))
        return NDISEMU_BUGCHECK;
    /* The used region now starts (delta - DataOffset) bytes before the end
     * of the new MDL: the old unused bytes become used, and whatever the MDL
     * has beyond that (DataBackFill, or more from a handler) is unused. */
    {
        uint32_t data_offset = mdl->ByteCount - (delta - nb->DataOffset);
        uint64_t data_length = (uint64_t)nb->DataLength + delta;
        mdl->Next = nb->MdlChain;
        ndisemu_nb_private_of(k, nb)->retreat_mdls++;
        ndisemu_nb_fill(nb, mdl, data_offset, data_length);
    }
    ndisemu_trace_at(k, nb, NDISEMU_TRACE_RETREATED, delta, ndisemu_display_of(k, mdl),
                     nb->DataOffset);
    return NDISEMU_OK;
}

int ndisemu_nb_save(ndisemu_kernel *k, NET_BUFFER *nb, ndisemu_nb_state *out)
{
    if (!ndisemu_check_object(k, nb, NDISEMU_KIND_NB))
        return NDISEMU_BUGCHECK;
    out->chain = nb->MdlChain;
    out->current = nb->CurrentMdl;
    out->current_offset = nb->CurrentMdlOffset;
    out->data_offset = nb->DataOffset;
    out->data_length = nb->DataLength;
    out->retreat_mdls = ndisemu_nb_private_of(k, nb)->retreat_mdls;
    return NDISEMU_OK;
}

int ndisemu_nb_restore(ndisemu_kernel *k, NET_BUFFER *nb, const ndisemu_nb_state *saved,
                       MDL **added)
{
    MDL *head;
    *added = NULL;
    if (!ndisemu_check_object(k, nb, NDISEMU_KIND_NB))
        return NDISEMU_BUGCHECK;
    head = nb->MdlChain;
    if (head != saved->chain) {
        if (!ndisemu_check_object(k, head, NDISEMU_KIND_MDL) || head->Next != saved->chain)
            return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_NB_INCONSISTENT,
                                    ndisemu_display(k, head), ndisemu_display(k, saved->chain),
                                    NDISEMU_KIND_NB, nb,
                                    "MdlChain changed during the retreat: cannot undo it");
        head->Next = NULL;
        *added = head;
    }
    nb->MdlChain = saved->chain;
    nb->CurrentMdl = saved->current;
    nb->CurrentMdlOffset = saved->current_offset;
    nb->DataOffset = saved->data_offset;
    nb->DataLength = saved->data_length;
    ndisemu_nb_private_of(k, nb)->retreat_mdls = saved->retreat_mdls;
    ndisemu_trace_at(k, nb, NDISEMU_TRACE_RESTORED, *added ? ndisemu_display_of(k, *added) : 0,
                     0, nb->DataOffset);
    return NDISEMU_OK;
}

/* ---- advance ------------------------------------------------------------ */

/* Head MDLs a retreat added that lie wholly inside the first `data_offset`
 * bytes; *bytes gets their total. */
static uint32_t unused_retreat_mdls(ndisemu_kernel *k, NET_BUFFER *nb, uint64_t data_offset,
                                   uint64_t *bytes)
{
    uint32_t count = 0, limit = ndisemu_nb_private_of(k, nb)->retreat_mdls;
    uint64_t before = 0;
    MDL *m;
    for (m = nb->MdlChain; m && count < limit; m = m->Next, count++) {
        if (before + m->ByteCount > data_offset)
            break;
        before += m->ByteCount;
    }
    *bytes = before;
    return count;
}

int ndisemu_advance_plan(ndisemu_kernel *k, NET_BUFFER *nb, uint32_t delta, int free_mdl,
                         int have_handler, uint32_t *to_free)
{
    uint64_t bytes;
    uint32_t count, i;
    MDL *m;
    *to_free = 0;
    NDISEMU_CALL(k, "NdisAdvanceNetBufferDataStart");
    if (ndisemu_check_irql(k) || ndisemu_check_nb(k, nb))
        return NDISEMU_BUGCHECK;
    if (delta > nb->DataLength)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_ADVANCE_PAST_END, delta,
                                nb->DataLength, NDISEMU_KIND_NB, nb,
                                "DataOffsetDelta is larger than DataLength");
    if (!free_mdl)
        return NDISEMU_OK;
    count = unused_retreat_mdls(k, nb, (uint64_t)nb->DataOffset + delta, &bytes);
    for (i = 0, m = nb->MdlChain; i < count; i++, m = m->Next) {
        int from_default = is_default_mdl(k, m);
        if (from_default && ndisemu_check_owned_mdl_release(k, ndisemu_rec_of(k, m)))
            return NDISEMU_BUGCHECK;
        if (!from_default && !have_handler)
            return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_WRONG_FREE,
                                    ndisemu_display(k, m), ndisemu_rec_of(k, m)->origin,
                                    NDISEMU_KIND_NB, nb,
                                    "MDL came from an AllocateMdlHandler: FreeMdl needs the "
                                    "matching FreeMdlHandler, not NDIS's default freer");
        if (from_default && have_handler)
            return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_WRONG_FREE,
                                    ndisemu_display(k, m), NDISEMU_ORIGIN_RETREAT,
                                    NDISEMU_KIND_NB, nb,
                                    "MDL came from NDIS's default allocator: a FreeMdlHandler "
                                    "is not its counterpart");
    }
    *to_free = count;
    return NDISEMU_OK;
}

int ndisemu_advance_commit(ndisemu_kernel *k, NET_BUFFER *nb, uint32_t delta, int free_mdl,
                           int have_handler, MDL **handler_mdls, uint32_t capacity,
                           uint32_t *handed)
{
    uint32_t count, i, given = 0;
    uint64_t bytes = 0, data_offset;
    MDL *m;
    *handed = 0;
    if (ndisemu_advance_plan(k, nb, delta, free_mdl, have_handler, &count))
        return NDISEMU_BUGCHECK;
    if (have_handler && count > capacity)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER, capacity,
                                count, NDISEMU_KIND_NB, nb,
                                "too little room for the MDLs the FreeMdlHandler frees");
    data_offset = (uint64_t)nb->DataOffset + delta;
    if (!count) {
        MDL *current;
        uint32_t in_mdl;
        if (!delta)
            return NDISEMU_OK;
        /* Forward from CurrentMdl: no walk from the head. */
        ndisemu_chain_locate(nb->CurrentMdl, (uint64_t)nb->CurrentMdlOffset + delta, &current,
                             &in_mdl);
        nb->CurrentMdl = current;
        nb->CurrentMdlOffset = in_mdl;
        nb->DataOffset = (ULONG)data_offset;
        nb->DataLength -= delta;
        ndisemu_trace_at(k, nb, NDISEMU_TRACE_ADVANCED, delta, 0, nb->DataOffset);
        return NDISEMU_OK;
    }
    unused_retreat_mdls(k, nb, data_offset, &bytes);
    m = nb->MdlChain;
    for (i = 0; i < count; i++) {
        MDL *next = m->Next;
        m->Next = NULL;
        if (is_default_mdl(k, m))
            ndisemu_free_owned_mdl(k, ndisemu_rec_of(k, m));
        else
            handler_mdls[given++] = m;
        m = next;
    }
    ndisemu_nb_private_of(k, nb)->retreat_mdls -= count;
    ndisemu_nb_fill(nb, m, data_offset - bytes, (uint64_t)nb->DataLength - delta);
    ndisemu_trace_at(k, nb, NDISEMU_TRACE_ADVANCED, delta, count, nb->DataOffset);
    *handed = given;
    return NDISEMU_OK;
}

/* ---- NdisGetDataBuffer -------------------------------------------------- */

static int in_arena(ndisemu_kernel *k, const void *p)
{
    return (const uint8_t *)p >= k->base && (const uint8_t *)p < k->base + k->size;
}

/* Checks CurrentMdl/CurrentMdlOffset and what follows them before they are
 * followed: everything ndisemu_check_nb checks under the verifier; without
 * it, the objects and ranges reached from CurrentMdl. */
static int check_current(ndisemu_kernel *k, NET_BUFFER *nb)
{
    if (k->verifier)
        return ndisemu_check_nb(k, nb);
    if (!ndisemu_check_object(k, nb, NDISEMU_KIND_NB) ||
        ndisemu_check_chain(k, nb->CurrentMdl, nb) < 0)
        return NDISEMU_BUGCHECK;
    if (!nb->CurrentMdl) {
        if (nb->DataLength || nb->CurrentMdlOffset)
            return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_NB_INCONSISTENT,
                                    nb->DataLength, 0, NDISEMU_KIND_NB, nb,
                                    "CurrentMdl: NULL with used data");
        return NDISEMU_OK;
    }
    if ((uint64_t)nb->CurrentMdlOffset + nb->DataLength > ndisemu_chain_bytes(nb->CurrentMdl))
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_NB_INCONSISTENT,
                                (uint64_t)nb->CurrentMdlOffset + nb->DataLength,
                                ndisemu_chain_bytes(nb->CurrentMdl), NDISEMU_KIND_NB, nb,
                                "CurrentMdlOffset + DataLength exceeds the bytes from CurrentMdl");
    return NDISEMU_OK;
}

int ndisemu_get_data_buffer(ndisemu_kernel *k, NET_BUFFER *nb, uint32_t bytes_needed,
                            uint8_t *storage, uint32_t align_multiple, uint32_t align_offset,
                            void **out)
{
    MDL *m;
    uint32_t in_mdl;
    uint8_t *at;
    *out = NULL;
    NDISEMU_CALL(k, "NdisGetDataBuffer");
    if (ndisemu_check_irql(k))
        return NDISEMU_BUGCHECK;
    if (!align_multiple || align_multiple > 8192 || (align_multiple & (align_multiple - 1)) ||
        align_offset >= align_multiple)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER,
                                align_multiple, align_offset, NDISEMU_KIND_NB, nb,
                                "AlignMultiple must be a power of two in 1..8192 and "
                                "AlignOffset below it");
    if (check_current(k, nb))
        return NDISEMU_BUGCHECK;
    if (storage && in_arena(k, storage) &&
        !ndisemu_range_is_live(k, storage, bytes_needed ? bytes_needed : 1))
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_RANGE,
                                ndisemu_display(k, storage), bytes_needed, NDISEMU_KIND_NB, nb,
                                "Storage..+BytesNeeded is not inside live pool memory");
    if (bytes_needed > nb->DataLength)
        return NDISEMU_OK;
    /* The first needed byte: skip MDLs CurrentMdl/CurrentMdlOffset have used
     * up (an offset at an MDL's end, zero-length MDLs). */
    m = nb->CurrentMdl;
    in_mdl = nb->CurrentMdlOffset;
    while (m && in_mdl >= m->ByteCount && m->Next) {
        m = m->Next;
        in_mdl = 0;
    }
    if (!m) {                        /* no MDL at all: only 0 bytes asked */
        *out = storage;
        return NDISEMU_OK;
    }
    at = ndisemu_mdl_va(m) + in_mdl;
    if (m->ByteCount - in_mdl >= bytes_needed &&
        (uintptr_t)at % align_multiple == align_offset) {
        *out = at;
        return NDISEMU_OK;
    }
    if (storage) {
        k->stats.bytes_copied += ndisemu_chain_copy_out(m, in_mdl, bytes_needed, storage);
        *out = storage;
    }
    return NDISEMU_OK;
}

/* ---- NdisCopyFromNetBufferToNetBuffer ------------------------------------ */

int ndisemu_copy_nb_to_nb(ndisemu_kernel *k, NET_BUFFER *dst, uint32_t dst_offset,
                          uint32_t bytes, NET_BUFFER *src, uint32_t src_offset,
                          uint32_t *copied)
{
    uint64_t src_left, dst_left, capacity, n;
    uint8_t stack[COPY_STACK], *staging;
    MDL *m;
    uint32_t in_mdl;
    *copied = 0;
    NDISEMU_CALL(k, "NdisCopyFromNetBufferToNetBuffer");
    if (ndisemu_check_irql(k) || ndisemu_check_nb(k, dst) || ndisemu_check_nb(k, src))
        return NDISEMU_BUGCHECK;
    /* Source: its used data.  Destination: its MDL chain from the data start
     * (the caller is told to fix DataLength up afterwards). */
    src_left = src_offset < src->DataLength ? src->DataLength - src_offset : 0;
    capacity = ndisemu_chain_bytes(dst->MdlChain) - dst->DataOffset;
    dst_left = dst_offset < capacity ? capacity - dst_offset : 0;
    n = bytes;
    if (n > src_left)
        n = src_left;
    if (n > dst_left)
        n = dst_left;
    if (!n)
        return NDISEMU_OK;
    /* Staged through a buffer: memmove semantics when the two ranges share
     * bytes (the same NB, or NBs over the same MDLs). */
    staging = n <= sizeof stack ? stack : malloc(n);
    if (!staging)
        return NDISEMU_NO_MEMORY;
    ndisemu_chain_locate(src->CurrentMdl, (uint64_t)src->CurrentMdlOffset + src_offset, &m,
                         &in_mdl);
    ndisemu_chain_copy_out(m, in_mdl, n, staging);
    ndisemu_chain_locate(dst->CurrentMdl, (uint64_t)dst->CurrentMdlOffset + dst_offset, &m,
                         &in_mdl);
    ndisemu_chain_copy_in(m, in_mdl, n, staging);
    k->stats.bytes_copied += n;
    if (staging != stack)
        free(staging);
    *copied = (uint32_t)n;
    return NDISEMU_OK;
}

/* ---- NBL info ------------------------------------------------------------ */

#define INFO_SLOTS (sizeof(((NET_BUFFER_LIST *)0)->NetBufferListInfo) / sizeof(void *))

int ndisemu_copy_nbl_info(ndisemu_kernel *k, NET_BUFFER_LIST *dst, NET_BUFFER_LIST *src,
                          const uint32_t *slots, uint32_t count)
{
    uint32_t i;
    NDISEMU_CALL(k, "NdisCopySendNetBufferListInfo");
    if (ndisemu_check_irql(k) || !ndisemu_check_object(k, dst, NDISEMU_KIND_NBL) ||
        !ndisemu_check_object(k, src, NDISEMU_KIND_NBL))
        return NDISEMU_BUGCHECK;
    for (i = 0; i < count; i++)
        if (slots[i] >= INFO_SLOTS)
            return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER, slots[i],
                                    INFO_SLOTS, NDISEMU_KIND_NBL, dst,
                                    "info index beyond NetBufferListInfo");
    for (i = 0; i < count; i++)
        dst->NetBufferListInfo[slots[i]] = src->NetBufferListInfo[slots[i]];
    return NDISEMU_OK;
}

int ndisemu_nbl_protocol_id(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, uint32_t slot, int set,
                            uint8_t *value)
{
    NDISEMU_CALL(k, set ? "NdisSetNetBufferListProtocolId" : "NdisGetNetBufferListProtocolId");
    if (ndisemu_check_irql(k) || !ndisemu_check_object(k, nbl, NDISEMU_KIND_NBL))
        return NDISEMU_BUGCHECK;
    if (slot >= INFO_SLOTS)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER, slot,
                                INFO_SLOTS, NDISEMU_KIND_NBL, nbl,
                                "info index beyond NetBufferListInfo");
    /* x64 is little-endian: the slot's first byte is its low byte. */
    if (set)
        *(uint8_t *)&nbl->NetBufferListInfo[slot] = *value;
    else
        *value = (uint8_t)(uintptr_t)nbl->NetBufferListInfo[slot];
    return NDISEMU_OK;
}
