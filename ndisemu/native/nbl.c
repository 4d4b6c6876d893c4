/*
 * nbl.c - NET_BUFFER_LIST allocation and free (NdisAllocateNetBufferList,
 * NdisAllocateNetBufferAndNetBufferList, NdisFreeNetBufferList), NBL context
 * (NdisAllocate/FreeNetBufferListContext) and the build_nbl helper.
 *
 * An NBL from a pool is one block: the NBL, then, as inner objects with
 * their own headers, the preallocated context, the preallocated NB and, for
 * pools with a DataSize, its MDL and data.  What ndisemu keeps about it
 * (origin, pool, context stack, references) is in its record.
 */
#include <stdlib.h>
#include "kernel.h"

#define BUILT_TAG 0x646c6942  /* "Bild" */

uint64_t ndisemu_nbl_object_bytes(const ndisemu_pool *pool, uint32_t context_bytes)
{
    uint64_t bytes = ndisemu_align_up(NDISEMU_NBL_BYTES, NDISEMU_ALIGN);
    if (context_bytes)
        bytes += ndisemu_inner_span(sizeof(NET_BUFFER_LIST_CONTEXT) + context_bytes);
    if (pool->allocate_nb)
        bytes += ndisemu_inner_span(NDISEMU_NB_BYTES) + ndisemu_nb_data_parts(pool->data_size);
    return bytes;
}

static int check_context_sizes(ndisemu_kernel *k, uint32_t size, uint32_t backfill,
                               uint32_t multiple)
{
    if (size % multiple || backfill % multiple || size + backfill > 0xFFFF)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER, size,
                                backfill, NDISEMU_KIND_CONTEXT, NULL,
                                "context size/backfill not a multiple of the required "
                                "alignment, or larger than 0xFFFF");
    return NDISEMU_OK;
}

/* Carves one NBL object; nothing is validated here. */
static NET_BUFFER_LIST *carve_nbl(ndisemu_kernel *k, ndisemu_pool *pool, uint16_t context_size,
                                  uint16_t context_backfill, uint32_t origin)
{
    uint32_t context_bytes = (uint32_t)context_size + context_backfill;
    NET_BUFFER_LIST *nbl;
    ndisemu_rec *r;
    uint8_t *cursor;

    /* [UNSPEC] The pool's ContextSize is preallocated context space; a larger
     * request gets a larger block.  Used context = ContextSize, the rest is
     * backfill (Offset). */
    if (context_bytes < pool->context_size)
        context_bytes = pool->context_size;
    r = ndisemu_alloc_composite(k, ndisemu_nbl_object_bytes(pool, context_bytes),
                                NDISEMU_NBL_BYTES, NDISEMU_KIND_NBL, pool->tag, pool,
                                UINT64_MAX);
    if (!r)
        return NULL;
    nbl = ndisemu_rec_payload(k, r);
    cursor = (uint8_t *)nbl + ndisemu_align_up(NDISEMU_NBL_BYTES, NDISEMU_ALIGN);
    r->origin = origin;
    r->u.nbl.pool = pool;
    nbl->NdisPoolHandle = pool->handle;
    /* The pool's ProtocolId goes into the NBL's protocol-id info slot. */
    nbl->NetBufferListInfo[NetBufferListProtocolId] = (void *)(uintptr_t)pool->protocol_id;
    if (context_bytes) {
        NET_BUFFER_LIST_CONTEXT *ctx = ndisemu_inner_object(
            k, nbl, &cursor, sizeof *ctx + context_bytes, NDISEMU_KIND_CONTEXT, pool->tag);
        ctx->Size = (USHORT)context_bytes;
        ctx->Offset = (USHORT)(context_bytes - context_size);
        nbl->Context = ctx;
    }
    if (pool->allocate_nb) {
        NET_BUFFER *nb = ndisemu_inner_object(k, nbl, &cursor, NDISEMU_NB_BYTES, NDISEMU_KIND_NB,
                                              pool->tag);
        nb->NdisPoolHandle = pool->handle;
        ndisemu_rec_of(k, nb)->origin = NDISEMU_ORIGIN_PREALLOCATED;
        if (pool->data_size)
            ndisemu_nb_attach_data(k, nbl, &cursor, nb, pool->data_size, pool->tag);
        nbl->FirstNetBuffer = nb;
    }
    pool->live++;
    pool->allocated++;
    return nbl;
}

int ndisemu_allocate_nbl(ndisemu_kernel *k, void *handle, uint16_t context_size,
                         uint16_t context_backfill, NET_BUFFER_LIST **out)
{
    ndisemu_pool *pool;
    *out = NULL;
    NDISEMU_CALL(k, "NdisAllocateNetBufferList");
    if (ndisemu_check_irql(k) || !(pool = ndisemu_check_pool(k, handle, NDISEMU_KIND_NBL_POOL)))
        return NDISEMU_BUGCHECK;
    if (check_context_sizes(k, context_size, context_backfill, MEMORY_ALLOCATION_ALIGNMENT))
        return NDISEMU_BUGCHECK;
    *out = carve_nbl(k, pool, context_size, context_backfill, NDISEMU_ORIGIN_POOL);
    return *out ? NDISEMU_OK : ndisemu_alloc_rc(k);
}

int ndisemu_allocate_nb_and_nbl(ndisemu_kernel *k, void *handle, uint16_t context_size,
                                uint16_t context_backfill, MDL *chain, uint32_t data_offset,
                                uint64_t data_length, NET_BUFFER_LIST **out)
{
    NDISEMU_CALL(k, "NdisAllocateNetBufferAndNetBufferList");
    return ndisemu_nb_and_nbl(k, handle, context_size, context_backfill, chain, data_offset,
                              data_length, NDISEMU_ORIGIN_POOL, out);
}

int ndisemu_nb_and_nbl(ndisemu_kernel *k, void *handle, uint16_t context_size,
                       uint16_t context_backfill, MDL *chain, uint32_t data_offset,
                       uint64_t data_length, uint32_t origin, NET_BUFFER_LIST **out)
{
    ndisemu_pool *pool;
    *out = NULL;
    if (ndisemu_check_irql(k) || !(pool = ndisemu_check_pool(k, handle, NDISEMU_KIND_NBL_POOL)))
        return NDISEMU_BUGCHECK;
    if (!pool->allocate_nb || pool->data_size)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_WRONG_POOL,
                                pool->allocate_nb, pool->data_size, NDISEMU_KIND_NBL_POOL, handle,
                                "pool needs fAllocateNetBuffer TRUE and DataSize 0");
    if (check_context_sizes(k, context_size, context_backfill, MEMORY_ALLOCATION_ALIGNMENT) ||
        ndisemu_nb_validate(k, chain, data_offset, data_length))
        return NDISEMU_BUGCHECK;
    *out = carve_nbl(k, pool, context_size, context_backfill, origin);
    if (!*out)
        return ndisemu_alloc_rc(k);
    ndisemu_nb_fill((*out)->FirstNetBuffer, chain, data_offset, data_length);
    return NDISEMU_OK;
}

static const char *nbl_free_rule(uint32_t origin)
{
    switch (origin) {
    case NDISEMU_ORIGIN_CLONE: return "a clone is freed with NdisFreeCloneNetBufferList";
    case NDISEMU_ORIGIN_FWPS_CLONE: case NDISEMU_ORIGIN_DEEP_CLONE:
        return "an FWPS clone is freed with FwpsFreeCloneNetBufferList0";
    case NDISEMU_ORIGIN_FRAGMENT: return "a fragment is freed with NdisFreeFragmentNetBufferList";
    case NDISEMU_ORIGIN_REASSEMBLED:
        return "a reassembled NBL is freed with NdisFreeReassembledNetBufferList";
    case NDISEMU_ORIGIN_FWPS_NBL: return "this NBL is freed with FwpsFreeNetBufferList0";
    case NDISEMU_ORIGIN_BUILT: return "a build_nbl NBL is released with free_built";
    default: return "NBL was not allocated by NdisAllocateNetBuffer(AndNetBuffer)List";
    }
}

/* The slow path of ndisemu_nbl_to_free: which of its checks failed. */
ndisemu_rec *ndisemu_nbl_to_free_slow(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, uint32_t origin)
{
    ndisemu_nbl_private *priv;
    ndisemu_rec *r = ndisemu_check_free(k, nbl, NDISEMU_KIND_NBL, "NET_BUFFER_LIST freed twice");
    if (!r)
        return NULL;
    priv = &r->u.nbl;
    if (priv->away_owner)
        ndisemu_freed_in_flight(k, NDISEMU_KIND_NBL, nbl, priv->away_owner, priv->away_home);
    else if (r->origin != origin)
        ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_WRONG_FREE, r->origin, origin,
                         NDISEMU_KIND_NBL, nbl, nbl_free_rule(r->origin));
    else if (nbl->ChildRefCount != 0)
        ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_CHILDREN_OUTSTANDING,
                         (uint64_t)(int64_t)nbl->ChildRefCount, 0, NDISEMU_KIND_NBL, nbl,
                         "ChildRefCount is not 0: children must be freed first");
    else if (priv->references)
        ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_REFERENCED,
                         (uint64_t)priv->references, 0, NDISEMU_KIND_NBL, nbl,
                         "freed while FwpsReferenceNetBufferList0 references remain");
    else if (priv->context_depth)
        ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_CONTEXT_ORDER,
                         priv->context_depth, 0, NDISEMU_KIND_NBL, nbl,
                         "context from NdisAllocateNetBufferListContext not freed first");
    else
        return r;
    return NULL;
}

/* The preallocated NB of a block goes with it: it must not carry retreat
 * MDLs (they would leak).  Found through the block's records, not through
 * NB links a driver may have changed. */
static int check_inner_retreats(ndisemu_kernel *k, ndisemu_rec *block)
{
    uint32_t id;
    for (id = block->next; id; id = ndisemu_rec_at(k, id)->next) {
        ndisemu_rec *inner = ndisemu_rec_at(k, id);
        if (inner->kind == NDISEMU_KIND_NB && inner->state == NDISEMU_STATE_LIVE &&
            inner->u.nb.retreat_mdls)
            return ndisemu_retreat_leak(k, ndisemu_rec_payload(k, inner));
    }
    return NDISEMU_OK;
}

/* Frees a pool NBL's block (NdisFreeNetBufferList, FwpsFreeNetBufferList0):
 * NBs the caller attached with NdisAllocateNetBuffer are left alone; the
 * preallocated ones are inner objects and go with the block. */
int ndisemu_free_pool_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, uint32_t origin)
{
    ndisemu_rec *r;
    if (!(r = ndisemu_nbl_to_free(k, nbl, origin)))
        return NDISEMU_BUGCHECK;
    if (check_inner_retreats(k, r) || ndisemu_check_release(k, r))
        return NDISEMU_BUGCHECK;
    r->u.nbl.pool->live--;
    ndisemu_block_free(k, nbl, r->u.nbl.pool);
    return NDISEMU_OK;
}

int ndisemu_free_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *nbl)
{
    NDISEMU_CALL(k, "NdisFreeNetBufferList");
    return ndisemu_free_pool_nbl(k, nbl, NDISEMU_ORIGIN_POOL);
}

void ndisemu_nbl_private_release_slow(ndisemu_kernel *k, ndisemu_rec *nbl)
{
    ndisemu_nbl_private *priv = &nbl->u.nbl;
    if (priv->pins_taken)
        ndisemu_unpin_all(k, nbl);
    ndisemu_ids_release(&priv->owned);
    if (priv->context_ops) {
        free(priv->context_ops);
        priv->context_ops = NULL;
    }
    priv->context_depth = 0;
}

int ndisemu_allocate_nbl_context(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, uint16_t size,
                                 uint16_t backfill, uint32_t tag)
{
    ndisemu_nbl_private *priv;
    NET_BUFFER_LIST_CONTEXT *ctx, *fresh;
    ndisemu_rec *r;
    NDISEMU_CALL(k, "NdisAllocateNetBufferListContext");
    if (ndisemu_check_irql(k) || !(r = ndisemu_check_object(k, nbl, NDISEMU_KIND_NBL)))
        return NDISEMU_BUGCHECK;
    /* This call only asks for sizeof(void *) multiples (a documented
     * contradiction with the pool's MEMORY_ALLOCATION_ALIGNMENT). */
    if (check_context_sizes(k, size, backfill, sizeof(void *)))
        return NDISEMU_BUGCHECK;
    priv = &r->u.nbl;
    ctx = nbl->Context;
    if (ctx && !ndisemu_check_object(k, ctx, NDISEMU_KIND_CONTEXT))
        return NDISEMU_BUGCHECK;
    if (priv->context_depth == NDISEMU_CONTEXT_STACK)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER,
                                priv->context_depth, 0, NDISEMU_KIND_NBL, nbl,
                                "more nested context allocations than ndisemu tracks (32)");
    if (!priv->context_ops &&
        !(priv->context_ops = malloc(NDISEMU_CONTEXT_STACK * sizeof *priv->context_ops)))
        return NDISEMU_NO_MEMORY;
    if (ctx && ctx->Offset >= size) {
        ctx->Offset -= size;
        priv->context_ops[priv->context_depth++] = size;
        ndisemu_trace(k, r, NDISEMU_TRACE_CONTEXT_ALLOCATED, size, 0, ctx->Offset);
        return NDISEMU_OK;
    }
    fresh = ndisemu_block_alloc(k, sizeof *fresh + size + backfill, NDISEMU_KIND_CONTEXT, tag,
                                NULL);
    if (!fresh)
        return ndisemu_alloc_rc(k);
    fresh->Next = ctx;
    fresh->Size = (USHORT)(size + backfill);
    fresh->Offset = backfill;
    nbl->Context = fresh;
    priv->context_ops[priv->context_depth++] = size | NDISEMU_CTX_NEW_BLOCK;
    ndisemu_trace(k, r, NDISEMU_TRACE_CONTEXT_ALLOCATED, size, ndisemu_display_of(k, fresh),
                  fresh->Offset);
    return NDISEMU_OK;
}

int ndisemu_free_nbl_context(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, uint16_t size)
{
    ndisemu_nbl_private *priv;
    NET_BUFFER_LIST_CONTEXT *ctx;
    ndisemu_rec *h;
    uint32_t top;
    NDISEMU_CALL(k, "NdisFreeNetBufferListContext");
    if (ndisemu_check_irql(k) || !(h = ndisemu_check_object(k, nbl, NDISEMU_KIND_NBL)))
        return NDISEMU_BUGCHECK;
    priv = &h->u.nbl;
    if (!priv->context_depth)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_CONTEXT_ORDER, size, 0,
                                NDISEMU_KIND_NBL, nbl,
                                "no NdisAllocateNetBufferListContext allocation to free "
                                "(context from the NBL's allocation goes with the NBL)");
    top = priv->context_ops[priv->context_depth - 1];
    if ((top & 0xFFFFu) != size)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_CONTEXT_ORDER, size,
                                top & 0xFFFFu, NDISEMU_KIND_NBL, nbl,
                                "context freed out of order: ContextSize differs from the "
                                "most recent allocation's (frees are LIFO)");
    ctx = nbl->Context;
    h = ndisemu_check_object(k, ctx, NDISEMU_KIND_CONTEXT);
    if (!h)
        return NDISEMU_BUGCHECK;
    if ((uint32_t)ctx->Offset + size > ctx->Size ||
        ((top & NDISEMU_CTX_NEW_BLOCK) && (ndisemu_is_inner(h) || ctx->Size - ctx->Offset != size)))
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_CONTEXT_ORDER, ctx->Offset,
                                ctx->Size, NDISEMU_KIND_CONTEXT, ctx,
                                "context block's Offset/Size no longer match the allocations");
    if (top & NDISEMU_CTX_NEW_BLOCK) {
        nbl->Context = ctx->Next;
        ndisemu_block_free(k, ctx, NULL);
        ndisemu_trace_at(k, nbl, NDISEMU_TRACE_CONTEXT_FREED, size, ndisemu_display_of(k, ctx),
                         0);
    } else {
        ctx->Offset += size;
        ndisemu_trace_at(k, nbl, NDISEMU_TRACE_CONTEXT_FREED, size, 0, ctx->Offset);
    }
    priv->context_depth--;
    return NDISEMU_OK;
}

int ndisemu_pool_from_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, void **out)
{
    *out = NULL;
    NDISEMU_CALL(k, "NdisGetPoolFromNetBufferList");
    if (ndisemu_check_irql(k) || !ndisemu_check_object(k, nbl, NDISEMU_KIND_NBL))
        return NDISEMU_BUGCHECK;
    *out = nbl->NdisPoolHandle;
    return NDISEMU_OK;
}

int ndisemu_pool_from_nb(ndisemu_kernel *k, NET_BUFFER *nb, void **out)
{
    *out = NULL;
    NDISEMU_CALL(k, "NdisGetPoolFromNetBuffer");
    if (ndisemu_check_irql(k) || !ndisemu_check_object(k, nb, NDISEMU_KIND_NB))
        return NDISEMU_BUGCHECK;
    *out = nb->NdisPoolHandle;
    return NDISEMU_OK;
}

/* ---- build_nbl / free_built ------------------------------------------- */

static void release_built(ndisemu_kernel *k, ndisemu_rec *r, const ndisemu_ids *retreat);

/* Records one object build_nbl made, for free_built to release. */
static int own(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, const void *object)
{
    return ndisemu_ids_push(&ndisemu_nbl_private_of(k, nbl)->owned, ndisemu_rec_of(k, object)->id);
}

/* One NB's chain: data_offset bytes of pattern-filled backfill, then the
 * payload, split into MDLs of mdl_sizes[0], [1], ... (the last repeated),
 * each over its own data block.  Every MDL is recorded as the NBL's. */
static int build_chain(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, const uint8_t *payload,
                       uint64_t length, const uint32_t *sizes, uint32_t nsizes,
                       uint32_t data_offset, MDL **out)
{
    uint64_t total = data_offset + length, done = 0;
    uint32_t index = 0;
    MDL *head = NULL, **link = &head;
    *out = NULL;
    while (done < total) {
        uint64_t piece = nsizes ? sizes[index < nsizes ? index : nsizes - 1] : total;
        uint8_t *data;
        MDL *mdl;
        ndisemu_rec *r;
        uint64_t i;
        if (piece > total - done)
            piece = total - done;
        /* only the slack past `piece` is zeroed (or guarded): the pattern
         * and the payload fill the rest (below) */
        data = ndisemu_block_alloc_ex(k, piece, NDISEMU_KIND_DATA, BUILT_TAG, NULL, 0);
        mdl = data ? ndisemu_block_alloc(k, ndisemu_mdl_bytes(
                                             (uint32_t)ndisemu_span_pages(data, piece)),
                                         NDISEMU_KIND_MDL, BUILT_TAG, NULL) : NULL;
        if (mdl && !own(k, nbl, mdl)) {
            ndisemu_block_free(k, mdl, NULL);
            mdl = NULL;
            k->alloc_refused = 0;
        }
        if (!mdl) {
            int rc = ndisemu_alloc_rc(k);
            if (data)
                ndisemu_block_free(k, data, NULL);
            return rc;
        }
        ndisemu_mdl_init_built(k, mdl, data, (uint32_t)piece);
        r = ndisemu_rec_of(k, mdl);
        r->origin = NDISEMU_ORIGIN_BUILT;
        r->u.mdl.length = (uint32_t)piece;
        r->u.mdl.buffer = ndisemu_rec_of(k, data)->id;
        /* backfill gets a non-zero pattern, the rest is the payload */
        for (i = 0; i < piece && done + i < data_offset; i++)
            data[i] = (uint8_t)(0xB0 | ((done + i) & 0x0F));
        if (i < piece)
            memcpy(data + i, payload + (done + i - data_offset), piece - i);
        *link = mdl;
        link = &mdl->Next;
        done += piece;
        index++;
    }
    *out = head;
    return NDISEMU_OK;
}

int ndisemu_build_nbl(ndisemu_kernel *k, void *handle, void *nb_handle, uint32_t count,
                      const uint8_t *const *payloads, const uint64_t *lengths,
                      const uint32_t *mdl_sizes, uint32_t n_mdl_sizes, uint32_t data_offset,
                      NET_BUFFER_LIST **out)
{
    ndisemu_pool *pool, *nb_pool;
    NET_BUFFER_LIST *nbl;
    NET_BUFFER **link;
    uint32_t i, first = 0;
    int rc;

    *out = NULL;
    NDISEMU_CALL(k, "build_nbl");
    if (ndisemu_check_irql(k) || !(pool = ndisemu_check_pool(k, handle, NDISEMU_KIND_NBL_POOL)) ||
        !(nb_pool = ndisemu_check_pool(k, nb_handle, NDISEMU_KIND_NB_POOL)))
        return NDISEMU_BUGCHECK;
    if (pool->data_size || nb_pool->data_size)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_WRONG_POOL, pool->data_size,
                                nb_pool->data_size, NDISEMU_KIND_NBL_POOL, handle,
                                "build_nbl needs pools without a DataSize");
    nbl = carve_nbl(k, pool, 0, 0, NDISEMU_ORIGIN_BUILT);
    if (!nbl)
        return ndisemu_alloc_rc(k);
    /* A pool that preallocates an NB: the first payload goes into it. */
    link = &nbl->FirstNetBuffer;
    if (nbl->FirstNetBuffer) {
        MDL *chain = NULL;
        if (count) {
            rc = build_chain(k, nbl, payloads[0], lengths[0], mdl_sizes, n_mdl_sizes,
                             data_offset, &chain);
            if (rc)
                goto fail;
            ndisemu_nb_fill(nbl->FirstNetBuffer, chain, chain ? data_offset : 0,
                            chain ? lengths[0] : 0);
            first = 1;
            link = &nbl->FirstNetBuffer->Next;
        } else {
            nbl->FirstNetBuffer = NULL;   /* an empty payload list: no NB */
        }
    }
    for (i = first; i < count; i++) {
        MDL *chain = NULL;
        NET_BUFFER *nb;
        ndisemu_rec *r;
        rc = build_chain(k, nbl, payloads[i], lengths[i], mdl_sizes, n_mdl_sizes, data_offset,
                         &chain);
        if (rc)
            goto fail;
        nb = ndisemu_block_alloc(k, ndisemu_nb_object_bytes(0), NDISEMU_KIND_NB, nb_pool->tag,
                                 nb_pool);
        if (nb && !own(k, nbl, nb)) {
            ndisemu_block_free(k, nb, nb_pool);
            nb = NULL;
            k->alloc_refused = 0;
        }
        if (!nb) {
            rc = ndisemu_alloc_rc(k);
            goto fail;
        }
        r = ndisemu_rec_of(k, nb);
        nb->NdisPoolHandle = nb_pool->handle;
        r->origin = NDISEMU_ORIGIN_BUILT;
        r->u.nb.pool = nb_pool;
        nb_pool->live++;
        nb_pool->allocated++;
        ndisemu_nb_fill(nb, chain, chain ? data_offset : 0, chain ? lengths[i] : 0);
        *link = nb;
        link = &nb->Next;
    }
    *out = nbl;
    return NDISEMU_OK;
fail:
    /* Roll back: nothing the helper allocated survives a failed call. */
    {
        ndisemu_ids none = { 0 };
        release_built(k, ndisemu_rec_of(k, nbl), &none);
    }
    return rc;
}

NET_BUFFER_LIST *ndisemu_build_nbl_flat(ndisemu_kernel *k, void *pool, void *nb_pool,
                                        uint32_t count, const uint8_t *data,
                                        const uint64_t *lengths, uint64_t length,
                                        const uint32_t *mdl_sizes, uint32_t n_mdl_sizes,
                                        uint32_t data_offset)
{
    const uint8_t *stack[16] = {NULL}, **payloads = stack;  /* zeroed: count may be 0 */
    uint64_t at = 0;
    NET_BUFFER_LIST *nbl = NULL;
    uint32_t i;
    if (!lengths)
        lengths = &length;             /* one payload */
    if (count > sizeof stack / sizeof *stack &&
        !(payloads = malloc(count * sizeof *payloads))) {
        k->last_rc = NDISEMU_NO_MEMORY;
        return NULL;
    }
    for (i = 0; i < count; i++) {
        payloads[i] = data + at;
        at += lengths[i];
    }
    k->last_rc = ndisemu_build_nbl(k, pool, nb_pool, count, payloads, lengths, mdl_sizes,
                                   n_mdl_sizes, data_offset, &nbl);
    if (payloads != stack)
        free(payloads);
    return nbl;
}

NET_BUFFER_LIST *ndisemu_build_nbl_one(ndisemu_kernel *k, void *pool, const uint8_t *data,
                                       uint64_t length, uint32_t data_offset)
{
    NET_BUFFER_LIST *nbl = NULL;
    k->last_rc = ndisemu_build_nbl(k, pool, k->default_nb_pool, 1, &data, &length, NULL, 0,
                                   data_offset, &nbl);
    return nbl;
}

/* Adds the default-allocator retreat MDLs found on one NB's chain to the
 * objects free_built releases: each live, each once (marked), and the walk
 * never follows a pointer that is not a live MDL. */
static int collect_retreat_mdls(ndisemu_kernel *k, NET_BUFFER *nb, uint32_t mark,
                                ndisemu_ids *out)
{
    int64_t budget = k->stats.live[NDISEMU_KIND_MDL];
    MDL *m;
    for (m = nb->MdlChain; m && budget-- > 0; m = m->Next) {
        ndisemu_rec *r = ndisemu_live_rec(k, m, NDISEMU_KIND_MDL);
        if (!r)
            break;
        if (r->origin == NDISEMU_ORIGIN_RETREAT && !ndisemu_is_inner(r) && r->mark != mark) {
            r->mark = mark;
            if (!ndisemu_ids_push(out, r->id))
                return 0;
        }
    }
    return 1;
}

/* Frees what build_nbl recorded and the retreat MDLs collected: no checks. */
static void release_built(ndisemu_kernel *k, ndisemu_rec *r, const ndisemu_ids *retreat)
{
    ndisemu_ids *owned = &r->u.nbl.owned;
    uint32_t i;
    for (i = 0; i < retreat->count; i++)
        ndisemu_free_owned_mdl(k, ndisemu_rec_at(k, retreat->ids[i]));
    for (i = 0; i < owned->count; i++) {
        ndisemu_rec *o = ndisemu_rec_at(k, owned->ids[i]);
        if (o->kind == NDISEMU_KIND_MDL) {
            ndisemu_free_owned_mdl(k, o);
        } else {
            o->u.nb.pool->live--;
            ndisemu_block_free(k, ndisemu_rec_payload(k, o), o->u.nb.pool);
        }
    }
    r->u.nbl.pool->live--;
    ndisemu_block_free(k, ndisemu_rec_payload(k, r), r->u.nbl.pool);
}

int ndisemu_free_built(ndisemu_kernel *k, NET_BUFFER_LIST *nbl)
{
    ndisemu_ids retreat = { 0 }, *owned;
    ndisemu_rec *r;
    uint32_t i, id, mark;
    int rc = NDISEMU_OK;

    NDISEMU_CALL(k, "free_built");
    if (!(r = ndisemu_nbl_to_free(k, nbl, NDISEMU_ORIGIN_BUILT)))
        return NDISEMU_BUGCHECK;
    owned = &r->u.nbl.owned;
    /* What it releases is what build_nbl recorded, however the caller has
     * relinked NBs and MDLs since: each object once, never one reached
     * through a link.  The retreat MDLs NDIS's default allocator put at the
     * head of its NBs' chains go too (they would leak otherwise). */
    mark = ndisemu_new_mark(k);
    for (i = 0; i < owned->count && rc == NDISEMU_OK; i++) {
        ndisemu_rec *o = ndisemu_rec_at(k, owned->ids[i]);
        if (o->kind == NDISEMU_KIND_NB &&
            !collect_retreat_mdls(k, ndisemu_rec_payload(k, o), mark, &retreat))
            rc = NDISEMU_NO_MEMORY;
    }
    for (id = r->next; id && rc == NDISEMU_OK; id = ndisemu_rec_at(k, id)->next)
        if (ndisemu_rec_at(k, id)->kind == NDISEMU_KIND_NB &&     /* the preallocated NB */
            !collect_retreat_mdls(k, ndisemu_rec_payload(k, ndisemu_rec_at(k, id)), mark,
                                  &retreat))
            rc = NDISEMU_NO_MEMORY;
    /* Nothing changes unless every object may go. */
    for (i = 0; i < owned->count && rc == NDISEMU_OK; i++) {
        ndisemu_rec *o = ndisemu_rec_at(k, owned->ids[i]);
        rc = o->kind == NDISEMU_KIND_MDL ? ndisemu_check_owned_mdl_release(k, o)
                                         : ndisemu_check_release(k, o);
    }
    for (i = 0; i < retreat.count && rc == NDISEMU_OK; i++)
        rc = ndisemu_check_owned_mdl_release(k, ndisemu_rec_at(k, retreat.ids[i]));
    if (rc == NDISEMU_OK)
        rc = ndisemu_check_release(k, r);
    if (rc == NDISEMU_OK)
        release_built(k, r, &retreat);
    ndisemu_ids_release(&retreat);
    return rc;
}
