/*
 * arena.c - the nonpaged pool: one contiguous arena per emulated machine,
 * carved into blocks, each with a 32-byte pool header imprint in front and
 * an allocation record the core keeps outside the arena (see kernel.h).
 *
 * Blocks are carved by bumping a cursor and, once freed, go on a free list
 * per exact span (or on their NDIS pool's lookaside list) for reuse, as a
 * lookaside list would.  Blocks are never split, merged or moved, so a
 * pointer into the arena stays valid for the arena's life, and carving order
 * is address order: the block containing any address is found by walking
 * records from the first block of its 4 KiB chunk (block_containing).
 *
 * Special pool, under the verifier: a freed block is poisoned and the poison
 * is checked when the block is handed out again (a changed byte is a write
 * through a stale pointer: BugCheck 0xD5), and the slack between the length
 * a caller asked for and the block's end holds a guard pattern that the free
 * checks (BugCheck 0xC1).  A block found corrupted is retired: reported
 * once, never handed out again.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "kernel.h"

/* ---- AddressSanitizer's view of the arena ---------------------------------- */
/*
 * When a driver built with ASan is loaded, the arena is poisoned so that its
 * reads and writes into pool headers, freed blocks and the bytes past a
 * buffer's requested length are reported at the driver's line.  The core is
 * not instrumented, but ASan intercepts the memcpy/memset/memcmp it calls:
 * it unpoisons what it touches first and poisons it again after.  The
 * runtime's functions are looked up at run time: the core never links it.
 */
typedef void (*shadow_fn)(void const volatile *addr, size_t size);
static shadow_fn shadow_poison_fn, shadow_unpoison_fn;

static void shadow(shadow_fn fn, const void *p, uint64_t n)
{
    if (n)
        fn(p, n);
}
/* One test of k->asan inline: the common case, no sanitized driver. */
#define POISON(k, p, n) do { if ((k)->asan) shadow(shadow_poison_fn, (p), (n)); } while (0)
#define UNPOISON(k, p, n) do { if ((k)->asan) shadow(shadow_unpoison_fn, (p), (n)); } while (0)

#define NDISEMU_CHUNK_SHIFT 12

void *ndisemu_map_arena(uint64_t size, uint64_t hint)
{
    void *p;
#ifdef MAP_FIXED_NOREPLACE
    /* hint 0 means "no fixed slot": a fixed mapping at address 0 can succeed
     * (mmap_min_addr 0) and would come back as a NULL arena. */
    if (hint) {
        p = mmap((void *)(uintptr_t)hint, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);
        if (p != MAP_FAILED && (uintptr_t)p == hint)
            return p;
        if (p != MAP_FAILED)
            munmap(p, size);
    }
#endif
    /* The fixed address is taken: any address works, only the bytes of
     * pointer fields then differ between runs (display addresses do not). */
    (void)hint;
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
             -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void ndisemu_unmap_arena(void *base, uint64_t size)
{
    if (base)
        munmap(base, size);
}

/* Zeroed memory the core owns; pages are touched only where used. */
static void *table(uint64_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static uint64_t map_bytes(uint64_t size)
{
    return ((size >> NDISEMU_GRANULE_SHIFT) + 1) * sizeof(uint32_t);
}

static uint64_t chunk_bytes(uint64_t size)
{
    return ((size >> NDISEMU_CHUNK_SHIFT) + 1) * sizeof(uint32_t);
}

/* Every object takes at least a header and one granule of the arena, and a
 * record belongs to one header position at a time: this many suffice. */
static uint32_t max_recs(uint64_t size)
{
    uint64_t n = size / (NDISEMU_HEADER + NDISEMU_ALIGN) + 2;
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

ndisemu_kernel *ndisemu_kernel_create(void *base, uint64_t size, uint64_t display_base)
{
    ndisemu_kernel *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->classes = calloc(NDISEMU_CLASSES, sizeof *k->classes);
    k->map = table(map_bytes(size));
    k->chunk_first = table(chunk_bytes(size));
    k->max_recs = max_recs(size);
    k->recs = table((uint64_t)k->max_recs * sizeof *k->recs);
    k->spare = table((uint64_t)k->max_recs * sizeof *k->spare);
    if (!k->classes || !k->map || !k->chunk_first || !k->recs || !k->spare) {
        k->size = size;
        ndisemu_kernel_destroy(k);
        return NULL;
    }
    k->base = base;
    k->size = size;
    k->display_base = display_base;
    k->verifier = NDISEMU_VERIFIER_FULL;
    k->stats.arena_size = size;
    k->rng = 0x9E3779B97F4A7C15ull;
    k->nrecs = 1;                     /* id 0 means "none" */
    return k;
}

void ndisemu_kernel_destroy(ndisemu_kernel *k)
{
    uint32_t i;
    if (!k)
        return;
    ndisemu_trace_release(k);
    ndisemu_asan_forget(k);
    for (i = 1; k->recs && i < k->nrecs; i++) {
        ndisemu_rec *r = ndisemu_rec_at(k, i);
        if (r->kind == NDISEMU_KIND_NBL)
            ndisemu_nbl_private_release(k, r);
        else if (r->kind == NDISEMU_KIND_NBL_POOL || r->kind == NDISEMU_KIND_NB_POOL) {
            ndisemu_ids_release(&r->u.pool.lookaside);
            ndisemu_ids_release(&r->u.pool.quarantine);
        }
    }
    if (k->recs)
        munmap(k->recs, (uint64_t)k->max_recs * sizeof *k->recs);
    if (k->spare)
        munmap(k->spare, (uint64_t)k->max_recs * sizeof *k->spare);
    if (k->classes)
        for (i = 0; i < NDISEMU_CLASSES; i++)
            ndisemu_ids_release(&k->classes[i]);
    free(k->classes);
    ndisemu_ids_release(&k->large);
    if (k->map)
        munmap(k->map, map_bytes(k->size));
    if (k->chunk_first)
        munmap(k->chunk_first, chunk_bytes(k->size));
    free(k);
}

ndisemu_bug *ndisemu_last_bug(ndisemu_kernel *k) { return &k->bug; }
void ndisemu_set_irql(ndisemu_kernel *k, uint32_t irql) { k->irql = irql; }
uint32_t ndisemu_get_irql(ndisemu_kernel *k) { return k->irql; }
void ndisemu_set_verifier(ndisemu_kernel *k, int level) { k->verifier = level; }

void ndisemu_inject_failures(ndisemu_kernel *k, double rate, uint64_t seed)
{
    k->fail_rate = rate;
    /* splitmix64 of the seed: never zero, different seeds diverge at once */
    seed += 0x9E3779B97F4A7C15ull;
    seed = (seed ^ (seed >> 30)) * 0xBF58476D1CE4E5B9ull;
    seed = (seed ^ (seed >> 27)) * 0x94D049BB133111EBull;
    k->rng = (seed ^ (seed >> 31)) | 1;
}

int ndisemu_should_fail(ndisemu_kernel *k)
{
    uint64_t x;
    if (k->fail_rate <= 0.0)
        return 0;
    x = k->rng;                       /* xorshift64: deterministic per seed */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    k->rng = x;
    if ((double)(x >> 11) * (1.0 / 9007199254740992.0) < k->fail_rate) {
        k->stats.failures_injected++;
        return 1;
    }
    return 0;
}

void ndisemu_get_stats(ndisemu_kernel *k, ndisemu_stats *out)
{
    *out = k->stats;
    out->arena_used = k->top;
}

const uint64_t *ndisemu_free_count(ndisemu_kernel *k)
{
    return &k->frees;
}

uint64_t ndisemu_display(ndisemu_kernel *k, const void *p)
{
    return p ? ndisemu_display_of(k, p) : 0;   /* outside the arena: shown as it is */
}

void *ndisemu_from_display(ndisemu_kernel *k, uint64_t display)
{
    if (display < k->display_base || display - k->display_base > k->size)
        return NULL;
    return k->base + (display - k->display_base);
}

/* ---- id lists --------------------------------------------------------- */

int ndisemu_ids_grow(ndisemu_ids *list)
{
    uint32_t capacity = list->capacity ? list->capacity * 2 : 8;
    uint32_t *ids = realloc(list->ids, (uint64_t)capacity * sizeof *ids);
    if (!ids)
        return 0;
    list->ids = ids;
    list->capacity = capacity;
    return 1;
}

void ndisemu_ids_release(ndisemu_ids *list)
{
    if (!list->ids)
        return;
    free(list->ids);
    list->ids = NULL;
    list->count = list->capacity = 0;
}

/* ---- records ---------------------------------------------------------- */

/* A record for a new object: a released one, or the next never used.  The
 * table holds a record for every header the arena could hold, so this
 * cannot run out (checked all the same).  The record is zeroed up to and
 * including `keep` bytes of its per-kind part. */
static ndisemu_rec *new_rec(ndisemu_kernel *k, uint64_t keep)
{
    uint32_t id;
    ndisemu_rec *r;
    if (k->nspare)
        id = k->spare[--k->nspare];
    else if (k->nrecs < k->max_recs)
        id = k->nrecs++;
    else
        return NULL;
    r = ndisemu_rec_at(k, id);
    memset(r, 0, offsetof(ndisemu_rec, u) + keep);
    r->id = id;
    return r;
}

/* The header imprint in the arena: for people reading dumps, never read.
 * Headers stay poisoned for ASan; a sanitized core checks its own stores. */
static inline __attribute__((always_inline)) void imprint(ndisemu_kernel *k,
                                                          const ndisemu_rec *r, uint32_t outer)
{
    ndisemu_header *h = (ndisemu_header *)(k->base + r->offset);
    UNPOISON(k, h, sizeof *h);
    h->magic = NDISEMU_MAGIC;
    h->kind = r->kind;
    h->state = r->state;
    h->tag = r->tag;
    h->size = r->size;
    h->self = r->offset;
    h->span = r->span;
    h->outer = outer;
    POISON(k, h, sizeof *h);
}

static inline void imprint_state(ndisemu_kernel *k, const ndisemu_rec *r)
{
    ndisemu_header *h = (ndisemu_header *)(k->base + r->offset);
    UNPOISON(k, h, sizeof *h);
    h->state = r->state;
    POISON(k, h, sizeof *h);
}

/* Inner objects of a block handed out again: their records go back. */
static void release_inner(ndisemu_kernel *k, ndisemu_rec *block)
{
    uint32_t id = block->next;
    while (id) {
        ndisemu_rec *inner = ndisemu_rec_at(k, id);
        uint32_t next = inner->next;
        k->map[inner->offset >> NDISEMU_GRANULE_SHIFT] = 0;
        inner->offset = UINT64_MAX;   /* no pointer maps to it any more */
        inner->state = 0;
        k->spare[k->nspare++] = id;   /* at most max_recs ids exist */
        id = next;
    }
    block->next = 0;
}

/* ---- special pool ------------------------------------------------------ */

/* Offset of the first byte of [p, p + n) that is not `value` (the poison
 * or the guard byte), or n.  Compared a page at a time with memcmp, which
 * libc vectorises: the check runs on every reuse of a freed block. */
static uint64_t first_not(const uint8_t *p, uint64_t n, uint8_t value)
{
    static uint8_t pattern[2][4096];
    const uint8_t *page = pattern[value == NDISEMU_GUARD];
    uint64_t i, run;
    if (!page[0]) {
        memset(pattern[0], NDISEMU_POISON, sizeof pattern[0]);
        memset(pattern[1], NDISEMU_GUARD, sizeof pattern[1]);
    }
    for (i = 0; i < n; i += run) {
        run = n - i < sizeof pattern[0] ? n - i : sizeof pattern[0];
        if (memcmp(p + i, page, run) != 0)
            break;
    }
    for (; i < n; i++)
        if (p[i] != value)
            return i;
    return n;
}

/* Buffers get guard bytes: data and memory the caller asked a length of. */
static int guarded_kind(uint16_t kind)
{
    return kind == NDISEMU_KIND_DATA || kind == NDISEMU_KIND_MEMORY;
}

/* A block whose free must look at it or its inner objects. */
static void watch(ndisemu_kernel *k, ndisemu_rec *r)
{
    ndisemu_rec_at(k, r->block)->flags |= NDISEMU_REC_WATCHED;
}

static void arm_guard(ndisemu_kernel *k, ndisemu_rec *r)
{
    uint8_t *payload = ndisemu_rec_payload(k, r);
    uint64_t end = ndisemu_align_up(r->size, NDISEMU_ALIGN);
    if (!guarded_kind(r->kind) || end == r->size)
        return;
    if (k->verifier) {
        memset(payload + r->size, NDISEMU_GUARD, end - r->size);
        r->flags |= NDISEMU_REC_GUARDED;
        watch(k, r);
    }
    /* for ASan, the slack is out of bounds with the verifier on or off */
    POISON(k, payload + r->size, end - r->size);
}

void ndisemu_watch(ndisemu_kernel *k, ndisemu_rec *r)
{
    watch(k, r);
}

/* BugCheck 0xC1 if a guarded buffer's slack was written; the guard is
 * re-armed so the overrun is reported once. */
static int check_guard(ndisemu_kernel *k, ndisemu_rec *r, ndisemu_rec *freed)
{
    uint8_t *payload = ndisemu_rec_payload(k, r);
    uint64_t slack = ndisemu_align_up(r->size, NDISEMU_ALIGN) - r->size, at;
    uint64_t p[4];
    if (!(r->flags & NDISEMU_REC_GUARDED) || !slack)
        return NDISEMU_OK;
    UNPOISON(k, payload + r->size, slack);
    at = first_not(payload + r->size, slack, NDISEMU_GUARD);
    if (at == slack) {
        POISON(k, payload + r->size, slack);
        return NDISEMU_OK;
    }
    p[0] = ndisemu_display(k, ndisemu_rec_payload(k, freed));
    p[1] = ndisemu_display(k, payload + r->size + at);
    p[2] = 0;
    p[3] = NDISEMU_SLACK_OVERWRITTEN;
    ndisemu_stop(k, NDISEMU_SPECIAL_POOL_CORRUPTION, p, r->kind, payload,
                 "bytes past the end of the allocation were written (buffer overrun)");
    snprintf(k->bug.detail, sizeof k->bug.detail,
             "%u-byte buffer tagged '%.4s' (allocated by %s): byte +0x%llx past its end "
             "was changed from 0x%02X to 0x%02X",
             r->size, (const char *)&r->tag, r->call ? r->call : "?",
             (unsigned long long)at, NDISEMU_GUARD, payload[r->size + at]);
    memset(payload + r->size, NDISEMU_GUARD, slack);
    POISON(k, payload + r->size, slack);
    return NDISEMU_BUGCHECK;
}

int ndisemu_check_release_slow(ndisemu_kernel *k, ndisemu_rec *block)
{
    uint32_t id;
    for (id = block->id; id; id = id == block->id ? block->next : ndisemu_rec_at(k, id)->next) {
        ndisemu_rec *r = ndisemu_rec_at(k, id);
        if (r->state != NDISEMU_STATE_LIVE)
            continue;
        if (r->pins) {
            ndisemu_rec *by = ndisemu_rec_at(k, r->pinned_by);
            ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_STILL_DESCRIBED, r->pins,
                             ndisemu_display(k, ndisemu_rec_payload(k, by)), r->kind,
                             ndisemu_rec_payload(k, r),
                             "a live derived NBL still describes these bytes or uses this MDL: "
                             "free it first");
            snprintf(k->bug.detail, sizeof k->bug.detail,
                     "%u live derived NBL(s) depend on it; the last made is the "
                     "NET_BUFFER_LIST at %#llx (allocated by %s)",
                     r->pins, (unsigned long long)ndisemu_display(k, ndisemu_rec_payload(k, by)),
                     by->call ? by->call : "?");
            return NDISEMU_BUGCHECK;
        }
        if (check_guard(k, r, block))
            return NDISEMU_BUGCHECK;
    }
    return NDISEMU_OK;
}

/* BugCheck 0xD5 if a poisoned free block was written since its free.  The
 * block stays poisoned for ASan unless `handing_out` (it is being reused). */
static int check_poison(ndisemu_kernel *k, ndisemu_rec *r, int handing_out)
{
    uint8_t *payload = ndisemu_rec_payload(k, r);
    uint64_t n = r->span - NDISEMU_HEADER, at, p[4];
    if (!(r->flags & NDISEMU_REC_POISONED))
        return NDISEMU_OK;
    UNPOISON(k, payload, n);
    at = first_not(payload, n, NDISEMU_POISON);
    if (at == n) {
        if (!handing_out)
            POISON(k, payload, n);
        return NDISEMU_OK;
    }
    POISON(k, payload, n);
    p[0] = ndisemu_display(k, payload + at);
    p[1] = 1;                          /* a write */
    p[2] = 0;
    p[3] = 0;
    ndisemu_stop(k, NDISEMU_FREED_SPECIAL_POOL, p, r->kind, payload,
                 "freed memory was written through a stale pointer");
    snprintf(k->bug.detail, sizeof k->bug.detail,
             "block tagged '%.4s' (%u bytes, allocated by %s, freed by %s): byte +0x%llx "
             "changed from 0x%02X to 0x%02X after the free",
             (const char *)&r->tag, r->span - NDISEMU_HEADER, r->call ? r->call : "?",
             r->freed_by ? r->freed_by : "?", (unsigned long long)at, NDISEMU_POISON,
             payload[at]);
    r->flags |= NDISEMU_REC_RETIRED;
    return NDISEMU_BUGCHECK;
}

/* ---- allocation --------------------------------------------------------- */

static ndisemu_ids *free_list(ndisemu_kernel *k, uint64_t span)
{
    return span <= NDISEMU_CLASS_LIMIT ? &k->classes[span / NDISEMU_ALIGN] : &k->large;
}

/* Takes a free block of `span` off `list` (exact fit), or NULL.  A block
 * whose poison changed is retired and reported instead. */
static ndisemu_rec *take_free(ndisemu_kernel *k, ndisemu_ids *list, uint64_t span)
{
    uint32_t i = list->count;
    if (list != &k->large) {
        /* a class list (or a pool's lookaside) holds one span: its last
         * block fits */
        ndisemu_rec *r = ndisemu_rec_at(k, list->ids[--list->count]);
        if (k->verifier && check_poison(k, r, 1)) {
            k->alloc_refused = 1;
            return NULL;
        }
        return r;
    }
    while (i--) {
        ndisemu_rec *r = ndisemu_rec_at(k, list->ids[i]);
        if (r->span != span)
            continue;                  /* only the large list mixes spans */
        list->ids[i] = list->ids[--list->count];
        if (k->verifier && check_poison(k, r, 1)) {
            k->alloc_refused = 1;
            return NULL;
        }
        return r;
    }
    return NULL;
}

static void note_carved(ndisemu_kernel *k, ndisemu_rec *r)
{
    uint64_t c = r->offset >> NDISEMU_CHUNK_SHIFT;
    if (!k->chunk_first[c])
        k->chunk_first[c] = r->id;
}

ndisemu_rec *ndisemu_alloc_composite(ndisemu_kernel *k, uint64_t size, uint32_t own,
                                     uint16_t kind, uint32_t tag, ndisemu_pool *pool,
                                     uint64_t zero)
{
    uint64_t span = ndisemu_block_span(size);
    ndisemu_rec *r = NULL;
    ndisemu_ids *list;
    int same_header = 0;

    k->alloc_refused = 0;
    if (size > UINT32_MAX - 64 || (k->fail_rate > 0.0 && ndisemu_should_fail(k)))
        return NULL;
    if (pool && pool->object_bytes == size && pool->lookaside.count &&
        !(pool->flags & NET_BUFFER_LIST_POOL_FLAG_VERIFY))
        list = &pool->lookaside;
    else
        list = free_list(k, span);
    if (list->count) {
        r = take_free(k, list, span);
        if (!r && k->alloc_refused)
            return NULL;
    }
    if (r) {
        /* A composite block handed out again as the same kind (a clone for
         * a clone) keeps its inner objects' records and, when nothing
         * overwrote them, their header imprints: carving the same layout
         * again reuses them (ndisemu_inner).  Otherwise they go.  Its own
         * header (in front of the payload, never poisoned) needs only its
         * state when kind, tag and size are those of its last life. */
        int whole = r->kind == kind && (kind == NDISEMU_KIND_NBL || kind == NDISEMU_KIND_NB);
        int imprinted = whole && !(r->flags & NDISEMU_REC_POISONED);
        same_header = r->kind == kind && r->tag == tag && r->size == own;
        if (!whole)
            release_inner(k, r);
        /* everything from origin on: the origin, then 16-byte stores */
        _Static_assert(offsetof(ndisemu_rec, origin) == 28 && sizeof(ndisemu_rec) % 16 == 0,
                       "ndisemu_rec: origin ends 16-aligned, records are 16-aligned");
        r->origin = 0;
        ndisemu_zero16((uint8_t *)r + 32, sizeof *r - 32);
        if (imprinted)
            r->flags = NDISEMU_REC_IMPRINTED;
    } else {
        if (k->top == 0)
            k->top = NDISEMU_ALIGN;   /* offset 0 stays unused */
        if (span > k->size || k->top > k->size - span || !(r = new_rec(k, sizeof r->u)))
            return NULL;
        r->offset = k->top;
        r->span = (uint32_t)span;
        r->block = r->id;
        k->top += span;
        k->map[r->offset >> NDISEMU_GRANULE_SHIFT] = r->id;
        note_carved(k, r);
    }
    r->kind = kind;
    r->state = NDISEMU_STATE_LIVE;
    r->tag = tag;
    r->size = own;
    r->call = k->call;
    if (same_header)
        imprint_state(k, r);
    else
        imprint(k, r, 0);
    UNPOISON(k, ndisemu_rec_payload(k, r), span - NDISEMU_HEADER);
    if (zero)
        memset(ndisemu_rec_payload(k, r), 0,
               zero < span - NDISEMU_HEADER ? zero : span - NDISEMU_HEADER);
    if (zero < size && own == size)    /* a plain block the caller fills: its slack */
        memset((uint8_t *)ndisemu_rec_payload(k, r) + size, 0, span - NDISEMU_HEADER - size);
    if (guarded_kind(kind))
        arm_guard(k, r);
    k->stats.live[kind]++;
    k->stats.bytes_live += span;
    k->stats.allocations++;
    ndisemu_trace_allocated(k, r, NULL);
    return r;
}

ndisemu_rec *ndisemu_alloc(ndisemu_kernel *k, uint64_t size, uint16_t kind, uint32_t tag,
                           ndisemu_pool *pool, uint64_t zero)
{
    return ndisemu_alloc_composite(k, size, (uint32_t)size, kind, tag, pool, zero);
}

void *ndisemu_block_alloc_ex(ndisemu_kernel *k, uint64_t size, uint16_t kind, uint32_t tag,
                             ndisemu_pool *pool, uint64_t zero)
{
    ndisemu_rec *r = ndisemu_alloc(k, size, kind, tag, pool, zero);
    return r ? ndisemu_rec_payload(k, r) : NULL;
}

void *ndisemu_block_alloc(ndisemu_kernel *k, uint64_t size, uint16_t kind, uint32_t tag,
                          ndisemu_pool *pool)
{
    return ndisemu_block_alloc_ex(k, size, kind, tag, pool, UINT64_MAX);
}

ndisemu_rec *ndisemu_inner(ndisemu_kernel *k, ndisemu_rec *outer, uint8_t **cursor,
                           uint64_t size, uint16_t kind, uint32_t tag)
{
    uint64_t offset = (uint64_t)(*cursor - k->base);
    uint32_t id = k->map[offset >> NDISEMU_GRANULE_SHIFT];
    ndisemu_rec *r = ndisemu_rec_at(k, id);     /* record 0 is never an inner object */
    if (id && r->block == outer->id && r->offset == offset && r->state == NDISEMU_STATE_FREE) {
        /* The block's last life had an object here: its record serves
         * again.  Its header imprint too, if it was of the same kind, size
         * and tag and no poison overwrote it: only the state changes. */
        int same_imprint = (outer->flags & NDISEMU_REC_IMPRINTED) && r->kind == kind &&
                           r->size == size && r->tag == tag;
        ndisemu_inner_relive(k, r);
        r->size = (uint32_t)size;
        r->kind = kind;
        r->tag = tag;
        if (same_imprint)
            imprint_state(k, r);
        else
            imprint(k, r, (uint32_t)(offset - outer->offset));
    } else {
        /* The per-kind part of an inner object (NB, MDL, data, context) is small. */
        r = new_rec(k, NDISEMU_INNER_PRIVATE);
        r->offset = offset;
        r->block = outer->id;
        r->next = outer->next;
        outer->next = r->id;
        k->map[offset >> NDISEMU_GRANULE_SHIFT] = r->id;
        r->size = (uint32_t)size;
        r->kind = kind;
        r->state = NDISEMU_STATE_LIVE;
        r->tag = tag;
        r->call = k->call;
        imprint(k, r, (uint32_t)(offset - outer->offset));
    }
    *cursor += ndisemu_inner_span(size);
    k->stats.live[kind]++;
    if (kind == NDISEMU_KIND_DATA) {
        /* the slack after the data: guard bytes, or zeros (a caller that
         * did not zero the block fills only the data itself) */
        uint8_t *payload = ndisemu_rec_payload(k, r);
        memset(payload + size, 0, ndisemu_align_up(size, NDISEMU_ALIGN) - size);
        arm_guard(k, r);
    }
    ndisemu_trace_allocated(k, r, outer);
    return r;
}

void *ndisemu_inner_object(ndisemu_kernel *k, void *block, uint8_t **cursor, uint64_t size,
                           uint16_t kind, uint32_t tag)
{
    return ndisemu_rec_payload(k, ndisemu_inner(k, ndisemu_rec_of(k, block), cursor, size,
                                                kind, tag));
}

void ndisemu_block_free(ndisemu_kernel *k, void *payload, ndisemu_pool *pool)
{
    ndisemu_rec *r = ndisemu_rec_of(k, payload);
    if (r)
        ndisemu_free_rec(k, r, pool);
}

/* FREED events of a block and of its live inner objects, in chain order. */
static void trace_freed(ndisemu_kernel *k, ndisemu_rec *r)
{
    uint64_t shown = ndisemu_display_of(k, ndisemu_rec_payload(k, r));
    uint32_t id;
    ndisemu_trace_record(k, r, NDISEMU_TRACE_FREED, 0, 0, 0);
    for (id = r->next; id; id = ndisemu_rec_at(k, id)->next) {
        ndisemu_rec *inner = ndisemu_rec_at(k, id);
        if (inner->state == NDISEMU_STATE_LIVE)
            ndisemu_trace_record(k, inner, NDISEMU_TRACE_FREED, shown, 0, 0);
    }
}

void ndisemu_free_rec(ndisemu_kernel *k, ndisemu_rec *r, ndisemu_pool *pool)
{
    uint8_t *payload = ndisemu_rec_payload(k, r);
    const char *call = k->call;
    uint32_t id;
    ndisemu_ids *list;

    if (r->state != NDISEMU_STATE_LIVE || ndisemu_is_inner(r))
        return;                       /* callers check first; never free twice */
    k->frees++;                       /* the one place an object stops being live */
    k->stats.live[r->kind]--;
    k->stats.bytes_live -= r->span;
    if (k->trace_on)
        trace_freed(k, r);
    /* Inner objects (context, NB, MDL, data of a composite block) die with
     * it: a stale pointer to one of them is caught by its record. */
    for (id = r->next; id;) {
        ndisemu_rec *inner = ndisemu_rec_at(k, id);
        if (inner->state == NDISEMU_STATE_LIVE)
            k->stats.live[inner->kind]--;
        inner->state = NDISEMU_STATE_FREE;
        inner->freed_by = call;
        id = inner->next;
    }
    if (r->kind == NDISEMU_KIND_NBL)
        ndisemu_nbl_private_release(k, r);
    r->state = NDISEMU_STATE_FREE;
    r->freed_by = call;
    r->flags = 0;
    imprint_state(k, r);
    if (k->verifier) {
        UNPOISON(k, payload, r->span - NDISEMU_HEADER);
        memset(payload, NDISEMU_POISON, r->span - NDISEMU_HEADER);
        r->flags |= NDISEMU_REC_POISONED;
    }
    POISON(k, payload, r->span - NDISEMU_HEADER);
    if (!pool)
        list = free_list(k, r->span);
    else if (pool->flags & NET_BUFFER_LIST_POOL_FLAG_VERIFY)
        list = &pool->quarantine;     /* never reused: use after free stays visible */
    else if (ndisemu_block_span(pool->object_bytes) == r->span)
        list = &pool->lookaside;
    else
        list = free_list(k, r->span);
    if (!ndisemu_ids_push(list, r->id))
        r->flags |= NDISEMU_REC_RETIRED;   /* out of host memory: just never reused */
}

/* Moves a pool's lookaside and quarantine blocks to the general free lists
 * (the pool is being freed; the quarantine has been scanned). */
void ndisemu_release_lookaside(ndisemu_kernel *k, ndisemu_pool *pool)
{
    ndisemu_ids *lists[2] = { &pool->lookaside, &pool->quarantine };
    int l;
    for (l = 0; l < 2; l++) {
        uint32_t i;
        for (i = 0; i < lists[l]->count; i++) {
            ndisemu_rec *r = ndisemu_rec_at(k, lists[l]->ids[i]);
            if (!(r->flags & NDISEMU_REC_RETIRED) && !ndisemu_ids_push(free_list(k, r->span), r->id))
                r->flags |= NDISEMU_REC_RETIRED;
        }
        ndisemu_ids_release(lists[l]);
    }
}

/* Checks one pool's quarantine: the first block written since its free is
 * reported (0xD5) and leaves the quarantine for good. */
int ndisemu_scan_pool_quarantine(ndisemu_kernel *k, ndisemu_pool *pool)
{
    ndisemu_ids *q = &pool->quarantine;
    uint32_t i;
    for (i = 0; i < q->count; i++) {
        ndisemu_rec *r = ndisemu_rec_at(k, q->ids[i]);
        if (check_poison(k, r, 0)) {
            q->ids[i] = q->ids[--q->count];
            return NDISEMU_BUGCHECK;
        }
    }
    return NDISEMU_OK;
}

int ndisemu_scan_quarantine(ndisemu_kernel *k)
{
    uint32_t i;
    for (i = 1; i < k->nrecs; i++) {
        ndisemu_rec *r = ndisemu_rec_at(k, i);
        if ((r->kind == NDISEMU_KIND_NBL_POOL || r->kind == NDISEMU_KIND_NB_POOL) &&
            r->state == NDISEMU_STATE_LIVE && !ndisemu_is_inner(r) &&
            ndisemu_scan_pool_quarantine(k, &r->u.pool))
            return NDISEMU_BUGCHECK;
    }
    return NDISEMU_OK;
}

/* ---- ASan ------------------------------------------------------------------ */

/* A live block's usable bytes: its own object, and each inner object's. */
static void unpoison_live(ndisemu_kernel *k, ndisemu_rec *r)
{
    uint32_t id;
    UNPOISON(k, ndisemu_rec_payload(k, r), r->size);
    for (id = r->next; id; id = ndisemu_rec_at(k, id)->next) {
        ndisemu_rec *inner = ndisemu_rec_at(k, id);
        if (inner->state == NDISEMU_STATE_LIVE)
            UNPOISON(k, ndisemu_rec_payload(k, inner), inner->size);
    }
}

int ndisemu_enable_asan(ndisemu_kernel *k)
{
    uint64_t offset;
    if (k->asan)
        return 1;
    if (!shadow_poison_fn) {
        shadow_poison_fn = (shadow_fn)dlsym(RTLD_DEFAULT, "__asan_poison_memory_region");
        shadow_unpoison_fn = (shadow_fn)dlsym(RTLD_DEFAULT, "__asan_unpoison_memory_region");
    }
    if (!shadow_poison_fn || !shadow_unpoison_fn)
        return 0;
    k->asan = 1;
    ndisemu_asan_watch(k);
    /* Everything poisoned, then the usable bytes of every live block back. */
    POISON(k, k->base, k->size);
    for (offset = NDISEMU_ALIGN; offset < k->top;) {
        ndisemu_rec *r = ndisemu_rec_at(k, k->map[offset >> NDISEMU_GRANULE_SHIFT]);
        if (r->state == NDISEMU_STATE_LIVE)
            unpoison_live(k, r);
        offset += r->span;
    }
    return 1;
}

/* ---- finding what holds an address -------------------------------------- */

ndisemu_rec *ndisemu_block_at(ndisemu_kernel *k, const void *p)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)k->base;
    uint64_t offset, c;
    ndisemu_rec *r;

    if (a < b || a - b >= k->top)
        return NULL;
    offset = a - b;
    /* The block holding `offset` starts in this chunk or an earlier one. */
    c = offset >> NDISEMU_CHUNK_SHIFT;
    while (!k->chunk_first[c] || ndisemu_rec_at(k, k->chunk_first[c])->offset > offset) {
        if (c == 0)
            return NULL;
        c--;
    }
    r = ndisemu_rec_at(k, k->chunk_first[c]);
    for (;;) {
        uint64_t next;
        if (offset < r->offset + r->span)
            return r;
        next = r->offset + r->span;
        if (next >= k->top)
            return NULL;
        r = ndisemu_rec_at(k, k->map[next >> NDISEMU_GRANULE_SHIFT]);
    }
}

ndisemu_rec *ndisemu_block_containing(ndisemu_kernel *k, const void *p)
{
    ndisemu_rec *r = ndisemu_block_at(k, p);
    if (!r || r->state != NDISEMU_STATE_LIVE ||
        (const uint8_t *)p < (const uint8_t *)ndisemu_rec_payload(k, r))
        return NULL;                   /* free, or its pool header */
    return r;
}

/* [p, p + length) lies within the `size` bytes at `payload`. */
static int fits(const void *payload, uint64_t size, const void *p, uint64_t length)
{
    uint64_t offset = (uint64_t)((const uint8_t *)p - (const uint8_t *)payload);
    return offset <= size && length <= size - offset;
}

ndisemu_rec *ndisemu_data_containing(ndisemu_kernel *k, const void *p, uint64_t length)
{
    return ndisemu_data_containing_hint(k, p, length, 0);
}

ndisemu_rec *ndisemu_data_containing_hint(ndisemu_kernel *k, const void *p, uint64_t length,
                                          uint32_t hint)
{
    ndisemu_rec *r = hint ? ndisemu_rec_at(k, hint) : NULL;
    uint32_t id;
    /* The hint holds p when it is a live block (not an inner object) whose
     * payload runs over p: blocks never overlap, so it is the one the walk
     * from p's chunk would find.  Anything else: that walk. */
    if (!r || r->state != NDISEMU_STATE_LIVE || ndisemu_is_inner(r) ||
        (uintptr_t)p < (uintptr_t)ndisemu_rec_payload(k, r) ||
        (uintptr_t)p - (uintptr_t)(k->base + r->offset) >= r->span)
        r = ndisemu_block_containing(k, p);
    if (!r)
        return NULL;
    /* Packet bytes may live only in data: a buffer from
     * NdisAllocateMemoryWithTagPriority or one of NDIS's own data buffers.
     * Never in memory that holds NDIS structures, or a copy into an MDL's
     * bytes could overwrite the very MDL chain it is walking. */
    if (r->kind == NDISEMU_KIND_DATA || r->kind == NDISEMU_KIND_MEMORY)
        return fits(ndisemu_rec_payload(k, r), r->size, p, length) ? r : NULL;
    for (id = r->next; id;) {
        ndisemu_rec *inner = ndisemu_rec_at(k, id);
        uint8_t *payload = ndisemu_rec_payload(k, inner);
        if (inner->kind == NDISEMU_KIND_DATA && inner->state == NDISEMU_STATE_LIVE &&
            (const uint8_t *)p >= payload &&
            (const uint8_t *)p < payload + ndisemu_align_up(inner->size ? inner->size : 1,
                                                            NDISEMU_ALIGN))
            return fits(payload, inner->size, p, length) ? inner : NULL;
        id = inner->next;
    }
    return NULL;
}

int ndisemu_range_is_live(ndisemu_kernel *k, const void *p, uint64_t length)
{
    return ndisemu_data_containing(k, p, length) != NULL;
}

int ndisemu_object_kind(ndisemu_kernel *k, const void *p)
{
    ndisemu_rec *r = p ? ndisemu_rec_of(k, p) : NULL;
    if (!r || !r->state)
        return 0;
    return r->state == NDISEMU_STATE_LIVE ? (int)r->kind : -(int)r->kind;
}

uint64_t ndisemu_live_objects(ndisemu_kernel *k, ndisemu_object_info *out, uint64_t capacity)
{
    uint64_t n = 0;
    uint32_t i;
    for (i = 1; i < k->nrecs; i++) {
        ndisemu_rec *r = ndisemu_rec_at(k, i);
        if (r->state != NDISEMU_STATE_LIVE)
            continue;
        if (n < capacity) {
            ndisemu_object_info *o = &out[n];
            o->kind = r->kind;
            o->origin = r->origin;
            o->tag = r->tag;
            o->size = r->size;
            o->pointer = ndisemu_rec_payload(k, r);
            o->address = ndisemu_display(k, o->pointer);
            o->call = r->call ? r->call : "";
            o->inner = ndisemu_is_inner(r);
        }
        n++;
    }
    return n;
}
