/* deid-header: de-identify the headers of every DICOM file under a directory (any modality),
 * with keyed pseudonyms, mirrored or flat output, keys.csv and resume. See docs/cli.md. */
#include "cli.h"

int main(int argc, char **argv)
{
    static const cli_tool tool = {
        "deid-header",
        "De-identify the DICOM headers of every file under INPUT (PS3.15 Annex E Basic\n"
        "Profile, keyed pseudonyms and UIDs); pixel data is copied unchanged.",
        NULL, 0, NULL, NULL, NULL};
    cli c;
    int rc = cli_parse(&c, &tool, argc, argv);
    if (rc != 0)
        return rc == CLI_EXIT_OK ? 0 : rc;
    return cli_run(&c);
}
