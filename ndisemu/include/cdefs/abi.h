/*
 * abi.h - ABI and NDIS-version switches for the declarations in cdefs/.
 *
 * Exactly one of NDISEMU_ABI_X64, NDISEMU_ABI_X86, NDISEMU_ABI_ARM64 is
 * defined to 1 by whoever includes these headers, together with
 * NDISEMU_NDIS_VERSION (major * 100 + minor: 600, 601, 620, ..., 687) and,
 * for ndis.sys's own view, NDIS_WRAPPER=1.
 *
 * The layouts are always computed by the host C compiler.  x64 and ARM64 are
 * the host's own LP64 layout once every type is fixed-width.  x86 is obtained
 * by declaring every pointer as a 32-bit integer: the host compiler then
 * aligns 64-bit members on 8 bytes exactly as MSVC does for x86.
 *
 * Two extra modes are used by the build module only:
 *   NDISEMU_CDEF   text handed to cffi's cdef(): no attributes, structs whose
 *                  layout the compiler must supply are marked partial.
 *   NDISEMU_PARSE  text parsed to enumerate fields: pointers stay pointers so
 *                  that the field's declared type can be described.
 */
#ifndef NDISEMU_ABI_H
#define NDISEMU_ABI_H

#if !defined(NDISEMU_CDEF) && !defined(NDISEMU_PARSE)
#include <stdint.h>
#include <stddef.h>
#endif

#if defined(NDISEMU_ABI_X64) + defined(NDISEMU_ABI_X86) + defined(NDISEMU_ABI_ARM64) != 1
#error "define exactly one of NDISEMU_ABI_X64, NDISEMU_ABI_X86, NDISEMU_ABI_ARM64"
#endif
#ifndef NDISEMU_NDIS_VERSION
#error "define NDISEMU_NDIS_VERSION"
#endif
#ifndef NDIS_WRAPPER
#define NDIS_WRAPPER 0
#endif
/* The WDK declares NET_BUFFER_DATA / NET_BUFFER_HEADER and the other
 * legacy names only under NDIS_INCLUDE_LEGACY_NAMES.  ndisemu reports them
 * in every profile (ndis.sys itself is built with them: its symbols list
 * NET_BUFFER.NetBufferHeader), so the switch is on unless set to 0. */
#ifndef NDIS_INCLUDE_LEGACY_NAMES
#define NDIS_INCLUDE_LEGACY_NAMES 1
#endif

/* What the WDK derives from _AMD64_/_ARM64_/_X86_ and _WIN64. */
#if defined(NDISEMU_ABI_X86)
#define NDISEMU_WIN64 0
#define NDISEMU_64BIT_ENUMS 0      /* nblinfo.h: !defined(_AMD64_) && !defined(_ARM64_) */
#define MEMORY_ALLOCATION_ALIGNMENT 8
#else
#define NDISEMU_WIN64 1
#define NDISEMU_64BIT_ENUMS 1
#define MEMORY_ALLOCATION_ALIGNMENT 16
#endif

/* ndis/version.h: NDIS_SUPPORT_NDISxyz for every version up to the target. */
#define NDIS_SUPPORT_NDIS6   (NDISEMU_NDIS_VERSION >= 600)
#define NDIS_SUPPORT_NDIS61  (NDISEMU_NDIS_VERSION >= 601)
#define NDIS_SUPPORT_NDIS620 (NDISEMU_NDIS_VERSION >= 620)
#define NDIS_SUPPORT_NDIS630 (NDISEMU_NDIS_VERSION >= 630)
#define NDIS_SUPPORT_NDIS640 (NDISEMU_NDIS_VERSION >= 640)
#define NDIS_SUPPORT_NDIS650 (NDISEMU_NDIS_VERSION >= 650)
#define NDIS_SUPPORT_NDIS660 (NDISEMU_NDIS_VERSION >= 660)
#define NDIS_SUPPORT_NDIS670 (NDISEMU_NDIS_VERSION >= 670)
#define NDIS_SUPPORT_NDIS680 (NDISEMU_NDIS_VERSION >= 680)
#define NDIS_SUPPORT_NDIS681 (NDISEMU_NDIS_VERSION >= 681)
#define NDIS_SUPPORT_NDIS682 (NDISEMU_NDIS_VERSION >= 682)
#define NDIS_SUPPORT_NDIS683 (NDISEMU_NDIS_VERSION >= 683)
#define NDIS_SUPPORT_NDIS684 (NDISEMU_NDIS_VERSION >= 684)
#define NDIS_SUPPORT_NDIS687 (NDISEMU_NDIS_VERSION >= 687)

/* DECLSPEC_ALIGN and the cffi partial-struct marker. */
#if defined(NDISEMU_CDEF) || defined(NDISEMU_PARSE)
#define DECLSPEC_ALIGN(x)
#else
#define DECLSPEC_ALIGN(x) __attribute__((aligned(x)))
#endif
#if defined(NDISEMU_CDEF)
#define NDISEMU_LAYOUT_FROM_COMPILER ...;
#define NDISEMU_ENUM_LEN(x) ...
#else
#define NDISEMU_LAYOUT_FROM_COMPILER
#define NDISEMU_ENUM_LEN(x) x
#endif

/* Fixed-width Windows base types. */
typedef uint8_t  UCHAR;
typedef uint8_t  BOOLEAN;
typedef uint16_t USHORT;
typedef uint16_t WORD;
typedef int16_t  CSHORT;
typedef uint32_t ULONG;
typedef int32_t  LONG;
typedef uint32_t UINT32;
typedef uint64_t ULONGLONG;
typedef int64_t  LONGLONG;

/* Pointer-sized types.  NDISEMU_PTR(T) is a pointer to T, or its 32-bit
 * image on x86 when the layout itself is being compiled by the (64-bit)
 * host compiler.  A compiler that targets x86 itself (MSVC, clang's
 * i686-pc-windows-msvc: what the tests check these declarations with) keeps
 * real pointers. */
#if defined(NDISEMU_ABI_X86) && !defined(NDISEMU_PARSE) \
    && !defined(_M_IX86) && !defined(__i386__)
typedef uint32_t NDISEMU_PTR32;
#define NDISEMU_PTR(T) NDISEMU_PTR32
typedef NDISEMU_PTR32 PVOID;
typedef uint32_t ULONG_PTR;
typedef uint32_t SIZE_T;
#else
#define NDISEMU_PTR(T) T *
typedef void *PVOID;
#if defined(NDISEMU_ABI_X86)
typedef uint32_t ULONG_PTR;
typedef uint32_t SIZE_T;
#else
typedef uint64_t ULONG_PTR;
typedef uint64_t SIZE_T;
#endif
#endif

typedef PVOID NDIS_HANDLE;
typedef LONG NDIS_STATUS;
typedef LONG NTSTATUS;
typedef ULONG_PTR PFN_NUMBER;

/* Status constants.  Driver code (NDISEMU_DRIVER, set by ndisemu's <ndis.h>)
 * gets them as the WDK types them, ((NTSTATUS)0xC000009AL), so that
 * NT_SUCCESS and comparisons with a LONG behave as on Windows; the layout
 * reports and Python see the plain unsigned values WinDbg prints. */
#if defined(NDISEMU_DRIVER)
#define NDISEMU_NTSTATUS(v) ((NTSTATUS)(v##L))
#define NDISEMU_NDIS_STATUS(v) ((NDIS_STATUS)(v##L))
#else
#define NDISEMU_NTSTATUS(v) v
#define NDISEMU_NDIS_STATUS(v) v
#endif

#endif /* NDISEMU_ABI_H */
