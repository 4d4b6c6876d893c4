/* pshpack4.h - pack the structures that follow on 4-byte boundaries, until
 * <poppack.h>, as the WDK's header does. */
#pragma pack(push, 4)
