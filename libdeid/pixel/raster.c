/* Raster files (PNG, JPEG, TIFF, BMP) to and from deid_image. The file is read into memory
 * (bounded), its format told by its first bytes, its header checked against max_samples before
 * any pixel buffer is allocated, then decoded. Nothing is printed: PNG is read with libpng and
 * JPEG with libjpeg-turbo directly, with error handlers that record instead of printing (the
 * handlers leptonica installs for them print to stderr); TIFF and BMP are read, and PNG, TIFF
 * and BMP written, with leptonica, whose messages are switched off once per process; JPEG is
 * written with libdeid's own encoder (4:4:4, so thin coloured text survives). */
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>
#include "deid_config.h"
#if DEID_HAVE_LIBPNG
#include <png.h>
#endif
#if DEID_HAVE_LEPTONICA
#include <leptonica/allheaders.h>
#endif
#include "pixel/pixel_int.h"

static const char *M = "pixel";

#define DEFAULT_MAX_SAMPLES ((uint64_t)1 << 31)
/* Room for headers and metadata (ICC profiles, EXIF, further TIFF pages) on top of the largest
 * uncompressed first page max_samples allows. */
#define FILE_SLACK ((uint64_t)64 << 20)

/* ---- format ------------------------------------------------------------------------------- */

static int sniff(const unsigned char *b, size_t n)
{
    /* A DICOM file whose preamble holds a TIFF header ("dual personality") is DICOM. */
    if (n >= 132 && !memcmp(b + 128, "DICM", 4))
        return DEID_RASTER_UNKNOWN;
    if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8))
        return DEID_RASTER_PNG;
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
        return DEID_RASTER_JPEG;
    if (n >= 4 && (!memcmp(b, "II*\0", 4) || !memcmp(b, "MM\0*", 4)))
        return DEID_RASTER_TIFF;
    if (n >= 18 && b[0] == 'B' && b[1] == 'M') {
        /* "BM" alone is common in text; also require a known DIB header size. */
        uint32_t dib = (uint32_t)b[14] | (uint32_t)b[15] << 8 | (uint32_t)b[16] << 16 |
                       (uint32_t)b[17] << 24;
        if (dib == 12 || dib == 40 || dib == 52 || dib == 56 || dib == 64 || dib == 108 ||
            dib == 124)
            return DEID_RASTER_BMP;
    }
    return DEID_RASTER_UNKNOWN;
}

int deid_raster_format_of(const char *path)
{
    if (!path)
        return DEID_RASTER_UNKNOWN;
    FILE *f = fopen(path, "rb");
    if (!f)
        return DEID_RASTER_UNKNOWN;
    unsigned char head[132];
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    return sniff(head, n);
}

static const char *format_name(int format)
{
    switch (format) {
    case DEID_RASTER_PNG: return "PNG";
    case DEID_RASTER_JPEG: return "JPEG";
    case DEID_RASTER_TIFF: return "TIFF";
    case DEID_RASTER_BMP: return "BMP";
    default: return "raster";
    }
}

/* Fail with DEID_ERR_LIMIT when rows x cols x samples exceeds max_samples (before allocating). */
static deid_status check_size(const char *path, uint64_t rows, uint64_t cols, unsigned samples,
                              uint64_t max_samples)
{
    if (rows == 0 || cols == 0)
        return deid__fail(DEID_ERR_UNSUPPORTED, M, "%s: image has no pixels (%llux%llu)", path,
                          (unsigned long long)cols, (unsigned long long)rows);
    if (cols > max_samples / rows / samples)
        return deid__fail(DEID_ERR_LIMIT, M,
                          "%s: %llux%llu image with %u samples per pixel exceeds the limit of "
                          "%llu samples",
                          path, (unsigned long long)cols, (unsigned long long)rows, samples,
                          (unsigned long long)max_samples);
    return DEID_OK;
}

static deid_image *new_image(size_t rows, size_t cols, unsigned samples, unsigned bits)
{
    return deid__image_new(1, rows, cols, samples, bits, 0, samples == 3 ? "RGB" : "MONOCHROME2");
}

/* ---- JPEG (libjpeg-turbo) ----------------------------------------------------------------- */

typedef struct jpeg_ctx {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr err;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    const char *path;
    uint64_t max_samples;
    deid_image *img;
    deid_status st; /* set when the failure was ours, not libjpeg's */
} jpeg_ctx;

static jpeg_ctx *jpeg_ctx_of(j_common_ptr c)
{
    return (jpeg_ctx *)(void *)((char *)c - offsetof(jpeg_ctx, cinfo));
}

static void jpeg_on_error(j_common_ptr c)
{
    jpeg_ctx *x = jpeg_ctx_of(c);
    (*c->err->format_message)(c, x->msg);
    longjmp(x->jump, 1);
}

/* Warnings are dropped, except a premature end of data: libjpeg would pad the picture with
 * grey, and a truncated file must fail rather than pass for a complete one. */
static void jpeg_on_message(j_common_ptr c, int level)
{
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF)
        jpeg_on_error(c);
}

static void jpeg_on_output(j_common_ptr c) { (void)c; }

/* Runs under setjmp: all state lives in *x, nothing in locals that outlive a longjmp. */
static void jpeg_run(jpeg_ctx *x, const unsigned char *data, size_t size)
{
    struct jpeg_decompress_struct *c = &x->cinfo;
    jpeg_create_decompress(c);
    jpeg_mem_src(c, data, (unsigned long)size);
    jpeg_read_header(c, TRUE);
    unsigned samples;
    if (c->jpeg_color_space == JCS_GRAYSCALE) {
        c->out_color_space = JCS_GRAYSCALE;
        samples = 1;
    } else if (c->jpeg_color_space == JCS_YCbCr || c->jpeg_color_space == JCS_RGB) {
        c->out_color_space = JCS_RGB;
        samples = 3;
    } else {
        x->st = deid__fail(DEID_ERR_UNSUPPORTED, M, "%s: CMYK/YCCK JPEG files are not supported",
                           x->path);
        return;
    }
    x->st = check_size(x->path, c->image_height, c->image_width, samples, x->max_samples);
    if (x->st != DEID_OK)
        return;
    c->dct_method = JDCT_ISLOW;
    jpeg_start_decompress(c);
    if ((unsigned)c->output_components != samples) {
        x->st = deid__fail(DEID_ERR_UNSUPPORTED, M, "%s: unexpected JPEG output", x->path);
        return;
    }
    if (!(x->img = new_image(c->output_height, c->output_width, samples, 8))) {
        x->st = deid_last_error_code();
        return;
    }
    size_t stride = x->img->cols * samples;
    while (c->output_scanline < c->output_height) {
        JSAMPROW row = x->img->data + (size_t)c->output_scanline * stride;
        jpeg_read_scanlines(c, &row, 1);
    }
    jpeg_finish_decompress(c);
}

static deid_status read_jpeg(const char *path, const unsigned char *data, size_t size,
                             uint64_t max_samples, deid_image **out)
{
    jpeg_ctx *x = deid__calloc(1, sizeof *x);
    if (!x)
        return DEID_ERR_NOMEM;
    x->path = path;
    x->max_samples = max_samples;
    x->cinfo.err = jpeg_std_error(&x->err);
    x->err.error_exit = jpeg_on_error;
    x->err.emit_message = jpeg_on_message;
    x->err.output_message = jpeg_on_output;
    deid_status st;
    if (setjmp(x->jump)) {
        st = deid__fail(DEID_ERR_UNSUPPORTED, M, "%s: damaged or unsupported JPEG: %s", path,
                        x->msg);
    } else {
        jpeg_run(x, data, size);
        st = x->st;
    }
    jpeg_destroy_decompress(&x->cinfo);
    if (st == DEID_OK)
        *out = x->img;
    else
        deid_image_free(x->img);
    free(x);
    return st;
}

/* ---- PNG (libpng) ------------------------------------------------------------------------- */

#if DEID_HAVE_LIBPNG
typedef struct png_ctx {
    png_structp png;
    png_infop info;
    const unsigned char *data;
    size_t size, pos;
    char msg[160];
    const char *path;
    uint64_t max_samples;
    deid_image *img;
    deid_status st;
} png_ctx;

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_ctx *x = png_get_error_ptr(png);
    snprintf(x->msg, sizeof x->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static void png_on_read(png_structp png, png_bytep out, size_t n)
{
    png_ctx *x = png_get_io_ptr(png);
    if (n > x->size - x->pos)
        png_error(png, "file is truncated");
    memcpy(out, x->data + x->pos, n);
    x->pos += n;
}

static int palette_is_grey(png_structp png, png_infop info)
{
    png_colorp pal;
    int n = 0;
    if (!png_get_PLTE(png, info, &pal, &n))
        return 0;
    for (int i = 0; i < n; i++)
        if (pal[i].red != pal[i].green || pal[i].red != pal[i].blue)
            return 0;
    return 1;
}

/* Runs under setjmp: all state lives in *x. */
static void png_run(png_ctx *x)
{
    png_structp png = x->png;
    png_infop info = x->info;
    png_set_read_fn(png, x, png_on_read);
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff); /* our own limit follows */
    png_read_info(png, info);
    png_uint_32 w, h;
    int depth, colour, interlace;
    png_get_IHDR(png, info, &w, &h, &depth, &colour, &interlace, NULL, NULL);
    int palette = colour == PNG_COLOR_TYPE_PALETTE;
    int grey_palette = palette && palette_is_grey(png, info);
    unsigned samples = (colour & PNG_COLOR_MASK_COLOR) && !grey_palette ? 3 : 1;
    unsigned bits = samples == 1 && depth == 16 ? 16 : 8;
    x->st = check_size(x->path, h, w, samples, x->max_samples);
    if (x->st != DEID_OK)
        return;
    if (palette)
        png_set_palette_to_rgb(png);
    if (grey_palette) /* exact for r == g == b */
        png_set_rgb_to_gray_fixed(png, 1, -1, -1);
    if (colour == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    png_set_strip_alpha(png); /* tRNS is left alone: it is never expanded to alpha */
    if (depth == 16 && bits == 8)
        png_set_strip_16(png);
    if (bits == 16) {
        const uint16_t probe = 1;
        if (*(const uint8_t *)&probe == 1)
            png_set_swap(png); /* PNG is big-endian, image buffers native */
    }
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t stride = (size_t)w * samples * (bits / 8);
    if (png_get_channels(png, info) != samples || png_get_rowbytes(png, info) != stride) {
        x->st = deid__fail(DEID_ERR_UNSUPPORTED, M, "%s: unexpected PNG layout", x->path);
        return;
    }
    if (!(x->img = new_image(h, w, samples, bits))) {
        x->st = deid_last_error_code();
        return;
    }
    /* Interlaced: each pass fills in more pixels of the same rows ("sparkle" mode). */
    for (int p = 0; p < passes; p++)
        for (png_uint_32 y = 0; y < h; y++)
            png_read_row(png, x->img->data + (size_t)y * stride, NULL);
    png_read_end(png, NULL);
}

static deid_status read_png(const char *path, const unsigned char *data, size_t size,
                            uint64_t max_samples, deid_image **out)
{
    /* libpng reads on past IHDR before telling the size; IHDR is always the first chunk. */
    if (size >= 26 && !memcmp(data + 12, "IHDR", 4)) {
        uint64_t w = be32(data + 16), h = be32(data + 20);
        deid_status st = check_size(path, h, w, data[25] == 2 || data[25] == 6 ? 3 : 1,
                                    max_samples);
        if (st != DEID_OK)
            return st;
    }
    png_ctx *x = deid__calloc(1, sizeof *x);
    if (!x)
        return DEID_ERR_NOMEM;
    x->path = path;
    x->data = data;
    x->size = size;
    x->max_samples = max_samples;
    x->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, x, png_on_error, png_on_warning);
    if (x->png)
        x->info = png_create_info_struct(x->png);
    if (!x->png || !x->info) {
        png_destroy_read_struct(x->png ? &x->png : NULL, NULL, NULL);
        free(x);
        return deid__fail(DEID_ERR_NOMEM, M, "%s: out of memory for the PNG decoder", path);
    }
    deid_status st;
    if (setjmp(png_jmpbuf(x->png))) {
        st = deid__fail(DEID_ERR_UNSUPPORTED, M, "%s: damaged or unsupported PNG: %s", path,
                        x->msg);
    } else {
        png_run(x);
        st = x->st;
    }
    png_destroy_read_struct(&x->png, &x->info, NULL);
    if (st == DEID_OK)
        *out = x->img;
    else
        deid_image_free(x->img);
    free(x);
    return st;
}
#else
static deid_status read_png(const char *path, const unsigned char *data, size_t size,
                            uint64_t max_samples, deid_image **out)
{
    (void)data, (void)size, (void)max_samples, (void)out;
    return deid__fail(DEID_ERR_UNSUPPORTED, M,
                      "%s: this libdeid was built without libpng: PNG files cannot be read",
                      path);
}
#endif

/* ---- TIFF and BMP (leptonica) ------------------------------------------------------------- */

#if DEID_HAVE_LEPTONICA
static pthread_once_t lept_once = PTHREAD_ONCE_INIT;

static void lept_drop(const char *msg) { (void)msg; }

/* Leptonica prints its errors and warnings to stderr by default; the library never prints.
 * Both settings are process-wide (leptonica keeps them in globals). */
static void lept_quiet(void)
{
    setMsgSeverity(L_SEVERITY_NONE);
    leptSetStderrHandler(lept_drop);
}

/* A 1, 2, 4, 8, 16 or 32 bpp PIX (colormap removed) into a new image. */
static deid_status pix_to_image(const char *path, PIX *pix, uint64_t max_samples,
                                deid_image **out)
{
    int d = pixGetDepth(pix);
    unsigned samples = d == 32 ? 3 : 1, bits = d == 16 ? 16 : 8;
    if (d != 8 && d != 16 && d != 32)
        return deid__fail(DEID_ERR_UNSUPPORTED, M, "%s: %d-bit pixels are not supported", path, d);
    size_t w = (size_t)pixGetWidth(pix), h = (size_t)pixGetHeight(pix);
    deid_status st = check_size(path, h, w, samples, max_samples);
    if (st != DEID_OK)
        return st;
    deid_image *img = new_image(h, w, samples, bits);
    if (!img)
        return deid_last_error_code();
    const l_uint32 *data = pixGetData(pix);
    size_t wpl = (size_t)pixGetWpl(pix);
    for (size_t y = 0; y < h; y++) {
        const l_uint32 *line = data + y * wpl;
        if (d == 8) {
            uint8_t *o = img->data + y * w;
            for (size_t x = 0; x < w; x++)
                o[x] = (uint8_t)GET_DATA_BYTE(line, x);
        } else if (d == 16) {
            uint16_t *o = (uint16_t *)(void *)img->data + y * w;
            for (size_t x = 0; x < w; x++)
                o[x] = (uint16_t)GET_DATA_TWO_BYTES(line, x);
        } else {
            uint8_t *o = img->data + y * w * 3;
            for (size_t x = 0; x < w; x++) { /* alpha, if any, is dropped */
                o[3 * x] = (uint8_t)(line[x] >> L_RED_SHIFT);
                o[3 * x + 1] = (uint8_t)(line[x] >> L_GREEN_SHIFT);
                o[3 * x + 2] = (uint8_t)(line[x] >> L_BLUE_SHIFT);
            }
        }
    }
    *out = img;
    return DEID_OK;
}

/* Colormapped PIX become grey when every entry is grey, RGB otherwise; 1, 2 and 4 bpp grey
 * becomes 8 bpp (1 bpp: leptonica's 1 is black, so 0 -> 255 and 1 -> 0). */
static PIX *pix_normalise(PIX *pix)
{
    PIX *p = pixGetColormap(pix) ? pixRemoveColormap(pix, REMOVE_CMAP_BASED_ON_SRC)
                                 : pixClone(pix);
    if (p && pixGetDepth(p) < 8) {
        PIX *q = pixConvertTo8(p, 0);
        pixDestroy(&p);
        p = q;
    }
    return p;
}

static uint32_t le16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const unsigned char *p) { return le16(p) | le16(p + 2) << 16; }

/* Width, height and bits per pixel of a BMP (sniff() saw "BM" and a known DIB header size).
 * Parsed here because leptonica's pixReadHeaderMem decodes a whole BMP to tell its size. */
static int bmp_header(const unsigned char *b, size_t n, uint64_t *w, uint64_t *h, unsigned *bpp)
{
    if (le32(b + 14) == 12) { /* BITMAPCOREHEADER: 16-bit sizes */
        if (n < 26)
            return -1;
        *w = le16(b + 18), *h = le16(b + 20), *bpp = le16(b + 24);
        return 0;
    }
    if (n < 30)
        return -1;
    int64_t sw = (int32_t)le32(b + 18), sh = (int32_t)le32(b + 22); /* negative: top-down */
    *w = (uint64_t)(sw < 0 ? -sw : sw), *h = (uint64_t)(sh < 0 ? -sh : sh);
    *bpp = le16(b + 28);
    return 0;
}

static deid_status read_lept(const char *path, int format, const unsigned char *data,
                             size_t size, uint64_t max_samples, deid_image **out)
{
    pthread_once(&lept_once, lept_quiet);
    uint64_t w = 0, h = 0;
    unsigned samples = 1;
    int bad;
    if (format == DEID_RASTER_BMP) {
        unsigned bpp = 0;
        bad = bmp_header(data, size, &w, &h, &bpp);
        samples = bpp > 8 ? 3 : 1; /* palettes are looked at once decoded */
    } else {
        l_int32 fmt = 0, lw = 0, lh = 0, bps = 0, spp = 0, cmap = 0;
        bad = pixReadHeaderMem(data, size, &fmt, &lw, &lh, &bps, &spp, &cmap) != 0 || lw <= 0 ||
              lh <= 0;
        w = (uint64_t)(lw > 0 ? lw : 0), h = (uint64_t)(lh > 0 ? lh : 0);
        samples = spp >= 2 ? 3 : 1; /* grey + alpha becomes RGB in leptonica */
    }
    if (bad)
        return deid__fail(DEID_ERR_UNSUPPORTED, M, "%s: damaged or unsupported %s header", path,
                          format_name(format));
    deid_status st = check_size(path, h, w, samples, max_samples);
    if (st != DEID_OK)
        return st;
    PIX *pix = format == DEID_RASTER_TIFF ? pixReadMemTiff(data, size, 0)
                                          : pixReadMemBmp(data, size);
    if (!pix)
        return deid__fail(DEID_ERR_UNSUPPORTED, M, "%s: damaged or unsupported %s file", path,
                          format_name(format));
    l_int32 colour = 0;
    if (pixGetColormap(pix) && pixcmapHasColor(pixGetColormap(pix), &colour) == 0 && colour)
        st = check_size(path, h, w, 3, max_samples); /* before expanding the palette */
    PIX *norm = st == DEID_OK ? pix_normalise(pix) : NULL;
    pixDestroy(&pix);
    if (st != DEID_OK)
        return st;
    if (!norm)
        return deid__fail(DEID_ERR_NOMEM, M, "%s: out of memory converting the %s image", path,
                          format_name(format));
    st = pix_to_image(path, norm, max_samples, out);
    pixDestroy(&norm);
    return st;
}
#else
static deid_status read_lept(const char *path, int format, const unsigned char *data,
                             size_t size, uint64_t max_samples, deid_image **out)
{
    (void)data, (void)size, (void)max_samples, (void)out;
    return deid__fail(DEID_ERR_UNSUPPORTED, M,
                      "%s: this libdeid was built without leptonica: %s files cannot be read",
                      path, format_name(format));
}
#endif

/* ---- read --------------------------------------------------------------------------------- */

deid_status deid_image_read_raster(const char *path, uint64_t max_samples, deid_image **out,
                                   int *format)
{
    if (!path || !out)
        return deid__fail(DEID_ERR_ARGUMENT, M, "read_raster: path and out are required");
    if (max_samples == 0)
        max_samples = DEFAULT_MAX_SAMPLES;
    /* No first page is larger than 2 bytes a sample: bound the file before reading it. */
    uint64_t max_bytes = max_samples > (UINT64_MAX - FILE_SLACK) / 2
                             ? UINT64_MAX
                             : max_samples * 2 + FILE_SLACK;
    char *data;
    size_t size;
    deid_status st = deid__read_file(path, max_bytes, &data, &size);
    if (st != DEID_OK)
        return st;
    const unsigned char *bytes = (const unsigned char *)data;
    int fmt = sniff(bytes, size);
    deid_image *img = NULL;
    switch (fmt) {
    case DEID_RASTER_PNG: st = read_png(path, bytes, size, max_samples, &img); break;
    case DEID_RASTER_JPEG: st = read_jpeg(path, bytes, size, max_samples, &img); break;
    case DEID_RASTER_TIFF:
    case DEID_RASTER_BMP: st = read_lept(path, fmt, bytes, size, max_samples, &img); break;
    default:
        st = deid__fail(DEID_ERR_UNSUPPORTED, M, "%s: not a PNG, JPEG, TIFF or BMP file", path);
    }
    free(data);
    if (st != DEID_OK)
        return st;
    *out = img;
    if (format)
        *format = fmt;
    return DEID_OK;
}

/* ---- write -------------------------------------------------------------------------------- */

static deid_status write_jpeg(const char *path, const uint8_t *px, size_t rows, size_t cols,
                              size_t samples, int quality)
{
    deid_jpeg_enc *enc = deid__jpeg_enc_new(rows, cols, samples, 0, quality, 1);
    if (!enc) {
        deid__error_prefix(path);
        return deid_last_error_code();
    }
    const uint8_t *buf;
    size_t n;
    deid_status st = deid__jpeg_enc_frame(enc, px, &buf, &n);
    if (st == DEID_OK)
        st = deid__write_file_atomic(path, buf, n, 0644, 0);
    deid__jpeg_enc_free(enc);
    return st;
}

#if DEID_HAVE_LEPTONICA
static PIX *pix_from_frame(const uint8_t *px, size_t rows, size_t cols, size_t samples,
                           unsigned bits)
{
    int d = samples == 3 ? 32 : (int)bits;
    PIX *pix = pixCreateNoInit((l_int32)cols, (l_int32)rows, d);
    if (!pix)
        return NULL;
    if (samples == 3)
        pixSetSpp(pix, 3);
    l_uint32 *data = pixGetData(pix);
    size_t wpl = (size_t)pixGetWpl(pix);
    for (size_t y = 0; y < rows; y++) {
        l_uint32 *line = data + y * wpl;
        memset(line, 0, wpl * sizeof *line); /* padding bits are written to some files */
        if (samples == 3) {
            const uint8_t *s = px + y * cols * 3;
            for (size_t x = 0; x < cols; x++)
                line[x] = (l_uint32)s[3 * x] << L_RED_SHIFT |
                          (l_uint32)s[3 * x + 1] << L_GREEN_SHIFT |
                          (l_uint32)s[3 * x + 2] << L_BLUE_SHIFT;
        } else if (bits == 16) {
            const uint16_t *s = (const uint16_t *)(const void *)px + y * cols;
            for (size_t x = 0; x < cols; x++)
                SET_DATA_TWO_BYTES(line, x, s[x]);
        } else {
            const uint8_t *s = px + y * cols;
            for (size_t x = 0; x < cols; x++)
                SET_DATA_BYTE(line, x, s[x]);
        }
    }
    return pix;
}

static deid_status write_lept(const char *path, int format, const uint8_t *px, size_t rows,
                              size_t cols, size_t samples, unsigned bits)
{
    pthread_once(&lept_once, lept_quiet);
    if (rows > INT32_MAX || cols > INT32_MAX)
        return deid__fail(DEID_ERR_LIMIT, M, "%s: %zux%zu image is too large for %s", path, cols,
                          rows, format_name(format));
    PIX *pix = pix_from_frame(px, rows, cols, samples, bits);
    if (!pix)
        return deid__fail(DEID_ERR_NOMEM, M, "%s: out of memory for the %s image", path,
                          format_name(format));
    l_uint8 *buf = NULL;
    size_t n = 0;
    l_ok bad = format == DEID_RASTER_PNG    ? pixWriteMemPng(&buf, &n, pix, 0.0f)
               : format == DEID_RASTER_TIFF ? pixWriteMemTiff(&buf, &n, pix, IFF_TIFF_ZIP)
                                            : pixWriteMemBmp(&buf, &n, pix);
    pixDestroy(&pix);
    deid_status st;
    if (bad || !buf)
        st = deid__fail(DEID_ERR_GENERIC, M, "%s: %s encoding failed", path,
                        format_name(format));
    else
        st = deid__write_file_atomic(path, buf, n, 0644, 0);
    lept_free(buf);
    return st;
}
#else
static deid_status write_lept(const char *path, int format, const uint8_t *px, size_t rows,
                              size_t cols, size_t samples, unsigned bits)
{
    (void)px, (void)rows, (void)cols, (void)samples, (void)bits;
    return deid__fail(DEID_ERR_UNSUPPORTED, M,
                      "%s: this libdeid was built without leptonica: %s files cannot be written",
                      path, format_name(format));
}
#endif

/* What the writers take: 8-bit grey or RGB, 16-bit grey (PNG, TIFF). */
static deid_status check_writable(const deid_image *img, const char *path, int format)
{
    int grey = img->samples == 1 && !strncmp(img->photometric, "MONOCHROME", 10);
    int colour = deid__pi_is(img, "RGB") || deid__pi_is_ybr(img);
    if (img->is_signed)
        return deid__fail(DEID_ERR_UNSUPPORTED, M, "%s: signed pixels cannot be written as %s",
                          path, format_name(format));
    if (img->bits == 8 && (grey || (img->samples == 3 && colour)))
        return DEID_OK;
    if (img->bits == 16 && grey) {
        if (format == DEID_RASTER_PNG || format == DEID_RASTER_TIFF)
            return DEID_OK;
        return deid__fail(DEID_ERR_UNSUPPORTED, M,
                          "%s: 16-bit images can be written as PNG or TIFF, not %s", path,
                          format_name(format));
    }
    return deid__fail(DEID_ERR_UNSUPPORTED, M,
                      "%s: %u-bit %s images with %zu samples per pixel cannot be written as %s "
                      "(convert with deid_image_to_rgb first)",
                      path, img->bits, img->photometric, img->samples, format_name(format));
}

deid_status deid_image_write_raster(const deid_image *img, size_t frame, const char *path,
                                    int format, int jpeg_quality)
{
    if (!img || !path)
        return deid__fail(DEID_ERR_ARGUMENT, M, "write_raster: image and path are required");
    if (format < DEID_RASTER_PNG || format > DEID_RASTER_BMP)
        return deid__fail(DEID_ERR_ARGUMENT, M, "%s: unknown raster format %d", path, format);
    if (frame >= img->frames)
        return deid__fail(DEID_ERR_ARGUMENT, M, "%s: frame %zu of an image of %zu frames", path,
                          frame, img->frames);
    if (jpeg_quality < 0 || jpeg_quality > 100)
        return deid__fail(DEID_ERR_ARGUMENT, M, "%s: JPEG quality %d is not in 1..100", path,
                          jpeg_quality);
    deid_status st = check_writable(img, path, format);
    if (st != DEID_OK)
        return st;
    size_t bytes = deid__image_frame_bytes(img);
    const uint8_t *px = img->data + frame * bytes;
    uint8_t *rgb = NULL;
    if (deid__pi_is_ybr(img)) {
        if (!(rgb = deid__malloc(bytes)))
            return DEID_ERR_NOMEM;
        deid__ybr_full_to_rgb(px, rgb, img->rows * img->cols);
        px = rgb;
    }
    /* MONOCHROME1 is written with its values as they are (no inversion): a viewer of the file
     * sees it inverted, but the redacted pixels are exactly the ones in the image. */
    if (format == DEID_RASTER_JPEG)
        st = write_jpeg(path, px, img->rows, img->cols, img->samples,
                        jpeg_quality ? jpeg_quality : 95);
    else
        st = write_lept(path, format, px, img->rows, img->cols, img->samples, img->bits);
    free(rgb);
    return st;
}
