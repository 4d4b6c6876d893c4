/*
 * nbl.c - NET_BUFFER_LIST allocation and free (NdisAllocateNetBufferList,
 * NdisAllocateNetBufferAndNetBufferList, NdisFreeNetBufferList), NBL context
 * (NdisAllocate/FreeNetBufferListContext) and the build_nbl helper.
 *
 * An NBL from a pool is one block: the NBL and ndisemu's private record,
 * then, as inner objects with their own headers, the preallocated context,
 * the preallocated NB and, for pools with a DataSize, its MDL and data.
 */
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
    ndisemu_nbl_private *priv;
    ndisemu_header *h;
    uint8_t *cursor;

    /* [UNSPEC] The pool's ContextSize is preallocated context space; a larger
     * request gets a larger block.  Used context = ContextSize, the rest is
     * backfill (Offset). */
    if (context_bytes < pool->context_size)
        context_bytes = pool->context_size;
    nbl = ndisemu_block_alloc(k, ndisemu_nbl_object_bytes(pool, context_bytes), NDISEMU_KIND_NBL,
                              pool->tag, pool);
    if (!nbl)
        return NULL;
    h = ndisemu_header_of(nbl);
    h->size = NDISEMU_NBL_BYTES;
    cursor = (uint8_t *)nbl + ndisemu_align_up(NDISEMU_NBL_BYTES, NDISEMU_ALIGN);
    priv = ndisemu_nbl_private_of(nbl);
    priv->origin = origin;
    priv->pool = pool;
    nbl->NdisPoolHandle = pool;
    /* The pool's ProtocolId goes into the NBL's protocol-id info slot. */
    nbl->NetBufferListInfo[NetBufferListProtocolId] = (void *)(uintptr_t)pool->protocol_id;
    if (context_bytes) {
        NET_BUFFER_LIST_CONTEXT *ctx = ndisemu_inner_object(
            k, h, &cursor, sizeof *ctx + context_bytes, NDISEMU_KIND_CONTEXT, pool->tag);
        ctx->Size = (USHORT)context_bytes;
        ctx->Offset = (USHORT)(context_bytes - context_size);
        nbl->Context = ctx;
    }
    if (pool->allocate_nb) {
        NET_BUFFER *nb = ndisemu_inner_object(k, h, &cursor, NDISEMU_NB_BYTES, NDISEMU_KIND_NB,
                                              pool->tag);
        nb->NdisPoolHandle = pool;
        ndisemu_nb_private_of(nb)->origin = NDISEMU_ORIGIN_PREALLOCATED;
        if (pool->data_size)
            ndisemu_nb_attach_data(k, h, &cursor, nb, pool->data_size, pool->tag);
        nbl->FirstNetBuffer = nb;
    }
    pool->live++;
    return nbl;
}

int ndisemu_allocate_nbl(ndisemu_kernel *k, void *handle, uint16_t context_size,
                         uint16_t context_backfill, NET_BUFFER_LIST **out)
{
    ndisemu_pool *pool;
    *out = NULL;
    if (ndisemu_check_irql(k) || !(pool = ndisemu_check_pool(k, handle, NDISEMU_KIND_NBL_POOL)))
        return NDISEMU_BUGCHECK;
    if (check_context_sizes(k, context_size, context_backfill, MEMORY_ALLOCATION_ALIGNMENT))
        return NDISEMU_BUGCHECK;
    *out = carve_nbl(k, pool, context_size, context_backfill, NDISEMU_ORIGIN_POOL);
    return *out ? NDISEMU_OK : NDISEMU_NO_MEMORY;
}

int ndisemu_allocate_nb_and_nbl(ndisemu_kernel *k, void *handle, uint16_t context_size,
                                uint16_t context_backfill, MDL *chain, uint32_t data_offset,
                                uint64_t data_length, NET_BUFFER_LIST **out)
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
    *out = carve_nbl(k, pool, context_size, context_backfill, NDISEMU_ORIGIN_POOL);
    if (!*out)
        return NDISEMU_NO_MEMORY;
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

/* Checks shared by every NBL free call: live, the right call, no children,
 * no references, no context left from NdisAllocateNetBufferListContext. */
int ndisemu_check_nbl_free(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, uint32_t origin)
{
    ndisemu_nbl_private *priv;
    if (!ndisemu_check_free(k, nbl, NDISEMU_KIND_NBL, "NET_BUFFER_LIST freed twice"))
        return NDISEMU_BUGCHECK;
    priv = ndisemu_nbl_private_of(nbl);
    if (priv->origin != origin)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_WRONG_FREE, priv->origin,
                                origin, NDISEMU_KIND_NBL, nbl, nbl_free_rule(priv->origin));
    if (nbl->ChildRefCount != 0)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_CHILDREN_OUTSTANDING,
                                (uint64_t)(int64_t)nbl->ChildRefCount, 0, NDISEMU_KIND_NBL, nbl,
                                "ChildRefCount is not 0: children must be freed first");
    if (priv->references)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_REFERENCED,
                                (uint64_t)priv->references, 0, NDISEMU_KIND_NBL, nbl,
                                "freed while FwpsReferenceNetBufferList0 references remain");
    if (priv->context_depth)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_CONTEXT_ORDER,
                                priv->context_depth, 0, NDISEMU_KIND_NBL, nbl,
                                "context from NdisAllocateNetBufferListContext not freed first");
    return NDISEMU_OK;
}

int ndisemu_free_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *nbl)
{
    ndisemu_nbl_private *priv;
    ndisemu_header *h;
    NET_BUFFER *nb;
    int64_t limit;
    if (ndisemu_check_nbl_free(k, nbl, NDISEMU_ORIGIN_POOL))
        return NDISEMU_BUGCHECK;
    priv = ndisemu_nbl_private_of(nbl);
    /* The preallocated NB goes with the block: it must not carry retreat MDLs. */
    h = ndisemu_header_of(nbl);
    limit = k->stats.live[NDISEMU_KIND_NB];
    for (nb = nbl->FirstNetBuffer; nb && limit-- > 0; nb = nb->Next) {
        if (ndisemu_object_kind(k, nb) != NDISEMU_KIND_NB)
            break;
        if (ndisemu_header_of(nb)->self - ndisemu_header_of(nb)->outer == h->self &&
            ndisemu_nb_private_of(nb)->retreat_mdls)
            return ndisemu_retreat_leak(k, nb);
    }
    /* NBs the caller attached with NdisAllocateNetBuffer are left alone;
     * the preallocated ones are inner objects and go with the block. */
    ((ndisemu_pool *)priv->pool)->live--;
    ndisemu_block_free(k, nbl, priv->pool);
    return NDISEMU_OK;
}

int ndisemu_allocate_nbl_context(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, uint16_t size,
                                 uint16_t backfill, uint32_t tag)
{
    ndisemu_nbl_private *priv;
    NET_BUFFER_LIST_CONTEXT *ctx, *fresh;
    if (ndisemu_check_irql(k) || !ndisemu_check_object(k, nbl, NDISEMU_KIND_NBL))
        return NDISEMU_BUGCHECK;
    /* This call only asks for sizeof(void *) multiples (a documented
     * contradiction with the pool's MEMORY_ALLOCATION_ALIGNMENT). */
    if (check_context_sizes(k, size, backfill, sizeof(void *)))
        return NDISEMU_BUGCHECK;
    priv = ndisemu_nbl_private_of(nbl);
    ctx = nbl->Context;
    if (ctx && !ndisemu_check_object(k, ctx, NDISEMU_KIND_CONTEXT))
        return NDISEMU_BUGCHECK;
    if (priv->context_depth == NDISEMU_CONTEXT_STACK)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER,
                                priv->context_depth, 0, NDISEMU_KIND_NBL, nbl,
                                "more nested context allocations than ndisemu tracks (32)");
    if (ctx && ctx->Offset >= size) {
        ctx->Offset -= size;
        priv->context_ops[priv->context_depth++] = size;
        return NDISEMU_OK;
    }
    fresh = ndisemu_block_alloc(k, sizeof *fresh + size + backfill, NDISEMU_KIND_CONTEXT, tag,
                                NULL);
    if (!fresh)
        return NDISEMU_NO_MEMORY;
    fresh->Next = ctx;
    fresh->Size = (USHORT)(size + backfill);
    fresh->Offset = backfill;
    nbl->Context = fresh;
    priv->context_ops[priv->context_depth++] = size | NDISEMU_CTX_NEW_BLOCK;
    return NDISEMU_OK;
}

int ndisemu_free_nbl_context(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, uint16_t size)
{
    ndisemu_nbl_private *priv;
    NET_BUFFER_LIST_CONTEXT *ctx;
    ndisemu_header *h;
    uint32_t top;
    if (ndisemu_check_irql(k) || !ndisemu_check_object(k, nbl, NDISEMU_KIND_NBL))
        return NDISEMU_BUGCHECK;
    priv = ndisemu_nbl_private_of(nbl);
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
        ((top & NDISEMU_CTX_NEW_BLOCK) && (h->outer || ctx->Size - ctx->Offset != size)))
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_CONTEXT_ORDER, ctx->Offset,
                                ctx->Size, NDISEMU_KIND_CONTEXT, ctx,
                                "context block's Offset/Size no longer match the allocations");
    if (top & NDISEMU_CTX_NEW_BLOCK) {
        nbl->Context = ctx->Next;
        ndisemu_block_free(k, ctx, NULL);
    } else {
        ctx->Offset += size;
    }
    priv->context_depth--;
    return NDISEMU_OK;
}

int ndisemu_pool_from_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, void **out)
{
    *out = NULL;
    if (ndisemu_check_irql(k) || !ndisemu_check_object(k, nbl, NDISEMU_KIND_NBL))
        return NDISEMU_BUGCHECK;
    *out = nbl->NdisPoolHandle;
    return NDISEMU_OK;
}

int ndisemu_pool_from_nb(ndisemu_kernel *k, NET_BUFFER *nb, void **out)
{
    *out = NULL;
    if (ndisemu_check_irql(k) || !ndisemu_check_object(k, nb, NDISEMU_KIND_NB))
        return NDISEMU_BUGCHECK;
    *out = nb->NdisPoolHandle;
    return NDISEMU_OK;
}

/* ---- build_nbl / free_built ------------------------------------------- */

/* Releases an MDL the helper (or a retreat's default allocator) made, with
 * the data block it owns. */
static void free_owned_mdl(ndisemu_kernel *k, MDL *mdl)
{
    ndisemu_mdl_private *priv = ndisemu_mdl_private_of(mdl);
    if (priv->buffer)
        ndisemu_block_free(k, priv->buffer, NULL);
    ndisemu_block_free(k, mdl, NULL);
}

/* Frees what build_nbl allocated for one NB's chain. */
static void free_built_chain(ndisemu_kernel *k, MDL *chain)
{
    while (chain) {
        MDL *next = chain->Next;
        uint32_t origin = ndisemu_mdl_private_of(chain)->origin;
        if (!ndisemu_header_of(chain)->outer &&
            (origin == NDISEMU_ORIGIN_BUILT || origin == NDISEMU_ORIGIN_RETREAT))
            free_owned_mdl(k, chain);
        chain = next;
    }
}

/* One NB's chain: data_offset bytes of pattern-filled backfill, then the
 * payload, split into MDLs of mdl_sizes[0], [1], ... (the last repeated),
 * each over its own data block. */
static int build_chain(ndisemu_kernel *k, const uint8_t *payload, uint64_t length,
                       const uint32_t *sizes, uint32_t nsizes, uint32_t data_offset, MDL **out)
{
    uint64_t total = data_offset + length, done = 0;
    uint32_t index = 0;
    MDL *head = NULL, **link = &head;
    *out = NULL;
    while (done < total) {
        uint64_t piece = nsizes ? sizes[index < nsizes ? index : nsizes - 1] : total;
        uint8_t *data;
        MDL *mdl;
        uint64_t i;
        if (piece > total - done)
            piece = total - done;
        data = ndisemu_block_alloc(k, piece, NDISEMU_KIND_DATA, BUILT_TAG, NULL);
        mdl = data ? ndisemu_block_alloc(k, ndisemu_mdl_bytes(
                                             (uint32_t)ndisemu_span_pages(data, piece)),
                                         NDISEMU_KIND_MDL, BUILT_TAG, NULL) : NULL;
        if (!mdl) {
            if (data)
                ndisemu_block_free(k, data, NULL);
            free_built_chain(k, head);
            return NDISEMU_NO_MEMORY;
        }
        ndisemu_mdl_init_built(k, mdl, data, (uint32_t)piece);
        ndisemu_mdl_private_of(mdl)->origin = NDISEMU_ORIGIN_BUILT;
        ndisemu_mdl_private_of(mdl)->length = (uint32_t)piece;
        ndisemu_mdl_private_of(mdl)->buffer = data;
        for (i = 0; i < piece; i++) {
            uint64_t at = done + i;
            /* backfill gets a non-zero pattern, the rest is the payload */
            data[i] = at < data_offset ? (uint8_t)(0xB0 | (at & 0x0F)) : payload[at - data_offset];
        }
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
    if (ndisemu_check_irql(k) || !(pool = ndisemu_check_pool(k, handle, NDISEMU_KIND_NBL_POOL)) ||
        !(nb_pool = ndisemu_check_pool(k, nb_handle, NDISEMU_KIND_NB_POOL)))
        return NDISEMU_BUGCHECK;
    if (pool->data_size || nb_pool->data_size)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_WRONG_POOL, pool->data_size,
                                nb_pool->data_size, NDISEMU_KIND_NBL_POOL, handle,
                                "build_nbl needs pools without a DataSize");
    nbl = carve_nbl(k, pool, 0, 0, NDISEMU_ORIGIN_BUILT);
    if (!nbl)
        return NDISEMU_NO_MEMORY;
    /* A pool that preallocates an NB: the first payload goes into it. */
    link = &nbl->FirstNetBuffer;
    if (nbl->FirstNetBuffer) {
        MDL *chain = NULL;
        if (count) {
            rc = build_chain(k, payloads[0], lengths[0], mdl_sizes, n_mdl_sizes, data_offset,
                             &chain);
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
        rc = build_chain(k, payloads[i], lengths[i], mdl_sizes, n_mdl_sizes, data_offset, &chain);
        if (rc)
            goto fail;
        nb = ndisemu_block_alloc(k, ndisemu_nb_object_bytes(0), NDISEMU_KIND_NB, nb_pool->tag,
                                 nb_pool);
        if (!nb) {
            free_built_chain(k, chain);
            rc = NDISEMU_NO_MEMORY;
            goto fail;
        }
        nb->NdisPoolHandle = nb_pool;
        ndisemu_nb_private_of(nb)->origin = NDISEMU_ORIGIN_BUILT;
        ndisemu_nb_private_of(nb)->pool = nb_pool;
        nb_pool->live++;
        ndisemu_nb_fill(nb, chain, chain ? data_offset : 0, chain ? lengths[i] : 0);
        *link = nb;
        link = &nb->Next;
    }
    *out = nbl;
    return NDISEMU_OK;
fail:
    /* Roll back: nothing the helper allocated survives a failed call. */
    ndisemu_nbl_private_of(nbl)->origin = NDISEMU_ORIGIN_BUILT;
    ndisemu_free_built(k, nbl);
    return NDISEMU_NO_MEMORY;
}

int ndisemu_free_built(ndisemu_kernel *k, NET_BUFFER_LIST *nbl)
{
    ndisemu_nbl_private *priv;
    NET_BUFFER *nb;
    if (ndisemu_check_nbl_free(k, nbl, NDISEMU_ORIGIN_BUILT) || ndisemu_check_nbl(k, nbl))
        return NDISEMU_BUGCHECK;
    priv = ndisemu_nbl_private_of(nbl);
    nb = nbl->FirstNetBuffer;
    while (nb) {
        NET_BUFFER *next = nb->Next;
        free_built_chain(k, nb->MdlChain);
        /* the preallocated NB (an inner object) goes with the NBL's block */
        if (!ndisemu_header_of(nb)->outer &&
            ndisemu_nb_private_of(nb)->origin == NDISEMU_ORIGIN_BUILT) {
            ndisemu_pool *nb_pool = ndisemu_nb_private_of(nb)->pool;
            nb_pool->live--;
            ndisemu_block_free(k, nb, nb_pool);
        }
        nb = next;
    }
    ((ndisemu_pool *)priv->pool)->live--;
    ndisemu_block_free(k, nbl, priv->pool);
    return NDISEMU_OK;
}
