/*
 * ntddk.h - for driver sources that include <ntddk.h> before <ndis.h>: ndisemu's
 * <ndis.h> declares the wdm.h types and calls it emulates.
 */
#include "ndis.h"
