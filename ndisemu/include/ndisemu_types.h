/*
 * ndisemu_types.h - the Windows types driver code and ndisemu's calls use
 * beyond the fixed-width ones of cdefs/abi.h: integer and P-prefixed pointer
 * typedefs, KIRQL and spin locks, the MDL handler types, and the results the
 * table of ndisemu_api.h returns.  Plain declarations only: ndisemu.driver
 * hands this file to cffi too, so a driver's cdef may use every name here.
 */
#ifndef NDISEMU_TYPES_H
#define NDISEMU_TYPES_H

#include "cdefs/ndis.h"

/* ---- Windows types beyond the fixed-width ones of cdefs/abi.h ----------- */

typedef char CHAR;
typedef int16_t SHORT;
typedef int INT;
typedef unsigned int UINT;
typedef uint8_t UINT8;
typedef uint16_t UINT16;
typedef uint64_t UINT64;
typedef int8_t INT8;
typedef int16_t INT16;
typedef int32_t INT32;
typedef int64_t INT64;
typedef int64_t LONG64;
typedef uint64_t ULONG64;
typedef uint64_t DWORD64;
typedef uint32_t DWORD;
typedef uint8_t BYTE;
typedef int BOOL;                            /* minwindef.h: an int, not BOOLEAN */
typedef BOOL *PBOOL;
typedef int64_t LONG_PTR;
typedef int64_t SSIZE_T;
typedef const char *PCSTR;
typedef char *PSTR;
typedef void *HANDLE;
typedef CHAR *PCHAR;
typedef UCHAR *PUCHAR;
typedef USHORT *PUSHORT;
typedef SHORT *PSHORT;
typedef ULONG *PULONG;
typedef LONG *PLONG;
typedef UINT *PUINT;
typedef INT *PINT;
typedef ULONG64 *PULONG64;
typedef ULONGLONG *PULONGLONG;
typedef LONGLONG *PLONGLONG;
typedef UINT8 *PUINT8;
typedef UINT16 *PUINT16;
typedef UINT32 *PUINT32;
typedef UINT64 *PUINT64;
typedef BOOLEAN *PBOOLEAN;
typedef SIZE_T *PSIZE_T;
typedef ULONG_PTR *PULONG_PTR;
typedef PVOID *PPVOID;
typedef NDIS_HANDLE *PNDIS_HANDLE;
typedef ULONG NDIS_PORT_NUMBER, *PNDIS_PORT_NUMBER;    /* the handlers' PortNumber */
typedef NDIS_STATUS *PNDIS_STATUS;
typedef NTSTATUS *PNTSTATUS;
typedef PFN_NUMBER *PPFN_NUMBER;
typedef PHYSICAL_ADDRESS *PPHYSICAL_ADDRESS;
typedef LARGE_INTEGER *PLARGE_INTEGER;
typedef MDL *PMDL;
typedef MDL *PMDLX;
typedef NET_BUFFER *PNET_BUFFER;
typedef NET_BUFFER_LIST *PNET_BUFFER_LIST;
typedef NET_BUFFER_LIST_CONTEXT *PNET_BUFFER_LIST_CONTEXT;
typedef NET_BUFFER_LIST_POOL_PARAMETERS *PNET_BUFFER_LIST_POOL_PARAMETERS;
typedef NET_BUFFER_POOL_PARAMETERS *PNET_BUFFER_POOL_PARAMETERS;
typedef NDIS_OBJECT_HEADER *PNDIS_OBJECT_HEADER;
typedef NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO *PNDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO;
typedef NDIS_NET_BUFFER_LIST_8021Q_INFO *PNDIS_NET_BUFFER_LIST_8021Q_INFO;
typedef NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO
    *PNDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO;
typedef SLIST_HEADER *PSLIST_HEADER;

typedef UCHAR KIRQL;
typedef KIRQL *PKIRQL;
typedef ULONG_PTR KSPIN_LOCK;
typedef KSPIN_LOCK *PKSPIN_LOCK;
/* NDIS_SPIN_LOCK as ndis.h declares it: the lock and the IRQL to go back to. */
typedef struct _NDIS_SPIN_LOCK {
    KSPIN_LOCK SpinLock;
    KIRQL OldIrql;
} NDIS_SPIN_LOCK, *PNDIS_SPIN_LOCK;
/* In-stack queued spin locks (wdm.h): the handle keeps the lock and the
 * IRQL to go back to. */
typedef struct _KSPIN_LOCK_QUEUE {
    struct _KSPIN_LOCK_QUEUE *volatile Next;
    PKSPIN_LOCK volatile Lock;
} KSPIN_LOCK_QUEUE, *PKSPIN_LOCK_QUEUE;
typedef struct _KLOCK_QUEUE_HANDLE {
    KSPIN_LOCK_QUEUE LockQueue;
    KIRQL OldIrql;
} KLOCK_QUEUE_HANDLE, *PKLOCK_QUEUE_HANDLE;
/* The doubly linked list every driver queues packets on (ntdef.h). */
typedef struct _LIST_ENTRY {
    struct _LIST_ENTRY *Flink;
    struct _LIST_ENTRY *Blink;
} LIST_ENTRY, *PLIST_ENTRY;
typedef struct _IRP IRP, *PIRP;              /* not emulated: pass NULL */
typedef int POOL_TYPE;                       /* any pool type is nonpaged here */
typedef int EX_POOL_PRIORITY;
typedef ULONG MM_PAGE_PRIORITY_VALUE;

#define HIGH_LEVEL 15

/* What the calls with out parameters return through the table: the core
 * never writes through a pointer the driver passed unless it lies in the
 * arena; <ndis.h>'s inline functions of the WDK's signatures store these. */
typedef struct _NDISEMU_NBL_RESULT {
    NTSTATUS Status;
    NET_BUFFER_LIST *NetBufferList;
} NDISEMU_NBL_RESULT;
typedef struct _NDISEMU_COPY_RESULT {
    NDIS_STATUS Status;
    ULONG BytesCopied;
} NDISEMU_COPY_RESULT;
typedef struct _NDISEMU_DATA_RESULT {
    PVOID Data;                      /* the bytes, or Storage when they were copied */
    const void *CopyFrom;            /* non-NULL: copy BytesNeeded bytes from here to
                                        Storage (outside the arena) */
} NDISEMU_DATA_RESULT;

/* The retreat/advance MDL handlers (nblapi.h). */
typedef MDL *NET_BUFFER_ALLOCATE_MDL(ULONG *BufferSize);
typedef NET_BUFFER_ALLOCATE_MDL *NET_BUFFER_ALLOCATE_MDL_HANDLER;
typedef void NET_BUFFER_FREE_MDL(MDL *Mdl);
typedef NET_BUFFER_FREE_MDL *NET_BUFFER_FREE_MDL_HANDLER;

#endif /* NDISEMU_TYPES_H */
