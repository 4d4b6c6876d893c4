/*
 * verifier.c - every pointer the emulator is handed is checked here before
 * it is followed, and every misuse becomes a recorded bug check instead of a
 * crash.  The checks that only cost time (chain consistency walks, poison
 * fills) are skipped when the verifier is off; pointer checks never are.
 */
#include "kernel.h"

int ndisemu_bugcheck(ndisemu_kernel *k, uint32_t code, uint64_t p1, uint64_t p3, uint64_t p4,
                     uint32_t kind, const void *object, const char *rule)
{
    uint64_t shown = object ? ndisemu_display(k, object) : 0;
    k->bug.code = code;
    k->bug.parameters[0] = p1;
    k->bug.parameters[1] = code == NDISEMU_PAGE_FAULT ? 0 : shown;
    k->bug.parameters[2] = p3;
    k->bug.parameters[3] = p4;
    if (code == NDISEMU_PAGE_FAULT)
        k->bug.parameters[0] = shown;
    k->bug.object_kind = kind;
    k->bug.object = shown;
    k->bug.rule = rule;
    k->bug.call = k->call;
    k->bug.detail[0] = 0;
    return NDISEMU_BUGCHECK;
}

int ndisemu_stop(ndisemu_kernel *k, uint32_t code, const uint64_t parameters[4], uint32_t kind,
                 const void *object, const char *rule)
{
    ndisemu_bugcheck(k, code, 0, 0, 0, kind, object, rule);
    memcpy(k->bug.parameters, parameters, sizeof k->bug.parameters);
    return NDISEMU_BUGCHECK;
}

int ndisemu_irql_bug(ndisemu_kernel *k)
{
    return ndisemu_bugcheck(k, DRIVER_VERIFIER_DETECTED_VIOLATION, NDISEMU_VERIFIER_IRQL,
                            k->irql, DISPATCH_LEVEL, 0, NULL,
                            "called above its maximum IRQL (DISPATCH_LEVEL)");
}

ndisemu_rec *ndisemu_check_object_slow(ndisemu_kernel *k, const void *p, int kind)
{
    int found;
    if (!p) {
        ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_POINTER, (uint64_t)kind, 0,
                         (uint32_t)kind, NULL, "NULL pointer where an object is required");
        return NULL;
    }
    found = ndisemu_object_kind(k, p);
    if (found == kind)
        return ndisemu_rec_of(k, p);
    if (found == -kind)
        ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_USE_AFTER_FREE, (uint64_t)kind,
                         (uint64_t)kind, (uint32_t)kind, p, "object used after it was freed");
    else
        ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_POINTER, (uint64_t)kind,
                         (uint64_t)(found < 0 ? -found : found), (uint32_t)kind, p,
                         "pointer is not a live object of the expected kind");
    return NULL;
}

ndisemu_rec *ndisemu_check_free(ndisemu_kernel *k, const void *p, int kind, const char *twice)
{
    ndisemu_rec *r;
    if (ndisemu_check_irql(k))
        return NULL;
    r = ndisemu_check_object(k, p, kind);
    if (!r && k->bug.code == BUGCODE_NDIS_DRIVER &&
        k->bug.parameters[0] == NDISEMU_BUG_USE_AFTER_FREE) {
        k->bug.parameters[0] = NDISEMU_BUG_DOUBLE_FREE;
        k->bug.rule = twice;
    }
    return r;
}

int ndisemu_check_increment(ndisemu_kernel *k, int32_t value, uint32_t kind, const void *object,
                            const char *rule)
{
    if (value < INT32_MAX)
        return NDISEMU_OK;
    return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_COUNTER_LIMIT, (uint64_t)value,
                            0, kind, object, rule);
}

void ndisemu_pin(ndisemu_kernel *k, ndisemu_rec *nbl, ndisemu_rec *by, ndisemu_rec *target)
{
    if (!target)
        return;
    if (by)
        by->u.mdl.pinned = target->id;
    else if (!ndisemu_ids_push(&nbl->u.nbl.pinned, target->id))
        return;                        /* out of host memory: only this check is lost */
    target->pins++;
    target->pinned_by = nbl->id;
    nbl->u.nbl.pins_taken = 1;
    ndisemu_watch(k, target);
}

static void unpin(ndisemu_kernel *k, uint32_t id)
{
    ndisemu_rec *target = ndisemu_rec_at(k, id);
    if (target->pins)
        target->pins--;
}

void ndisemu_unpin_all(ndisemu_kernel *k, ndisemu_rec *nbl)
{
    ndisemu_ids *pinned = &nbl->u.nbl.pinned;
    uint32_t i, id;
    for (i = 0; i < pinned->count; i++)
        unpin(k, pinned->ids[i]);
    ndisemu_ids_release(pinned);
    for (id = nbl->next; id; id = ndisemu_rec_at(k, id)->next) {
        ndisemu_rec *inner = ndisemu_rec_at(k, id);
        if (inner->kind == NDISEMU_KIND_MDL && inner->u.mdl.pinned) {
            unpin(k, inner->u.mdl.pinned);
            inner->u.mdl.pinned = 0;
        }
    }
    nbl->u.nbl.pins_taken = 0;
}

/* The live data buffer holding [p, p + length), trying the hint first:
 * inline when the hint is a live data or memory block around p (it is then
 * the block the arena walk would find, and the answer is whether the range
 * fits it), ndisemu_data_containing_hint otherwise. */
static inline ndisemu_rec *data_of(ndisemu_kernel *k, const uint8_t *p, uint64_t length,
                                   uint32_t hint)
{
    ndisemu_rec *r = ndisemu_rec_at(k, hint);
    if (hint && r->state == NDISEMU_STATE_LIVE && !ndisemu_is_inner(r) &&
        (r->kind == NDISEMU_KIND_DATA || r->kind == NDISEMU_KIND_MEMORY)) {
        const uint8_t *payload = ndisemu_rec_payload(k, r);
        uint64_t into = (uint64_t)(p - payload);     /* wraps when p lies below */
        if ((uintptr_t)p >= (uintptr_t)payload && into < r->span - NDISEMU_HEADER)
            return into <= r->size && length <= r->size - into ? r : NULL;
    }
    return ndisemu_data_containing_hint(k, p, length, hint);
}

/* What a chain walk found besides the MDL count: the bytes of the chain and
 * where `current` lies in it. */
typedef struct {
    uint64_t total;                  /* sum of ByteCount */
    uint64_t before;                 /* ByteCount of the MDLs before `current` */
    MDL *current;                    /* `current` if in the chain, else NULL */
} chain_facts;

/* Checks that an MDL chain can be walked and its bytes read (every MDL
 * live, every described range inside live data), noting the facts an NB
 * check needs on the way: one walk.  The MDL count, or -1. */
static inline __attribute__((always_inline)) int64_t walk_chain(
    ndisemu_kernel *k, MDL *chain, const void *owner, MDL *current, chain_facts *facts)
{
    int64_t count = 0, limit = k->stats.live[NDISEMU_KIND_MDL];
    ndisemu_rec *data, *rec;
    MDL *m;
    facts->total = facts->before = 0;
    facts->current = NULL;
    for (m = chain; m; m = m->Next) {
        if (!(rec = ndisemu_check_object(k, m, NDISEMU_KIND_MDL))) {
            /* report against the owner's chain, keep the MDL as P3 */
            uint64_t bad = ndisemu_display(k, m);
            if (owner) {
                k->bug.parameters[2] = bad;
                k->bug.parameters[1] = ndisemu_display(k, owner);
                k->bug.object = k->bug.parameters[1];
            }
            return -1;
        }
        if (++count > limit) {
            ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_NB_INCONSISTENT, 0, 0,
                             NDISEMU_KIND_MDL, chain, "MDL chain loops back on itself");
            return -1;
        }
        if (m == current && !facts->current)
            facts->current = m;
        if (!facts->current)
            facts->before += m->ByteCount;
        facts->total += m->ByteCount;
        if (!m->ByteCount) {
            rec->u.mdl.described = 0;
            continue;
        }
        data = data_of(k, ndisemu_mdl_va(m), m->ByteCount, rec->u.mdl.described);
        rec->u.mdl.described = data ? data->block : 0;
        if (!data) {
            ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_BAD_RANGE,
                             ndisemu_display(k, ndisemu_mdl_va(m)), m->ByteCount,
                             NDISEMU_KIND_MDL, m,
                             "MDL describes memory outside any live pool block");
            return -1;
        }
    }
    return count;
}

int64_t ndisemu_check_chain(ndisemu_kernel *k, MDL *chain, const void *owner)
{
    chain_facts facts;
    return walk_chain(k, chain, owner, NULL, &facts);
}

static int nb_bug(ndisemu_kernel *k, NET_BUFFER *nb, uint64_t got, uint64_t want,
                  const char *rule)
{
    return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_NB_INCONSISTENT, got, want,
                            NDISEMU_KIND_NB, nb, rule);
}

/* The invariant every data-space call relies on:
 * DataOffset == bytes of the MDLs before CurrentMdl + CurrentMdlOffset. */
int ndisemu_check_nb(ndisemu_kernel *k, NET_BUFFER *nb)
{
    chain_facts facts;

    if (!ndisemu_check_object(k, nb, NDISEMU_KIND_NB))
        return NDISEMU_BUGCHECK;
    if (walk_chain(k, nb->MdlChain, nb, nb->CurrentMdl, &facts) < 0)
        return NDISEMU_BUGCHECK;
    if (!nb->MdlChain) {
        if (nb->DataOffset || nb->DataLength)
            return nb_bug(k, nb, nb->DataOffset + (uint64_t)nb->DataLength, 0,
                          "DataOffset/DataLength: non-zero with a NULL MdlChain");
        if (nb->CurrentMdl || nb->CurrentMdlOffset)
            return nb_bug(k, nb, ndisemu_display(k, nb->CurrentMdl), 0,
                          "CurrentMdl: set with a NULL MdlChain");
        return NDISEMU_OK;
    }
    if ((uint64_t)nb->DataOffset + nb->DataLength > facts.total)
        return nb_bug(k, nb, (uint64_t)nb->DataOffset + nb->DataLength, facts.total,
                      "DataLength: DataOffset + DataLength exceeds the MDL chain's bytes");
    if (!facts.current)
        return nb_bug(k, nb, ndisemu_display(k, nb->CurrentMdl), 0,
                      "CurrentMdl: not an MDL of this NET_BUFFER's MdlChain");
    if (nb->CurrentMdlOffset > facts.current->ByteCount)
        return nb_bug(k, nb, nb->CurrentMdlOffset, facts.current->ByteCount,
                      "CurrentMdlOffset: beyond CurrentMdl's ByteCount");
    if (facts.before + nb->CurrentMdlOffset != nb->DataOffset)
        return nb_bug(k, nb, nb->DataOffset, facts.before + nb->CurrentMdlOffset,
                      "DataOffset: differs from the bytes before CurrentMdl + CurrentMdlOffset");
    return NDISEMU_OK;
}

int ndisemu_check_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *nbl)
{
    int64_t limit;
    NET_BUFFER *nb;
    if (!ndisemu_check_object(k, nbl, NDISEMU_KIND_NBL))
        return NDISEMU_BUGCHECK;
    limit = k->stats.live[NDISEMU_KIND_NB];
    for (nb = nbl->FirstNetBuffer; nb; nb = nb->Next) {
        if (ndisemu_check_nb(k, nb) != NDISEMU_OK)
            return NDISEMU_BUGCHECK;
        if (--limit < 0)
            return ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_NB_INCONSISTENT, 0, 0,
                                    NDISEMU_KIND_NBL, nbl,
                                    "NET_BUFFER list loops back on itself");
    }
    return NDISEMU_OK;
}

int ndisemu_probe(ndisemu_kernel *k, const void *p, uint64_t length, int kind)
{
    if (kind ? ndisemu_object_kind(k, p) == kind : ndisemu_range_is_live(k, p, length))
        return NDISEMU_OK;
    return ndisemu_bugcheck(k, NDISEMU_PAGE_FAULT, 0, 0, 0, (uint32_t)kind, p,
                            "dereference of a pointer outside live pool memory");
}

int ndisemu_object_origin(ndisemu_kernel *k, const void *p)
{
    ndisemu_rec *r = ndisemu_object_kind(k, p) > 0 ? ndisemu_rec_of(k, p) : NULL;
    return r ? (int)r->origin : 0;
}
