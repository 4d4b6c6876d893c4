/*
 * mdl.c - memory from NdisAllocateMemoryWithTagPriority, MDLs (NdisAllocateMdl,
 * IoAllocateMdl, MmBuildMdlForNonPagedPool, MmInitializeMdl, ...) and the
 * walks of an MDL chain that every other module shares.
 *
 * An MDL block is the wdm.h header and its PFN array (one entry per page the
 * buffer spans); who allocated it and the ByteCount it was allocated with
 * are in its record, outside the arena.
 */
#include "kernel.h"

uint64_t ndisemu_size_of_mdl(const void *base, uint64_t length)
{
    return sizeof(MDL) + sizeof(PFN_NUMBER) * ndisemu_span_pages(base, length);
}

uint64_t ndisemu_chain_bytes(MDL *chain)
{
    uint64_t total = 0;
    for (; chain; chain = chain->Next)
        total += chain->ByteCount;
    return total;
}

uint64_t ndisemu_chain_copy_out(MDL *mdl, uint32_t in_mdl, uint64_t length, uint8_t *dst)
{
    uint64_t done = 0;
    for (; mdl && done < length; mdl = mdl->Next, in_mdl = 0) {
        uint64_t run = mdl->ByteCount > in_mdl ? mdl->ByteCount - in_mdl : 0;
        if (run > length - done)
            run = length - done;
        memcpy(dst + done, ndisemu_mdl_va(mdl) + in_mdl, run);
        done += run;
    }
    return done;
}

uint64_t ndisemu_chain_copy_in(MDL *mdl, uint32_t in_mdl, uint64_t length, const uint8_t *src)
{
    uint64_t done = 0;
    for (; mdl && done < length; mdl = mdl->Next, in_mdl = 0) {
        uint64_t run = mdl->ByteCount > in_mdl ? mdl->ByteCount - in_mdl : 0;
        if (run > length - done)
            run = length - done;
        memcpy(ndisemu_mdl_va(mdl) + in_mdl, src + done, run);
        done += run;
    }
    return done;
}

int ndisemu_chain_locate(MDL *chain, uint64_t offset, MDL **mdl, uint32_t *in_mdl)
{
    MDL *m = chain, *last = NULL;
    /* Skip whole MDLs, zero-length ones included, until `offset` falls
     * inside one; an offset at the very end stays on the last MDL. */
    while (m) {
        if (offset < m->ByteCount) {
            *mdl = m;
            *in_mdl = (uint32_t)offset;
            return 1;
        }
        offset -= m->ByteCount;
        last = m;
        m = m->Next;
    }
    if (offset == 0 && last) {
        *mdl = last;
        *in_mdl = last->ByteCount;
        return 1;
    }
    *mdl = NULL;
    *in_mdl = 0;
    return offset == 0 && !chain;
}

int ndisemu_allocate_memory(ndisemu_kernel *k, uint64_t length, uint32_t tag, uint32_t kind,
                            void **out)
{
    NDISEMU_CALL(k, "NdisAllocateMemoryWithTagPriority");
    return ndisemu_memory_alloc(k, length, tag, kind, out);
}

int ndisemu_memory_alloc(ndisemu_kernel *k, uint64_t length, uint32_t tag, uint32_t kind,
                         void **out)
{
    *out = NULL;
    if (ndisemu_check_irql(k))
        return NDISEMU_BUGCHECK;
    *out = ndisemu_block_alloc(k, length, (uint16_t)kind, tag, NULL);
    return *out ? NDISEMU_OK : ndisemu_alloc_rc(k);
}

int ndisemu_free_memory(ndisemu_kernel *k, void *va, uint32_t tag, uint32_t kind)
{
    NDISEMU_CALL(k, "NdisFreeMemoryWithTagPriority");
    return ndisemu_memory_free(k, va, tag, 1, kind);
}

int ndisemu_memory_free(ndisemu_kernel *k, void *va, uint32_t tag, int check_tag, uint32_t kind)
{
    ndisemu_rec *r;
    r = ndisemu_check_free(k, va, (int)kind, "memory freed twice");
    if (!r)
        return NDISEMU_BUGCHECK;
    if (ndisemu_is_inner(r))
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_WRONG_FREE, r->tag, 0,
                                kind, va, "buffer belongs to a larger NDIS allocation");
    if (check_tag && tag != r->tag)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_WRONG_FREE, tag, r->tag,
                                kind, va, "tag differs from the tag it was allocated with");
    if (ndisemu_check_release(k, r))
        return NDISEMU_BUGCHECK;
    ndisemu_block_free(k, va, NULL);
    return NDISEMU_OK;
}

int ndisemu_allocate_mdl(ndisemu_kernel *k, void *va, uint32_t length, int origin, MDL **out)
{
    uint64_t pages;
    ndisemu_rec *r;
    MDL *mdl;
    *out = NULL;
    NDISEMU_CALL(k, origin == NDISEMU_ORIGIN_IO_MDL ? "IoAllocateMdl" : "NdisAllocateMdl");
    if (ndisemu_check_irql(k))
        return NDISEMU_BUGCHECK;
    /* NdisAllocateMdl: the buffer must be nonpaged pool.  IoAllocateMdl only
     * describes the range; MmBuildMdlForNonPagedPool checks it later. */
    if (origin == NDISEMU_ORIGIN_NDIS_MDL && length && !ndisemu_range_is_live(k, va, length))
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_RANGE,
                                ndisemu_display(k, va), length, NDISEMU_KIND_MDL, NULL,
                                "VirtualAddress..+Length is not inside live nonpaged pool");
    pages = ndisemu_span_pages(va, length);
    mdl = ndisemu_block_alloc(k, ndisemu_mdl_bytes((uint32_t)pages), NDISEMU_KIND_MDL,
                              0x206c644d /* "Mdl " */, NULL);
    if (!mdl)
        return ndisemu_alloc_rc(k);
    ndisemu_mdl_initialize(mdl, va, length);
    if (origin == NDISEMU_ORIGIN_NDIS_MDL)
        ndisemu_mdl_build(k, mdl);
    else if (origin == NDISEMU_ORIGIN_IO_MDL)
        mdl->MdlFlags = MDL_ALLOCATED_FIXED_SIZE;
    r = ndisemu_rec_of(k, mdl);
    r->origin = (uint32_t)origin;
    r->u.mdl.length = length;
    *out = mdl;
    return NDISEMU_OK;
}

static const char *origin_free_rule(int origin)
{
    switch (origin) {
    case NDISEMU_ORIGIN_NDIS_MDL: return "MDL from NdisAllocateMdl must be freed with NdisFreeMdl";
    case NDISEMU_ORIGIN_IO_MDL: return "MDL from IoAllocateMdl must be freed with IoFreeMdl";
    case NDISEMU_ORIGIN_BUILT: return "MDL belongs to a build_nbl NBL: release it with free_built";
    default: return "MDL belongs to NDIS (an NBL, NB, clone or retreat) and is freed with it";
    }
}

int ndisemu_free_mdl(ndisemu_kernel *k, MDL *mdl, int origin)
{
    ndisemu_rec *r;
    NDISEMU_CALL(k, origin == NDISEMU_ORIGIN_IO_MDL ? "IoFreeMdl" : "NdisFreeMdl");
    r = ndisemu_check_free(k, mdl, NDISEMU_KIND_MDL, "MDL freed twice");
    if (!r)
        return NDISEMU_BUGCHECK;
    if (ndisemu_is_inner(r) || (int)r->origin != origin)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_WRONG_FREE,
                                (uint64_t)origin, r->origin, NDISEMU_KIND_MDL, mdl,
                                origin_free_rule(ndisemu_is_inner(r) ? 0 : (int)r->origin));
    if (origin == NDISEMU_ORIGIN_NDIS_MDL && k->verifier && mdl->ByteCount != r->u.mdl.length)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_MDL_LENGTH, mdl->ByteCount,
                                r->u.mdl.length, NDISEMU_KIND_MDL, mdl,
                                "ByteCount not restored (NdisAdjustMdlLength) before NdisFreeMdl");
    if (ndisemu_check_release(k, r))
        return NDISEMU_BUGCHECK;
    ndisemu_block_free(k, mdl, NULL);
    return NDISEMU_OK;
}

void ndisemu_free_owned_mdl(ndisemu_kernel *k, ndisemu_rec *mdl)
{
    if (mdl->u.mdl.buffer)
        ndisemu_block_free(k, ndisemu_rec_payload(k, ndisemu_rec_at(k, mdl->u.mdl.buffer)), NULL);
    ndisemu_block_free(k, ndisemu_rec_payload(k, mdl), NULL);
}

int ndisemu_check_owned_mdl_release(ndisemu_kernel *k, ndisemu_rec *mdl)
{
    if (ndisemu_check_release(k, mdl))
        return NDISEMU_BUGCHECK;
    return mdl->u.mdl.buffer ? ndisemu_check_release(k, ndisemu_rec_at(k, mdl->u.mdl.buffer))
                             : NDISEMU_OK;
}

int ndisemu_build_mdl_for_nonpaged_pool(ndisemu_kernel *k, MDL *mdl)
{
    ndisemu_rec *h;
    uint64_t pages;
    NDISEMU_CALL(k, "MmBuildMdlForNonPagedPool");
    h = ndisemu_check_object(k, mdl, NDISEMU_KIND_MDL);
    if (!h)
        return NDISEMU_BUGCHECK;
    if (mdl->ByteCount && !ndisemu_range_is_live(k, ndisemu_mdl_va(mdl), mdl->ByteCount))
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_RANGE,
                                ndisemu_display(k, ndisemu_mdl_va(mdl)), mdl->ByteCount,
                                NDISEMU_KIND_MDL, mdl, "MDL does not describe nonpaged pool");
    pages = ndisemu_span_pages(ndisemu_mdl_va(mdl), mdl->ByteCount);
    if (ndisemu_mdl_bytes((uint32_t)pages) > h->size)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER, pages, 0,
                                NDISEMU_KIND_MDL, mdl,
                                "MDL is too small for the pages its buffer spans");
    ndisemu_mdl_build(k, mdl);
    return NDISEMU_OK;
}

int ndisemu_initialize_mdl(ndisemu_kernel *k, MDL *mdl, void *va, uint64_t length)
{
    ndisemu_rec *h;
    NDISEMU_CALL(k, "MmInitializeMdl");
    h = ndisemu_check_object(k, mdl, NDISEMU_KIND_MDL);
    if (!h)
        return NDISEMU_BUGCHECK;
    if (length > UINT32_MAX ||
        ndisemu_mdl_bytes((uint32_t)ndisemu_span_pages(va, length)) > h->size)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER, length, 0,
                                NDISEMU_KIND_MDL, mdl,
                                "MDL storage is smaller than MmSizeOfMdl(BaseVa, Length)");
    ndisemu_mdl_initialize(mdl, va, length);
    h->u.mdl.length = (uint32_t)length;
    return NDISEMU_OK;
}

int ndisemu_system_address(ndisemu_kernel *k, MDL *mdl, void **out)
{
    *out = NULL;
    NDISEMU_CALL(k, "MmGetSystemAddressForMdlSafe");
    if (ndisemu_check_irql(k) || !ndisemu_check_object(k, mdl, NDISEMU_KIND_MDL))
        return NDISEMU_BUGCHECK;
    if (mdl->MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL)) {
        *out = mdl->MappedSystemVa;
        return NDISEMU_OK;
    }
    /* MmMapLockedPagesSpecifyCache: every arena page is already mapped, so a
     * mapping succeeds when the range is live memory; the MDL remembers it. */
    if (mdl->ByteCount && !ndisemu_range_is_live(k, ndisemu_mdl_va(mdl), mdl->ByteCount))
        return NDISEMU_OK;
    if (ndisemu_should_fail(k))
        return NDISEMU_OK;
    mdl->MappedSystemVa = ndisemu_mdl_va(mdl);
    mdl->MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
    *out = mdl->MappedSystemVa;
    return NDISEMU_OK;
}

int ndisemu_adjust_mdl_length(ndisemu_kernel *k, MDL *mdl, uint32_t length)
{
    ndisemu_mdl_private *priv;
    ndisemu_rec *r;
    NDISEMU_CALL(k, "NdisAdjustMdlLength");
    if (!(r = ndisemu_check_object(k, mdl, NDISEMU_KIND_MDL)))
        return NDISEMU_BUGCHECK;
    priv = &r->u.mdl;
    if (k->verifier && length > priv->length)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_MDL_LENGTH, length,
                                priv->length, NDISEMU_KIND_MDL, mdl,
                                "NdisAdjustMdlLength beyond the length given at allocation");
    ndisemu_trace(k, r, NDISEMU_TRACE_MDL_LENGTH, mdl->ByteCount, length, 0);
    mdl->ByteCount = length;
    return NDISEMU_OK;
}
