/* poppack.h - back to the packing in force before the last <pshpackN.h>. */
#pragma pack(pop)
