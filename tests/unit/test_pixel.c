/* Pixel editing: masks blank exactly what they say in every frame and sample; palette and YBR
 * images become the RGB pydicom computes; JPEG re-encoding keeps the picture (PSNR) and makes a
 * header dciodvfy accepts; the uncompressed codec round-trips exactly; overview PNGs are valid;
 * refused inputs leave the dataset as it was. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"
#include "core/core.h"
#include "deid/deid.h"
#include "dicom/dataset_int.h"
#include "pixel/pixel_int.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static const char *tmpdir; /* check_tmpdir */

static const char *tmp_path(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

static uint32_t rng = 12345u;
static uint32_t next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static deid_image *random_image(size_t frames, size_t rows, size_t cols, size_t samples,
                                unsigned bits, const char *pi)
{
    deid_image *img = deid__image_new(frames, rows, cols, samples, bits, 0, pi);
    CHECK(img != NULL);
    if (img)
        for (size_t i = 0; i < img->size; i++)
            img->data[i] = (uint8_t)(next_random() | 1u); /* never 0: blanking shows */
    return img;
}

/* A disc-shaped mask (1 inside). */
static uint8_t *disc_mask(size_t rows, size_t cols)
{
    uint8_t *m = malloc(rows * cols);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            double dy = (double)r - rows / 2.0, dx = (double)c - cols / 2.0;
            m[r * cols + c] = dx * dx + dy * dy < (rows / 2.5) * (rows / 2.5);
        }
    return m;
}

/* PSNR of 8-bit samples; with a mask (pixels of `px` samples, one mask byte per pixel,
 * repeating every frame), over the kept pixels only. */
static double psnr_kept(const uint8_t *a, const uint8_t *b, size_t n, const uint8_t *mask,
                        size_t npx, size_t px)
{
    double se = 0;
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        if (mask && !mask[(i / px) % npx])
            continue;
        double d = (double)a[i] - (double)b[i];
        se += d * d;
        used++;
    }
    if (se == 0)
        return 99.0;
    return 10.0 * log10(255.0 * 255.0 / (se / (double)used));
}

/* PSNR of luma (BT.601 weights) of two RGB images over the kept pixels. */
static double luma_psnr_kept(const uint8_t *a, const uint8_t *b, size_t n, const uint8_t *mask,
                             size_t npx)
{
    double se = 0;
    size_t used = 0;
    for (size_t i = 0; i + 2 < n; i += 3) {
        if (!mask[(i / 3) % npx])
            continue;
        double ya = 0.299 * a[i] + 0.587 * a[i + 1] + 0.114 * a[i + 2];
        double yb = 0.299 * b[i] + 0.587 * b[i + 1] + 0.114 * b[i + 2];
        se += (ya - yb) * (ya - yb);
        used++;
    }
    if (se == 0)
        return 99.0;
    return 10.0 * log10(255.0 * 255.0 / (se / (double)used));
}

static double psnr8(const uint8_t *a, const uint8_t *b, size_t n)
{
    return psnr_kept(a, b, n, NULL, 1, 1);
}

static int text_is(const deid_dataset *ds, uint32_t tag, const char *want)
{
    char buf[256];
    if (deid_dataset_get_string(ds, tag, buf, sizeof buf) != DEID_OK)
        return 0;
    if (strcmp(buf, want)) {
        fprintf(stderr, "(%04X,%04X) is \"%s\", expected \"%s\"\n", (unsigned)(tag >> 16),
                (unsigned)(tag & 0xFFFF), buf, want);
        return 0;
    }
    return 1;
}

static long us_of(const deid_dataset *ds, uint32_t tag)
{
    const void *v;
    size_t n;
    if (deid_dataset_get(ds, tag, &v, &n) != DEID_OK || n != 2)
        return -1;
    return ((const uint8_t *)v)[0] | ((const uint8_t *)v)[1] << 8;
}

/* A minimal US Multi-frame object with the given pixels (stored uncompressed). */
static deid_dataset *synthetic(const deid_image *img)
{
    deid_dataset *ds = deid__dataset_new("synthetic");
    CHECK_OK(deid_dataset_set_string(ds, 0x00080016u, "1.2.840.10008.5.1.4.1.1.3.1"));
    CHECK_OK(deid_dataset_set_string(ds, 0x00080018u, "2.25.1234567890"));
    CHECK_OK(deid_dataset_set_string(ds, 0x00080060u, "US"));
    deid_encode_options o = DEID_ENCODE_OPTIONS_INIT;
    o.codec = DEID_CODEC_UNCOMPRESSED;
    CHECK_OK(deid_dataset_set_pixels(ds, img, &o));
    return ds;
}

/* Write, read back and decode all frames. */
static deid_image *reread(const deid_dataset *ds, deid_dataset **back)
{
    void *data = NULL;
    size_t size = 0;
    deid_image *img = NULL;
    *back = NULL;
    CHECK_OK(deid_dataset_write_memory(ds, &data, &size));
    if (!data)
        return NULL;
    CHECK_OK(deid_dataset_read_memory(data, size, "reread", NULL, back));
    deid_free(data);
    if (*back)
        CHECK_OK(deid_image_decode(*back, 0, 0, 0, &img));
    return img;
}

/* ---- the struct shared with the decoder --------------------------------------------------- */

static void test_layout_agrees_with_decoder(void)
{
    deid_image *src = random_image(2, 5, 7, 3, 8, "RGB");
    deid_dataset *ds = synthetic(src);
    deid_image *img = NULL;
    CHECK_OK(deid_image_decode(ds, 0, 0, 0, &img));
    if (img) {
        CHECK(img->frames == deid_image_frames(img) && img->rows == deid_image_rows(img));
        CHECK(img->cols == deid_image_cols(img) && img->samples == deid_image_samples(img));
        CHECK(img->bits == deid_image_bits(img) && img->is_signed == deid_image_signed(img));
        CHECK(img->photometric == deid_image_photometric(img));
        CHECK((void *)img->data == deid_image_data(img) && img->size == deid_image_size_bytes(img));
        CHECK(img->size == src->size && !memcmp(img->data, src->data, src->size));
    }
    deid_image_free(img);
    deid_image_free(src);
    deid_dataset_free(ds);
}

/* ---- masking ------------------------------------------------------------------------------ */

static void check_masked(const deid_image *before, const deid_image *after, const uint8_t *mask)
{
    size_t px = before->samples * before->bits / 8, npx = before->rows * before->cols;
    size_t bad_out = 0, bad_in = 0;
    for (size_t f = 0; f < before->frames; f++)
        for (size_t p = 0; p < npx; p++) {
            size_t o = (f * npx + p) * px;
            for (size_t b = 0; b < px; b++) {
                if (!mask[p] && after->data[o + b] != 0)
                    bad_out++;
                if (mask[p] && after->data[o + b] != before->data[o + b])
                    bad_in++;
            }
        }
    if (bad_out || bad_in)
        fprintf(stderr, "%s %zu-bit x%zu: %zu bytes outside not 0, %zu inside changed\n",
                before->photometric, (size_t)before->bits, before->samples, bad_out, bad_in);
    CHECK(bad_out == 0 && bad_in == 0);
}

static void test_mask(void)
{
    static const struct {
        size_t samples;
        unsigned bits;
        const char *pi;
    } kinds[] = {{1, 8, "MONOCHROME2"}, {3, 8, "RGB"}, {1, 16, "MONOCHROME2"}, {3, 16, "RGB"}};
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        size_t rows = 61, cols = 83, frames = 5;
        deid_image *img = random_image(frames, rows, cols, kinds[k].samples, kinds[k].bits,
                                       kinds[k].pi);
        deid_image *orig = random_image(frames, rows, cols, kinds[k].samples, kinds[k].bits,
                                        kinds[k].pi);
        memcpy(orig->data, img->data, img->size);
        uint8_t *mask = disc_mask(rows, cols);
        mask[0] = 1;                      /* a kept pixel at a row start */
        mask[rows * cols - 1] = 1;        /* and at the very end */
        mask[(rows / 2) * cols + 3] = 0;  /* a lone blank one inside a kept run */
        CHECK_OK(deid_image_apply_mask(img, mask));
        check_masked(orig, img, mask);
        free(mask);
        deid_image_free(img);
        deid_image_free(orig);
    }
    CHECK(deid_image_apply_mask(NULL, (const uint8_t *)"") == DEID_ERR_ARGUMENT);
}

/* ---- colour conversion -------------------------------------------------------------------- */

/* pydicom's own expansion of `path` (all frames, RGB, uint8: 16-bit entries >> 8), or NULL
 * when Debian's Python with pydicom cannot run here. */
static uint8_t *pydicom_rgb(const char *path, const char *how, size_t expect)
{
    const char *script = tmp_path("ref.py"), *raw = tmp_path("ref.raw");
    FILE *f = fopen(script, "w");
    if (!f)
        return NULL;
    fputs("import sys, numpy as np, pydicom\n"
          "from pydicom.pixel_data_handlers.util import apply_color_lut, convert_color_space\n"
          "ds = pydicom.dcmread(sys.argv[1])\n"
          "a = ds.pixel_array\n"
          "if sys.argv[3] == 'palette':\n"
          "    a = apply_color_lut(a, ds)\n"
          "    if a.dtype != np.uint8: a = (a >> 8).astype(np.uint8)\n"
          "else:\n"
          "    a = convert_color_space(a, 'YBR_FULL', 'RGB')\n"
          "open(sys.argv[2], 'wb').write(np.ascontiguousarray(a, dtype=np.uint8).tobytes())\n",
          f);
    fclose(f);
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' '%s' %s 2>/dev/null", script, path, raw,
             how);
    if (system(cmd) != 0) {
        fprintf(stderr, "note: pydicom reference for %s not available, skipping\n", path);
        return NULL;
    }
    char *data = NULL;
    size_t size = 0;
    if (deid__read_file(raw, (uint64_t)1 << 32, &data, &size) != DEID_OK || size != expect) {
        fprintf(stderr, "%s: pydicom reference has %zu bytes, expected %zu\n", path, size,
                expect);
        check_failures++;
        free(data);
        return NULL;
    }
    return (uint8_t *)data;
}

static void test_palette(const char *rel, size_t frames)
{
    deid_dataset *ds = check_load_shared(rel);
    if (!ds)
        return;
    deid_image *idx = NULL, *rgb = NULL;
    CHECK_OK(deid_image_decode(ds, 0, 0, 0, &idx));
    if (idx)
        CHECK_OK(deid_image_to_rgb(idx, ds, &rgb));
    if (rgb) {
        CHECK(!strcmp(deid_image_photometric(rgb), "RGB") && deid_image_samples(rgb) == 3);
        CHECK(deid_image_frames(rgb) == frames && deid_image_bits(rgb) == 8);
        uint8_t *ref = pydicom_rgb(check_shared(rel), "palette", rgb->size);
        if (ref) {
            size_t diff = 0;
            for (size_t i = 0; i < rgb->size; i++)
                diff += ref[i] != rgb->data[i];
            if (diff)
                fprintf(stderr, "%s: %zu of %zu samples differ from pydicom\n", rel, diff,
                        rgb->size);
            CHECK(diff == 0);
            free(ref);
        }
    }
    CHECK(deid_image_to_rgb(idx, NULL, &rgb) == DEID_ERR_ARGUMENT); /* tables needed */
    deid_image_free(idx);
    deid_image_free(rgb);
    deid_dataset_free(ds);
}

static void test_ybr(void)
{
    deid_dataset *ds = check_load_shared("us/orthanc_Issue19_ATL_sector.dcm");
    if (!ds)
        return;
    deid_image *ybr = NULL, *rgb = NULL;
    CHECK_OK(deid_image_decode(ds, 0, 0, 0, &ybr));
    if (ybr) {
        CHECK(!strcmp(deid_image_photometric(ybr), "YBR_FULL"));
        CHECK_OK(deid_image_to_rgb(ybr, NULL, &rgb));
    }
    if (rgb) {
        CHECK(!strcmp(deid_image_photometric(rgb), "RGB"));
        uint8_t *ref = pydicom_rgb(check_shared("us/orthanc_Issue19_ATL_sector.dcm"), "ybr",
                                   rgb->size);
        if (ref) {
            size_t far = 0;
            for (size_t i = 0; i < rgb->size; i++)
                far += abs((int)ref[i] - (int)rgb->data[i]) > 1;
            if (far)
                fprintf(stderr, "YBR_FULL: %zu samples differ from pydicom by more than 1\n",
                        far);
            CHECK(far == 0);
            free(ref);
        }
    }
    deid_image_free(ybr);
    deid_image_free(rgb);
    deid_dataset_free(ds);
    /* grey levels and pure primaries */
    uint8_t px[4][3] = {{128, 128, 128}, {0, 128, 128}, {76, 85, 255}, {255, 128, 128}};
    deid__ybr_full_to_rgb(&px[0][0], &px[0][0], 4);
    CHECK(px[0][0] == 128 && px[0][1] == 128 && px[0][2] == 128);
    CHECK(px[1][0] == 0 && px[1][1] == 0 && px[1][2] == 0);
    CHECK(px[2][0] >= 253 && px[2][1] <= 2 && px[2][2] <= 2);
    CHECK(px[3][0] == 255 && px[3][1] == 255 && px[3][2] == 255);
}

/* ---- re-encoding -------------------------------------------------------------------------- */

static void test_uncompressed_exact(void)
{
    static const struct {
        size_t samples;
        unsigned bits;
        const char *pi;
    } kinds[] = {{1, 8, "MONOCHROME2"}, {3, 8, "RGB"}, {1, 16, "MONOCHROME2"}};
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        deid_image *src = random_image(3, 31, 45, kinds[k].samples, kinds[k].bits, kinds[k].pi);
        deid_dataset *ds = synthetic(src), *back = NULL;
        deid_image *got = reread(ds, &back);
        CHECK(got && got->size == src->size && !memcmp(got->data, src->data, src->size));
        if (back) {
            CHECK(!strcmp(deid_dataset_transfer_syntax(back), "1.2.840.10008.1.2.1"));
            CHECK(text_is(back, 0x00280004u, kinds[k].pi));
            CHECK(us_of(back, 0x00280100u) == (long)kinds[k].bits);
            CHECK(text_is(back, 0x00280008u, "3"));
            CHECK(!deid_dataset_has(back, 0x00282110u)); /* not made lossy */
        }
        deid_image_free(got);
        deid_image_free(src);
        deid_dataset_free(ds);
        deid_dataset_free(back);
    }
}

/* dciodvfy's "Error" lines for a file, one string (sorted by dciodvfy's own order). */
static char *dciodvfy_errors(const char *path)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "dciodvfy '%s' 2>&1", path);
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    deid_buf out = {NULL, 0, 0};
    char line[4096];
    deid__buf_append(&out, "", 0);
    while (fgets(line, sizeof line, p))
        if (!strncmp(line, "Error", 5))
            deid__buf_append(&out, line, strlen(line));
    int rc = pclose(p);
    if (rc == -1 || (WIFEXITED(rc) && WEXITSTATUS(rc) == 127)) {
        deid__buf_free(&out);
        return NULL;
    }
    return out.data;
}

/* Every Error line of the output also appears for the input. */
static void check_dciodvfy(const char *input, const char *output)
{
    char *a = dciodvfy_errors(input), *b = dciodvfy_errors(output);
    if (!a || !b) {
        fprintf(stderr, "note: dciodvfy not available, skipping the validation\n");
    } else {
        size_t fresh = 0;
        for (char *line = b; *line;) {
            char *end = strchr(line, '\n');
            size_t n = end ? (size_t)(end - line + 1) : strlen(line);
            char *l = deid__strndup(line, n);
            if (!strstr(a, l)) {
                fprintf(stderr, "%s: new dciodvfy %s", output, l);
                fresh++;
            }
            free(l);
            line += n;
        }
        CHECK(fresh == 0);
    }
    free(a);
    free(b);
}

typedef struct clip {
    const char *file;
    int palette;       /* expand with deid_image_to_rgb first */
    const char *pi;    /* expected Photometric Interpretation of the JPEG output */
    double min_psnr;   /* over all samples inside the mask, at q95 (luma: always 35 dB) */
    int chroma;        /* deid_chroma */
} clip;

/* Values in a backslash-separated text value. */
static size_t count_values(const char *s)
{
    size_t n = *s ? 1 : 0;
    for (; *s; s++)
        n += *s == '\\';
    return n;
}

/* Decoded pixels of a clip, expanded to RGB when it is a palette clip. */
static deid_image *clip_pixels(const deid_dataset *ds, const clip *c)
{
    deid_image *in = NULL, *rgb = NULL;
    CHECK_OK(deid_image_decode(ds, 0, 0, 0, &in));
    if (!in || !c->palette)
        return in;
    CHECK_OK(deid_image_to_rgb(in, ds, &rgb));
    deid_image_free(in);
    return rgb;
}

static void check_jpeg_header(const deid_dataset *back, const deid_image *in, const clip *c,
                              size_t methods_before)
{
    CHECK(!strcmp(deid_dataset_transfer_syntax(back), "1.2.840.10008.1.2.4.50"));
    CHECK(text_is(back, 0x00020010u, "1.2.840.10008.1.2.4.50"));
    CHECK(text_is(back, 0x00280004u, c->pi));
    CHECK(us_of(back, 0x00280002u) == (long)in->samples);
    CHECK(us_of(back, 0x00280100u) == 8 && us_of(back, 0x00280101u) == 8);
    CHECK(us_of(back, 0x00280102u) == 7 && us_of(back, 0x00280103u) == 0);
    CHECK(in->samples == 1 ? !deid_dataset_has(back, 0x00280006u)
                           : us_of(back, 0x00280006u) == 0);
    CHECK(text_is(back, 0x00282110u, "01"));
    char method[64] = "", ratio[64] = "";
    CHECK_OK(deid_dataset_get_string(back, 0x00282114u, method, sizeof method));
    CHECK_OK(deid_dataset_get_string(back, 0x00282112u, ratio, sizeof ratio));
    printf("%s: Lossy Image Compression Ratio \"%s\", Method \"%s\"\n", c->file, ratio, method);
    CHECK(count_values(method) == methods_before + 1 && strstr(method, "ISO_10918_1"));
    CHECK(!deid_dataset_has(back, 0x00281201u) && !deid_dataset_has(back, 0x00281101u));
    const deid_elem *px = deid__item_find(&back->root, 0x7FE00010u);
    CHECK(px && px->encapsulated && px->nfrags == in->frames + 1);
    CHECK(px && px->frags[0].len == 4 * in->frames); /* basic offset table filled */
}

static void test_jpeg_round_trip(const clip *c)
{
    deid_dataset *ds = check_load_shared(c->file), *back = NULL;
    if (!ds)
        return;
    char lossy[8] = "", method[64] = "";
    deid_dataset_get_string(ds, 0x00282110u, lossy, sizeof lossy);
    deid_dataset_get_string(ds, 0x00282114u, method, sizeof method);
    size_t methods_before = strcmp(lossy, "01") ? 0 : count_values(method);
    deid_image *in = clip_pixels(ds, c), *got = NULL, *ref = NULL;
    if (!in) {
        deid_dataset_free(ds);
        return;
    }
    uint8_t *mask = disc_mask(in->rows, in->cols);
    CHECK_OK(deid_image_apply_mask(in, mask));
    /* what the output should look like: YBR input is encoded as it is, decoded as RGB */
    CHECK_OK(deid_image_to_rgb(in, NULL, &ref));
    deid_encode_options o;
    CHECK_OK(deid_encode_options_init(&o, DEID_ENCODE_OPTIONS_VERSION));
    CHECK(o.quality == 95 && o.codec == DEID_CODEC_JPEG_BASELINE);
    o.chroma = c->chroma;
    double t0 = deid__now();
    CHECK_OK(deid_dataset_set_pixels(ds, in, &o));
    double t1 = deid__now();
    char name[128];
    snprintf(name, sizeof name, "%s%s", strrchr(c->file, '/') + 1,
             c->chroma == DEID_CHROMA_444 ? ".444" : "");
    CHECK_OK(deid_dataset_write_file(ds, tmp_path(name)));
    CHECK_OK(deid_dataset_read_file(tmp_path(name), NULL, &back));
    if (back)
        CHECK_OK(deid_image_decode(back, 0, 0, 0, &got));
    if (got) {
        CHECK(got->frames == in->frames && got->rows == in->rows && got->cols == in->cols);
        CHECK(got->samples == in->samples && got->bits == 8);
        /* over the kept pixels only: the blanked ones are trivially exact */
        double q = ref && got->size == ref->size
                       ? psnr_kept(ref->data, got->data, ref->size, mask, in->rows * in->cols,
                                   in->samples)
                       : 0;
        printf("%s: %zu frames %zux%zux%zu -> JPEG q95 %s: PSNR %.1f dB inside the mask, "
               "%.0f frames/s encode\n",
               name, in->frames, in->rows, in->cols, in->samples, c->pi, q,
               (double)in->frames / (t1 - t0));
        double y = in->samples == 3 && ref && got->size == ref->size
                       ? luma_psnr_kept(ref->data, got->data, ref->size, mask,
                                        in->rows * in->cols)
                       : q;
        if (in->samples == 3)
            printf("%s: luma PSNR %.1f dB inside the mask\n", name, y);
        CHECK(q >= c->min_psnr && y >= 35.0);
        /* the mask survives re-encoding: far outside the disc stays black */
        CHECK(got->data[0] < 8 && got->data[got->size - 1] < 8);
    }
    free(mask);
    if (back) {
        check_jpeg_header(back, in, c, methods_before);
        if (c->chroma == DEID_CHROMA_422)
            check_dciodvfy(check_shared(c->file), tmp_path(name));
    }
    deid_image_free(in);
    deid_image_free(ref);
    deid_image_free(got);
    deid_dataset_free(ds);
    deid_dataset_free(back);
}

static void test_jpeg_clips(void)
{
    static const clip clips[] = {
        {"us/deid-data_GREYSCALE_CINE.dcm", 0, "MONOCHROME2", 35.0, DEID_CHROMA_422},
        {"us/orthanc_Issue16_HP_echo_34f.dcm", 0, "YBR_FULL_422", 35.0, DEID_CHROMA_422},
        {"us/orthanc_Issue19_ATL_sector.dcm", 0, "YBR_FULL_422", 35.0, DEID_CHROMA_422},
        {"us/pydicom-data_OBXXXX1A_rle_2frame.dcm", 1, "YBR_FULL_422", 35.0, DEID_CHROMA_422},
        /* Saturated colour Doppler and colour text: 4:2:2 chroma loses colour edges (about
         * 33 dB over RGB, 35 even at q100) while luma stays above 44 dB; 4:4:4 keeps them
         * (over 45 dB) but writes YBR_FULL, which dciodvfy does not accept for US. */
        {"us/pydicom-data_US1_UNCR.dcm", 0, "YBR_FULL_422", 32.0, DEID_CHROMA_422},
        {"us/dbdicom_UltrasoundPaletteColor_0020.dcm", 1, "YBR_FULL_422", 32.0, DEID_CHROMA_422},
        {"us/dbdicom_UltrasoundPaletteColor_0020.dcm", 1, "YBR_FULL", 40.0, DEID_CHROMA_444},
    };
    for (size_t i = 0; i < sizeof clips / sizeof *clips; i++)
        test_jpeg_round_trip(&clips[i]);
}

/* 4:4:4 gives YBR_FULL; a lossy object's ratio and method gain a value each. */
static void test_jpeg_options(void)
{
    deid_image *src = random_image(2, 40, 48, 3, 8, "RGB");
    for (size_t f = 0; f < 2; f++) /* smooth content, so that JPEG keeps it well */
        for (size_t y = 0; y < 40; y++)
            for (size_t x = 0; x < 48; x++) {
                uint8_t *p = src->data + ((f * 40 + y) * 48 + x) * 3;
                p[0] = (uint8_t)(x * 5), p[1] = (uint8_t)(y * 6), p[2] = 128;
            }
    deid_dataset *ds = synthetic(src), *back = NULL;
    deid_encode_options o = DEID_ENCODE_OPTIONS_INIT;
    o.chroma = DEID_CHROMA_444;
    o.quality = 90;
    CHECK_OK(deid_dataset_set_pixels(ds, src, &o));
    CHECK(text_is(ds, 0x00280004u, "YBR_FULL") && text_is(ds, 0x00282114u, "ISO_10918_1"));
    CHECK_OK(deid_dataset_set_pixels(ds, src, NULL));
    CHECK(text_is(ds, 0x00280004u, "YBR_FULL_422"));
    CHECK(text_is(ds, 0x00282114u, "ISO_10918_1\\ISO_10918_1"));
    char ratio[64] = "";
    deid_dataset_get_string(ds, 0x00282112u, ratio, sizeof ratio);
    CHECK(strchr(ratio, '\\') != NULL);
    deid_image *got = reread(ds, &back);
    CHECK(got && got->size == src->size && psnr8(src->data, got->data, src->size) > 35);
    deid_image_free(got);
    deid_dataset_free(back);
    /* bad options */
    o.version = 99;
    CHECK(deid_dataset_set_pixels(ds, src, &o) == DEID_ERR_ARGUMENT);
    o = (deid_encode_options)DEID_ENCODE_OPTIONS_INIT;
    o.quality = 101;
    CHECK(deid_dataset_set_pixels(ds, src, &o) == DEID_ERR_ARGUMENT);
    CHECK(deid_encode_options_init(&o, 2) == DEID_ERR_ARGUMENT);
    CHECK(deid_default_jpeg_quality() == 95);
    deid_image_free(src);
    deid_dataset_free(ds);
}

/* Refused images leave the dataset byte for byte as it was. */
static void test_refusals_leave_dataset(void)
{
    deid_image *grey16 = random_image(2, 16, 16, 1, 16, "MONOCHROME2");
    deid_image *pal = random_image(1, 16, 16, 1, 8, "PALETTE COLOR");
    deid_dataset *ds = synthetic(grey16);
    void *before = NULL, *after = NULL;
    size_t nb = 0, na = 0;
    CHECK_OK(deid_dataset_write_memory(ds, &before, &nb));
    CHECK(deid_dataset_set_pixels(ds, grey16, NULL) == DEID_ERR_UNSUPPORTED);
    CHECK(strstr(deid_last_error(), "16-bit") != NULL);
    CHECK(deid_dataset_set_pixels(ds, pal, NULL) == DEID_ERR_UNSUPPORTED);
    CHECK(strstr(deid_last_error(), "deid_image_to_rgb") != NULL);
    CHECK_OK(deid_dataset_write_memory(ds, &after, &na));
    CHECK(before && after && na == nb && !memcmp(before, after, nb));
    deid_free(before);
    deid_free(after);
    deid_image_free(grey16);
    deid_image_free(pal);
    deid_dataset_free(ds);
}

/* ---- overview ----------------------------------------------------------------------------- */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void check_png(const char *path, uint32_t width, uint32_t min_height)
{
    char *data = NULL;
    size_t size = 0;
    CHECK_OK(deid__read_file(path, 1u << 30, &data, &size));
    if (!data)
        return;
    const uint8_t *d = (const uint8_t *)data;
    CHECK(size > 33 && !memcmp(d, "\x89PNG\r\n\x1a\n", 8) && !memcmp(d + 12, "IHDR", 4));
    if (size > 33) {
        if (be32(d + 16) != width || be32(d + 20) < min_height)
            fprintf(stderr, "%s: PNG %ux%u, expected width %u, height >= %u\n", path,
                    (unsigned)be32(d + 16), (unsigned)be32(d + 20), (unsigned)width,
                    (unsigned)min_height);
        CHECK(be32(d + 16) == width && be32(d + 20) >= min_height);
        CHECK(d[24] == 8 && d[25] == 2); /* 8-bit RGB */
    }
    free(data);
}

static void test_overview(void)
{
    /* small grey image: no scaling; 16-bit and MONOCHROME1 go through the display path */
    deid_image *a = random_image(2, 100, 120, 1, 16, "MONOCHROME1");
    deid_image *b = random_image(2, 100, 120, 1, 16, "MONOCHROME1");
    uint8_t *mask = disc_mask(100, 120);
    CHECK_OK(deid_overview_png(a, b, mask, "detector: model-free  confidence 0.93",
                               tmp_path("small.png")));
    check_png(tmp_path("small.png"), 2 * 120 + 8, 100 + 16);
    CHECK_OK(deid_overview_png(a, NULL, NULL, NULL, tmp_path("alone.png")));
    check_png(tmp_path("alone.png"), 120, 100);
    free(mask);
    deid_image_free(a);
    deid_image_free(b);
    /* 1080x1920 RGB: each half scaled down by 2 */
    a = random_image(1, 1080, 1920, 3, 8, "RGB");
    mask = disc_mask(1080, 1920);
    CHECK_OK(deid_overview_png(a, a, mask, "caption", tmp_path("large.png")));
    check_png(tmp_path("large.png"), 2 * 960 + 8, 540 + 16);
    /* sizes that disagree, NULL arguments */
    b = random_image(1, 10, 10, 3, 8, "RGB");
    CHECK(deid_overview_png(a, b, mask, NULL, tmp_path("bad.png")) == DEID_ERR_ARGUMENT);
    CHECK(deid_overview_png(NULL, b, NULL, NULL, tmp_path("bad.png")) == DEID_ERR_ARGUMENT);
    CHECK(access(tmp_path("bad.png"), F_OK) != 0);
    free(mask);
    deid_image_free(a);
    deid_image_free(b);
    /* a real clip, for a person to look at: tests/unit leaves it in $DEID_PIXEL_KEEP if set */
    deid_dataset *ds = check_load_shared("us/orthanc_Issue16_HP_echo_34f.dcm");
    if (ds) {
        deid_image *img = NULL, *masked = NULL;
        CHECK_OK(deid_image_decode(ds, 0, 1, 0, &img));
        CHECK_OK(deid_image_decode(ds, 0, 1, 0, &masked));
        if (img && masked) {
            mask = disc_mask(img->rows, img->cols);
            CHECK_OK(deid_image_apply_mask(masked, mask));
            const char *keep = getenv("DEID_PIXEL_KEEP");
            char path[4200];
            snprintf(path, sizeof path, "%s/overview_echo.png", keep ? keep : tmpdir);
            CHECK_OK(deid_overview_png(img, masked, mask, "detector: test disc  confidence 1.00",
                                       path));
            check_png(path, 2 * 480 + 8, 430 + 16);
            free(mask);
        }
        deid_image_free(img);
        deid_image_free(masked);
        deid_dataset_free(ds);
    }
}

int main(void)
{
    if (!(tmpdir = check_tmpdir("deid_pixel")))
        return 1;
    test_layout_agrees_with_decoder();
    test_mask();
    test_palette("us/dbdicom_UltrasoundPaletteColor_0020.dcm", 11);
    test_palette("us/pydicom-data_OBXXXX1A_rle_2frame.dcm", 2);
    test_ybr();
    test_uncompressed_exact();
    test_jpeg_clips();
    test_jpeg_options();
    test_refusals_leave_dataset();
    test_overview();
    return check_done("test_pixel");
}
