/*
 * layout_table.h - the tables each compiled layout profile exports.
 * Every number in them is an offsetof/sizeof/_Alignof the compiler evaluated.
 */
#ifndef NDISEMU_LAYOUT_TABLE_H
#define NDISEMU_LAYOUT_TABLE_H

#include <stddef.h>

typedef struct {
    const char *name;
    size_t size;
    size_t align;
} ndisemu_layout_struct;

typedef struct {
    int struct_index;
    const char *path;          /* dotted member designator */
    const char *dt_type;       /* WinDbg dt-style type text */
    size_t offset;             /* 0 for bit-fields: see ndisemu_layout_bitfield */
    size_t size;               /* storage unit size for bit-fields */
    int bits;                  /* bit-field width, 0 for ordinary members */
} ndisemu_layout_field;

typedef struct {
    const char *group;         /* enum name, or "" for a #define */
    const char *name;
    long long value;
} ndisemu_layout_constant;

typedef struct {
    const char *abi;
    const char *version;
    const ndisemu_layout_struct *structs;
    size_t nstructs;
    const ndisemu_layout_field *fields;
    size_t nfields;
    void (*set_bitfield)(void *object, int field_index);
    const ndisemu_layout_constant *enums;
    size_t nenums;
    const ndisemu_layout_constant *constants;
    size_t nconstants;
} ndisemu_layout_profile;

int ndisemu_layout_profile_total(void);
const ndisemu_layout_profile *ndisemu_layout_profile_at(int index);
int ndisemu_layout_bitfield(const ndisemu_layout_profile *profile,
                            int field_index, unsigned int *first_bit);

#endif
