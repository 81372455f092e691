/* Keys, key files, keyed pseudonyms (known answers pinning docs/design.md), date arithmetic,
 * the option list and profile creation errors. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "deid/deid.h"
#include "profile/profile_impl.h"
#include "check.h"

static char tmpdir[] = "/tmp/deid_test_keysXXXXXX";

static const char *tmp_path(const char *name)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static deid_key *test_key(unsigned char first)
{
    unsigned char bytes[DEID_KEY_BYTES];
    for (int i = 0; i < DEID_KEY_BYTES; i++)
        bytes[i] = (unsigned char)(first + i);
    deid_key *k = NULL;
    CHECK_OK(deid_key_from_bytes(bytes, sizeof bytes, &k));
    return k;
}

static deid_profile *profile_with(const deid_key *key, unsigned flags)
{
    deid_profile_options o = DEID_PROFILE_OPTIONS_INIT;
    o.flags = flags;
    deid_profile *p = NULL;
    CHECK_OK(deid_profile_new(&o, key, &p));
    return p;
}

/* Values computed independently with Python's hashlib.blake2b(key=bytes(range(32)),
 * digest_size=32) over label + NUL + value. */
static void test_known_answers(void)
{
    deid_key *key = test_key(0);
    deid_profile *p = profile_with(key, 0);
    char uid[65], id[11], inst[9];
    int days = 0;
    CHECK_OK(deid_profile_uid(p, "1.2.3", uid));
    CHECK(strcmp(uid, "2.25.338611059727646468728996214204117404707") == 0);
    CHECK_OK(deid_profile_uid(p, "1.2.3\0", uid)); /* padding ignored */
    CHECK(strcmp(uid, "2.25.338611059727646468728996214204117404707") == 0);
    CHECK_OK(deid_profile_patient_pseudonym(p, "PAT123 ", id));
    CHECK(strcmp(id, "4646113007") == 0);
    CHECK(deid__profile_instance_hash(p, "1.2.3", inst) == 0);
    CHECK(strcmp(inst, "85480142") == 0);
    CHECK_OK(deid_profile_date_shift(p, "PAT123", &days));
    CHECK(days == 30);
    deid_profile_free(p);
    deid_key_free(key);
}

static void test_uid_shape(void)
{
    deid_key *key = test_key(7);
    deid_profile *p = profile_with(key, 0);
    char uid[65], prev[65] = "";
    for (int i = 0; i < 2000; i++) {
        char in[32];
        snprintf(in, sizeof in, "1.2.826.0.1.%d", i);
        CHECK_OK(deid_profile_uid(p, in, uid));
        size_t n = strlen(uid);
        CHECK(n > 5 && n <= 44);
        CHECK(strncmp(uid, "2.25.", 5) == 0);
        CHECK(uid[5] != '0' || n == 6);
        CHECK(strspn(uid + 5, "0123456789") == n - 5);
        CHECK(strcmp(uid, prev) != 0);
        memcpy(prev, uid, sizeof prev);
    }
    int seen_neg = 0, seen_pos = 0;
    for (int i = 0; i < 500; i++) {
        char id[16];
        int d;
        snprintf(id, sizeof id, "P%d", i);
        CHECK_OK(deid_profile_date_shift(p, id, &d));
        CHECK(d != 0 && d >= -30 && d <= 30);
        seen_neg |= d < 0;
        seen_pos |= d > 0;
    }
    CHECK(seen_neg && seen_pos);
    deid_profile_free(p);
    deid_key_free(key);
}

static void test_key_files(void)
{
    deid_key *key = NULL, *again = NULL;
    int created = -1;
    struct stat sb;
    const char *path = tmp_path("new.key");
    CHECK_OK(deid_key_load_file(path, 1, &created, &key));
    CHECK(created == 1);
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    CHECK(sb.st_size == 65);
    CHECK_OK(deid_key_load_file(path, 1, &created, &again));
    CHECK(created == 0);
    if (key && again)
        CHECK(memcmp(key->bytes, again->bytes, DEID_KEY_BYTES) == 0);
    deid_key_free(again);
    again = NULL;

    /* Saving never overwrites. */
    CHECK(deid_key_save_file(key, path) == DEID_ERR_IO);
    CHECK(deid_key_save_file(key, tmp_path("saved.key")) == DEID_OK);
    CHECK(stat(tmp_path("saved.key"), &sb) == 0 && (sb.st_mode & 0777) == 0600);

    /* Readable by others: refused with a hint. */
    chmod(path, 0644);
    CHECK(deid_key_load_file(path, 0, NULL, &again) == DEID_ERR_ARGUMENT);
    CHECK(strstr(deid_last_error(), "chmod 600") != NULL);
    CHECK(again == NULL);
    chmod(path, 0640);
    CHECK(deid_key_load_file(path, 1, NULL, &again) == DEID_ERR_ARGUMENT);

    /* Malformed contents. */
    write_text(tmp_path("short.key"), "0123abcd\n", 0600);
    CHECK(deid_key_load_file(tmp_path("short.key"), 0, NULL, &again) == DEID_ERR_ARGUMENT);
    write_text(tmp_path("junk.key"),
               "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f extra\n", 0600);
    CHECK(deid_key_load_file(tmp_path("junk.key"), 0, NULL, &again) == DEID_ERR_ARGUMENT);
    write_text(tmp_path("good.key"),
               "000102030405060708090A0B0C0D0E0F101112131415161718191a1b1c1d1e1f\n", 0600);
    CHECK_OK(deid_key_load_file(tmp_path("good.key"), 0, NULL, &again));
    if (again)
        for (int i = 0; i < DEID_KEY_BYTES; i++)
            CHECK(again->bytes[i] == i);
    deid_key_free(again);
    again = NULL;
    CHECK(deid_key_load_file(tmp_path("missing.key"), 0, NULL, &again) == DEID_ERR_IO);
    CHECK(deid_key_from_bytes("short", 5, &again) == DEID_ERR_ARGUMENT);
    CHECK_OK(deid_key_generate(&again));
    if (key && again)
        CHECK(memcmp(key->bytes, again->bytes, DEID_KEY_BYTES) != 0);
    deid_key_free(again);
    deid_key_free(key);
    deid_key_free(NULL);
    CHECK(deid_key_bytes() == 32);
}

static void test_dates(void)
{
    char out[128];
    struct {
        const char *in;
        int days;
        const char *want; /* NULL: malformed */
        int dt;
    } cases[] = {
        {"20200228", 1, "20200229", 0},
        {"20200229", 1, "20200301", 0},
        {"20190228", 1, "20190301", 0},
        {"20201231", 1, "20210101", 0},
        {"20200301", -1, "20200229", 0},
        {"21000228", 1, "21000301", 0},
        {"20000228", 1, "20000229", 0},
        {"20200115", -30, "20191216", 0},
        {"20200101\\20200102 ", 10, "20200111\\20200112", 0},
        {"20200101-20200201", 1, "20200102-20200202", 0},
        {"-20200201", 1, "-20200202", 0},
        {"20200101-", 1, "20200102-", 0},
        {"20200230", 1, NULL, 0},
        {"2020-01-01", 1, NULL, 0},
        {"2020.01.01", 1, NULL, 0},
        {"202001", 1, NULL, 0},
        {"-", 1, NULL, 0},
        {"00000101", 1, NULL, 0},
        {"99991231", 1, NULL, 0},
        {"20200315101500.123456+0100", 1, "20200316101500.123456+0100", 1},
        {"20200315101500-0500", -15, "20200229101500-0500", 1},
        {"20200315", 1, "20200316", 1},
        {"202003", 40, "202004", 1},
        {"2020", 400, "2021", 1},
        {"20200315-20200316", 1, "20200316-20200317", 1},
        {"20200315T1015", 1, NULL, 1},
        {"2020031510150", 1, NULL, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].in);
        size_t r = cases[i].dt ? deid__shift_dt(cases[i].in, n, cases[i].days, out)
                               : deid__shift_da(cases[i].in, n, cases[i].days, out);
        if (!cases[i].want) {
            if (r != (size_t)-1)
                fprintf(stderr, "case %zu: %s should be malformed\n", i, cases[i].in);
            CHECK(r == (size_t)-1);
            continue;
        }
        CHECK(r != (size_t)-1 && r <= n);
        if (r != (size_t)-1) {
            out[r] = '\0';
            if (strcmp(out, cases[i].want) != 0)
                fprintf(stderr, "case %zu: %s -> %s, want %s\n", i, cases[i].in, out,
                        cases[i].want);
            CHECK(strcmp(out, cases[i].want) == 0);
        }
    }
    char y[9];
    CHECK(deid__birth_year("19750315 ", 9, y) == 0 && strcmp(y, "19750101") == 0);
    CHECK(deid__birth_year("1975", 4, y) != 0);
}

static void test_options(void)
{
    static const char *names[] = {
        "retain-safe-private", "retain-uids", "retain-device-identity",
        "retain-institution-identity", "retain-patient-characteristics",
        "retain-longitudinal-full-dates", "retain-longitudinal-modified-dates",
        "clean-descriptors", "clean-structured-content", "clean-graphics", "keep-patient-id"};
    CHECK(deid_option_count() == sizeof names / sizeof names[0]);
    unsigned all = 0;
    for (size_t i = 0; i < deid_option_count(); i++) {
        unsigned flag = 0;
        CHECK(strcmp(deid_option_name(i), names[i]) == 0);
        CHECK(deid_option_description(i) && *deid_option_description(i));
        CHECK_OK(deid_option_parse(names[i], &flag));
        CHECK(flag == deid_option_flag(i) && flag && !(all & flag));
        all |= flag;
    }
    CHECK(deid_option_name(99) == NULL && deid_option_flag(99) == 0);
    unsigned flag = 0;
    CHECK(deid_option_parse("retain-everything", &flag) == DEID_ERR_ARGUMENT);

    deid_profile_options o;
    CHECK(deid_profile_options_init(&o, 99) == DEID_ERR_ARGUMENT);
    CHECK_OK(deid_profile_options_init(&o, DEID_PROFILE_OPTIONS_VERSION));
    CHECK(o.flags == 0 && o.max_date_shift_days == 30 && o.recipe_path == NULL);

    deid_profile *p = NULL;
    CHECK(deid_profile_new(&o, NULL, &p) == DEID_ERR_ARGUMENT);
    CHECK(strstr(deid_last_error(), "no key") != NULL);
    CHECK(p == NULL);
    deid_key *key = test_key(3);
    o.version = 2;
    CHECK(deid_profile_new(&o, key, &p) == DEID_ERR_ARGUMENT);
    o.version = DEID_PROFILE_OPTIONS_VERSION;
    o.flags = 1u << 20;
    CHECK(deid_profile_new(&o, key, &p) == DEID_ERR_ARGUMENT);
    o.flags = 0;
    o.patient_name_prefix = "BAD\\PREFIX";
    CHECK(deid_profile_new(&o, key, &p) == DEID_ERR_ARGUMENT);
    o.patient_name_prefix = "STUDY1^";
    CHECK_OK(deid_profile_new(&o, key, &p));
    CHECK(p != NULL);
    deid_profile_free(p);
    p = NULL;
    CHECK_OK(deid_profile_new(NULL, key, &p)); /* NULL options: defaults */
    deid_profile_free(p);
    deid_profile_free(NULL);
    deid_key_free(key);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_known_answers();
    test_uid_shape();
    test_key_files();
    test_dates();
    test_options();
    const char *files[] = {"new.key", "saved.key", "short.key", "junk.key", "good.key"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(tmp_path(files[i]));
    rmdir(tmpdir);
    return check_done("test_profile_keys");
}
