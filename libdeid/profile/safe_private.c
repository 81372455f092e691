/* Private attributes kept by the Retain Safe Private option: a short committed list, each
 * entry being (group, private creator, element offset within the block). Everything else in an
 * odd group is removed.
 *
 * Provenance: DICOM PS3.15 (2024b) Annex E, Table E.3.10-1 "Safe Private Attributes" lists
 * private attributes that vendors have declared free of identifying information. We keep only
 * the numeric acquisition parameters that quantitative work needs most (diffusion b-values and
 * directions, PET SUV/activity scale factors, MR rescale, CT table speed/pitch) rather than the
 * whole table, so that every entry is a number that cannot carry a name or date. Extend it only
 * with entries of that table, citing them here. */
#include <string.h>
#include "profile/profile_impl.h"

static const struct safe_private {
    uint16_t group;
    uint8_t offset;
    const char *creator;
} list[] = {
    /* GE CT/MR */
    {0x0019, 0x23, "GEMS_ACQU_01"},       /* Table Speed [mm/rotation] */
    {0x0019, 0x24, "GEMS_ACQU_01"},       /* Mid Scan Time [sec] */
    {0x0019, 0x27, "GEMS_ACQU_01"},       /* Rotation Speed (Gantry Period) */
    {0x0025, 0x07, "GEMS_SERS_01"},       /* Images in Series */
    {0x0043, 0x27, "GEMS_PARM_01"},       /* Scan Pitch Ratio */
    {0x0043, 0x39, "GEMS_PARM_01"},       /* Slop_int_6... slop_int_9 (b-value first) */
    {0x0043, 0x6F, "GEMS_PARM_01"},       /* Scanner Table Entry + Gradient Coil Selected */
    {0x0045, 0x01, "GEMS_HELIOS_01"},     /* Number of Macro Rows in Detector */
    {0x0045, 0x02, "GEMS_HELIOS_01"},     /* Macro width at ISO Center */
    /* Philips */
    {0x2001, 0x03, "Philips Imaging DD 001"},    /* Diffusion B-Factor */
    {0x2001, 0x04, "Philips Imaging DD 001"},    /* Diffusion Direction */
    {0x2005, 0x0D, "Philips MR Imaging DD 001"}, /* Scale Intercept */
    {0x2005, 0x0E, "Philips MR Imaging DD 001"}, /* Scale Slope */
    {0x7053, 0x00, "Philips PET Private Group"}, /* SUV Factor */
    {0x7053, 0x09, "Philips PET Private Group"}, /* Activity Concentration Scale Factor */
    /* Siemens MR */
    {0x0019, 0x0C, "SIEMENS MR HEADER"}, /* B_value */
    {0x0019, 0x0D, "SIEMENS MR HEADER"}, /* Diffusion Directionality */
    {0x0019, 0x0E, "SIEMENS MR HEADER"}, /* Diffusion Gradient Direction */
    {0x0019, 0x27, "SIEMENS MR HEADER"}, /* B_matrix */
};

int deid__safe_private(uint16_t group, const char *creator, size_t creator_len, uint8_t offset)
{
    const char *c;
    size_t n = deid__trim(creator, creator_len, &c);
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++)
        if (list[i].group == group && list[i].offset == offset &&
            strlen(list[i].creator) == n && memcmp(list[i].creator, c, n) == 0)
            return 1;
    return 0;
}
