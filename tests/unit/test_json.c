/* DICOM JSON export (deid_dataset_to_json): the exact text written as *_DICOMHeader.json.
 * Files written by earlier versions (jansson's json_dumps with JSON_INDENT(2) |
 * JSON_REAL_PRECISION(15)) must not change, so every case also checks that jansson reading and
 * re-printing the output gives the same bytes. */
#include <dirent.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "deid/deid.h"
#include "dicom/dataset_int.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static deid_elem *put(deid_item *item, uint32_t tag, const char *vr, const void *v, size_t n)
{
    deid_elem *e = deid__item_put(item, tag, DEID_VR(vr[0], vr[1]));
    CHECK(e != NULL);
    if (e && n)
        CHECK(deid__elem_set(e, v, n) == 0);
    return e;
}

static deid_elem *put_str(deid_item *item, uint32_t tag, const char *vr, const char *s)
{
    return put(item, tag, vr, s, strlen(s));
}

/* Does jansson print the same text back? (same layout, escaping and real formatting) */
static int jansson_agrees(const char *s)
{
    json_error_t err;
    json_t *j = json_loads(s, JSON_ALLOW_NUL, &err);
    if (!j)
        return 0;
    char *again = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    int same = again && strcmp(again, s) == 0;
    free(again);
    json_decref(j);
    return same;
}

static char *export(const deid_dataset *ds)
{
    char *s = NULL;
    CHECK_OK(deid_dataset_to_json(ds, &s));
    if (s)
        CHECK(jansson_agrees(s));
    return s;
}

static void expect_json(const deid_dataset *ds, const char *expect, int line)
{
    char *s = export(ds);
    if (s && strcmp(s, expect) != 0) {
        fprintf(stderr, "line %d: JSON differs\n--- got:\n%s\n--- expected:\n%s\n", line, s,
                expect);
        check_failures++;
    }
    deid_free(s);
}

/* One element `tag` of VR `vr` holding `v`: its "Value" array must be `values` (members
 * joined by ",\n      " as printed). */
static void expect_value(uint32_t tag, const char *vr, const void *v, size_t n,
                         const char *values, int line)
{
    deid_dataset *ds = deid__dataset_new("json");
    CHECK(ds != NULL);
    if (!ds)
        return;
    put(&ds->root, tag, vr, v, n);
    char expect[4096];
    snprintf(expect, sizeof expect,
             "{\n  \"%08X\": {\n    \"vr\": \"%s\",\n    \"Value\": [\n      %s\n    ]\n  }\n}",
             (unsigned)tag, vr, values);
    expect_json(ds, expect, line);
    deid_dataset_free(ds);
}

#define EXPECT_TEXT(tag, vr, s, values) expect_value(tag, vr, s, sizeof(s) - 1, values, __LINE__)

/* ---- cases -------------------------------------------------------------------------------- */

/* Keys in tag order, two spaces per level, empty items as {}, elements without a value as
 * just their VR, bulk data left out, short binary values inline in base64. */
static void test_layout(void)
{
    deid_dataset *ds = deid__dataset_new("layout");
    put_str(&ds->root, 0x00100010u, "PN", "Doe^John=Ideo");
    put_str(&ds->root, 0x00100020u, "LO", "");
    deid_elem *sq = put(&ds->root, 0x00081115u, "SQ", NULL, 0);
    CHECK(deid__elem_add_item(sq) != NULL);
    deid_item *it = deid__elem_add_item(sq);
    put_str(it, 0x00081150u, "UI", "1.2.3");
    deid_elem *inner = put(it, 0x00081199u, "SQ", NULL, 0);
    const uint8_t rows[2] = {0x00, 0x02};
    put(deid__elem_add_item(inner), 0x00280010u, "US", rows, 2);
    put(&ds->root, 0x00091002u, "OB", "\x01\x02\x03", 3);
    static const uint8_t big[2000];
    put(&ds->root, 0x00091001u, "OB", big, sizeof big);
    const uint8_t at[8] = {0x10, 0x00, 0x20, 0x00, 0x08, 0x00, 0x18, 0x00};
    put(&ds->root, 0x00205000u, "AT", at, sizeof at);
    put(&ds->root, 0x7FE00010u, "OW", "\0\0\0\0", 4);
    expect_json(ds,
                "{\n"
                "  \"00081115\": {\n"
                "    \"vr\": \"SQ\",\n"
                "    \"Value\": [\n"
                "      {},\n"
                "      {\n"
                "        \"00081150\": {\n"
                "          \"vr\": \"UI\",\n"
                "          \"Value\": [\n"
                "            \"1.2.3\"\n"
                "          ]\n"
                "        },\n"
                "        \"00081199\": {\n"
                "          \"vr\": \"SQ\",\n"
                "          \"Value\": [\n"
                "            {\n"
                "              \"00280010\": {\n"
                "                \"vr\": \"US\",\n"
                "                \"Value\": [\n"
                "                  512\n"
                "                ]\n"
                "              }\n"
                "            }\n"
                "          ]\n"
                "        }\n"
                "      }\n"
                "    ]\n"
                "  },\n"
                "  \"00091001\": {\n"
                "    \"vr\": \"OB\"\n"
                "  },\n"
                "  \"00091002\": {\n"
                "    \"vr\": \"OB\",\n"
                "    \"InlineBinary\": \"AQIDAA==\"\n"
                "  },\n"
                "  \"00100010\": {\n"
                "    \"vr\": \"PN\",\n"
                "    \"Value\": [\n"
                "      {\n"
                "        \"Alphabetic\": \"Doe^John\",\n"
                "        \"Ideographic\": \"Ideo\"\n"
                "      }\n"
                "    ]\n"
                "  },\n"
                "  \"00100020\": {\n"
                "    \"vr\": \"LO\"\n"
                "  },\n"
                "  \"00205000\": {\n"
                "    \"vr\": \"AT\",\n"
                "    \"Value\": [\n"
                "      \"00100020\",\n"
                "      \"00080018\"\n"
                "    ]\n"
                "  },\n"
                "  \"7FE00010\": {\n"
                "    \"vr\": \"OW\"\n"
                "  }\n"
                "}",
                __LINE__);
    deid_dataset_free(ds);

    ds = deid__dataset_new("empty");
    expect_json(ds, "{}", __LINE__);
    deid_dataset_free(ds);
}

/* Quotes, backslashes and control characters escaped; '/', DEL and UTF-8 kept as they are. */
static void test_escaping(void)
{
    EXPECT_TEXT(0x00204000u, "LT", "a\"b\\c/d\x01\x1f\b\f\n\r\t\x7f|\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80",
                "\"a\\\"b\\\\c/d\\u0001\\u001F\\b\\f\\n\\r\\t\x7f|\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80\"");
    /* multi-valued text: parts trimmed, an empty part is null, a NUL ends the text */
    EXPECT_TEXT(0x00080008u, "CS", " ORIGINAL \\\\PRIMARY\0junk",
                "\"ORIGINAL\",\n      null,\n      \"PRIMARY\"");
    /* LT keeps leading spaces and backslashes, drops trailing padding */
    EXPECT_TEXT(0x00204000u, "LT", "  a\\b  ", "\"  a\\\\b\"");
    /* PN: empty groups left out, an empty name is null */
    EXPECT_TEXT(0x00100010u, "PN", "=Yamada\\\\A^B==P",
                "{\n        \"Ideographic\": \"Yamada\"\n      },\n      null,\n"
                "      {\n        \"Alphabetic\": \"A^B\",\n        \"Phonetic\": \"P\"\n      }");
}

/* Text that is not UTF-8 is read as Latin-1; ISO_IR 100 makes every byte Latin-1 in its data
 * set and the items below it, until an item declares another character set. */
static void test_charsets(void)
{
    EXPECT_TEXT(0x00100010u, "PN", "M\xFCller", "{\n        \"Alphabetic\": \"M\xC3\xBCller\"\n      }");
    EXPECT_TEXT(0x00081030u, "LO", "caf\xC3\xA9", "\"caf\xC3\xA9\"");
    EXPECT_TEXT(0x00081030u, "LO", "\xED\xA0\x80", "\"\xC3\xAD\xC2\xA0\xC2\x80\""); /* surrogate */

    deid_dataset *ds = deid__dataset_new("latin1");
    put_str(&ds->root, 0x00080005u, "CS", "ISO_IR 100");
    put_str(&ds->root, 0x00081030u, "LO", "caf\xC3\xA9");
    deid_elem *sq = put(&ds->root, 0x00081115u, "SQ", NULL, 0);
    put_str(deid__elem_add_item(sq), 0x00081030u, "LO", "\xE9");
    deid_item *utf8 = deid__elem_add_item(sq);
    put_str(utf8, 0x00080005u, "CS", "ISO_IR 192");
    put_str(utf8, 0x00081030u, "LO", "\xC3\xA9");
    char *s = export(ds);
    CHECK(s && strstr(s, "\"caf\xC3\x83\xC2\xA9\""));  /* root: Latin-1 */
    CHECK(s && strstr(s, "\"\xC3\xA9\"\n"));            /* inherited, then UTF-8 declared */
    CHECK(s && !strstr(s, "\"\xC3\x83\xC2\xA9\"\n"));
    deid_free(s);
    deid_dataset_free(ds);
}

/* IS and DS become JSON numbers when they read as numbers (integers without a point or
 * exponent), else strings; binary numbers by VR; reals with 15 significant digits. */
static void test_numbers(void)
{
    EXPECT_TEXT(0x00200013u, "IS", " 42\\-7 \\\\12a", "42,\n      -7,\n      null,\n      \"12a\"");
    EXPECT_TEXT(0x00200013u, "IS", "1\xB5", "\"1\xC2\xB5\""); /* not UTF-8: still exported */
    EXPECT_TEXT(0x00280030u, "DS", "0.5\\1e20\\0.00001\\-0.0\\5\\1.0",
                "0.5,\n      1e20,\n      1e-5,\n      -0.0,\n      5,\n      1.0");
    EXPECT_TEXT(0x00280030u, "DS", "3.14159265358979323846\\2.5E-7\\inf\\1x",
                "3.14159265358979,\n      2.5e-7,\n      \"inf\",\n      \"1x\"");

    double fd[4] = {1.0 / 3, 1e300, 100.0, NAN};
    expect_value(0x00189327u, "FD", fd, sizeof fd,
                 "0.333333333333333,\n      1e300,\n      100.0,\n      null", __LINE__);
    float fl[2] = {0.1f, -2.0f};
    expect_value(0x00189328u, "FL", fl, sizeof fl, "0.100000001490116,\n      -2.0", __LINE__);
    uint64_t uv[2] = {UINT64_MAX, 7};
    expect_value(0x00189329u, "UV", uv, sizeof uv, "1.84467440737096e19,\n      7", __LINE__);
    int64_t sv[1] = {INT64_MIN};
    expect_value(0x0018932Au, "SV", sv, sizeof sv, "-9223372036854775808", __LINE__);
    int16_t ss[2] = {-2, 32767};
    expect_value(0x00189219u, "SS", ss, sizeof ss, "-2,\n      32767", __LINE__);
    uint32_t ul[1] = {4294967295u};
    expect_value(0x00189220u, "UL", ul, sizeof ul, "4294967295", __LINE__);
}

/* Deep nesting (indentation past 64 spaces) and a header far larger than the first buffer. */
static void test_deep_and_large(void)
{
    deid_dataset *ds = deid__dataset_new("deep");
    deid_item *item = &ds->root;
    for (int d = 0; d < 30 && item; d++) {
        put_str(item, 0x00081030u, "LO", "level");
        item = deid__elem_add_item(put(item, 0x00081115u, "SQ", NULL, 0));
    }
    char text[200];
    memset(text, 'x', sizeof text);
    for (uint32_t e = 0x1000; e < 0x1000 + 2000; e++)
        put(&ds->root, 0x00110000u | e, "LO", text, sizeof text);
    char *s = export(ds);
    CHECK(s && strlen(s) > 400000);
    CHECK(s && strstr(s, "\n                                                                  "
                         "                                                  \"00081030\""));
    deid_free(s);
    deid_dataset_free(ds);
}

/* Real headers read from the shared files print as jansson prints them. */
static void test_shared_files(void)
{
    const char *dir = check_shared("ct");
    if (!dir)
        return;
    char base[4096];
    snprintf(base, sizeof base, "%s", dir);
    DIR *d = opendir(base);
    struct dirent *ent;
    size_t n = 0;
    while (d && (ent = readdir(d)) != NULL) {
        if (!strstr(ent->d_name, ".dcm"))
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", base, ent->d_name);
        deid_dataset *ds = NULL;
        if (deid_dataset_read_file(path, NULL, &ds) != DEID_OK)
            continue;
        deid_free(export(ds));
        deid_dataset_free(ds);
        n++;
    }
    if (d)
        closedir(d);
    printf("exported %zu shared CT headers\n", n);
}

static void test_arguments(void)
{
    char *s = (char *)"untouched";
    CHECK(deid_dataset_to_json(NULL, &s) == DEID_ERR_ARGUMENT);
    CHECK(!strcmp(s, "untouched"));
    deid_dataset *ds = deid__dataset_new("args");
    CHECK(deid_dataset_to_json(ds, NULL) == DEID_ERR_ARGUMENT);
    deid_dataset_free(ds);
}

int main(void)
{
    test_layout();
    test_escaping();
    test_charsets();
    test_numbers();
    test_deep_and_large();
    test_shared_files();
    test_arguments();
    return check_done("test_json");
}
