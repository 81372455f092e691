/* The text stage around detection: results and their JSON report (no text unless asked), fills
 * that leave nothing of the text at the image's own depth (8-bit, 16-bit signed, RGB, solid and
 * inpainted), and - with Tesseract - DICOM objects (overlay planes searched and removed, Burned
 * In Annotation, lossless stays lossless, lossy stays JPEG, a refused object left as it was) and
 * raster files. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "core/core.h"
#include "deid/deid.h"
#include "dicom/dataset_int.h"
#include "pixel/pixel_int.h"
#include "text/text_int.h"

static const char *tmpdir; /* check_tmpdir */

static const char *tmp_path(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

static int has_tesseract(void)
{
    const char *f = deid_features();
    return f && strstr(f, "tesseract") != NULL;
}

/* An engine without Tesseract, for the fills (no residual check: nothing reads text). */
static deid_text_engine fake_engine(int fill, unsigned pad)
{
    deid_text_engine e;
    memset(&e, 0, sizeof e);
    deid_text_options o = DEID_TEXT_OPTIONS_INIT;
    e.opts = o;
    e.opts.fill = fill;
    e.opts.pad = pad;
    e.opts.residual_check = 0;
    e.opts.passes = DEID_TEXT_PASS_ALL;
    e.opts.jpeg_quality = 95;
    return e;
}

static deid_text_region region(size_t frame, size_t x, size_t y, size_t w, size_t h, int decision)
{
    deid_text_region r;
    memset(&r, 0, sizeof r);
    r.frame = frame;
    r.x = x, r.y = y, r.w = w, r.h = h;
    r.decision = decision;
    r.confidence = 90;
    r.passes = DEID_TEXT_PASS_LINES;
    r.reason = "all text";
    r.text = "";
    return r;
}

static deid_text_result *one_region(size_t frame, size_t x, size_t y, size_t w, size_t h)
{
    deid_text_result *res = deid__text_result_new();
    CHECK(res != NULL);
    deid_text_region r = region(frame, x, y, w, h, DEID_TEXT_REDACTED);
    if (res)
        CHECK_OK(deid__text_result_push(res, &r));
    return res;
}

static int32_t px(const deid_image *img, size_t frame, size_t y, size_t x, size_t k)
{
    size_t i = ((frame * img->rows + y) * img->cols + x) * img->samples + k;
    if (img->bits == 8)
        return img->is_signed ? (int8_t)img->data[i] : img->data[i];
    uint16_t u;
    memcpy(&u, img->data + 2 * i, 2);
    return img->is_signed ? (int16_t)u : u;
}

static void set_px(deid_image *img, size_t frame, size_t y, size_t x, size_t k, int32_t v)
{
    size_t i = ((frame * img->rows + y) * img->cols + x) * img->samples + k;
    if (img->bits == 8) {
        img->data[i] = (uint8_t)v;
    } else {
        uint16_t u = (uint16_t)v;
        memcpy(img->data + 2 * i, &u, 2);
    }
}

/* Is (x, y) inside the box [x0, x1) x [y0, y1)? */
static int inside(size_t x, size_t y, size_t x0, size_t y0, size_t x1, size_t y1)
{
    return x >= x0 && x < x1 && y >= y0 && y < y1;
}

/* A JSON string's value, or `dflt` when it is not a string. */
static const char *str(const json_t *j, const char *dflt)
{
    const char *v = json_string_value(j);
    return v ? v : dflt;
}

/* ---- results and JSON ------------------------------------------------------------------------- */

static void test_result_json(void)
{
    deid_text_result *res = deid__text_result_new();
    CHECK(res != NULL);
    if (!res)
        return;
    deid_text_region a = region(0, 10, 20, 30, 8, DEID_TEXT_REDACTED);
    a.confidence = 87.46;
    a.passes = DEID_TEXT_PASS_ALL;
    a.phi = DEID_TEXT_PHI_NAME;
    a.text = "DOE JOHN";
    a.reason = "matches PHI";
    deid_text_region b = region(1, 1, 2, 3, 4, DEID_TEXT_REVIEW);
    b.source = 2; /* overlay group 6002 */
    b.text = NULL;
    b.passes = DEID_TEXT_PASS_PAGE;
    b.reason = "looks like an identifier";
    deid_text_region c = region(0, 5, 5, 5, 5, DEID_TEXT_KEPT);
    c.text = "\xff\xfe L"; /* not UTF-8: the report must still be valid */
    c.residual = 1;
    CHECK_OK(deid__text_result_push(res, &a));
    CHECK_OK(deid__text_result_push(res, &b));
    CHECK_OK(deid__text_result_push(res, &c));
    res->stats.frames = 2, res->stats.found = 4, res->stats.found_lines = 3,
    res->stats.found_page = 1;
    deid__text_result_recount(res);

    CHECK(deid_text_result_count(res) == 3 && deid_text_result_count(NULL) == 0);
    CHECK(deid_text_result_region(res, 3) == NULL && deid_text_result_region(NULL, 0) == NULL);
    const deid_text_region *r0 = deid_text_result_region(res, 0);
    CHECK(r0 && r0->text != a.text && strcmp(r0->text, "DOE JOHN") == 0); /* copied */
    CHECK(deid_text_result_region(res, 1) && deid_text_result_region(res, 1)->text &&
          deid_text_result_region(res, 1)->text[0] == '\0');
    deid_text_stats s;
    deid_text_result_stats(res, &s);
    CHECK(s.merged == 3 && s.redacted == 1 && s.review == 1 && s.kept == 1 && s.residual == 1);
    deid_text_result_stats(NULL, &s);
    CHECK(s.merged == 0 && s.frames == 0);

    for (int with_text = 0; with_text <= 1; with_text++) {
        char *json = NULL;
        CHECK_OK(deid_text_result_json(res, with_text, &json));
        if (!json)
            continue;
        CHECK((strstr(json, "DOE") != NULL) == with_text); /* no PHI unless asked */
        json_error_t err;
        json_t *root = json_loads(json, 0, &err);
        CHECK(root != NULL);
        json_t *regions = json_object_get(root, "regions"), *stats = json_object_get(root, "stats");
        CHECK(json_array_size(regions) == 3);
        json_t *j0 = json_array_get(regions, 0), *j1 = json_array_get(regions, 1);
        json_t *j2 = json_array_get(regions, 2);
        json_t *box = json_object_get(j0, "box");
        CHECK(json_array_size(box) == 4 && json_integer_value(json_array_get(box, 0)) == 10 &&
              json_integer_value(json_array_get(box, 3)) == 8);
        CHECK(json_integer_value(json_object_get(j0, "frame")) == 0);
        CHECK(!strcmp(str(json_object_get(j0, "source"), ""), "pixels"));
        CHECK(!strcmp(str(json_object_get(j1, "source"), ""), "overlay 6002"));
        CHECK(json_real_value(json_object_get(j0, "confidence")) == 87.5);
        json_t *passes = json_object_get(j0, "passes");
        CHECK(json_array_size(passes) == 2 &&
              !strcmp(str(json_array_get(passes, 0), ""), "lines") &&
              !strcmp(str(json_array_get(passes, 1), ""), "page"));
        CHECK(!strcmp(str(json_object_get(j0, "decision"), ""), "redacted"));
        CHECK(!strcmp(str(json_object_get(j1, "decision"), ""), "review"));
        CHECK(!strcmp(str(json_object_get(j2, "decision"), ""), "kept"));
        CHECK(!strcmp(str(json_object_get(j0, "reason"), ""), "matches PHI"));
        CHECK(!strcmp(str(json_object_get(j0, "phi"), ""), "name"));
        CHECK(json_is_null(json_object_get(j1, "phi")));
        CHECK(json_is_false(json_object_get(j0, "residual")) &&
              json_is_true(json_object_get(j2, "residual")));
        CHECK((json_object_get(j0, "text") != NULL) == with_text);
        if (with_text) {
            CHECK(!strcmp(str(json_object_get(j0, "text"), ""), "DOE JOHN"));
            CHECK(!strcmp(str(json_object_get(j1, "text"), "x"), ""));
            CHECK(!strcmp(str(json_object_get(j2, "text"), ""), "?? L"));
        }
        CHECK(json_integer_value(json_object_get(stats, "frames")) == 2 &&
              json_integer_value(json_object_get(stats, "found")) == 4 &&
              json_integer_value(json_object_get(stats, "found_lines")) == 3 &&
              json_integer_value(json_object_get(stats, "found_page")) == 1 &&
              json_integer_value(json_object_get(stats, "merged")) == 3 &&
              json_integer_value(json_object_get(stats, "redacted")) == 1 &&
              json_integer_value(json_object_get(stats, "review")) == 1 &&
              json_integer_value(json_object_get(stats, "kept")) == 1 &&
              json_integer_value(json_object_get(stats, "residual")) == 1);
        json_decref(root);
        deid_free(json);
    }
    char *json = NULL;
    CHECK(deid_text_result_json(NULL, 0, &json) == DEID_ERR_ARGUMENT && json == NULL);
    deid_text_result_free(res);
    deid_text_result_free(NULL);
}

/* ---- fills ------------------------------------------------------------------------------------ */

/* A text-like pattern (high-contrast stripes) inside the box. */
static void stripes(deid_image *img, size_t frame, size_t x, size_t y, size_t w, size_t h,
                    int32_t lo, int32_t hi)
{
    for (size_t r = y; r < y + h; r++)
        for (size_t c = x; c < x + w; c++)
            for (size_t k = 0; k < img->samples; k++)
                set_px(img, frame, r, c, k, ((c + r) / 2) % 2 ? hi : lo);
}

/* Solid fill of region (x, y, w, h) padded by `pad`: every padded pixel is `want` in every
 * sample, every other pixel is unchanged. */
static void check_solid(deid_image *img, size_t x, size_t y, size_t w, size_t h, unsigned pad,
                        int32_t want)
{
    deid_image *orig = deid__image_new(img->frames, img->rows, img->cols, img->samples, img->bits,
                                       img->is_signed, img->photometric);
    memcpy(orig->data, img->data, img->size);
    deid_text_engine e = fake_engine(DEID_TEXT_FILL_SOLID, pad);
    deid_text_result *res = one_region(0, x, y, w, h);
    deid_text_region keep = region(0, 0, 0, 4, 4, DEID_TEXT_KEPT), ov = region(0, 0, 0, 4, 4,
                                                                              DEID_TEXT_REDACTED);
    ov.source = 1; /* an overlay's region never touches the pixels */
    CHECK_OK(deid__text_result_push(res, &keep));
    CHECK_OK(deid__text_result_push(res, &ov));
    CHECK_OK(deid_text_redact(&e, img, res, NULL));
    size_t x0 = x > pad ? x - pad : 0, y0 = y > pad ? y - pad : 0;
    size_t x1 = x + w + pad < img->cols ? x + w + pad : img->cols;
    size_t y1 = y + h + pad < img->rows ? y + h + pad : img->rows;
    size_t bad_in = 0, bad_out = 0;
    for (size_t r = 0; r < img->rows; r++)
        for (size_t c = 0; c < img->cols; c++)
            for (size_t k = 0; k < img->samples; k++) {
                if (inside(c, r, x0, y0, x1, y1))
                    bad_in += px(img, 0, r, c, k) != want;
                else
                    bad_out += px(img, 0, r, c, k) != px(orig, 0, r, c, k);
            }
    CHECK(bad_in == 0);
    CHECK(bad_out == 0);
    deid_text_stats s;
    deid_text_result_stats(res, &s);
    CHECK(s.redacted == 2 && s.kept == 1 && s.residual == 0 && s.seconds_redact >= 0);
    deid_text_result_free(res);
    deid_image_free(orig);
}

static void test_fill_solid(void)
{
    /* 8-bit grey: the frame's minimum */
    deid_image *img = deid__image_new(1, 64, 96, 1, 8, 0, "MONOCHROME2");
    for (size_t r = 0; r < 64; r++)
        for (size_t c = 0; c < 96; c++)
            set_px(img, 0, r, c, 0, (int32_t)(50 + c % 7));
    set_px(img, 0, 63, 95, 0, 20);
    stripes(img, 0, 30, 20, 20, 10, 200, 240);
    check_solid(img, 30, 20, 20, 10, 2, 20);
    /* clipped at the image's edges */
    check_solid(img, 0, 58, 10, 6, 3, 20);
    deid_image_free(img);

    /* 16-bit signed: the minimum, negative */
    img = deid__image_new(1, 40, 50, 1, 16, 1, "MONOCHROME2");
    for (size_t r = 0; r < 40; r++)
        for (size_t c = 0; c < 50; c++)
            set_px(img, 0, r, c, 0, (int32_t)(r * 50 + c) - 500);
    set_px(img, 0, 39, 0, 0, -1024);
    stripes(img, 0, 10, 10, 20, 8, -800, 3000);
    check_solid(img, 10, 10, 20, 8, 2, -1024);
    deid_image_free(img);

    /* MONOCHROME1: the darkest value is the maximum */
    img = deid__image_new(1, 40, 50, 1, 16, 0, "MONOCHROME1");
    for (size_t r = 0; r < 40; r++)
        for (size_t c = 0; c < 50; c++)
            set_px(img, 0, r, c, 0, (int32_t)(1000 + r + c));
    set_px(img, 0, 0, 0, 0, 4095);
    stripes(img, 0, 10, 10, 20, 8, 0, 2000);
    check_solid(img, 10, 10, 20, 8, 1, 4095);
    deid_image_free(img);

    /* RGB: black */
    img = deid__image_new(1, 30, 40, 3, 8, 0, "RGB");
    for (size_t r = 0; r < 30; r++)
        for (size_t c = 0; c < 40; c++) {
            set_px(img, 0, r, c, 0, 100);
            set_px(img, 0, r, c, 1, 150);
            set_px(img, 0, r, c, 2, 200);
        }
    stripes(img, 0, 5, 5, 20, 8, 0, 255);
    check_solid(img, 5, 5, 20, 8, 2, 0);
    deid_image_free(img);
}

/* Smooth background bg(x, y) per sample k. */
static int32_t background(size_t x, size_t y, size_t k, int is_signed)
{
    return (int32_t)(40 + x / 2 + y / 3 + 30 * k) - (is_signed ? 600 : 0);
}

/* Inpainting a checkerboard on a smooth background: nothing of the pattern is left, the fill
 * joins the surroundings and follows the background. */
static void check_inpaint(size_t samples, unsigned bits, int is_signed, const char *pi)
{
    size_t rows = 80, cols = 160, x = 50, y = 30, w = 40, h = 12;
    unsigned pad = 2;
    deid_image *img = deid__image_new(2, rows, cols, samples, bits, is_signed, pi);
    for (size_t f = 0; f < 2; f++)
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < cols; c++)
                for (size_t k = 0; k < samples; k++)
                    set_px(img, f, r, c, k, background(c, r, k, is_signed));
    for (size_t f = 0; f < 2; f++)
        stripes(img, f, x, y, w, h, is_signed ? -1000 : 0, bits == 8 ? 255 : 4000);
    deid_text_engine e = fake_engine(DEID_TEXT_FILL_INPAINT, pad);
    deid_text_result *res = one_region(1, x, y, w, h); /* frame 1 only */
    CHECK_OK(deid_text_redact(&e, img, res, NULL));
    size_t x0 = x - pad, y0 = y - pad, x1 = x + w + pad, y1 = y + h + pad;
    int32_t worst_bg = 0, worst_step = 0, frame0_left = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            for (size_t k = 0; k < samples; k++) {
                int32_t v = px(img, 1, r, c, k), bg = background(c, r, k, is_signed);
                if (inside(c, r, x0, y0, x1, y1)) {
                    int32_t d = abs(v - bg);
                    worst_bg = d > worst_bg ? d : worst_bg;
                }
                if (c + 1 < cols && (inside(c, r, x0, y0, x1, y1) ||
                                     inside(c + 1, r, x0, y0, x1, y1))) {
                    int32_t d = abs(px(img, 1, r, c + 1, k) - v);
                    worst_step = d > worst_step ? d : worst_step;
                }
                if (inside(c, r, x, y, x + w, y + h) && px(img, 0, r, c, k) != bg)
                    frame0_left++;
            }
    CHECK(worst_bg <= 2);   /* follows the background: the stripes are gone */
    CHECK(worst_step <= 3); /* no seam with the surroundings, no pattern inside */
    CHECK(frame0_left > 0); /* the other frame is untouched */
    deid_text_result_free(res);
    deid_image_free(img);
}

static void test_fill_inpaint(void)
{
    check_inpaint(1, 8, 0, "MONOCHROME2");
    check_inpaint(1, 16, 1, "MONOCHROME2");
    check_inpaint(3, 8, 0, "RGB");

    /* a box against the image's edge, and one covering the whole image */
    deid_image *img = deid__image_new(1, 20, 30, 1, 8, 0, "MONOCHROME2");
    memset(img->data, 90, img->size);
    stripes(img, 0, 0, 0, 10, 6, 0, 255);
    deid_text_engine e = fake_engine(DEID_TEXT_FILL_INPAINT, 2);
    deid_text_result *res = one_region(0, 0, 0, 10, 6);
    CHECK_OK(deid_text_redact(&e, img, res, NULL));
    size_t off = 0;
    for (size_t i = 0; i < img->size; i++)
        off += img->data[i] != 90;
    CHECK(off == 0);
    deid_text_result_free(res);
    stripes(img, 0, 0, 0, 30, 20, 10, 255);
    res = one_region(0, 0, 0, 30, 20);
    CHECK_OK(deid_text_redact(&e, img, res, NULL));
    off = 0;
    for (size_t i = 0; i < img->size; i++)
        off += img->data[i] != 10; /* nothing around it: the solid value */
    CHECK(off == 0);
    deid_text_result_free(res);
    deid_image_free(img);
}

/* A 300x40 box on a 16-bit 512x512 image: well under a millisecond. */
static void test_inpaint_speed(void)
{
    deid_image *img = deid__image_new(1, 512, 512, 1, 16, 0, "MONOCHROME2");
    for (size_t i = 0; i < img->size; i++)
        img->data[i] = (uint8_t)(i * 7);
    deid_text_engine e = fake_engine(DEID_TEXT_FILL_INPAINT, 0);
    deid_text_result *res = one_region(0, 100, 200, 300, 40);
    double best = 1e9;
    for (int rep = 0; rep < 20; rep++) {
        double t = deid__now();
        CHECK_OK(deid_text_redact(&e, img, res, NULL));
        t = deid__now() - t;
        best = t < best ? t : best;
    }
    /* printed, not asserted: speed is for benches, never for unit tests */
    printf("inpaint 300x40 box (16-bit): %.3f ms\n", best * 1e3);
    deid_text_result_free(res);
    deid_image_free(img);
}

static void test_redact_refusals(void)
{
    deid_text_engine e = fake_engine(DEID_TEXT_FILL_SOLID, 2);
    deid_text_result *res = one_region(0, 1, 1, 2, 2);
    deid_image *pal = deid__image_new(1, 8, 8, 1, 8, 0, "PALETTE COLOR");
    CHECK(deid_text_redact(&e, pal, res, NULL) == DEID_ERR_UNSUPPORTED);
    CHECK(deid_text_redact(NULL, pal, res, NULL) == DEID_ERR_ARGUMENT);
    CHECK(deid_text_redact(&e, NULL, res, NULL) == DEID_ERR_ARGUMENT);
    deid_image_free(pal);
    /* a region of a frame the image does not have is ignored */
    deid_image *img = deid__image_new(1, 8, 8, 1, 8, 0, "MONOCHROME2");
    memset(img->data, 7, img->size);
    deid_text_result *far = one_region(5, 1, 1, 2, 2);
    CHECK_OK(deid_text_redact(&e, img, far, NULL));
    deid_text_result_free(far);
    deid_image_free(img);
    deid_text_result_free(res);
}

/* ---- DICOM objects (Tesseract) ---------------------------------------------------------------- */

/* Draw `text` into a grey plane with the built-in font: value `v` where the glyphs are. */
static void draw(uint8_t *grey, size_t rows, size_t cols, size_t x, size_t y, unsigned scale,
                 const char *text, uint8_t v)
{
    uint8_t *rgb = calloc(rows * cols, 3);
    const uint8_t white[3] = {255, 255, 255};
    deid__draw_text(rgb, rows, cols, x, y, scale, white, text);
    for (size_t i = 0; i < rows * cols; i++)
        if (rgb[3 * i])
            grey[i] = v;
    free(rgb);
}

static void set_us(deid_dataset *ds, uint16_t g, uint16_t e, unsigned v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    CHECK_OK(deid_dataset_set(ds, DEID_TAG(g, e), "US", b, 2));
}

#define ROWS 160
#define COLS 400
#define BACKGROUND 30

/* A secondary-capture object: 8-bit grey, "DOE JOHN 12345" burned in, its own PHI in the
 * header, and (with_overlay) an overlay plane 6000 reading "SMITH 1999". */
static deid_dataset *text_object(const char *ts, int with_overlay)
{
    deid_dataset *ds = deid__dataset_new("text_object");
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0008, 0x0016), "1.2.840.10008.5.1.4.1.1.7"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0008, 0x0018), "2.25.4242"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0010, 0x0010), "DOE^JOHN"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0010, 0x0020), "12345"));
    deid_image *img = deid__image_new(1, ROWS, COLS, 1, 8, 0, "MONOCHROME2");
    memset(img->data, BACKGROUND, img->size);
    draw(img->data, ROWS, COLS, 20, 20, 4, "DOE JOHN 12345", 230);
    deid_encode_options o = DEID_ENCODE_OPTIONS_INIT;
    o.codec = DEID_CODEC_UNCOMPRESSED;
    CHECK_OK(deid_dataset_set_pixels(ds, img, &o));
    deid_image_free(img);
    free(ds->transfer_syntax); /* little endian either way: only the name changes */
    ds->transfer_syntax = deid__strdup(ts);
    if (with_overlay) {
        uint8_t *plane = calloc(ROWS * COLS, 1), *bits = calloc(ROWS * COLS / 8, 1);
        draw(plane, ROWS, COLS, 20, 90, 4, "SMITH 1999", 1);
        for (size_t i = 0; i < ROWS * COLS; i++)
            if (plane[i])
                bits[i / 8] |= (uint8_t)(1u << (i % 8));
        set_us(ds, 0x6000, 0x0010, ROWS);
        set_us(ds, 0x6000, 0x0011, COLS);
        CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x6000, 0x0040), "G"));
        set_us(ds, 0x6000, 0x0100, 1);
        set_us(ds, 0x6000, 0x0102, 0);
        CHECK_OK(deid_dataset_set(ds, DEID_TAG(0x6000, 0x3000), "OW", bits, ROWS * COLS / 8));
        free(plane);
        free(bits);
    }
    return ds;
}

static int has_overlay_group(const deid_dataset *ds)
{
    for (size_t i = 0; i < ds->root.n; i++) {
        unsigned g = ds->root.elems[i].tag >> 16;
        if (g >= 0x6000 && g <= 0x601E && !(g & 1))
            return 1;
    }
    return 0;
}

static void burned_in(const deid_dataset *ds, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (deid_dataset_get_string(ds, DEID_TAG(0x0028, 0x0301), buf, cap) != DEID_OK)
        memcpy(buf, "(absent)", cap > 9 ? 9 : 0);
}

static size_t count_source(const deid_text_result *res, unsigned source, int decision)
{
    size_t n = 0;
    for (size_t i = 0; i < deid_text_result_count(res); i++) {
        const deid_text_region *r = deid_text_result_region(res, i);
        n += r->source == source && r->decision == decision;
    }
    return n;
}

static deid_text_engine *engine_with(int redact)
{
    deid_text_options o = DEID_TEXT_OPTIONS_INIT;
    o.redact = redact;
    deid_text_engine *e = NULL;
    CHECK_OK(deid_text_engine_new(&o, &e));
    return e;
}

static void test_process_all(void)
{
    deid_text_engine *e = engine_with(DEID_TEXT_REDACT_ALL);
    if (!e)
        return;
    deid_dataset *ds = text_object("1.2.840.10008.1.2", 1); /* implicit VR: lossless */
    deid_text_result *res = NULL;
    CHECK_OK(deid_text_process(e, ds, NULL, &res));
    if (res) {
        CHECK(count_source(res, DEID_TEXT_SOURCE_PIXELS, DEID_TEXT_REDACTED) >= 1);
        CHECK(count_source(res, 1, DEID_TEXT_REDACTED) >= 1);
        for (size_t i = 0; i < deid_text_result_count(res); i++) {
            const deid_text_region *r = deid_text_result_region(res, i);
            if (r->source == 1)
                CHECK(!strcmp(r->reason, "overlay plane removed"));
        }
        deid_text_stats s;
        deid_text_result_stats(res, &s);
        CHECK(s.frames >= 2); /* the frame and the overlay plane */
        char bia[8];
        burned_in(ds, bia, sizeof bia);
        CHECK(!strcmp(bia, s.redacted == s.merged ? "NO" : "YES"));
        CHECK(s.redacted == s.merged); /* redact all */
    }
    CHECK(!has_overlay_group(ds));
    CHECK(!strcmp(deid_dataset_transfer_syntax(ds), "1.2.840.10008.1.2.1")); /* still lossless */
    deid_image *img = NULL;
    CHECK_OK(deid_image_decode(ds, 0, 0, 0, &img));
    if (img) { /* the text is gone: a uniform image of the darkest value */
        size_t left = 0;
        for (size_t i = 0; i < img->size; i++)
            left += img->data[i] != BACKGROUND;
        CHECK(left == 0);
    }
    deid_image_free(img);
    deid_text_result_free(res);
    deid_dataset_free(ds);
    deid_text_engine_free(e);
}

/* A clip: text in every frame is redacted in every frame; text in one frame of six (what
 * speckle makes a detector read) is left for review and spread to no other frame. */
static void test_clip_steady(void)
{
    deid_text_engine *e = engine_with(DEID_TEXT_REDACT_ALL);
    if (!e)
        return;
    const size_t frames = 6;
    deid_image *img = deid__image_new(frames, ROWS, COLS, 1, 8, 0, "MONOCHROME2");
    memset(img->data, BACKGROUND, img->size);
    for (size_t f = 0; f < frames; f++)
        draw(img->data + f * ROWS * COLS, ROWS, COLS, 20, 20, 4, "STATIC 2024", 230);
    draw(img->data + 3 * ROWS * COLS, ROWS, COLS, 20, 100, 4, "ONCE 77", 230);
    deid_text_result *res = NULL;
    CHECK_OK(deid_text_detect(e, img, NULL, &res));
    size_t steady_frames = 0, once_review = 0, once_elsewhere = 0;
    for (size_t i = 0; res && i < deid_text_result_count(res); i++) {
        const deid_text_region *r = deid_text_result_region(res, i);
        if (r->y < 60 && r->decision == DEID_TEXT_REDACTED)
            steady_frames |= (size_t)1 << r->frame;
        if (r->y >= 80 && r->frame == 3)
            once_review += r->decision == DEID_TEXT_REVIEW &&
                           !strcmp(r->reason, "in too few frames");
        if (r->y >= 80 && r->frame != 3)
            once_elsewhere++;
    }
    CHECK(steady_frames == ((size_t)1 << frames) - 1);
    CHECK(once_review >= 1);
    CHECK(once_elsewhere == 0);
    deid_text_result_free(res);
    deid_image_free(img);
    deid_text_engine_free(e);
}

static void test_process_none_and_phi(void)
{
    /* report only: pixels unchanged, the text left -> YES; overlays go all the same */
    deid_text_engine *e = engine_with(DEID_TEXT_REDACT_NONE);
    if (!e)
        return;
    deid_dataset *ds = text_object("1.2.840.10008.1.2.1", 1);
    const void *before;
    size_t n_before;
    CHECK_OK(deid_dataset_get(ds, DEID_TAG(0x7FE0, 0x0010), &before, &n_before));
    uint8_t *copy = malloc(n_before);
    memcpy(copy, before, n_before);
    deid_text_result *res = NULL;
    CHECK_OK(deid_text_process(e, ds, NULL, &res));
    const void *after;
    size_t n_after;
    CHECK_OK(deid_dataset_get(ds, DEID_TAG(0x7FE0, 0x0010), &after, &n_after));
    CHECK(n_after == n_before && !memcmp(after, copy, n_before));
    CHECK(count_source(res, DEID_TEXT_SOURCE_PIXELS, DEID_TEXT_REVIEW) >= 1);
    char bia[8];
    burned_in(ds, bia, sizeof bia);
    CHECK(!strcmp(bia, "YES"));
    CHECK(!has_overlay_group(ds));
    free(copy);
    deid_text_result_free(res);
    deid_dataset_free(ds);
    deid_text_engine_free(e);

    /* PHI mode with an extra term: the name and ID match the header, the extra term the
     * overlay's text */
    e = engine_with(DEID_TEXT_REDACT_PHI);
    if (!e)
        return;
    ds = text_object("1.2.840.10008.1.2.1", 1);
    deid_text_phi *extra = NULL;
    CHECK_OK(deid_text_phi_new(&extra));
    CHECK_OK(deid_text_phi_add(extra, DEID_TEXT_PHI_NAME, "SMITH"));
    res = NULL;
    CHECK_OK(deid_text_process(e, ds, extra, &res));
    size_t pix = count_source(res, DEID_TEXT_SOURCE_PIXELS, DEID_TEXT_REDACTED), ov_phi = 0;
    CHECK(pix >= 1);
    for (size_t i = 0; i < deid_text_result_count(res); i++) {
        const deid_text_region *r = deid_text_result_region(res, i);
        if (r->source == DEID_TEXT_SOURCE_PIXELS && r->decision == DEID_TEXT_REDACTED)
            CHECK(r->phi != DEID_TEXT_PHI_NONE);
        ov_phi += r->source == 1 && r->phi == DEID_TEXT_PHI_NAME;
    }
    CHECK(ov_phi >= 1); /* "SMITH" came from the extra set */
    deid_text_phi_free(extra);
    deid_text_result_free(res);
    deid_dataset_free(ds);
    deid_text_engine_free(e);
}

static void test_process_lossy_and_failure(void)
{
    deid_text_engine *e = engine_with(DEID_TEXT_REDACT_ALL);
    if (!e)
        return;
    /* a JPEG baseline object stays JPEG baseline */
    deid_dataset *ds = text_object("1.2.840.10008.1.2.1", 0);
    deid_image *img = NULL;
    CHECK_OK(deid_image_decode(ds, 0, 0, 0, &img));
    CHECK_OK(deid_dataset_set_pixels(ds, img, NULL));
    deid_image_free(img);
    CHECK(!strcmp(deid_dataset_transfer_syntax(ds), "1.2.840.10008.1.2.4.50"));
    deid_text_result *res = NULL;
    CHECK_OK(deid_text_process(e, ds, NULL, &res));
    CHECK(count_source(res, DEID_TEXT_SOURCE_PIXELS, DEID_TEXT_REDACTED) >= 1);
    CHECK(!strcmp(deid_dataset_transfer_syntax(ds), "1.2.840.10008.1.2.4.50"));
    deid_text_result_free(res);
    deid_dataset_free(ds);
    deid_text_engine_free(e);

    /* a failure (too many samples) leaves the object as it was and *out untouched */
    deid_text_options o = DEID_TEXT_OPTIONS_INIT;
    o.max_samples = 1000;
    e = NULL;
    CHECK_OK(deid_text_engine_new(&o, &e));
    if (!e)
        return;
    ds = text_object("1.2.840.10008.1.2.1", 1);
    void *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    CHECK_OK(deid_dataset_write_memory(ds, &a, &na));
    res = NULL;
    CHECK(deid_text_process(e, ds, NULL, &res) == DEID_ERR_LIMIT);
    CHECK(res == NULL);
    CHECK_OK(deid_dataset_write_memory(ds, &b, &nb));
    CHECK(na == nb && a && b && !memcmp(a, b, na));
    deid_free(a);
    deid_free(b);
    deid_dataset_free(ds);
    deid_text_engine_free(e);
}

/* Real objects with overlays: Overlay Data planes (MR) and overlays in the high bits of JPEG
 * lossless pixels (XA); every group goes, the pixels keep only their stored bits. */
static void test_real_overlays(void)
{
    static const char *const files[] = {"text/dicompixelanon_MR-SIEMENS-DICOM-WithOverlays.dcm",
                                        "text/dicompixelanon_XA_GE_JPEG_02_with_Overlays.dcm"};
    deid_text_engine *e = engine_with(DEID_TEXT_REDACT_ALL);
    if (!e)
        return;
    for (size_t f = 0; f < 2; f++) {
        deid_dataset *ds = check_load_shared(files[f]);
        if (!ds)
            continue;
        CHECK(has_overlay_group(ds));
        deid_text_result *res = NULL;
        double t = deid__now();
        deid_status st = deid_text_process(e, ds, NULL, &res);
        t = deid__now() - t;
        CHECK(st == DEID_OK || st == DEID_ERR_GENERIC);
        if (st != DEID_OK) { /* refused: the object is as it was */
            fprintf(stderr, "%s: %s\n", files[f], deid_last_error());
            CHECK(has_overlay_group(ds));
        }
        deid_text_stats s;
        deid_text_result_stats(res, &s);
        printf("%s: %.2f s, %zu planes searched, %zu regions (%zu in overlays): %zu redacted, "
               "%zu review, %zu kept, %zu residual\n",
               files[f], t, s.frames, s.merged,
               s.merged - count_source(res, 0, DEID_TEXT_REDACTED) -
                   count_source(res, 0, DEID_TEXT_REVIEW) - count_source(res, 0, DEID_TEXT_KEPT),
               s.redacted, s.review, s.kept, s.residual);
        if (st == DEID_OK) {
            CHECK(!has_overlay_group(ds));
            char bia[8];
            burned_in(ds, bia, sizeof bia);
            CHECK(!strcmp(bia, s.redacted == s.merged ? "NO" : "YES"));
            const char *ts = deid_dataset_transfer_syntax(ds);
            CHECK(strcmp(ts, "1.2.840.10008.1.2.4.50") != 0); /* lossless inputs */
            deid_image *img = NULL;
            CHECK_OK(deid_image_decode(ds, 0, 0, 0, &img));
            if (img && f == 1) { /* XA: 8 bits stored, overlays were in bits 8-15 */
                const uint16_t *p = (const uint16_t *)(const void *)img->data;
                size_t high = 0;
                for (size_t i = 0; i < img->size / 2; i++)
                    high += p[i] > 255;
                CHECK(high == 0);
                const void *raw;
                size_t n;
                CHECK_OK(deid_dataset_get(ds, DEID_TAG(0x7FE0, 0x0010), &raw, &n));
                const uint16_t *q = raw;
                high = 0;
                for (size_t i = 0; raw && i < n / 2; i++)
                    high += q[i] > 255; /* the stored value too, not only the decoded one */
                CHECK(high == 0);
            }
            deid_image_free(img);
        }
        deid_text_result_free(res);
        deid_dataset_free(ds);
    }
    deid_text_engine_free(e);
}

/* A PNG and a JPEG file: the text is redacted and the format kept. */
static void test_raster_files(void)
{
    deid_text_engine *e = engine_with(DEID_TEXT_REDACT_ALL);
    if (!e)
        return;
    deid_image *img = deid__image_new(1, ROWS, COLS, 1, 8, 0, "MONOCHROME2");
    memset(img->data, BACKGROUND, img->size);
    draw(img->data, ROWS, COLS, 20, 40, 4, "DOE JOHN 12345", 230);
    static const int formats[] = {DEID_RASTER_PNG, DEID_RASTER_JPEG};
    static const char *const names[] = {"in.png", "in.jpg"};
    for (size_t i = 0; i < 2; i++) {
        char in[4096], out[4096];
        snprintf(in, sizeof in, "%s", tmp_path(names[i]));
        snprintf(out, sizeof out, "%s", tmp_path(i ? "out.jpg" : "out.png"));
        CHECK_OK(deid_image_write_raster(img, 0, in, formats[i], 95));
        deid_text_result *res = NULL;
        CHECK_OK(deid_text_process_file(e, in, out, NULL, &res));
        CHECK(count_source(res, DEID_TEXT_SOURCE_PIXELS, DEID_TEXT_REDACTED) >= 1);
        CHECK(deid_raster_format_of(out) == formats[i]);
        deid_image *back = NULL;
        int fmt = 0;
        CHECK_OK(deid_image_read_raster(out, 0, &back, &fmt));
        if (back) {
            size_t bright = 0; /* text pixels were 230 on 30 */
            for (size_t k = 0; k < back->size; k++)
                bright += back->data[k] > 130;
            CHECK(bright == 0);
        }
        deid_image_free(back);
        deid_text_result_free(res);
    }
    deid_text_result *res = NULL;
    CHECK(deid_text_process_file(e, tmp_path("missing.png"), NULL, NULL, &res) != DEID_OK);
    CHECK(res == NULL);
    deid_image_free(img);
    deid_text_engine_free(e);
}

int main(void)
{
    if (!(tmpdir = check_tmpdir("deid_text_stage")))
        return 1;
    test_result_json();
    test_fill_solid();
    test_fill_inpaint();
    test_inpaint_speed();
    test_redact_refusals();
    if (has_tesseract()) {
        test_process_all();
        test_clip_steady();
        test_process_none_and_phi();
        test_process_lossy_and_failure();
        test_real_overlays();
        test_raster_files();
    } else {
        printf("note: built without Tesseract, skipping the detection cases\n");
    }
    return check_done("test_text_stage");
}
