/*
 * core.h - the native core's interface, read both by the C sources and, with
 * its preprocessor lines and comments removed, by cffi's cdef().  The runtime
 * view is x64 as ndis.sys lays it out (NDIS_WRAPPER: 29 info slots); a
 * Kernel's NDIS version only bounds what its driver may see.
 *
 * Conventions: every entry point takes the emulated machine first and
 * returns an int: 0 on success, NDISEMU_BUGCHECK when the call was refused
 * (k->bug says why; nothing was changed), NDISEMU_NO_MEMORY when an
 * allocation failed (nothing was allocated).  Results come back through out
 * parameters.
 */
#ifndef NDISEMU_CORE_H
#define NDISEMU_CORE_H

#define NDISEMU_ABI_X64 1
#define NDISEMU_NDIS_VERSION 687
#define NDIS_WRAPPER 1
#include "ndis.h"
#include "layout_table.h"

#define NDISEMU_OK 0
#define NDISEMU_BUGCHECK -1
#define NDISEMU_NO_MEMORY -2
#define NDISEMU_BAD_ARGUMENT -3        /* an argument out of range; nothing recorded */

/* Kinds of pool block; the same numbers name objects in bug checks. */
#define NDISEMU_KIND_NBL 1
#define NDISEMU_KIND_NB 2
#define NDISEMU_KIND_MDL 3
#define NDISEMU_KIND_CONTEXT 4
#define NDISEMU_KIND_DATA 5
#define NDISEMU_KIND_MEMORY 6
#define NDISEMU_KIND_NBL_POOL 7
#define NDISEMU_KIND_NB_POOL 8
#define NDISEMU_KIND_COUNT 9

/* How an NBL, NB or MDL came to be; decides which free call is right. */
#define NDISEMU_ORIGIN_POOL 1
#define NDISEMU_ORIGIN_PREALLOCATED 2
#define NDISEMU_ORIGIN_MDL_AND_DATA 3
#define NDISEMU_ORIGIN_NDIS_MDL 4
#define NDISEMU_ORIGIN_IO_MDL 5
#define NDISEMU_ORIGIN_CLONE 6
#define NDISEMU_ORIGIN_FWPS_CLONE 7
#define NDISEMU_ORIGIN_DEEP_CLONE 8
#define NDISEMU_ORIGIN_FRAGMENT 9
#define NDISEMU_ORIGIN_REASSEMBLED 10
#define NDISEMU_ORIGIN_FWPS_NBL 11
#define NDISEMU_ORIGIN_RETREAT 12
#define NDISEMU_ORIGIN_BUILT 13

/* Subcodes of bug check 0x7C.  0x21 and 0x27 are Microsoft's; the rest are
 * ndisemu's own (Microsoft documents none for these misuses) and are listed,
 * with the same numbers, in ndisemu/verifier.py and the README. */
#define NDIS_BUGCHECK_INVALID_OBJECT_HEADER 0x21
#define NDIS_BUGCHECK_LEAKED_NBL 0x27
#define NDISEMU_BUG_BAD_POINTER 0x81
#define NDISEMU_BUG_DOUBLE_FREE 0x82
#define NDISEMU_BUG_USE_AFTER_FREE 0x83
#define NDISEMU_BUG_WRONG_FREE 0x84
#define NDISEMU_BUG_CHILDREN_OUTSTANDING 0x85
#define NDISEMU_BUG_CONTEXT_ORDER 0x86
#define NDISEMU_BUG_NB_INCONSISTENT 0x87
#define NDISEMU_BUG_ADVANCE_PAST_END 0x88
#define NDISEMU_BUG_CLONE_FLAGS 0x89
#define NDISEMU_BUG_CLONE_MODIFIED 0x8A
#define NDISEMU_BUG_REFERENCED 0x8B
#define NDISEMU_BUG_WRONG_POOL 0x8C
#define NDISEMU_BUG_MDL_LENGTH 0x8D
#define NDISEMU_BUG_BAD_RANGE 0x8E
#define NDISEMU_BUG_BAD_PARAMETER 0x8F
#define NDISEMU_BUG_STILL_DESCRIBED 0x90
#define NDISEMU_BUG_COUNTER_LIMIT 0x91
/* The emulated binding's ownership rules (ndisemu/binding.py raises these,
 * and the core's free calls raise 0x92 for an NBL or NB in flight; the core
 * keeps the numbers so that the table stays one table). */
#define NDISEMU_BUG_NBL_NOT_OWNED 0x92
#define NDISEMU_BUG_NBL_CHANGED 0x93
#define NDISEMU_BUG_SOURCE_HANDLE 0x94
#define NDISEMU_BUG_BAD_HANDLE 0x95
/* Bug check 0xC4 parameter 1 for a call above its maximum IRQL (ndisemu's). */
#define NDISEMU_VERIFIER_IRQL 0x00091001
#define NDISEMU_PAGE_FAULT 0x50
/* Special pool's stops (Windows' parameter order, see verifier.c). */
#define NDISEMU_SPECIAL_POOL_CORRUPTION 0xC1
#define NDISEMU_FREED_SPECIAL_POOL 0xD5
#define NDISEMU_SLACK_OVERWRITTEN 0x24  /* 0xC1 P4: bytes past the end written */

/* The bug check a refused call leaves behind. */
typedef struct {
    uint32_t code;                 /* 0x7C, 0xC4, 0x50 */
    uint64_t parameters[4];        /* parameter 1 is the subcode */
    uint32_t object_kind;          /* NDISEMU_KIND_* of the object, 0 if none */
    uint64_t object;               /* display address of the object */
    const char *rule;              /* static text naming the rule broken */
    const char *call;              /* the NDIS call that was refused */
    char detail[256];              /* specifics (block, tag, offset), may be empty */
} ndisemu_bug;

typedef struct ndisemu_kernel ndisemu_kernel;

/* Live-object counters and arena accounting, see stats(). */
typedef struct {
    int64_t live[9];               /* indexed by NDISEMU_KIND_* */
    uint64_t bytes_live;           /* payload bytes of live blocks */
    uint64_t arena_used;           /* high-water mark of carved bytes */
    uint64_t arena_size;
    uint64_t allocations;          /* successful block allocations */
    uint64_t failures_injected;
    uint64_t bytes_copied;         /* packet bytes copied by the emulated calls */
} ndisemu_stats;

/* A growable list of object ids, kept by the core outside the arena. */
typedef struct {
    uint32_t *ids;
    uint32_t count;
    uint32_t capacity;
} ndisemu_ids;

/* Pool descriptor, kept by the core outside the arena (the handle is the
 * address of the pool's block, whose bytes nothing trusts). */
typedef struct {
    uint32_t kind;                 /* NDISEMU_KIND_NBL_POOL / _NB_POOL */
    uint8_t protocol_id;
    uint8_t allocate_nb;
    uint16_t context_size;
    uint32_t tag;
    uint32_t data_size;
    uint32_t flags;                /* *_POOL_FLAG_VERIFY */
    uint32_t is_default;
    int64_t live;                  /* objects allocated from it, not yet freed */
    uint64_t object_bytes;         /* payload size of one object block */
    void *handle;                  /* the pool handle drivers hold */
    ndisemu_ids lookaside;         /* freed object blocks kept for reuse */
    ndisemu_ids quarantine;        /* freed blocks of a VERIFY pool, never reused */
    uint64_t allocated;            /* objects ever allocated from it (inspection) */
} ndisemu_pool;

/* One live object, as ndisemu_live_objects reports it (leak reports). */
typedef struct {
    uint32_t kind;                 /* NDISEMU_KIND_* */
    uint32_t origin;               /* NDISEMU_ORIGIN_* (NBL, NB, MDL), else 0 */
    uint32_t tag;
    uint32_t size;                 /* payload bytes */
    uint64_t address;              /* display address */
    void *pointer;                 /* the object itself */
    const char *call;              /* the call that allocated it */
    uint32_t inner;                /* 1 if part of a larger block (freed with it) */
} ndisemu_object_info;

/* -- arena (arena.c) ----------------------------------------------------- */
void *ndisemu_map_arena(uint64_t size, uint64_t hint);
void ndisemu_unmap_arena(void *base, uint64_t size);
ndisemu_kernel *ndisemu_kernel_create(void *base, uint64_t size, uint64_t display_base);
void ndisemu_kernel_destroy(ndisemu_kernel *k);
ndisemu_bug *ndisemu_last_bug(ndisemu_kernel *k);
void ndisemu_set_irql(ndisemu_kernel *k, uint32_t irql);
uint32_t ndisemu_get_irql(ndisemu_kernel *k);
void ndisemu_set_verifier(ndisemu_kernel *k, int level);
void ndisemu_inject_failures(ndisemu_kernel *k, double rate, uint64_t seed);
void ndisemu_get_stats(ndisemu_kernel *k, ndisemu_stats *out);
uint64_t ndisemu_display(ndisemu_kernel *k, const void *p);
void *ndisemu_from_display(ndisemu_kernel *k, uint64_t display);
/* Kind of the live object at p (0 if none); *outer gets its block's kind. */
int ndisemu_object_kind(ndisemu_kernel *k, const void *p);
/* 1 if [p, p+length) lies in one live block's payload. */
int ndisemu_range_is_live(ndisemu_kernel *k, const void *p, uint64_t length);
int ndisemu_object_origin(ndisemu_kernel *k, const void *p);
/* Live objects in allocation-record order: fills up to `capacity` entries
 * and returns how many there are in all. */
uint64_t ndisemu_live_objects(ndisemu_kernel *k, ndisemu_object_info *out, uint64_t capacity);
/* Checks every quarantined block of every VERIFY pool for writes made after
 * the free (BugCheck 0xD5).  NDISEMU_OK if none. */
int ndisemu_scan_quarantine(ndisemu_kernel *k);

/* -- the emulated binding (binding.c) ------------------------------------ */
/* The live binding's layers, for the free calls' bug checks: `count` layers
 * (protocol, filters from the top, miniport) whose handles are first_handle
 * + position * step; count 0 when no binding is live. */
void ndisemu_bind_layers(ndisemu_kernel *k, uint32_t count, uint64_t first_handle,
                         uint64_t step);
/* An NBL or NB (kind) in flight is owned by layer position `owner` - 1 and
 * came from `home` - 1; owner 0: back home.  Freeing it while in flight is
 * BugCheck 0x7C/0x92.  NDISEMU_OK, or a bug check for a dead object. */
int ndisemu_set_away(ndisemu_kernel *k, const void *object, int kind, uint32_t owner,
                     uint32_t home);
/* The binding's calls made by driver code (driver.c) go to Python through
 * `dispatch`, which the Kernel registers when it loads a driver: `call`
 * says which (NDISEMU_BINDING_*), `count` is NumberOfNetBufferLists
 * (indications only), `port` the PortNumber (sends and indications),
 * `cancel_id` the CancelId (cancels only, which pass no NBLs).  It
 * returns NDISEMU_OK, or NDISEMU_BUGCHECK when the call raised: the
 * exception is kept for the Python call into the driver to raise once the
 * driver has unwound. */
#define NDISEMU_BINDING_SEND 1
#define NDISEMU_BINDING_FILTER_SEND 2
#define NDISEMU_BINDING_MINIPORT_SEND_COMPLETE 3
#define NDISEMU_BINDING_FILTER_SEND_COMPLETE 4
#define NDISEMU_BINDING_MINIPORT_INDICATE 5
#define NDISEMU_BINDING_FILTER_INDICATE 6
#define NDISEMU_BINDING_RETURN 7
#define NDISEMU_BINDING_FILTER_RETURN 8
#define NDISEMU_BINDING_CANCEL 9           /* nbls NULL, cancel_id given */
#define NDISEMU_BINDING_FILTER_CANCEL 10
typedef int (*ndisemu_binding_dispatch)(ndisemu_kernel *k, int call, void *handle,
                                        NET_BUFFER_LIST *nbls, uint32_t port, uint32_t count,
                                        uint32_t flags, void *cancel_id);
void ndisemu_set_binding_dispatch(ndisemu_kernel *k, ndisemu_binding_dispatch dispatch);
/* NdisGeneratePartialCancelId: 1, 2, ... 255, then 1 again, per Kernel. */
uint8_t ndisemu_partial_cancel_id(ndisemu_kernel *k);

/* -- driver code (driver.c) ---------------------------------------------- */
/* The table of emulated calls handed to each driver module (an NDISEMU_API). */
const void *ndisemu_driver_api(void);
/* 1 if the last call into driver code on k ended in a bug check (k->bug). */
int ndisemu_driver_unwound(ndisemu_kernel *k);
/* The info slots NdisCopySend/ReceiveNetBufferListInfo copy for this
 * Kernel's NDIS version (which 0: send, 1: receive). */
void ndisemu_set_info_slots(ndisemu_kernel *k, int which, const uint32_t *slots, uint32_t n);
/* Poisons the arena for AddressSanitizer (a sanitized driver is loaded):
 * pool headers, freed blocks, the bytes past each buffer's requested length
 * and the arena not yet carved; from then on allocations and frees keep it
 * so.  0 if the ASan runtime is not in the process. */
int ndisemu_enable_asan(ndisemu_kernel *k);
/* The text an ASan report from driver code on k ends with (the inputs the
 * test drew), NULL for none.  Copied; NDISEMU_BUGCHECK if out of memory. */
int ndisemu_set_sanitizer_note(ndisemu_kernel *k, const char *text);

/* -- verifier (verifier.c) ----------------------------------------------- */
int ndisemu_check_nb(ndisemu_kernel *k, NET_BUFFER *nb);
int ndisemu_check_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *nbl);
/* Read-only probe for checked views: 0 if [p, p+length) may be read. */
int ndisemu_probe(ndisemu_kernel *k, const void *p, uint64_t length, int kind);
/* The count of blocks freed so far, where it is kept: objects stop being
 * live only when a block is freed (inner objects with their block), so an
 * object a probe found live is live still while the count is unchanged.
 * Checked views read it before each field instead of probing again. */
const uint64_t *ndisemu_free_count(ndisemu_kernel *k);

/* -- pools (pool.c) ------------------------------------------------------ */
int ndisemu_allocate_nbl_pool(ndisemu_kernel *k, const NET_BUFFER_LIST_POOL_PARAMETERS *p,
                              int is_default, void **pool);
int ndisemu_free_nbl_pool(ndisemu_kernel *k, void *pool);
int ndisemu_allocate_nb_pool(ndisemu_kernel *k, const NET_BUFFER_POOL_PARAMETERS *p,
                             int is_default, void **pool);
int ndisemu_free_nb_pool(ndisemu_kernel *k, void *pool);
int ndisemu_pool_info(ndisemu_kernel *k, void *pool, ndisemu_pool *out);

/* -- memory and MDLs (mdl.c) --------------------------------------------- */
int ndisemu_allocate_memory(ndisemu_kernel *k, uint64_t length, uint32_t tag,
                            uint32_t kind, void **out);
int ndisemu_free_memory(ndisemu_kernel *k, void *va, uint32_t tag, uint32_t kind);
int ndisemu_allocate_mdl(ndisemu_kernel *k, void *va, uint32_t length, int origin, MDL **out);
int ndisemu_free_mdl(ndisemu_kernel *k, MDL *mdl, int origin);
int ndisemu_build_mdl_for_nonpaged_pool(ndisemu_kernel *k, MDL *mdl);
uint64_t ndisemu_size_of_mdl(const void *base, uint64_t length);
int ndisemu_initialize_mdl(ndisemu_kernel *k, MDL *mdl, void *va, uint64_t length);
int ndisemu_system_address(ndisemu_kernel *k, MDL *mdl, void **out);
int ndisemu_adjust_mdl_length(ndisemu_kernel *k, MDL *mdl, uint32_t length);

/* -- NET_BUFFER (netbuffer.c) -------------------------------------------- */
int ndisemu_allocate_nb(ndisemu_kernel *k, void *pool, MDL *chain, uint32_t data_offset,
                        uint64_t data_length, NET_BUFFER **out);
int ndisemu_allocate_nb_mdl_and_data(ndisemu_kernel *k, void *pool, NET_BUFFER **out);
int ndisemu_free_nb(ndisemu_kernel *k, NET_BUFFER *nb);
int ndisemu_adjust_current_mdl(ndisemu_kernel *k, NET_BUFFER *nb);
int ndisemu_read_nb(ndisemu_kernel *k, NET_BUFFER *nb, uint64_t offset, uint64_t length,
                    uint8_t *out);
/* The buffers ndisemu_nbl_bytes copies into, owned by the caller (the
 * Python Kernel keeps them as long as the machine): `capacity` bytes of
 * data and `max_nbs` (at least 2) NB lengths. */
void ndisemu_set_scratch(ndisemu_kernel *k, uint8_t *data, uint64_t capacity, uint64_t *lengths,
                         uint64_t max_nbs);
/* nbl_bytes in one call: checks the NBL (ndisemu_check_nbl), then copies
 * every NB's used data into the scratch data, one after another, with each
 * NB's length in the scratch lengths; returns the NB count.  When they do
 * not fit, copies nothing and returns NDISEMU_NO_MEMORY with the NB count
 * and byte total in lengths[0] and [1] (the caller grows its buffers and
 * calls again); NDISEMU_BUGCHECK when a check fails. */
int64_t ndisemu_nbl_bytes(ndisemu_kernel *k, NET_BUFFER_LIST *nbl);

/* -- NET_BUFFER_LIST and contexts (nbl.c) -------------------------------- */
int ndisemu_allocate_nbl(ndisemu_kernel *k, void *pool, uint16_t context_size,
                         uint16_t context_backfill, NET_BUFFER_LIST **out);
int ndisemu_allocate_nb_and_nbl(ndisemu_kernel *k, void *pool, uint16_t context_size,
                                uint16_t context_backfill, MDL *chain, uint32_t data_offset,
                                uint64_t data_length, NET_BUFFER_LIST **out);
int ndisemu_free_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *nbl);
int ndisemu_allocate_nbl_context(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, uint16_t size,
                                 uint16_t backfill, uint32_t tag);
int ndisemu_free_nbl_context(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, uint16_t size);
int ndisemu_pool_from_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, void **out);
int ndisemu_pool_from_nb(ndisemu_kernel *k, NET_BUFFER *nb, void **out);

/* -- helpers for build_nbl / free_built (nbl.c) -------------------------- */
int ndisemu_build_nbl(ndisemu_kernel *k, void *pool, void *nb_pool, uint32_t count,
                      const uint8_t *const *payloads, const uint64_t *lengths,
                      const uint32_t *mdl_sizes, uint32_t n_mdl_sizes,
                      uint32_t data_offset, NET_BUFFER_LIST **out);
int ndisemu_free_built(ndisemu_kernel *k, NET_BUFFER_LIST *nbl);
/* The same build from one buffer: the payloads one after another in `data`,
 * their lengths in `lengths` (NULL: one payload of `length` bytes).  The
 * NBL, or NULL with ndisemu_last_rc() saying why: the Python helper's one
 * native call, with the fewest arguments for cffi to convert. */
NET_BUFFER_LIST *ndisemu_build_nbl_flat(ndisemu_kernel *k, void *pool, void *nb_pool,
                                        uint32_t count, const uint8_t *data,
                                        const uint64_t *lengths, uint64_t length,
                                        const uint32_t *mdl_sizes, uint32_t n_mdl_sizes,
                                        uint32_t data_offset);
/* The common case in fewer arguments: one payload, one MDL per NB, NBs from
 * the Kernel's default NB pool. */
NET_BUFFER_LIST *ndisemu_build_nbl_one(ndisemu_kernel *k, void *pool, const uint8_t *data,
                                       uint64_t length, uint32_t data_offset);

/* -- derived NBLs and the FWPS calls (clone.c) ------------------------- */
int ndisemu_clone_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *orig, void *nbl_pool, void *nb_pool,
                      uint32_t flags, uint32_t origin, NET_BUFFER_LIST **out);
int ndisemu_free_clone_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *clone, uint32_t flags,
                           uint32_t origin);
/* The same clone with NULL pool handles (the Kernel's default pools), the
 * result returned directly: the Python API's common case, with the fewest
 * arguments for cffi to convert.  NULL with ndisemu_last_rc() saying why. */
NET_BUFFER_LIST *ndisemu_clone_default_pools(ndisemu_kernel *k, NET_BUFFER_LIST *orig,
                                            uint32_t flags, uint32_t origin);
int ndisemu_last_rc(ndisemu_kernel *k);
int ndisemu_deep_clone_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *orig, void *nbl_pool,
                           void *nb_pool, NET_BUFFER_LIST **out);
int ndisemu_fragment_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *orig, void *nbl_pool,
                         void *nb_pool, uint32_t start, uint32_t max_len, uint32_t delta,
                         uint32_t backfill, NET_BUFFER_LIST **out);
int ndisemu_free_fragment_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *frag, uint32_t delta);
int ndisemu_reassemble_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *frag, void *pool, int pool_given,
                           uint32_t start, uint32_t delta, uint32_t backfill,
                           NET_BUFFER_LIST **out);
int ndisemu_free_reassembled_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, uint32_t delta);
int ndisemu_fwps_allocate_nb_and_nbl(ndisemu_kernel *k, void *pool, uint16_t context_size,
                                     uint16_t context_backfill, MDL *chain,
                                     uint32_t data_offset, uint64_t data_length,
                                     NET_BUFFER_LIST **out);
int ndisemu_fwps_free_nbl(ndisemu_kernel *k, NET_BUFFER_LIST *nbl);
int ndisemu_fwps_reference(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, int delta,
                           int dispatch_level);
/* -- data space (dataspace.c) -------------------------------------------- */
/* Handlers are Python callables, so an allocating retreat is split: plan
 * (validate, report the buffer size needed; changes nothing), allocate (the
 * default allocator, or the caller's AllocateMdlHandler from Python), commit
 * (re-validates, checks the MDL, links it at the chain head, fixes every
 * field).  Commit with mdl NULL retreats within the unused space, or, when
 * an MDL is needed, only reports its size in *need and changes nothing. */
int ndisemu_retreat_plan(ndisemu_kernel *k, NET_BUFFER *nb, uint32_t delta,
                         uint32_t backfill, uint32_t *need);
int ndisemu_retreat_allocate(ndisemu_kernel *k, uint32_t size, MDL **out);
int ndisemu_retreat_commit(ndisemu_kernel *k, NET_BUFFER *nb, uint32_t delta,
                           uint32_t backfill, MDL *mdl, uint32_t *need);
/* The default freer: an MDL (and its buffer) from ndisemu_retreat_allocate. */
int ndisemu_retreat_free_default(ndisemu_kernel *k, MDL *mdl);
/* An NB's data-space fields, saved so a failed NBL retreat can undo an NB. */
typedef struct {
    MDL *chain;
    MDL *current;
    uint32_t current_offset;
    uint32_t data_offset;
    uint32_t data_length;
    uint32_t retreat_mdls;
} ndisemu_nb_state;
int ndisemu_nb_save(ndisemu_kernel *k, NET_BUFFER *nb, ndisemu_nb_state *out);
/* Puts the fields back; *added gets the head MDL a commit linked since the
 * save (unlinked again, Next NULL), for the caller to free; NULL if none. */
int ndisemu_nb_restore(ndisemu_kernel *k, NET_BUFFER *nb, const ndisemu_nb_state *saved,
                       MDL **added);
/* Advance: plan validates and counts the MDLs that will be freed (all from
 * the default allocator, or all for the FreeMdlHandler); commit applies it,
 * frees default MDLs itself and hands back the others (unlinked). */
int ndisemu_advance_plan(ndisemu_kernel *k, NET_BUFFER *nb, uint32_t delta, int free_mdl,
                         int have_handler, uint32_t *to_free);
int ndisemu_advance_commit(ndisemu_kernel *k, NET_BUFFER *nb, uint32_t delta, int free_mdl,
                           int have_handler, MDL **handler_mdls, uint32_t capacity,
                           uint32_t *handed);
int ndisemu_get_data_buffer(ndisemu_kernel *k, NET_BUFFER *nb, uint32_t bytes_needed,
                            uint8_t *storage, uint32_t align_multiple, uint32_t align_offset,
                            void **out);
int ndisemu_copy_nb_to_nb(ndisemu_kernel *k, NET_BUFFER *dst, uint32_t dst_offset,
                          uint32_t bytes, NET_BUFFER *src, uint32_t src_offset,
                          uint32_t *copied);
int ndisemu_copy_nbl_info(ndisemu_kernel *k, NET_BUFFER_LIST *dst, NET_BUFFER_LIST *src,
                          const uint32_t *slots, uint32_t count);
/* set == 0: *value = low byte of the slot; set != 0: writes only that byte. */
int ndisemu_nbl_protocol_id(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, uint32_t slot, int set,
                            uint8_t *value);

/* -- benchmark loops (bench.c) ------------------------------------------- */
/* The operations `ndisemu bench` times.  The first four run the emulated
 * calls (allocate, then free) through the same internal functions as the
 * public API; the last two are floors: one memcpy of the original's used
 * bytes, and a bare clone that fills the same NBL/NB/partial-MDL fields in
 * a block from a free list with no checks and no pool headers. */
#define NDISEMU_BENCH_CLONE 1
#define NDISEMU_BENCH_CLONE_ORIGINAL_MDLS 2
#define NDISEMU_BENCH_FWPS_CLONE 3
#define NDISEMU_BENCH_DEEP_CLONE 4
#define NDISEMU_BENCH_MEMCPY 5
#define NDISEMU_BENCH_FLOOR_CLONE 6

typedef struct ndisemu_bench ndisemu_bench;

/* What the last operation of a loop made.  Emulated calls: live NB and MDL
 * counts added by the allocation, the k->stats deltas of bytes_copied and
 * pool bytes (headers included).  Floors: what they built or copied, and
 * the bytes of the block they fill (no headers). */
typedef struct {
    uint64_t nbs;
    uint64_t mdls;
    uint64_t mdl_bytes;            /* sum of ByteCount over the new MDLs */
    uint64_t bytes_copied;
    uint64_t block_bytes;
} ndisemu_bench_report;

/* Checks `orig` and the pools once (full verifier walk) and prepares the
 * floors' free list and buffers; the loops then run without checks of
 * their own.  `orig` must stay unchanged until ndisemu_bench_release. */
int ndisemu_bench_prepare(ndisemu_kernel *k, NET_BUFFER_LIST *orig, void *nbl_pool,
                          void *nb_pool, ndisemu_bench **out);
/* Runs `op` `iterations` times (0: returns at once, a bare call); report may
 * be NULL.  Returns what the first failing call returned. */
int ndisemu_bench_run(ndisemu_bench *b, uint32_t op, uint64_t iterations,
                      ndisemu_bench_report *report);
void ndisemu_bench_release(ndisemu_bench *b);


/* -- inspection: object records (inspect.c) and the event trace (trace.c) - */
/* What the core knows of the object at an address, live or freed: what
 * k.show() prints beside the fields a driver can overwrite. */
typedef struct {
    uint32_t kind;                 /* NDISEMU_KIND_* */
    uint32_t state;                /* 1 live, 2 freed */
    uint32_t origin;               /* NDISEMU_ORIGIN_* (NBL, NB, MDL), else 0 */
    uint32_t tag;
    uint32_t size;                 /* payload bytes of the object itself */
    uint32_t inner;                /* 1 if part of a larger block (freed with it) */
    uint64_t block;                /* display address of that block (its own if not inner) */
    uint64_t address;              /* display address of the object */
    const char *call;              /* the call that allocated it */
    const char *freed_by;          /* the call that freed it ("" while live) */
    uint32_t retreat_mdls;         /* NBs: MDLs at the chain head a retreat added */
    int32_t references;            /* NBLs: FwpsReferenceNetBufferList0 count */
    uint64_t parent;               /* FWPS clones: display address of the parent NBL */
} ndisemu_object_record;

/* The record of the object whose payload starts at p: NDISEMU_OK, or
 * NDISEMU_BUGCHECK (nothing recorded in k->bug) when no object starts there. */
int ndisemu_object_record_of(ndisemu_kernel *k, const void *p, ndisemu_object_record *out);

/* The per-object event trace (trace.c). */
/* What k.trace records while it is on, one event per state change of an
 * object, in a bounded ring (the oldest events are overwritten).  Recorded
 * in the core, so calls made by driver C code are traced like calls from
 * Python.  args[] by event:
 *   ALLOCATED        [0] the enclosing block's display address (inner objects), else 0
 *   FREED            [0] the same: the block it went with
 *   DERIVED          on the new NBL: [0] the source NBL, [1] NDISEMU_ORIGIN_*,
 *                    [2] AllocateCloneFlags (clones) or DataOffsetDelta (fragment,
 *                    reassembly)
 *   CHILD_DERIVED    on the source NBL: [0] the new NBL, [1] NDISEMU_ORIGIN_*
 *   CHILD_FREED      on a parent: [0] the FWPS clone freed, [1] ChildRefCount after
 *   RETREATED        on an NB: [0] DataOffsetDelta, [1] the MDL added (0 if none),
 *                    [2] DataOffset after
 *   ADVANCED         on an NB: [0] DataOffsetDelta, [1] MDLs freed, [2] DataOffset after
 *   RESTORED         on an NB: a failed NBL retreat undone: [0] the MDL taken off
 *                    (0 if none), [2] DataOffset after
 *   CONTEXT_ALLOCATED / CONTEXT_FREED  on an NBL: [0] ContextSize, [1] the context
 *                    block allocated or freed (0 if none), [2] Offset after (0
 *                    when a block was freed)
 *   REFERENCED       on an NBL: [0] +1 or -1 (as uint64), [1] references after
 *   HANDED_OVER      on an NBL: [0] from handle, [1] to handle (display addresses
 *                    when in the arena)
 *   MDL_LENGTH       on an MDL: [0] ByteCount before, [1] after
 */
#define NDISEMU_TRACE_ALLOCATED 1
#define NDISEMU_TRACE_FREED 2
#define NDISEMU_TRACE_DERIVED 3
#define NDISEMU_TRACE_CHILD_DERIVED 4
#define NDISEMU_TRACE_CHILD_FREED 5
#define NDISEMU_TRACE_RETREATED 6
#define NDISEMU_TRACE_ADVANCED 7
#define NDISEMU_TRACE_RESTORED 8
#define NDISEMU_TRACE_CONTEXT_ALLOCATED 9
#define NDISEMU_TRACE_CONTEXT_FREED 10
#define NDISEMU_TRACE_REFERENCED 11
#define NDISEMU_TRACE_HANDED_OVER 12
#define NDISEMU_TRACE_MDL_LENGTH 13

typedef struct {
    uint64_t seq;                  /* 1, 2, ... from when tracing was turned on */
    uint64_t object;               /* the object's display address */
    uint64_t args[3];              /* see above */
    const char *call;              /* the NDIS call that made the change */
    uint32_t rec;                  /* the object's record id */
    uint32_t generation;           /* which lifetime of that record */
    uint16_t event;                /* NDISEMU_TRACE_* */
    uint16_t kind;                 /* NDISEMU_KIND_* of the object */
} ndisemu_trace_event;

/* Turns tracing on with a ring of `capacity` events, starting a new log
 * (the old one is dropped), or off with capacity 0 (the log is kept for
 * reading).  NDISEMU_NO_MEMORY if the ring cannot be allocated. */
int ndisemu_trace_enable(ndisemu_kernel *k, uint32_t capacity);
int ndisemu_trace_is_on(ndisemu_kernel *k);
/* The retained events of `object` (its current lifetime: a record reused by
 * a later object does not inherit its events), or of every object when
 * `object` is NULL.  Fills `out` with the newest `capacity` of them, oldest
 * first, and returns how many there are in all. */
uint64_t ndisemu_trace_events(ndisemu_kernel *k, const void *object,
                              ndisemu_trace_event *out, uint64_t capacity);
/* Records that an NBL went from one layer to another (the binding's
 * hand-overs).  `call` names the NDIS call (a string that outlives the
 * log), or NULL for the call being executed.  Nothing when tracing is off
 * or `nbl` is not a live NBL. */
void ndisemu_trace_handover(ndisemu_kernel *k, NET_BUFFER_LIST *nbl, const void *from,
                            const void *to, const char *call);
/* -- the fuzzing front end (fuzz.c) ------------------------------------- */
/* k.read: copies `length` bytes at `address` into `out` (NULL: only checks)
 * when every one lies in bytes a live MDL describes, within live data, or in
 * the requested length of a live memory block; else BugCheck 0x50 naming the
 * first byte that does not (P1), nothing copied. */
int ndisemu_read(ndisemu_kernel *k, const void *address, uint64_t length, uint8_t *out);
/* Sets the injected-failure rate without touching the generator's state and
 * returns the old rate: strategies build their inputs with failures paused. */
double ndisemu_pause_failures(ndisemu_kernel *k, double rate);

#endif
