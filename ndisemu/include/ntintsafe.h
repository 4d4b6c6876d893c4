/*
 * ntintsafe.h - for driver sources that include it: the checked arithmetic
 * ndisemu emulates (RtlULongAdd, RtlSizeTMult, ...) is in <ndis.h>.
 */
#include "ndis.h"
