/* pshpack2.h - pack the structures that follow on 2-byte boundaries, until
 * <poppack.h>, as the WDK's header does. */
#pragma pack(push, 2)
