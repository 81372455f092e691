/* Keyed pseudonyms (docs/design.md, "Pseudonyms"): BLAKE2b-256 keyed with the 32-byte secret
 * (libsodium crypto_generichash) over a domain label including its NUL ("patient\0", "uid\0",
 * "instance\0", "dateshift\0") followed by the value without padding. Numbers are read from the
 * digest big-endian. */
#include <string.h>
#include <sodium.h>
#include "core/core.h"
#include "profile/profile_impl.h"

#define DIGEST_BYTES 32 /* crypto_generichash_BYTES */

static void keyed_hash(const deid_profile *p, const char *label, size_t label_size,
                       const char *value, size_t n, unsigned char out[DIGEST_BYTES])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, p->key.bytes, DEID_KEY_BYTES, DIGEST_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)label, label_size);
    crypto_generichash_update(&st, (const unsigned char *)value, n);
    crypto_generichash_final(&st, out, DIGEST_BYTES);
    sodium_memzero(&st, sizeof st); /* the state holds key material */
}

/* sizeof "label" counts the NUL, which is part of the hashed label. */
#define HASH(p, label, v, n, out) keyed_hash(p, label, sizeof label, v, n, out)

static uint64_t be64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

/* Right-aligned zero-padded decimal of v in out[0..digits), NUL after. */
static void decimal_fixed(uint64_t v, int digits, char *out)
{
    for (int i = digits - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
    out[digits] = '\0';
}

size_t deid__trim(const char *s, size_t n, const char **start)
{
    while (n > 0 && (*s == ' ' || *s == '\0')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\0'))
        n--;
    *start = s;
    return n;
}

int deid__next_value(const char *in, size_t n, size_t *pos, const char **v, size_t *vn)
{
    if (*pos > n)
        return 0;
    size_t end = *pos;
    while (end < n && in[end] != '\\')
        end++;
    *vn = deid__trim(in + *pos, end - *pos, v);
    *pos = end + 1; /* past n after the last value */
    return 1;
}

void deid__pseudonym(const deid_profile *p, const char *id, size_t n, char out[11])
{
    unsigned char d[DIGEST_BYTES];
    HASH(p, "patient", id, n, d);
    /* 2^64 / 10^10 is about 1.8e9, so the modulo bias is below 1e-9. */
    decimal_fixed(be64(d) % 10000000000u, 10, out);
}

size_t deid__uid(const deid_profile *p, const char *uid, size_t n, char out[65])
{
    unsigned char d[DIGEST_BYTES];
    HASH(p, "uid", uid, n, d);
    /* Decimal of the 128-bit big-endian number d[0..16) by long division of four 32-bit limbs
     * by 10^9 (portable: no __int128). At most 39 digits: "2.25." + digits fits in 44. */
    uint32_t limb[4];
    for (int i = 0; i < 4; i++)
        limb[i] = (uint32_t)d[4 * i] << 24 | (uint32_t)d[4 * i + 1] << 16 |
                  (uint32_t)d[4 * i + 2] << 8 | d[4 * i + 3];
    uint32_t chunk[5]; /* base 10^9 digits, least significant first */
    int nchunks = 0;
    do {
        uint64_t rem = 0;
        for (int i = 0; i < 4; i++) {
            uint64_t cur = rem << 32 | limb[i];
            limb[i] = (uint32_t)(cur / 1000000000u);
            rem = cur % 1000000000u;
        }
        chunk[nchunks++] = (uint32_t)rem;
    } while (limb[0] | limb[1] | limb[2] | limb[3]);
    memcpy(out, "2.25.", 5);
    size_t o = 5;
    char tmp[10];
    for (int c = nchunks - 1; c >= 0; c--) {
        decimal_fixed(chunk[c], 9, tmp);
        size_t skip = 0;
        if (c == nchunks - 1) /* most significant chunk: no leading zeros (but keep "0") */
            while (skip < 8 && tmp[skip] == '0')
                skip++;
        memcpy(out + o, tmp + skip, 9 - skip);
        o += 9 - skip;
    }
    out[o] = '\0';
    sodium_memzero(d, sizeof d);
    return o;
}

int deid__shift_days(const deid_profile *p, const char *id, size_t n)
{
    unsigned char d[DIGEST_BYTES];
    HASH(p, "dateshift", id, n, d);
    uint64_t r = be64(d) % (uint64_t)(2 * p->max_shift);
    /* [0, max) -> +1..+max, [max, 2max) -> -1..-max: never 0. */
    return r < (uint64_t)p->max_shift ? (int)r + 1 : -(int)(r - (uint64_t)p->max_shift) - 1;
}

void deid__instance_hash(const deid_profile *p, const char *uid, size_t n, char out[9])
{
    unsigned char d[DIGEST_BYTES];
    HASH(p, "instance", uid, n, d);
    decimal_fixed(be64(d) % 100000000u, 8, out);
}

int deid__profile_instance_hash(const deid_profile *p, const char *sop_uid, char out[9])
{
    if (!p || !sop_uid || !out)
        return -1;
    const char *s;
    size_t n = deid__trim(sop_uid, strlen(sop_uid), &s);
    deid__instance_hash(p, s, n, out);
    return 0;
}

deid_status deid_profile_patient_pseudonym(const deid_profile *profile, const char *patient_id,
                                           char out[11])
{
    if (!profile || !patient_id || !out)
        return deid__fail(DEID_ERR_ARGUMENT, "profile",
                          "deid_profile_patient_pseudonym: NULL argument");
    const char *s;
    size_t n = deid__trim(patient_id, strlen(patient_id), &s);
    deid__pseudonym(profile, s, n, out);
    return DEID_OK;
}

deid_status deid_profile_uid(const deid_profile *profile, const char *uid, char out[65])
{
    if (!profile || !uid || !out)
        return deid__fail(DEID_ERR_ARGUMENT, "profile", "deid_profile_uid: NULL argument");
    const char *s;
    size_t n = deid__trim(uid, strlen(uid), &s);
    deid__uid(profile, s, n, out);
    return DEID_OK;
}

deid_status deid_profile_date_shift(const deid_profile *profile, const char *patient_id,
                                    int *days)
{
    if (!profile || !patient_id || !days)
        return deid__fail(DEID_ERR_ARGUMENT, "profile", "deid_profile_date_shift: NULL argument");
    const char *s;
    size_t n = deid__trim(patient_id, strlen(patient_id), &s);
    *days = deid__shift_days(profile, s, n);
    return DEID_OK;
}
