/* Lookups in the generated tables (annex_e_table.c, dict_keywords.c): binary searches. */
#include <string.h>
#include "profile/annex_e.h"

const deid_annex_e_row *deid__annex_e_find(uint32_t tag)
{
    size_t i = deid__tag_lower_bound(deid__annex_e_rows, deid__annex_e_count,
                                     sizeof deid__annex_e_rows[0], tag);
    return i < deid__annex_e_count && deid__annex_e_rows[i].tag == tag ? &deid__annex_e_rows[i]
                                                                        : NULL;
}

int deid__dict_keyword(const char *keyword, uint32_t *tag, uint16_t *vr)
{
    size_t lo = 0, hi = deid__dict_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const deid_dict_entry *e = &deid__dict_entries[deid__dict_by_keyword[mid]];
        int c = strcmp(e->keyword, keyword);
        if (c == 0) {
            *tag = e->tag;
            *vr = e->vr;
            return 0;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

uint16_t deid__dict_tag_vr(uint32_t tag)
{
    size_t i = deid__tag_lower_bound(deid__dict_entries, deid__dict_count,
                                     sizeof deid__dict_entries[0], tag);
    return i < deid__dict_count && deid__dict_entries[i].tag == tag ? deid__dict_entries[i].vr
                                                                    : DEID_VR_UN;
}
