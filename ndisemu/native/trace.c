/*
 * trace.c - the per-object event log behind k.trace: allocated, derived from
 * which NBL by which call, retreated and advanced by how much, handed over,
 * freed.  A fuzz failure or a bug check names an object; its last events say
 * how it got into the state the check found.
 *
 * The log is a ring of fixed-size events in memory the core owns, so it is
 * bounded (the oldest events are overwritten) and nothing a driver writes
 * reaches it.  Events are recorded here, in the core, so calls made by
 * driver C code are traced like calls from Python.  With tracing off every
 * hook point costs one test of k->trace_on (kernel.h).
 *
 * An event names its object by record id.  Records are reused (a freed
 * block's record serves the next allocation of that block; released inner
 * records serve other objects), so each record id has a generation, bumped
 * by every allocation while a log exists (recording or not): an object's
 * events are those of its record and its record's current generation, and
 * a new object never inherits the old one's.  Turning tracing on starts a
 * new log, so the events of lifetimes that began before it are never
 * mixed with those of later ones.
 */
#include <stdlib.h>
#include <sys/mman.h>
#include "kernel.h"

struct ndisemu_trace {
    ndisemu_trace_event *ring;
    uint32_t capacity;
    uint32_t head;                   /* where the next event goes */
    uint64_t count;                  /* events retained (<= capacity) */
    uint64_t seq;                    /* events recorded since tracing was turned on */
    uint32_t *generation;            /* per record id (max_recs entries, touched lazily) */
};

static uint64_t generation_bytes(ndisemu_kernel *k)
{
    return (uint64_t)k->max_recs * sizeof(uint32_t);
}

int ndisemu_trace_enable(ndisemu_kernel *k, uint32_t capacity)
{
    struct ndisemu_trace *t = k->trace;
    ndisemu_trace_event *ring;
    if (!capacity) {
        k->trace_on = 0;               /* the log stays for reading */
        return NDISEMU_OK;
    }
    if (!t) {
        void *generation = mmap(NULL, generation_bytes(k), PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (generation == MAP_FAILED)
            return NDISEMU_NO_MEMORY;
        t = calloc(1, sizeof *t);
        if (!t) {
            munmap(generation, generation_bytes(k));
            return NDISEMU_NO_MEMORY;
        }
        t->generation = generation;
        k->trace = t;
    }
    ring = calloc(capacity, sizeof *ring);
    if (!ring)
        return NDISEMU_NO_MEMORY;
    free(t->ring);
    t->ring = ring;
    t->capacity = capacity;
    t->head = 0;
    t->count = 0;
    t->seq = 0;
    k->trace_on = 1;
    return NDISEMU_OK;
}

int ndisemu_trace_is_on(ndisemu_kernel *k)
{
    return k->trace_on;
}

void ndisemu_trace_release(ndisemu_kernel *k)
{
    struct ndisemu_trace *t = k->trace;
    if (!t)
        return;
    free(t->ring);
    munmap(t->generation, generation_bytes(k));
    free(t);
    k->trace = NULL;
    k->trace_on = 0;
}

void ndisemu_trace_record(ndisemu_kernel *k, const ndisemu_rec *r, uint32_t event,
                          uint64_t a0, uint64_t a1, uint64_t a2)
{
    struct ndisemu_trace *t = k->trace;
    ndisemu_trace_event *e;
    if (!r)
        return;                        /* hooks pass checked objects; be safe */
    e = &t->ring[t->head];
    t->head = t->head + 1 == t->capacity ? 0 : t->head + 1;
    if (t->count < t->capacity)
        t->count++;
    e->seq = ++t->seq;
    e->object = ndisemu_display(k, ndisemu_rec_payload(k, r));
    e->args[0] = a0;
    e->args[1] = a1;
    e->args[2] = a2;
    e->call = k->call ? k->call : "";
    e->rec = r->id;
    e->generation = t->generation[r->id];
    e->event = (uint16_t)event;
    e->kind = r->kind;
}

void ndisemu_trace_allocated_slow(ndisemu_kernel *k, const ndisemu_rec *r,
                                  const ndisemu_rec *outer)
{
    k->trace->generation[r->id]++;
    if (k->trace_on)
        ndisemu_trace_record(k, r, NDISEMU_TRACE_ALLOCATED,
                             outer ? ndisemu_display_of(k, ndisemu_rec_payload(k, outer)) : 0,
                             0, 0);
}

void ndisemu_trace_derived_slow(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, NET_BUFFER_LIST *orig,
                                uint32_t origin, uint64_t extra)
{
    uint64_t source = ndisemu_display(k, orig);
    ndisemu_trace_record(k, ndisemu_rec_of(k, nbl), NDISEMU_TRACE_DERIVED, source, origin,
                         extra);
    ndisemu_trace_record(k, ndisemu_live_rec(k, orig, NDISEMU_KIND_NBL),
                         NDISEMU_TRACE_CHILD_DERIVED, ndisemu_display(k, nbl), origin, 0);
}

void ndisemu_trace_handover(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, const void *from,
                            const void *to, const char *call)
{
    const char *executing = k->call;
    ndisemu_rec *r;
    if (!k->trace_on || !(r = ndisemu_live_rec(k, nbl, NDISEMU_KIND_NBL)))
        return;
    if (call)
        k->call = call;
    ndisemu_trace_record(k, r, NDISEMU_TRACE_HANDED_OVER, ndisemu_display(k, from),
                         ndisemu_display(k, to), 0);
    k->call = executing;
}

/* The i-th retained event, oldest first. */
static const ndisemu_trace_event *retained(const struct ndisemu_trace *t, uint64_t i)
{
    uint64_t first = t->count < t->capacity ? 0 : t->head;
    return &t->ring[(first + i) % t->capacity];
}

uint64_t ndisemu_trace_events(ndisemu_kernel *k, const void *object,
                              ndisemu_trace_event *out, uint64_t capacity)
{
    const struct ndisemu_trace *t = k->trace;
    const ndisemu_rec *r = object ? ndisemu_rec_of(k, object) : NULL;
    uint64_t display = object ? ndisemu_display(k, object) : 0, since = 0, n = 0, i, skip;
    if (!t)
        return 0;
    if (object && !r) {
        /* The record went on to another object (a released inner record):
         * the address's events since its last allocation are the object's. */
        for (i = t->count; i-- > 0;) {
            const ndisemu_trace_event *e = retained(t, i);
            if (e->object == display && e->event == NDISEMU_TRACE_ALLOCATED) {
                since = e->seq;
                break;
            }
        }
    }
#define MATCHES(e) (!object || (r ? (e)->rec == r->id && \
                                    (e)->generation == t->generation[r->id] \
                                  : (e)->object == display && (e)->seq >= since))
    for (i = 0; i < t->count; i++)
        n += MATCHES(retained(t, i));
    skip = n > capacity ? n - capacity : 0;
    for (i = 0; i < t->count && out; i++) {
        const ndisemu_trace_event *e = retained(t, i);
        if (!MATCHES(e))
            continue;
        if (skip)
            skip--;
        else
            *out++ = *e;
    }
#undef MATCHES
    return n;
}
