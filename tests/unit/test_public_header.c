/* The public header as users see it: only <deid/deid.h>, no internal header. Besides running as
 * a unit test, tests/packaging compiles this file with -std=c11 -pedantic -Werror and as C++17,
 * so it must stay valid in both languages. */
#include <stdio.h>
#include <string.h>
#include <deid/deid.h>

static int failures;

#define EXPECT(cond)                                                                           \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);               \
            failures++;                                                                        \
        }                                                                                      \
    } while (0)

/* Every INIT macro must be a valid initializer in C and C++ and carry its struct version. */
static void check_init_macros(void)
{
    deid_read_options read = DEID_READ_OPTIONS_INIT;
    deid_profile_options profile = DEID_PROFILE_OPTIONS_INIT;
    deid_batch_options batch = DEID_BATCH_OPTIONS_INIT;
    EXPECT(read.version == DEID_READ_OPTIONS_VERSION);
    EXPECT(profile.version == DEID_PROFILE_OPTIONS_VERSION);
    EXPECT(profile.flags == 0 && profile.recipe_path == NULL);
    EXPECT(batch.version == DEID_BATCH_OPTIONS_VERSION);
    EXPECT(batch.read.version == DEID_READ_OPTIONS_VERSION);
    EXPECT(batch.write_json == 1 && batch.progress == NULL);
    EXPECT(DEID_TAG(0x0010, 0x0010) == 0x00100010u);
    EXPECT(DEID_KEY_BYTES == 32);
}

/* The header's version macros describe the library that is linked. */
static void check_version(void)
{
    EXPECT(strcmp(deid_version(), DEID_VERSION_STRING) == 0);
    EXPECT(deid_version_number() ==
           (unsigned)(DEID_VERSION_MAJOR * 10000 + DEID_VERSION_MINOR * 100 + DEID_VERSION_PATCH));
    EXPECT(deid_features() != NULL && strstr(deid_features(), "gdcm") != NULL);
}

/* Status text is static and never NULL, also for codes the header does not name. */
static void check_status(void)
{
    for (int s = DEID_OK; s <= DEID_ERR_GENERIC; s++) {
        const char *text = deid_strerror((deid_status)s);
        EXPECT(text != NULL && text[0] != '\0');
        EXPECT(strcmp(text, "unknown status") != 0);
    }
    EXPECT(strcmp(deid_strerror((deid_status)15), "unknown status") == 0);
    deid_clear_error();
    EXPECT(deid_last_error() != NULL && deid_last_error()[0] == '\0');
    EXPECT(deid_last_error_code() == DEID_OK);
    deid_free(NULL);
}

int main(void)
{
    check_init_macros();
    check_version();
    check_status();
    if (failures)
        fprintf(stderr, "test_public_header: %d check(s) failed\n", failures);
    else
        printf("test_public_header: all checks passed\n");
    return failures ? 1 : 0;
}
