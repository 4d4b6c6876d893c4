/*
 * kernel.h - internals shared by the native core's sources: the emulated
 * machine, the allocation records it keeps for every block and object, and
 * the helpers every call uses to check a pointer before it follows it.
 *
 * Trust: a driver may write anything into the arena (its own objects, a
 * neighbour's pool header through an overrun, a freed block through a stale
 * pointer).  So nothing the core trusts lives there.  Every allocation has a
 * record (ndisemu_rec) in memory the core owns; the 32-byte pool header in
 * front of each object in the arena is only an imprint of it, for people
 * reading dumps, and is never read back.  Free lists, lookaside lists, pool
 * descriptors and the per-object bookkeeping (origin, owner pool, parent,
 * retreat counts) are records too.  A pointer is mapped to its record
 * through a table indexed by arena granule, and the record must agree
 * (offset, kind, state) before the pointer is followed.
 */
#ifndef NDISEMU_KERNEL_H
#define NDISEMU_KERNEL_H

#include <stdint.h>
#include <string.h>
#include "core.h"

#define NDISEMU_ALIGN 16u              /* MEMORY_ALLOCATION_ALIGNMENT on x64 */
#define NDISEMU_GRANULE_SHIFT 4        /* one map entry per 16 arena bytes */
#define NDISEMU_MAGIC 0x4d454e44u      /* "DNEM", in the header imprint */
#define NDISEMU_POISON 0xDD            /* freed payloads are filled with this */
#define NDISEMU_GUARD 0xFD             /* slack past a buffer's requested length */
#define NDISEMU_CLASS_LIMIT (256u * 1024u)
#define NDISEMU_CLASSES (NDISEMU_CLASS_LIMIT / NDISEMU_ALIGN + 1)
#define NDISEMU_HEADER 32u             /* bytes of the header imprint */

#define NDISEMU_STATE_LIVE 1
#define NDISEMU_STATE_FREE 2

/* ndisemu_rec.flags */
#define NDISEMU_REC_POISONED 1u        /* payload poisoned when freed: check at reuse */
#define NDISEMU_REC_GUARDED 2u         /* slack past `size` holds NDISEMU_GUARD */
#define NDISEMU_REC_RETIRED 4u         /* corruption reported: never reused */
#define NDISEMU_REC_WATCHED 8u         /* blocks: it or an inner object is pinned or
                                          guarded, so a free must look (check_release) */
#define NDISEMU_REC_IMPRINTED 16u      /* blocks: reused whole, the inner objects' header
                                          imprints of its last life are still there */

#define NDISEMU_VERIFIER_FULL 1

/* The header imprint written in front of every object in the arena: what a
 * person reading a dump sees.  The core writes it and never reads it. */
typedef struct {
    uint32_t magic;
    uint16_t kind;
    uint16_t state;
    uint32_t tag;
    uint32_t size;          /* payload bytes */
    uint64_t self;          /* the header's own arena offset */
    uint32_t span;          /* whole block incl. header; 0 for inner objects */
    uint32_t outer;         /* inner objects: distance back to the block's header */
} ndisemu_header;

_Static_assert(sizeof(ndisemu_header) == NDISEMU_HEADER, "pool header is 32 bytes");

/* Bookkeeping of an NBL, invisible to drivers. */
#define NDISEMU_CONTEXT_STACK 32
typedef struct {
    ndisemu_pool *pool;              /* the pool it is charged to */
    ndisemu_pool *nb_pool;           /* derived NBLs: the pool their NBs are charged to */
    NET_BUFFER_LIST *parent;         /* FWPS clones: the NBL whose ChildRefCount they hold */
    uint64_t snapshot;               /* derived NBLs: hash of the NB/MDL shape, 0 = none */
    uint32_t clone_flags;            /* AllocateCloneFlags of a clone */
    int32_t references;              /* FwpsReferenceNetBufferList0 count */
    uint32_t nb_count;               /* derived NBLs: NBs charged to nb_pool */
    uint32_t delta;                  /* fragments/reassembly: DataOffsetDelta given */
    uint32_t context_depth;
    uint16_t away_owner;             /* in flight in the binding: the owning layer's */
    uint16_t away_home;              /* position + 1, and its home's; 0 = at home */
    uint32_t *context_ops;           /* sizes; bit 16: new block (allocated on first use) */
    ndisemu_ids owned;               /* build_nbl: the NBs and MDLs it made */
    ndisemu_ids pinned;              /* derived NBLs: MDLs and buffers they share (their
                                        own partial MDLs record what they pin) */
    uint32_t pins_taken;             /* derived NBLs: it pinned something */
} ndisemu_nbl_private;

/* Bookkeeping of a NET_BUFFER. */
typedef struct {
    ndisemu_pool *pool;              /* the pool it is charged to (NULL: its NBL's) */
    uint32_t retreat_mdls;           /* MDLs at the chain head a retreat added */
    uint16_t away_owner;             /* as for NBLs: left home on an NBL in flight */
    uint16_t away_home;
} ndisemu_nb_private;

/* Bookkeeping of an MDL. */
typedef struct {
    uint32_t length;                 /* ByteCount at allocation */
    uint32_t buffer;                 /* record id of the data block it owns (build_nbl,
                                        retreat), 0 if none */
    uint32_t described;              /* the block its bytes lie in, as the last chain
                                        check found it (valid within that call) */
    uint32_t pinned;                 /* a derived NBL's partial MDL: the block it pins */
} ndisemu_mdl_private;

#define NDISEMU_CTX_NEW_BLOCK 0x10000u
/* Bytes of the per-kind part an inner object's record uses (NB, MDL). */
#define NDISEMU_INNER_PRIVATE (sizeof(ndisemu_nb_private) > sizeof(ndisemu_mdl_private) \
                               ? sizeof(ndisemu_nb_private) : sizeof(ndisemu_mdl_private))

/* The allocation record of one block or of one object inside a composite
 * block (an NBL allocated with its context, NB, MDL and data).  Records of
 * blocks live as long as the arena (a freed block keeps its record, so a
 * stale pointer is told apart from a wild one); records of inner objects are
 * released when their block is handed out again. */
typedef struct ndisemu_rec {
    uint64_t offset;                 /* arena offset of the object's header */
    uint32_t id;
    uint32_t size;                   /* payload bytes (the object's own, for blocks
                                        that hold inner objects) */
    uint32_t span;                   /* blocks: header + payload; inner objects: 0 */
    uint32_t block;                  /* the enclosing block's id (own id for a block) */
    uint32_t next;                   /* blocks: first inner object; inner: the next one */
    uint32_t origin;                 /* NDISEMU_ORIGIN_* */
    uint16_t kind;
    uint8_t state;
    uint8_t flags;                   /* NDISEMU_REC_* */
    uint32_t tag;
    uint32_t pins;                   /* live derived NBLs describing these bytes */
    uint32_t pinned_by;              /* the last of them (its NBL record id) */
    uint32_t mark;                   /* walks that must visit an object once */
    const char *call;                /* the call that allocated it */
    const char *freed_by;            /* the call that freed it */
    union {
        ndisemu_nbl_private nbl;
        ndisemu_nb_private nb;
        ndisemu_mdl_private mdl;
        ndisemu_pool pool;
    } u;
} ndisemu_rec;


struct ndisemu_kernel {
    uint8_t *base;
    uint64_t size;
    uint64_t top;                    /* first never-carved byte */
    uint64_t display_base;
    uint32_t irql;
    int verifier;
    double fail_rate;
    uint64_t rng;
    uint32_t *map;                   /* per granule: id of the record whose header is there */
    ndisemu_rec *recs;               /* records by id; reserved whole, never moved */
    uint32_t nrecs;                  /* ids handed out so far (id 0 is none) */
    uint32_t max_recs;               /* one per 48 arena bytes: every object takes at
                                        least a header and a granule */
    uint32_t *spare;                 /* released inner-object records (max_recs) */
    uint32_t nspare;
    ndisemu_ids *classes;            /* free blocks by span */
    ndisemu_ids large;               /* free blocks of spans above the class limit */
    uint32_t *chunk_first;           /* per 4 KiB of arena: first block starting there */
    uint32_t mark;                   /* the current walk's mark */
    int alloc_refused;               /* the last failed allocation was a bug check */
    ndisemu_stats stats;
    ndisemu_bug bug;
    const char *call;                /* the NDIS call being executed */
    void *default_nbl_pool;          /* the pools NULL handles stand for */
    void *default_nb_pool;
    int last_rc;                     /* of a call that returns its result */
    /* driver code (driver.c) */
    void *frame;                     /* NDISEMU_FRAME of the innermost trampoline */
    int unwound;                     /* the last driver call ended in a bug check */
    uint8_t *scratch;                /* working memory of the C-side calls, a stack */
    uint64_t scratch_size, scratch_used;
    uint32_t info_slots[2][32];      /* NdisCopySend/ReceiveNetBufferListInfo slots */
    uint32_t info_count[2];
    int asan;                        /* the arena is poisoned for sanitized drivers */
    char *asan_note;                 /* what an ASan report adds (asan.c), or NULL */
    uint8_t *out_data;               /* ndisemu_set_scratch: where nbl_bytes copies to */
    uint64_t out_capacity;
    uint64_t *out_lengths;
    uint64_t out_max_nbs;
    uint64_t frees;                  /* blocks freed so far: an object live when this
                                        last read the same is live still */
    uint32_t layers;                 /* the live binding's layers (binding.c), 0: none */
    uint64_t layer_first, layer_step;  /* their handles: first + position * step */
    ndisemu_binding_dispatch binding_dispatch;  /* driver code's binding calls (binding.c) */
    uint8_t cancel_ids;              /* the last NdisGeneratePartialCancelId */
    int trace_on;                    /* record events (trace.c): checked inline */
    struct ndisemu_trace *trace;     /* the event log, NULL until first turned on */
};

/* Names the call being executed: records, bug checks and leak reports say
 * which call allocated, freed or was refused. */
#define NDISEMU_CALL(k, name) ((k)->call = (name))

/* Zeroes `n` bytes (a multiple of 16, a constant) at 16-aligned `p` with
 * 16-byte stores, unrolled: for the few hundred bytes of an NDIS object
 * this beats both a memset call and the `rep stos` compilers emit. */
typedef uint8_t ndisemu_v16 __attribute__((vector_size(16)));
static inline __attribute__((always_inline)) void ndisemu_zero16(void *p, uint64_t n)
{
    ndisemu_v16 *v = (ndisemu_v16 *)p;
    uint64_t i;
#pragma GCC unroll 32
    for (i = 0; i < n / 16; i++)
        v[i] = (ndisemu_v16){ 0 };
}

/* -- records (arena.c) --------------------------------------------------- */
static inline uint64_t ndisemu_align_up(uint64_t n, uint64_t a)
{
    return (n + a - 1) & ~(a - 1);
}

static inline ndisemu_rec *ndisemu_rec_at(ndisemu_kernel *k, uint32_t id)
{
    return &k->recs[id];
}

static inline void *ndisemu_rec_payload(ndisemu_kernel *k, const ndisemu_rec *r)
{
    return k->base + r->offset + NDISEMU_HEADER;
}

/* The record of the object whose payload starts at p (any state), or NULL. */
static inline ndisemu_rec *ndisemu_rec_of(ndisemu_kernel *k, const void *p)
{
    uint64_t offset = (uint64_t)((uintptr_t)p - (uintptr_t)k->base - NDISEMU_HEADER);
    ndisemu_rec *r;
    uint32_t id;
    /* offset wraps around for a pointer below the arena's first header */
    if (offset >= k->top || (offset & (NDISEMU_ALIGN - 1)))
        return NULL;
    id = k->map[offset >> NDISEMU_GRANULE_SHIFT];
    if (!id)
        return NULL;
    r = ndisemu_rec_at(k, id);
    return r->offset == offset ? r : NULL;
}

/* Records of objects the caller has already checked. */
static inline ndisemu_nbl_private *ndisemu_nbl_private_of(ndisemu_kernel *k,
                                                          const NET_BUFFER_LIST *nbl)
{
    return &ndisemu_rec_of(k, nbl)->u.nbl;
}
static inline ndisemu_nb_private *ndisemu_nb_private_of(ndisemu_kernel *k, const NET_BUFFER *nb)
{
    return &ndisemu_rec_of(k, nb)->u.nb;
}
static inline ndisemu_mdl_private *ndisemu_mdl_private_of(ndisemu_kernel *k, const MDL *mdl)
{
    return &ndisemu_rec_of(k, mdl)->u.mdl;
}
static inline int ndisemu_is_inner(const ndisemu_rec *r)
{
    return r->block != r->id;
}

/* Allocates a block with `size` payload bytes, the first `zero` of them
 * zeroed; its record, or NULL on exhaustion, injected failure or a bug check
 * (ndisemu_alloc_rc says which).  `pool` (may be NULL) supplies a lookaside
 * list. */
ndisemu_rec *ndisemu_alloc(ndisemu_kernel *k, uint64_t size, uint16_t kind, uint32_t tag,
                           ndisemu_pool *pool, uint64_t zero);
/* The same for a block that holds inner objects after its own object of
 * `own` bytes (the size its record and header give). */
ndisemu_rec *ndisemu_alloc_composite(ndisemu_kernel *k, uint64_t size, uint32_t own,
                                     uint16_t kind, uint32_t tag, ndisemu_pool *pool,
                                     uint64_t zero);
/* Carves an inner object inside a composite block at *cursor: its record. */
ndisemu_rec *ndisemu_inner(ndisemu_kernel *k, ndisemu_rec *block, uint8_t **cursor,
                           uint64_t size, uint16_t kind, uint32_t tag);
/* Frees a block (see ndisemu_block_free). */
void ndisemu_free_rec(ndisemu_kernel *k, ndisemu_rec *r, ndisemu_pool *pool);
/* The same as payload pointers: a zeroed block, or NULL. */
void *ndisemu_block_alloc(ndisemu_kernel *k, uint64_t size, uint16_t kind, uint32_t tag,
                          ndisemu_pool *pool);
/* The same, with the payload zeroed only up to `zero` bytes (a caller that
 * overwrites the rest, as build_nbl's copy does, saves the fill); the slack
 * past `size` is zeroed (or guarded) all the same. */
void *ndisemu_block_alloc_ex(ndisemu_kernel *k, uint64_t size, uint16_t kind, uint32_t tag,
                             ndisemu_pool *pool, uint64_t zero);
/* What a call returns when an allocation came back NULL: NDISEMU_BUGCHECK if
 * the allocator found corruption (k->bug says where), else NO_MEMORY. */
static inline int ndisemu_alloc_rc(ndisemu_kernel *k)
{
    return k->alloc_refused ? NDISEMU_BUGCHECK : NDISEMU_NO_MEMORY;
}
/* Marks the block holding record r as one whose free must look closer. */
void ndisemu_watch(ndisemu_kernel *k, ndisemu_rec *r);
/* Returns a block to its lookaside/free list (or, for a VERIFY pool, to its
 * quarantine), poisoning it under the verifier.  Its inner objects die with
 * it.  The caller has checked it with ndisemu_check_release. */
void ndisemu_block_free(ndisemu_kernel *k, void *payload, ndisemu_pool *pool);
/* Carves an inner object inside a composite block: header + payload. */
void *ndisemu_inner_object(ndisemu_kernel *k, void *block, uint8_t **cursor,
                           uint64_t size, uint16_t kind, uint32_t tag);
static inline uint64_t ndisemu_block_span(uint64_t size)
{
    return NDISEMU_HEADER + ndisemu_align_up(size ? size : 1, NDISEMU_ALIGN);
}
/* Bytes a composite block needs for an inner object of `size` bytes. */
static inline uint64_t ndisemu_inner_span(uint64_t size)
{
    return NDISEMU_HEADER + ndisemu_align_up(size, NDISEMU_ALIGN);
}
/* An inner object's record, freed with its block, serving again: what one
 * life noted (origin, flags, pins, mark, the per-kind part) is cleared and
 * the object is live, allocated by the current call. */
static inline void ndisemu_inner_relive(ndisemu_kernel *k, ndisemu_rec *r)
{
    r->origin = 0;
    r->flags = 0;
    r->pins = 0;
    r->pinned_by = 0;
    r->mark = 0;
    r->freed_by = NULL;
    memset(&r->u, 0, NDISEMU_INNER_PRIVATE);
    r->state = NDISEMU_STATE_LIVE;
    r->call = k->call;
}
/* ndisemu_inner's common case, inline: the block, reused whole, had an
 * object at `at` in its last life, whose record serves again.  Its header
 * imprint too, when it was of the same kind, size and tag and no poison
 * overwrote it (only the state changes); else it is stamped anew.  Data
 * buffers (their guard), a sanitized arena, a trace log and a first life
 * go to ndisemu_inner.  The caller moves its cursor past the object. */
static inline ndisemu_rec *ndisemu_inner_again(ndisemu_kernel *k, ndisemu_rec *outer,
                                               uint8_t *at, uint64_t size, uint16_t kind,
                                               uint32_t tag)
{
    uint64_t offset = (uint64_t)(at - k->base);
    ndisemu_rec *r = ndisemu_rec_at(k, k->map[offset >> NDISEMU_GRANULE_SHIFT]);
    ndisemu_header *h = (ndisemu_header *)at;
    if (r->block != outer->id || r->offset != offset || r->state != NDISEMU_STATE_FREE ||
        kind == NDISEMU_KIND_DATA || k->asan || k->trace)
        return ndisemu_inner(k, outer, &at, size, kind, tag);
    if ((outer->flags & NDISEMU_REC_IMPRINTED) && r->kind == kind && r->size == size &&
        r->tag == tag) {
        h->state = NDISEMU_STATE_LIVE;
    } else {
        h->magic = NDISEMU_MAGIC;
        h->kind = kind;
        h->state = NDISEMU_STATE_LIVE;
        h->tag = tag;
        h->size = (uint32_t)size;
        h->self = offset;
        h->span = 0;
        h->outer = (uint32_t)(offset - outer->offset);
        r->kind = kind;
        r->size = (uint32_t)size;
        r->tag = tag;
    }
    ndisemu_inner_relive(k, r);
    k->stats.live[kind]++;
    return r;
}
int ndisemu_should_fail(ndisemu_kernel *k);
/* Checks a VERIFY pool's quarantine for writes after the free (0xD5). */
int ndisemu_scan_pool_quarantine(ndisemu_kernel *k, ndisemu_pool *pool);
/* Moves a freed pool's lookaside and quarantine blocks to the free lists. */
void ndisemu_release_lookaside(ndisemu_kernel *k, ndisemu_pool *pool);
/* The record of the live block (not inner object) whose payload holds p. */
ndisemu_rec *ndisemu_block_containing(ndisemu_kernel *k, const void *p);
/* The block whose span holds p, live or free, header included; NULL
 * outside the carved arena. */
ndisemu_rec *ndisemu_block_at(ndisemu_kernel *k, const void *p);
/* -- ASan reports (asan.c) ------------------------------------------------ */
/* Describes k's arena in ASan reports from now on; forget at destroy. */
void ndisemu_asan_watch(ndisemu_kernel *k);
void ndisemu_asan_forget(ndisemu_kernel *k);
/* The live data buffer (a block, or an inner data object) holding
 * [p, p + length), or NULL.  Packet bytes may live only in data. */
ndisemu_rec *ndisemu_data_containing(ndisemu_kernel *k, const void *p, uint64_t length);
/* The same, trying first the block of record `hint` (0: none), such as the
 * block an MDL's bytes lay in at its last check. */
ndisemu_rec *ndisemu_data_containing_hint(ndisemu_kernel *k, const void *p, uint64_t length,
                                          uint32_t hint);
int ndisemu_ids_grow(ndisemu_ids *list);
static inline int ndisemu_ids_push(ndisemu_ids *list, uint32_t id)
{
    if (list->count == list->capacity && !ndisemu_ids_grow(list))
        return 0;
    list->ids[list->count++] = id;
    return 1;
}
void ndisemu_ids_release(ndisemu_ids *list);
/* A fresh mark for a walk that must visit each record once. */
static inline uint32_t ndisemu_new_mark(ndisemu_kernel *k)
{
    return ++k->mark ? k->mark : ++k->mark;
}

/* -- verifier.c -------------------------------------------------------- */
/* Records a bug check in k->bug and returns NDISEMU_BUGCHECK. */
int ndisemu_bugcheck(ndisemu_kernel *k, uint32_t code, uint64_t p1, uint64_t p3, uint64_t p4,
                     uint32_t kind, const void *object, const char *rule);
/* A stop with all four parameters given as Windows orders them (0xC1, 0xD5). */
int ndisemu_stop(ndisemu_kernel *k, uint32_t code, const uint64_t parameters[4], uint32_t kind,
                 const void *object, const char *rule);
/* The record of a live object of `kind` at p, or NULL with k->bug set.  The
 * fast path is inline (it runs several times per call); the slow path works
 * out what is wrong and records the bug check. */
ndisemu_rec *ndisemu_check_object_slow(ndisemu_kernel *k, const void *p, int kind);
static inline ndisemu_rec *ndisemu_live_rec(ndisemu_kernel *k, const void *p, int kind)
{
    ndisemu_rec *r = ndisemu_rec_of(k, p);
    return r && r->kind == kind && r->state == NDISEMU_STATE_LIVE ? r : NULL;
}
static inline ndisemu_rec *ndisemu_check_object(ndisemu_kernel *k, const void *p, int kind)
{
    ndisemu_rec *r = ndisemu_live_rec(k, p, kind);
    return r ? r : ndisemu_check_object_slow(k, p, kind);
}
int ndisemu_irql_bug(ndisemu_kernel *k);
static inline int ndisemu_check_irql(ndisemu_kernel *k)
{
    return k->irql <= DISPATCH_LEVEL ? NDISEMU_OK : ndisemu_irql_bug(k);
}
/* What every free call checks first: the IRQL, then the object, a freed
 * one being a double free, `twice` naming it ("NET_BUFFER freed twice"). */
ndisemu_rec *ndisemu_check_free(ndisemu_kernel *k, const void *p, int kind, const char *twice);
/* What every free checks for each block it is about to release, before it
 * changes anything: no live derived NBL still describes its bytes or uses
 * its MDLs (under the verifier), and the guard bytes past each buffer's
 * requested length are intact (BugCheck 0xC1). */
int ndisemu_check_release_slow(ndisemu_kernel *k, ndisemu_rec *block);
static inline int ndisemu_check_release(ndisemu_kernel *k, ndisemu_rec *block)
{
    return block->flags & NDISEMU_REC_WATCHED ? ndisemu_check_release_slow(k, block)
                                              : NDISEMU_OK;
}
/* Checks that an MDL chain can be walked and its bytes read: every MDL live,
 * every described range inside live memory.  Returns the MDL count or -1. */
int64_t ndisemu_check_chain(ndisemu_kernel *k, MDL *chain, const void *owner);
/* A signed counter a driver can write, about to be incremented: BugCheck
 * 0x7C/0x91 at LONG_MAX instead of a wrap. */
int ndisemu_check_increment(ndisemu_kernel *k, int32_t value, uint32_t kind, const void *object,
                            const char *rule);
/* Records that derived NBL `nbl` describes the bytes of (or shares) the
 * object of record `target`: until the NBL is freed, `target` cannot be.
 * `by` is the NBL's own partial MDL that describes them (it keeps the
 * record), or NULL (the NBL's list keeps it). */
void ndisemu_pin(ndisemu_kernel *k, ndisemu_rec *nbl, ndisemu_rec *by, ndisemu_rec *target);
void ndisemu_unpin_all(ndisemu_kernel *k, ndisemu_rec *nbl);

/* -- mdl.c ------------------------------------------------------------- */
static inline uint8_t *ndisemu_mdl_va(const MDL *m)
{
    return (uint8_t *)m->StartVa + m->ByteOffset;
}
static inline uint64_t ndisemu_span_pages(const void *va, uint64_t length)
{
    return (((uintptr_t)va & 0xFFFu) + length + 0xFFFu) >> 12;
}
/* Bytes of an MDL block: the wdm.h header and its PFN array. */
static inline uint64_t ndisemu_mdl_bytes(uint32_t pages)
{
    return sizeof(MDL) + (uint64_t)pages * sizeof(PFN_NUMBER);
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
/* The work of NdisAllocateMemoryWithTagPriority / NdisFreeMemory* for the
 * calls that name themselves (ExAllocatePoolWithTag, NdisFreeMemory, ...). */
int ndisemu_memory_alloc(ndisemu_kernel *k, uint64_t length, uint32_t tag, uint32_t kind,
                         void **out);
int ndisemu_memory_free(ndisemu_kernel *k, void *va, uint32_t tag, int check_tag, uint32_t kind);
/* Frees an MDL that owns its data block (build_nbl, the retreat allocator). */
void ndisemu_free_owned_mdl(ndisemu_kernel *k, ndisemu_rec *mdl);
/* ndisemu_check_release for such an MDL and its data block. */
int ndisemu_check_owned_mdl_release(ndisemu_kernel *k, ndisemu_rec *mdl);

/* -- netbuffer.c / nbl.c ----------------------------------------------- */
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
 * `block` at *cursor and points `nb` at them (DataOffset 0, DataLength all). */
void ndisemu_nb_attach_data(ndisemu_kernel *k, void *block, uint8_t **cursor,
                            NET_BUFFER *nb, uint32_t data_size, uint32_t tag);
static inline ndisemu_pool *ndisemu_check_pool(ndisemu_kernel *k, void *pool, int kind)
{
    ndisemu_rec *r = ndisemu_check_object(k, pool, kind);
    return r ? &r->u.pool : NULL;
}
/* BugCheck for freeing an NB that still holds retreat-allocated MDLs. */
int ndisemu_retreat_leak(ndisemu_kernel *k, NET_BUFFER *nb);
/* binding.c: BugCheck 0x7C/0x92 for freeing an NBL or NB (kind) that is in
 * flight in the binding (owner, home: its record's away_ fields). */
int ndisemu_freed_in_flight(ndisemu_kernel *k, int kind, const void *object, uint32_t owner,
                            uint32_t home);
/* NdisAllocateNetBufferAndNetBufferList's work, for an NBL of `origin`. */
int ndisemu_nb_and_nbl(ndisemu_kernel *k, void *pool, uint16_t context_size,
                       uint16_t context_backfill, MDL *chain, uint32_t data_offset,
                       uint64_t data_length, uint32_t origin, NET_BUFFER_LIST **out);
/* NdisFreeNetBufferList's work, for an NBL of `origin`. */
int ndisemu_free_pool_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, uint32_t origin);
/* Checks shared by every NBL free call: live (a freed one is a double
 * free), the right call for its origin, no children, no references, no
 * context left from NdisAllocateNetBufferListContext.  The record, or NULL
 * with k->bug set.  Inline when all hold; the slow path says which not. */
ndisemu_rec *ndisemu_nbl_to_free_slow(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, uint32_t origin);
static inline ndisemu_rec *ndisemu_nbl_to_free(ndisemu_kernel *k, NET_BUFFER_LIST *nbl,
                                               uint32_t origin)
{
    ndisemu_rec *r = k->irql <= DISPATCH_LEVEL ? ndisemu_live_rec(k, nbl, NDISEMU_KIND_NBL)
                                               : NULL;
    if (r && r->origin == origin && nbl->ChildRefCount == 0 && !r->u.nbl.references &&
        !r->u.nbl.context_depth && !r->u.nbl.away_owner)
        return r;
    return ndisemu_nbl_to_free_slow(k, nbl, origin);
}
/* Releases what an NBL's record holds outside the arena (context stack,
 * owned and pinned lists).  Every NBL free calls it. */
void ndisemu_nbl_private_release_slow(ndisemu_kernel *k, ndisemu_rec *nbl);
static inline void ndisemu_nbl_private_release(ndisemu_kernel *k, ndisemu_rec *nbl)
{
    ndisemu_nbl_private *priv = &nbl->u.nbl;
    if (priv->pins_taken || priv->owned.ids || priv->context_ops)
        ndisemu_nbl_private_release_slow(k, nbl);
    priv->context_depth = 0;
}

#define NDISEMU_NBL_BYTES sizeof(NET_BUFFER_LIST)
#define NDISEMU_NB_BYTES sizeof(NET_BUFFER)


/* -- the per-object event trace (trace.c) -------------------------------- */
/* Hook points call these; with tracing off each costs one test of
 * k->trace_on.  `args` as core.h lists them per event. */
struct ndisemu_trace;
void ndisemu_trace_record(ndisemu_kernel *k, const ndisemu_rec *r, uint32_t event,
                          uint64_t a0, uint64_t a1, uint64_t a2);
static inline void ndisemu_trace(ndisemu_kernel *k, const ndisemu_rec *r, uint32_t event,
                                 uint64_t a0, uint64_t a1, uint64_t a2)
{
    if (k->trace_on)
        ndisemu_trace_record(k, r, event, a0, a1, a2);
}
/* The same for an object the caller has checked, given by its address. */
static inline void ndisemu_trace_at(ndisemu_kernel *k, const void *object, uint32_t event,
                                    uint64_t a0, uint64_t a1, uint64_t a2)
{
    if (k->trace_on)
        ndisemu_trace_record(k, ndisemu_rec_of(k, object), event, a0, a1, a2);
}
/* A new lifetime of record r (ALLOCATED; `outer` the enclosing block's
 * record for an inner object, else NULL).  Tested against the log rather than
 * against k->trace_on: while a log exists, even with recording off, a reused
 * record must get a new generation, or the log kept for reading would
 * credit the old object's events to the new one.  Never traced: one test. */
void ndisemu_trace_allocated_slow(ndisemu_kernel *k, const ndisemu_rec *r,
                                  const ndisemu_rec *outer);
static inline void ndisemu_trace_allocated(ndisemu_kernel *k, const ndisemu_rec *r,
                                           const ndisemu_rec *outer)
{
    if (k->trace)
        ndisemu_trace_allocated_slow(k, r, outer);
}
/* A derived NBL: DERIVED on it, CHILD_DERIVED on its source. */
void ndisemu_trace_derived_slow(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, NET_BUFFER_LIST *orig,
                                uint32_t origin, uint64_t extra);
static inline void ndisemu_trace_derived(ndisemu_kernel *k, NET_BUFFER_LIST *nbl,
                                         NET_BUFFER_LIST *orig, uint32_t origin, uint64_t extra)
{
    if (k->trace_on)
        ndisemu_trace_derived_slow(k, nbl, orig, origin, extra);
}
/* Frees the log (ndisemu_kernel_destroy). */
void ndisemu_trace_release(ndisemu_kernel *k);

#endif
