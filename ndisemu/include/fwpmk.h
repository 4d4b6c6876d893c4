/*
 * fwpmk.h - for WFP callout sources that include it beside <fwpsk.h>.  The
 * management API (FwpmEngineOpen, FwpmFilterAdd, callout and sub-layer
 * registration) is not emulated and not declared: only the packet calls of
 * <fwpsk.h> are.
 */
#include "fwpsk.h"
