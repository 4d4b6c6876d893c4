/*
 * layout_facts.h - reference points from ndis.sys's symbol files and the WDK
 * headers, asserted at compile time in every layout profile that they
 * concern.  A change to ndisemu/include/cdefs/ that moves any of them does
 * not build.
 */
#ifndef NDISEMU_LAYOUT_FACTS_H
#define NDISEMU_LAYOUT_FACTS_H

#define NDISEMU_FACT(expr) _Static_assert(expr, #expr)

#if defined(NDISEMU_ABI_X64) || defined(NDISEMU_ABI_ARM64)
NDISEMU_FACT(offsetof(NET_BUFFER_LIST, NdisReserved) == 0x30);
NDISEMU_FACT(offsetof(NET_BUFFER_LIST, ChildRefCount) == 0x84);
NDISEMU_FACT(offsetof(NET_BUFFER_LIST, Status) == 0x8c);
NDISEMU_FACT(offsetof(NET_BUFFER_LIST, NetBufferListInfo) == 0x90);
NDISEMU_FACT(sizeof(NET_BUFFER) == 0xb0);
NDISEMU_FACT(sizeof(MDL) == 0x30);
NDISEMU_FACT(sizeof(SLIST_HEADER) == 16 && _Alignof(SLIST_HEADER) == 16);
NDISEMU_FACT(offsetof(NET_BUFFER_LIST_CONTEXT, ContextData) == 16);
/* The legacy names as ndis.sys's symbols give them. */
NDISEMU_FACT(offsetof(NET_BUFFER, NetBufferHeader) == 0);
NDISEMU_FACT(sizeof(NET_BUFFER_HEADER) == 0x30);
NDISEMU_FACT(sizeof(NET_BUFFER_DATA) == 0x30);
NDISEMU_FACT(offsetof(NET_BUFFER_DATA, NbDataLength) == 0x18);
NDISEMU_FACT(offsetof(NET_BUFFER_LIST, NetBufferListHeader) == 0);
#if NDIS_WRAPPER
NDISEMU_FACT(sizeof(NET_BUFFER_LIST) == 0x180);
#elif NDISEMU_NDIS_VERSION == 687
NDISEMU_FACT(sizeof(NET_BUFFER_LIST) == 0x170);
#endif
#endif

#if defined(NDISEMU_ABI_X86)
NDISEMU_FACT(offsetof(NET_BUFFER_LIST, NdisReserved) == 0x18);
NDISEMU_FACT(offsetof(NET_BUFFER_LIST, NetBufferListInfo) == 0x50);
NDISEMU_FACT(sizeof(MDL) == 0x1c);
NDISEMU_FACT(sizeof(SLIST_HEADER) == 8);
#if NDIS_SUPPORT_NDIS620
NDISEMU_FACT(sizeof(NET_BUFFER) == 0x60);
#else
NDISEMU_FACT(sizeof(NET_BUFFER) == 0x58);
#endif
#if NDIS_WRAPPER
NDISEMU_FACT(sizeof(NET_BUFFER_LIST) == 0xc8);
#elif NDISEMU_NDIS_VERSION == 687
NDISEMU_FACT(sizeof(NET_BUFFER_LIST) == 0xc0);
#endif
#endif

/* Every ABI: ndis.sys's view has 29 info slots (its symbols' NET_BUFFER_LIST). */
#if NDIS_WRAPPER
NDISEMU_FACT(MaxNetBufferListInfo == 29);
#endif
NDISEMU_FACT(sizeof(NET_BUFFER_LIST_POOL_PARAMETERS) == 20);
NDISEMU_FACT(sizeof(NET_BUFFER_POOL_PARAMETERS) == 16);

#endif
