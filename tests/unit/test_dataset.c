/* Dataset layer: every shared file reads from path and memory into the same tree, writes and
 * reads back unchanged, agrees with GDCM's own parse, exports JSON; bad input fails cleanly. */
#include <dirent.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"
#include "core/core.h"
#include "deid/deid.h"
#include "dicom/dataset_int.h"
#include "shim/gdcm_shim.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static char *slurp(const char *path, size_t *size)
{
    char *buf = NULL;
    if (deid__read_file(path, (uint64_t)1 << 32, &buf, size) != DEID_OK)
        return NULL;
    return buf;
}

static int is_group_length(uint32_t tag) { return (tag & 0xFFFFu) == 0; }

static int item_equal(const deid_item *a, const deid_item *b, int skip_gl, char *where, size_t cap);

/* Compare two elements; describe the first difference in `where`. */
static int elem_equal(const deid_elem *a, const deid_elem *b, int skip_gl, char *where, size_t cap)
{
    if (a->tag != b->tag || a->vr != b->vr) {
        snprintf(where, cap, "(%08X vr %c%c) vs (%08X vr %c%c)", (unsigned)a->tag, a->vr >> 8,
                 a->vr & 0xFF, (unsigned)b->tag, b->vr >> 8, b->vr & 0xFF);
        return 0;
    }
    if (a->len != b->len || (a->len && memcmp(a->value, b->value, a->len)) ||
        a->nitems != b->nitems || a->nfrags != b->nfrags || a->encapsulated != b->encapsulated) {
        snprintf(where, cap, "%08X: value/len %u vs %u, items %zu vs %zu, frags %zu vs %zu",
                 (unsigned)a->tag, (unsigned)a->len, (unsigned)b->len, a->nitems, b->nitems,
                 a->nfrags, b->nfrags);
        return 0;
    }
    for (size_t i = 0; i < a->nfrags; i++)
        if (a->frags[i].len != b->frags[i].len ||
            (a->frags[i].len && memcmp(a->frags[i].data, b->frags[i].data, a->frags[i].len))) {
            snprintf(where, cap, "%08X: fragment %zu differs", (unsigned)a->tag, i);
            return 0;
        }
    for (size_t i = 0; i < a->nitems; i++)
        if (!item_equal(&a->items[i], &b->items[i], skip_gl, where, cap))
            return 0;
    return 1;
}

static int item_equal(const deid_item *a, const deid_item *b, int skip_gl, char *where, size_t cap)
{
    size_t i = 0, j = 0;
    for (;;) {
        while (skip_gl && i < a->n && is_group_length(a->elems[i].tag))
            i++;
        while (skip_gl && j < b->n && is_group_length(b->elems[j].tag))
            j++;
        if (i == a->n || j == b->n)
            break;
        if (!elem_equal(&a->elems[i], &b->elems[j], skip_gl, where, cap))
            return 0;
        i++;
        j++;
    }
    if (i != a->n || j != b->n) {
        snprintf(where, cap, "element count differs (%zu/%zu vs %zu/%zu)", i, a->n, j, b->n);
        return 0;
    }
    return 1;
}

static size_t count_elements(const deid_item *item)
{
    size_t n = item->n;
    for (size_t i = 0; i < item->n; i++)
        for (size_t k = 0; k < item->elems[i].nitems; k++)
            n += count_elements(&item->elems[i].items[k]);
    return n;
}

/* Files under the shared data folders (recursively). */
typedef struct file_list {
    char **paths;
    size_t n, cap;
} file_list;

static void add_files(file_list *fl, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        if (ent->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            add_files(fl, path);
        } else if (strstr(ent->d_name, ".dcm")) {
            if (fl->n == fl->cap) {
                fl->cap = fl->cap ? fl->cap * 2 : 64;
                fl->paths = realloc(fl->paths, fl->cap * sizeof *fl->paths);
            }
            fl->paths[fl->n++] = strdup(path);
        }
    }
    closedir(d);
}

static void free_files(file_list *fl)
{
    for (size_t i = 0; i < fl->n; i++)
        free(fl->paths[i]);
    free(fl->paths);
}

/* A Part 10 stream: preamble, minimal meta with `ts`, then `body`. */
static uint8_t *part10(const char *ts, const uint8_t *body, size_t n, size_t *out)
{
    size_t tl = strlen(ts) + (strlen(ts) & 1);
    size_t meta = 12 + 8 + tl;
    size_t total = 132 + meta + n;
    uint8_t *b = calloc(1, total);
    uint8_t *p = b + 128;
    memcpy(p, "DICM", 4);
    p += 4;
    const uint8_t gl[8] = {2, 0, 0, 0, 'U', 'L', 4, 0};
    memcpy(p, gl, 8);
    uint32_t glen = (uint32_t)(8 + tl);
    p[8] = (uint8_t)glen;
    p[9] = (uint8_t)(glen >> 8);
    p += 12;
    const uint8_t th[6] = {2, 0, 0x10, 0, 'U', 'I'};
    memcpy(p, th, 6);
    p[6] = (uint8_t)tl;
    p[7] = 0;
    memcpy(p + 8, ts, strlen(ts));
    p += 8 + tl;
    memcpy(p, body, n);
    *out = total;
    return b;
}

static int walk_count(void *user, const deid_element_info *info)
{
    size_t *n = user;
    (*n)++;
    CHECK(info->path && info->path[0] == '(');
    CHECK(strlen(info->vr) == 2);
    return 0;
}

/* ---- per-file round trip -------------------------------------------------------------------- */

static void check_file(const char *path)
{
    char where[256];
    deid_dataset *a = NULL, *b = NULL, *c = NULL;
    CHECK_OK(deid_dataset_read_file(path, NULL, &a));
    if (!a) {
        fprintf(stderr, "  (file %s)\n", path);
        return;
    }
    size_t size;
    char *bytes = slurp(path, &size);
    CHECK(bytes != NULL);
    CHECK_OK(deid_dataset_read_memory(bytes, size, "mem", NULL, &b));
    if (b) {
        CHECK(item_equal(&a->root, &b->root, 0, where, sizeof where));
        CHECK(item_equal(&a->meta, &b->meta, 0, where, sizeof where));
        CHECK(!strcmp(deid_dataset_transfer_syntax(a), deid_dataset_transfer_syntax(b)));
    }

    /* write to memory and read back: the same tree (group lengths are dropped on write) */
    void *out = NULL;
    size_t outsize = 0;
    CHECK_OK(deid_dataset_write_memory(a, &out, &outsize));
    CHECK_OK(deid_dataset_read_memory(out, outsize, "rewritten", NULL, &c));
    if (c) {
        if (!item_equal(&a->root, &c->root, 1, where, sizeof where)) {
            fprintf(stderr, "%s: round trip differs: %s\n", path, where);
            check_failures++;
        }
        CHECK(!strcmp(deid_dataset_transfer_syntax(a), deid_dataset_transfer_syntax(c)));
        char ts[80], sop[80], ms[80];
        CHECK_OK(deid_dataset_get_string(c, DEID_TAG(0x0002, 0x0010), ts, sizeof ts));
        CHECK(!strcmp(ts, deid_dataset_transfer_syntax(a)));
        if (deid_dataset_get_string(a, DEID_TAG(0x0008, 0x0018), sop, sizeof sop) == DEID_OK) {
            CHECK_OK(deid_dataset_get_string(c, DEID_TAG(0x0002, 0x0003), ms, sizeof ms));
            CHECK(!strcmp(sop, ms));
        }
        /* writing is deterministic */
        void *out2 = NULL;
        size_t out2size = 0;
        CHECK_OK(deid_dataset_write_memory(c, &out2, &out2size));
        CHECK(out2size == outsize && out2 && !memcmp(out, out2, outsize));
        deid_free(out2);
    }

    /* GDCM's parse of the same bytes gives the same tree */
    uint8_t *re = NULL;
    size_t resize = 0;
    CHECK_OK(deid_shim_gdcm_reencode((const uint8_t *)bytes, size, path, &re, &resize));
    if (re) {
        const char *ts = deid_dataset_transfer_syntax(a);
        size_t p10size;
        uint8_t *p10 = part10(strcmp(ts, "1.2.840.10008.1.2") ? "1.2.840.10008.1.2.1" : ts, re,
                              resize, &p10size);
        deid_dataset *g = NULL;
        CHECK_OK(deid_dataset_read_memory(p10, p10size, "gdcm", NULL, &g));
        if (g && !item_equal(&a->root, &g->root, 0, where, sizeof where)) {
            fprintf(stderr, "%s: differs from GDCM's parse: %s\n", path, where);
            check_failures++;
        }
        deid_dataset_free(g);
        free(p10);
        free(re);
    }

    /* JSON export parses and has an entry per top-level element but the group lengths */
    char *json = NULL;
    CHECK_OK(deid_dataset_to_json(a, &json));
    if (json) {
        json_error_t err;
        json_t *j = json_loads(json, 0, &err);
        CHECK(j != NULL);
        size_t expect = 0;
        for (size_t i = 0; i < a->root.n; i++)
            expect++;
        CHECK(j && json_object_size(j) == expect);
        json_decref(j);
        deid_free(json);
    }

    size_t walked = 0;
    CHECK_OK(deid_dataset_walk(a, walk_count, &walked));
    CHECK(walked == count_elements(&a->meta) + count_elements(&a->root));

    deid_free(out);
    free(bytes);
    deid_dataset_free(a);
    deid_dataset_free(b);
    deid_dataset_free(c);
}

static void test_shared_files(void)
{
    static const char *dirs[] = {"ct", "us", "text", "refs"};
    file_list fl = {0};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        const char *d = check_shared(dirs[i]);
        if (d) {
            char dir[4096];
            snprintf(dir, sizeof dir, "%s", d);
            add_files(&fl, dir);
        }
    }
    for (size_t i = 0; i < fl.n; i++)
        check_file(fl.paths[i]);
    printf("round-tripped %zu shared files\n", fl.n);
    free_files(&fl);
}

/* ---- JSON details --------------------------------------------------------------------------- */

static void test_json_model(void)
{
    deid_dataset *ds = deid__dataset_new("json");
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0010, 0x0010), "Doe^John=Ideo"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0008, 0x0008), "ORIGINAL\\PRIMARY"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0020, 0x0013), "42"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0028, 0x0030), "0.5\\0.25"));
    const uint8_t rows[2] = {0x00, 0x02};
    CHECK_OK(deid_dataset_set(ds, DEID_TAG(0x0028, 0x0010), NULL, rows, 2));
    uint8_t big[2000] = {0};
    CHECK_OK(deid_dataset_set(ds, DEID_TAG(0x0009, 0x1001), "OB", big, sizeof big));
    CHECK_OK(deid_dataset_set(ds, DEID_TAG(0x0009, 0x1002), "OB", "\x01\x02\x03", 3));
    const uint8_t at[4] = {0x10, 0x00, 0x20, 0x00};
    CHECK_OK(deid_dataset_set(ds, DEID_TAG(0x0020, 0x5000), "AT", at, 4));
    char *s = NULL;
    CHECK_OK(deid_dataset_to_json(ds, &s));
    json_error_t err;
    json_t *j = s ? json_loads(s, 0, &err) : NULL;
    CHECK(j != NULL);
    if (j) {
        json_t *pn = json_object_get(j, "00100010");
        CHECK(!strcmp(json_string_value(json_object_get(pn, "vr")), "PN"));
        json_t *v = json_array_get(json_object_get(pn, "Value"), 0);
        CHECK(!strcmp(json_string_value(json_object_get(v, "Alphabetic")), "Doe^John"));
        CHECK(!strcmp(json_string_value(json_object_get(v, "Ideographic")), "Ideo"));
        json_t *it = json_object_get(json_object_get(j, "00080008"), "Value");
        CHECK(json_array_size(it) == 2 &&
              !strcmp(json_string_value(json_array_get(it, 1)), "PRIMARY"));
        CHECK(json_integer_value(json_array_get(
                  json_object_get(json_object_get(j, "00200013"), "Value"), 0)) == 42);
        CHECK(json_real_value(json_array_get(
                  json_object_get(json_object_get(j, "00280030"), "Value"), 1)) == 0.25);
        CHECK(json_integer_value(json_array_get(
                  json_object_get(json_object_get(j, "00280010"), "Value"), 0)) == 512);
        CHECK(json_object_get(json_object_get(j, "00091001"), "Value") == NULL);
        CHECK(json_object_get(json_object_get(j, "00091001"), "InlineBinary") == NULL);
        CHECK(!strcmp(
            json_string_value(json_object_get(json_object_get(j, "00091002"), "InlineBinary")),
            "AQIDAA=="));
        CHECK(!strcmp(json_string_value(json_array_get(
                          json_object_get(json_object_get(j, "00205000"), "Value"), 0)),
                      "00100020"));
        json_decref(j);
    }
    deid_free(s);
    deid_dataset_free(ds);
}

/* ---- element access ------------------------------------------------------------------------- */

static void test_access(void)
{
    const char *path = check_shared("ct/pydicom-data_693_UNCR_CQ500_headCT.dcm");
    if (!path)
        return;
    deid_dataset *ds = NULL;
    CHECK_OK(deid_dataset_read_file(path, NULL, &ds));
    if (!ds)
        return;
    char buf[64] = "untouched";
    CHECK(deid_dataset_get_string(ds, DEID_TAG(0x0008, 0x0060), buf, sizeof buf) == DEID_OK);
    CHECK(!strcmp(buf, "CT"));
    strcpy(buf, "untouched");
    CHECK(deid_dataset_get_string(ds, DEID_TAG(0x0008, 0x0018), buf, 4) == DEID_ERR_LIMIT);
    CHECK(!strcmp(buf, "untouched"));
    CHECK(deid_dataset_get_string(ds, DEID_TAG(0x0011, 0x0011), buf, sizeof buf) ==
          DEID_ERR_ARGUMENT);
    CHECK(strstr(deid_last_error(), "(0011,0011)") != NULL);
    CHECK(!strcmp(buf, "untouched"));
    CHECK(deid_dataset_has(ds, DEID_TAG(0x0002, 0x0010)));
    CHECK(deid_dataset_has(ds, DEID_TAG(0x7FE0, 0x0010)));

    const void *v = NULL;
    size_t n = 0;
    CHECK_OK(deid_dataset_get(ds, DEID_TAG(0x0028, 0x0010), &v, &n));
    CHECK(n == 2 && ((const uint8_t *)v)[0] == 0 && ((const uint8_t *)v)[1] == 2);

    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0010, 0x0010), "ANON"));
    CHECK_OK(deid_dataset_get_string(ds, DEID_TAG(0x0010, 0x0010), buf, sizeof buf));
    CHECK(!strcmp(buf, "ANON"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0010, 0x0020), "ODD"));
    CHECK_OK(deid_dataset_get(ds, DEID_TAG(0x0010, 0x0020), &v, &n));
    CHECK(n == 4 && !memcmp(v, "ODD ", 4));
    CHECK(deid_dataset_set_string(ds, DEID_TAG(0x0028, 0x0010), "12") == DEID_ERR_ARGUMENT);
    CHECK(deid_dataset_set(ds, DEID_TAG(0x0011, 0x1234), NULL, "x", 1) == DEID_ERR_ARGUMENT);
    CHECK(deid_dataset_set(ds, DEID_TAG(0x0008, 0x1115), NULL, "x", 1) == DEID_ERR_ARGUMENT);
    CHECK_OK(deid_dataset_set(ds, DEID_TAG(0x0011, 0x0010), NULL, "ACME", 4));
    CHECK_OK(deid_dataset_set(ds, DEID_TAG(0x0011, 0x1001), "LO", "secret", 6));
    CHECK_OK(deid_dataset_remove(ds, DEID_TAG(0x0010, 0x0030)));
    CHECK(!deid_dataset_has(ds, DEID_TAG(0x0010, 0x0030)));
    CHECK_OK(deid_dataset_remove(ds, DEID_TAG(0x0010, 0x0030)));

    /* edits survive a write and read */
    void *out = NULL;
    size_t outsize = 0;
    deid_dataset *again = NULL;
    CHECK_OK(deid_dataset_write_memory(ds, &out, &outsize));
    CHECK_OK(deid_dataset_read_memory(out, outsize, NULL, NULL, &again));
    if (again) {
        CHECK_OK(deid_dataset_get_string(again, DEID_TAG(0x0010, 0x0010), buf, sizeof buf));
        CHECK(!strcmp(buf, "ANON"));
        CHECK_OK(deid_dataset_get_string(again, DEID_TAG(0x0011, 0x1001), buf, sizeof buf));
        CHECK(!strcmp(buf, "secret"));
        CHECK(!deid_dataset_has(again, DEID_TAG(0x0010, 0x0030)));
    }
    deid_dataset_free(again);
    deid_free(out);

    /* setting the Transfer Syntax UID changes how the object is written */
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0002, 0x0010), "1.2.840.10008.1.2"));
    CHECK(!strcmp(deid_dataset_transfer_syntax(ds), "1.2.840.10008.1.2"));
    CHECK_OK(deid_dataset_write_memory(ds, &out, &outsize));
    CHECK_OK(deid_dataset_read_memory(out, outsize, NULL, NULL, &again));
    CHECK(again && !strcmp(deid_dataset_transfer_syntax(again), "1.2.840.10008.1.2"));
    deid_dataset_free(again);
    deid_free(out);
    CHECK(deid_dataset_set(ds, DEID_TAG(0x0002, 0x0010), "UI", "  ", 2) == DEID_ERR_ARGUMENT);
    CHECK(!strcmp(deid_dataset_transfer_syntax(ds), "1.2.840.10008.1.2"));

    /* NULLs */
    CHECK(deid_dataset_get(NULL, 0, &v, &n) == DEID_ERR_ARGUMENT);
    CHECK(deid_dataset_set(ds, DEID_TAG(0x0010, 0x0010), "PN", NULL, 3) == DEID_ERR_ARGUMENT);
    CHECK(deid_dataset_read_file(NULL, NULL, &again) == DEID_ERR_ARGUMENT);
    CHECK(deid_dataset_write_memory(ds, NULL, &n) == DEID_ERR_ARGUMENT);
    CHECK(deid_dataset_walk(ds, NULL, NULL) == DEID_ERR_ARGUMENT);
    deid_read_options o;
    CHECK(deid_read_options_init(&o, 99) == DEID_ERR_ARGUMENT);
    CHECK_OK(deid_read_options_init(&o, DEID_READ_OPTIONS_VERSION));
    CHECK(o.max_depth == deid_default_max_depth() &&
          o.max_file_bytes == deid_default_max_file_bytes());
    o.version = 7;
    CHECK(deid_dataset_read_file(path, &o, &again) == DEID_ERR_ARGUMENT);
    deid_dataset_free(NULL);
    deid_dataset_free(ds);
}

/* ---- walk: paths and private creators ------------------------------------------------------- */

typedef struct walk_probe {
    int saw_nested_path, saw_private_creator, stop_after;
    int seen;
} walk_probe;

static int probe_cb(void *user, const deid_element_info *info)
{
    walk_probe *p = user;
    p->seen++;
    if (info->depth > 0 && strchr(info->path, '[') && strchr(info->path, '/'))
        p->saw_nested_path = 1;
    if (info->private_creator && info->private_creator[0])
        p->saw_private_creator = 1;
    return p->stop_after && p->seen >= p->stop_after;
}

static void test_walk(void)
{
    deid_dataset *ds = check_load_shared("refs/PrivateMDNTags.dcm");
    if (!ds)
        return;
    CHECK(!strcmp(deid_dataset_transfer_syntax(ds), "1.2.840.10008.1.2"));
    CHECK(ds->meta.n == 0);
    walk_probe p = {0, 0, 0, 0};
    CHECK_OK(deid_dataset_walk(ds, probe_cb, &p));
    CHECK(p.saw_nested_path);
    CHECK(p.saw_private_creator);
    walk_probe q = {0, 0, 3, 0};
    CHECK(deid_dataset_walk(ds, probe_cb, &q) == DEID_ERR_CANCELLED);
    CHECK(q.seen == 3);
    /* a file without meta header is written as a proper Part 10 file */
    void *out = NULL;
    size_t n = 0;
    CHECK_OK(deid_dataset_write_memory(ds, &out, &n));
    CHECK(out && n > 132 && !memcmp((char *)out + 128, "DICM", 4));
    deid_free(out);
    deid_dataset_free(ds);
}

/* ---- limits and bad input ------------------------------------------------------------------- */

static void expect_fail(const void *data, size_t n, const char *what)
{
    deid_dataset *ds = (deid_dataset *)(uintptr_t)1;
    deid_clear_error();
    deid_status st = deid_dataset_read_memory(data, n, what, NULL, &ds);
    if (st == DEID_OK || ds != (deid_dataset *)(uintptr_t)1 || !deid_last_error()[0]) {
        fprintf(stderr, "%s: expected a failure with a message, got %d (%s)\n", what, (int)st,
                deid_last_error());
        check_failures++;
        if (st == DEID_OK)
            deid_dataset_free(ds);
    }
}

static void test_bad_input(void)
{
    expect_fail("", 0, "empty");
    uint8_t rnd[100];
    srand(1234);
    for (int k = 0; k < 20; k++) {
        for (size_t i = 0; i < sizeof rnd; i++)
            rnd[i] = (uint8_t)rand();
        expect_fail(rnd, sizeof rnd, "random");
    }
    /* 200 bytes claiming a 4 GB value: rejected before any allocation */
    uint8_t big[200] = {0};
    memcpy(big + 128, "DICM", 4);
    const uint8_t el[] = {8, 0,    0x16, 0,    'U', 'I', 6,   0, '1', '.', '2', '.', '3',
                          0, 0x10, 0,    0x10, 0,   'O', 'B', 0, 0,   0,   0,   0,   0xF0};
    memcpy(big + 132, el, sizeof el);
    expect_fail(big, sizeof big, "huge length");

    const char *path = check_shared("ct/pydicom-data_693_UNCR_CQ500_headCT.dcm");
    if (path) {
        size_t size;
        char *bytes = slurp(path, &size);
        for (int k = 1; k <= 10; k++) {
            size_t cut = size * (size_t)k / 11 + 3; /* +3: never on an element boundary */
            expect_fail(bytes, cut, "truncated");
        }
        /* limits */
        deid_read_options o = DEID_READ_OPTIONS_INIT;
        o.max_elements = 10;
        deid_dataset *ds = NULL;
        CHECK(deid_dataset_read_memory(bytes, size, "x", &o, &ds) == DEID_ERR_LIMIT);
        CHECK(strstr(deid_last_error(), "max_elements") != NULL);
        o.max_elements = 0;
        o.max_file_bytes = 1000;
        CHECK(deid_dataset_read_memory(bytes, size, "x", &o, &ds) == DEID_ERR_LIMIT);
        CHECK(ds == NULL);
        free(bytes);
    }
    path = check_shared("refs/crossref_series/RTH/RT.dcm");
    if (path) {
        deid_read_options o = DEID_READ_OPTIONS_INIT;
        o.max_depth = 1;
        deid_dataset *ds = NULL;
        CHECK(deid_dataset_read_file(path, &o, &ds) == DEID_ERR_LIMIT);
        CHECK(strstr(deid_last_error(), "RT.dcm") != NULL);
        CHECK(ds == NULL);
    }
    CHECK(deid_dataset_read_file("/nonexistent/x.dcm", NULL, &(deid_dataset *){NULL}) ==
          DEID_ERR_IO);
}

/* ---- other encodings (made with dcmtk's dcmconv when it is installed) ------------------------ */

static int have_tool(const char *name)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", name);
    return system(cmd) == 0;
}

static void test_other_syntaxes(void)
{
    const char *src = check_shared("ct/pydicom-data_693_UNCR_CQ500_headCT.dcm");
    if (!src || !have_tool("dcmconv")) {
        fprintf(stderr, "note: dcmconv not found, skipping deflate/big endian\n");
        return;
    }
    char dir[] = "/tmp/deid_dataset_XXXXXX";
    if (!mkdtemp(dir))
        return;
    deid_dataset *ref = NULL;
    CHECK_OK(deid_dataset_read_file(src, NULL, &ref));
    static const struct {
        const char *flag, *ts;
    } syn[] = {{"+td", "1.2.840.10008.1.2.1.99"},
               {"+tb", "1.2.840.10008.1.2.2"},
               {"+ti", "1.2.840.10008.1.2"}};
    for (size_t k = 0; ref && k < sizeof syn / sizeof *syn; k++) {
        char out[512], cmd[1024], where[256];
        snprintf(out, sizeof out, "%s/conv%zu.dcm", dir, k);
        snprintf(cmd, sizeof cmd, "dcmconv %s '%s' '%s' >/dev/null 2>&1", syn[k].flag, src, out);
        if (system(cmd) != 0) {
            fprintf(stderr, "note: dcmconv %s failed, skipping\n", syn[k].flag);
            continue;
        }
        deid_dataset *ds = NULL;
        CHECK_OK(deid_dataset_read_file(out, NULL, &ds));
        if (!ds)
            continue;
        CHECK(!strcmp(deid_dataset_transfer_syntax(ds), syn[k].ts));
        if (!item_equal(&ref->root, &ds->root, 1, where, sizeof where)) {
            fprintf(stderr, "%s: differs from explicit LE: %s\n", syn[k].ts, where);
            check_failures++;
        }
        void *bytes = NULL;
        size_t n = 0;
        deid_dataset *back = NULL;
        CHECK_OK(deid_dataset_write_memory(ds, &bytes, &n));
        CHECK_OK(deid_dataset_read_memory(bytes, n, "back", NULL, &back));
        if (back) {
            CHECK(!strcmp(deid_dataset_transfer_syntax(back), syn[k].ts));
            if (!item_equal(&ref->root, &back->root, 1, where, sizeof where)) {
                fprintf(stderr, "%s: rewrite differs: %s\n", syn[k].ts, where);
                check_failures++;
            }
        }
        /* dcmtk reads what we wrote */
        snprintf(out, sizeof out, "%s/back%zu.dcm", dir, k);
        CHECK_OK(deid_dataset_write_file(ds, out));
        snprintf(cmd, sizeof cmd, "dcmdump -q '%s' >/dev/null 2>&1", out);
        if (have_tool("dcmdump"))
            CHECK(system(cmd) == 0);
        unlink(out);
        snprintf(out, sizeof out, "%s/conv%zu.dcm", dir, k);
        unlink(out);
        deid_dataset_free(back);
        deid_free(bytes);
        deid_dataset_free(ds);
    }
    deid_dataset_free(ref);
    rmdir(dir);
}

/* ---- write_file ----------------------------------------------------------------------------- */

static void test_write_file(void)
{
    const char *src = check_shared("us/pydicom-data_US1_J2KR.dcm");
    if (!src)
        return;
    char dir[] = "/tmp/deid_write_XXXXXX";
    if (!mkdtemp(dir))
        return;
    char out[600];
    snprintf(out, sizeof out, "%s/out.dcm", dir);
    deid_dataset *ds = NULL, *back = NULL;
    CHECK_OK(deid_dataset_read_file(src, NULL, &ds));
    CHECK_OK(deid_dataset_write_file(ds, out));
    struct stat st;
    CHECK(stat(out, &st) == 0 && (st.st_mode & 0777) == 0644);
    CHECK_OK(deid_dataset_read_file(out, NULL, &back));
    char where[256];
    CHECK(back && item_equal(&ds->root, &back->root, 1, where, sizeof where));
    char bad[700];
    snprintf(bad, sizeof bad, "%s/missing/out.dcm", dir);
    CHECK(deid_dataset_write_file(ds, bad) == DEID_ERR_IO);
    CHECK(strstr(deid_last_error(), "missing") != NULL);
    unlink(out);
    rmdir(dir);
    deid_dataset_free(back);
    deid_dataset_free(ds);
}

int main(void)
{
    test_shared_files();
    test_json_model();
    test_access();
    test_walk();
    test_bad_input();
    test_other_syntaxes();
    test_write_file();
    return check_done("test_dataset");
}
