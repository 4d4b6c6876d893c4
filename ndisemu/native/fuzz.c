/*
 * fuzz.c - what the fuzzing front end (k.read, ndisemu.strategies, the
 * pytest plugin) needs from the core.
 *
 * Checked reads.  A harness that reads bytes at a raw address with cffi
 * (ffi.buffer on MappedSystemVa) gets whatever the arena holds there: the
 * slack past an MDL's bytes, the next block's pool header, freed poison.
 * ndisemu_read copies only bytes a driver may legitimately read: bytes some
 * live MDL describes, or the payload a caller asked
 * NdisAllocateMemoryWithTagPriority for.  MDL fields are driver-writable,
 * so a described range counts only where it also lies in live data
 * (ndisemu_data_containing): an MDL pointed at an NBL or at a pool header
 * does not make those readable.  Which MDLs describe a byte is found by
 * scanning the live MDL records, reading each MDL's fields as they are now:
 * exact, whatever the driver did to them, at the cost of one pass over the
 * records per readable run.
 */
#include <stdio.h>
#include "kernel.h"

/* The further of `best` and the end of [va, va + count) when that range
 * holds the byte at address p.  Addresses are compared as integers: a
 * driver-written MDL may point anywhere. */
static uintptr_t furthest(uintptr_t best, uintptr_t p, const void *va, uint32_t count)
{
    uintptr_t into = p - (uintptr_t)va;          /* wraps when p lies below va */
    if (into < count && p + (count - into) > best)
        return p + (count - into);
    return best;
}

/* How many bytes from p on may be read in one run: 0 when p may not be. */
static uint64_t readable_run(ndisemu_kernel *k, const uint8_t *p)
{
    ndisemu_rec *data = ndisemu_data_containing(k, p, 1);
    uintptr_t at = (uintptr_t)p, end, best = at;
    uint32_t id;
    if (!data)
        return 0;
    end = (uintptr_t)ndisemu_rec_payload(k, data) + data->size;
    if (data->kind == NDISEMU_KIND_MEMORY)
        return end - at;               /* the caller's own memory: all it asked for */
    for (id = 1; id < k->nrecs; id++) {
        const ndisemu_rec *r = ndisemu_rec_at(k, id);
        const MDL *m;
        if (r->kind != NDISEMU_KIND_MDL || r->state != NDISEMU_STATE_LIVE)
            continue;
        m = ndisemu_rec_payload(k, r);
        best = furthest(best, at, ndisemu_mdl_va(m), m->ByteCount);
        /* the system mapping of the same pages, as MmGetSystemAddressForMdlSafe
         * hands it out (the same address unless the driver rewrote it) */
        if (m->MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL))
            best = furthest(best, at, m->MappedSystemVa, m->ByteCount);
    }
    return (best < end ? best : end) - at;
}

/* Why byte p may not be read, for the bug check's detail. */
static const char *why_unreadable(ndisemu_kernel *k, const uint8_t *p)
{
    ndisemu_rec *block;
    if ((uintptr_t)p - (uintptr_t)k->base >= k->size)
        return "outside the arena";
    if (ndisemu_data_containing(k, p, 1))
        return "in data that no live MDL describes";
    block = ndisemu_block_containing(k, p);
    if (!block)
        return "in a pool header, in freed memory or in arena never handed out";
    if (block->kind == NDISEMU_KIND_DATA || block->kind == NDISEMU_KIND_MEMORY)
        return "past the length its buffer was allocated with";
    return "in a live block that holds NDIS structures, not data";
}

int ndisemu_read(ndisemu_kernel *k, const void *address, uint64_t length, uint8_t *out)
{
    uint64_t done = 0;
    NDISEMU_CALL(k, "read");
    while (done < length) {
        const uint8_t *at = (const uint8_t *)((uintptr_t)address + done);
        uint64_t run = readable_run(k, at);
        if (!run) {
            ndisemu_bugcheck(k, NDISEMU_PAGE_FAULT, 0, 0, 0, 0, at,
                             "reads a byte that no live MDL describes and no memory "
                             "block holds");
            snprintf(k->bug.detail, sizeof k->bug.detail,
                     "byte %llu of the %llu-byte read from %#llx, %s",
                     (unsigned long long)done, (unsigned long long)length,
                     (unsigned long long)ndisemu_display(k, address), why_unreadable(k, at));
            return NDISEMU_BUGCHECK;
        }
        done += run;
    }
    if (out && length)
        memcpy(out, address, length);
    return NDISEMU_OK;
}

double ndisemu_pause_failures(ndisemu_kernel *k, double rate)
{
    /* Only the rate: the generator's state is kept, so the calls under test
     * see the same failures whether or not something paused in between
     * (a zero rate draws nothing, see ndisemu_should_fail). */
    double old = k->fail_rate;
    k->fail_rate = rate;
    return old;
}
