/*
 * clone.c - derived NBLs: NdisAllocateCloneNetBufferList, the FWPS clone and
 * deep clone, fragments and reassembly, with their frees; and the other FWPS
 * NBL calls (allocate/free, reference/dereference).
 *
 * A derived NBL is one block: the NBL, then each new NB and every MDL it
 * needs as inner objects (and, for a deep clone, the data buffers and the
 * context).  So an allocation either succeeds whole or allocates nothing,
 * and the free releases exactly what the allocation made.  New MDLs are
 * partial MDLs over the source MDLs' bytes: nothing is copied but for the
 * deep clone.
 */
#include "kernel.h"

#define DERIVE_CLONE 1
#define DERIVE_FRAGMENT 2
#define DERIVE_REASSEMBLE 3

#define CLONE_TAG 0x6e6c434e  /* "NCln" */

/* Where a walk over a source NB's used data stands. */
typedef struct {
    MDL *mdl;
    uint32_t in;
} cursor;

/* One derivation: what to build, and the running state of the two passes
 * (pass 1 sizes the block, pass 2 carves and fills it). */
typedef struct {
    ndisemu_kernel *k;
    int mode;
    int original_mdls;         /* NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS */
    uint32_t origin;
    uint32_t start;            /* bytes skipped at the front of each source NB */
    uint32_t max_len;          /* fragment size */
    uint32_t delta, backfill;  /* the retreat applied to each new NB */
    ndisemu_pool *nb_pool;
    /* pass 1 */
    int64_t nb_budget, mdl_budget;
    NET_BUFFER_LIST *orig;
    NET_BUFFER *src;
    uint64_t bytes;
    uint32_t nbs;
    /* pass 2 */
    int pinning;               /* record the bytes it describes (verifier) */
    ndisemu_rec *rec;          /* the derived NBL: its block holds the rest */
    uint8_t *at;
    NET_BUFFER **nb_link;
    NET_BUFFER *nb;
    MDL **mdl_link;
    MDL *chain;
    uint64_t length;
} derive;

static uint32_t max_pages(uint64_t length)
{
    return (uint32_t)((length + 0xFFFu) / 0x1000u + 1u);
}

/* The deep clone's source NB must be safe to read from CurrentMdl for
 * DataLength bytes.  Under the verifier that is the full consistency check;
 * without it, the MDL objects from CurrentMdl on and the ranges they describe
 * (the shallow derivations check as they walk: see enter_source and step). */
static int check_source(ndisemu_kernel *k, NET_BUFFER *nb)
{
    uint64_t available;
    MDL *m;
    if (k->verifier)
        return ndisemu_check_nb(k, nb);
    if (!ndisemu_check_object(k, nb, NDISEMU_KIND_NB))
        return NDISEMU_BUGCHECK;
    if (!nb->DataLength)
        return NDISEMU_OK;
    if (ndisemu_check_chain(k, nb->CurrentMdl, nb) < 0)
        return NDISEMU_BUGCHECK;
    available = 0;
    for (m = nb->CurrentMdl; m; m = m->Next)
        available += m->ByteCount;
    if (!nb->CurrentMdl || nb->CurrentMdlOffset + (uint64_t)nb->DataLength > available)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_NB_INCONSISTENT,
                                nb->DataLength, available, NDISEMU_KIND_NB, nb,
                                "DataLength: more bytes than the chain holds from CurrentMdl");
    return NDISEMU_OK;
}

/* Checks the source NBL and every NB on it; returns the NB count or -1. */
static int64_t check_sources(ndisemu_kernel *k, NET_BUFFER_LIST *nbl)
{
    int64_t count = 0, limit = k->stats.live[NDISEMU_KIND_NB];
    NET_BUFFER *nb;
    if (!ndisemu_check_object(k, nbl, NDISEMU_KIND_NBL))
        return -1;
    for (nb = nbl->FirstNetBuffer; nb; nb = nb->Next) {
        if (check_source(k, nb))
            return -1;
        if (++count > limit) {
            ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_NB_INCONSISTENT, 0, 0,
                             NDISEMU_KIND_NBL, nbl, "NET_BUFFER list loops back on itself");
            return -1;
        }
    }
    return count;
}

/* The walks below are written once and compiled per pass (check, carve)
 * and, for clones, per mode: the pass and mode are constants in each copy,
 * so the branches on them fold away. */
#define PASS_CHECK 1
#define PASS_CARVE 0
#define INLINE static inline __attribute__((always_inline))
#define COLD static __attribute__((noinline, cold))

COLD int chain_bug(ndisemu_kernel *k, NET_BUFFER *src, MDL *next)
{
    return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_NB_INCONSISTENT, 0, 0,
                            NDISEMU_KIND_NB, src,
                            next ? "MDL chain loops back on itself"
                                 : "DataLength: more bytes than the chain holds from "
                                   "CurrentMdl");
}

/* Moves the cursor onto the next MDL.  In the checking pass every MDL is
 * checked before any of its fields is read (and, for callers that read the
 * bytes, its range); `budget` stops a chain that loops. */
INLINE int step(derive *d, cursor *c, MDL *next, const int checking)
{
    c->mdl = next;
    c->in = 0;
    if (!checking)
        return 1;
    if (!next || --d->mdl_budget < 0 || !ndisemu_check_object(d->k, next, NDISEMU_KIND_MDL)) {
        if (!next || d->mdl_budget < 0)
            chain_bug(d->k, d->src, next);
        return 0;
    }
    return 1;
}

INLINE int skip(derive *d, cursor *c, uint64_t n, const int checking)
{
    while (n) {
        uint64_t run = c->mdl->ByteCount - c->in;
        if (n < run) {
            c->in += (uint32_t)n;
            return 1;
        }
        n -= run;
        if (!step(d, c, c->mdl->Next, checking))
            return 0;
    }
    return 1;
}

/* Partial MDL over `length` bytes of `src` from `in` (IoBuildPartialMdl). */
INLINE void make_partial(ndisemu_kernel *k, ndisemu_rec *r, MDL *src, uint32_t in,
                         uint32_t length, uint32_t origin)
{
    MDL *dst = ndisemu_rec_payload(k, r);
    uint8_t *va = ndisemu_mdl_va(src) + in;
    CSHORT flags = src->MdlFlags;
    ndisemu_mdl_init_built(k, dst, va, length);
    dst->MdlFlags = (CSHORT)(MDL_PARTIAL | (flags & MDL_SOURCE_IS_NONPAGED_POOL));
    if (flags & MDL_MAPPED_TO_SYSTEM_VA)
        dst->MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA | MDL_PARTIAL_HAS_BEEN_MAPPED;
    if (!(flags & (MDL_SOURCE_IS_NONPAGED_POOL | MDL_MAPPED_TO_SYSTEM_VA)))
        dst->MappedSystemVa = NULL;
    r->origin = origin;
    r->u.mdl.length = length;
}

/* The next inner object of the derived block, not zeroed: only the deep
 * clone's data buffers, which its copy fills at once. */
INLINE ndisemu_rec *carve_raw(derive *d, uint64_t size, uint16_t kind)
{
    ndisemu_rec *r = ndisemu_inner_again(d->k, d->rec, d->at, size, kind, CLONE_TAG);
    d->at += ndisemu_inner_span(size);
    return r;
}

/* The next inner object, zeroed.  A derived block is allocated with only
 * its NBL zeroed and each object is zeroed as it is carved: so the header
 * imprints between them, still valid when the block served the same shape
 * last time, are left alone (ndisemu_inner).  A data buffer's slack holds
 * its guard bytes already. */
INLINE ndisemu_rec *carve_rec(derive *d, uint64_t size, uint16_t kind)
{
    ndisemu_rec *r = carve_raw(d, size, kind);
    memset(ndisemu_rec_payload(d->k, r), 0,
           kind == NDISEMU_KIND_DATA ? size : ndisemu_align_up(size, NDISEMU_ALIGN));
    return r;
}

INLINE void *carve(derive *d, uint64_t size, uint16_t kind)
{
    return ndisemu_rec_payload(d->k, carve_rec(d, size, kind));
}

/* Opens a new NB: the retreat buffer first, when the derivation has one. */
INLINE void begin_nb(derive *d, const int checking)
{
    uint32_t header = d->delta ? d->delta + d->backfill : 0;
    d->nbs++;
    if (checking) {
        d->bytes += ndisemu_inner_span(NDISEMU_NB_BYTES);
        if (header)
            d->bytes += ndisemu_inner_span(ndisemu_mdl_bytes(max_pages(header))) +
                        ndisemu_inner_span(header);
        return;
    }
    {
        ndisemu_rec *r = carve_rec(d, NDISEMU_NB_BYTES, NDISEMU_KIND_NB);
        r->origin = d->origin;
        d->nb = ndisemu_rec_payload(d->k, r);
    }
    d->nb->NdisPoolHandle = d->nb_pool->handle;
    *d->nb_link = d->nb;
    d->nb_link = &d->nb->Next;
    d->chain = NULL;
    d->mdl_link = &d->chain;
    d->length = 0;
    if (header) {
        ndisemu_rec *r = carve_rec(d, ndisemu_mdl_bytes(max_pages(header)), NDISEMU_KIND_MDL);
        MDL *mdl = ndisemu_rec_payload(d->k, r);
        uint8_t *data = carve(d, header, NDISEMU_KIND_DATA);
        ndisemu_mdl_init_built(d->k, mdl, data, header);
        r->origin = d->origin;
        r->u.mdl.length = header;
        *d->mdl_link = mdl;
        d->mdl_link = &mdl->Next;
    }
}

/* Appends partial MDLs for `length` bytes from the cursor; zero-length
 * source MDLs inside the range get no partial MDL. */
INLINE int add_piece(derive *d, cursor *c, uint64_t length, const int checking)
{
    d->length += length;
    while (length) {
        uint64_t run = c->mdl->ByteCount - c->in, piece;
        uint32_t pages;
        if (!run) {
            if (!step(d, c, c->mdl->Next, checking))
                return 0;
            continue;
        }
        piece = run < length ? run : length;
        pages = (uint32_t)ndisemu_span_pages(ndisemu_mdl_va(c->mdl) + c->in, piece);
        if (checking) {
            d->bytes += ndisemu_inner_span(ndisemu_mdl_bytes(pages));
        } else {
            ndisemu_rec *r = carve_rec(d, ndisemu_mdl_bytes(pages), NDISEMU_KIND_MDL);
            MDL *mdl = ndisemu_rec_payload(d->k, r);
            make_partial(d->k, r, c->mdl, c->in, (uint32_t)piece, d->origin);
            if (d->pinning) {          /* the source's buffer must outlive this MDL */
                uint32_t block = ndisemu_rec_of(d->k, c->mdl)->u.mdl.described;
                ndisemu_pin(d->k, d->rec, r, block ? ndisemu_rec_at(d->k, block) : NULL);
            }
            *d->mdl_link = mdl;
            d->mdl_link = &mdl->Next;
        }
        c->in += (uint32_t)piece;
        length -= piece;
    }
    return 1;
}

COLD int nb_loop_bug(ndisemu_kernel *k, NET_BUFFER_LIST *orig)
{
    return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_NB_INCONSISTENT, 0, 0,
                            NDISEMU_KIND_NBL, orig, "NET_BUFFER list loops back on itself");
}

COLD int current_mdl_bug(ndisemu_kernel *k, NET_BUFFER *src)
{
    if (!src->CurrentMdl)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_NB_INCONSISTENT, 0, 0,
                                NDISEMU_KIND_NB, src, "CurrentMdl: NULL with a DataLength");
    return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_NB_INCONSISTENT,
                            src->CurrentMdlOffset, src->CurrentMdl->ByteCount, NDISEMU_KIND_NB,
                            src, "CurrentMdlOffset: beyond CurrentMdl's ByteCount");
}

/* The checking pass's look at one source NB before its fields are used:
 * under the verifier the full consistency check, else the object itself and
 * a CurrentMdlOffset inside CurrentMdl (the MDLs are checked as they are
 * reached). */
INLINE int enter_source(derive *d, NET_BUFFER *src)
{
    ndisemu_kernel *k = d->k;
    d->src = src;
    if (--d->nb_budget < 0) {
        nb_loop_bug(k, d->orig);
        return 0;
    }
    if (k->verifier ? ndisemu_check_nb(k, src) != NDISEMU_OK
                    : !ndisemu_check_object(k, src, NDISEMU_KIND_NB))
        return 0;
    if (d->original_mdls || !src->DataLength)
        return 1;
    if (!src->CurrentMdl) {
        current_mdl_bug(k, src);
        return 0;
    }
    if (!ndisemu_check_object(k, src->CurrentMdl, NDISEMU_KIND_MDL))
        return 0;
    if (src->CurrentMdlOffset > src->CurrentMdl->ByteCount) {
        current_mdl_bug(k, src);
        return 0;
    }
    return 1;
}

/* NdisAdjustNetBufferCurrentMdl's result for a new NB whose data starts in
 * its first MDL (every derived NB: a retreat buffer or a partial MDL, never
 * empty, heads its chain). */
INLINE void end_nb(derive *d, const int checking)
{
    uint32_t offset = d->delta ? d->backfill : 0;
    NET_BUFFER *nb = d->nb;
    if (checking)
        return;
    if (!d->chain || offset >= d->chain->ByteCount) {
        ndisemu_nb_fill(nb, d->chain, offset, d->length + d->delta);
        return;
    }
    nb->MdlChain = d->chain;
    nb->DataOffset = offset;
    nb->stDataLength = 0;
    nb->DataLength = (ULONG)(d->length + d->delta);
    nb->CurrentMdl = d->chain;
    nb->CurrentMdlOffset = offset;
}

/* A clone that shares the original's MDLs: they and the buffers they
 * describe must outlive it.  Pass 1 checked the chain (under the verifier,
 * the only time pins are taken). */
static void pin_chain(ndisemu_kernel *k, ndisemu_rec *nbl, MDL *m)
{
    for (; m; m = m->Next) {
        uint32_t block = ndisemu_rec_of(k, m)->u.mdl.described;
        ndisemu_pin(k, nbl, NULL, ndisemu_rec_of(k, m));
        if (block)
            ndisemu_pin(k, nbl, NULL, ndisemu_rec_at(k, block));
    }
}

/* Walks the source NBs once: the checking pass (pass 1) checks everything it
 * reads and sizes the block; pass 2 carves and fills it, over the same,
 * already checked, objects.  Returns 0 if pass 1 found misuse. */
INLINE int walk(derive *d, NET_BUFFER_LIST *orig, const int mode, const int checking)
{
    NET_BUFFER *src;
    if (mode == DERIVE_REASSEMBLE)
        begin_nb(d, checking);
    for (src = orig->FirstNetBuffer; src; src = src->Next) {
        cursor c;
        uint64_t rest;
        if (checking && !enter_source(d, src))
            return 0;
        c.mdl = src->CurrentMdl;
        c.in = src->CurrentMdlOffset;
        if (src->DataLength <= d->start)
            continue;                  /* [UNSPEC] nothing left past StartOffset */
        if (!skip(d, &c, d->start, checking))
            return 0;
        rest = src->DataLength - d->start;
        if (mode == DERIVE_REASSEMBLE) {
            if (!add_piece(d, &c, rest, checking))
                return 0;
            continue;
        }
        while (rest) {                 /* fragments never span two source NBs */
            uint64_t piece = rest < d->max_len ? rest : d->max_len;
            begin_nb(d, checking);
            if (!add_piece(d, &c, piece, checking))
                return 0;
            end_nb(d, checking);
            rest -= piece;
        }
    }
    if (mode == DERIVE_REASSEMBLE)
        end_nb(d, checking);
    return 1;
}

/* The walk's copies, one per derivation and pass. */
static int walk_pass(derive *d, NET_BUFFER_LIST *orig, int checking)
{
    if (d->mode == DERIVE_FRAGMENT)
        return checking ? walk(d, orig, DERIVE_FRAGMENT, PASS_CHECK)
                        : walk(d, orig, DERIVE_FRAGMENT, PASS_CARVE);
    return checking ? walk(d, orig, DERIVE_REASSEMBLE, PASS_CHECK)
                    : walk(d, orig, DERIVE_REASSEMBLE, PASS_CARVE);
}

/* FNV-1a over the NB list and each NB's MDL chain: the shape a derived NBL's
 * owner must restore before freeing it. */
static uint64_t shape_hash(NET_BUFFER_LIST *nbl)
{
    uint64_t h = 0xcbf29ce484222325ull;
    NET_BUFFER *nb;
    MDL *m;
#define MIX(v) do { h ^= (uint64_t)(uintptr_t)(v); h *= 0x100000001b3ull; } while (0)
    for (nb = nbl->FirstNetBuffer; nb; nb = nb->Next) {
        MIX(nb);
        for (m = nb->MdlChain; m; m = m->Next)
            MIX(m);
        MIX(1);
    }
#undef MIX
    return h | 1;                      /* 0 means "no snapshot" */
}

static ndisemu_pool *resolve_pools(ndisemu_kernel *k, void *nbl_pool, void *nb_pool,
                                   ndisemu_pool **nbp)
{
    ndisemu_pool *p = ndisemu_check_pool(k, nbl_pool, NDISEMU_KIND_NBL_POOL);
    if (!p)
        return NULL;
    *nbp = ndisemu_check_pool(k, nb_pool, NDISEMU_KIND_NB_POOL);
    return *nbp ? p : NULL;
}

/* Allocates the derived NBL's block; `zero` payload bytes are zeroed (the
 * deep clone zeroes its inner objects itself, all but the copied data). */
static NET_BUFFER_LIST *start_nbl(derive *d, ndisemu_pool *pool, ndisemu_pool *nb_pool,
                                  uint64_t zero)
{
    ndisemu_rec *r = ndisemu_alloc_composite(d->k, d->bytes, NDISEMU_NBL_BYTES,
                                             NDISEMU_KIND_NBL,
                                             pool->tag ? pool->tag : CLONE_TAG, NULL, zero);
    NET_BUFFER_LIST *nbl;
    if (!r)
        return NULL;
    nbl = ndisemu_rec_payload(d->k, r);
    d->rec = r;
    d->pinning = d->k->verifier;
    d->at = (uint8_t *)nbl + ndisemu_align_up(NDISEMU_NBL_BYTES, NDISEMU_ALIGN);
    d->nb_link = &nbl->FirstNetBuffer;
    d->nbs = 0;
    d->rec->origin = d->origin;
    d->rec->u.nbl.pool = pool;
    d->rec->u.nbl.nb_pool = nb_pool;
    nbl->NdisPoolHandle = pool->handle;
    nbl->NetBufferListInfo[NetBufferListProtocolId] = (void *)(uintptr_t)pool->protocol_id;
    return nbl;
}

static void finish_nbl(derive *d, NET_BUFFER_LIST *nbl, ndisemu_pool *pool,
                       ndisemu_pool *nb_pool)
{
    ndisemu_nbl_private *priv = &d->rec->u.nbl;
    (void)nbl;
    priv->nb_count = d->nbs;
    priv->delta = d->delta;
    priv->snapshot = d->k->verifier ? shape_hash(nbl) : 0;
    pool->live++;
    pool->allocated++;
    nb_pool->live += d->nbs;
    nb_pool->allocated += d->nbs;
}

static int derive_nbl(derive *d, NET_BUFFER_LIST *orig, ndisemu_pool *pool, ndisemu_pool *nbp,
                      NET_BUFFER_LIST **out)
{
    NET_BUFFER_LIST *nbl;
    *out = NULL;
    if (!ndisemu_check_object(d->k, orig, NDISEMU_KIND_NBL))
        return NDISEMU_BUGCHECK;
    d->orig = orig;
    d->nb_pool = nbp;
    d->bytes = ndisemu_align_up(NDISEMU_NBL_BYTES, NDISEMU_ALIGN);
    d->nbs = 0;
    d->nb_budget = d->k->stats.live[NDISEMU_KIND_NB];
    d->mdl_budget = d->k->stats.live[NDISEMU_KIND_MDL];
    /* pass 1: check and size */
    if (!walk_pass(d, orig, 1))
        return NDISEMU_BUGCHECK;
    nbl = start_nbl(d, pool, nbp, ndisemu_align_up(NDISEMU_NBL_BYTES, NDISEMU_ALIGN));
    if (!nbl)
        return ndisemu_alloc_rc(d->k);
    /* pass 2: carve and fill */
    walk_pass(d, orig, 0);
    finish_nbl(d, nbl, pool, nbp);
    ndisemu_trace_derived(d->k, nbl, orig, d->origin, d->delta);
    *out = nbl;
    return NDISEMU_OK;
}

/* The FWPS calls add 1 to the parent's ChildRefCount, a LONG the driver can
 * write: refuse at LONG_MAX rather than wrap (checked before allocating). */
static int check_parent_count(ndisemu_kernel *k, NET_BUFFER_LIST *orig)
{
    if (!ndisemu_live_rec(k, orig, NDISEMU_KIND_NBL))
        return NDISEMU_OK;             /* the derivation reports it */
    return ndisemu_check_increment(k, orig->ChildRefCount, NDISEMU_KIND_NBL, orig,
                                   "parent's ChildRefCount is at LONG_MAX: one more child "
                                   "would overflow it");
}

/* Unlike the NDIS calls, the FWPS clones link the child to its parent. */
static void adopt(derive *d, NET_BUFFER_LIST *child, NET_BUFFER_LIST *parent)
{
    child->ParentNetBufferList = parent;
    d->rec->u.nbl.parent = parent;
    parent->ChildRefCount++;
}

/* ---- clones ---------------------------------------------------------------- */
/*
 * The clone is the derivation a driver makes per packet, so it has a path
 * of its own, with the walk's state in locals: the checking pass (every NB
 * and every MDL the clone covers checked as a live object before a field
 * of it is read, chains that loop stopped, and under the verifier each
 * source NB's full consistency check) sizes the block; the carving pass
 * fills it over the same, already checked, objects.  A block reused whole
 * for the same shape keeps its inner records and header imprints
 * (ndisemu_inner_again), so carving it again rewrites only what a life
 * changes.
 */

/* Pass 1: checks the source NBs and returns the block's payload bytes, 0
 * with k->bug set on misuse.  `original_mdls`: the clone shares the NBs'
 * chains, so only the NBs themselves are needed. */
static uint64_t clone_check(ndisemu_kernel *k, NET_BUFFER_LIST *orig, int original_mdls,
                            uint32_t *nbs)
{
    int64_t nb_budget = k->stats.live[NDISEMU_KIND_NB];
    int64_t mdl_budget = k->stats.live[NDISEMU_KIND_MDL];
    uint64_t bytes = ndisemu_align_up(NDISEMU_NBL_BYTES, NDISEMU_ALIGN);
    uint32_t count = 0;
    NET_BUFFER *src;
    for (src = orig->FirstNetBuffer; src; src = src->Next) {
        uint64_t length;
        uint32_t in;
        MDL *m;
        if (--nb_budget < 0) {
            nb_loop_bug(k, orig);
            return 0;
        }
        if (k->verifier ? ndisemu_check_nb(k, src) != NDISEMU_OK
                        : !ndisemu_check_object(k, src, NDISEMU_KIND_NB))
            return 0;
        count++;
        bytes += ndisemu_inner_span(NDISEMU_NB_BYTES);
        if (original_mdls || !(length = src->DataLength))
            continue;
        m = src->CurrentMdl;
        if (!m) {
            current_mdl_bug(k, src);
            return 0;
        }
        if (!ndisemu_check_object(k, m, NDISEMU_KIND_MDL))
            return 0;
        in = src->CurrentMdlOffset;
        if (in > m->ByteCount) {
            current_mdl_bug(k, src);
            return 0;
        }
        for (;;) {                     /* a partial MDL per non-empty run */
            uint64_t run = m->ByteCount - in;
            if (run) {
                uint64_t piece = run < length ? run : length;
                bytes += ndisemu_inner_span(ndisemu_mdl_bytes(
                    (uint32_t)ndisemu_span_pages(ndisemu_mdl_va(m) + in, piece)));
                length -= piece;
                if (!length)
                    break;
            }
            m = m->Next;
            in = 0;
            if (!m || --mdl_budget < 0 || !ndisemu_check_object(k, m, NDISEMU_KIND_MDL)) {
                if (!m || mdl_budget < 0)
                    chain_bug(k, src, m);
                return 0;
            }
        }
    }
    *nbs = count;
    return bytes;
}

/* Pass 2: carves and fills the NBs and partial MDLs from `at` on. */
static void clone_carve(ndisemu_kernel *k, ndisemu_rec *rec, NET_BUFFER_LIST *nbl,
                        NET_BUFFER_LIST *orig, ndisemu_pool *nbp, uint32_t origin,
                        int original_mdls)
{
    uint8_t *at = (uint8_t *)nbl + ndisemu_align_up(NDISEMU_NBL_BYTES, NDISEMU_ALIGN);
    NET_BUFFER **link = &nbl->FirstNetBuffer;
    int pinning = k->verifier;
    NET_BUFFER *src;
    for (src = orig->FirstNetBuffer; src; src = src->Next) {
        ndisemu_rec *r = ndisemu_inner_again(k, rec, at, NDISEMU_NB_BYTES, NDISEMU_KIND_NB,
                                             CLONE_TAG);
        NET_BUFFER *nb = (NET_BUFFER *)(at + NDISEMU_HEADER);
        uint64_t length = src->DataLength;
        MDL *chain = NULL, **mdl_link = &chain, *m;
        uint32_t in;
        ndisemu_zero16(nb, ndisemu_align_up(NDISEMU_NB_BYTES, NDISEMU_ALIGN));
        at += ndisemu_inner_span(NDISEMU_NB_BYTES);
        r->origin = origin;
        nb->NdisPoolHandle = nbp->handle;
        *link = nb;
        link = &nb->Next;
        if (original_mdls) {
            /* [UNSPEC] The clone shares the original's chain and keeps its
             * DataOffset, so it starts at the original's data. */
            if (pinning)
                pin_chain(k, rec, src->MdlChain);
            nb->MdlChain = src->MdlChain;
            nb->CurrentMdl = src->CurrentMdl;
            nb->CurrentMdlOffset = src->CurrentMdlOffset;
            nb->DataOffset = src->DataOffset;
            nb->DataLength = src->DataLength;
            continue;
        }
        m = src->CurrentMdl;
        in = src->CurrentMdlOffset;
        while (length) {
            uint64_t run = m->ByteCount - in;
            if (run) {
                uint64_t piece = run < length ? run : length;
                uint32_t pages = (uint32_t)ndisemu_span_pages(ndisemu_mdl_va(m) + in, piece);
                uint64_t size = ndisemu_mdl_bytes(pages);
                ndisemu_rec *mr = ndisemu_inner_again(k, rec, at, size, NDISEMU_KIND_MDL,
                                                      CLONE_TAG);
                MDL *mdl = (MDL *)(at + NDISEMU_HEADER);
                /* the header fields and PFNs are all written: zero the rest (an
                 * MDL is 48 bytes and PFNs 8, so the slack is 0 or 8 bytes) */
                _Static_assert(sizeof(MDL) % 16 == 0 && sizeof(PFN_NUMBER) == 8, "MDL slack");
                ndisemu_zero16(mdl, sizeof *mdl);
                if (size & (NDISEMU_ALIGN - 1))
                    *(uint64_t *)((uint8_t *)mdl + size) = 0;
                at += ndisemu_inner_span(size);
                make_partial(k, mr, m, in, (uint32_t)piece, origin);
                if (pinning) {         /* the source's buffer must outlive this MDL */
                    uint32_t block = ndisemu_rec_of(k, m)->u.mdl.described;
                    ndisemu_pin(k, rec, mr, block ? ndisemu_rec_at(k, block) : NULL);
                    mr->u.mdl.described = block;    /* where the next check looks first */
                }
                *mdl_link = mdl;
                mdl_link = &mdl->Next;
                length -= piece;
                if (!length)
                    break;
            }
            m = m->Next;
            in = 0;
        }
        /* NdisAdjustNetBufferCurrentMdl's result: the first partial MDL,
         * never empty, holds the first byte */
        nb->MdlChain = chain;
        nb->DataLength = src->DataLength;
        nb->CurrentMdl = chain;
    }
}

int ndisemu_clone_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *orig, void *nbl_pool, void *nb_pool,
                      uint32_t flags, uint32_t origin, NET_BUFFER_LIST **out)
{
    int original_mdls = (flags & NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS) != 0;
    ndisemu_pool *pool, *nbp;
    NET_BUFFER_LIST *nbl;
    ndisemu_nbl_private *priv;
    ndisemu_rec *r;
    uint64_t bytes;
    uint32_t nbs;
    *out = NULL;
    NDISEMU_CALL(k, origin == NDISEMU_ORIGIN_FWPS_CLONE ? "FwpsAllocateCloneNetBufferList0"
                                                        : "NdisAllocateCloneNetBufferList");
    if (flags & ~(uint32_t)NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER, flags, 0,
                                NDISEMU_KIND_NBL, orig,
                                "AllocateCloneFlags has NDIS_CLONE_FLAGS_RESERVED or "
                                "undefined bits set");
    if (origin == NDISEMU_ORIGIN_FWPS_CLONE && flags)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER, flags, 0,
                                NDISEMU_KIND_NBL, orig, "FWPS clone flags must be 0");
    if (ndisemu_check_irql(k) || !(pool = resolve_pools(k, nbl_pool, nb_pool, &nbp)))
        return NDISEMU_BUGCHECK;
    if (origin == NDISEMU_ORIGIN_FWPS_CLONE && check_parent_count(k, orig))
        return NDISEMU_BUGCHECK;
    if (!ndisemu_check_object(k, orig, NDISEMU_KIND_NBL) ||
        !(bytes = clone_check(k, orig, original_mdls, &nbs)))
        return NDISEMU_BUGCHECK;
    /* Nothing is zeroed by the allocation: the NBL here, each inner object
     * as it is carved (a constant-size memset stays inline). */
    r = ndisemu_alloc_composite(k, bytes, NDISEMU_NBL_BYTES, NDISEMU_KIND_NBL,
                                pool->tag ? pool->tag : CLONE_TAG, NULL, 0);
    if (!r)
        return ndisemu_alloc_rc(k);
    nbl = ndisemu_rec_payload(k, r);
    ndisemu_zero16(nbl, ndisemu_align_up(NDISEMU_NBL_BYTES, NDISEMU_ALIGN));
    r->origin = origin;
    priv = &r->u.nbl;
    priv->pool = pool;
    priv->nb_pool = nbp;
    priv->nb_count = nbs;
    priv->clone_flags = flags;
    nbl->NdisPoolHandle = pool->handle;
    nbl->NetBufferListInfo[NetBufferListProtocolId] = (void *)(uintptr_t)pool->protocol_id;
    clone_carve(k, r, nbl, orig, nbp, origin, original_mdls);
    if (k->verifier)
        priv->snapshot = shape_hash(nbl);
    pool->live++;
    pool->allocated++;
    nbp->live += nbs;
    nbp->allocated += nbs;
    if (origin == NDISEMU_ORIGIN_FWPS_CLONE) {
        /* Unlike the NDIS calls, the FWPS clone links the child to its parent. */
        nbl->ParentNetBufferList = orig;
        priv->parent = orig;
        orig->ChildRefCount++;
    }
    ndisemu_trace_derived(k, nbl, orig, origin, original_mdls
                                                ? NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS : 0);
    *out = nbl;
    return NDISEMU_OK;
}

NET_BUFFER_LIST *ndisemu_clone_default_pools(ndisemu_kernel *k, NET_BUFFER_LIST *orig,
                                            uint32_t flags, uint32_t origin)
{
    NET_BUFFER_LIST *clone;
    k->last_rc = ndisemu_clone_nbl(k, orig, k->default_nbl_pool, k->default_nb_pool, flags,
                                   origin, &clone);
    return clone;
}

int ndisemu_last_rc(ndisemu_kernel *k)
{
    return k->last_rc;
}

int ndisemu_fragment_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *orig, void *nbl_pool,
                         void *nb_pool, uint32_t start, uint32_t max_len, uint32_t delta,
                         uint32_t backfill, NET_BUFFER_LIST **out)
{
    derive d = { .k = k, .mode = DERIVE_FRAGMENT, .origin = NDISEMU_ORIGIN_FRAGMENT,
                 .start = start, .max_len = max_len, .delta = delta, .backfill = backfill };
    ndisemu_pool *pool, *nbp;
    *out = NULL;
    NDISEMU_CALL(k, "NdisAllocateFragmentNetBufferList");
    if (ndisemu_check_irql(k) || !(pool = resolve_pools(k, nbl_pool, nb_pool, &nbp)))
        return NDISEMU_BUGCHECK;
    if (!max_len || (uint64_t)delta + backfill > UINT32_MAX / 2)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER, max_len,
                                (uint64_t)delta + backfill, NDISEMU_KIND_NBL, orig,
                                "MaximumLength is 0 or DataOffsetDelta + DataBackFill too big");
    return derive_nbl(&d, orig, pool, nbp, out);
}

int ndisemu_reassemble_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *frag, void *pool_handle,
                           int pool_given, uint32_t start, uint32_t delta, uint32_t backfill,
                           NET_BUFFER_LIST **out)
{
    derive d = { .k = k, .mode = DERIVE_REASSEMBLE, .origin = NDISEMU_ORIGIN_REASSEMBLED,
                 .start = start, .delta = delta, .backfill = backfill };
    ndisemu_pool *pool;
    *out = NULL;
    NDISEMU_CALL(k, "NdisAllocateReassembledNetBufferList");
    if (ndisemu_check_irql(k))
        return NDISEMU_BUGCHECK;
    if ((uint64_t)delta + backfill > UINT32_MAX / 2)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER, delta,
                                backfill, NDISEMU_KIND_NBL, frag,
                                "DataOffsetDelta + DataBackFill too big");
    pool = ndisemu_check_pool(k, pool_handle, NDISEMU_KIND_NBL_POOL);
    if (!pool)
        return NDISEMU_BUGCHECK;
    if (pool_given && (!pool->allocate_nb || pool->data_size))
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_WRONG_POOL,
                                pool->allocate_nb, pool->data_size, NDISEMU_KIND_NBL_POOL,
                                pool_handle, "pool needs fAllocateNetBuffer TRUE and DataSize 0");
    /* The one NB is charged to the same pool as the NBL. */
    return derive_nbl(&d, frag, pool, pool, out);
}

/* ---- frees -------------------------------------------------------------- */

/* What every derived-NBL free checks before releasing the block: the shape
 * restored (NB list and MDL chains as allocated, no retreat MDLs left). */
static int check_restored_slow(ndisemu_kernel *k, NET_BUFFER_LIST *nbl,
                               ndisemu_nbl_private *priv)
{
    NET_BUFFER *nb;
    if (ndisemu_check_nbl(k, nbl))
        return NDISEMU_BUGCHECK;
    for (nb = nbl->FirstNetBuffer; nb; nb = nb->Next)
        if (ndisemu_nb_private_of(k, nb)->retreat_mdls)
            return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_CLONE_MODIFIED,
                                    ndisemu_nb_private_of(k, nb)->retreat_mdls, 0, NDISEMU_KIND_NB,
                                    nb, "an NB still holds MDLs a retreat added: advance "
                                    "it back before freeing");
    if (shape_hash(nbl) != priv->snapshot)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_CLONE_MODIFIED, 0, 0,
                                NDISEMU_KIND_NBL, nbl,
                                "NB list or MDL chains changed since allocation and not "
                                "restored before the free");
    return NDISEMU_OK;
}

static inline int check_restored(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, ndisemu_rec *r)
{
    if (!k->verifier || !r->u.nbl.snapshot)
        return NDISEMU_OK;
    return check_restored_slow(k, nbl, &r->u.nbl);
}

static void release(ndisemu_kernel *k, ndisemu_rec *r)
{
    r->u.nbl.pool->live--;
    r->u.nbl.nb_pool->live -= r->u.nbl.nb_count;
    ndisemu_free_rec(k, r, NULL);
}

int ndisemu_free_clone_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *clone, uint32_t flags,
                           uint32_t origin)
{
    ndisemu_nbl_private *priv;
    NET_BUFFER_LIST *parent = NULL;
    ndisemu_rec *r;
    NDISEMU_CALL(k, origin == NDISEMU_ORIGIN_FWPS_CLONE ? "FwpsFreeCloneNetBufferList0"
                                                        : "NdisFreeCloneNetBufferList");
    if (origin == NDISEMU_ORIGIN_FWPS_CLONE && (r = ndisemu_live_rec(k, clone, NDISEMU_KIND_NBL)) &&
        r->origin == NDISEMU_ORIGIN_DEEP_CLONE)
        origin = NDISEMU_ORIGIN_DEEP_CLONE;   /* one free call for both FWPS clones */
    if (!(r = ndisemu_nbl_to_free(k, clone, origin)))
        return NDISEMU_BUGCHECK;
    priv = &r->u.nbl;
    if (flags != priv->clone_flags)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_CLONE_FLAGS, flags,
                                priv->clone_flags, NDISEMU_KIND_NBL, clone,
                                "FreeCloneFlags differs from the AllocateCloneFlags the clone "
                                "was allocated with");
    if (priv->parent) {
        parent = priv->parent;
        if (!ndisemu_check_object(k, parent, NDISEMU_KIND_NBL)) {
            k->bug.rule = "the clone's parent NBL was freed before the clone";
            return NDISEMU_BUGCHECK;
        }
        if (parent->ChildRefCount <= 0)
            return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_CHILDREN_OUTSTANDING,
                                    (uint64_t)(int64_t)parent->ChildRefCount, 0,
                                    NDISEMU_KIND_NBL, parent,
                                    "parent's ChildRefCount is already 0 (changed by hand?)");
    }
    if (check_restored(k, clone, r) || ndisemu_check_release(k, r))
        return NDISEMU_BUGCHECK;
    /* [UNSPEC] chosen: the FWPS free gives back the count its allocation took. */
    if (parent) {
        parent->ChildRefCount--;
        ndisemu_trace_at(k, parent, NDISEMU_TRACE_CHILD_FREED, ndisemu_display_of(k, clone),
                         (uint64_t)(int64_t)parent->ChildRefCount, 0);
    }
    release(k, r);
    return NDISEMU_OK;
}

static int free_derived(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, uint32_t delta,
                        uint32_t origin)
{
    ndisemu_nbl_private *priv;
    ndisemu_rec *r;
    if (!(r = ndisemu_nbl_to_free(k, nbl, origin)))
        return NDISEMU_BUGCHECK;
    priv = &r->u.nbl;
    if (delta != priv->delta)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER, delta,
                                priv->delta, NDISEMU_KIND_NBL, nbl,
                                "DataOffsetDelta differs from the one given at allocation");
    if (check_restored(k, nbl, r) || ndisemu_check_release(k, r))
        return NDISEMU_BUGCHECK;
    release(k, r);                   /* the advance by delta is implied: all goes */
    return NDISEMU_OK;
}

int ndisemu_free_fragment_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *frag, uint32_t delta)
{
    NDISEMU_CALL(k, "NdisFreeFragmentNetBufferList");
    return free_derived(k, frag, delta, NDISEMU_ORIGIN_FRAGMENT);
}

int ndisemu_free_reassembled_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, uint32_t delta)
{
    NDISEMU_CALL(k, "NdisFreeReassembledNetBufferList");
    return free_derived(k, nbl, delta, NDISEMU_ORIGIN_REASSEMBLED);
}

/* ---- the deep clone ------------------------------------------------------ */

int ndisemu_deep_clone_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *orig, void *nbl_pool,
                           void *nb_pool, NET_BUFFER_LIST **out)
{
    derive d = { .k = k, .mode = DERIVE_CLONE, .origin = NDISEMU_ORIGIN_DEEP_CLONE };
    ndisemu_pool *pool, *nbp;
    NET_BUFFER_LIST *nbl;
    NET_BUFFER *src;
    uint32_t context_bytes;
    *out = NULL;
    NDISEMU_CALL(k, "FwpsAllocateDeepCloneNetBufferList0");
    if (ndisemu_check_irql(k) || !(pool = resolve_pools(k, nbl_pool, nb_pool, &nbp)))
        return NDISEMU_BUGCHECK;
    if (check_sources(k, orig) < 0 || check_parent_count(k, orig))
        return NDISEMU_BUGCHECK;
    if (orig->Context && !ndisemu_check_object(k, orig->Context, NDISEMU_KIND_CONTEXT))
        return NDISEMU_BUGCHECK;
    /* [UNSPEC] The initial context: as large as the original's first block or
     * the pool's ContextSize, at least MEMORY_ALLOCATION_ALIGNMENT, all unused. */
    context_bytes = pool->context_size;
    if (orig->Context && orig->Context->Size > context_bytes)
        context_bytes = orig->Context->Size;
    if (context_bytes < MEMORY_ALLOCATION_ALIGNMENT)
        context_bytes = MEMORY_ALLOCATION_ALIGNMENT;
    d.bytes = ndisemu_align_up(NDISEMU_NBL_BYTES, NDISEMU_ALIGN) +
              ndisemu_inner_span(sizeof(NET_BUFFER_LIST_CONTEXT) + context_bytes);
    for (src = orig->FirstNetBuffer; src; src = src->Next) {
        d.bytes += ndisemu_inner_span(NDISEMU_NB_BYTES);
        if (src->DataLength)
            d.bytes += ndisemu_inner_span(ndisemu_mdl_bytes(max_pages(src->DataLength))) +
                       ndisemu_inner_span(src->DataLength);
    }
    d.nb_pool = nbp;
    /* As for every derived block, only the NBL is zeroed here and each
     * inner object as it is carved, but the data buffers: the copy fills
     * them (ndisemu_inner sets their slack).  Zeroing 64 KiB only to
     * overwrite it made a deep clone cost two passes over the data. */
    nbl = start_nbl(&d, pool, nbp, ndisemu_align_up(NDISEMU_NBL_BYTES, NDISEMU_ALIGN));
    if (!nbl)
        return ndisemu_alloc_rc(k);
    {
        NET_BUFFER_LIST_CONTEXT *ctx = carve(&d, sizeof *ctx + context_bytes,
                                                    NDISEMU_KIND_CONTEXT);
        ctx->Size = (USHORT)context_bytes;
        ctx->Offset = (USHORT)context_bytes;
        nbl->Context = ctx;
    }
    for (src = orig->FirstNetBuffer; src; src = src->Next) {
        MDL *mdl = NULL;
        d.nbs++;
        d.nb = carve(&d, NDISEMU_NB_BYTES, NDISEMU_KIND_NB);
        d.nb->NdisPoolHandle = nbp->handle;
        ndisemu_rec_of(k, d.nb)->origin = d.origin;
        *d.nb_link = d.nb;
        d.nb_link = &d.nb->Next;
        if (src->DataLength) {
            uint8_t *data;
            ndisemu_rec *r;
            mdl = carve(&d, ndisemu_mdl_bytes(max_pages(src->DataLength)),
                               NDISEMU_KIND_MDL);
            data = ndisemu_rec_payload(k, carve_raw(&d, src->DataLength, NDISEMU_KIND_DATA));
            /* one memcpy per source MDL run */
            k->stats.bytes_copied += ndisemu_chain_copy_out(src->CurrentMdl,
                                                            src->CurrentMdlOffset,
                                                            src->DataLength, data);
            ndisemu_mdl_init_built(k, mdl, data, src->DataLength);
            r = ndisemu_rec_of(k, mdl);
            r->origin = d.origin;
            r->u.mdl.length = src->DataLength;
        }
        ndisemu_nb_fill(d.nb, mdl, 0, src->DataLength);
    }
    finish_nbl(&d, nbl, pool, nbp);
    adopt(&d, nbl, orig);
    ndisemu_trace_derived(k, nbl, orig, d.origin, 0);
    *out = nbl;
    return NDISEMU_OK;
}

/* ---- the other FWPS NBL calls --------------------------------------------- */

int ndisemu_fwps_allocate_nb_and_nbl(ndisemu_kernel *k, void *pool, uint16_t context_size,
                                     uint16_t context_backfill, MDL *chain,
                                     uint32_t data_offset, uint64_t data_length,
                                     NET_BUFFER_LIST **out)
{
    NDISEMU_CALL(k, "FwpsAllocateNetBufferAndNetBufferList0");
    return ndisemu_nb_and_nbl(k, pool, context_size, context_backfill, chain, data_offset,
                              data_length, NDISEMU_ORIGIN_FWPS_NBL, out);
}

int ndisemu_fwps_free_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *nbl)
{
    NDISEMU_CALL(k, "FwpsFreeNetBufferList0");
    /* [UNSPEC] chosen: the caller's MDL chain is the caller's; not freed. */
    return ndisemu_free_pool_nbl(k, nbl, NDISEMU_ORIGIN_FWPS_NBL);
}

int ndisemu_fwps_reference(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, int delta,
                           int dispatch_level)
{
    ndisemu_nbl_private *priv;
    ndisemu_rec *r;
    NDISEMU_CALL(k, delta < 0 ? "FwpsDereferenceNetBufferList0" : "FwpsReferenceNetBufferList0");
    if (ndisemu_check_irql(k) || !(r = ndisemu_check_object(k, nbl, NDISEMU_KIND_NBL)))
        return NDISEMU_BUGCHECK;
    priv = &r->u.nbl;
    if (dispatch_level && k->irql != DISPATCH_LEVEL)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_PARAMETER, k->irql,
                                DISPATCH_LEVEL, NDISEMU_KIND_NBL, nbl,
                                "dispatchLevel is TRUE but the IRQL is not DISPATCH_LEVEL");
    if (delta < 0 && priv->references <= 0)
        return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_REFERENCED, 0, 0,
                                NDISEMU_KIND_NBL, nbl,
                                "FwpsDereferenceNetBufferList0 without a matching reference");
    if (delta > 0 && ndisemu_check_increment(k, priv->references, NDISEMU_KIND_NBL, nbl,
                                             "reference count is at LONG_MAX"))
        return NDISEMU_BUGCHECK;
    priv->references += delta;
    ndisemu_trace(k, r, NDISEMU_TRACE_REFERENCED, (uint64_t)(int64_t)delta,
                  (uint64_t)(int64_t)priv->references, 0);
    return NDISEMU_OK;
}
