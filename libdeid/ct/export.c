/* libdeid: volume export (include/deid/ct.h): NIfTI-1 (header through niftilib) and NRRD,
 * optionally gzipped, each written in one atomic step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "core/core.h"
#include "ct/ct_int.h"
#include "deid_config.h"
#if DEID_HAVE_NIFTI
#include <nifti1_io.h>
#endif

#define M "ct"
#define GZIP_LEVEL 3 /* CT compresses about as well as at 6, at twice the speed */

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Every stored value fits in int16. */
static int fits_int16(const deid_volume *v)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->vox[i] < INT16_MIN || v->vox[i] > INT16_MAX)
            return 0;
    return 1;
}

/* Append n values as little-endian int16 or int32. */
static void put_values(uint8_t *out, const int32_t *in, size_t n, int bytes)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)in[i];
        for (int b = 0; b < bytes; b++)
            *out++ = (uint8_t)(u >> (8 * b));
    }
}

/* gzip `in` into a new buffer *out (free()). */
static deid_status gzip_buffer(const uint8_t *in, size_t n, uint8_t **out, size_t *out_n,
                               const char *path)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, GZIP_LEVEL, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return deid__fail(DEID_ERR_NOMEM, M, "%s: zlib: cannot start", path);
    deid_buf b = {0};
    size_t done = 0;
    int rc = Z_OK;
    while (rc == Z_OK) {
        if (deid__buf_reserve(&b, 1 << 20)) {
            rc = Z_MEM_ERROR;
            break;
        }
        size_t chunk = n - done > (1u << 30) ? (1u << 30) : n - done;
        z.next_in = (Bytef *)(uintptr_t)(in + done);
        z.avail_in = (uInt)chunk;
        z.next_out = (Bytef *)b.data + b.len;
        z.avail_out = (uInt)(b.cap - b.len - 1);
        int flush = done + chunk == n ? Z_FINISH : Z_NO_FLUSH;
        rc = deflate(&z, flush);
        done += chunk - z.avail_in;
        b.len = b.cap - 1 - z.avail_out;
        if (rc == Z_BUF_ERROR)
            rc = Z_OK; /* no room: the loop makes some */
    }
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        deid__buf_free(&b);
        return deid__fail(DEID_ERR_NOMEM, M, "%s: zlib: compression failed", path);
    }
    *out = (uint8_t *)b.data;
    *out_n = b.len;
    return DEID_OK;
}

/* Write header + values (gzipped when asked) atomically. */
static deid_status write_image(const char *path, const void *header, size_t header_n,
                               const deid_volume *v, int bytes, int gzip)
{
    size_t data_n, total;
    if (!deid__mul_size(v->n, (size_t)bytes, &data_n) ||
        !deid__add_size(data_n, header_n, &total))
        return deid__fail(DEID_ERR_LIMIT, M, "%s: volume too large", path);
    uint8_t *buf = deid__malloc(total ? total : 1);
    if (!buf)
        return DEID_ERR_NOMEM;
    memcpy(buf, header, header_n);
    put_values(buf + header_n, v->vox, v->n, bytes);
    deid_status st;
    if (gzip) {
        uint8_t *z;
        size_t zn;
        st = gzip_buffer(buf, total, &z, &zn, path);
        free(buf);
        if (st != DEID_OK)
            return st;
        buf = z;
        total = zn;
    }
    st = deid__write_file_atomic(path, buf, total, 0644, 0);
    free(buf);
    return st;
}

/* ---- NIfTI-1 --------------------------------------------------------------------------------- */

#if DEID_HAVE_NIFTI
/* The voxel-to-RAS affine dcm2niix writes: LPS negated in x and y, and the row axis flipped
 * (NIfTI row 0 is the last DICOM row), so that j points along the column direction's
 * opposite from the bottom row. */
static mat44 nifti_affine(const deid_volume_geometry *g)
{
    mat44 a;
    memset(&a, 0, sizeof a);
    double origin[3];
    for (int c = 0; c < 3; c++)
        origin[c] = g->origin[c] + (double)(g->dims[1] - 1) * g->spacing[1] * g->direction[3 + c];
    for (int r = 0; r < 3; r++) {
        double sign = r < 2 ? -1.0 : 1.0;
        for (int ax = 0; ax < 3; ax++) {
            double col = g->spacing[ax] * g->direction[3 * ax + r] * (ax == 1 ? -1.0 : 1.0);
            a.m[r][ax] = (float)(sign * col);
        }
        a.m[r][3] = (float)(sign * origin[r]);
    }
    a.m[3][3] = 1.0f;
    return a;
}

/* The volume with its rows in reverse order (see nifti_affine). */
static deid_status flip_rows(const deid_volume *v, deid_volume *out)
{
    size_t nx = v->geom.dims[0], ny = v->geom.dims[1], nz = v->geom.dims[2];
    *out = *v;
    if (!(out->vox = deid__malloc(v->n * sizeof *v->vox)))
        return DEID_ERR_NOMEM;
    for (size_t k = 0; k < nz; k++)
        for (size_t j = 0; j < ny; j++)
            memcpy(out->vox + (k * ny + j) * nx, v->vox + (k * ny + (ny - 1 - j)) * nx,
                   nx * sizeof *v->vox);
    return DEID_OK;
}

deid_status deid_volume_write_nifti(const deid_volume *vol, const char *path)
{
    if (!vol || !path)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deid_volume_write_nifti: NULL argument");
    int gz = ends_with(path, ".nii.gz");
    if (!gz && !ends_with(path, ".nii"))
        return deid__fail(DEID_ERR_ARGUMENT, M, "%s: a NIfTI file name ends .nii or .nii.gz",
                          path);
    const deid_volume_geometry *g = &vol->geom;
    int small = fits_int16(vol);
    int dims[8] = {3, 1, 1, 1, 1, 1, 1, 1};
    for (int a = 0; a < 3; a++) {
        if (g->dims[a] > 32767)
            return deid__fail(DEID_ERR_LIMIT, M, "%s: NIfTI-1 holds at most 32767 voxels a side",
                              path);
        dims[a + 1] = (int)g->dims[a];
    }
    nifti_image *nim = nifti_make_new_nim(dims, small ? DT_INT16 : DT_INT32, 0);
    if (!nim)
        return deid__fail(DEID_ERR_NOMEM, M, "%s: niftilib: cannot make the header", path);
    nim->dx = nim->pixdim[1] = (float)g->spacing[0];
    nim->dy = nim->pixdim[2] = (float)g->spacing[1];
    nim->dz = nim->pixdim[3] = (float)g->spacing[2];
    nim->scl_slope = (float)vol->slope;
    nim->scl_inter = (float)vol->intercept;
    nim->xyz_units = NIFTI_UNITS_MM;
    nim->time_units = NIFTI_UNITS_UNKNOWN;
    nim->nifti_type = NIFTI_FTYPE_NIFTI1_1;
    nim->iname_offset = 352;
    nim->qform_code = nim->sform_code = NIFTI_XFORM_SCANNER_ANAT;
    nim->sto_xyz = nifti_affine(g);
    float dx, dy, dz;
    nifti_mat44_to_quatern(nim->sto_xyz, &nim->quatern_b, &nim->quatern_c, &nim->quatern_d,
                           &nim->qoffset_x, &nim->qoffset_y, &nim->qoffset_z, &dx, &dy, &dz,
                           &nim->qfac);
    nim->qto_xyz = nifti_quatern_to_mat44(nim->quatern_b, nim->quatern_c, nim->quatern_d,
                                          nim->qoffset_x, nim->qoffset_y, nim->qoffset_z,
                                          nim->dx, nim->dy, nim->dz, nim->qfac);
    snprintf(nim->descrip, sizeof nim->descrip, "libdeid");
    struct nifti_1_header h = nifti_convert_nim2nhdr(nim);
    nifti_image_free(nim);
    uint8_t header[352];
    memset(header, 0, sizeof header);
    memcpy(header, &h, sizeof h); /* 348 bytes, then an empty extension flag */
    deid_volume flipped;
    deid_status st = flip_rows(vol, &flipped);
    if (st != DEID_OK)
        return st;
    st = write_image(path, header, sizeof header, &flipped, small ? 2 : 4, gz);
    free(flipped.vox);
    return st;
}
#else
deid_status deid_volume_write_nifti(const deid_volume *vol, const char *path)
{
    (void)vol;
    return deid__fail(DEID_ERR_UNSUPPORTED, M, "%s: built without niftilib (NIfTI export)",
                      path ? path : "NIfTI");
}
#endif

/* ---- NRRD ------------------------------------------------------------------------------------ */

/* Integer rescales (CT's 1 and -1024) are applied, so the file holds modality units as
 * readers expect; otherwise the stored values are written with the rescale as key/value
 * pairs. */
static int integer_rescale(const deid_volume *v)
{
    return v->slope == 1.0 && v->intercept == floor(v->intercept) && fabs(v->intercept) < 1e9;
}

deid_status deid_volume_write_nrrd(const deid_volume *vol, const char *path, int gzip)
{
    if (!vol || !path)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deid_volume_write_nrrd: NULL argument");
    if (!ends_with(path, ".nrrd"))
        return deid__fail(DEID_ERR_ARGUMENT, M, "%s: a NRRD file name ends .nrrd", path);
    deid_volume out = *vol;
    int32_t *values = NULL;
    if (integer_rescale(vol) && vol->intercept != 0) {
        if (!(values = deid__malloc(vol->n * sizeof *values)))
            return DEID_ERR_NOMEM;
        int64_t add = (int64_t)vol->intercept;
        for (size_t i = 0; i < vol->n; i++) {
            int64_t s = vol->vox[i] + add;
            values[i] = s < INT32_MIN ? INT32_MIN : s > INT32_MAX ? INT32_MAX : (int32_t)s;
        }
        out.vox = values;
    }
    int small = fits_int16(&out);
    const deid_volume_geometry *g = &vol->geom;
    deid_buf h = {0};
    int bad = deid__buf_printf(&h,
                               "NRRD0004\n# written by libdeid\ntype: %s\ndimension: 3\n"
                               "space: left-posterior-superior\nsizes: %zu %zu %zu\n"
                               "space directions:",
                               small ? "int16" : "int32", g->dims[0], g->dims[1], g->dims[2]);
    for (int a = 0; a < 3 && !bad; a++)
        bad = deid__buf_printf(&h, " (%.17g,%.17g,%.17g)", g->spacing[a] * g->direction[3 * a],
                               g->spacing[a] * g->direction[3 * a + 1],
                               g->spacing[a] * g->direction[3 * a + 2]);
    if (!bad)
        bad = deid__buf_printf(&h,
                               "\nkinds: domain domain domain\nendian: little\nencoding: %s\n"
                               "space units: \"mm\" \"mm\" \"mm\"\n"
                               "space origin: (%.17g,%.17g,%.17g)\n",
                               gzip ? "gzip" : "raw", g->origin[0], g->origin[1], g->origin[2]);
    if (!bad && !integer_rescale(vol))
        bad = deid__buf_printf(&h, "rescale slope:=%.17g\nrescale intercept:=%.17g\n",
                               vol->slope, vol->intercept);
    if (!bad)
        bad = deid__buf_printf(&h, "\n");
    deid_status st = bad ? DEID_ERR_NOMEM : DEID_OK;
    if (st == DEID_OK && !gzip)
        st = write_image(path, h.data, h.len, &out, small ? 2 : 4, 0);
    if (st == DEID_OK && gzip) {
        /* the header stays plain text: only the data is compressed */
        size_t bytes = small ? 2 : 4, data_n;
        uint8_t *raw = NULL, *z = NULL;
        size_t zn = 0;
        if (!deid__mul_size(out.n, bytes, &data_n))
            st = deid__fail(DEID_ERR_LIMIT, M, "%s: volume too large", path);
        else if (!(raw = deid__malloc(data_n ? data_n : 1)))
            st = DEID_ERR_NOMEM;
        if (st == DEID_OK) {
            put_values(raw, out.vox, out.n, (int)bytes);
            st = gzip_buffer(raw, data_n, &z, &zn, path);
        }
        free(raw);
        if (st == DEID_OK && deid__buf_append(&h, z, zn))
            st = DEID_ERR_NOMEM;
        free(z);
        if (st == DEID_OK)
            st = deid__write_file_atomic(path, h.data, h.len, 0644, 0);
    }
    deid__buf_free(&h);
    free(values);
    return st;
}
