/* JSON recipes: per-tag actions that override the Annex E table at every depth.
 *   {"version": 1, "rules": [{"tag": "(0010,1010)" | "00101010" | "PatientAge",
 *                             "action": "keep" | "remove" | "empty" | "replace" | "hash",
 *                             "value": "..." (replace only), "comment": "..." (ignored)}]}
 * The format is documented in docs/formats.md. */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "core/core.h"
#include "profile/annex_e.h"
#include "profile/profile_impl.h"

#define RECIPE_MAX_BYTES (16u << 20)

static const struct {
    const char *name;
    uint8_t action;
} actions[] = {
    {"keep", R_KEEP}, {"remove", R_REMOVE}, {"empty", R_EMPTY}, {"replace", R_REPLACE},
    {"hash", R_HASH},
};

static int hex4(const char *s, uint16_t *v)
{
    unsigned x = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        x = x << 4 | (unsigned)d;
    }
    *v = (uint16_t)x;
    return 0;
}

/* "(GGGG,EEEE)", "GGGG,EEEE", "GGGGEEEE" or a PS3.6 keyword. Returns a reason on failure. */
static const char *parse_tag(const char *s, uint32_t *tag, uint16_t *vr)
{
    size_t n = strlen(s);
    const char *g = NULL, *e = NULL;
    if (n == 11 && s[0] == '(' && s[5] == ',' && s[10] == ')')
        g = s + 1, e = s + 6;
    else if (n == 9 && s[4] == ',')
        g = s, e = s + 5;
    else if (n == 8 && strspn(s, "0123456789abcdefABCDEF") == 8)
        g = s, e = s + 4;
    if (g) {
        uint16_t gv, ev;
        if (hex4(g, &gv) != 0 || hex4(e, &ev) != 0)
            return strpbrk(s, "xX") ? "tags with wildcards (xx) are not supported"
                                    : "not a tag: expected (GGGG,EEEE), GGGGEEEE or a keyword";
        *tag = DEID_TAG(gv, ev);
        *vr = (gv & 1) ? DEID_VR_UN : deid__dict_tag_vr(*tag);
        return NULL;
    }
    if (deid__dict_keyword(s, tag, vr) != 0)
        return "unknown keyword (PS3.6 keywords are case-sensitive, e.g. PatientAge)";
    return NULL;
}

static int vr_hashable(uint16_t vr)
{
    static const char list[] = "AECSLOLTPNSHSTUCUIUT";
    if (vr == DEID_VR_UN)
        return 1; /* unknown here: checked on the element */
    for (size_t i = 0; i + 1 < sizeof list; i += 2)
        if (DEID_VR(list[i], list[i + 1]) == vr)
            return 1;
    return 0;
}

static const char *check_rule(uint32_t tag, uint16_t vr, uint8_t action)
{
    uint16_t group = (uint16_t)(tag >> 16);
    if (group == 0x0002)
        return "group 0002 (file meta information) is written by the writer, not the profile";
    if (group == 0xFFFE)
        return "item delimiters are not attributes";
    if (tag >= DEID_TAG(0x0012, 0x0062) && tag <= DEID_TAG(0x0012, 0x0064))
        return "the de-identification method attributes are set by libdeid";
    if (action == R_REPLACE && vr != DEID_VR_UN && !deid__vr_is_text(vr))
        return "replace needs an attribute with a text VR";
    if (action == R_HASH && !vr_hashable(vr))
        return "hash needs an attribute of VR AE, CS, LO, LT, PN, SH, ST, UC, UI or UT";
    return NULL;
}

static int rule_cmp(const void *a, const void *b)
{
    uint32_t x = ((const deid_recipe_rule *)a)->tag, y = ((const deid_recipe_rule *)b)->tag;
    return x < y ? -1 : x > y;
}

static deid_status bad(const char *path, size_t i, const char *tag, const char *why)
{
    if (tag)
        return deid__fail(DEID_ERR_ARGUMENT, "profile", "%s: rule %zu (tag \"%s\"): %s", path,
                          i + 1, tag, why);
    return deid__fail(DEID_ERR_ARGUMENT, "profile", "%s: rule %zu: %s", path, i + 1, why);
}

static deid_status parse_rule(const char *path, size_t i, json_t *obj, deid_recipe_rule *r)
{
    if (!json_is_object(obj))
        return bad(path, i, NULL, "a rule is an object {\"tag\": ..., \"action\": ...}");
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        if (strcmp(key, "tag") && strcmp(key, "action") && strcmp(key, "value") &&
            strcmp(key, "comment"))
            return deid__fail(DEID_ERR_ARGUMENT, "profile", "%s: rule %zu: unknown member \"%s\"",
                              path, i + 1, key);
    }
    const char *tag_text = json_string_value(json_object_get(obj, "tag"));
    const char *action = json_string_value(json_object_get(obj, "action"));
    json_t *value = json_object_get(obj, "value");
    if (!tag_text)
        return bad(path, i, NULL, "\"tag\" is missing or not a string");
    if (!action)
        return bad(path, i, tag_text, "\"action\" is missing or not a string");
    uint16_t vr;
    const char *why = parse_tag(tag_text, &r->tag, &vr);
    if (why)
        return bad(path, i, tag_text, why);
    r->action = 0;
    for (size_t k = 0; k < sizeof actions / sizeof actions[0]; k++)
        if (!strcmp(action, actions[k].name))
            r->action = actions[k].action;
    if (!r->action)
        return bad(path, i, tag_text,
                   "unknown action (expected keep, remove, empty, replace or hash)");
    if ((why = check_rule(r->tag, vr, r->action)) != NULL)
        return bad(path, i, tag_text, why);
    if (r->action == R_REPLACE) {
        if (!json_is_string(value))
            return bad(path, i, tag_text, "replace needs a string \"value\"");
        if (json_string_length(value) > 0xFFFEu || strlen(json_string_value(value)) !=
                                                       json_string_length(value))
            return bad(path, i, tag_text, "\"value\" is too long or contains NUL");
        if (!(r->value = deid__strdup(json_string_value(value))))
            return DEID_ERR_NOMEM;
    } else if (value) {
        return bad(path, i, tag_text, "\"value\" is only allowed with replace");
    }
    return DEID_OK;
}

static deid_status parse_recipe(const char *path, json_t *root, deid_recipe *out)
{
    if (!json_is_object(root))
        return deid__fail(DEID_ERR_ARGUMENT, "profile", "%s: a recipe is a JSON object", path);
    json_t *version = json_object_get(root, "version");
    if (!json_is_integer(version) || json_integer_value(version) != 1)
        return deid__fail(DEID_ERR_ARGUMENT, "profile",
                          "%s: \"version\" must be 1 (the only recipe version this libdeid knows)",
                          path);
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "version") && strcmp(key, "rules") && strcmp(key, "comment"))
            return deid__fail(DEID_ERR_ARGUMENT, "profile", "%s: unknown member \"%s\"", path,
                              key);
    }
    json_t *rules = json_object_get(root, "rules");
    if (!json_is_array(rules))
        return deid__fail(DEID_ERR_ARGUMENT, "profile", "%s: \"rules\" must be an array", path);
    size_t n = json_array_size(rules);
    deid_recipe r = {NULL, 0};
    if (n && !(r.rules = deid__calloc(n, sizeof *r.rules)))
        return DEID_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        deid_status st = parse_rule(path, i, json_array_get(rules, i), &r.rules[r.n]);
        if (st != DEID_OK) {
            free(r.rules[r.n].value);
            deid__recipe_free(&r);
            return st;
        }
        r.n++;
    }
    if (n)
        qsort(r.rules, r.n, sizeof *r.rules, rule_cmp);
    for (size_t i = 1; i < r.n; i++) {
        if (r.rules[i].tag == r.rules[i - 1].tag) {
            uint32_t t = r.rules[i].tag;
            deid__recipe_free(&r);
            return deid__fail(DEID_ERR_ARGUMENT, "profile",
                              "%s: two rules for (%04X,%04X): keep one", path,
                              (unsigned)(t >> 16), (unsigned)(t & 0xFFFF));
        }
    }
    *out = r;
    return DEID_OK;
}

deid_status deid__recipe_load(const char *path, deid_recipe *out)
{
    char *text;
    size_t size;
    deid_status st = deid__read_file(path, RECIPE_MAX_BYTES, &text, &size);
    if (st != DEID_OK) {
        if (st == DEID_ERR_IO || st == DEID_ERR_LIMIT)
            deid__error_prefix("recipe");
        return st;
    }
    json_error_t err;
    json_t *root = json_loadb(text, size, JSON_REJECT_DUPLICATES, &err);
    free(text);
    if (!root)
        return deid__fail(DEID_ERR_ARGUMENT, "profile", "%s: line %d, column %d: %s", path,
                          err.line, err.column, err.text);
    st = parse_recipe(path, root, out);
    json_decref(root);
    return st;
}

void deid__recipe_free(deid_recipe *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->rules[i].value);
    free(r->rules);
    r->rules = NULL;
    r->n = 0;
}

const deid_recipe_rule *deid__recipe_find(const deid_recipe *r, uint32_t tag)
{
    if (r->n == 0)
        return NULL;
    size_t i = deid__tag_lower_bound(r->rules, r->n, sizeof r->rules[0], tag);
    return i < r->n && r->rules[i].tag == tag ? &r->rules[i] : NULL;
}
