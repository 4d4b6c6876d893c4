/*
 * arena.c - the nonpaged pool: one contiguous arena per emulated machine,
 * carved into blocks that each carry a pool header (tag, size, kind, state).
 *
 * Blocks are carved by bumping a cursor and, once freed, go on a free list
 * per exact span (or on their NDIS pool's lookaside list) for reuse, as a
 * lookaside list would.  Blocks are never split, merged or moved, so a
 * pointer into the arena stays valid for the arena's life, and carving order
 * is address order: the block containing any address is found by walking
 * spans from the first block of its 4 KiB chunk (see block_containing).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/mman.h>
#include "kernel.h"

/* Chunk index: for every 4 KiB of arena, the offset + 1 of the first block
 * header that starts in it (0 = none).  Lets an arbitrary address be mapped
 * to its block by a short forward walk. */
#define NDISEMU_CHUNK_SHIFT 12

typedef struct {
    ndisemu_kernel k;
    uint64_t *chunks;
    uint64_t nchunks;
} kernel_impl;

static uint64_t *chunk_index(ndisemu_kernel *k)
{
    return ((kernel_impl *)k)->chunks;
}

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

ndisemu_kernel *ndisemu_kernel_create(void *base, uint64_t size, uint64_t display_base)
{
    kernel_impl *impl = calloc(1, sizeof *impl);
    if (!impl)
        return NULL;
    impl->k.classes = calloc(NDISEMU_CLASSES, sizeof(uint64_t));
    impl->nchunks = (size >> NDISEMU_CHUNK_SHIFT) + 1;
    impl->chunks = calloc(impl->nchunks, sizeof(uint64_t));
    if (!impl->k.classes || !impl->chunks) {
        free(impl->k.classes);
        free(impl->chunks);
        free(impl);
        return NULL;
    }
    impl->k.base = base;
    impl->k.size = size;
    impl->k.display_base = display_base;
    impl->k.verifier = NDISEMU_VERIFIER_FULL;
    impl->k.stats.arena_size = size;
    impl->k.rng = 0x9E3779B97F4A7C15ull;
    return &impl->k;
}

void ndisemu_kernel_destroy(ndisemu_kernel *k)
{
    kernel_impl *impl = (kernel_impl *)k;
    if (!k)
        return;
    free(k->classes);
    free(impl->chunks);
    free(impl);
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

static ndisemu_header *header_at(ndisemu_kernel *k, uint64_t offset)
{
    return (ndisemu_header *)(k->base + offset);
}

static void note_carved(ndisemu_kernel *k, uint64_t offset)
{
    uint64_t *chunks = chunk_index(k);
    uint64_t c = offset >> NDISEMU_CHUNK_SHIFT;
    if (!chunks[c])
        chunks[c] = offset + 1;
}

/* As ndisemu_block_alloc, but zeroes only the first `zero` payload bytes:
 * for a caller that writes every other byte itself (the deep clone, whose
 * data buffers are overwritten by the copy at once). */
void *ndisemu_block_alloc_ex(ndisemu_kernel *k, uint64_t size, uint16_t kind, uint32_t tag,
                             ndisemu_pool *pool, uint64_t zero)
{
    uint64_t span = ndisemu_block_span(size);
    uint64_t offset = 0, *list = NULL;
    ndisemu_header *h;

    if (size > UINT32_MAX - 64 || ndisemu_should_fail(k))
        return NULL;
    if (pool && pool->object_bytes == size && pool->lookaside && !(pool->flags & 1u))
        list = &pool->lookaside;
    else if (span <= NDISEMU_CLASS_LIMIT)
        list = &k->classes[span / NDISEMU_ALIGN];
    if (list && *list) {
        offset = *list - 1;
        h = header_at(k, offset);
        memcpy(list, ndisemu_payload(h), sizeof *list);
    } else if (!list && k->large) {
        /* Large blocks: first exact fit on one list (rare; data buffers). */
        uint64_t *link = &k->large;
        while (*link) {
            h = header_at(k, *link - 1);
            if (h->span == span) {
                offset = *link - 1;
                memcpy(link, ndisemu_payload(h), sizeof *link);
                break;
            }
            link = (uint64_t *)ndisemu_payload(h);
        }
    }
    if (!offset) {
        if (k->top == 0)
            k->top = NDISEMU_ALIGN;   /* offset 0 stays unused: 0 means empty */
        if (span > k->size || k->top > k->size - span)
            return NULL;
        offset = k->top;
        k->top += span;
        note_carved(k, offset);
    }
    h = header_at(k, offset);
    h->magic = NDISEMU_MAGIC;
    h->kind = kind;
    h->state = NDISEMU_STATE_LIVE;
    h->tag = tag;
    h->size = (uint32_t)size;
    h->self = offset;
    h->span = (uint32_t)span;
    h->outer = 0;
    memset(ndisemu_payload(h), 0, zero < span - sizeof *h ? zero : span - sizeof *h);
    k->stats.live[kind]++;
    k->stats.bytes_live += span;
    k->stats.allocations++;
    return ndisemu_payload(h);
}

void *ndisemu_block_alloc(ndisemu_kernel *k, uint64_t size, uint16_t kind, uint32_t tag,
                          ndisemu_pool *pool)
{
    return ndisemu_block_alloc_ex(k, size, kind, tag, pool, UINT64_MAX);
}

void *ndisemu_inner_object(ndisemu_kernel *k, ndisemu_header *outer, uint8_t **cursor,
                           uint64_t size, uint16_t kind, uint32_t tag)
{
    ndisemu_header *h = (ndisemu_header *)*cursor;
    h->magic = NDISEMU_MAGIC;
    h->kind = kind;
    h->state = NDISEMU_STATE_LIVE;
    h->tag = tag;
    h->size = (uint32_t)size;
    h->self = (uint64_t)((uint8_t *)h - k->base);
    h->span = 0;
    h->outer = (uint32_t)((uint8_t *)h - (uint8_t *)outer);
    *cursor += ndisemu_inner_span(size);
    k->stats.live[kind]++;
    return ndisemu_payload(h);
}

void ndisemu_block_free(ndisemu_kernel *k, void *payload, ndisemu_pool *pool)
{
    ndisemu_header *h = ndisemu_header_of(payload);
    uint8_t *end = (uint8_t *)h + h->span;
    uint8_t *cursor = (uint8_t *)payload;
    uint64_t *list;
    int keep_out = pool && (pool->flags & 1u);   /* *_POOL_FLAG_VERIFY */

    k->stats.live[h->kind]--;
    k->stats.bytes_live -= h->span;
    /* Inner objects (context, NB, MDL, data of a composite block) die with it:
     * their headers are marked free so a stale pointer to them is caught. */
    cursor += ndisemu_align_up(h->size, NDISEMU_ALIGN);
    while (cursor + sizeof(ndisemu_header) <= end) {
        ndisemu_header *inner = (ndisemu_header *)cursor;
        if (inner->magic != NDISEMU_MAGIC || inner->outer != (uint32_t)(cursor - (uint8_t *)h))
            break;
        if (inner->state == NDISEMU_STATE_LIVE)
            k->stats.live[inner->kind]--;
        inner->state = NDISEMU_STATE_FREE;
        if (k->verifier)
            memset(ndisemu_payload(inner), NDISEMU_POISON, inner->size);
        cursor += ndisemu_inner_span(inner->size);
    }
    h->state = NDISEMU_STATE_FREE;
    if (k->verifier)
        memset(payload, NDISEMU_POISON, ndisemu_align_up(h->size, NDISEMU_ALIGN));
    if (keep_out)
        return;                       /* never reused: use after free stays visible */
    if (pool && ndisemu_block_span(pool->object_bytes) == h->span)
        list = &pool->lookaside;
    else if (h->span <= NDISEMU_CLASS_LIMIT)
        list = &k->classes[h->span / NDISEMU_ALIGN];
    else
        list = &k->large;
    memcpy(payload, list, sizeof *list);
    *list = h->self + 1;
}

/* Moves a pool's lookaside blocks to the general free lists (pool freed). */
void ndisemu_release_lookaside(ndisemu_kernel *k, ndisemu_pool *pool)
{
    while (pool->lookaside) {
        ndisemu_header *h = header_at(k, pool->lookaside - 1);
        uint64_t *list;
        memcpy(&pool->lookaside, ndisemu_payload(h), sizeof pool->lookaside);
        list = h->span <= NDISEMU_CLASS_LIMIT ? &k->classes[h->span / NDISEMU_ALIGN] : &k->large;
        memcpy(ndisemu_payload(h), list, sizeof *list);
        *list = h->self + 1;
    }
}

ndisemu_header *ndisemu_block_containing(ndisemu_kernel *k, const void *p)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)k->base;
    uint64_t offset, c, walk;
    uint64_t *chunks = chunk_index(k);

    if (a < b || a - b >= k->top)
        return NULL;
    offset = a - b;
    /* The block holding `offset` starts in this chunk or an earlier one. */
    c = offset >> NDISEMU_CHUNK_SHIFT;
    while (!chunks[c] || chunks[c] - 1 > offset) {
        if (c == 0)
            return NULL;
        c--;
    }
    walk = chunks[c] - 1;
    for (;;) {
        ndisemu_header *h = header_at(k, walk);
        if (h->magic != NDISEMU_MAGIC || h->self != walk || h->span == 0)
            return NULL;              /* the arena's own headers were overwritten */
        if (offset < walk + h->span) {
            if (h->state != NDISEMU_STATE_LIVE || offset < walk + sizeof *h)
                return NULL;
            return h;
        }
        walk += h->span;
        if (walk >= k->top)
            return NULL;
    }
}

/* [p, p + length) lies within the `size` bytes at `payload`. */
static int fits(const void *payload, uint64_t size, const void *p, uint64_t length)
{
    uint64_t offset = (uint64_t)((const uint8_t *)p - (const uint8_t *)payload);
    return offset <= size && length <= size - offset;
}

int ndisemu_range_is_live(ndisemu_kernel *k, const void *p, uint64_t length)
{
    ndisemu_header *h = ndisemu_block_containing(k, p);
    uint8_t *cursor, *end;
    if (!h)
        return 0;
    /* Packet bytes may live only in data: a buffer from
     * NdisAllocateMemoryWithTagPriority or one of NDIS's own data buffers.
     * Never in memory that holds NDIS structures, or a copy into an MDL's
     * bytes could overwrite the very MDL chain it is walking. */
    if (h->kind == NDISEMU_KIND_DATA || h->kind == NDISEMU_KIND_MEMORY)
        return fits(ndisemu_payload(h), h->size, p, length);
    /* A composite block: the inner data buffer that holds p, if any. */
    cursor = (uint8_t *)ndisemu_payload(h) + ndisemu_align_up(h->size, NDISEMU_ALIGN);
    end = (uint8_t *)h + h->span;
    while (cursor + sizeof(ndisemu_header) <= end) {
        ndisemu_header *inner = (ndisemu_header *)cursor;
        uint8_t *payload = (uint8_t *)ndisemu_payload(inner);
        if (inner->magic != NDISEMU_MAGIC || inner->outer != (uint32_t)(cursor - (uint8_t *)h))
            return 0;
        if ((const uint8_t *)p < payload)
            return 0;                 /* p is in this inner header */
        if ((const uint8_t *)p < payload + ndisemu_align_up(inner->size, NDISEMU_ALIGN))
            return inner->kind == NDISEMU_KIND_DATA && inner->state == NDISEMU_STATE_LIVE &&
                   fits(payload, inner->size, p, length);
        cursor += ndisemu_inner_span(inner->size);
    }
    return 0;
}

int ndisemu_object_kind(ndisemu_kernel *k, const void *p)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)k->base;
    ndisemu_header *h;
    if (!p || a < b + sizeof *h || a - b > k->top || (a & (NDISEMU_ALIGN - 1)))
        return 0;
    h = ndisemu_header_of(p);
    if (h->magic != NDISEMU_MAGIC || h->self != (uint64_t)((uint8_t *)h - k->base))
        return 0;
    if (h->state != NDISEMU_STATE_LIVE)
        return -(int)h->kind;         /* a freed object: negative kind */
    if (h->outer) {
        if (h->outer > h->self)
            return 0;
        if (header_at(k, h->self - h->outer)->state != NDISEMU_STATE_LIVE)
            return -(int)h->kind;
    }
    return h->kind;
}
