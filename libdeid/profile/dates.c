/* Date shifting for Retain Longitudinal Temporal Information with Modified Dates: proper
 * calendar arithmetic on DA and the date part of DT, multi-valued and range values. Anything
 * that does not parse is reported as malformed so the caller empties it (never kept). */
#include <string.h>
#include "profile/profile_impl.h"

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's algorithms). */
static long days_from_civil(long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long)doe - 719468;
}

static void civil_from_days(long z, long *y, unsigned *m, unsigned *d)
{
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (long)yoe + era * 400 + (*m <= 2);
}

static int is_leap(long y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static unsigned month_days(long y, unsigned m)
{
    static const unsigned char days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

static int digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static unsigned num(const char *s, size_t n)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned)(s[i] - '0');
    return v;
}

/* Shift the date "YYYY[MM[DD]]" (len 4, 6 or 8, digits checked) by days, writing the same
 * precision. A partial date is shifted as its first day. -1 when invalid or out of 1..9999. */
static int shift_date(const char *s, size_t len, int days, char *out)
{
    long y = (long)num(s, 4);
    unsigned m = len >= 6 ? num(s + 4, 2) : 1, d = len >= 8 ? num(s + 6, 2) : 1;
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > month_days(y, m))
        return -1;
    civil_from_days(days_from_civil(y, m, d) + days, &y, &m, &d);
    if (y < 1 || y > 9999)
        return -1;
    char buf[9];
    buf[0] = (char)('0' + y / 1000);
    buf[1] = (char)('0' + y / 100 % 10);
    buf[2] = (char)('0' + y / 10 % 10);
    buf[3] = (char)('0' + y % 10);
    buf[4] = (char)('0' + m / 10);
    buf[5] = (char)('0' + m % 10);
    buf[6] = (char)('0' + d / 10);
    buf[7] = (char)('0' + d % 10);
    memcpy(out, buf, len);
    return 0;
}

/* One DA: exactly YYYYMMDD. Returns the length written or -1. */
static long shift_one_da(const char *s, size_t n, int days, char *out)
{
    if (n != 8 || !digits(s, 8) || shift_date(s, 8, days, out) != 0)
        return -1;
    return 8;
}

/* Length of the DT starting at s (YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX]) or 0. The date
 * part is shifted into out, the rest copied. An offset is preferred to a range separator when
 * '-' is followed by exactly four digits and the end or another '-'. */
static size_t shift_one_dt(const char *s, size_t n, int days, char *out)
{
    size_t k = 0;
    while (k < n && k < 14 && s[k] >= '0' && s[k] <= '9')
        k++;
    if (k < 4 || k % 2 != 0)
        return 0;
    size_t i = k;
    if (k == 14 && i < n && s[i] == '.') {
        size_t f = ++i;
        while (i < n && i - f < 6 && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f)
            return 0;
    }
    if (i + 5 <= n && (s[i] == '+' || s[i] == '-') && digits(s + i + 1, 4) &&
        (i + 5 == n || s[i + 5] == '-'))
        i += 5;
    size_t date_len = k < 8 ? k : 8;
    if (shift_date(s, date_len, days, out) != 0)
        return 0;
    memcpy(out + date_len, s + date_len, i - date_len);
    return i;
}

/* Shift one value or range part; returns the input length consumed (0 when invalid). DA parts
 * end at '-' or the end; DT parts stop where their grammar does. */
static size_t shift_part(const char *s, size_t n, int days, char *out, int dt)
{
    if (dt)
        return shift_one_dt(s, n, days, out);
    size_t len = 0;
    while (len < n && s[len] != '-')
        len++;
    return shift_one_da(s, len, days, out) < 0 ? 0 : len;
}

/* One value "A", or a range "A-B", "A-", "-B". Returns the output length or -1. */
static long shift_value(const char *v, size_t n, int days, char *out, int dt)
{
    size_t i = 0, o = 0;
    if (n == 0)
        return 0;
    if (v[0] != '-') {
        size_t used = shift_part(v, n, days, out, dt);
        if (used == 0)
            return -1;
        i = o = used;
        if (i == n)
            return (long)o;
    }
    if (v[i] != '-')
        return -1;
    out[o++] = '-';
    i++;
    if (i == n) /* "A-"; a lone "-" is not a date */
        return o > 1 ? (long)o : -1;
    size_t used = shift_part(v + i, n - i, days, out + o, dt);
    if (used == 0 || i + used != n)
        return -1;
    return (long)(o + used);
}

/* Values separated by '\'. The output is never longer than the input. */
static size_t shift_values(const char *in, size_t n, int days, char *out, int dt)
{
    size_t o = 0, pos = 0, vn;
    const char *v;
    for (int first = 1; deid__next_value(in, n, &pos, &v, &vn); first = 0) {
        if (!first)
            out[o++] = '\\';
        long w = shift_value(v, vn, days, out + o, dt);
        if (w < 0)
            return (size_t)-1;
        o += (size_t)w;
    }
    return o;
}

size_t deid__shift_da(const char *in, size_t n, int days, char *out)
{
    return shift_values(in, n, days, out, 0);
}

size_t deid__shift_dt(const char *in, size_t n, int days, char *out)
{
    return shift_values(in, n, days, out, 1);
}

int deid__birth_year(const char *in, size_t n, char out[9])
{
    const char *v;
    size_t pos = 0, vn = 0;
    deid__next_value(in, n, &pos, &v, &vn); /* the first value */
    char tmp[8];
    if (shift_one_da(v, vn, 0, tmp) < 0)
        return -1;
    memcpy(out, v, 4);
    memcpy(out + 4, "0101", 5);
    return 0;
}
