/*
 * asan.c - what an AddressSanitizer report from driver code cannot say by
 * itself: which emulated object the bad address belongs to, the NDIS call
 * last made, the test running and the inputs it drew.  ASan ends the
 * process after its report, so this is the only chance to say it; the
 * runtime calls on_report once its own report is written, and what it adds
 * goes to the file $NDISEMU_SANITIZER_NOTES.<pid> (which `ndisemu
 * sanitized` prints after the report) or else to stderr.
 *
 * The runtime's functions are looked up at run time, as in arena.c: the
 * core never links it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kernel.h"

#define WATCHED 16

/* The machines with a sanitized driver loaded: a report's address is looked
 * up in each one's arena. */
static ndisemu_kernel *watched[WATCHED];

static const char *kind_name(uint32_t kind)
{
    static const char *const names[NDISEMU_KIND_COUNT] = {
        "object", "NET_BUFFER_LIST", "NET_BUFFER", "MDL", "NET_BUFFER_LIST_CONTEXT",
        "data buffer", "memory block", "NBL pool", "NB pool",
    };
    return kind < NDISEMU_KIND_COUNT ? names[kind] : "object";
}

/* The object of `block` (the block's own, or one carved inside it) whose
 * payload starts last at or before p. */
static ndisemu_rec *object_before(ndisemu_kernel *k, ndisemu_rec *block, const uint8_t *p)
{
    ndisemu_rec *best = block;
    uint32_t id;
    for (id = block->next; id; id = ndisemu_rec_at(k, id)->next) {
        ndisemu_rec *inner = ndisemu_rec_at(k, id);
        const uint8_t *payload = ndisemu_rec_payload(k, inner);
        if (inner->state == NDISEMU_STATE_LIVE && payload <= p &&
            payload > (const uint8_t *)ndisemu_rec_payload(k, best))
            best = inner;
    }
    return best;
}

/* One sentence on what the arena holds at p. */
static void describe(ndisemu_kernel *k, const uint8_t *p, char *out, size_t size)
{
    unsigned long long at = ndisemu_display_of(k, p);
    ndisemu_rec *block = ndisemu_block_at(k, p), *r;
    const uint8_t *payload;
    if (!block) {
        snprintf(out, size, "%#llx, arena never handed out", at);
        return;
    }
    payload = ndisemu_rec_payload(k, block);
    if (p < payload) {
        snprintf(out, size, "%#llx, in the pool header in front of the %s at %#llx", at,
                 kind_name(block->kind), (unsigned long long)ndisemu_display_of(k, payload));
        return;
    }
    if (block->state != NDISEMU_STATE_LIVE) {
        snprintf(out, size, "%#llx, byte %llu of the freed %s at %#llx (freed by %s)", at,
                 (unsigned long long)(p - payload), kind_name(block->kind),
                 (unsigned long long)ndisemu_display_of(k, payload),
                 block->freed_by ? block->freed_by : "?");
        return;
    }
    r = object_before(k, block, p);
    payload = ndisemu_rec_payload(k, r);
    if ((uint64_t)(p - payload) < r->size)
        snprintf(out, size, "%#llx, byte %llu of the %llu-byte %s at %#llx (allocated by %s)",
                 at, (unsigned long long)(p - payload), (unsigned long long)r->size,
                 kind_name(r->kind), (unsigned long long)ndisemu_display_of(k, payload),
                 r->call ? r->call : "?");
    else if ((uint64_t)(p - payload) == r->size)
        snprintf(out, size, "%#llx, the first byte past the end of the %llu-byte %s at %#llx "
                 "(allocated by %s)", at, (unsigned long long)r->size, kind_name(r->kind),
                 (unsigned long long)ndisemu_display_of(k, payload), r->call ? r->call : "?");
    else
        snprintf(out, size, "%#llx, %llu bytes past the end of the %llu-byte %s at %#llx "
                 "(allocated by %s)", at, (unsigned long long)(p - payload - r->size),
                 (unsigned long long)r->size, kind_name(r->kind),
                 (unsigned long long)ndisemu_display_of(k, payload), r->call ? r->call : "?");
}

static void emit(int fd, const char *text)
{
    size_t n = strlen(text);
    while (n) {
        ssize_t done = write(fd, text, n);
        if (done <= 0)
            return;
        text += done;
        n -= (size_t)done;
    }
}

static void on_report(const char *report)
{
    void *(*report_address)(void) =
        (void *(*)(void))dlsym(RTLD_DEFAULT, "__asan_get_report_address");
    const uint8_t *p = report_address ? report_address() : NULL;
    const char *notes = getenv("NDISEMU_SANITIZER_NOTES"), *test = getenv("PYTEST_CURRENT_TEST");
    ndisemu_kernel *k = NULL;
    char line[1024];
    int i, fd = 2;
    (void)report;
    for (i = 0; i < WATCHED && !k; i++)
        if (watched[i] && p >= (const uint8_t *)watched[i]->base &&
            (uint64_t)(p - (const uint8_t *)watched[i]->base) < watched[i]->size)
            k = watched[i];
    if (notes && *notes) {
        char path[4096];
        snprintf(path, sizeof path, "%s.%d", notes, (int)getpid());
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd < 0)
            fd = 2;
    }
    if (!k) {
        emit(fd, "ndisemu: the address is not in an emulated arena (the driver's own memory, "
                 "its stack, or Python's)\n");
    } else {
        char where[512];
        describe(k, p, where, sizeof where);
        snprintf(line, sizeof line, "ndisemu: the address is %s\n"
                 "ndisemu: the last NDIS call on that machine: %s\n", where,
                 k->call ? k->call : "none");
        emit(fd, line);
        if (k->asan_note) {
            emit(fd, "ndisemu: the inputs the test drew:\n");
            emit(fd, k->asan_note);
            emit(fd, "\n");
        }
    }
    if (test) {
        snprintf(line, sizeof line, "ndisemu: in the test %s\n", test);
        emit(fd, line);
    }
    if (fd != 2)
        close(fd);
}

void ndisemu_asan_watch(ndisemu_kernel *k)
{
    static int registered;
    int i;
    if (!registered) {
        void (*set_callback)(void (*)(const char *)) = (void (*)(void (*)(const char *)))
            dlsym(RTLD_DEFAULT, "__asan_set_error_report_callback");
        if (set_callback)
            set_callback(on_report);
        registered = 1;
    }
    for (i = 0; i < WATCHED; i++)
        if (!watched[i]) {
            watched[i] = k;
            return;
        }
    /* More machines than slots: the oldest is described no more. */
    memmove(watched, watched + 1, (WATCHED - 1) * sizeof *watched);
    watched[WATCHED - 1] = k;
}

void ndisemu_asan_forget(ndisemu_kernel *k)
{
    int i;
    for (i = 0; i < WATCHED; i++)
        if (watched[i] == k)
            watched[i] = NULL;
    free(k->asan_note);
    k->asan_note = NULL;
}

int ndisemu_set_sanitizer_note(ndisemu_kernel *k, const char *text)
{
    char *copy = text ? strdup(text) : NULL;
    if (text && !copy)
        return NDISEMU_BUGCHECK;       /* out of memory: the old note stays */
    free(k->asan_note);
    k->asan_note = copy;
    return NDISEMU_OK;
}
