/* Deflated Explicit VR Little Endian (1.2.840.10008.1.2.1.99): the data set after the file meta
 * information is one raw deflate stream (RFC 1951). It is inflated here with zlib, in C, with
 * the output bounded by the caller's limit, so that a hostile stream meets only our own
 * validating parser. (GDCM's reader asserted on a fuzzed deflated file: Debian builds GDCM
 * with assertions, and an assertion is an abort in a gateway.) */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "core/core.h"
#include "dicom/dicom_int.h"

#define M "dicom"

/* Inflate with the given window bits (-15: raw deflate, 47: zlib or gzip header). */
static deid_status inflate_with(const uint8_t *data, size_t size, int window_bits, uint64_t limit,
                                const char *name, uint8_t **out, size_t *out_size)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, window_bits) != Z_OK)
        return DEID_ERR_NOMEM;
    size_t cap = size < ((size_t)1 << 20) ? (size_t)1 << 20 : size, used = 0;
    if ((uint64_t)cap > limit)
        cap = (size_t)limit;
    uint8_t *buf = deid__malloc(cap ? cap : 1);
    deid_status st = buf ? DEID_OK : DEID_ERR_NOMEM;
    const uint8_t *in = data;
    size_t left = size;
    int zr = Z_OK;
    while (st == DEID_OK && zr != Z_STREAM_END) {
        if (used == cap) {
            if ((uint64_t)cap >= limit) {
                st = deid__fail(DEID_ERR_LIMIT, M,
                                "%s: deflated data set inflates to more than %llu bytes", name,
                                (unsigned long long)limit);
                break;
            }
            size_t grown = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
            if ((uint64_t)grown > limit)
                grown = (size_t)limit;
            uint8_t *nb = realloc(buf, grown);
            if (!nb) {
                st = DEID_ERR_NOMEM;
                break;
            }
            buf = nb;
            cap = grown;
        }
        if (z.avail_in == 0 && left) {
            z.next_in = (Bytef *)(uintptr_t)in;
            z.avail_in = left > UINT32_MAX ? UINT32_MAX : (uInt)left;
            in += z.avail_in;
            left -= z.avail_in;
        }
        size_t room = cap - used;
        z.next_out = buf + used;
        z.avail_out = room > UINT32_MAX ? UINT32_MAX : (uInt)room;
        uInt before = z.avail_out;
        zr = inflate(&z, Z_NO_FLUSH);
        used += before - z.avail_out;
        if (zr == Z_BUF_ERROR && z.avail_in == 0 && !left)
            zr = Z_DATA_ERROR; /* the stream ends before its last block */
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
            st = zr == Z_MEM_ERROR ? DEID_ERR_NOMEM
                                   : deid__fail(DEID_ERR_NOT_DICOM, M,
                                                "%s: deflated data set is corrupt or truncated (%s)",
                                                name, z.msg ? z.msg : "zlib error");
    }
    inflateEnd(&z);
    if (st != DEID_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    *out_size = used;
    return DEID_OK;
}

deid_status deid__inflate(const uint8_t *data, size_t size, uint64_t limit, const char *name,
                          uint8_t **out, size_t *out_size)
{
    if (size == 0)
        return deid__fail(DEID_ERR_NOT_DICOM, M, "%s: deflated data set is empty", name);
    deid_status st = inflate_with(data, size, -15, limit, name, out, out_size);
    /* Some writers wrap the stream in a zlib header; accept that too. */
    if (st == DEID_ERR_NOT_DICOM && size >= 2 && ((data[0] << 8) | data[1]) % 31 == 0 &&
        (data[0] & 0x0F) == 8 && inflate_with(data, size, 47, limit, name, out, out_size) == DEID_OK)
        return DEID_OK;
    return st;
}
