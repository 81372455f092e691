/* JPEG baseline frame encoder on libjpeg-turbo: one compressor per image (its tables and
 * buffers reused frame after frame), an in-memory destination that grows as needed, errors
 * turned into deid_status instead of libjpeg's exit(), nothing printed. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>
#include "pixel/pixel_int.h"

static const char *M = "pixel";

struct deid_jpeg_enc {
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr err;
    struct jpeg_destination_mgr dest;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    int created;
    size_t rows, cols, samples, stride;
    int ybr_input, quality, h_subsample;
    JSAMPROW *rowptr;      /* one pointer per row, reused */
    uint8_t *buf;          /* compressed output of the current frame */
    size_t cap, len;
};

static deid_jpeg_enc *enc_of(j_common_ptr c)
{
    return (deid_jpeg_enc *)(void *)((char *)c - offsetof(deid_jpeg_enc, cinfo));
}

static void on_error(j_common_ptr c)
{
    deid_jpeg_enc *e = enc_of(c);
    (*c->err->format_message)(c, e->msg);
    longjmp(e->jump, 1);
}

static void on_message(j_common_ptr c, int level) { (void)c, (void)level; }
static void on_output(j_common_ptr c) { (void)c; }

static void dest_init(j_compress_ptr c)
{
    deid_jpeg_enc *e = enc_of((j_common_ptr)c);
    c->dest->next_output_byte = e->buf;
    c->dest->free_in_buffer = e->cap;
}

/* The buffer is full: double it and go on where it stopped. */
static boolean dest_grow(j_compress_ptr c)
{
    deid_jpeg_enc *e = enc_of((j_common_ptr)c);
    size_t cap;
    uint8_t *p = NULL;
    if (deid__mul_size(e->cap, 2, &cap))
        p = realloc(e->buf, cap);
    if (!p) {
        ERREXIT1(c, JERR_OUT_OF_MEMORY, 10);
        return FALSE; /* not reached: error_exit jumps */
    }
    c->dest->next_output_byte = p + e->cap;
    c->dest->free_in_buffer = cap - e->cap;
    e->buf = p;
    e->cap = cap;
    return TRUE;
}

static void dest_term(j_compress_ptr c)
{
    deid_jpeg_enc *e = enc_of((j_common_ptr)c);
    e->len = e->cap - c->dest->free_in_buffer;
}

/* Parameters set once; every frame is then a complete JPEG stream with its own tables. */
static void configure(deid_jpeg_enc *e)
{
    struct jpeg_compress_struct *c = &e->cinfo;
    c->image_width = (JDIMENSION)e->cols;
    c->image_height = (JDIMENSION)e->rows;
    c->input_components = (int)e->samples;
    c->in_color_space = e->samples == 1 ? JCS_GRAYSCALE : e->ybr_input ? JCS_YCbCr : JCS_RGB;
    jpeg_set_defaults(c);
    jpeg_set_quality(c, e->quality, TRUE);
    c->dct_method = JDCT_ISLOW;
    c->optimize_coding = FALSE;
    if (e->samples == 3) {
        jpeg_set_colorspace(c, JCS_YCbCr);
        c->comp_info[0].h_samp_factor = e->h_subsample == 2 ? 2 : 1;
        c->comp_info[0].v_samp_factor = 1;
        for (int i = 1; i < 3; i++)
            c->comp_info[i].h_samp_factor = c->comp_info[i].v_samp_factor = 1;
    }
}

deid_jpeg_enc *deid__jpeg_enc_new(size_t rows, size_t cols, size_t samples, int ybr_input,
                                  int quality, int h_subsample)
{
    if (rows == 0 || cols == 0 || rows > JPEG_MAX_DIMENSION || cols > JPEG_MAX_DIMENSION ||
        (samples != 1 && samples != 3)) {
        deid__fail(DEID_ERR_UNSUPPORTED, M,
                   "JPEG baseline cannot hold %zux%zu images with %zu samples per pixel", rows,
                   cols, samples);
        return NULL;
    }
    size_t raw, ptrs;
    if (!deid__mul_size(rows, cols * samples, &raw) || !deid__add_size(raw / 2, 65536, &raw) ||
        !deid__mul_size(rows, sizeof(JSAMPROW), &ptrs)) {
        deid__fail(DEID_ERR_LIMIT, M, "JPEG encoder: %zux%zu frame size overflows", rows, cols);
        return NULL;
    }
    deid_jpeg_enc *e = deid__calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->rows = rows;
    e->cols = cols;
    e->samples = samples;
    e->ybr_input = ybr_input;
    e->quality = quality;
    e->h_subsample = h_subsample;
    e->stride = cols * samples;
    e->cap = raw; /* q95 streams are usually well under half the raw size */
    e->rowptr = deid__malloc(ptrs);
    e->buf = deid__malloc(e->cap);
    if (!e->rowptr || !e->buf) {
        deid__jpeg_enc_free(e);
        return NULL;
    }
    e->cinfo.err = jpeg_std_error(&e->err);
    e->err.error_exit = on_error;
    e->err.emit_message = on_message;
    e->err.output_message = on_output;
    if (setjmp(e->jump)) {
        deid__fail(DEID_ERR_GENERIC, M, "JPEG encoder setup: %s", e->msg);
        deid__jpeg_enc_free(e);
        return NULL;
    }
    jpeg_create_compress(&e->cinfo);
    e->created = 1;
    e->dest.init_destination = dest_init;
    e->dest.empty_output_buffer = dest_grow;
    e->dest.term_destination = dest_term;
    e->cinfo.dest = &e->dest;
    configure(e);
    return e;
}

deid_status deid__jpeg_enc_frame(deid_jpeg_enc *e, const uint8_t *frame, const uint8_t **out,
                                 size_t *size)
{
    for (size_t r = 0; r < e->rows; r++)
        e->rowptr[r] = (JSAMPROW)(uintptr_t)(frame + r * e->stride);
    if (setjmp(e->jump)) {
        jpeg_abort_compress(&e->cinfo); /* ready for the next frame */
        if (e->err.msg_code == JERR_OUT_OF_MEMORY)
            return deid__fail(DEID_ERR_NOMEM, M, "JPEG encoder: out of memory");
        return deid__fail(DEID_ERR_GENERIC, M, "JPEG encoder: %s", e->msg);
    }
    jpeg_start_compress(&e->cinfo, TRUE);
    while (e->cinfo.next_scanline < e->cinfo.image_height)
        jpeg_write_scanlines(&e->cinfo, e->rowptr + e->cinfo.next_scanline,
                             e->cinfo.image_height - e->cinfo.next_scanline);
    jpeg_finish_compress(&e->cinfo);
    *out = e->buf;
    *size = e->len;
    return DEID_OK;
}

void deid__jpeg_enc_free(deid_jpeg_enc *e)
{
    if (!e)
        return;
    if (e->created)
        jpeg_destroy_compress(&e->cinfo);
    free(e->rowptr);
    free(e->buf);
    free(e);
}
