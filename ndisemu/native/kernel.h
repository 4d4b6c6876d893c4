/*
 * kernel.h - internals shared by the native core's sources: the emulated
 * machine, the pool header in front of every block, private per-object
 * bookkeeping, and the helpers every call uses to check a pointer before it
 * follows it.
 */
#ifndef NDISEMU_KERNEL_H
#define NDISEMU_KERNEL_H

#include <stdint.h>
#include <string.h>
#include "core.h"

#define NDISEMU_ALIGN 16u              /* MEMORY_ALLOCATION_ALIGNMENT on x64 */
#define NDISEMU_MAGIC 0x4d454e44u      /* "DNEM" */
#define NDISEMU_POISON 0xDD            /* freed payloads are filled with this */
#define NDISEMU_CLASS_LIMIT (256u * 1024u)
#define NDISEMU_CLASSES (NDISEMU_CLASS_LIMIT / NDISEMU_ALIGN + 1)

#define NDISEMU_STATE_LIVE 1
#define NDISEMU_STATE_FREE 2

#define NDISEMU_VERIFIER_FULL 1


/* The pool header in front of every block and of every object inside a
 * composite block (an NBL allocated with its context, NB, MDL and data).
 * `self` is the header's own arena offset: a stray pointer lands on a
 * header only if it was given exactly the right address. */
typedef struct {
    uint32_t magic;
    uint16_t kind;
    uint16_t state;
    uint32_t tag;
    uint32_t size;          /* payload bytes */
    uint64_t self;
    uint32_t span;          /* whole block incl. header; 0 for inner objects */
    uint32_t outer;         /* inner objects: distance back to the block's header */
} ndisemu_header;

_Static_assert(sizeof(ndisemu_header) == 32, "pool header is 32 bytes");

/* Private bookkeeping after the NET_BUFFER_LIST, invisible to drivers. */
#define NDISEMU_CONTEXT_STACK 32
typedef struct {
    uint32_t origin;                 /* NDISEMU_ORIGIN_* */
    uint32_t reserved0;
    void *pool;                      /* the pool it is charged to */
    uint32_t clone_flags;            /* AllocateCloneFlags of a clone */
    int32_t references;              /* FwpsReferenceNetBufferList0 count */
    uint32_t context_depth;
    uint32_t context_ops[NDISEMU_CONTEXT_STACK]; /* sizes; bit 16: new block */
    uint64_t snapshot;               /* derived NBLs: hash of the NB/MDL shape, 0 = none */
    void *nb_pool;                   /* derived NBLs: the pool their NBs are charged to */
    NET_BUFFER_LIST *parent;         /* FWPS clones: the NBL whose ChildRefCount they hold */
    uint32_t nb_count;               /* derived NBLs: NBs charged to nb_pool */
    uint32_t delta;                  /* fragments/reassembly: DataOffsetDelta given */
} ndisemu_nbl_private;

/* Private bookkeeping after the NET_BUFFER. */
typedef struct {
    uint32_t origin;
    uint32_t retreat_mdls;           /* MDLs at the chain head a retreat added */
    void *pool;                      /* the pool it is charged to (NULL: its NBL's) */
    uint64_t reserved;
} ndisemu_nb_private;

/* Private bookkeeping after an MDL's PFN array. */
typedef struct {
    uint32_t origin;
    uint32_t length;                 /* ByteCount at allocation */
    void *buffer;                    /* the data block it owns (build_nbl, retreat) */
} ndisemu_mdl_private;

#define NDISEMU_CTX_NEW_BLOCK 0x10000u

struct ndisemu_kernel {
    uint8_t *base;
    uint64_t size;
    uint64_t top;                    /* first never-carved byte */
    uint64_t display_base;
    uint32_t irql;
    int verifier;
    double fail_rate;
    uint64_t rng;
    uint64_t *classes;               /* free lists by span, offsets + 1 */
    uint64_t large;                  /* free list of spans above the limit */
    ndisemu_stats stats;
    ndisemu_bug bug;
    void *default_nbl_pool;          /* the pools NULL handles stand for */
    void *default_nb_pool;
    int last_rc;                     /* of a call that returns its result */
};

/* -- arena.c ---------------------------------------------------------- */
static inline uint64_t ndisemu_align_up(uint64_t n, uint64_t a)
{
    return (n + a - 1) & ~(a - 1);
}

static inline ndisemu_header *ndisemu_header_of(const void *payload)
{
    return (ndisemu_header *)((uint8_t *)payload - sizeof(ndisemu_header));
}

static inline void *ndisemu_payload(ndisemu_header *h)
{
    return (uint8_t *)h + sizeof(ndisemu_header);
}

/* Allocates a zeroed block with `size` payload bytes; NULL on exhaustion or
 * injected failure.  `pool` (may be NULL) supplies a lookaside list. */
void *ndisemu_block_alloc(ndisemu_kernel *k, uint64_t size, uint16_t kind, uint32_t tag,
                          ndisemu_pool *pool);
/* The same, with the payload zeroed only up to `zero` bytes (a caller that
 * overwrites the rest, as the deep clone's copy does, saves the fill). */
void *ndisemu_block_alloc_ex(ndisemu_kernel *k, uint64_t size, uint16_t kind, uint32_t tag,
                             ndisemu_pool *pool, uint64_t zero);
/* Returns a block to its lookaside/free list, poisoning it under the verifier.
 * `quarantine` keeps it out of reuse (pool VERIFY flag). */
void ndisemu_block_free(ndisemu_kernel *k, void *payload, ndisemu_pool *pool);
/* Carves an inner object inside a composite block: header + payload. */
void *ndisemu_inner_object(ndisemu_kernel *k, ndisemu_header *outer, uint8_t **cursor,
                           uint64_t size, uint16_t kind, uint32_t tag);
static inline uint64_t ndisemu_block_span(uint64_t size)
{
    return sizeof(ndisemu_header) + ndisemu_align_up(size ? size : 1, NDISEMU_ALIGN);
}
/* Bytes a composite block needs for an inner object of `size` bytes. */
static inline uint64_t ndisemu_inner_span(uint64_t size)
{
    return sizeof(ndisemu_header) + ndisemu_align_up(size, NDISEMU_ALIGN);
}
int ndisemu_should_fail(ndisemu_kernel *k);
void ndisemu_release_lookaside(ndisemu_kernel *k, ndisemu_pool *pool);
/* The live block whose payload contains p, or NULL. */
ndisemu_header *ndisemu_block_containing(ndisemu_kernel *k, const void *p);

/* -- verifier.c -------------------------------------------------------- */
/* Records a bug check in k->bug and returns NDISEMU_BUGCHECK. */
int ndisemu_bugcheck(ndisemu_kernel *k, uint32_t code, uint64_t p1, uint64_t p3, uint64_t p4,
                     uint32_t kind, const void *object, const char *rule);
/* The header of a live object of `kind` at p, or NULL with k->bug set.  The
 * fast path is inline (it runs several times per call); the slow path works
 * out what is wrong and records the bug check. */
ndisemu_header *ndisemu_check_object_slow(ndisemu_kernel *k, const void *p, int kind);
static inline ndisemu_header *ndisemu_live_header(ndisemu_kernel *k, const void *p, int kind)
{
    uintptr_t a = (uintptr_t)p, offset = a - (uintptr_t)k->base - sizeof(ndisemu_header);
    ndisemu_header *h;
    /* offset wraps around for a pointer below the arena's first header */
    if (offset >= k->top || (a & (NDISEMU_ALIGN - 1)))
        return NULL;
    h = (ndisemu_header *)(a - sizeof(ndisemu_header));
    if (h->magic != NDISEMU_MAGIC || h->self != offset || h->kind != kind ||
        h->state != NDISEMU_STATE_LIVE)
        return NULL;
    if (h->outer && (h->outer > h->self ||
                     ((ndisemu_header *)((uint8_t *)h - h->outer))->state != NDISEMU_STATE_LIVE))
        return NULL;
    return h;
}
static inline ndisemu_header *ndisemu_check_object(ndisemu_kernel *k, const void *p, int kind)
{
    ndisemu_header *h = ndisemu_live_header(k, p, kind);
    return h ? h : ndisemu_check_object_slow(k, p, kind);
}
int ndisemu_irql_bug(ndisemu_kernel *k);
static inline int ndisemu_check_irql(ndisemu_kernel *k)
{
    return k->irql <= DISPATCH_LEVEL ? NDISEMU_OK : ndisemu_irql_bug(k);
}
/* What every free call checks first: the IRQL, then the object, a freed
 * one being a double free, `twice` naming it ("NET_BUFFER freed twice"). */
ndisemu_header *ndisemu_check_free(ndisemu_kernel *k, const void *p, int kind,
                                   const char *twice);
/* Checks that an MDL chain can be walked and its bytes read: every MDL live,
 * every described range inside live memory.  Returns the MDL count or -1. */
int64_t ndisemu_check_chain(ndisemu_kernel *k, MDL *chain, const void *owner);

/* -- mdl.c ------------------------------------------------------------- */
static inline uint8_t *ndisemu_mdl_va(const MDL *m)
{
    return (uint8_t *)m->StartVa + m->ByteOffset;
}
static inline uint64_t ndisemu_span_pages(const void *va, uint64_t length)
{
    return (((uintptr_t)va & 0xFFFu) + length + 0xFFFu) >> 12;
}
/* The private records follow the public struct (NB, NBL) or end the block
 * (MDL, after its PFN array). */
static inline ndisemu_mdl_private *ndisemu_mdl_private_of(MDL *mdl)
{
    return (ndisemu_mdl_private *)((uint8_t *)mdl + ndisemu_header_of(mdl)->size -
                                   sizeof(ndisemu_mdl_private));
}
static inline uint64_t ndisemu_mdl_bytes(uint32_t pages)
{
    return sizeof(MDL) + (uint64_t)pages * sizeof(PFN_NUMBER) + sizeof(ndisemu_mdl_private);
}
static inline uint64_t ndisemu_display_of(ndisemu_kernel *k, const void *p)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)k->base;
    return a >= b && a - b <= k->size ? k->display_base + (a - b) : (uint64_t)a;
}
/* MmInitializeMdl: Next, Size, MdlFlags, StartVa, ByteOffset, ByteCount. */
static inline void ndisemu_mdl_initialize(MDL *mdl, void *va, uint64_t length)
{
    mdl->Next = NULL;
    mdl->Size = (CSHORT)(sizeof(MDL) + sizeof(PFN_NUMBER) * ndisemu_span_pages(va, length));
    mdl->MdlFlags = 0;
    mdl->StartVa = (void *)((uintptr_t)va & ~(uintptr_t)0xFFF);
    mdl->ByteOffset = (ULONG)((uintptr_t)va & 0xFFF);
    mdl->ByteCount = (ULONG)length;
}
/* MmBuildMdlForNonPagedPool: PFNs, MDL_SOURCE_IS_NONPAGED_POOL and the
 * mapped address.  PFNs are page numbers of display addresses, so the bytes
 * of an MDL are the same run to run. */
static inline void ndisemu_mdl_build(ndisemu_kernel *k, MDL *mdl)
{
    PFN_NUMBER *pfn = (PFN_NUMBER *)(mdl + 1);
    uint64_t pages = ndisemu_span_pages(ndisemu_mdl_va(mdl), mdl->ByteCount), i;
    uint64_t first = ndisemu_display_of(k, mdl->StartVa) >> 12;
    for (i = 0; i < pages; i++)
        pfn[i] = first + i;
    mdl->MdlFlags |= MDL_SOURCE_IS_NONPAGED_POOL;
    mdl->MappedSystemVa = ndisemu_mdl_va(mdl);
}
/* Fills in an MDL header as MmInitializeMdl + MmBuildMdlForNonPagedPool. */
static inline void ndisemu_mdl_init_built(ndisemu_kernel *k, MDL *mdl, void *va, uint32_t length)
{
    ndisemu_mdl_initialize(mdl, va, length);
    ndisemu_mdl_build(k, mdl);
}
/* Copies `length` bytes starting at byte `in_mdl` of `mdl` and running on
 * through the chain, one memcpy per MDL run; returns the bytes copied. */
uint64_t ndisemu_chain_copy_out(MDL *mdl, uint32_t in_mdl, uint64_t length, uint8_t *dst);
uint64_t ndisemu_chain_copy_in(MDL *mdl, uint32_t in_mdl, uint64_t length, const uint8_t *src);
/* Locates byte `offset` of a chain: the MDL holding it and the offset in it.
 * An offset equal to the chain's total lands at the end of the last MDL. */
int ndisemu_chain_locate(MDL *chain, uint64_t offset, MDL **mdl, uint32_t *in_mdl);
uint64_t ndisemu_chain_bytes(MDL *chain);

/* -- netbuffer.c / nbl.c ----------------------------------------------- */
static inline ndisemu_nb_private *ndisemu_nb_private_of(NET_BUFFER *nb)
{
    return (ndisemu_nb_private *)(nb + 1);
}
static inline ndisemu_nbl_private *ndisemu_nbl_private_of(NET_BUFFER_LIST *nbl)
{
    return (ndisemu_nbl_private *)(nbl + 1);
}
/* Validates MdlChain/DataOffset/DataLength for a new NB: pointer checks and
 * lengths within the chain.  Changes nothing. */
int ndisemu_nb_validate(ndisemu_kernel *k, MDL *chain, uint32_t data_offset,
                        uint64_t data_length);
/* Fills the NB's data-space fields (already validated). */
void ndisemu_nb_fill(NET_BUFFER *nb, MDL *chain, uint32_t data_offset, uint64_t data_length);
uint64_t ndisemu_nbl_object_bytes(const ndisemu_pool *pool, uint32_t context_bytes);
uint64_t ndisemu_nb_object_bytes(uint32_t data_size);
uint64_t ndisemu_nb_data_parts(uint32_t data_size);
/* Carves an MDL and a data buffer of data_size bytes as inner objects of
 * `outer` at *cursor and points `nb` at them (DataOffset 0, DataLength all). */
void ndisemu_nb_attach_data(ndisemu_kernel *k, ndisemu_header *outer, uint8_t **cursor,
                            NET_BUFFER *nb, uint32_t data_size, uint32_t tag);
ndisemu_pool *ndisemu_check_pool(ndisemu_kernel *k, void *pool, int kind);
/* BugCheck for freeing an NB that still holds retreat-allocated MDLs. */
int ndisemu_retreat_leak(ndisemu_kernel *k, NET_BUFFER *nb);
/* Checks shared by every NBL free call (see nbl.c). */
int ndisemu_check_nbl_free(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, uint32_t origin);

#define NDISEMU_NBL_BYTES (sizeof(NET_BUFFER_LIST) + sizeof(ndisemu_nbl_private))
#define NDISEMU_NB_BYTES (sizeof(NET_BUFFER) + sizeof(ndisemu_nb_private))

#endif
