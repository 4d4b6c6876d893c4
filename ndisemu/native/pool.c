/*
 * pool.c - NET_BUFFER_LIST and NET_BUFFER pools (NdisAllocateNetBufferListPool,
 * NdisAllocateNetBufferPool and their frees).  A pool is a block whose
 * payload is an ndisemu_pool descriptor; the handle is its address.  Each
 * pool keeps a lookaside list of freed object blocks, which the VERIFY flag
 * (revision 2) turns off so that freed objects stay inaccessible.
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

ndisemu_pool *ndisemu_check_pool(ndisemu_kernel *k, void *pool, int kind)
{
    return ndisemu_check_object(k, pool, kind) ? (ndisemu_pool *)pool : NULL;
}

int ndisemu_allocate_nbl_pool(ndisemu_kernel *k, const NET_BUFFER_LIST_POOL_PARAMETERS *params,
                              int is_default, void **out)
{
    const NDIS_OBJECT_HEADER *hdr = &params->Header;
    ndisemu_pool *pool;
    uint32_t flags = 0;

    *out = NULL;
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
    pool = ndisemu_block_alloc(k, sizeof *pool, NDISEMU_KIND_NBL_POOL,
                               params->PoolTag ? params->PoolTag : POOL_TAG_NBL, NULL);
    if (!pool)
        return NDISEMU_NO_MEMORY;
    pool->kind = NDISEMU_KIND_NBL_POOL;
    pool->protocol_id = params->ProtocolId;
    pool->allocate_nb = params->fAllocateNetBuffer ? 1 : 0;
    pool->context_size = params->ContextSize;
    pool->tag = params->PoolTag;
    pool->data_size = params->DataSize;
    pool->flags = flags;
    pool->is_default = (uint32_t)is_default;
    pool->object_bytes = ndisemu_nbl_object_bytes(pool, pool->context_size);
    if (is_default)
        k->default_nbl_pool = pool;
    *out = pool;
    return NDISEMU_OK;
}

int ndisemu_allocate_nb_pool(ndisemu_kernel *k, const NET_BUFFER_POOL_PARAMETERS *params,
                             int is_default, void **out)
{
    const NDIS_OBJECT_HEADER *hdr = &params->Header;
    ndisemu_pool *pool;
    uint32_t flags = 0;

    *out = NULL;
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
    pool = ndisemu_block_alloc(k, sizeof *pool, NDISEMU_KIND_NB_POOL,
                               params->PoolTag ? params->PoolTag : POOL_TAG_NB, NULL);
    if (!pool)
        return NDISEMU_NO_MEMORY;
    pool->kind = NDISEMU_KIND_NB_POOL;
    pool->tag = params->PoolTag;
    pool->data_size = params->DataSize;
    pool->flags = flags;
    pool->is_default = (uint32_t)is_default;
    pool->object_bytes = ndisemu_nb_object_bytes(params->DataSize);
    if (is_default)
        k->default_nb_pool = pool;
    *out = pool;
    return NDISEMU_OK;
}

static int free_pool(ndisemu_kernel *k, void *handle, int kind)
{
    ndisemu_pool *pool;
    if (!ndisemu_check_free(k, handle, kind, "pool freed twice"))
        return NDISEMU_BUGCHECK;
    pool = handle;
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
    ndisemu_release_lookaside(k, pool);
    ndisemu_block_free(k, pool, NULL);
    return NDISEMU_OK;
}

int ndisemu_free_nbl_pool(ndisemu_kernel *k, void *pool)
{
    return free_pool(k, pool, NDISEMU_KIND_NBL_POOL);
}

int ndisemu_free_nb_pool(ndisemu_kernel *k, void *pool)
{
    return free_pool(k, pool, NDISEMU_KIND_NB_POOL);
}

int ndisemu_pool_info(ndisemu_kernel *k, void *handle, ndisemu_pool *out)
{
    int kind = ndisemu_object_kind(k, handle);
    if (kind != NDISEMU_KIND_NBL_POOL && kind != NDISEMU_KIND_NB_POOL)
        return ndisemu_check_object(k, handle, NDISEMU_KIND_NBL_POOL) ? NDISEMU_OK
                                                                      : NDISEMU_BUGCHECK;
    *out = *(ndisemu_pool *)handle;
    return NDISEMU_OK;
}
