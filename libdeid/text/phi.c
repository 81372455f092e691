/* PHI terms and fuzzy matching of OCR'd text against them (deid_text_phi_*), and the test for
 * unmatched text that still looks like an identifier or a date.
 *
 * Both sides are folded the same way: UTF-8 (or Latin-1, when the bytes are not UTF-8) to
 * uppercase ASCII without accents, then every character to its OCR confusion class (O/0/D/Q,
 * I/L/1/|/!, S/5, B/8, Z/2, G/6). A line of OCR text is analysed once per call into tokens
 * (runs of letters and digits), a separator-free folded string (IDs) and date atoms (numbers
 * and month names); each term is then compared with a bounded Levenshtein distance (one edit
 * per four characters of the term). Nothing here writes to a built set, so matching is safe
 * from several threads. */
#include <stdlib.h>
#include <string.h>
#include "deid/dataset.h"
#include "text/text_int.h"

#define PHI_MAX_TERM 64 /* folded characters kept of a term (a longer one keeps its start) */
#define PEQ_SIZE ('Z' - '0' + 1)

/* A term as bit masks, one per character, for Myers' bit-parallel edit distance. */
typedef struct bit_pattern {
    uint64_t peq[PEQ_SIZE]; /* bit i set: character i of the term is this character */
    size_t m;               /* 1..64 */
} bit_pattern;

typedef struct phi_term {
    int kind;
    size_t len;                    /* characters in raw and fold */
    char raw[PHI_MAX_TERM + 1];    /* uppercase ASCII letters and digits */
    char fold[PHI_MAX_TERM + 1];   /* the same, each character its OCR confusion class */
    size_t budget;                 /* edits tolerated */
    bit_pattern pat;               /* of fold */
    /* dates */
    unsigned year, month, day;
    char f8[3][9];                 /* YYYYMMDD, DDMMYYYY, MMDDYYYY */
    char f6[3][7];                 /* YYMMDD, DDMMYY, MMDDYY */
    char y4[5], y2[3];
    bit_pattern pat8[3];           /* of f8 */
} phi_term;

struct deid_text_phi {
    phi_term *v;
    size_t n, cap;
};

/* ---- folding --------------------------------------------------------------------------------- */

/* Base letters of U+00C0..U+00FF and U+0100..U+017F; '?' marks the two-letter ones (AE, TH, SS,
 * IJ, OE), ' ' the signs (multiplication, division). */
static const char latin1_base[] = "AAAAAA?CEEEEIIIIDNOOOOO OUUUUY??"
                                  "AAAAAA?CEEEEIIIIDNOOOOO OUUUUY?Y";
static const char latin_ext_a_base[] = "AAAAAACCCCCCCCDDDDEEEEEEEEEEGGGGGGGGHHHHIIIIIIII"
                                       "II??JJKKKLLLLLLLLLLNNNNNNNNNOOOOOO??RRRRRRSSSSSS"
                                       "SSTTTTTTUUUUUUUUUUUUWWYYYZZZZZZS";
_Static_assert(sizeof latin1_base == 65 && sizeof latin_ext_a_base == 129, "folding tables");

/* Decode one code point; bytes that are not valid UTF-8 are taken as Latin-1 (DICOM's most
 * common character set). */
static uint32_t next_code_point(const unsigned char *s, size_t n, size_t *used)
{
    unsigned char c = s[0];
    size_t len = c >= 0xF0 && c < 0xF5 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 1;
    if (c < 0x80 || len == 1 || len > n) {
        *used = 1;
        return c;
    }
    uint32_t cp = c & (0x3Fu >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *used = 1;
            return c;
        }
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
        *used = 1;
        return c;
    }
    *used = len;
    return cp;
}

/* Append the uppercase ASCII form of one code point to out (at most 2 characters): letters and
 * digits, ASCII punctuation as is, apostrophes as '\'', dashes as '-', anything else ' '. */
static size_t fold_code_point(uint32_t cp, char *out)
{
    if (cp >= 0xFF01 && cp <= 0xFF5E) /* full-width forms */
        cp -= 0xFEE0;
    if (cp < 0x80) {
        if (cp >= 'a' && cp <= 'z')
            cp -= 'a' - 'A';
        out[0] = cp < 0x20 || cp == 0x7F ? ' ' : (char)cp;
        return 1;
    }
    char base = ' ';
    if (cp >= 0xC0 && cp <= 0xFF)
        base = latin1_base[cp - 0xC0];
    else if (cp >= 0x100 && cp <= 0x17F)
        base = latin_ext_a_base[cp - 0x100];
    else if (cp == 0x2018 || cp == 0x2019 || cp == 0x02BC || cp == 0x2032)
        base = '\'';
    else if ((cp >= 0x2010 && cp <= 0x2015) || cp == 0x2212)
        base = '-';
    if (base != '?') {
        out[0] = base;
        return 1;
    }
    const char *two = cp == 0xC6 || cp == 0xE6     ? "AE"
                      : cp == 0xDE || cp == 0xFE   ? "TH"
                      : cp == 0xDF                 ? "SS"
                      : cp == 0x132 || cp == 0x133 ? "IJ"
                                                   : "OE";
    out[0] = two[0];
    out[1] = two[1];
    return 2;
}

/* Fold s[0..n) into out (capacity 2n + 1, NUL-terminated); returns the length. Text inside
 * ISO 2022 multi-byte escapes (Japanese, Korean ideographic names) becomes separators. */
static size_t fold_text(const char *s, size_t n, char *out)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0, i = 0;
    int multibyte = 0;
    while (i < n) {
        if (u[i] == 0x1B) { /* ESC, intermediates 0x20-0x2F, final byte */
            size_t j = i + 1;
            if (j < n && u[j] == '$')
                multibyte = 1;
            else if (j < n && u[j] == '(')
                multibyte = 0;
            while (j < n && u[j] >= 0x20 && u[j] <= 0x2F)
                j++;
            i = j < n ? j + 1 : n;
            out[o++] = ' ';
            continue;
        }
        size_t used = 1;
        uint32_t cp = next_code_point(u + i, n - i, &used);
        i += used;
        if (multibyte && cp < 0x80 && cp > 0x20) {
            out[o++] = ' ';
            continue;
        }
        o += fold_code_point(cp, out + o);
    }
    out[o] = '\0';
    return o;
}

/* The OCR confusion class of an uppercase character. */
static char ocr_class(char c)
{
    switch (c) {
    case 'O': case '0': case 'D': case 'Q': return 'O';
    case 'I': case 'L': case '1': case '|': case '!': return 'I';
    case 'S': case '5': return 'S';
    case 'B': case '8': return 'B';
    case 'Z': case '2': return 'Z';
    case 'G': case '6': return 'G';
    default: return c;
    }
}

/* The digit a letter is misread for, 0 when none. */
static char as_digit(char c)
{
    switch (c) {
    case 'O': case 'D': case 'Q': return '0';
    case 'I': case 'L': case '|': case '!': return '1';
    case 'S': return '5';
    case 'B': return '8';
    case 'Z': return '2';
    case 'G': return '6';
    default: return c >= '0' && c <= '9' ? c : 0;
    }
}

/* Digits of dates compare in classes too: Tesseract reads a small 0 as 6 ("2616" for 2016). */
static char date_digit(char c) { return c == '6' ? '0' : c; }

static int is_letter(char c) { return c >= 'A' && c <= 'Z'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }
/* Characters of a word: letters, digits and the strokes OCR reads for I/1. */
static int is_word_char(char c) { return is_letter(c) || is_digit(c) || c == '|' || c == '!'; }
static int is_joiner(char c) { return c == '\'' || c == '`'; }

/* ---- bounded edit distances ------------------------------------------------------------------- */

/* Levenshtein distance of a[0..m) (m <= PHI_MAX_TERM) and b[0..n); k + 1 when above k (for
 * month names; terms use the bit-parallel version below). */
static size_t edit_global(const char *a, size_t m, const char *b, size_t n, size_t k)
{
    if ((m > n ? m - n : n - m) > k)
        return k + 1;
    size_t row[PHI_MAX_TERM + 1];
    for (size_t i = 0; i <= m; i++)
        row[i] = i;
    for (size_t j = 1; j <= n; j++) {
        size_t diag = row[0], best = j;
        row[0] = j;
        for (size_t i = 1; i <= m; i++) {
            size_t up = row[i], c = diag + (a[i - 1] != b[j - 1]);
            if (row[i - 1] + 1 < c)
                c = row[i - 1] + 1;
            if (up + 1 < c)
                c = up + 1;
            diag = up;
            row[i] = c;
            if (c < best)
                best = c;
        }
        if (best > k)
            return k + 1;
    }
    return row[m] > k ? k + 1 : row[m];
}

static void pattern_init(bit_pattern *p, const char *s, size_t m)
{
    memset(p, 0, sizeof *p);
    p->m = m;
    for (size_t i = 0; i < m; i++)
        if (s[i] >= '0' && s[i] <= 'Z')
            p->peq[s[i] - '0'] |= (uint64_t)1 << i;
}

static uint64_t pattern_eq(const bit_pattern *p, char c)
{
    return c >= '0' && c <= 'Z' ? p->peq[c - '0'] : 0;
}

/* Myers' algorithm as Hyyro explains it: one column of the edit distance matrix in two bit
 * vectors (vertical +1/-1 differences). within: a match may start anywhere in b (the top row
 * stays 0); else the distance to all of b. Returns the distance to b (global) or whether some
 * substring of b is within k (search). */
static size_t myers(const bit_pattern *p, const char *b, size_t n, size_t k, int within)
{
    size_t m = p->m, d = m;
    uint64_t vp = ~(uint64_t)0, vn = 0, high = (uint64_t)1 << (m - 1);
    for (size_t j = 0; j < n; j++) {
        uint64_t pm = pattern_eq(p, b[j]);
        uint64_t d0 = (((pm & vp) + vp) ^ vp) | pm | vn;
        uint64_t hp = vn | ~(d0 | vp), hn = vp & d0;
        if (hp & high)
            d++;
        else if (hn & high)
            d--;
        uint64_t x = (hp << 1) | (uint64_t)!within;
        vn = x & d0;
        vp = (hn << 1) | ~(x | d0);
        if (within && d <= k)
            return 1;
    }
    return within ? 0 : d;
}

/* Does the pattern occur in b[0..n) with at most k edits? */
static int edit_within(const bit_pattern *p, const char *b, size_t n, size_t k)
{
    return p->m <= n + k && myers(p, b, n, k, 1);
}

/* Is the pattern within k edits of all of b[0..n)? */
static int edit_whole(const bit_pattern *p, const char *b, size_t n, size_t k)
{
    size_t m = p->m;
    return (m > n ? m - n : n - m) <= k && myers(p, b, n, k, 0) <= k;
}

/* ---- one line of OCR text, analysed once ------------------------------------------------------ */

typedef struct line_token {
    size_t start, len;   /* in line.raw / line.fold */
    size_t ustart, uend; /* in line.up (joiners included) */
    size_t letters, digits;
} line_token;

typedef struct line_atom {
    int numeric;         /* 1: digits (misread letters mapped); 0: letters, folded */
    size_t start, len;   /* in line.atoms_text */
    size_t token;        /* token it came from */
    unsigned month;      /* words: the month (1..12) they name, else 0 */
} line_atom;

typedef struct line {
    char *up;            /* the text folded to uppercase ASCII, punctuation kept */
    size_t nup;
    char *raw, *fold;    /* word characters only: uppercase, and their OCR classes */
    size_t nchars;
    char *digitised;     /* up with mostly-numeric words written in digits */
    line_token *tok;
    size_t ntok;
    char *atoms_text;
    line_atom *atom;
    size_t natom, natoms_text;
    void *block;
} line;

static unsigned month_of(const char *s, size_t n);

/* Ordinal suffix after a day number ("5th"). */
static int is_ordinal(const char *s, size_t n)
{
    return n == 2 && (!memcmp(s, "ST", 2) || !memcmp(s, "ND", 2) || !memcmp(s, "RD", 2) ||
                      !memcmp(s, "TH", 2));
}

static void push_atom(line *L, int numeric, const char *s, size_t n, size_t token)
{
    line_atom *a = &L->atom[L->natom++];
    a->numeric = numeric;
    a->start = L->natoms_text;
    a->len = n;
    a->token = token;
    for (size_t i = 0; i < n; i++)
        L->atoms_text[L->natoms_text++] = numeric ? date_digit(as_digit(s[i])) : ocr_class(s[i]);
}

/* Cut token t into date atoms: one number when its letters are all digits misread, one word
 * when its digits are all letters misread, else the runs of digits and of letters. */
static void token_atoms(line *L, size_t t)
{
    const line_token *tk = &L->tok[t];
    const char *s = L->raw + tk->start;
    size_t n = tk->len, unmappable_letters = 0, unmappable_digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_letter(s[i]) && !as_digit(s[i]))
            unmappable_letters++;
        if (is_digit(s[i]) && ocr_class(s[i]) == s[i])
            unmappable_digits++;
    }
    size_t strokes = n - tk->letters - tk->digits; /* '|', '!' */
    if (tk->digits + strokes >= tk->letters && unmappable_letters == 0) {
        push_atom(L, 1, s, n, t);
        return;
    }
    if (tk->letters > tk->digits && unmappable_digits == 0) {
        push_atom(L, 0, s, n, t);
        return;
    }
    size_t i = 0;
    int prev_numeric = 0;
    while (i < n) {
        int numeric = !is_letter(s[i]);
        size_t j = i;
        while (j < n && (!is_letter(s[j])) == numeric)
            j++;
        if (!(prev_numeric && !numeric && is_ordinal(s + i, j - i)))
            push_atom(L, numeric, s + i, j - i, t);
        prev_numeric = numeric;
        i = j;
    }
}

static void line_free(line *L) { free(L->block); }

/* Analyse text; -1 when out of memory. */
static int line_init(line *L, const char *text, size_t n)
{
    memset(L, 0, sizeof *L);
    size_t cap; /* folded characters: at most 2 per input byte */
    if (!deid__mul_size(n, 2, &cap) || !deid__add_size(cap, 2, &cap))
        return -1;
    size_t per = 5 + sizeof(line_token) + sizeof(line_atom), total;
    if (!deid__mul_size(cap, per, &total))
        return -1;
    char *b = malloc(total);
    if (!b)
        return -1;
    L->block = b;
    L->tok = (line_token *)(void *)b;
    L->atom = (line_atom *)(void *)(b + cap * sizeof(line_token));
    char *c = b + cap * (sizeof(line_token) + sizeof(line_atom));
    L->up = c;
    L->raw = c + cap;
    L->fold = c + 2 * cap;
    L->atoms_text = c + 3 * cap;
    L->digitised = c + 4 * cap;
    L->nup = fold_text(text, n, L->up);

    for (size_t i = 0; i < L->nup;) {
        if (!is_word_char(L->up[i])) {
            i++;
            continue;
        }
        line_token *t = &L->tok[L->ntok++];
        t->start = L->nchars;
        t->ustart = i;
        t->len = t->letters = t->digits = 0;
        while (i < L->nup) {
            char ch = L->up[i];
            if (is_joiner(ch) && i + 1 < L->nup && is_word_char(L->up[i + 1])) {
                i++;
                continue;
            }
            if (!is_word_char(ch))
                break;
            L->raw[L->nchars] = ch;
            L->fold[L->nchars++] = ocr_class(ch);
            t->len++;
            t->letters += is_letter(ch);
            t->digits += is_digit(ch);
            i++;
        }
        t->uend = i;
    }
    for (size_t t = 0; t < L->ntok; t++)
        token_atoms(L, t);
    for (size_t a = 0; a < L->natom; a++)
        L->atom[a].month = L->atom[a].numeric ? 0
                                              : month_of(L->atoms_text + L->atom[a].start,
                                                         L->atom[a].len);

    /* up again for deid__text_looks_identifying, numbers misread with letters in digits */
    memcpy(L->digitised, L->up, L->nup + 1);
    for (size_t a = 0; a < L->natom; a++) {
        const line_atom *at = &L->atom[a];
        const line_token *t = &L->tok[at->token];
        if (!at->numeric || at->len != t->len)
            continue;
        for (size_t u = t->ustart; u < t->uend; u++)
            if (as_digit(L->digitised[u]))
                L->digitised[u] = as_digit(L->digitised[u]);
    }
    return 0;
}

/* ---- names ------------------------------------------------------------------------------------ */

/* Short name components compare letter for letter; a digit or stroke may stand for the letter
 * of its class, and I and L are interchangeable (sans-serif fonts). */
static int short_equal(const char *term, const char *text, size_t m)
{
    for (size_t i = 0; i < m; i++) {
        char a = term[i], b = text[i];
        if (a == b)
            continue;
        if (!is_letter(b) && ocr_class(a) == ocr_class(b))
            continue;
        if ((a == 'I' || a == 'L') && (b == 'I' || b == 'L'))
            continue;
        return 0;
    }
    return 1;
}

/* Does hay[0..hn) contain needle[0..nn)? */
static int strstr_n(const char *hay, size_t hn, const char *needle, size_t nn)
{
    for (size_t i = 0; i + nn <= hn; i++)
        if (memcmp(hay + i, needle, nn) == 0)
            return 1;
    return 0;
}

static int name_matches(const phi_term *t, const line *L)
{
    size_t m = t->len, k = t->budget;
    for (size_t i = 0; i < L->ntok; i++) {
        const line_token *ti = &L->tok[i];
        if (m <= 3) { /* whole words only, letter for letter */
            if (ti->len == m && ti->letters * 2 >= m && short_equal(t->raw, L->raw + ti->start, m))
                return 1;
            continue;
        }
        /* the word, or the word and up to two following ones (a name split by OCR: "DO E") */
        size_t letters = 0;
        for (size_t j = i; j < L->ntok && j < i + 3; j++) {
            letters += L->tok[j].letters;
            size_t len = L->tok[j].start + L->tok[j].len - ti->start;
            if (len > m + k)
                break;
            if (len + k >= m && letters * 2 >= len &&
                edit_whole(&t->pat, L->fold + ti->start, len, k))
                return 1;
        }
        /* inside a longer word: names run together ("DOEJOHN") */
        if (ti->len > m && ti->letters * 2 >= ti->len &&
            edit_within(&t->pat, L->fold + ti->start, ti->len, m >= 5 ? k : 0))
            return 1;
        /* a name cut short: OCR lost its first or last letters on a faint or cropped line
         * ("ANDER" of EVANDER, "HARGRE" of HARGREAVES): at least 5 letters and half the
         * name, exactly */
        if (m >= 6 && ti->len >= 5 && ti->len * 2 >= m && ti->len < m &&
            ti->letters == ti->len && strstr_n(t->fold, m, L->fold + ti->start, ti->len))
            return 1;
    }
    return 0;
}

/* ---- identifiers and other text --------------------------------------------------------------- */

static int id_matches(const phi_term *t, const line *L)
{
    if (t->len <= 3) { /* whole words only, exactly */
        for (size_t i = 0; i < L->ntok; i++)
            if (L->tok[i].len == t->len && !memcmp(L->fold + L->tok[i].start, t->fold, t->len))
                return 1;
        return 0;
    }
    return edit_within(&t->pat, L->fold, L->nchars, t->budget);
}

/* ---- dates ------------------------------------------------------------------------------------ */

static const char *const month_names[12] = {"JANUARY", "FEBRUARY", "MARCH",     "APRIL",
                                            "MAY",     "JUNE",     "JULY",      "AUGUST",
                                            "SEPTEMBER", "OCTOBER", "NOVEMBER", "DECEMBER"};

/* The month (1..12) a folded word names in English (full, 3-letter or "SEPT"), 0 for none. */
static unsigned month_of(const char *s, size_t n)
{
    if (n < 3 || n > 12)
        return 0;
    for (unsigned mo = 0; mo < 12; mo++) {
        const char *name = month_names[mo];
        char f[16];
        size_t len = strlen(name);
        for (size_t i = 0; i < len; i++)
            f[i] = ocr_class(name[i]);
        if (n == 3 && !memcmp(s, f, 3))
            return mo + 1;
        if (n == 4 && mo == 8 && !memcmp(s, "SEPT", 4))
            return 9;
        if (n >= 4 && edit_global(f, len, s, n, len / 4) <= len / 4)
            return mo + 1;
    }
    return 0;
}

static unsigned atom_value(const line *L, const line_atom *a)
{
    unsigned v = 0;
    for (size_t i = 0; i < a->len && i < 9; i++)
        v = v * 10 + (unsigned)(L->atoms_text[a->start + i] - '0');
    return v;
}

/* A day or month number, with or without its leading zero. */
static int is_day(const line *L, const line_atom *a, unsigned value)
{
    if (!a->numeric || value > 99)
        return 0;
    const char *s = L->atoms_text + a->start;
    char tens = date_digit((char)('0' + value / 10)), ones = date_digit((char)('0' + value % 10));
    if (a->len == 2)
        return s[0] == tens && s[1] == ones;
    return a->len == 1 && value < 10 && s[0] == ones;
}

/* A 4-digit year with at most `errors` wrong digits, or the 2-digit year exactly. */
static int is_year(const line *L, const line_atom *a, const phi_term *t, unsigned errors)
{
    if (!a->numeric)
        return 0;
    const char *s = L->atoms_text + a->start;
    if (a->len == 2)
        return !memcmp(s, t->y2, 2);
    if (a->len != 4)
        return 0;
    unsigned wrong = 0;
    for (size_t i = 0; i < 4; i++)
        wrong += s[i] != t->y4[i];
    return wrong <= errors;
}

/* Digits written together: 8 with one error (YYYYMMDD, DDMMYYYY, MMDDYYYY) or 6 exactly. */
static int digits_match(const phi_term *t, const char *s, size_t n, int within)
{
    for (int f = 0; f < 3; f++) {
        if (n >= 7 && (within ? edit_within(&t->pat8[f], s, n, 1)
                              : edit_whole(&t->pat8[f], s, n, 1)))
            return 1;
        if (n == 6 && !memcmp(s, t->f6[f], 6))
            return 1;
    }
    return 0;
}

static int date_matches(const phi_term *t, const line *L)
{
    for (size_t i = 0; i < L->natom; i++) {
        const line_atom *a = &L->atom[i];
        if (a->numeric) {
            if (digits_match(t, L->atoms_text + a->start, a->len, 1))
                return 1;
            /* numbers split by separators: 05/04/1962, 1962-5-4, 05.04.62 */
            char joined[16];
            size_t len = 0;
            for (size_t j = i; j < L->natom && j < i + 3 && L->atom[j].numeric; j++) {
                if (len + L->atom[j].len > 12)
                    break;
                memcpy(joined + len, L->atoms_text + L->atom[j].start, L->atom[j].len);
                len += L->atom[j].len;
                if (j > i && (len == 6 || (len >= 7 && len <= 9)) &&
                    digits_match(t, joined, len, 0))
                    return 1;
                if (j == i + 2) {
                    const line_atom *b = &L->atom[i + 1], *c = &L->atom[i + 2];
                    if ((is_year(L, a, t, 0) && is_day(L, b, t->month) && is_day(L, c, t->day)) ||
                        (is_day(L, a, t->day) && is_day(L, b, t->month) && is_year(L, c, t, 0)) ||
                        (is_day(L, a, t->month) && is_day(L, b, t->day) && is_year(L, c, t, 0)))
                        return 1;
                }
            }
            continue;
        }
        if (a->month != t->month)
            continue;
        const line_atom *prev = i > 0 ? &L->atom[i - 1] : NULL;
        const line_atom *next = i + 1 < L->natom ? &L->atom[i + 1] : NULL;
        const line_atom *next2 = i + 2 < L->natom ? &L->atom[i + 2] : NULL;
        if (prev && next && is_day(L, prev, t->day) && is_year(L, next, t, 1)) /* 5 Apr 2023 */
            return 1;
        if (next && next2 && is_day(L, next, t->day) && is_year(L, next2, t, 1)) /* Apr 5 2023 */
            return 1;
        if (prev && next && is_year(L, prev, t, 1) && is_day(L, next, t->day)) /* 2023-Apr-05 */
            return 1;
        /* OCR lost a part: two of the three still name this date ("Jun 30", "9 December",
         * "Aug 1974") */
        if ((prev && is_day(L, prev, t->day)) || (next && is_day(L, next, t->day)) ||
            (prev && is_year(L, prev, t, 0)) || (next && is_year(L, next, t, 0)))
            return 1;
    }
    /* two numbers of two digits that are this date's month and day ("03/25" of 2012-03-25),
     * or a day of two digits next to the year ("10 1974") */
    for (size_t i = 0; i + 1 < L->natom; i++) {
        const line_atom *a = &L->atom[i], *b = &L->atom[i + 1];
        if (!a->numeric || !b->numeric)
            continue;
        if (a->len == 2 && b->len == 2 &&
            ((is_day(L, a, t->month) && is_day(L, b, t->day)) ||
             (is_day(L, a, t->day) && is_day(L, b, t->month))))
            return 1;
        if (a->len == 2 && t->day >= 10 && is_day(L, a, t->day) && is_year(L, b, t, 0))
            return 1;
    }
    return 0;
}

/* ---- terms ------------------------------------------------------------------------------------ */

static int days_in_month(unsigned y, unsigned m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return days[m - 1];
}

/* Parse a DA (YYYYMMDD, or the old YYYY.MM.DD) or the date of a DT; 0 when not a valid date. */
static int parse_date(const char *s, size_t n, unsigned *y, unsigned *m, unsigned *d)
{
    char digits[8];
    size_t nd = 0;
    int old_form = n >= 10 && s[4] == '.' && s[7] == '.';
    for (size_t i = 0; i < n && nd < 8; i++) {
        if (old_form && (i == 4 || i == 7))
            continue;
        if (!is_digit(s[i]))
            return 0;
        digits[nd++] = s[i];
    }
    if (nd < 8)
        return 0;
    *y = (unsigned)((digits[0] - '0') * 1000 + (digits[1] - '0') * 100 + (digits[2] - '0') * 10 +
                    (digits[3] - '0'));
    *m = (unsigned)((digits[4] - '0') * 10 + (digits[5] - '0'));
    *d = (unsigned)((digits[6] - '0') * 10 + (digits[7] - '0'));
    return *y >= 1 && *m >= 1 && *m <= 12 && *d >= 1 && (int)*d <= days_in_month(*y, *m);
}

static deid_status push_term(deid_text_phi *phi, const phi_term *t)
{
    for (size_t i = 0; i < phi->n; i++) {
        const phi_term *o = &phi->v[i];
        if (o->kind == t->kind && o->len == t->len && !memcmp(o->raw, t->raw, t->len) &&
            o->year == t->year && o->month == t->month && o->day == t->day)
            return DEID_OK; /* already held */
    }
    if (phi->n == phi->cap) {
        size_t cap = phi->cap ? phi->cap * 2 : 16, bytes;
        if (!deid__mul_size(cap, sizeof *phi->v, &bytes))
            return deid__fail(DEID_ERR_NOMEM, "text", "PHI terms: too many terms");
        phi_term *v = deid__realloc(phi->v, bytes);
        if (!v)
            return DEID_ERR_NOMEM;
        phi->v = v;
        phi->cap = cap;
    }
    phi->v[phi->n++] = *t;
    return DEID_OK;
}

/* A term from word characters s[0..n) (uppercase); longer ones keep their first characters. */
static void make_term(phi_term *t, int kind, const char *s, size_t n)
{
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->len = n > PHI_MAX_TERM ? PHI_MAX_TERM : n;
    memcpy(t->raw, s, t->len);
    int all_digits = 1;
    for (size_t i = 0; i < t->len; i++) {
        t->fold[i] = ocr_class(s[i]);
        all_digits &= is_digit(s[i]);
    }
    pattern_init(&t->pat, t->fold, t->len);
    t->budget = t->len >= 4 ? t->len / 4 : 0;
    /* a number of 4 or 5 digits one digit away from the ID is an ordinary annotation number */
    if (kind != DEID_TEXT_PHI_NAME && all_digits && t->len <= 5)
        t->budget = 0;
}

static int is_title(const char *s, size_t n)
{
    static const char *const titles[] = {"DR",  "MR",   "MRS", "MS",  "MISS", "MX",  "JR",
                                         "SR",  "II",   "III", "IV",  "MD",   "PHD", "PROF",
                                         "REV", "SIR",  "RN",  "DDS", "DVM",  "ESQ", "MME",
                                         "MLLE", "HERR", "FRAU"};
    for (size_t i = 0; i < sizeof titles / sizeof titles[0]; i++)
        if (strlen(titles[i]) == n && !memcmp(titles[i], s, n))
            return 1;
    return 0;
}

static deid_status add_name(deid_text_phi *phi, const char *up, size_t n)
{
    for (size_t i = 0; i < n;) {
        if (!is_word_char(up[i])) {
            i++;
            continue;
        }
        char word[PHI_MAX_TERM];
        size_t len = 0;
        while (i < n && (is_word_char(up[i]) || (is_joiner(up[i]) && i + 1 < n &&
                                                 is_word_char(up[i + 1])))) {
            if (!is_joiner(up[i]) && len < sizeof word)
                word[len++] = up[i];
            i++;
        }
        if (len < 2 || is_title(word, len))
            continue;
        phi_term t;
        make_term(&t, DEID_TEXT_PHI_NAME, word, len);
        deid_status st = push_term(phi, &t);
        if (st != DEID_OK)
            return st;
    }
    return DEID_OK;
}

static deid_status add_whole(deid_text_phi *phi, int kind, const char *up, size_t n)
{
    char word[PHI_MAX_TERM];
    size_t len = 0;
    for (size_t i = 0; i < n && len < sizeof word; i++)
        if (is_word_char(up[i]))
            word[len++] = up[i];
    if (len < 3) /* one or two characters are in every annotation */
        return DEID_OK;
    phi_term t;
    make_term(&t, kind, word, len);
    return push_term(phi, &t);
}

/* Write v as `width` decimal digits (zero-padded, the low digits kept). */
static void put_digits(char *out, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

static deid_status add_date(deid_text_phi *phi, const char *s, size_t n, int strict)
{
    unsigned y, m, d;
    if (!parse_date(s, n, &y, &m, &d))
        return strict ? deid__fail(DEID_ERR_ARGUMENT, "text",
                                   "PHI date term: not a DICOM date (YYYYMMDD)")
                      : DEID_OK;
    phi_term t;
    memset(&t, 0, sizeof t);
    t.kind = DEID_TEXT_PHI_DATE;
    t.year = y;
    t.month = m;
    t.day = d;
    const unsigned ymd[3][3] = {{y, m, d}, {d, m, y}, {m, d, y}};
    for (int f = 0; f < 3; f++) { /* the year 4 digits in f8, 2 in f6 */
        char *p8 = t.f8[f], *p6 = t.f6[f];
        for (int part = 0; part < 3; part++) {
            int is_y = f == 0 ? part == 0 : part == 2;
            put_digits(p8, ymd[f][part], is_y ? 4 : 2);
            put_digits(p6, ymd[f][part], 2);
            p8 += is_y ? 4 : 2;
            p6 += 2;
        }
    }
    put_digits(t.y4, y, 4);
    put_digits(t.y2, y, 2);
    for (int f = 0; f < 3; f++) {
        for (int i = 0; i < 8; i++)
            t.f8[f][i] = date_digit(t.f8[f][i]);
        for (int i = 0; i < 6; i++)
            t.f6[f][i] = date_digit(t.f6[f][i]);
        pattern_init(&t.pat8[f], t.f8[f], 8);
    }
    for (int i = 0; i < 4; i++)
        t.y4[i] = date_digit(t.y4[i]);
    for (int i = 0; i < 2; i++)
        t.y2[i] = date_digit(t.y2[i]);
    memcpy(t.raw, t.f8[0], 8);
    t.len = 8;
    return push_term(phi, &t);
}

/* Add one value s[0..n) (not NUL-terminated). strict: an invalid date is an error (else it is
 * skipped, as for a header's malformed element). */
static deid_status add_value(deid_text_phi *phi, int kind, const char *s, size_t n, int strict)
{
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\0'))
        n--;
    while (n > 0 && s[0] == ' ') {
        s++;
        n--;
    }
    if (n < 2)
        return DEID_OK;
    if (kind == DEID_TEXT_PHI_DATE)
        return add_date(phi, s, n, strict);
    if (kind == DEID_TEXT_PHI_OTHER) { /* an address: each of its lines on its own */
        size_t cut = 0;
        while (cut < n && s[cut] != '\r' && s[cut] != '\n')
            cut++;
        if (cut < n) {
            deid_status st = add_value(phi, kind, s, cut, strict);
            if (st != DEID_OK)
                return st;
            while (cut < n && (s[cut] == '\r' || s[cut] == '\n'))
                cut++;
            return add_value(phi, kind, s + cut, n - cut, strict);
        }
    }
    size_t cap;
    if (!deid__mul_size(n, 2, &cap) || !deid__add_size(cap, 1, &cap))
        return deid__fail(DEID_ERR_NOMEM, "text", "PHI term too long");
    char *up = deid__malloc(cap);
    if (!up)
        return DEID_ERR_NOMEM;
    size_t len = fold_text(s, n, up);
    deid_status st = kind == DEID_TEXT_PHI_NAME ? add_name(phi, up, len)
                                                : add_whole(phi, kind, up, len);
    free(up);
    return st;
}

/* ---- public API ------------------------------------------------------------------------------- */

deid_status deid_text_phi_new(deid_text_phi **out)
{
    if (!out)
        return deid__fail(DEID_ERR_ARGUMENT, "text", "deid_text_phi_new: out is NULL");
    deid_text_phi *phi = deid__calloc(1, sizeof *phi);
    if (!phi)
        return DEID_ERR_NOMEM;
    *out = phi;
    return DEID_OK;
}

void deid_text_phi_free(deid_text_phi *phi)
{
    if (!phi)
        return;
    free(phi->v);
    free(phi);
}

deid_status deid_text_phi_add(deid_text_phi *phi, int kind, const char *value)
{
    if (!phi || !value)
        return deid__fail(DEID_ERR_ARGUMENT, "text", "deid_text_phi_add: NULL argument");
    if (kind < DEID_TEXT_PHI_NAME || kind > DEID_TEXT_PHI_OTHER)
        return deid__fail(DEID_ERR_ARGUMENT, "text", "deid_text_phi_add: unknown kind %d",
                          kind);
    return add_value(phi, kind, value, strlen(value), 1);
}

static const struct {
    uint32_t tag;
    int kind;
} header_phi[] = {
    {DEID_TAG(0x0010, 0x0010), DEID_TEXT_PHI_NAME},  /* Patient's Name */
    {DEID_TAG(0x0010, 0x1001), DEID_TEXT_PHI_NAME},  /* Other Patient Names */
    {DEID_TAG(0x0010, 0x1005), DEID_TEXT_PHI_NAME},  /* Patient's Birth Name */
    {DEID_TAG(0x0010, 0x1060), DEID_TEXT_PHI_NAME},  /* Patient's Mother's Birth Name */
    {DEID_TAG(0x0008, 0x0090), DEID_TEXT_PHI_NAME},  /* Referring Physician's Name */
    {DEID_TAG(0x0008, 0x1050), DEID_TEXT_PHI_NAME},  /* Performing Physician's Name */
    {DEID_TAG(0x0008, 0x1060), DEID_TEXT_PHI_NAME},  /* Name of Physician(s) Reading Study */
    {DEID_TAG(0x0008, 0x1070), DEID_TEXT_PHI_NAME},  /* Operators' Name */
    {DEID_TAG(0x0010, 0x0020), DEID_TEXT_PHI_ID},    /* Patient ID */
    {DEID_TAG(0x0010, 0x1000), DEID_TEXT_PHI_ID},    /* Other Patient IDs */
    {DEID_TAG(0x0010, 0x0021), DEID_TEXT_PHI_ID},    /* Issuer of Patient ID */
    {DEID_TAG(0x0008, 0x0050), DEID_TEXT_PHI_ID},    /* Accession Number */
    {DEID_TAG(0x0020, 0x0010), DEID_TEXT_PHI_ID},    /* Study ID */
    {DEID_TAG(0x0040, 0x1001), DEID_TEXT_PHI_ID},    /* Requested Procedure ID */
    {DEID_TAG(0x0010, 0x1090), DEID_TEXT_PHI_ID},    /* Medical Record Locator */
    {DEID_TAG(0x0010, 0x0030), DEID_TEXT_PHI_DATE},  /* Patient's Birth Date */
    {DEID_TAG(0x0008, 0x0020), DEID_TEXT_PHI_DATE},  /* Study Date */
    {DEID_TAG(0x0008, 0x0021), DEID_TEXT_PHI_DATE},  /* Series Date */
    {DEID_TAG(0x0008, 0x0022), DEID_TEXT_PHI_DATE},  /* Acquisition Date */
    {DEID_TAG(0x0008, 0x0023), DEID_TEXT_PHI_DATE},  /* Content Date */
    {DEID_TAG(0x0008, 0x002A), DEID_TEXT_PHI_DATE},  /* Acquisition DateTime */
    {DEID_TAG(0x0008, 0x0080), DEID_TEXT_PHI_OTHER}, /* Institution Name */
    {DEID_TAG(0x0008, 0x0081), DEID_TEXT_PHI_OTHER}, /* Institution Address */
    {DEID_TAG(0x0008, 0x1010), DEID_TEXT_PHI_OTHER}, /* Station Name */
    {DEID_TAG(0x0010, 0x1040), DEID_TEXT_PHI_OTHER}, /* Patient's Address */
    {DEID_TAG(0x0010, 0x2154), DEID_TEXT_PHI_OTHER}, /* Patient's Telephone Numbers */
};

deid_status deid_text_phi_add_dataset(deid_text_phi *phi, const deid_dataset *ds)
{
    if (!phi || !ds)
        return deid__fail(DEID_ERR_ARGUMENT, "text", "deid_text_phi_add_dataset: NULL argument");
    for (size_t e = 0; e < sizeof header_phi / sizeof header_phi[0]; e++) {
        const void *value = NULL;
        size_t size = 0;
        if (!deid_dataset_has(ds, header_phi[e].tag) ||
            deid_dataset_get(ds, header_phi[e].tag, &value, &size) != DEID_OK || !value)
            continue;
        const char *s = value;
        for (size_t i = 0; i <= size;) { /* each of a multi-valued element's values */
            size_t j = i;
            while (j < size && s[j] != '\\')
                j++;
            deid_status st = add_value(phi, header_phi[e].kind, s + i, j - i, 0);
            if (st != DEID_OK)
                return st;
            i = j + 1;
        }
    }
    return DEID_OK;
}

size_t deid_text_phi_count(const deid_text_phi *phi) { return phi ? phi->n : 0; }

int deid_text_phi_match(const deid_text_phi *phi, const char *text)
{
    if (!phi || !text || phi->n == 0)
        return DEID_TEXT_PHI_NONE;
    line L;
    if (line_init(&L, text, strlen(text)) != 0)
        return DEID_TEXT_PHI_OTHER; /* out of memory: say PHI, so the text is redacted */
    int kind = DEID_TEXT_PHI_NONE;
    for (size_t i = 0; i < phi->n && kind == DEID_TEXT_PHI_NONE; i++) {
        const phi_term *t = &phi->v[i];
        int hit = t->kind == DEID_TEXT_PHI_NAME   ? name_matches(t, &L)
                  : t->kind == DEID_TEXT_PHI_DATE ? date_matches(t, &L)
                                                  : id_matches(t, &L);
        if (hit)
            kind = t->kind;
    }
    line_free(&L);
    return kind;
}

/* ---- text that looks like an identifier ------------------------------------------------------- */

static size_t digit_run(const char *s, size_t n, size_t i)
{
    size_t j = i;
    while (j < n && is_digit(s[j]))
        j++;
    return j - i;
}

static unsigned number_at(const char *s, size_t len)
{
    unsigned v = 0;
    for (size_t i = 0; i < len && i < 9; i++)
        v = v * 10 + (unsigned)(s[i] - '0');
    return v;
}

/* Runs of 5+ digits (of 6+ when a misread letter is among them: "B1000" is a b-value),
 * hh:mm times, and d/m/y-like triples ("05/04/1962", "1962-05-04"). `up` is s as read. */
static int numbers_look_identifying(const char *s, const char *up, size_t n)
{
    for (size_t i = 0; i < n;) {
        if (!is_digit(s[i]) || (i > 0 && is_digit(s[i - 1]))) {
            i++;
            continue;
        }
        size_t a = digit_run(s, n, i);
        if (a >= 6 || (a == 5 && digit_run(up, n, i) == 5))
            return 1;
        size_t p = i + a;
        if (p + 2 < n && s[p] == ':' && a <= 2 && digit_run(s, n, p + 1) == 2 &&
            number_at(s + i, a) <= 23 && number_at(s + p + 1, 2) <= 59)
            return 1;
        char sep = p < n ? s[p] : 0;
        if (sep == '/' || sep == '-' || sep == '.') {
            size_t b = digit_run(s, n, p + 1), q = p + 1 + b;
            if (b >= 1 && b <= 2 && q + 1 < n && s[q] == sep) {
                size_t c = digit_run(s, n, q + 1);
                unsigned x = number_at(s + i, a), y = number_at(s + p + 1, b);
                unsigned z = number_at(s + q + 1, c);
                int ymd = a == 4 && c >= 1 && c <= 2 && y <= 12 && z <= 31;
                int dmy = a <= 2 && (c == 2 || c == 4) &&
                          ((x <= 31 && y <= 12) || (x <= 12 && y <= 31));
                if (ymd || dmy)
                    return 1;
            }
        }
        i = p;
    }
    return 0;
}

/* A day, a month name and a year next to each other ("5 Apr 2023", "Apr 5, 2023"). */
static int month_date_like(const line *L)
{
    for (size_t i = 0; i < L->natom; i++) {
        const line_atom *a = &L->atom[i];
        if (!a->month)
            continue;
        const line_atom *p = i > 0 ? &L->atom[i - 1] : NULL;
        const line_atom *q = i + 1 < L->natom ? &L->atom[i + 1] : NULL;
        const line_atom *r = i + 2 < L->natom ? &L->atom[i + 2] : NULL;
        int p_day = p && p->numeric && p->len <= 2 && atom_value(L, p) >= 1 &&
                    atom_value(L, p) <= 31;
        int q_day = q && q->numeric && q->len <= 2 && atom_value(L, q) >= 1 &&
                    atom_value(L, q) <= 31;
        if (p_day && q && q->numeric && (q->len == 2 || q->len == 4))
            return 1;
        if (q_day && r && r->numeric && r->len == 4)
            return 1;
        if (p && p->numeric && p->len == 4 && q_day)
            return 1;
    }
    return 0;
}

/* Words of 5+ characters mixing 2+ letters and 2+ digits ("AB12345", "MRN0042"), except a
 * number with its unit ("120KVP", "15MM"). */
static int word_looks_identifying(const line *L)
{
    for (size_t t = 0; t < L->ntok; t++) {
        const line_token *tk = &L->tok[t];
        if (tk->len < 5 || tk->letters < 2 || tk->digits < 2)
            continue;
        const char *s = L->raw + tk->start;
        size_t i = 0;
        while (i < tk->len && is_digit(s[i]))
            i++;
        size_t letters_after = 0;
        while (i + letters_after < tk->len && is_letter(s[i + letters_after]))
            letters_after++;
        int number_unit = i > 0 && i + letters_after == tk->len && letters_after <= 4;
        if (!number_unit)
            return 1;
    }
    return 0;
}

int deid__text_looks_identifying(const char *text)
{
    if (!text || !*text)
        return 0;
    line L;
    if (line_init(&L, text, strlen(text)) != 0)
        return 1; /* out of memory: leave it for a person */
    int r = numbers_look_identifying(L.digitised, L.up, L.nup) || month_date_like(&L) ||
            word_looks_identifying(&L);
    line_free(&L);
    return r;
}

/* Add a copy of every term of src to dst (terms already held are skipped). The text stage uses
 * it to join the caller's extra terms to the object's own. */
deid_status deid__text_phi_merge(deid_text_phi *dst, const deid_text_phi *src)
{
    if (!dst)
        return deid__fail(DEID_ERR_ARGUMENT, "text", "PHI terms: merge into NULL");
    for (size_t i = 0; src && i < src->n; i++) {
        deid_status st = push_term(dst, &src->v[i]);
        if (st != DEID_OK)
            return st;
    }
    return DEID_OK;
}
