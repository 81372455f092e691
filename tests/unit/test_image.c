/* Pixel decoding: one frame of every transfer syntax in the shared data decodes to the header's
 * dimensions with real content; lossless pairs decode to identical pixels; a header claiming
 * more pixels than the data holds fails before allocating. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "core/core.h"
#include "deid/deid.h"
#include "dicom/dataset_int.h"

static int nonzero(deid_image *img)
{
    const uint8_t *p = deid_image_data(img);
    for (size_t i = 0; i < deid_image_size_bytes(img); i++)
        if (p[i])
            return 1;
    return 0;
}

typedef struct expect {
    const char *file, *ts;
    size_t rows, cols, samples, frames;
    unsigned bits;
    int is_signed;
    const char *photometric; /* of the decoded buffer */
} expect;

static const expect cases[] = {
    {"ct/pydicom-data_693_UNCR_CQ500_headCT.dcm", "1.2.840.10008.1.2.1", 512, 512, 1, 1, 16, 1,
     "MONOCHROME2"},
    {"ct/pydicom-data_693_J2KR_CQ500_headCT.dcm", "1.2.840.10008.1.2.4.90", 512, 512, 1, 1, 16, 1,
     "MONOCHROME2"},
    {"ct/head_ct_5mm/I2.dcm", "1.2.840.10008.1.2.4.70", 512, 512, 1, 1, 16, 1, "MONOCHROME2"},
    {"us/orthanc_Issue16_HP_echo_34f.dcm", "1.2.840.10008.1.2.4.50", 430, 480, 3, 34, 8, 0, "RGB"},
    {"us/pydicom-data_OBXXXX1A_rle_2frame.dcm", "1.2.840.10008.1.2.5", 600, 800, 1, 2, 8, 0,
     "PALETTE COLOR"},
    {"us/dbdicom_UltrasoundPaletteColor_0020.dcm", "1.2.840.10008.1.2.5", 430, 600, 1, 11, 8, 0,
     "PALETTE COLOR"},
    {"us/pydicom-data_US1_J2KR.dcm", "1.2.840.10008.1.2.4.90", 480, 640, 3, 1, 8, 0, "RGB"},
    {"us/pydicom-data_US1_UNCR.dcm", "1.2.840.10008.1.2.1", 480, 640, 3, 1, 8, 0, "RGB"},
    {"text/dicompixelanon_XA_GE_JPEG_02_with_Overlays.dcm", "1.2.840.10008.1.2.4.70", 0, 0, 1, 0, 0,
     0, "MONOCHROME2"},
};

static void test_syntaxes(void)
{
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const expect *c = &cases[k];
        deid_dataset *ds = check_load_shared(c->file);
        if (!ds)
            continue;
        CHECK(!strcmp(deid_dataset_transfer_syntax(ds), c->ts));
        deid_image *img = NULL;
        deid_status st = deid_image_decode(ds, 0, 1, 0, &img);
        if (st != DEID_OK) {
            fprintf(stderr, "%s: decode failed: %s\n", c->file, deid_last_error());
            check_failures++;
            deid_dataset_free(ds);
            continue;
        }
        if (c->rows) {
            CHECK(deid_image_rows(img) == c->rows && deid_image_cols(img) == c->cols);
            CHECK(deid_image_bits(img) == c->bits && deid_image_signed(img) == c->is_signed);
        }
        CHECK(deid_image_frames(img) == 1);
        CHECK(deid_image_samples(img) == c->samples);
        if (strcmp(deid_image_photometric(img), c->photometric)) {
            fprintf(stderr, "%s: photometric %s, expected %s\n", c->file,
                    deid_image_photometric(img), c->photometric);
            check_failures++;
        }
        CHECK(deid_image_size_bytes(img) == deid_image_rows(img) * deid_image_cols(img) *
                                                deid_image_samples(img) * deid_image_bits(img) / 8);
        CHECK(nonzero(img));
        deid_image_free(img);
        /* the last frame too (multi-frame files) */
        if (c->frames > 1) {
            CHECK_OK(deid_image_decode(ds, c->frames - 1, 0, 0, &img));
            CHECK(img && deid_image_frames(img) == 1 && nonzero(img));
            deid_image_free(img);
            img = NULL;
            CHECK(deid_image_decode(ds, c->frames, 1, 0, &img) == DEID_ERR_ARGUMENT);
            CHECK(deid_image_decode(ds, 0, c->frames + 1, 0, &img) == DEID_ERR_ARGUMENT);
            CHECK(img == NULL);
        }
        deid_dataset_free(ds);
    }
}

/* Decoding frames [first, first+count) gives the same bytes as slicing all frames. */
static void test_frame_ranges(void)
{
    deid_dataset *ds = check_load_shared("us/dbdicom_UltrasoundPaletteColor_0020.dcm");
    if (!ds)
        return;
    deid_image *all = NULL, *some = NULL;
    CHECK_OK(deid_image_decode(ds, 0, 0, 0, &all));
    CHECK_OK(deid_image_decode(ds, 3, 4, 0, &some));
    if (all && some) {
        CHECK(deid_image_frames(all) == 11 && deid_image_frames(some) == 4);
        size_t fb = deid_image_size_bytes(all) / 11;
        CHECK(deid_image_size_bytes(some) == 4 * fb);
        CHECK(!memcmp((uint8_t *)deid_image_data(all) + 3 * fb, deid_image_data(some), 4 * fb));
    }
    deid_image_free(all);
    deid_image_free(some);
    /* a limit below one frame */
    deid_image *img = NULL;
    CHECK(deid_image_decode(ds, 0, 1, 1000, &img) == DEID_ERR_LIMIT);
    CHECK(img == NULL);
    deid_dataset_free(ds);
}

static int same_pixels(const char *a, const char *b)
{
    deid_dataset *da = check_load_shared(a), *db = check_load_shared(b);
    int same = -1;
    if (da && db) {
        deid_image *ia = NULL, *ib = NULL;
        CHECK_OK(deid_image_decode(da, 0, 0, 0, &ia));
        CHECK_OK(deid_image_decode(db, 0, 0, 0, &ib));
        if (ia && ib) {
            same = deid_image_size_bytes(ia) == deid_image_size_bytes(ib) &&
                   !strcmp(deid_image_photometric(ia), deid_image_photometric(ib)) &&
                   !memcmp(deid_image_data(ia), deid_image_data(ib), deid_image_size_bytes(ia));
        }
        deid_image_free(ia);
        deid_image_free(ib);
    }
    deid_dataset_free(da);
    deid_dataset_free(db);
    return same;
}

static void test_lossless_pairs(void)
{
    CHECK(same_pixels("us/pydicom-data_US1_UNCR.dcm", "us/pydicom-data_US1_J2KR.dcm") != 0);
    CHECK(same_pixels("ct/pydicom-data_693_UNCR_CQ500_headCT.dcm",
                      "ct/pydicom-data_693_J2KR_CQ500_headCT.dcm") != 0);
}

/* Other syntaxes made with GDCM's gdcmconv when it is installed: each must decode to exactly
 * the pixels of the uncompressed source. */
static void test_generated(void)
{
    static const struct {
        const char *src, *flags;
    } gen[] = {
        {"us/pydicom-data_US1_UNCR.dcm", "--rle"},
        {"us/pydicom-data_US1_UNCR.dcm", "--jpegls"},
        {"us/pydicom-data_US1_UNCR.dcm", "--jpeg --lossless"}, /* JPEG lossless of RGB */
        {"ct/pydicom-data_693_UNCR_CQ500_headCT.dcm", "--jpegls"},
        {"ct/pydicom-data_693_UNCR_CQ500_headCT.dcm", "--rle"},
        {"ct/pydicom-data_693_UNCR_CQ500_headCT.dcm", "--jpeg --lossless"},
        {"us/orthanc_Issue19_ATL_sector.dcm", "--rle"},
    };
    if (system("command -v gdcmconv >/dev/null 2>&1") != 0) {
        fprintf(stderr, "note: gdcmconv not found, skipping generated syntaxes\n");
        return;
    }
    char dir[] = "/tmp/deid_image_XXXXXX";
    if (!mkdtemp(dir))
        return;
    for (size_t k = 0; k < sizeof gen / sizeof *gen; k++) {
        const char *src = check_shared(gen[k].src);
        if (!src)
            continue;
        char srcpath[4096], out[600], cmd[5000];
        snprintf(srcpath, sizeof srcpath, "%s", src);
        snprintf(out, sizeof out, "%s/gen%zu.dcm", dir, k);
        snprintf(cmd, sizeof cmd, "gdcmconv %s '%s' '%s' >/dev/null 2>&1", gen[k].flags, srcpath,
                 out);
        if (system(cmd) != 0) {
            fprintf(stderr, "note: gdcmconv %s failed, skipping\n", gen[k].flags);
            continue;
        }
        deid_dataset *a = NULL, *b = NULL;
        deid_image *ia = NULL, *ib = NULL;
        CHECK_OK(deid_dataset_read_file(srcpath, NULL, &a));
        CHECK_OK(deid_dataset_read_file(out, NULL, &b));
        if (a && b) {
            CHECK_OK(deid_image_decode(a, 0, 0, 0, &ia));
            if (deid_image_decode(b, 0, 0, 0, &ib) != DEID_OK) {
                fprintf(stderr, "gdcmconv %s: %s\n", gen[k].flags, deid_last_error());
                check_failures++;
            }
        }
        if (ia && ib) {
            int same = deid_image_size_bytes(ia) == deid_image_size_bytes(ib) &&
                       !memcmp(deid_image_data(ia), deid_image_data(ib), deid_image_size_bytes(ia));
            if (!same || strcmp(deid_image_photometric(ia), deid_image_photometric(ib))) {
                fprintf(stderr, "gdcmconv %s of %s (%s): pixels or photometric (%s vs %s) differ\n",
                        gen[k].flags, gen[k].src, deid_dataset_transfer_syntax(b),
                        deid_image_photometric(ia), deid_image_photometric(ib));
                check_failures++;
            }
        }
        deid_image_free(ia);
        deid_image_free(ib);
        deid_dataset_free(a);
        deid_dataset_free(b);
        unlink(out);
    }
    rmdir(dir);
}

/* ---- synthetic headers ---------------------------------------------------------------------- */

static void set_us(deid_dataset *ds, uint16_t g, uint16_t e, unsigned v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    CHECK_OK(deid_dataset_set(ds, DEID_TAG(g, e), "US", b, 2));
}

static deid_dataset *synthetic(unsigned rows, unsigned cols, const char *frames, unsigned bits,
                               const void *pixels, size_t n)
{
    deid_dataset *ds = deid__dataset_new("synthetic");
    ds->transfer_syntax = deid__strdup("1.2.840.10008.1.2.1");
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0008, 0x0016), "1.2.840.10008.5.1.4.1.1.7"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0008, 0x0018), "1.2.3.4"));
    set_us(ds, 0x0028, 0x0002, 1);
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0028, 0x0004), "MONOCHROME2"));
    if (frames)
        CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0028, 0x0008), frames));
    set_us(ds, 0x0028, 0x0010, rows);
    set_us(ds, 0x0028, 0x0011, cols);
    set_us(ds, 0x0028, 0x0100, bits);
    set_us(ds, 0x0028, 0x0101, bits);
    set_us(ds, 0x0028, 0x0102, bits - 1);
    set_us(ds, 0x0028, 0x0103, 0);
    CHECK_OK(deid_dataset_set(ds, DEID_TAG(0x7FE0, 0x0010), bits == 8 ? "OB" : "OW", pixels, n));
    return ds;
}

static void test_lying_headers(void)
{
    /* 65535 x 65535 x 1000 frames claimed, 10 bytes present: fails before allocating */
    deid_dataset *ds = synthetic(65535, 65535, "1000", 16, "0123456789", 10);
    deid_image *img = NULL;
    deid_status st = deid_image_decode(ds, 0, 0, 0, &img);
    CHECK(st == DEID_ERR_LIMIT || st == DEID_ERR_NO_PIXELS);
    st = deid_image_decode(ds, 0, 1, UINT64_MAX, &img);
    CHECK(st == DEID_ERR_NO_PIXELS);
    CHECK(strstr(deid_last_error(), "synthetic") != NULL);
    CHECK(img == NULL);

    /* the same through a write and read: the file itself is fine, its pixels are not */
    void *bytes = NULL;
    size_t n = 0;
    deid_dataset *back = NULL;
    CHECK_OK(deid_dataset_write_memory(ds, &bytes, &n));
    CHECK_OK(deid_dataset_read_memory(bytes, n, "lying", NULL, &back));
    if (back) {
        st = deid_image_decode(back, 0, 0, UINT64_MAX, &img);
        CHECK(st == DEID_ERR_NO_PIXELS);
    }
    deid_dataset_free(back);
    deid_free(bytes);

    /* encapsulated: 1000 frames claimed, one tiny fragment */
    deid_elem *px = deid__item_find(&ds->root, DEID_TAG(0x7FE0, 0x0010));
    deid__elem_clear(px);
    px->vr = DEID_VR('O', 'B');
    px->encapsulated = 1;
    px->frags = calloc(2, sizeof *px->frags);
    px->nfrags = 2;
    px->frags[1].data = malloc(10);
    memcpy(px->frags[1].data, "\xFF\xD8\xFF\xDB\0\0\0\0\0\0", 10);
    px->frags[1].len = 10;
    free(ds->transfer_syntax);
    ds->transfer_syntax = deid__strdup("1.2.840.10008.1.2.4.70");
    st = deid_image_decode(ds, 0, 0, UINT64_MAX, &img);
    CHECK(st == DEID_ERR_NO_PIXELS || st == DEID_ERR_LIMIT);
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0028, 0x0008), "1"));
    st = deid_image_decode(ds, 0, 0, UINT64_MAX, &img); /* 8 GB from 10 bytes */
    CHECK(st == DEID_ERR_LIMIT);
    set_us(ds, 0x0028, 0x0010, 64);
    set_us(ds, 0x0028, 0x0011, 64);
    st = deid_image_decode(ds, 0, 0, 0, &img); /* plausible size, corrupt stream */
    CHECK(st != DEID_OK && deid_last_error()[0]);
    CHECK(img == NULL);
    deid_dataset_free(ds);

    /* no pixel data, 32-bit pixels */
    ds = synthetic(4, 4, NULL, 8, "0123456789abcdef", 16);
    set_us(ds, 0x0028, 0x0100, 32);
    CHECK(deid_image_decode(ds, 0, 0, 0, &img) == DEID_ERR_UNSUPPORTED);
    CHECK_OK(deid_dataset_remove(ds, DEID_TAG(0x7FE0, 0x0010)));
    CHECK(deid_image_decode(ds, 0, 0, 0, &img) == DEID_ERR_NO_PIXELS);
    CHECK(deid_image_decode(NULL, 0, 0, 0, &img) == DEID_ERR_ARGUMENT);
    deid_dataset_free(ds);
}

/* 12 stored bits, signed, garbage in the high nibble: values come out sign-extended. */
static void test_stored_bits(void)
{
    const uint16_t raw[4] = {0xF7FF, 0x0800, 0xA001, 0x0FFF};
    uint8_t le[8];
    for (int i = 0; i < 4; i++) {
        le[2 * i] = (uint8_t)raw[i];
        le[2 * i + 1] = (uint8_t)(raw[i] >> 8);
    }
    deid_dataset *ds = synthetic(2, 2, NULL, 16, le, sizeof le);
    set_us(ds, 0x0028, 0x0101, 12);
    set_us(ds, 0x0028, 0x0102, 11);
    set_us(ds, 0x0028, 0x0103, 1);
    deid_image *img = NULL;
    CHECK_OK(deid_image_decode(ds, 0, 0, 0, &img));
    if (img) {
        const int16_t *v = deid_image_data(img);
        CHECK(deid_image_signed(img));
        CHECK(v[0] == 2047 && v[1] == -2048 && v[2] == 1 && v[3] == -1);
    }
    deid_image_free(img);
    deid_dataset_free(ds);
}

int main(void)
{
    test_syntaxes();
    test_frame_ranges();
    test_lossless_pairs();
    test_generated();
    test_lying_headers();
    test_stored_bits();
    return check_done("test_image");
}
