/*
 * netbuffer.c - NET_BUFFER allocation and free (NdisAllocateNetBuffer,
 * NdisAllocateNetBufferMdlAndData, NdisFreeNetBuffer),
 * NdisAdjustNetBufferCurrentMdl and reading an NB's used data.
 */
#include "kernel.h"

static uint32_t max_pages(uint32_t data_size)
{
    return (data_size + 0xFFFu) / 0x1000u + 1u;  /* any page offset */
}

uint64_t ndisemu_nb_data_parts(uint32_t data_size)
{
    if (!data_size)
        return 0;
    return ndisemu_inner_span(ndisemu_mdl_bytes(max_pages(data_size))) +
           ndisemu_inner_span(data_size);
}

uint64_t ndisemu_nb_object_bytes(uint32_t data_size)
{
    return ndisemu_align_up(NDISEMU_NB_BYTES, NDISEMU_ALIGN) + ndisemu_nb_data_parts(data_size);
}

void ndisemu_nb_attach_data(ndisemu_kernel *k, void *block, uint8_t **cursor,
                            NET_BUFFER *nb, uint32_t data_size, uint32_t tag)
{
    MDL *mdl = ndisemu_inner_object(k, block, cursor, ndisemu_mdl_bytes(max_pages(data_size)),
                                    NDISEMU_KIND_MDL, tag);
    uint8_t *data = ndisemu_inner_object(k, block, cursor, data_size, NDISEMU_KIND_DATA, tag);
    ndisemu_rec *r = ndisemu_rec_of(k, mdl);
    ndisemu_mdl_init_built(k, mdl, data, data_size);
    r->origin = NDISEMU_ORIGIN_PREALLOCATED;
    r->u.mdl.length = data_size;
    /* the data is an inner object: it goes with the block, not with the MDL */
    /* [UNSPEC] initial data space of an NB that comes with data: ndisemu
     * makes the whole buffer used data (DataOffset 0, DataLength DataSize). */
    ndisemu_nb_fill(nb, mdl, 0, data_size);
}

int ndisemu_nb_validate(ndisemu_kernel *k, MDL *chain, uint32_t data_offset,
                        uint64_t data_length)
{
    uint64_t total;
    if (!chain) {
        if (data_offset || data_length)
            return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER,
                                    data_offset, data_length, NDISEMU_KIND_NB, NULL,
                                    "MdlChain is NULL but DataOffset/DataLength are not 0");
        return NDISEMU_OK;
    }
    if (ndisemu_check_chain(k, chain, NULL) < 0)
        return NDISEMU_BUGCHECK;
    total = ndisemu_chain_bytes(chain);
    if ((uint64_t)data_offset + data_length > total)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER,
                                (uint64_t)data_offset + data_length, total, NDISEMU_KIND_MDL,
                                chain, "DataOffset + DataLength exceeds the MDL chain's bytes");
    return NDISEMU_OK;
}

void ndisemu_nb_fill(NET_BUFFER *nb, MDL *chain, uint32_t data_offset, uint64_t data_length)
{
    MDL *current = NULL;
    uint32_t in_mdl = 0;
    nb->MdlChain = chain;
    nb->DataOffset = data_offset;
    nb->stDataLength = 0;
    nb->DataLength = (ULONG)data_length;
    if (chain)
        ndisemu_chain_locate(chain, data_offset, &current, &in_mdl);
    nb->CurrentMdl = current;
    nb->CurrentMdlOffset = in_mdl;
}

static NET_BUFFER *carve_nb(ndisemu_kernel *k, ndisemu_pool *pool, uint32_t origin)
{
    ndisemu_rec *r = ndisemu_alloc_composite(k, ndisemu_nb_object_bytes(pool->data_size),
                                             NDISEMU_NB_BYTES, NDISEMU_KIND_NB, pool->tag,
                                             pool, UINT64_MAX);
    NET_BUFFER *nb;
    uint8_t *cursor;
    if (!r)
        return NULL;
    nb = ndisemu_rec_payload(k, r);
    cursor = (uint8_t *)nb + ndisemu_align_up(NDISEMU_NB_BYTES, NDISEMU_ALIGN);
    nb->NdisPoolHandle = pool->handle;
    r->origin = origin;
    r->u.nb.pool = pool;
    if (pool->data_size)
        ndisemu_nb_attach_data(k, nb, &cursor, nb, pool->data_size, pool->tag);
    pool->live++;
    pool->allocated++;
    return nb;
}

int ndisemu_allocate_nb(ndisemu_kernel *k, void *handle, MDL *chain, uint32_t data_offset,
                        uint64_t data_length, NET_BUFFER **out)
{
    ndisemu_pool *pool;
    *out = NULL;
    NDISEMU_CALL(k, "NdisAllocateNetBuffer");
    if (ndisemu_check_irql(k) || !(pool = ndisemu_check_pool(k, handle, NDISEMU_KIND_NB_POOL)))
        return NDISEMU_BUGCHECK;
    if (pool->data_size)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_WRONG_POOL,
                                pool->data_size, 0, NDISEMU_KIND_NB_POOL, handle,
                                "pool has a DataSize: allocate with NdisAllocateNetBufferMdlAndData");
    if (ndisemu_nb_validate(k, chain, data_offset, data_length))
        return NDISEMU_BUGCHECK;
    *out = carve_nb(k, pool, NDISEMU_ORIGIN_POOL);
    if (!*out)
        return ndisemu_alloc_rc(k);
    ndisemu_nb_fill(*out, chain, data_offset, data_length);
    return NDISEMU_OK;
}

int ndisemu_allocate_nb_mdl_and_data(ndisemu_kernel *k, void *handle, NET_BUFFER **out)
{
    ndisemu_pool *pool;
    *out = NULL;
    NDISEMU_CALL(k, "NdisAllocateNetBufferMdlAndData");
    if (ndisemu_check_irql(k) || !(pool = ndisemu_check_pool(k, handle, NDISEMU_KIND_NB_POOL)))
        return NDISEMU_BUGCHECK;
    if (!pool->data_size)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_WRONG_POOL, 0, 0,
                                NDISEMU_KIND_NB_POOL, handle,
                                "pool was created with DataSize 0: no data to allocate");
    *out = carve_nb(k, pool, NDISEMU_ORIGIN_MDL_AND_DATA);
    return *out ? NDISEMU_OK : ndisemu_alloc_rc(k);
}

static const char *nb_free_rule(uint32_t origin)
{
    switch (origin) {
    case NDISEMU_ORIGIN_PREALLOCATED:
        return "NB was preallocated with its NBL: NdisFreeNetBufferList frees it";
    case NDISEMU_ORIGIN_CLONE: case NDISEMU_ORIGIN_FWPS_CLONE: case NDISEMU_ORIGIN_DEEP_CLONE:
        return "NB belongs to a clone and is freed with the clone's NBL";
    case NDISEMU_ORIGIN_FRAGMENT: case NDISEMU_ORIGIN_REASSEMBLED:
        return "NB belongs to a fragment/reassembled NBL and is freed with it";
    default:
        return "NB was not allocated with NdisAllocateNetBuffer(MdlAndData)";
    }
}

int ndisemu_free_nb(ndisemu_kernel *k, NET_BUFFER *nb)
{
    ndisemu_rec *r;
    NDISEMU_CALL(k, "NdisFreeNetBuffer");
    r = ndisemu_check_free(k, nb, NDISEMU_KIND_NB, "NET_BUFFER freed twice");
    if (!r)
        return NDISEMU_BUGCHECK;
    if (r->u.nb.away_owner)
        return ndisemu_freed_in_flight(k, NDISEMU_KIND_NB, nb, r->u.nb.away_owner,
                                       r->u.nb.away_home);
    if (ndisemu_is_inner(r) || (r->origin != NDISEMU_ORIGIN_POOL &&
                                r->origin != NDISEMU_ORIGIN_MDL_AND_DATA))
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_WRONG_FREE, r->origin, 0,
                                NDISEMU_KIND_NB, nb, nb_free_rule(r->origin));
    if (r->u.nb.retreat_mdls)
        return ndisemu_retreat_leak(k, nb);
    if (ndisemu_check_release(k, r))
        return NDISEMU_BUGCHECK;
    r->u.nb.pool->live--;
    ndisemu_block_free(k, nb, r->u.nb.pool);
    return NDISEMU_OK;
}

/* Freeing an NB whose chain still starts with MDLs a retreat allocated would
 * leak them (NDIS frees those only in an advance): refuse, as the verifier's
 * leak check would at unload. */
int ndisemu_retreat_leak(ndisemu_kernel *k, NET_BUFFER *nb)
{
    return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_WRONG_FREE,
                            ndisemu_nb_private_of(k, nb)->retreat_mdls, 0, NDISEMU_KIND_NB, nb,
                            "NB still holds MDLs a retreat allocated: advance it back with "
                            "FreeMdl before freeing (they would leak)");
}

int ndisemu_adjust_current_mdl(ndisemu_kernel *k, NET_BUFFER *nb)
{
    MDL *current;
    uint32_t in_mdl;
    NDISEMU_CALL(k, "NdisAdjustNetBufferCurrentMdl");
    if (ndisemu_check_irql(k) || !ndisemu_check_object(k, nb, NDISEMU_KIND_NB))
        return NDISEMU_BUGCHECK;
    if (ndisemu_check_chain(k, nb->MdlChain, nb) < 0)
        return NDISEMU_BUGCHECK;
    if (!ndisemu_chain_locate(nb->MdlChain, nb->DataOffset, &current, &in_mdl))
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_NB_INCONSISTENT,
                                nb->DataOffset, ndisemu_chain_bytes(nb->MdlChain),
                                NDISEMU_KIND_NB, nb,
                                "DataOffset: beyond the bytes the MDL chain describes");
    nb->CurrentMdl = current;
    nb->CurrentMdlOffset = in_mdl;
    return NDISEMU_OK;
}

int ndisemu_read_nb(ndisemu_kernel *k, NET_BUFFER *nb, uint64_t offset, uint64_t length,
                    uint8_t *out)
{
    MDL *mdl;
    uint32_t in_mdl;
    if (ndisemu_check_nb(k, nb))
        return NDISEMU_BUGCHECK;
    if (offset + length > nb->DataLength)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER,
                                offset + length, nb->DataLength, NDISEMU_KIND_NB, nb,
                                "read beyond DataLength");
    if (!length)
        return NDISEMU_OK;
    ndisemu_chain_locate(nb->MdlChain, nb->DataOffset + offset, &mdl, &in_mdl);
    ndisemu_chain_copy_out(mdl, in_mdl, length, out);
    return NDISEMU_OK;
}

void ndisemu_set_scratch(ndisemu_kernel *k, uint8_t *data, uint64_t capacity, uint64_t *lengths,
                         uint64_t max_nbs)
{
    k->out_data = data;
    k->out_capacity = capacity;
    k->out_lengths = lengths;
    k->out_max_nbs = max_nbs;
}

int64_t ndisemu_nbl_bytes(ndisemu_kernel *k, NET_BUFFER_LIST *nbl)
{
    uint64_t count = 0, total = 0, at = 0, i = 0;
    uint64_t *lengths = k->out_lengths;
    NET_BUFFER *nb;
    /* the full consistency check: every NB, chain and described range */
    if (ndisemu_check_nbl(k, nbl))
        return NDISEMU_BUGCHECK;
    for (nb = nbl->FirstNetBuffer; nb; nb = nb->Next) {
        count++;
        total += nb->DataLength;
    }
    if (count > k->out_max_nbs || total > k->out_capacity || k->out_max_nbs < 2) {
        if (lengths && k->out_max_nbs >= 2) {
            lengths[0] = count;        /* what the caller's buffers must hold */
            lengths[1] = total;
        }
        return NDISEMU_NO_MEMORY;
    }
    for (nb = nbl->FirstNetBuffer; nb; nb = nb->Next, i++) {
        lengths[i] = nb->DataLength;
        if (nb->DataLength) {
            MDL *mdl;
            uint32_t in_mdl;
            ndisemu_chain_locate(nb->MdlChain, nb->DataOffset, &mdl, &in_mdl);
            at += ndisemu_chain_copy_out(mdl, in_mdl, nb->DataLength, k->out_data + at);
        }
    }
    return (int64_t)count;
}
