/*
 * pool.c - NET_BUFFER_LIST and NET_BUFFER pools (NdisAllocateNetBufferListPool,
 * NdisAllocateNetBufferPool and their frees).  A pool is a block in the
 * arena, whose address is the handle and whose payload holds a copy of the
 * caller's parameters (for dumps); the descriptor the core uses is in the
 * block's record, where no driver write reaches it.  Each pool keeps a
 * lookaside list of freed object blocks, which the VERIFY flag (revision 2)
 * replaces with a quarantine, so that freed objects stay inaccessible and
 * writes to them are found (BugCheck 0xD5) when the quarantine is scanned.
 */
#include "kernel.h"

#define POOL_TAG_NBL 0x4c424e4e  /* "NNBL" */
#define POOL_TAG_NB 0x42424e4e   /* "NNBB" */

/* Parameters.Header: NDIS_OBJECT_TYPE_DEFAULT, revision 1 or 2, and a Size
 * at least that revision's.  Otherwise Microsoft's subcode for a malformed
 * NDIS_OBJECT_HEADER (P3 found, P4 expected). */
static int check_header(ndisemu_kernel *k, const NDIS_OBJECT_HEADER *hdr, uint32_t size1,
                        uint32_t size2)
{
    if (hdr->Type != NDIS_OBJECT_TYPE_DEFAULT)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDIS_BUGCHECK_INVALID_OBJECT_HEADER,
                                hdr->Type, NDIS_OBJECT_TYPE_DEFAULT, 0, NULL,
                                "Header.Type is not NDIS_OBJECT_TYPE_DEFAULT");
    if (hdr->Revision != 1 && hdr->Revision != 2)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDIS_BUGCHECK_INVALID_OBJECT_HEADER,
                                hdr->Revision, 1, 0, NULL, "Header.Revision is neither 1 nor 2");
    if (hdr->Size < (hdr->Revision == 1 ? size1 : size2))
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDIS_BUGCHECK_INVALID_OBJECT_HEADER,
                                hdr->Size, hdr->Revision == 1 ? size1 : size2, 0, NULL,
                                "Header.Size is smaller than its revision's size");
    return NDISEMU_OK;
}

/* A new pool block, its payload a copy of the parameters; the descriptor
 * in its record, for the caller to fill. */
static ndisemu_pool *new_pool(ndisemu_kernel *k, const void *params, uint32_t size, int kind,
                              uint32_t tag)
{
    void *handle = ndisemu_block_alloc(k, size, (uint16_t)kind, tag, NULL);
    ndisemu_pool *pool;
    if (!handle)
        return NULL;
    memcpy(handle, params, size);
    pool = &ndisemu_rec_of(k, handle)->u.pool;
    pool->kind = (uint32_t)kind;
    pool->handle = handle;
    return pool;
}

int ndisemu_allocate_nbl_pool(ndisemu_kernel *k, const NET_BUFFER_LIST_POOL_PARAMETERS *params,
                              int is_default, void **out)
{
    const NDIS_OBJECT_HEADER *hdr = &params->Header;
    ndisemu_pool *pool;
    uint32_t flags = 0;

    *out = NULL;
    NDISEMU_CALL(k, "NdisAllocateNetBufferListPool");
    if (ndisemu_check_irql(k))
        return NDISEMU_BUGCHECK;
    if (check_header(k, hdr, NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
                     NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_2))
        return NDISEMU_BUGCHECK;
    if (hdr->Revision == 2)
        flags = params->Flags;
    if (params->DataSize && !params->fAllocateNetBuffer)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER,
                                params->DataSize, 0, NDISEMU_KIND_NBL_POOL, NULL,
                                "DataSize is non-zero but fAllocateNetBuffer is FALSE");
    if (params->ContextSize % MEMORY_ALLOCATION_ALIGNMENT)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER,
                                params->ContextSize, MEMORY_ALLOCATION_ALIGNMENT,
                                NDISEMU_KIND_NBL_POOL, NULL,
                                "ContextSize is not a multiple of MEMORY_ALLOCATION_ALIGNMENT");
    if (flags & ~(uint32_t)NET_BUFFER_LIST_POOL_FLAG_VERIFY)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER, flags, 0,
                                NDISEMU_KIND_NBL_POOL, NULL, "Flags has undefined bits set");
    pool = new_pool(k, params, sizeof *params, NDISEMU_KIND_NBL_POOL,
                    params->PoolTag ? params->PoolTag : POOL_TAG_NBL);
    if (!pool)
        return ndisemu_alloc_rc(k);
    pool->protocol_id = params->ProtocolId;
    pool->allocate_nb = params->fAllocateNetBuffer ? 1 : 0;
    pool->context_size = params->ContextSize;
    pool->tag = params->PoolTag;
    pool->data_size = params->DataSize;
    pool->flags = flags;
    pool->is_default = (uint32_t)is_default;
    pool->object_bytes = ndisemu_nbl_object_bytes(pool, pool->context_size);
    if (is_default)
        k->default_nbl_pool = pool->handle;
    *out = pool->handle;
    return NDISEMU_OK;
}

int ndisemu_allocate_nb_pool(ndisemu_kernel *k, const NET_BUFFER_POOL_PARAMETERS *params,
                             int is_default, void **out)
{
    const NDIS_OBJECT_HEADER *hdr = &params->Header;
    ndisemu_pool *pool;
    uint32_t flags = 0;

    *out = NULL;
    NDISEMU_CALL(k, "NdisAllocateNetBufferPool");
    if (ndisemu_check_irql(k))
        return NDISEMU_BUGCHECK;
    if (check_header(k, hdr, NDIS_SIZEOF_NET_BUFFER_POOL_PARAMETERS_REVISION_1,
                     NDIS_SIZEOF_NET_BUFFER_POOL_PARAMETERS_REVISION_2))
        return NDISEMU_BUGCHECK;
    if (hdr->Revision == 2)
        flags = params->Flags;
    if (flags & ~(uint32_t)NET_BUFFER_POOL_FLAG_VERIFY)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER, flags, 0,
                                NDISEMU_KIND_NB_POOL, NULL, "Flags has undefined bits set");
    pool = new_pool(k, params, sizeof *params, NDISEMU_KIND_NB_POOL,
                    params->PoolTag ? params->PoolTag : POOL_TAG_NB);
    if (!pool)
        return ndisemu_alloc_rc(k);
    pool->tag = params->PoolTag;
    pool->data_size = params->DataSize;
    pool->flags = flags;
    pool->is_default = (uint32_t)is_default;
    pool->object_bytes = ndisemu_nb_object_bytes(params->DataSize);
    if (is_default)
        k->default_nb_pool = pool->handle;
    *out = pool->handle;
    return NDISEMU_OK;
}

static int free_pool(ndisemu_kernel *k, void *handle, int kind)
{
    ndisemu_rec *r = ndisemu_check_free(k, handle, kind, "pool freed twice");
    ndisemu_pool *pool;
    if (!r)
        return NDISEMU_BUGCHECK;
    pool = &r->u.pool;
    if (pool->is_default)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_WRONG_FREE, 0, 0,
                                (uint32_t)kind, handle,
                                "the Kernel's default pool belongs to NDIS, not the caller");
    if (pool->live) {
        /* Microsoft's leaked-NBL subcode, P2 = 1 as its NBL tracker reports
         * it (ndisemu's documented choice), P3 = P4 = 0 as documented. */
        ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDIS_BUGCHECK_LEAKED_NBL, 0, 0, (uint32_t)kind,
                         handle,
                         "pool freed while objects allocated from it are still live");
        k->bug.parameters[1] = 1;
        return NDISEMU_BUGCHECK;
    }
    /* A VERIFY pool's quarantine is scanned at the latest when the pool
     * goes: a write into a freed object since its free is 0xD5. */
    if (ndisemu_scan_pool_quarantine(k, pool))
        return NDISEMU_BUGCHECK;
    ndisemu_release_lookaside(k, pool);
    ndisemu_block_free(k, handle, NULL);
    return NDISEMU_OK;
}

int ndisemu_free_nbl_pool(ndisemu_kernel *k, void *pool)
{
    NDISEMU_CALL(k, "NdisFreeNetBufferListPool");
    return free_pool(k, pool, NDISEMU_KIND_NBL_POOL);
}

int ndisemu_free_nb_pool(ndisemu_kernel *k, void *pool)
{
    NDISEMU_CALL(k, "NdisFreeNetBufferPool");
    return free_pool(k, pool, NDISEMU_KIND_NB_POOL);
}

int ndisemu_pool_info(ndisemu_kernel *k, void *handle, ndisemu_pool *out)
{
    int kind = ndisemu_object_kind(k, handle);
    if (kind != NDISEMU_KIND_NBL_POOL && kind != NDISEMU_KIND_NB_POOL)
        return ndisemu_check_object(k, handle, NDISEMU_KIND_NBL_POOL) ? NDISEMU_OK
                                                                      : NDISEMU_BUGCHECK;
    *out = ndisemu_rec_of(k, handle)->u.pool;
    return NDISEMU_OK;
}
