/*
 * core.h - the native core's interface, read both by the C sources and, with
 * its preprocessor lines removed, by cffi's cdef().  The runtime view is
 * x64 as ndis.sys lays it out (NDIS_WRAPPER: 29 info slots); a Kernel's
 * NDIS version only bounds what its driver may see.
 */
#ifndef NDISEMU_CORE_H
#define NDISEMU_CORE_H

#define NDISEMU_ABI_X64 1
#define NDISEMU_NDIS_VERSION 687
#define NDIS_WRAPPER 1
#include "ndis.h"
#include "layout_table.h"

#endif
