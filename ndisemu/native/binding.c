/*
 * binding.c - what the core knows of the emulated binding (ndisemu/binding.py).
 *
 * The binding's rules are checked in Python as NBLs are handed between
 * layers.  One rule cannot wait for a hand-over: a layer must not free an NBL
 * it has sent or indicated (or been given) until it is back home, and the free
 * calls are the core's, reached from Python and from driver C code alike.
 * So the binding marks each NBL in flight, and the NBs it left home with, in
 * their records (which layer owns it, which is its home), and every NBL and
 * NB free refuses a marked object.  Layers are known by position: protocol,
 * filters from the top, miniport.
 *
 * Driver code's own binding calls (NdisFSendNetBufferLists and the rest,
 * driver.c) reach the binding through the dispatch function the Kernel
 * registers here.
 */
#include <stdio.h>
#include "kernel.h"

void ndisemu_set_binding_dispatch(ndisemu_kernel *k, ndisemu_binding_dispatch dispatch)
{
    k->binding_dispatch = dispatch;
}

uint8_t ndisemu_partial_cancel_id(ndisemu_kernel *k)
{
    /* [UNSPEC] how NDIS picks the byte: a counter, never 0 (an NBL's slot
     * is 0 when no cancel ID was set) */
    k->cancel_ids = (uint8_t)(k->cancel_ids == 255 ? 1 : k->cancel_ids + 1);
    return k->cancel_ids;
}

void ndisemu_bind_layers(ndisemu_kernel *k, uint32_t count, uint64_t first_handle,
                         uint64_t step)
{
    k->layers = count;
    k->layer_first = first_handle;
    k->layer_step = step;
}

int ndisemu_set_away(ndisemu_kernel *k, const void *object, int kind, uint32_t owner,
                     uint32_t home)
{
    ndisemu_rec *r;
    if (kind != NDISEMU_KIND_NBL && kind != NDISEMU_KIND_NB)
        return NDISEMU_BAD_ARGUMENT;
    if (owner > k->layers || home > k->layers || (owner && !home))
        return NDISEMU_BAD_ARGUMENT;
    if (!(r = ndisemu_check_object(k, object, kind)))
        return NDISEMU_BUGCHECK;
    if (kind == NDISEMU_KIND_NBL) {
        r->u.nbl.away_owner = (uint16_t)owner;
        r->u.nbl.away_home = (uint16_t)(owner ? home : 0);
    } else {
        r->u.nb.away_owner = (uint16_t)owner;
        r->u.nb.away_home = (uint16_t)(owner ? home : 0);
    }
    return NDISEMU_OK;
}

/* The name binding.py gives the layer at `position` (0 = protocol). */
static void layer_name(const ndisemu_kernel *k, uint32_t position, char *out, size_t size)
{
    if (position == 0)
        snprintf(out, size, "protocol");
    else if (position + 1 == k->layers)
        snprintf(out, size, "miniport");
    else
        snprintf(out, size, "filter%u", position - 1);
}

int ndisemu_freed_in_flight(ndisemu_kernel *k, int kind, const void *object, uint32_t owner,
                            uint32_t home)
{
    char owner_name[24], home_name[24];
    uint64_t handle = k->layer_first + (uint64_t)(owner - 1) * k->layer_step;
    layer_name(k, owner - 1, owner_name, sizeof owner_name);
    layer_name(k, home - 1, home_name, sizeof home_name);
    ndisemu_bugcheck(k, BUGCODE_NDIS_DRIVER, NDISEMU_BUG_NBL_NOT_OWNED, handle, 0,
                     (uint32_t)kind, object,
                     kind == NDISEMU_KIND_NBL
                         ? "NBL freed while it is in flight (another layer owns it)"
                         : "NET_BUFFER freed while its NBL is in flight (another layer "
                           "owns it)");
    snprintf(k->bug.detail, sizeof k->bug.detail,
             "%s owns it (handle %#llx), its home is %s: only its home frees it, once it "
             "is completed or returned", owner_name, (unsigned long long)handle, home_name);
    return NDISEMU_BUGCHECK;
}
