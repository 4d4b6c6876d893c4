/*
 * wdm.h - the wdm.h/ntdef.h types the NDIS buffer structures are built on:
 * LARGE_INTEGER (PHYSICAL_ADDRESS), SLIST_HEADER and MDL, with their
 * constants.  Declared once; abi.h selects the ABI.
 */
#ifndef NDISEMU_WDM_H
#define NDISEMU_WDM_H

#include "abi.h"

typedef union _LARGE_INTEGER {
    struct {
        ULONG LowPart;
        LONG HighPart;
    };
    struct {
        ULONG LowPart;
        LONG HighPart;
    } u;
    LONGLONG QuadPart;
} LARGE_INTEGER;

typedef LARGE_INTEGER PHYSICAL_ADDRESS;

/* SLIST_HEADER has one shape per architecture (ntdef.h / wdm.h). */
#if defined(NDISEMU_ABI_X64)
typedef union DECLSPEC_ALIGN(16) _SLIST_HEADER {
    struct {
        ULONGLONG Alignment;
        ULONGLONG Region;
    };
    struct {
        ULONGLONG Depth : 16;
        ULONGLONG Sequence : 48;
        ULONGLONG Reserved : 4;
        ULONGLONG NextEntry : 60;
    } HeaderX64;
    NDISEMU_LAYOUT_FROM_COMPILER
} SLIST_HEADER;
#elif defined(NDISEMU_ABI_ARM64)
typedef union DECLSPEC_ALIGN(16) _SLIST_HEADER {
    struct {
        ULONGLONG Alignment;
        ULONGLONG Region;
    };
    struct {
        ULONGLONG Depth : 16;
        ULONGLONG Sequence : 48;
        ULONGLONG Reserved : 4;
        ULONGLONG NextEntry : 60;
    } HeaderArm64;
    NDISEMU_LAYOUT_FROM_COMPILER
} SLIST_HEADER;
#else
typedef union _SLIST_HEADER {
    ULONGLONG Alignment;
    struct {
        NDISEMU_PTR(void) Next;     /* SLIST_ENTRY: one pointer */
        WORD Depth;
        WORD CpuId;
    };
} SLIST_HEADER;
#endif

/* The memory descriptor list.  A PFN_NUMBER array follows the header. */
typedef struct _MDL {
    NDISEMU_PTR(struct _MDL) Next;
    CSHORT Size;
    CSHORT MdlFlags;
    NDISEMU_PTR(struct _EPROCESS) Process;
    PVOID MappedSystemVa;
    PVOID StartVa;
    ULONG ByteCount;
    ULONG ByteOffset;
} MDL;

#define PAGE_SIZE                       0x1000
#define PAGE_SHIFT                      12

#define MDL_MAPPED_TO_SYSTEM_VA         0x0001
#define MDL_PAGES_LOCKED                0x0002
#define MDL_SOURCE_IS_NONPAGED_POOL     0x0004
#define MDL_ALLOCATED_FIXED_SIZE        0x0008
#define MDL_PARTIAL                     0x0010
#define MDL_PARTIAL_HAS_BEEN_MAPPED     0x0020
#define MDL_IO_PAGE_READ                0x0040
#define MDL_WRITE_OPERATION             0x0080
#define MDL_LOCKED_PAGE_TABLES          0x0100
#define MDL_PARENT_MAPPED_SYSTEM_VA     MDL_LOCKED_PAGE_TABLES
#define MDL_FREE_EXTRA_PTES             0x0200
#define MDL_DESCRIBES_AWE               0x0400
#define MDL_IO_SPACE                    0x0800
#define MDL_NETWORK_HEADER              0x1000
#define MDL_MAPPING_CAN_FAIL            0x2000
#define MDL_PAGE_CONTENTS_INVARIANT     0x4000
#define MDL_ALLOCATED_MUST_SUCCEED      MDL_PAGE_CONTENTS_INVARIANT
#define MDL_INTERNAL                    0x8000

#define MdlMappingNoWrite               0x80000000
#define MdlMappingNoExecute             0x40000000

typedef enum _MM_PAGE_PRIORITY {
    LowPagePriority,
    NormalPagePriority = 16,
    HighPagePriority = 32
} MM_PAGE_PRIORITY;

#define PASSIVE_LEVEL                   0
#define APC_LEVEL                       1
#define DISPATCH_LEVEL                  2

#define STATUS_SUCCESS                  NDISEMU_NTSTATUS(0x00000000)
#define STATUS_UNSUCCESSFUL             NDISEMU_NTSTATUS(0xC0000001)
#define STATUS_INVALID_PARAMETER        NDISEMU_NTSTATUS(0xC000000D)
#define STATUS_INSUFFICIENT_RESOURCES   NDISEMU_NTSTATUS(0xC000009A)

#endif /* NDISEMU_WDM_H */
