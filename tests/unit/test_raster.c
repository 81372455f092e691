/* Raster files: PNG, TIFF and BMP round-trip exactly (8-bit grey, RGB; 16-bit grey in PNG and
 * TIFF), JPEG stays close at quality 95; the format is told by content, not by name; damaged,
 * huge and unwritable files fail with the right code and a message naming the file, without
 * allocating the claimed size and without leaving a temporary file behind; nothing is printed. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"
#include "deid/deid.h"
#include "deid_config.h"
#include "pixel/pixel_int.h"

static const char *tmpdir; /* check_tmpdir */

static const char *tmp_path(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

static int write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    *n = b ? fread(b, 1, (size_t)len, f) : 0;
    fclose(f);
    return b;
}

/* A smooth picture with sharp edges and every value in use, so a codec cannot cheat. */
static deid_image *make_image(size_t rows, size_t cols, size_t samples, unsigned bits,
                              const char *pi)
{
    deid_image *img = deid__image_new(2, rows, cols, samples, bits, 0, pi);
    if (!img)
        return NULL;
    size_t n = rows * cols * samples;
    for (size_t f = 0; f < 2; f++)
        for (size_t i = 0; i < n; i++) {
            size_t p = i / samples, y = p / cols, x = p % cols, s = i % samples;
            unsigned v = (unsigned)(x * 4 + y * 3 + s * 70 + f * 11) + (x / 8 % 2 ? 0 : 60);
            if (bits == 16)
                ((uint16_t *)(void *)img->data)[f * n + i] = (uint16_t)(v * 97 + x * y);
            else
                img->data[f * n + i] = (uint8_t)v;
        }
    return img;
}

static int same_frame(const deid_image *a, size_t frame, const deid_image *b)
{
    size_t n = deid__image_frame_bytes(a);
    return b->frames == 1 && b->rows == a->rows && b->cols == a->cols &&
           b->samples == a->samples && b->bits == a->bits && deid__image_frame_bytes(b) == n &&
           !memcmp(a->data + frame * n, b->data, n);
}

static void round_trip_exact(int format, const char *name, size_t samples, unsigned bits,
                             const char *pi)
{
    deid_image *img = make_image(37, 53, samples, bits, pi);
    CHECK(img != NULL);
    if (!img)
        return;
    const char *path = tmp_path(name);
    CHECK_OK(deid_image_write_raster(img, 1, path, format, 0));
    CHECK(deid_raster_format_of(path) == format);
    deid_image *back = NULL;
    int fmt = 0;
    CHECK_OK(deid_image_read_raster(path, 0, &back, &fmt));
    CHECK(fmt == format);
    if (back) {
        CHECK(same_frame(img, 1, back));
        CHECK(!strcmp(back->photometric, samples == 3 ? "RGB" : "MONOCHROME2"));
    }
    deid_image_free(back);
    deid_image_free(img);
}

static void test_round_trips(void)
{
    round_trip_exact(DEID_RASTER_PNG, "g8.png", 1, 8, "MONOCHROME2");
    round_trip_exact(DEID_RASTER_PNG, "rgb.png", 3, 8, "RGB");
    round_trip_exact(DEID_RASTER_PNG, "g16.png", 1, 16, "MONOCHROME2");
    round_trip_exact(DEID_RASTER_TIFF, "g8.tif", 1, 8, "MONOCHROME2");
    round_trip_exact(DEID_RASTER_TIFF, "rgb.tif", 3, 8, "RGB");
    round_trip_exact(DEID_RASTER_TIFF, "g16.tif", 1, 16, "MONOCHROME2");
    round_trip_exact(DEID_RASTER_BMP, "g8.bmp", 1, 8, "MONOCHROME2");
    round_trip_exact(DEID_RASTER_BMP, "rgb.bmp", 3, 8, "RGB");

    /* JPEG at quality 95: the picture survives (mean absolute error well under 2 levels). */
    for (size_t samples = 1; samples <= 3; samples += 2) {
        deid_image *img = make_image(64, 80, samples, 8, samples == 3 ? "RGB" : "MONOCHROME2");
        const char *path = tmp_path("q95.jpg");
        CHECK_OK(deid_image_write_raster(img, 0, path, DEID_RASTER_JPEG, 95));
        deid_image *back = NULL;
        int fmt = 0;
        CHECK_OK(deid_image_read_raster(path, 0, &back, &fmt));
        CHECK(fmt == DEID_RASTER_JPEG);
        if (back && img) {
            size_t n = deid__image_frame_bytes(img);
            CHECK(back->rows == 64 && back->cols == 80 && back->samples == samples &&
                  back->bits == 8 && deid__image_frame_bytes(back) == n);
            double err = 0;
            for (size_t i = 0; i < n && deid__image_frame_bytes(back) == n; i++)
                err += abs((int)img->data[i] - (int)back->data[i]);
            err /= (double)n;
            printf("JPEG q95 %zu samples: mean abs error %.3f\n", samples, err);
            CHECK(err < 2.0);
        }
        deid_image_free(back);
        deid_image_free(img);
    }
}

/* YBR_FULL is written as the RGB it stands for; 16-bit JPEG/BMP, palette and signed images,
 * unknown formats and frames out of range are refused without creating the file. */
static void test_write_refusals(void)
{
    deid_image *g16 = make_image(8, 8, 1, 16, "MONOCHROME2");
    deid_image *pal = make_image(8, 8, 1, 8, "PALETTE COLOR");
    deid_image *g8 = make_image(8, 8, 1, 8, "MONOCHROME1");
    const char *path = tmp_path("refused.img");
    CHECK(deid_image_write_raster(g16, 0, path, DEID_RASTER_JPEG, 0) == DEID_ERR_UNSUPPORTED);
    CHECK(deid_image_write_raster(g16, 0, path, DEID_RASTER_BMP, 0) == DEID_ERR_UNSUPPORTED);
    CHECK(deid_image_write_raster(pal, 0, path, DEID_RASTER_PNG, 0) == DEID_ERR_UNSUPPORTED);
    CHECK(deid_image_write_raster(g8, 2, path, DEID_RASTER_PNG, 0) == DEID_ERR_ARGUMENT);
    CHECK(deid_image_write_raster(g8, 0, path, 9, 0) == DEID_ERR_ARGUMENT);
    CHECK(deid_image_write_raster(g8, 0, path, DEID_RASTER_JPEG, 101) == DEID_ERR_ARGUMENT);
    g8->is_signed = 1;
    CHECK(deid_image_write_raster(g8, 0, path, DEID_RASTER_PNG, 0) == DEID_ERR_UNSUPPORTED);
    g8->is_signed = 0;
    CHECK(access(path, F_OK) != 0);

    /* MONOCHROME1 values are written as they are. */
    CHECK_OK(deid_image_write_raster(g8, 0, path, DEID_RASTER_PNG, 0));
    deid_image *back = NULL;
    CHECK_OK(deid_image_read_raster(path, 0, &back, NULL));
    CHECK(back && same_frame(g8, 0, back));
    deid_image_free(back);

    /* YBR_FULL (128, 128 chroma is grey) comes back as RGB with Y in every channel. */
    deid_image *ybr = deid__image_new(1, 4, 4, 3, 8, 0, "YBR_FULL");
    for (size_t i = 0; ybr && i < 16; i++) {
        ybr->data[3 * i] = (uint8_t)(i * 10);
        ybr->data[3 * i + 1] = ybr->data[3 * i + 2] = 128;
    }
    CHECK_OK(deid_image_write_raster(ybr, 0, path, DEID_RASTER_PNG, 0));
    back = NULL;
    CHECK_OK(deid_image_read_raster(path, 0, &back, NULL));
    if (back) {
        CHECK(!strcmp(back->photometric, "RGB") && back->samples == 3);
        for (size_t i = 0; i < 16; i++)
            CHECK(back->data[3 * i] == i * 10 && back->data[3 * i + 1] == i * 10 &&
                  back->data[3 * i + 2] == i * 10);
    }
    deid_image_free(back);
    deid_image_free(ybr);
    deid_image_free(g8);
    deid_image_free(pal);
    deid_image_free(g16);
}

static void test_sniffing(void)
{
    /* A PNG named .jpg is a PNG, and reads as one. */
    deid_image *img = make_image(10, 12, 3, 8, "RGB");
    CHECK_OK(deid_image_write_raster(img, 0, tmp_path("really_png.jpg"), DEID_RASTER_PNG, 0));
    CHECK(deid_raster_format_of(tmp_path("really_png.jpg")) == DEID_RASTER_PNG);
    deid_image *back = NULL;
    int fmt = 0;
    CHECK_OK(deid_image_read_raster(tmp_path("really_png.jpg"), 0, &back, &fmt));
    CHECK(fmt == DEID_RASTER_PNG && back && same_frame(img, 0, back));
    deid_image_free(back);
    deid_image_free(img);

    /* DICOM (even with a TIFF header in its preamble), text, "BM" text, empty, absent. */
    unsigned char dicom[200] = {0};
    memcpy(dicom, "II*\0", 4);
    memcpy(dicom + 128, "DICMabcd", 8);
    CHECK(write_bytes(tmp_path("a.dcm"), dicom, sizeof dicom) == 0);
    CHECK(write_bytes(tmp_path("garbage.png"), "hello, world\n", 13) == 0);
    CHECK(write_bytes(tmp_path("bm.txt"), "BM is not a bitmap, just a sentence.", 36) == 0);
    CHECK(write_bytes(tmp_path("empty.png"), "", 0) == 0);
    const char *unknown[] = {"a.dcm", "garbage.png", "bm.txt", "empty.png", "absent.png"};
    for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++) {
        CHECK(deid_raster_format_of(tmp_path(unknown[i])) == DEID_RASTER_UNKNOWN);
        deid_image *out = (deid_image *)&fmt; /* must stay untouched */
        deid_status st = deid_image_read_raster(tmp_path(unknown[i]), 0, &out, NULL);
        CHECK(st == (i == 4 ? DEID_ERR_IO : DEID_ERR_UNSUPPORTED));
        CHECK(out == (deid_image *)&fmt);
        CHECK(strstr(deid_last_error(), unknown[i]) != NULL);
    }
    CHECK(deid_raster_format_of(NULL) == DEID_RASTER_UNKNOWN);
}

/* Cut each format's file in half: a clear error naming the file, never a half picture. */
static void test_truncated(void)
{
    deid_image *img = make_image(40, 48, 3, 8, "RGB");
    deid_image *g16 = make_image(40, 48, 1, 16, "MONOCHROME2");
    const struct { int format; const char *name; deid_image *img; } cases[] = {
        {DEID_RASTER_PNG, "cut.png", img},   {DEID_RASTER_JPEG, "cut.jpg", img},
        {DEID_RASTER_TIFF, "cut.tif", img},  {DEID_RASTER_BMP, "cut.bmp", img},
        {DEID_RASTER_PNG, "cut16.png", g16}, {DEID_RASTER_TIFF, "cut16.tif", g16},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *path = tmp_path(cases[i].name);
        CHECK_OK(deid_image_write_raster(cases[i].img, 0, path, cases[i].format, 90));
        size_t n = 0;
        unsigned char *b = read_bytes(path, &n);
        CHECK(b && n > 100);
        CHECK(write_bytes(path, b, n / 2) == 0);
        free(b);
        deid_image *out = NULL;
        deid_status st = deid_image_read_raster(path, 0, &out, NULL);
        CHECK(st == DEID_ERR_UNSUPPORTED);
        CHECK(out == NULL);
        CHECK(strstr(deid_last_error(), cases[i].name) != NULL);
        if (st != DEID_ERR_UNSUPPORTED)
            fprintf(stderr, "  truncated %s: status %d\n", cases[i].name, st);
        deid_image_free(out);
    }
    deid_image_free(g16);
    deid_image_free(img);
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* Headers claiming 100000 x 100000 pixels fail with DEID_ERR_LIMIT from the header alone (the
 * files hold no pixel data: decoding would fail otherwise); max_samples is honoured exactly. */
static void test_limits(void)
{
    /* PNG: signature + IHDR with its CRC, nothing after it. */
    unsigned char png[33] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13,
                             'I', 'H', 'D', 'R'};
    put_be32(png + 16, 100000);
    put_be32(png + 20, 100000);
    png[24] = 8, png[25] = 2; /* 8-bit RGB */
    uint32_t crc = 0xffffffffu;
    for (size_t i = 12; i < 29; i++) {
        crc ^= png[i];
        for (int k = 0; k < 8; k++)
            crc = crc & 1 ? (crc >> 1) ^ 0xedb88320u : crc >> 1;
    }
    put_be32(png + 29, ~crc);
    CHECK(write_bytes(tmp_path("huge.png"), png, sizeof png) == 0);

    /* JPEG: SOI, SOF0 for 65500 x 60000 grey (libjpeg's largest), SOS, EOI. */
    unsigned char jpg[] = {0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0xEA, 0x60, 0xFF, 0xDC, 1, 1, 0x11,
                           0, 0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0, 0xFF, 0xD9};
    CHECK(write_bytes(tmp_path("huge.jpg"), jpg, sizeof jpg) == 0);

    /* BMP: BITMAPINFOHEADER, 100000 x 100000, 24 bits. */
    unsigned char bmp[54] = {'B', 'M'};
    bmp[10] = 54, bmp[14] = 40;
    bmp[18] = 0xA0, bmp[19] = 0x86, bmp[20] = 0x01; /* 100000 little-endian */
    bmp[22] = 0xA0, bmp[23] = 0x86, bmp[24] = 0x01;
    bmp[26] = 1, bmp[28] = 24;
    CHECK(write_bytes(tmp_path("huge.bmp"), bmp, sizeof bmp) == 0);

    const char *names[] = {"huge.png", "huge.jpg", "huge.bmp"};
    for (size_t i = 0; i < 3; i++) {
#if !DEID_HAVE_LEPTONICA
        if (i == 2)
            continue;
#endif
        deid_image *out = NULL;
        deid_status st = deid_image_read_raster(tmp_path(names[i]), 0, &out, NULL);
        if (st != DEID_ERR_LIMIT)
            fprintf(stderr, "  %s: status %d: %s\n", names[i], st, deid_last_error());
        CHECK(st == DEID_ERR_LIMIT);
        CHECK(out == NULL);
        CHECK(strstr(deid_last_error(), names[i]) != NULL);
    }

    /* A real 53 x 37 RGB TIFF: 5883 samples pass at 5883, fail at 5882. */
    deid_image *img = make_image(37, 53, 3, 8, "RGB");
    const char *path = tmp_path("limit.tif");
    CHECK_OK(deid_image_write_raster(img, 0, path, DEID_RASTER_TIFF, 0));
    deid_image *out = NULL;
    CHECK_OK(deid_image_read_raster(path, 37 * 53 * 3, &out, NULL));
    deid_image_free(out);
    out = NULL;
    CHECK(deid_image_read_raster(path, 37 * 53 * 3 - 1, &out, NULL) == DEID_ERR_LIMIT);
    CHECK(out == NULL);
    deid_image_free(img);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* An unwritable directory: DEID_ERR_IO naming the file, and nothing left behind in it. */
static void test_unwritable(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/readonly", tmpdir);
    CHECK(mkdir(dir, 0555) == 0);
    deid_image *img = make_image(8, 8, 1, 8, "MONOCHROME2");
    char path[4200];
    for (int f = DEID_RASTER_PNG; f <= DEID_RASTER_BMP; f++) {
        snprintf(path, sizeof path, "%s/out.%d", dir, f);
        deid_status st = deid_image_write_raster(img, 0, path, f, 0);
        if (geteuid() == 0) /* root writes anyway */
            continue;
        CHECK(st == DEID_ERR_IO);
        CHECK(strstr(deid_last_error(), "out.") != NULL);
    }
    if (geteuid() != 0)
        CHECK(count_entries(dir) == 0);
    snprintf(path, sizeof path, "%s/no/such/dir/out.png", tmpdir);
    CHECK(deid_image_write_raster(img, 0, path, DEID_RASTER_PNG, 0) == DEID_ERR_IO);

    /* Also as root: the target is a directory, so the final rename fails; no temporary file
     * may stay beside it. */
    snprintf(dir, sizeof dir, "%s/parent", tmpdir);
    snprintf(path, sizeof path, "%s/parent/taken.png", tmpdir);
    CHECK(mkdir(dir, 0755) == 0 && mkdir(path, 0755) == 0);
    for (int f = DEID_RASTER_PNG; f <= DEID_RASTER_BMP; f++) {
        CHECK(deid_image_write_raster(img, 0, path, f, 0) == DEID_ERR_IO);
        CHECK(strstr(deid_last_error(), "taken.png") != NULL);
    }
    CHECK(count_entries(dir) == 1);
    deid_image_free(img);
}

int main(void)
{
    if (!(tmpdir = check_tmpdir("deid_test_raster")))
        return 1;
#if !DEID_HAVE_LEPTONICA || !DEID_HAVE_LIBPNG
    /* A build without them: those formats fail with a message saying why; JPEG still works. */
    deid_image *img = make_image(8, 8, 1, 8, "MONOCHROME2");
    CHECK(deid_image_write_raster(img, 0, tmp_path("x.tif"), DEID_RASTER_TIFF, 0) ==
          (DEID_HAVE_LEPTONICA ? DEID_OK : DEID_ERR_UNSUPPORTED));
    CHECK(DEID_HAVE_LEPTONICA || strstr(deid_last_error(), "without leptonica"));
    CHECK_OK(deid_image_write_raster(img, 0, tmp_path("x.jpg"), DEID_RASTER_JPEG, 0));
    deid_image_free(img);
    printf("test_raster: built without leptonica or libpng, round trips skipped\n");
    return check_done("test_raster");
#endif
    /* Nothing the library does may print: send stderr to a file and check it stays empty. */
    char errlog[2100];
    snprintf(errlog, sizeof errlog, "%s.stderr", tmpdir);
    fflush(stderr);
    int saved = dup(2), log = open(errlog, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (saved < 0 || log < 0 || dup2(log, 2) < 0)
        return 1;
    close(log);
    test_round_trips();
    test_write_refusals();
    test_sniffing();
    test_truncated();
    test_limits();
    test_unwritable();
    fflush(stderr);
    size_t n = 0;
    unsigned char *printed = read_bytes(errlog, &n);
    dup2(saved, 2);
    close(saved);
    if (n) /* our own CHECK messages land there too: show everything */
        fprintf(stderr, "%.*s", (int)n, (const char *)printed);
    CHECK(n == 0);
    free(printed);
    unlink(errlog);
    return check_done("test_raster");
}
