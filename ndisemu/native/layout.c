/*
 * layout.c - access to the compiled layout profiles (build/ndisemu_gen/).
 */
#include <string.h>
#include "layout_table.h"

extern const ndisemu_layout_profile *const ndisemu_layout_profiles[];
extern const int ndisemu_layout_profile_count;

int ndisemu_layout_profile_total(void)
{
    return ndisemu_layout_profile_count;
}

const ndisemu_layout_profile *ndisemu_layout_profile_at(int index)
{
    if (index < 0 || index >= ndisemu_layout_profile_count)
        return NULL;
    return ndisemu_layout_profiles[index];
}

/*
 * offsetof() cannot name a bit-field, so its position is observed: the
 * bit-field is set to all ones in a zeroed object and the set bits are read
 * back (little-endian bit numbering, as on every ABI ndisemu models).
 * Returns the width found, or -1 for a field that is not a bit-field.
 */
int ndisemu_layout_bitfield(const ndisemu_layout_profile *profile,
                            int field_index, unsigned int *first_bit)
{
    unsigned char object[1024];
    const ndisemu_layout_field *field;
    const ndisemu_layout_struct *owner;
    int width = 0, first = -1;
    size_t bit;

    if (field_index < 0 || (size_t)field_index >= profile->nfields)
        return -1;
    field = &profile->fields[field_index];
    owner = &profile->structs[field->struct_index];
    if (field->bits == 0 || owner->size > sizeof object)
        return -1;
    memset(object, 0, sizeof object);
    profile->set_bitfield(object, field_index);
    for (bit = 0; bit < owner->size * 8; bit++) {
        if (object[bit / 8] & (1u << (bit % 8))) {
            if (first < 0)
                first = (int)bit;
            width++;
        }
    }
    *first_bit = first < 0 ? 0 : (unsigned int)first;
    return width;
}
