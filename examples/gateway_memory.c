/* A DICOM gateway's core in one screen: de-identify an object held in memory (here read from a
 * file, as a C-STORE payload would arrive) and write the result.
 * Usage: gateway_memory IN.dcm OUT.dcm KEYFILE   (KEYFILE is created, mode 0600, if missing) */
#include <stdio.h>
#include <stdlib.h>
#include <deid/deid.h>

static int fail(const char *what, deid_status st)
{
    fprintf(stderr, "%s: %s (%s)\n", what, deid_strerror(st), deid_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s IN.dcm OUT.dcm KEYFILE\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb"); /* 1. the payload, in memory */
    if (!f || fseek(f, 0, SEEK_END) != 0)
        return perror(argv[1]), 1;
    long n = ftell(f);
    char *payload = n > 0 ? malloc((size_t)n) : NULL;
    if (!payload || fseek(f, 0, SEEK_SET) != 0 || fread(payload, 1, (size_t)n, f) != (size_t)n)
        return perror(argv[1]), 1;
    fclose(f);

    deid_key *key = NULL; /* 2. the secret key: same key, same pseudonyms and UIDs */
    deid_status st = deid_key_load_file(argv[3], 1, NULL, &key);
    if (st != DEID_OK)
        return fail("key", st);
    deid_profile_options opts = DEID_PROFILE_OPTIONS_INIT; /* 3. Basic Profile, no options */
    deid_profile *profile = NULL;
    st = deid_profile_new(&opts, key, &profile);
    deid_key_free(key); /* the profile keeps its own copy */
    if (st != DEID_OK)
        return fail("profile", st);

    void *out = NULL; /* 4. de-identify in memory */
    size_t out_size = 0;
    st = deid_deidentify_memory(profile, payload, (size_t)n, &out, &out_size);
    free(payload);
    deid_profile_free(profile);
    if (st != DEID_OK)
        return fail(argv[1], st);

    FILE *o = fopen(argv[2], "wb"); /* 5. forward the result (here: a file) */
    int ok = o && fwrite(out, 1, out_size, o) == out_size;
    ok = (o && fclose(o) == 0) && ok;
    deid_free(out);
    if (!ok)
        return perror(argv[2]), 1;
    printf("%s -> %s (%zu bytes, de-identified)\n", argv[1], argv[2], out_size);
    return 0;
}
