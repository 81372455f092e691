/* Compressed frames: codestream header checks before anything reaches a codec, and 8-bit DCT
 * JPEG decoding with libjpeg-turbo. GDCM's codecs, built with assertions, abort the process on
 * some malformed streams (e.g. any libjpeg warning while reading a JPEG header) and let libjpeg
 * print to stderr; the checks here keep such streams away from them, and the most common
 * compressed format (8-bit JPEG, ultrasound) does not go through GDCM at all. */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <jpeglib.h>
#include "core/core.h"
#include "dicom/dicom_int.h"

static unsigned be16(const uint8_t *p) { return (unsigned)(p[0] << 8 | p[1]); }

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const char *check_precision(const deid_frame_desc *l, unsigned precision)
{
    if (precision == 0 || precision > 16)
        return "sample precision out of range";
    if ((precision <= 8) != (l->bits_allocated == 8))
        return "sample precision does not match Bits Allocated";
    return NULL;
}

/* Huffman tables as libjpeg checks them (its errors print from inside GDCM). */
static int dht_ok(const uint8_t *s, size_t len)
{
    while (len > 0) {
        if (len < 17 || (s[0] & 15) > 3 || (s[0] >> 4) > 1)
            return 0;
        unsigned total = 0, maxlen = 0;
        for (unsigned i = 1; i <= 16; i++)
            if (s[i]) {
                total += s[i];
                maxlen = i;
            }
        if (total > 256 || 17 + total > len)
            return 0;
        uint32_t code = 0;
        for (unsigned i = 1; i <= maxlen; i++) {
            code += s[i];
            if (code >= (1u << i))
                return 0;
            code <<= 1;
        }
        s += 17 + total;
        len -= 17 + total;
    }
    return 1;
}

static int dqt_ok(const uint8_t *s, size_t len)
{
    while (len > 0) {
        size_t need = 1 + 64 * (size_t)((s[0] >> 4) ? 2 : 1);
        if ((s[0] & 15) > 3 || (s[0] >> 4) > 1 || need > len)
            return 0;
        s += need;
        len -= need;
    }
    return 1;
}

static const char *check_jpeg(const deid_frame_desc *l, const char *ts, const uint8_t *d, size_t n,
                              int *codec)
{
    int ls = !strcmp(ts, "1.2.840.10008.1.2.4.80") || !strcmp(ts, "1.2.840.10008.1.2.4.81");
    if (n < 4 || d[0] != 0xFF || d[1] != 0xD8)
        return "no JPEG start of image";
    size_t pos = 2;
    int sof = 0;
    for (;;) {
        while (pos < n && d[pos] == 0xFF && pos + 1 < n && d[pos + 1] == 0xFF)
            pos++; /* fill bytes */
        if (pos + 4 > n || d[pos] != 0xFF)
            return "truncated or corrupt JPEG marker segment";
        unsigned m = d[pos + 1];
        if (m == 0xD9 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01)
            return "JPEG marker out of place before the scan";
        unsigned len = be16(d + pos + 2);
        if (len < 2 || len > n - pos - 2)
            return "JPEG marker segment longer than the data";
        int is_sof = (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) || m == 0xF7;
        if (is_sof) {
            const uint8_t *s = d + pos + 4;
            if (len < 8 || sof)
                return "bad JPEG frame header";
            unsigned nf = s[5];
            if (len < 8 + 3 * nf)
                return "bad JPEG frame header";
            if (be16(s + 3) != l->cols || (be16(s + 1) != l->rows && be16(s + 1) != 0))
                return "JPEG dimensions differ from Rows/Columns";
            if (nf != l->samples)
                return "JPEG components differ from Samples per Pixel";
            const char *why = check_precision(l, s[0]);
            if (why)
                return why;
            sof = 1;
            /* baseline, extended and progressive 8-bit DCT: libjpeg-turbo; lossless: ours */
            if ((m == 0xC0 || m == 0xC1 || m == 0xC2) && s[0] == 8)
                *codec = DEID_CODEC_TURBO;
            else if (m == 0xC3)
                *codec = DEID_CODEC_LOSSLESS;
            else if (ls ? m != 0xF7 : !(m == 0xC1 && s[0] == 12))
                return "unsupported JPEG process"; /* GDCM: 12-bit sequential, JPEG-LS */
        }
        if (m == 0xC4 && !dht_ok(d + pos + 4, len - 2))
            return "bad JPEG Huffman table";
        if (m == 0xDB && !dqt_ok(d + pos + 4, len - 2))
            return "bad JPEG quantization table";
        if (m == 0xE0 && len >= 7 && !memcmp(d + pos + 4, "JFIF", 5) && d[pos + 9] != 1)
            return "unknown JFIF version"; /* a libjpeg warning, on which GDCM aborts */
        if (m == 0xDA)
            return sof ? NULL : "JPEG scan before any frame header";
        pos += 2 + len;
    }
}

/* The marker segments of the main header, then every tile-part's length (SOT's Psot) against
 * the bytes present. openjp2, under GDCM, leaks its tile state when a tile-part runs past the
 * end of the stream (found by fuzz_decode). */
static const char *check_j2k_tiles(const uint8_t *d, size_t n)
{
    size_t pos = 2; /* after SOC: the SIZ marker */
    for (;;) {
        if (pos + 4 > n)
            return "JPEG 2000 header truncated";
        unsigned m = be16(d + pos), len = be16(d + pos + 2);
        if (m == 0xFF90)
            break; /* the first tile-part */
        if ((m >> 8) != 0xFF || len < 2 || pos + 2 + len > n)
            return "bad JPEG 2000 marker segment";
        pos += 2 + (size_t)len;
    }
    while (pos + 2 <= n && be16(d + pos) == 0xFF90) {
        if (pos + 12 > n || be16(d + pos + 2) != 10)
            return "bad JPEG 2000 tile-part header";
        uint32_t psot = be32(d + pos + 6);
        if (psot == 0)
            return NULL; /* the last tile-part runs to the end of the stream */
        if (psot < 14 || psot > n - pos)
            return "JPEG 2000 tile-part longer than the stream";
        pos += psot;
    }
    return NULL;
}

static const char *check_j2k(const deid_frame_desc *l, const uint8_t *d, size_t n)
{
    if (n >= 8 && !memcmp(d, "\0\0\0\x0CjP  ", 8))
        return NULL; /* JP2 file format: left to the codec */
    if (n < 4 + 38 + 3 || be16(d) != 0xFF4F || be16(d + 2) != 0xFF51)
        return "no JPEG 2000 codestream header";
    const uint8_t *s = d + 4;
    unsigned lsiz = be16(s), csiz = be16(s + 36);
    if (lsiz < 38 + 3 * csiz || lsiz + 4 > n)
        return "bad JPEG 2000 image header";
    uint32_t xs = be32(s + 4), ys = be32(s + 8), xo = be32(s + 12), yo = be32(s + 16);
    if (xo > xs || yo > ys || xs - xo != l->cols || ys - yo != l->rows)
        return "JPEG 2000 dimensions differ from Rows/Columns";
    if (csiz != l->samples)
        return "JPEG 2000 components differ from Samples per Pixel";
    for (unsigned c = 0; c < csiz; c++) {
        const char *why = check_precision(l, (s[38 + 3 * c] & 0x7Fu) + 1);
        if (why)
            return why;
    }
    return check_j2k_tiles(d, n);
}

static const char *check_rle(const deid_frame_desc *l, const uint8_t *d, size_t n)
{
    if (n < 64)
        return "RLE header truncated";
    uint32_t segs = (uint32_t)deid__rd_le(d, 4);
    if (segs == 0 || segs > 15 || segs != l->samples * (l->bits_allocated / 8))
        return "RLE segment count does not match the pixel format";
    uint32_t prev = 0;
    for (uint32_t i = 0; i < segs; i++) {
        uint32_t off = (uint32_t)deid__rd_le(d + 4 + 4 * i, 4);
        if (off < 64 || off <= prev || off >= n)
            return "RLE segment offsets out of range";
        prev = off;
    }
    return NULL;
}

deid_status deid__codestream_check(const char *ts, const deid_frame_desc *f, const uint8_t *d,
                                   size_t n, int *codec)
{
    const char *why = NULL;
    *codec = DEID_CODEC_GDCM;
    if (!strcmp(ts, "1.2.840.10008.1.2.5"))
        why = check_rle(f, d, n);
    else if (!strncmp(ts, "1.2.840.10008.1.2.4.9", 21) ||
             !strncmp(ts, "1.2.840.10008.1.2.4.20", 22))
        why = check_j2k(f, d, n);
    else if (!strncmp(ts, "1.2.840.10008.1.2.4.", 20))
        why = check_jpeg(f, ts, d, n, codec);
    if (!why)
        return DEID_OK;
    return deid__fail(DEID_ERR_NO_PIXELS, "dicom", "%s", why);
}

/* ---- libjpeg-turbo -------------------------------------------------------------------------- */

typedef struct quiet_err {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} quiet_err;

static void on_error(j_common_ptr c)
{
    quiet_err *e = (quiet_err *)(void *)c->err;
    (*c->err->format_message)(c, e->msg);
    longjmp(e->jump, 1);
}

/* Warnings (corrupt entropy data) are counted, never printed. */
static void on_message(j_common_ptr c, int level)
{
    if (level < 0)
        c->err->num_warnings++;
}

static void on_output(j_common_ptr c) { (void)c; }

static int is_ybr(const char *pi) { return !strncmp(pi, "YBR", 3); }

/* The part that may longjmp: no locals of its own change after setjmp. */
static int run_decoder(struct jpeg_decompress_struct *cinfo, const deid_frame_desc *f,
                       const uint8_t *d, size_t n, uint8_t *out, const char **why)
{
    jpeg_mem_src(cinfo, d, (unsigned long)n);
    if (jpeg_read_header(cinfo, TRUE) != JPEG_HEADER_OK) {
        *why = "no JPEG image";
        return -1;
    }
    if (cinfo->image_width != f->cols || cinfo->image_height != f->rows ||
        cinfo->num_components != (int)f->samples || cinfo->data_precision != 8) {
        *why = "JPEG header differs from the DICOM header";
        return -1;
    }
    if (f->samples == 1) {
        cinfo->out_color_space = JCS_GRAYSCALE;
    } else {
        if (is_ybr(f->photometric))
            cinfo->jpeg_color_space = JCS_YCbCr; /* whatever the markers say */
        cinfo->out_color_space = JCS_RGB;
    }
    jpeg_start_decompress(cinfo);
    if (cinfo->output_components != (int)f->samples || cinfo->output_width != f->cols ||
        cinfo->output_height != f->rows) {
        *why = "unexpected JPEG output layout";
        return -1;
    }
    size_t stride = (size_t)f->cols * f->samples;
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW row = out + (size_t)cinfo->output_scanline * stride;
        if (jpeg_read_scanlines(cinfo, &row, 1) != 1) {
            *why = "JPEG data ends early";
            return -1;
        }
    }
    jpeg_finish_decompress(cinfo);
    return 0;
}

deid_status deid__jpeg8_decode(const deid_frame_desc *f, const uint8_t *d, size_t n, uint8_t *out,
                               char *photometric_out)
{
    struct jpeg_decompress_struct cinfo;
    quiet_err err;
    const char *why = NULL;
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error;
    err.pub.emit_message = on_message;
    err.pub.output_message = on_output;
    err.msg[0] = '\0';
    jpeg_create_decompress(&cinfo);
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return deid__fail(DEID_ERR_NO_PIXELS, "dicom", "JPEG: %s", err.msg);
    }
    int rc = run_decoder(&cinfo, f, d, n, out, &why);
    jpeg_destroy_decompress(&cinfo);
    if (rc != 0)
        return deid__fail(DEID_ERR_NO_PIXELS, "dicom", "%s", why);
    snprintf(photometric_out, 20, "%s", f->samples == 1 ? f->photometric : "RGB");
    return DEID_OK;
}
