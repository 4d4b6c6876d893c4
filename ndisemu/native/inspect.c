/*
 * inspect.c - what inspection (k.show, k.dt, repr of views) reads from the
 * allocation records: kind, state, origin, tag, the calls that allocated
 * and freed an object.  Records are outside the arena, so these facts hold
 * whatever a driver wrote into the object; the fields themselves are read
 * by Python through the checked paths.
 */
#include "kernel.h"

int ndisemu_object_record_of(ndisemu_kernel *k, const void *p, ndisemu_object_record *out)
{
    const ndisemu_rec *r = p ? ndisemu_rec_of(k, p) : NULL;
    memset(out, 0, sizeof *out);
    if (!r || !r->state)
        return NDISEMU_BUGCHECK;
    out->kind = r->kind;
    out->state = r->state;
    out->origin = r->origin;
    out->tag = r->tag;
    out->size = r->size;
    out->inner = ndisemu_is_inner(r);
    out->block = ndisemu_display(k, ndisemu_rec_payload(k, ndisemu_rec_at(k, r->block)));
    out->address = ndisemu_display(k, p);
    out->call = r->call ? r->call : "";
    out->freed_by = r->state == NDISEMU_STATE_FREE && r->freed_by ? r->freed_by : "";
    if (r->state != NDISEMU_STATE_LIVE)
        return NDISEMU_OK;             /* per-kind parts are released with the object */
    if (r->kind == NDISEMU_KIND_NB)
        out->retreat_mdls = r->u.nb.retreat_mdls;
    else if (r->kind == NDISEMU_KIND_NBL && !ndisemu_is_inner(r)) {
        out->references = r->u.nbl.references;
        out->parent = r->u.nbl.parent ? ndisemu_display(k, r->u.nbl.parent) : 0;
    }
    return NDISEMU_OK;
}
