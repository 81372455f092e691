/* The mask JSON of SlicerUltrasound (mask_type fan | rectangle) written and read with
 * jansson. Centre, radii and rectangle sides are integers there (Python ints), angles reals. */
#include <math.h>
#include <string.h>
#include "core/core.h"
#include "us/us_int.h"

static const char *M = "us";

/* Add an integer member (the value rounded half to even, as Python's round); 0 on success. */
static int add_int(json_t *o, const char *key, double v)
{
    return json_object_set_new(o, key, json_integer((json_int_t)nearbyint(v)));
}

static int add_real(json_t *o, const char *key, double v)
{
    return json_object_set_new(o, key, json_real(v));
}

json_t *deid__fan_json(const deid_fan *fan)
{
    deid_fan_prep p;
    if (!fan || deid__fan_prepare(fan, 0, &p) != 0) {
        deid__fail(DEID_ERR_ARGUMENT, M, "mask JSON: invalid geometry");
        return NULL;
    }
    json_t *o = json_object();
    int bad = !o;
    if (!bad && fan->kind == DEID_FAN_SECTOR) {
        bad |= json_object_set_new(o, "mask_type", json_string("fan"));
        bad |= add_real(o, "angle1", fan->angle1);
        bad |= add_real(o, "angle2", fan->angle2);
        bad |= add_int(o, "center_rows_px", fan->center_rows_px);
        bad |= add_int(o, "center_cols_px", fan->center_cols_px);
        bad |= add_int(o, "radius1", fan->radius1);
        bad |= add_int(o, "radius2", fan->radius2);
    } else if (!bad) {
        bad |= json_object_set_new(o, "mask_type", json_string("rectangle"));
        bad |= add_int(o, "rectangle_left", fan->rectangle_left);
        bad |= add_int(o, "rectangle_right", fan->rectangle_right);
        bad |= add_int(o, "rectangle_top", fan->rectangle_top);
        bad |= add_int(o, "rectangle_bottom", fan->rectangle_bottom);
    }
    if (!bad) {
        bad |= json_object_set_new(o, "image_size_rows", json_integer((json_int_t)fan->image_size_rows));
        bad |= json_object_set_new(o, "image_size_cols", json_integer((json_int_t)fan->image_size_cols));
    }
    if (bad) {
        json_decref(o);
        deid__fail(DEID_ERR_NOMEM, M, "mask JSON: out of memory");
        return NULL;
    }
    return o;
}

deid_status deid_fan_to_json(const deid_fan *fan, char **json)
{
    if (!fan || !json)
        return deid__fail(DEID_ERR_ARGUMENT, M, "mask JSON: NULL argument");
    json_t *o = deid__fan_json(fan);
    if (!o)
        return deid_last_error_code();
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (!text)
        return deid__fail(DEID_ERR_NOMEM, M, "mask JSON: out of memory");
    /* jansson allocates with malloc unless told otherwise; deid_free is free. */
    *json = text;
    return DEID_OK;
}

/* A required numeric member into *v; -1 (error set) when absent or not a number. */
static int get_number(const json_t *o, const char *key, double *v)
{
    const json_t *m = json_object_get(o, key);
    if (!m || !json_is_number(m)) {
        deid__fail(DEID_ERR_ARGUMENT, M, "mask JSON: \"%s\" %s", key,
                   m ? "is not a number" : "is missing");
        return -1;
    }
    *v = json_number_value(m);
    if (!isfinite(*v)) {
        deid__fail(DEID_ERR_ARGUMENT, M, "mask JSON: \"%s\" is not finite", key);
        return -1;
    }
    return 0;
}

/* An optional image size member (absent or null: 0). */
static int get_size(const json_t *o, const char *key, size_t *v)
{
    const json_t *m = json_object_get(o, key);
    if (!m || json_is_null(m)) {
        *v = 0;
        return 0;
    }
    double d;
    if (get_number(o, key, &d) != 0)
        return -1;
    if (d < 0 || d > 1e9 || d != floor(d)) {
        deid__fail(DEID_ERR_ARGUMENT, M, "mask JSON: \"%s\" is not a pixel count", key);
        return -1;
    }
    *v = (size_t)d;
    return 0;
}

static int read_fields(const json_t *o, deid_fan *f)
{
    const json_t *t = json_object_get(o, "mask_type");
    const char *type = t && json_is_string(t) ? json_string_value(t) : t ? NULL : "fan";
    if (!type || (strcmp(type, "fan") != 0 && strcmp(type, "rectangle") != 0)) {
        deid__fail(DEID_ERR_ARGUMENT, M, "mask JSON: mask_type is not \"fan\" or \"rectangle\"");
        return -1;
    }
    if (get_size(o, "image_size_rows", &f->image_size_rows) != 0 ||
        get_size(o, "image_size_cols", &f->image_size_cols) != 0)
        return -1;
    if (!strcmp(type, "rectangle")) {
        f->kind = DEID_FAN_RECTANGLE;
        return get_number(o, "rectangle_left", &f->rectangle_left) ||
                       get_number(o, "rectangle_right", &f->rectangle_right) ||
                       get_number(o, "rectangle_top", &f->rectangle_top) ||
                       get_number(o, "rectangle_bottom", &f->rectangle_bottom)
                   ? -1
                   : 0;
    }
    f->kind = DEID_FAN_SECTOR;
    return get_number(o, "angle1", &f->angle1) || get_number(o, "angle2", &f->angle2) ||
                   get_number(o, "center_rows_px", &f->center_rows_px) ||
                   get_number(o, "center_cols_px", &f->center_cols_px) ||
                   get_number(o, "radius1", &f->radius1) ||
                   get_number(o, "radius2", &f->radius2)
               ? -1
               : 0;
}

deid_status deid_fan_from_json(const char *json, deid_fan *out)
{
    if (!json || !out)
        return deid__fail(DEID_ERR_ARGUMENT, M, "mask JSON: NULL argument");
    json_error_t err;
    json_t *o = json_loads(json, JSON_REJECT_DUPLICATES, &err);
    if (!o)
        return deid__fail(DEID_ERR_ARGUMENT, M, "mask JSON: line %d: %s", err.line, err.text);
    deid_fan f;
    memset(&f, 0, sizeof f);
    int bad = !json_is_object(o);
    if (bad)
        deid__fail(DEID_ERR_ARGUMENT, M, "mask JSON: not an object");
    else
        bad = read_fields(o, &f);
    json_decref(o);
    if (bad)
        return DEID_ERR_ARGUMENT;
    *out = f;
    return DEID_OK;
}
