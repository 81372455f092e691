/* The public header as users see it: only <deid/deid.h> (and the test helpers), no internal
 * header. Besides running as a unit test, tests/packaging compiles this file with -std=c11
 * -pedantic -Werror and as C++17, so it must stay valid in both languages. */
#include <stdio.h>
#include <string.h>
#include <deid/deid.h>
#include "check.h"

/* Every INIT macro must be a valid initializer in C and C++ and carry its struct version. */
static void check_init_macros(void)
{
    deid_read_options read = DEID_READ_OPTIONS_INIT;
    deid_profile_options profile = DEID_PROFILE_OPTIONS_INIT;
    deid_batch_options batch = DEID_BATCH_OPTIONS_INIT;
    CHECK(read.version == DEID_READ_OPTIONS_VERSION);
    CHECK(profile.version == DEID_PROFILE_OPTIONS_VERSION);
    CHECK(profile.flags == 0 && profile.recipe_path == NULL);
    CHECK(batch.version == DEID_BATCH_OPTIONS_VERSION);
    CHECK(batch.read.version == DEID_READ_OPTIONS_VERSION);
    CHECK(batch.write_json == 1 && batch.progress == NULL);
    CHECK(DEID_TAG(0x0010, 0x0010) == 0x00100010u);
    CHECK(DEID_KEY_BYTES == 32);
}

/* The header's version macros describe the library that is linked. */
static void check_version(void)
{
    CHECK(strcmp(deid_version(), DEID_VERSION_STRING) == 0);
    CHECK(deid_version_number() ==
           (unsigned)(DEID_VERSION_MAJOR * 10000 + DEID_VERSION_MINOR * 100 + DEID_VERSION_PATCH));
    CHECK(deid_features() != NULL && strstr(deid_features(), "gdcm") != NULL);
}

/* Status text is static and never NULL, also for codes the header does not name. */
static void check_status(void)
{
    for (int s = DEID_OK; s <= DEID_ERR_GENERIC; s++) {
        const char *text = deid_strerror((deid_status)s);
        CHECK(text != NULL && text[0] != '\0');
        CHECK(strcmp(text, "unknown status") != 0);
    }
    CHECK(strcmp(deid_strerror((deid_status)15), "unknown status") == 0);
    deid_clear_error();
    CHECK(deid_last_error() != NULL && deid_last_error()[0] == '\0');
    CHECK(deid_last_error_code() == DEID_OK);
    deid_free(NULL);
}

int main(void)
{
    check_init_macros();
    check_version();
    check_status();
    return check_done("test_public_header");
}
