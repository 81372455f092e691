/* The result of the text stage: the regions found in one image or object with their
 * decisions, their totals, and the JSON report (which carries the text read, PHI, only when
 * asked). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "text/text_int.h"

static const char *M = "text";

deid_text_result *deid__text_result_new(void)
{
    return deid__calloc(1, sizeof(deid_text_result));
}

deid_status deid__text_result_push(deid_text_result *res, const deid_text_region *reg)
{
    if (!res || !reg)
        return deid__fail(DEID_ERR_ARGUMENT, M, "result push: NULL argument");
    if (res->n == res->cap) {
        size_t cap = res->cap ? res->cap * 2 : 16, bytes;
        if (!deid__mul_size(cap, sizeof *res->v, &bytes))
            return deid__fail(DEID_ERR_LIMIT, M, "too many text regions");
        deid_text_region *v = deid__realloc(res->v, bytes);
        if (!v)
            return DEID_ERR_NOMEM;
        res->v = v;
        res->cap = cap;
    }
    char *text = deid__strdup(reg->text ? reg->text : "");
    if (!text)
        return DEID_ERR_NOMEM;
    res->v[res->n] = *reg;
    res->v[res->n].text = text;
    res->n++;
    res->stats.merged = res->n;
    return DEID_OK;
}

void deid__text_result_recount(deid_text_result *res)
{
    if (!res)
        return;
    deid_text_stats *s = &res->stats;
    s->merged = res->n;
    s->redacted = s->review = s->kept = s->residual = 0;
    for (size_t i = 0; i < res->n; i++) {
        const deid_text_region *r = &res->v[i];
        if (r->decision == DEID_TEXT_REDACTED)
            s->redacted++;
        else if (r->decision == DEID_TEXT_REVIEW)
            s->review++;
        else
            s->kept++;
        if (r->residual)
            s->residual++;
    }
}

size_t deid_text_result_count(const deid_text_result *res) { return res ? res->n : 0; }

const deid_text_region *deid_text_result_region(const deid_text_result *res, size_t i)
{
    return res && i < res->n ? &res->v[i] : NULL;
}

void deid_text_result_stats(const deid_text_result *res, deid_text_stats *out)
{
    if (!out)
        return;
    if (res)
        *out = res->stats;
    else
        memset(out, 0, sizeof *out);
}

void deid_text_result_free(deid_text_result *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->n; i++)
        free((char *)res->v[i].text);
    free(res->v);
    free(res);
}

/* ---- JSON --------------------------------------------------------------------------------- */

static const char *decision_name(int d)
{
    return d == DEID_TEXT_REDACTED ? "redacted" : d == DEID_TEXT_REVIEW ? "review" : "kept";
}

static json_t *phi_json(int kind)
{
    switch (kind) {
    case DEID_TEXT_PHI_NAME: return json_string("name");
    case DEID_TEXT_PHI_ID: return json_string("id");
    case DEID_TEXT_PHI_DATE: return json_string("date");
    case DEID_TEXT_PHI_OTHER: return json_string("other");
    default: return json_null();
    }
}

static json_t *source_json(unsigned source)
{
    if (source == DEID_TEXT_SOURCE_PIXELS)
        return json_string("pixels");
    char s[16];
    snprintf(s, sizeof s, "overlay %04X", 0x6000u + 2u * (source - 1u));
    return json_string(s);
}

static json_t *passes_json(unsigned passes)
{
    json_t *a = json_array();
    if (a && (passes & DEID_TEXT_PASS_LINES))
        json_array_append_new(a, json_string("lines"));
    if (a && (passes & DEID_TEXT_PASS_PAGE))
        json_array_append_new(a, json_string("page"));
    return a;
}

/* The text as a JSON string; bytes that are not valid UTF-8 (OCR output should be, but a
 * report must never fail over it) become '?'. */
static json_t *text_json(const char *text)
{
    if (!text)
        return json_string("");
    json_t *s = json_string(text);
    if (s)
        return s;
    char *copy = deid__strdup(text);
    if (!copy)
        return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    s = json_string(copy);
    free(copy);
    return s;
}

static json_t *region_json(const deid_text_region *r, int include_text)
{
    json_t *o = json_object(), *box = json_array();
    int bad = !o || !box;
    if (!bad) {
        bad |= json_array_append_new(box, json_integer((json_int_t)r->x));
        bad |= json_array_append_new(box, json_integer((json_int_t)r->y));
        bad |= json_array_append_new(box, json_integer((json_int_t)r->w));
        bad |= json_array_append_new(box, json_integer((json_int_t)r->h));
        bad |= json_object_set_new(o, "frame", json_integer((json_int_t)r->frame));
        bad |= json_object_set_new(o, "source", source_json(r->source));
        bad |= json_object_set(o, "box", box);
        /* one decimal is what Tesseract's confidence means; NaN is not JSON */
        double c = isfinite(r->confidence) ? round(r->confidence * 10.0) / 10.0 : 0.0;
        bad |= json_object_set_new(o, "confidence", json_real(c));
        bad |= json_object_set_new(o, "passes", passes_json(r->passes));
        bad |= json_object_set_new(o, "decision", json_string(decision_name(r->decision)));
        bad |= json_object_set_new(o, "reason", json_string(r->reason ? r->reason : ""));
        bad |= json_object_set_new(o, "phi", phi_json(r->phi));
        bad |= json_object_set_new(o, "residual", json_boolean(r->residual));
        if (include_text)
            bad |= json_object_set_new(o, "text", text_json(r->text));
    }
    json_decref(box);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int add_count(json_t *o, const char *key, size_t v)
{
    return json_object_set_new(o, key, json_integer((json_int_t)v));
}

static json_t *stats_json(const deid_text_stats *s)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = add_count(o, "frames", s->frames);
    bad |= add_count(o, "found", s->found);
    bad |= add_count(o, "found_lines", s->found_lines);
    bad |= add_count(o, "found_page", s->found_page);
    bad |= add_count(o, "merged", s->merged);
    bad |= add_count(o, "redacted", s->redacted);
    bad |= add_count(o, "review", s->review);
    bad |= add_count(o, "kept", s->kept);
    bad |= add_count(o, "residual", s->residual);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

deid_status deid_text_result_json(const deid_text_result *res, int include_text, char **json)
{
    if (!res || !json)
        return deid__fail(DEID_ERR_ARGUMENT, M, "text report JSON: NULL argument");
    json_t *root = json_object(), *regions = json_array();
    int bad = !root || !regions;
    for (size_t i = 0; !bad && i < res->n; i++) {
        json_t *r = region_json(&res->v[i], include_text);
        bad = !r || json_array_append_new(regions, r);
    }
    if (!bad) {
        bad |= json_object_set(root, "regions", regions);
        bad |= json_object_set_new(root, "stats", stats_json(&res->stats));
    }
    json_decref(regions);
    char *text = bad ? NULL : json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                                                   JSON_REAL_PRECISION(6));
    json_decref(root);
    if (!text)
        return deid__fail(DEID_ERR_NOMEM, M, "text report JSON: out of memory");
    *json = text; /* jansson allocates with malloc; deid_free is free */
    return DEID_OK;
}
