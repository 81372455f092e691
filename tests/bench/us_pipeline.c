/* Ultrasound pixel pipeline timing harness for tests/bench/us (which generates the clip and
 * prints the report). Single-threaded, like one batch worker.
 *
 *   us_pipeline --prepare IN.dcm OUT.dcm     re-encode IN as JPEG baseline q95 (the usual form
 *                                            of a US cine), once, untimed
 *   us_pipeline IN.dcm OUT.dcm [MASK.raw] [--runs N]
 *       (a) end to end through libdeid: read -> decode all frames -> apply the fan mask ->
 *           JPEG baseline q95 re-encode (deid_dataset_set_pixels) -> write OUT
 *       (b) bare libjpeg-turbo on the same frames: decode IN's JPEG frames to RGB/grey, then
 *           encode the masked frames at q95 4:2:2 (one decompressor and one compressor, memory
 *           source and destination; masking not timed): the codec limit
 *   Prints key=value lines (medians over N runs): frames, rows, cols, samples, e2e_s, e2e_fps,
 *   the e2e stage times, codec_s, codec_fps, codec_decode_s, codec_encode_s, ratio.
 * MASK.raw holds rows*cols bytes (0 = blank); without it a sector is used. Public API only
 * (plus libjpeg), so it also builds with a plain `cc ... -ldeid -ljpeg -lm`. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jpeglib.h>
#include "deid/deid.h"

#define MAX_RUNS 50

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint8_t *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data = NULL;
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (data = malloc((size_t)n + 1)) && fread(data, 1, (size_t)n, f) == (size_t)n) {
        fclose(f);
        *size = (size_t)n;
        return data;
    }
    if (f)
        fclose(f);
    free(data);
    return NULL;
}

/* Like a batch: the whole object, then one unsynced write (no fsync per file). */
static deid_status write_unsynced(const deid_dataset *ds, const char *path)
{
    void *data = NULL;
    size_t size = 0;
    deid_status st = deid_dataset_write_memory(ds, &data, &size);
    if (st != DEID_OK)
        return st;
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(data, 1, size, f) == size;
    if (f && fclose(f) != 0)
        ok = 0;
    deid_free(data);
    return ok ? DEID_OK : DEID_ERR_IO;
}

/* The JPEG frames of a file written by libdeid (one fragment per frame): the items of the
 * last top-level encapsulated Pixel Data element. */
typedef struct frag {
    const uint8_t *data;
    size_t len;
} frag;

static size_t find_frames(const uint8_t *d, size_t n, frag *out, size_t max)
{
    static const uint8_t tag[12] = {0xE0, 0x7F, 0x10, 0x00, 'O', 'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF};
    size_t at = (size_t)-1, count = 0;
    for (size_t i = 0; i + sizeof tag <= n; i++)
        if (d[i] == 0xE0 && !memcmp(d + i, tag, sizeof tag))
            at = i;
    if (at == (size_t)-1)
        return 0;
    size_t pos = at + sizeof tag, item = 0;
    while (pos + 8 <= n && d[pos] == 0xFE && d[pos + 1] == 0xFF && d[pos + 2] == 0x00 &&
           d[pos + 3] == 0xE0) {
        size_t len = (size_t)d[pos + 4] | (size_t)d[pos + 5] << 8 | (size_t)d[pos + 6] << 16 |
                     (size_t)d[pos + 7] << 24;
        if (pos + 8 + len > n)
            break;
        if (item++ > 0 && count < max) /* item 0 is the offset table */
            out[count++] = (frag){d + pos + 8, len};
        pos += 8 + len;
    }
    return count;
}

static int fail(const char *what)
{
    fprintf(stderr, "us_pipeline: %s: %s\n", what, deid_last_error());
    return 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A sector with its apex above the top centre, like a curvilinear probe's fan. */
static uint8_t *sector_mask(size_t rows, size_t cols)
{
    uint8_t *m = malloc(rows * cols);
    double ax = cols / 2.0, ay = -0.1 * rows, r1 = 0.2 * rows, r2 = 1.05 * rows;
    double half = 35.0 * 3.14159265358979 / 180.0;
    for (size_t y = 0; y < rows; y++)
        for (size_t x = 0; x < cols; x++) {
            double dx = x - ax, dy = y - ay, r = sqrt(dx * dx + dy * dy);
            m[y * cols + x] = r >= r1 && r <= r2 && fabs(atan2(dx, dy)) <= half;
        }
    return m;
}

static uint8_t *load_mask(const char *path, size_t rows, size_t cols)
{
    if (!path)
        return sector_mask(rows, cols);
    size_t size = 0;
    uint8_t *data = slurp(path, &size);
    if (!data || size != rows * cols) {
        fprintf(stderr, "us_pipeline: %s: expected %zu mask bytes\n", path, rows * cols);
        free(data);
        return NULL;
    }
    return data;
}

static int prepare(const char *in, const char *out)
{
    deid_dataset *ds = NULL;
    deid_image *img = NULL, *rgb = NULL;
    if (deid_dataset_read_file(in, NULL, &ds) != DEID_OK)
        return fail(in);
    if (deid_image_decode(ds, 0, 0, 0, &img) != DEID_OK ||
        deid_image_to_rgb(img, ds, &rgb) != DEID_OK)
        return fail("decode");
    if (deid_dataset_set_pixels(ds, rgb, NULL) != DEID_OK ||
        write_unsynced(ds, out) != DEID_OK)
        return fail(out);
    deid_image_free(img);
    deid_image_free(rgb);
    deid_dataset_free(ds);
    return 0;
}

typedef struct stages {
    double read, decode, mask, encode, write, total;
} stages;

static int end_to_end(const char *in, const char *out, const uint8_t *mask, stages *s,
                      size_t *frames)
{
    double t0 = now();
    deid_dataset *ds = NULL;
    deid_image *img = NULL;
    if (deid_dataset_read_file(in, NULL, &ds) != DEID_OK)
        return fail(in);
    double t1 = now();
    if (deid_image_decode(ds, 0, 0, 0, &img) != DEID_OK)
        return fail("decode");
    double t2 = now();
    if (deid_image_apply_mask(img, mask) != DEID_OK)
        return fail("mask");
    double t3 = now();
    if (deid_dataset_set_pixels(ds, img, NULL) != DEID_OK)
        return fail("encode");
    double t4 = now();
    if (write_unsynced(ds, out) != DEID_OK)
        return fail(out);
    double t5 = now();
    *frames = deid_image_frames(img);
    deid_image_free(img);
    deid_dataset_free(ds);
    double t6 = now();
    *s = (stages){t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t0};
    return 0;
}

/* ---- bare libjpeg-turbo -------------------------------------------------------------------- */

typedef struct codec_run {
    double decode, encode;
    size_t out_bytes;
} codec_run;

static int codec_limit(const frag *px, size_t frames, size_t rows, size_t cols,
                       size_t samples, const uint8_t *mask, uint8_t *work, codec_run *r)
{
    struct jpeg_decompress_struct d;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr ed, ec;
    d.err = jpeg_std_error(&ed);
    c.err = jpeg_std_error(&ec);
    jpeg_create_decompress(&d);
    jpeg_create_compress(&c);
    size_t stride = cols * samples, fb = rows * stride;
    JSAMPROW *rowp = malloc(rows * sizeof *rowp);
    unsigned long cap = (unsigned long)fb + 65536, len;
    unsigned char *outbuf = malloc(cap);
    /* decode every frame */
    double t0 = now();
    for (size_t f = 0; f < frames; f++) {
        jpeg_mem_src(&d, px[f].data, (unsigned long)px[f].len);
        jpeg_read_header(&d, TRUE);
        d.out_color_space = samples == 3 ? JCS_RGB : JCS_GRAYSCALE;
        jpeg_start_decompress(&d);
        for (size_t y = 0; y < rows; y++)
            rowp[y] = work + f * fb + y * stride;
        while (d.output_scanline < d.output_height)
            jpeg_read_scanlines(&d, rowp + d.output_scanline, d.output_height - d.output_scanline);
        jpeg_finish_decompress(&d);
    }
    double t1 = now();
    /* mask (not timed), then encode every frame like libdeid does */
    for (size_t f = 0; f < frames; f++)
        for (size_t p = 0; p < rows * cols; p++)
            if (!mask[p])
                memset(work + f * fb + p * samples, 0, samples);
    double t2 = now();
    c.image_width = (JDIMENSION)cols;
    c.image_height = (JDIMENSION)rows;
    c.input_components = (int)samples;
    c.in_color_space = samples == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 95, TRUE);
    if (samples == 3) {
        c.comp_info[0].h_samp_factor = 2;
        c.comp_info[0].v_samp_factor = 1;
    }
    r->out_bytes = 0;
    for (size_t f = 0; f < frames; f++) {
        unsigned char *o = outbuf;
        len = cap;
        jpeg_mem_dest(&c, &o, &len);
        jpeg_start_compress(&c, TRUE);
        for (size_t y = 0; y < rows; y++)
            rowp[y] = work + f * fb + y * stride;
        while (c.next_scanline < c.image_height)
            jpeg_write_scanlines(&c, rowp + c.next_scanline, c.image_height - c.next_scanline);
        jpeg_finish_compress(&c);
        r->out_bytes += len;
        if (o != outbuf) { /* libjpeg had to grow the buffer */
            free(outbuf);
            outbuf = o;
            cap = len;
        }
    }
    double t3 = now();
    jpeg_destroy_decompress(&d);
    jpeg_destroy_compress(&c);
    free(rowp);
    free(outbuf);
    r->decode = t1 - t0;
    r->encode = t3 - t2;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "--prepare"))
        return prepare(argv[2], argv[3]);
    int runs = 3;
    const char *pos[3] = {NULL, NULL, NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (npos < 3)
            pos[npos++] = argv[i];
    }
    if (npos < 2 || runs < 1 || runs > MAX_RUNS) {
        fprintf(stderr, "usage: us_pipeline [--prepare] IN.dcm OUT.dcm [MASK.raw] [--runs N]\n");
        return 2;
    }
    const char *in = pos[0], *out = pos[1];
    deid_dataset *ds = NULL;
    if (deid_dataset_read_file(in, NULL, &ds) != DEID_OK)
        return fail(in);
    deid_image *probe = NULL;
    if (deid_image_decode(ds, 0, 1, 0, &probe) != DEID_OK)
        return fail("decode");
    size_t rows = deid_image_rows(probe), cols = deid_image_cols(probe);
    size_t samples = deid_image_samples(probe);
    size_t nfr, in_size = 0;
    uint8_t *in_bytes = slurp(in, &in_size);
    frag *px = malloc(4096 * sizeof *px);
    if (!in_bytes || !px)
        return 1;
    nfr = find_frames(in_bytes, in_size, px, 4096);
    if (strcmp(deid_dataset_transfer_syntax(ds), "1.2.840.10008.1.2.4.50") || nfr == 0) {
        fprintf(stderr, "us_pipeline: %s: not JPEG baseline (run --prepare first)\n", in);
        return 1;
    }
    uint8_t *mask = load_mask(pos[2], rows, cols);
    if (!mask)
        return 1;
    size_t frames = 0;
    stages s[MAX_RUNS];
    double e2e[MAX_RUNS], dec[MAX_RUNS], enc[MAX_RUNS], codec[MAX_RUNS];
    codec_run cr;
    deid_image_free(probe);
    uint8_t *work = malloc(nfr * rows * cols * samples);
    if (!work)
        return 1;
    /* alternate the two so that both see the same machine state; one warm-up of each */
    end_to_end(in, out, mask, &s[0], &frames);
    codec_limit(px, nfr, rows, cols, samples, mask, work, &cr);
    for (int r = 0; r < runs; r++) {
        if (end_to_end(in, out, mask, &s[r], &frames))
            return 1;
        e2e[r] = s[r].total;
        codec_limit(px, nfr, rows, cols, samples, mask, work, &cr);
        dec[r] = cr.decode;
        enc[r] = cr.encode;
        codec[r] = cr.decode + cr.encode;
    }
    double st[5][MAX_RUNS];
    for (int r = 0; r < runs; r++) {
        st[0][r] = s[r].read, st[1][r] = s[r].decode, st[2][r] = s[r].mask;
        st[3][r] = s[r].encode, st[4][r] = s[r].write;
    }
    double e = median(e2e, runs), c = median(codec, runs);
    printf("frames=%zu\nrows=%zu\ncols=%zu\nsamples=%zu\nruns=%d\n", frames, rows, cols, samples,
           runs);
    printf("e2e_s=%.4f\ne2e_fps=%.1f\n", e, frames / e);
    static const char *names[5] = {"read", "decode", "mask", "encode", "write"};
    for (int k = 0; k < 5; k++)
        printf("e2e_%s_s=%.4f\n", names[k], median(st[k], runs));
    printf("codec_s=%.4f\ncodec_fps=%.1f\ncodec_decode_s=%.4f\ncodec_encode_s=%.4f\n", c,
           nfr / c, median(dec, runs), median(enc, runs));
    printf("ratio=%.3f\n", (frames / e) / (nfr / c));
    free(work);
    free(mask);
    free(px);
    free(in_bytes);
    deid_dataset_free(ds);
    return 0;
}
