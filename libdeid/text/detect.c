/* Text detection on one frame: two complementary passes, merged, then decided.
 *
 * LINES: strokes are thin and contrast with what is around them, so a top-hat (bright text),
 * a black top-hat (dark or inverted text) and a top-hat of colourfulness (coloured text on a
 * grey image) make them stand out from anatomy and gradients. The thresholded responses are
 * split into connected components, components of character size are chained into lines
 * (similar height, overlapping rows, small gaps), and each line is read by Tesseract on a
 * clean, upscaled crop of its response (dark on white, character height about 32 pixels).
 * A line Tesseract reads with confidence is text; so is a line whose strokes alone are
 * unmistakable (several aligned characters on a clean background), which keeps tiny text
 * that Tesseract cannot read but a person might.
 *
 * PAGE: Tesseract's own layout analysis (sparse text) on the CLAHE-enhanced frame, which
 * finds large text and text the stroke chains split or miss.
 *
 * Regions found by both are merged when they overlap; each merged region gets a decision
 * from the engine's policy. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "text/ocr.h"
#include "text/prep.h"
#include "text/text_int.h"

#define M "text"

#define TOPHAT_K 15        /* square window of the top-hats: strokes up to ~7 px wide */
#define MIN_RESPONSE 28    /* weakest stroke contrast considered (8-bit levels) */
#define MAX_CHAR_H 80
#define MIN_CHAR_H 4
#define MAX_LINES 160      /* candidate lines read per frame and polarity */
#define OCR_TARGET_H 32.0  /* character height Tesseract reads best, in pixels */

typedef struct cand {
    int x0, y0, x1, y1;    /* box, x1/y1 exclusive */
    double conf;
    unsigned passes;
    char *text;            /* best reading */
    char *text2;           /* other readings (the other pass, the line re-read), or NULL */
    int chars;             /* components in the line (LINES) */
    double score;          /* response strength, for ordering */
} cand;

typedef struct cands {
    cand *v;
    size_t n, cap;
} cands;

static void cands_clear(cands *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].text);
        free(c->v[i].text2);
    }
    free(c->v);
    memset(c, 0, sizeof *c);
}

static deid_status cands_push(cands *c, const cand *x)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        cand *v = deid__realloc(c->v, cap * sizeof *v);
        if (!v)
            return DEID_ERR_NOMEM;
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = *x;
    return DEID_OK;
}

static size_t count_alnum(const char *s)
{
    size_t n = 0;
    for (; s && *s; s++)
        if (isalnum((unsigned char)*s))
            n++;
    return n;
}

/* ---- connected components ------------------------------------------------------------------ */

typedef struct comp {
    int x0, y0, x1, y1;
    int area;
    double sum;   /* summed response */
    int line;     /* union-find parent while chaining */
} comp;

typedef struct comps {
    comp *v;
    size_t n, cap;
} comps;

/* Label 8-connected pixels of `mask` (non-zero), keeping components of character size. */
static deid_status label(const uint8_t *mask, const uint8_t *resp, size_t rows, size_t cols,
                         comps *out, size_t *all)
{
    size_t n = rows * cols;
    uint32_t *stack = deid__malloc((n ? n : 1) * sizeof *stack);
    uint8_t *seen = deid__calloc(n ? n : 1, 1);
    if (!stack || !seen) {
        free(stack), free(seen);
        return DEID_ERR_NOMEM;
    }
    deid_status st = DEID_OK;
    *all = 0;
    for (size_t i = 0; i < n && st == DEID_OK; i++) {
        if (!mask[i] || seen[i])
            continue;
        comp c = {(int)(i % cols), (int)(i / cols), (int)(i % cols) + 1, (int)(i / cols) + 1,
                  0, 0, 0};
        size_t sp = 0;
        stack[sp++] = (uint32_t)i;
        seen[i] = 1;
        while (sp) {
            size_t p = stack[--sp];
            int x = (int)(p % cols), y = (int)(p / cols);
            c.area++;
            c.sum += resp[p];
            if (x < c.x0)
                c.x0 = x;
            if (x >= c.x1)
                c.x1 = x + 1;
            if (y < c.y0)
                c.y0 = y;
            if (y >= c.y1)
                c.y1 = y + 1;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int xx = x + dx, yy = y + dy;
                    if (xx < 0 || yy < 0 || xx >= (int)cols || yy >= (int)rows)
                        continue;
                    size_t q = (size_t)yy * cols + (size_t)xx;
                    if (mask[q] && !seen[q]) {
                        seen[q] = 1;
                        stack[sp++] = (uint32_t)q;
                    }
                }
        }
        (*all)++;
        int w = c.x1 - c.x0, h = c.y1 - c.y0;
        if (h < MIN_CHAR_H && !(h >= 2 && w >= 2 && w <= 3 * h + 2))
            continue; /* too small to be a character (dots and dashes are kept) */
        if (h > MAX_CHAR_H || w > 8 * (h > 6 ? h : 6) || w > 600)
            continue;
        if (c.area < 3)
            continue;
        if (w >= 5 && h >= 5 && (double)c.area > 0.92 * (double)w * (double)h)
            continue; /* a filled block, not a glyph */
        if (out->n == out->cap) {
            size_t cap = out->cap ? out->cap * 2 : 256;
            comp *v = deid__realloc(out->v, cap * sizeof *v);
            if (!v) {
                st = DEID_ERR_NOMEM;
                break;
            }
            out->v = v;
            out->cap = cap;
        }
        c.line = (int)out->n;
        out->v[out->n++] = c;
    }
    free(stack);
    free(seen);
    return st;
}

static int find(comp *v, int i)
{
    while (v[i].line != i) {
        v[i].line = v[v[i].line].line;
        i = v[i].line;
    }
    return i;
}

static int cmp_x0(const void *a, const void *b)
{
    const comp *p = a, *q = b;
    return (p->x0 > q->x0) - (p->x0 < q->x0);
}

/* Can a and b be neighbours in one line of text? */
static int chain(const comp *a, const comp *b)
{
    int ha = a->y1 - a->y0, hb = b->y1 - b->y0;
    int hmax = ha > hb ? ha : hb, hmin = ha < hb ? ha : hb;
    int gap = b->x0 - a->x1;
    if (gap > (int)(1.1 * hmax) + 2)
        return 0;
    int ov = (a->y1 < b->y1 ? a->y1 : b->y1) - (a->y0 > b->y0 ? a->y0 : b->y0);
    if (ov < (int)(0.5 * hmin + 0.5) || ov < 1)
        return 0;
    /* punctuation (small) may join anything it overlaps; letters must be of similar height */
    if (hmin >= 6 && hmax > 2.2 * hmin)
        return 0;
    return 1;
}

/* ---- the LINES pass -------------------------------------------------------------------------- */

typedef struct line {
    int x0, y0, x1, y1;
    int chars;
    double sum;
    int hsum;
    int root;     /* the union-find root of its components */
    int clutter;  /* components of other (short) lines around it */
} line;

static int cmp_line_sum(const void *a, const void *b)
{
    const line *p = a, *q = b;
    return (p->sum < q->sum) - (p->sum > q->sum);
}

/* Local threshold per 32 x 32 block: at least MIN_RESPONSE, and well above the block
 * neighbourhood's typical response (speckle and texture raise it). */
static deid_status thresholds(const uint8_t *resp, size_t rows, size_t cols, uint8_t *thr)
{
    const size_t B = 32;
    size_t by = (rows + B - 1) / B, bx = (cols + B - 1) / B;
    uint8_t *med = deid__malloc(by * bx + 1);
    if (!med)
        return DEID_ERR_NOMEM;
    for (size_t j = 0; j < by; j++)
        for (size_t i = 0; i < bx; i++) {
            unsigned hist[256] = {0};
            size_t cnt = 0;
            for (size_t y = j * B; y < rows && y < (j + 1) * B; y++)
                for (size_t x = i * B; x < cols && x < (i + 1) * B; x++) {
                    hist[resp[y * cols + x]]++;
                    cnt++;
                }
            /* the lower quartile: dense text never covers three quarters of a block */
            size_t acc = 0, quarter = cnt / 4;
            int v = 0;
            for (; v < 255; v++) {
                acc += hist[v];
                if (acc > quarter)
                    break;
            }
            med[j * bx + i] = (uint8_t)v;
        }
    for (size_t j = 0; j < by; j++)
        for (size_t i = 0; i < bx; i++) {
            int m = 0;
            for (size_t jj = j ? j - 1 : 0; jj <= j + 1 && jj < by; jj++)
                for (size_t ii = i ? i - 1 : 0; ii <= i + 1 && ii < bx; ii++)
                    if (med[jj * bx + ii] > m)
                        m = med[jj * bx + ii];
            int t = 3 * m + 12;
            if (t < MIN_RESPONSE)
                t = MIN_RESPONSE;
            if (t > 160)
                t = 160;
            thr[j * bx + i] = (uint8_t)t;
        }
    free(med);
    return DEID_OK;
}

/* The words Tesseract read, joined by spaces into *text (malloc'ed, "" when none), and their
 * confidence weighted by length into *conf. */
static deid_status join_words(const deid_ocr_words *words, char **text, double *conf)
{
    deid_buf b = {0};
    double cs = 0, cn = 0;
    for (size_t i = 0; i < words->n; i++) {
        if ((b.len && deid__buf_append(&b, " ", 1)) ||
            deid__buf_append(&b, words->v[i].text, strlen(words->v[i].text))) {
            deid__buf_free(&b);
            return DEID_ERR_NOMEM;
        }
        double n = (double)strlen(words->v[i].text);
        cs += words->v[i].conf * n;
        cn += n;
    }
    *text = b.data ? b.data : deid__strdup("");
    if (!*text)
        return DEID_ERR_NOMEM;
    *conf = cn > 0 ? cs / cn : 0;
    return DEID_OK;
}

/* In the margin of a line's crop (dark on white, W x H; the line spans rows [ly0, ly1) and
 * columns [lx0, lx1)), clear the rows and columns that are mostly ink: the edge of a label
 * box or the image, a ruler. They are not the line's (its box holds all its components), and
 * Tesseract reads a bar above or below the letters as more letters. */
static void clear_bars(uint8_t *img, int W, int H, int ly0, int ly1, int lx0, int lx1)
{
    for (int y = 0; y < H; y++) {
        if (y >= ly0 && y < ly1)
            continue;
        int ink = 0;
        for (int x = 0; x < W; x++)
            ink += img[(size_t)y * (size_t)W + (size_t)x] < 128;
        if (ink * 5 >= W * 3)
            memset(img + (size_t)y * (size_t)W, 255, (size_t)W);
    }
    for (int x = 0; x < W; x++) {
        if (x >= lx0 && x < lx1)
            continue;
        int ink = 0;
        for (int y = 0; y < H; y++)
            ink += img[(size_t)y * (size_t)W + (size_t)x] < 128;
        if (ink * 5 >= H * 3)
            for (int y = 0; y < H; y++)
                img[(size_t)y * (size_t)W + (size_t)x] = 255;
    }
}

/* Read a line: crop its response with a margin, scale to OCR_TARGET_H, dark on white. */
static deid_status read_line(deid_text_engine *e, const uint8_t *resp, size_t rows, size_t cols,
                             const line *ln, double char_h, double strength, double target,
                             char **text, double *conf)
{
    *text = NULL;
    *conf = 0;
    int m = (int)(char_h * 0.4) + 3;
    int x0 = ln->x0 - m, y0 = ln->y0 - m, x1 = ln->x1 + m, y1 = ln->y1 + m;
    if (x0 < 0)
        x0 = 0;
    if (y0 < 0)
        y0 = 0;
    if (x1 > (int)cols)
        x1 = (int)cols;
    if (y1 > (int)rows)
        y1 = (int)rows;
    double s = target / (char_h > 1 ? char_h : 1);
    if (s < 1)
        s = 1;
    if (s > 8)
        s = 8;
    int w = x1 - x0, h = y1 - y0;
    int W = (int)(w * s + 0.5) + 20, H = (int)(h * s + 0.5) + 20;
    uint8_t *img = deid__malloc((size_t)W * (size_t)H);
    if (!img)
        return DEID_ERR_NOMEM;
    memset(img, 255, (size_t)W * (size_t)H);
    double gain = 255.0 / (strength > 1 ? strength : 1);
    for (int Y = 0; Y < H - 20; Y++) {
        double fy = (Y + 0.5) / s - 0.5;
        int yi = (int)floor(fy);
        double wy = fy - yi;
        for (int X = 0; X < W - 20; X++) {
            double fx = (X + 0.5) / s - 0.5;
            int xi = (int)floor(fx);
            double wx = fx - xi;
            double acc = 0;
            for (int k = 0; k < 4; k++) {
                int yy = yi + (k >> 1), xx = xi + (k & 1);
                if (yy < 0)
                    yy = 0;
                if (xx < 0)
                    xx = 0;
                if (yy >= h)
                    yy = h - 1;
                if (xx >= w)
                    xx = w - 1;
                double wgt = ((k >> 1) ? wy : 1 - wy) * ((k & 1) ? wx : 1 - wx);
                acc += wgt * resp[(size_t)(y0 + yy) * cols + (size_t)(x0 + xx)];
            }
            double v = 255.0 - acc * gain;
            img[(size_t)(Y + 10) * (size_t)W + (size_t)(X + 10)] =
                (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    clear_bars(img, W, H, (int)((ln->y0 - y0) * s + 0.5) + 10,
               (int)((ln->y1 - y0) * s + 0.5) + 10, (int)((ln->x0 - x0) * s + 0.5) + 10,
               (int)((ln->x1 - x0) * s + 0.5) + 10);
    deid_ocr_words words = {0};
    int psm = ln->chars == 1 ? DEID_OCR_PSM_SINGLE_CHAR : DEID_OCR_PSM_SINGLE_LINE;
    deid_status st =
        deid__ocr_words(e->tess, img, (size_t)W, (size_t)H, (size_t)W, psm, &words);
    free(img);
    if (st != DEID_OK) {
        deid__ocr_words_clear(&words);
        return st;
    }
    st = join_words(&words, text, conf);
    deid__ocr_words_clear(&words);
    return st;
}

static double at_least(double a, double b)
{
    return a > b ? a : b;
}

/* Is a line Tesseract read text? Short readings need more confidence: chance blobs in
 * anatomy read as "ae" or "4" with middling confidence. A lone component must read as one
 * capital letter (orientation markers: L, R, A, P, H, F) on clean ground. */
static int accept_line(const deid_text_engine *e, const char *text, double conf, int chars,
                       int clutter)
{
    double minc = e->opts.min_confidence;
    size_t an = count_alnum(text);
    if (chars == 1) {
        size_t k = 0;
        while (text[k] == ' ')
            k++;
        return an == 1 && isupper((unsigned char)text[k]) && conf >= at_least(minc, 75) &&
               clutter <= 2;
    }
    /* amid texture (many chance components around) a reading must be confident */
    if (an >= 4)
        return conf >= (clutter > 2 * chars + 2 ? at_least(minc, 50) : minc);
    if (an >= 2) {
        /* "ee", "ji", "ae": what Tesseract makes of blobs; short annotations ("PA", "5 cm",
         * "L 40") have a capital or a digit */
        int strong = 0;
        for (const char *p = text; *p; p++)
            strong |= isupper((unsigned char)*p) || isdigit((unsigned char)*p);
        return conf >= at_least(minc, strong ? 60 : 80) && clutter <= chars;
    }
    return an == 1 && conf >= at_least(minc, 80) && clutter == 0;
}

/* The orientation letter (L R A P H F S I) a reading of one component is, when Tesseract
 * gives it at least 50 confidence; 0 otherwise. */
static char orientation_letter(const char *text, double conf)
{
    while (*text == ' ')
        text++;
    if (conf < 50 || !text[0] || !strchr("LRAPHFSI", text[0]))
        return 0;
    for (const char *p = text + 1; *p; p++)
        if (*p != ' ' && *p != '.')
            return 0;
    return text[0];
}

/* Clear thin straight lines (rulers, underlines, box edges, ECG baselines) from the mask:
 * horizontal and vertical runs of RULE_LEN or more pixels at most 3 pixels thick. Text
 * touching such a line would otherwise become one huge component and be dropped. */
#define RULE_LEN 40
/* Clear the thin runs along `nlines` lines of `len` pixels each: pixel i of line l is
 * mask[l * line_step + i * step]. A run is thin when the lines two before and two after are
 * mostly clear along it. */
static void clear_runs(uint8_t *mask, size_t nlines, size_t len, size_t line_step, size_t step)
{
    for (size_t l = 0; l < nlines; l++) {
        uint8_t *m = mask + l * line_step;
        size_t i = 0;
        while (i < len) {
            if (!m[i * step]) {
                i++;
                continue;
            }
            size_t i0 = i;
            while (i < len && m[i * step])
                i++;
            if (i - i0 < RULE_LEN)
                continue;
            const uint8_t *prev = l >= 2 ? m - 2 * line_step : NULL;
            const uint8_t *next = l + 2 < nlines ? m + 2 * line_step : NULL;
            size_t before = 0, after = 0;
            for (size_t k = i0; k < i; k++) {
                before += prev && prev[k * step] ? 1 : 0;
                after += next && next[k * step] ? 1 : 0;
            }
            if (before * 3 < i - i0 || after * 3 < i - i0)
                for (size_t k = i0; k < i; k++)
                    m[k * step] = 0;
        }
    }
}

static void remove_rules(uint8_t *mask, size_t rows, size_t cols)
{
    clear_runs(mask, rows, cols, cols, 1); /* horizontal runs, row by row */
    clear_runs(mask, cols, rows, 1, cols); /* vertical runs, column by column */
}

/* The components were cut at the detection threshold; the anti-aliased rim of the glyphs is
 * fainter. Grow the box side by side (at most 3 pixels) while the next row or column holds
 * ink at a quarter of the line's strength, so the box covers all of the text. */
static void grow_to_ink(const uint8_t *resp, size_t rows, size_t cols, line *l, double strength)
{
    int low = (int)(strength * 0.25);
    if (low < 10)
        low = 10;
    for (int step = 0; step < 3; step++) {
        int grew = 0;
        if (l->y0 > 0) {
            int y = l->y0 - 1, any = 0;
            for (int x = l->x0; x < l->x1 && !any; x++)
                any = resp[(size_t)y * cols + (size_t)x] >= low;
            if (any)
                l->y0--, grew = 1;
        }
        if (l->y1 < (int)rows) {
            int y = l->y1, any = 0;
            for (int x = l->x0; x < l->x1 && !any; x++)
                any = resp[(size_t)y * cols + (size_t)x] >= low;
            if (any)
                l->y1++, grew = 1;
        }
        if (l->x0 > 0) {
            int x = l->x0 - 1, any = 0;
            for (int y = l->y0; y < l->y1 && !any; y++)
                any = resp[(size_t)y * cols + (size_t)x] >= low;
            if (any)
                l->x0--, grew = 1;
        }
        if (l->x1 < (int)cols) {
            int x = l->x1, any = 0;
            for (int y = l->y0; y < l->y1 && !any; y++)
                any = resp[(size_t)y * cols + (size_t)x] >= low;
            if (any)
                l->x1++, grew = 1;
        }
        if (!grew)
            break;
    }
}

/* A line that reads as text takes in the character-sized components beside it on the same
 * row that the chaining left out: a label ("MRN:", "DOB") whose colon broke the chain, the
 * first letters of a name Tesseract did not read. Components of similar height, overlapping
 * the line's rows by 60%, at most 2.5 character heights away (a colon and a space in a
 * monospaced font); repeated while the box grows. */
static void absorb_neighbours(const comps *cs, line *l, double ch)
{
    /* the row band stays the line's own: only the box's ends move, so texture cannot make it
     * snowball upwards and downwards */
    const int by0 = l->y0, by1 = l->y1;
    int grew = 1;
    while (grew) {
        grew = 0;
        for (size_t i = 0; i < cs->n; i++) {
            const comp *p = &cs->v[i];
            int h = p->y1 - p->y0;
            if (h < 0.5 * ch || h > 1.5 * ch + 1)
                continue;
            if (p->x0 >= l->x0 && p->x1 <= l->x1 && p->y0 >= l->y0 && p->y1 <= l->y1)
                continue;
            int ov = (p->y1 < by1 ? p->y1 : by1) - (p->y0 > by0 ? p->y0 : by0);
            if (ov < 0.6 * h)
                continue;
            int gap = p->x0 >= l->x1 ? p->x0 - l->x1 : p->x1 <= l->x0 ? l->x0 - p->x1 : 0;
            if (gap > 2.5 * ch || gap == 0)
                continue;
            if (p->x0 < l->x0)
                l->x0 = p->x0, grew = 1;
            if (p->x1 > l->x1)
                l->x1 = p->x1, grew = 1;
            if (p->y0 < l->y0)
                l->y0 = p->y0;
            if (p->y1 > l->y1)
                l->y1 = p->y1;
        }
    }
}

static int labelled(const char *text);

/* Does a reading name this file's PHI, or start with a PHI label and a value? */
static int names_phi(const deid_text_phi *phi, const char *text)
{
    return (phi && deid_text_phi_match(phi, text)) || labelled(text);
}

static int cmp_int(const void *a, const void *b)
{
    int p = *(const int *)a, q = *(const int *)b;
    return (p > q) - (p < q);
}

/* The row band most of a line's characters share, and the letters on it. Chaining follows
 * anything of character size, so a line crossing a skull ring or a ruler picks up pieces of
 * it above and below, and the letters touching it are lost into one big component: the box
 * is then too tall for Tesseract to read. The band is the median top and bottom of the
 * line's components; the refitted line spans the components inside it (ascenders and
 * descenders included), one band height further left and right (where the lost letters
 * are). Returns 0 when there is nothing to refit (the box is not much taller). */
static int refit_band(comps *cs, const line *l, size_t cols, line *out)
{
    int *ys = deid__malloc(2 * (size_t)l->chars * sizeof *ys);
    if (!ys)
        return 0;
    int n = 0;
    for (size_t i = 0; i < cs->n && n < l->chars; i++)
        if (find(cs->v, (int)i) == l->root) {
            ys[n] = cs->v[i].y0;
            ys[l->chars + n] = cs->v[i].y1;
            n++;
        }
    qsort(ys, (size_t)n, sizeof *ys, cmp_int);
    qsort(ys + l->chars, (size_t)n, sizeof *ys, cmp_int);
    int y0 = ys[n / 2], y1 = ys[l->chars + n / 2];
    free(ys);
    int bh = y1 - y0;
    if (bh < MIN_CHAR_H || (l->y1 - l->y0) < 1.4 * bh)
        return 0;
    *out = *l;
    out->chars = 0;
    out->hsum = 0;
    out->x0 = l->x1, out->x1 = l->x0, out->y0 = l->y1, out->y1 = l->y0;
    for (size_t i = 0; i < cs->n; i++) {
        const comp *p = &cs->v[i];
        int h = p->y1 - p->y0;
        int ov = (p->y1 < y1 ? p->y1 : y1) - (p->y0 > y0 ? p->y0 : y0);
        if (find(cs->v, (int)i) != l->root || ov < 0.6 * h || h > 1.5 * bh + 1)
            continue;
        /* ascenders and descenders reach past the band: the box takes them in */
        out->x0 = p->x0 < out->x0 ? p->x0 : out->x0;
        out->x1 = p->x1 > out->x1 ? p->x1 : out->x1;
        out->y0 = p->y0 < out->y0 ? p->y0 : out->y0;
        out->y1 = p->y1 > out->y1 ? p->y1 : out->y1;
        out->chars++;
        out->hsum += h;
    }
    if (out->chars < 2 || (l->y1 - l->y0) < 1.25 * (out->y1 - out->y0))
        return 0;
    out->x0 = out->x0 > bh ? out->x0 - bh : 0;
    out->x1 = out->x1 + bh < (int)cols ? out->x1 + bh : (int)cols;
    return 1;
}

/* Candidate lines of one polarity's response. */
static deid_status lines_of(deid_text_engine *e, const uint8_t *resp, size_t rows, size_t cols,
                            const deid_text_phi *phi, cands *out, size_t *found)
{
    size_t n = rows * cols;
    const size_t B = 32;
    size_t bx = (cols + B - 1) / B, by = (rows + B - 1) / B;
    uint8_t *thr = deid__malloc(bx * by + 1);
    uint8_t *mask = deid__malloc(n ? n : 1);
    comps cs = {0};
    line *lines = NULL;
    int *chars_of = NULL;
    deid_status st = DEID_ERR_NOMEM;
    if (!thr || !mask)
        goto done;
    if ((st = thresholds(resp, rows, cols, thr)) != DEID_OK)
        goto done;
    for (size_t y = 0; y < rows; y++)
        for (size_t x = 0; x < cols; x++)
            mask[y * cols + x] = resp[y * cols + x] >= thr[(y / B) * bx + x / B];
    remove_rules(mask, rows, cols);
    size_t all = 0;
    if ((st = label(mask, resp, rows, cols, &cs, &all)) != DEID_OK)
        goto done;
    if (!cs.n)
        goto done;
    qsort(cs.v, cs.n, sizeof *cs.v, cmp_x0);
    for (size_t i = 0; i < cs.n; i++)
        cs.v[i].line = (int)i;
    for (size_t i = 0; i < cs.n; i++)
        for (size_t j = i + 1; j < cs.n; j++) {
            if (cs.v[j].x0 > cs.v[i].x1 + (int)(1.1 * MAX_CHAR_H) + 2)
                break;
            if (chain(&cs.v[i], &cs.v[j])) {
                int a = find(cs.v, (int)i), b = find(cs.v, (int)j);
                if (a != b)
                    cs.v[b].line = a;
            }
        }
    lines = deid__calloc(cs.n, sizeof *lines);
    if (!lines) {
        st = DEID_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < cs.n; i++) {
        comp *c = &cs.v[i];
        int root = find(cs.v, (int)i);
        line *l = &lines[root];
        l->root = root;
        if (!l->chars) {
            l->x0 = c->x0, l->y0 = c->y0, l->x1 = c->x1, l->y1 = c->y1;
        } else {
            if (c->x0 < l->x0)
                l->x0 = c->x0;
            if (c->y0 < l->y0)
                l->y0 = c->y0;
            if (c->x1 > l->x1)
                l->x1 = c->x1;
            if (c->y1 > l->y1)
                l->y1 = c->y1;
        }
        l->chars++;
        l->sum += c->sum;
        l->hsum += c->y1 - c->y0;
    }
    /* Clutter: components of other lines near a line. Text sits on clean ground; speckle and
     * texture make many small chance "lines" surrounded by more of the same. */
    chars_of = deid__malloc(cs.n * sizeof *chars_of);
    if (!chars_of) {
        st = DEID_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < cs.n; i++)
        chars_of[i] = lines[i].chars;
    size_t nl = 0;
    for (size_t i = 0; i < cs.n; i++)
        if (lines[i].chars)
            lines[nl++] = lines[i];
    for (size_t k = 0; k < nl; k++) {
        line *l = &lines[k];
        int h = l->y1 - l->y0, c = 0;
        for (size_t i = 0; i < cs.n; i++) {
            const comp *p = &cs.v[i];
            if (p->x1 <= l->x0 - h || p->x0 >= l->x1 + h || p->y1 <= l->y0 - h ||
                p->y0 >= l->y1 + h)
                continue;
            if (p->x0 >= l->x0 && p->x1 <= l->x1 && p->y0 >= l->y0 && p->y1 <= l->y1)
                continue;
            if (chars_of[find(cs.v, (int)i)] > 2)
                continue; /* a neighbouring line of text is not clutter */
            c++;
        }
        l->clutter = c;
    }
    /* Strongest first; read at most MAX_LINES. */
    for (size_t k = 0; k < nl; k++)
        lines[k].sum = lines[k].sum * (lines[k].clutter > 2 * lines[k].chars + 2 ? 0.1 : 1.0);
    qsort(lines, nl, sizeof *lines, cmp_line_sum);
    size_t reads = 0;
    for (size_t k = 0; k < nl && reads < MAX_LINES; k++) {
        line *l = &lines[k];
        int w = l->x1 - l->x0, h = l->y1 - l->y0;
        double ch = (double)l->hsum / l->chars;
        if (h < 5 || (l->chars == 1 && (h < 7 || w > 4 * h)))
            continue;
        if (w < 3)
            continue;
        (*found)++;
        reads++;
        /* strength: the line's typical response, so faint text is stretched to full contrast */
        double strength = 0;
        {
            unsigned hist[256] = {0};
            size_t cnt = 0;
            for (int y = l->y0; y < l->y1; y++)
                for (int x = l->x0; x < l->x1; x++) {
                    hist[resp[(size_t)y * cols + (size_t)x]]++;
                    cnt++;
                }
            size_t acc = 0;
            int v = 255;
            for (; v > 0; v--) {
                acc += hist[v];
                if (acc * 20 >= cnt)
                    break;
            }
            strength = v;
        }
        char *text = NULL;
        double conf = 0;
        if ((st = read_line(e, resp, rows, cols, l, ch, strength, OCR_TARGET_H, &text,
                            &conf)) != DEID_OK)
            goto done;
        int ok = accept_line(e, text, conf, l->chars, l->clutter);
        /* Tesseract's reading of short text depends on the scale (an isolated "L" reads as
         * "e" at one size and "L" at the next): on clean ground, other sizes are cheap */
        static const double retry_h[] = {18.0, 48.0, 24.0};
        char marker = orientation_letter(text, conf);
        for (size_t r = 0; !ok && l->clutter == 0 && l->chars <= 2 && r < 3; r++) {
            char *t2 = NULL;
            double c2 = 0;
            if ((st = read_line(e, resp, rows, cols, l, ch, strength, retry_h[r], &t2,
                                &c2)) != DEID_OK) {
                free(text);
                goto done;
            }
            /* two sizes reading the same orientation letter agree it is one */
            char m2 = orientation_letter(t2, c2);
            int agree = l->chars == 1 && m2 && m2 == marker;
            marker = marker ? marker : m2;
            if (agree || accept_line(e, t2, c2, l->chars, l->clutter)) {
                free(text);
                text = t2;
                conf = c2;
                ok = 1;
            } else {
                free(t2);
            }
        }
        /* strokes alone: several aligned small characters of similar size on clean ground
         * (text too small for Tesseract; larger shapes it cannot read are not text) */
        if (!ok && l->chars >= 4 && ch <= 12 && h <= 1.6 * ch + 2 && w >= 2 * h &&
            l->clutter == 0 && count_alnum(text) >= 2)
            ok = 1;
        /* A line whose box is taller than its letters' band is read again on the band. When
         * either reading is text, the band is the line's box (the rest was what the chaining
         * picked up around it) and the better reading comes first, the other second. */
        int ev = names_phi(phi, text);
        char *other = NULL;
        line fit;
        if (l->chars >= 3 && refit_band(&cs, l, cols, &fit)) {
            char *t2 = NULL;
            double c2 = 0, ch2 = (double)fit.hsum / fit.chars;
            if ((st = read_line(e, resp, rows, cols, &fit, ch2, strength, OCR_TARGET_H, &t2,
                                &c2)) != DEID_OK) {
                free(text);
                goto done;
            }
            int ok2 = accept_line(e, t2, c2, fit.chars, l->clutter), ev2 = names_phi(phi, t2);
            if (ok2 || ev2) {
                if (ev2 > ev || (ev2 == ev && (c2 > conf || !ok))) {
                    other = text;
                    text = t2, conf = c2;
                } else {
                    other = t2;
                }
                ok = 1, ev |= ev2, ch = ch2;
                *l = fit;
            } else if (ok) {
                free(t2);
                *l = fit;   /* the letters are on the band even where only the tall crop read */
            } else {
                free(t2);
            }
        }
        /* Tesseract is unsure of what it read, but what it read is this file's patient (or a
         * PHI label and its value): chance blobs do not spell a patient's name */
        if (!ok && ev && l->chars >= 3)
            ok = 1;
        if (!ok) {
            free(text);
            free(other);
            continue;
        }
        absorb_neighbours(&cs, l, ch);
        grow_to_ink(resp, rows, cols, l, strength);
        cand c = {l->x0, l->y0, l->x1, l->y1, conf, DEID_TEXT_PASS_LINES, text, other, l->chars,
                  l->sum};
        if ((st = cands_push(out, &c)) != DEID_OK) {
            free(text);
            free(other);
            goto done;
        }
    }
    st = DEID_OK;
done:
    free(thr);
    free(mask);
    free(cs.v);
    free(lines);
    free(chars_of);
    return st;
}

static deid_status lines_pass(deid_text_engine *e, const deid_text_frame *f,
                              const deid_text_phi *phi, cands *out, size_t *found,
                              double *t_detect)
{
    size_t n = f->rows * f->cols;
    uint8_t *resp = deid__malloc(n ? n : 1);
    if (!resp)
        return DEID_ERR_NOMEM;
    deid_status st = DEID_OK;
    for (int pol = 0; pol < 3 && st == DEID_OK; pol++) {
        const uint8_t *src = pol == 2 ? f->chroma : f->grey;
        if (!src)
            continue;
        double t0 = deid__now();
        st = deid__text_tophat(src, resp, f->rows, f->cols, TOPHAT_K, pol == 1);
        *t_detect += deid__now() - t0;
        if (st == DEID_OK)
            st = lines_of(e, resp, f->rows, f->cols, phi, out, found);
    }
    free(resp);
    return st;
}

/* ---- the PAGE pass ----------------------------------------------------------------------------- */

static deid_status page_pass(deid_text_engine *e, const deid_text_frame *f, cands *out,
                             size_t *found, double *t_prep)
{
    size_t n = f->rows * f->cols;
    uint8_t *eq = deid__malloc(n ? n : 1);
    if (!eq)
        return DEID_ERR_NOMEM;
    double t0 = deid__now();
    deid_status st = deid__text_clahe(f->grey, eq, f->rows, f->cols, 8, 2.5);
    *t_prep += deid__now() - t0;
    deid_ocr_words words = {0};
    if (st == DEID_OK)
        st = deid__ocr_words(e->tess, eq, f->cols, f->rows, f->cols, DEID_OCR_PSM_SPARSE,
                             &words);
    free(eq);
    /* words to lines (Tesseract's line index), keeping confident words with letters/digits */
    for (size_t i = 0; i < words.n && st == DEID_OK;) {
        size_t j = i;
        cand c = {0};
        deid_buf b = {0};
        double cs = 0, cn = 0;
        int any = 0;
        for (; j < words.n && words.v[j].line == words.v[i].line; j++) {
            const deid_ocr_word *w = &words.v[j];
            size_t an = count_alnum(w->text);
            double minc = e->opts.min_confidence;
            if (!(an >= 4 ? w->conf >= at_least(minc, 50)
                          : an >= 2 ? w->conf >= at_least(minc, 75)
                                    : an == 1 && w->conf >= at_least(minc, 90) && w->h <= 48))
                continue;
            if (w->h < 4 || w->h > MAX_CHAR_H + 20)
                continue;
            if (!any) {
                c.x0 = w->x, c.y0 = w->y, c.x1 = w->x + w->w, c.y1 = w->y + w->h;
            } else {
                if (w->x < c.x0)
                    c.x0 = w->x;
                if (w->y < c.y0)
                    c.y0 = w->y;
                if (w->x + w->w > c.x1)
                    c.x1 = w->x + w->w;
                if (w->y + w->h > c.y1)
                    c.y1 = w->y + w->h;
            }
            if ((b.len && deid__buf_append(&b, " ", 1)) ||
                deid__buf_append(&b, w->text, strlen(w->text)))
                st = DEID_ERR_NOMEM;
            double len = (double)strlen(w->text);
            cs += w->conf * len;
            cn += len;
            any = 1;
        }
        i = j;
        if (!any || st != DEID_OK) {
            deid__buf_free(&b);
            continue;
        }
        c.conf = cn > 0 ? cs / cn : 0;
        c.passes = DEID_TEXT_PASS_PAGE;
        c.text = b.data;
        (*found)++;
        if ((st = cands_push(out, &c)) != DEID_OK)
            deid__buf_free(&b);
    }
    deid__ocr_words_clear(&words);
    return st;
}

/* ---- merging and decisions ------------------------------------------------------------------ */

static int overlaps(const cand *a, const cand *b)
{
    int ix = (a->x1 < b->x1 ? a->x1 : b->x1) - (a->x0 > b->x0 ? a->x0 : b->x0);
    int iy = (a->y1 < b->y1 ? a->y1 : b->y1) - (a->y0 > b->y0 ? a->y0 : b->y0);
    if (ix <= 0 || iy <= 0)
        return 0;
    double inter = (double)ix * iy;
    double aa = (double)(a->x1 - a->x0) * (a->y1 - a->y0);
    double ab = (double)(b->x1 - b->x0) * (b->y1 - b->y0);
    double small = aa < ab ? aa : ab;
    return inter / (aa + ab - inter) >= 0.3 || inter >= 0.6 * small;
}

/* Merge b into a (b is emptied). */
static deid_status absorb(cand *a, cand *b)
{
    if (b->x0 < a->x0)
        a->x0 = b->x0;
    if (b->y0 < a->y0)
        a->y0 = b->y0;
    if (b->x1 > a->x1)
        a->x1 = b->x1;
    if (b->y1 > a->y1)
        a->y1 = b->y1;
    a->passes |= b->passes;
    /* keep the more confident reading first and the other as a second chance for PHI */
    if (b->conf > a->conf) {
        char *t = a->text;
        a->text = b->text;
        b->text = t;
        a->conf = b->conf;
    }
    /* every other reading (b's own second chances included) goes into text2 */
    for (int k = 0; k < 2; k++) {
        char **t = k ? &b->text2 : &b->text;
        if (!*t || !**t)
            continue;
        if (!a->text2) {
            a->text2 = *t;
            *t = NULL;
            continue;
        }
        deid_buf buf = {0};
        if (deid__buf_printf(&buf, "%s %s", a->text2, *t)) {
            deid__buf_free(&buf);
            return DEID_ERR_NOMEM;
        }
        free(a->text2);
        a->text2 = buf.data;
    }
    free(b->text);
    free(b->text2);
    b->text = b->text2 = NULL;
    b->passes = 0;
    return DEID_OK;
}

/* Words of one line found apart (a word gap wider than the chaining allows, or words read in
 * separate pieces): same row, similar height, gap under 1.5 heights (a word space is half a
 * height or less; fields further apart stay apart). */
static int same_line(const cand *a, const cand *b)
{
    int ha = a->y1 - a->y0, hb = b->y1 - b->y0;
    int hmin = ha < hb ? ha : hb, hmax = ha > hb ? ha : hb;
    int ov = (a->y1 < b->y1 ? a->y1 : b->y1) - (a->y0 > b->y0 ? a->y0 : b->y0);
    if (ov < 0.6 * hmin || hmax > 1.8 * hmin)
        return 0;
    int gap = a->x0 > b->x1 ? a->x0 - b->x1 : b->x0 - a->x1;
    return gap <= 1.5 * hmin;
}

static int group_of(int *g, int i)
{
    while (g[i] != i)
        i = g[i] = g[g[i]];
    return i;
}

/* Merge the candidates that overlap or continue one another's row into one region each. The
 * groups are formed from the boxes as found, not from growing unions, so a region cannot
 * snowball across the image. A group's rows are those of its LINES boxes when it has any:
 * Tesseract's page layout gives word boxes that take in specks above and below; its
 * columns are those of all its boxes. */
static deid_status merge(cands *c)
{
    if (c->n < 2)
        return DEID_OK;
    int *g = deid__malloc(c->n * sizeof *g);
    if (!g)
        return DEID_ERR_NOMEM;
    for (size_t i = 0; i < c->n; i++)
        g[i] = (int)i;
    for (size_t i = 0; i < c->n; i++)
        for (size_t j = i + 1; j < c->n; j++)
            if (overlaps(&c->v[i], &c->v[j]) || same_line(&c->v[i], &c->v[j])) {
                int a = group_of(g, (int)i), b = group_of(g, (int)j);
                if (a != b)
                    g[b > a ? b : a] = a < b ? a : b;
            }
    /* rows from the LINES boxes: remember each group's before absorbing */
    for (size_t i = 0; i < c->n; i++) {
        int r = group_of(g, (int)i);
        if ((size_t)r == i)
            continue;
        cand *a = &c->v[r], *b = &c->v[i];
        int y0 = a->y0, y1 = a->y1, a_lines = (a->passes & DEID_TEXT_PASS_LINES) != 0;
        int b_lines = (b->passes & DEID_TEXT_PASS_LINES) != 0;
        deid_status st = absorb(a, b);
        if (st != DEID_OK) {
            free(g);
            return st;
        }
        if (a_lines && !b_lines) {
            a->y0 = y0, a->y1 = y1;
        } else if (b_lines && !a_lines) {
            a->y0 = b->y0, a->y1 = b->y1;
        }
    }
    free(g);
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].passes)
            c->v[k++] = c->v[i];
    c->n = k;
    return DEID_OK;
}

static int in_border(const deid_text_engine *e, const deid_text_frame *f, const cand *c)
{
    size_t shorter = f->rows < f->cols ? f->rows : f->cols;
    size_t m = e->opts.margin ? e->opts.margin : (shorter * 15 + 99) / 100;
    return (size_t)c->y1 <= m || (size_t)c->x1 <= m || (size_t)c->y0 + m >= f->rows ||
           (size_t)c->x0 + m >= f->cols;
}

/* Does the text hold a written date (day, month and year), whatever day it names? Dates are
 * identifying whether or not OCR read the digits right: "25.64.1904" for 25.04.1994,
 * "Oct 152021", "09/16/4". Forms: numbers joined by . / - (1-4, 1-2, 1-4 digits), and a
 * month name next to numbers holding at least 4 digits in all (a year). */
static int has_date(const char *text)
{
    static const char *const mon[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                      "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
    size_t n = strlen(text);
    for (size_t i = 0; i < n; i++) {
        size_t g[3] = {0, 0, 0}, j = i;
        int k = 0;
        for (; k < 3; k++) {
            while (j < n && isdigit((unsigned char)text[j]))
                g[k]++, j++;
            if (!g[k] || k == 2 || j >= n || !strchr("./-", text[j]))
                break;
            j++;
        }
        if (k == 2 && g[0] <= 4 && g[1] >= 1 && g[1] <= 2 && g[2] >= 1 && g[2] <= 4 &&
            (i == 0 || !isdigit((unsigned char)text[i - 1])))
            return 1;
    }
    for (size_t i = 0; i + 3 <= n; i++) {
        int is_month = 0;
        for (size_t m = 0; m < 12 && !is_month; m++)
            is_month = toupper((unsigned char)text[i]) == mon[m][0] &&
                       toupper((unsigned char)text[i + 1]) == mon[m][1] &&
                       toupper((unsigned char)text[i + 2]) == mon[m][2] &&
                       (i == 0 || !isalpha((unsigned char)text[i - 1]));
        if (!is_month)
            continue;
        size_t digits = 0, lo = i >= 6 ? i - 6 : 0, hi = i + 16 < n ? i + 16 : n;
        for (size_t j = lo; j < hi; j++)
            digits += isdigit((unsigned char)text[j]) != 0;
        if (digits >= 4)
            return 1;
    }
    return 0;
}

/* Does the text hold an identifier OCR may have misread: a run of 6 or more digits, or a word
 * of 6 or more letters and digits with at least 4 digits ("A387974463" read "Als797 4462")?
 * Measurements and settings ("W 1500 L 450", "CINE 0118", "TIS<0.4") have fewer. */
static int has_id(const char *text)
{
    size_t run = 0, word = 0, digits = 0;
    for (const char *p = text;; p++) {
        unsigned char ch = (unsigned char)*p;
        if (isdigit(ch)) {
            if (++run >= 6)
                return 1;
        } else {
            run = 0;
        }
        if (isalnum(ch)) {
            word++;
            digits += isdigit(ch) != 0;
        } else {
            if (word >= 6 && digits >= 4)
                return 1;
            word = digits = 0;
        }
        if (!ch)
            return 0;
    }
}

/* Length of the PHI label word the text starts with ("DOB", "Name:", "[Nam" cut short by OCR
 * when `prefix` allows a start of 3 or more letters of one), after any leading punctuation;
 * 0 when the first word is no label. */
static size_t label_word(const char *text, int prefix)
{
    static const char *const labels[] = {"DOB",   "BORN",  "BIRTH", "DATE", "NAME", "PATIENT",
                                         "MRN",   "ID",    "PID",   "ACC",  "ACCESSION",
                                         "STUDY", "PT",    "PAT"};
    const char *p = text;
    while (*p && !isalpha((unsigned char)*p))
        p++;
    char word[16];
    size_t n = 0;
    while (isalpha((unsigned char)*p) && n + 1 < sizeof word)
        word[n++] = (char)toupper((unsigned char)*p++);
    word[n] = '\0';
    if (!n || isalpha((unsigned char)*p))
        return 0;
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++)
        if (!strcmp(word, labels[i]) ||
            (prefix && n >= 3 && !strncmp(word, labels[i], n)))
            return (size_t)(p - text);
    return 0;
}

/* Does the text start a labelled PHI field ("DOB 963,", "Name: [Nam", "PID mroig", "Born 19")
 * with something after the label? OCR may have mangled the value beyond matching, but the
 * label says what it was. */
static int labelled(const char *text)
{
    size_t n = label_word(text, 0);
    if (!n)
        return 0;
    for (const char *p = text + n; *p; p++)
        if (isalnum((unsigned char)*p))
            return 1;
    return 0;
}

static void decide(const deid_text_engine *e, const deid_text_frame *f,
                   const deid_text_phi *phi, const cand *c, deid_text_region *r)
{
    int kind = deid_text_phi_match(phi, c->text);
    if (!kind && c->text2)
        kind = deid_text_phi_match(phi, c->text2);
    r->phi = kind;
    if (e->opts.redact == DEID_TEXT_REDACT_NONE) {
        r->decision = DEID_TEXT_REVIEW;
        r->reason = "report only";
        return;
    }
    if (e->opts.area == DEID_TEXT_AREA_BORDER && !in_border(e, f, c)) {
        r->decision = DEID_TEXT_REVIEW;
        r->reason = "outside the border band";
        return;
    }
    if (e->opts.redact == DEID_TEXT_REDACT_ALL) {
        r->decision = DEID_TEXT_REDACTED;
        r->reason = "all text";
        return;
    }
    if (kind) {
        r->decision = DEID_TEXT_REDACTED;
        r->reason = "matches PHI";
    } else if (has_date(c->text) || (c->text2 && has_date(c->text2))) {
        r->decision = DEID_TEXT_REDACTED;
        r->reason = "a date";
        r->phi = DEID_TEXT_PHI_DATE;
    } else if (labelled(c->text) || (c->text2 && labelled(c->text2))) {
        r->decision = DEID_TEXT_REDACTED;
        r->reason = "labelled as PHI";
        r->phi = DEID_TEXT_PHI_OTHER;
    } else if (has_id(c->text) || (c->text2 && has_id(c->text2))) {
        r->decision = DEID_TEXT_REDACTED;
        r->reason = "looks like an identifier";
        r->phi = DEID_TEXT_PHI_ID;
    } else if (deid__text_looks_identifying(c->text) ||
               (c->text2 && deid__text_looks_identifying(c->text2))) {
        r->decision = DEID_TEXT_REVIEW;
        r->reason = "may identify";
    } else {
        r->decision = DEID_TEXT_KEPT;
        r->reason = "no PHI match";
    }
}

/* PHI mode: what OCR split or lost around a PHI match is part of it.
 * - A region on the same row as a redacted PHI region, at most three heights away, is
 *   redacted with it ("RASI" beside "[THEODORA").
 * - A label alone ("Name:", "[Nam", "DOB") on the same row to the left of a PHI region, at
 *   most 20 heights away (a long name), is redacted, and so is everything between the two: the start of
 *   the value OCR did not read ("[Nam" ... "SMOND" of "Name: THORNBURY^DESMOND").
 * - A PHI box is widened by two character heights on each side, where a label ("ID:",
 *   "MRN:") or a misread end of the value usually sits; a box redacted for its label
 *   ("DOB 963,") by four on the right, where the value OCR mangled goes on. */
static void around_phi(const deid_text_frame *f, const cands *c, deid_text_region *rs)
{
    for (size_t i = 0; i < c->n; i++) {
        if (rs[i].decision != DEID_TEXT_REDACTED || !rs[i].phi)
            continue;
        const cand *a = &c->v[i];
        int ha = a->y1 - a->y0;
        for (size_t j = 0; j < c->n; j++) {
            if (rs[j].decision == DEID_TEXT_REDACTED || rs[j].reason == NULL)
                continue;
            if (!strcmp(rs[j].reason, "outside the border band"))
                continue;
            const cand *b = &c->v[j];
            int hb = b->y1 - b->y0, hmin = ha < hb ? ha : hb, hmax = ha > hb ? ha : hb;
            int ov = (a->y1 < b->y1 ? a->y1 : b->y1) - (a->y0 > b->y0 ? a->y0 : b->y0);
            int gap = a->x0 > b->x1 ? a->x0 - b->x1 : b->x0 - a->x1;
            if (ov < 0.5 * hmin)
                continue;
            if (gap <= 3 * hmax) {
                rs[j].decision = DEID_TEXT_REDACTED;
                rs[j].reason = "beside PHI";
            } else if (b->x1 <= a->x0 && gap <= 20 * hmax &&
                       (label_word(b->text, 1) || (b->text2 && label_word(b->text2, 1)))) {
                rs[j].decision = DEID_TEXT_REDACTED;
                rs[j].reason = "PHI label";
                size_t end = rs[i].x + rs[i].w;
                rs[i].x = (size_t)b->x1;
                rs[i].w = end - rs[i].x;
            }
        }
    }
    for (size_t i = 0; i < c->n; i++) {
        if (rs[i].decision != DEID_TEXT_REDACTED || !rs[i].phi)
            continue;
        size_t grow = 2 * rs[i].h, x0 = rs[i].x > grow ? rs[i].x - grow : 0;
        if (!strcmp(rs[i].reason, "labelled as PHI"))
            grow *= 2;
        size_t x1 = rs[i].x + rs[i].w + grow < f->cols ? rs[i].x + rs[i].w + grow : f->cols;
        rs[i].x = x0;
        rs[i].w = x1 - x0;
    }
}

deid_status deid__text_detect_frame(deid_text_engine *e, const deid_text_frame *f,
                                    const deid_text_phi *phi, deid_text_result *res)
{
    if (!e || !f || !f->grey || !res)
        return deid__fail(DEID_ERR_ARGUMENT, M, "text detection: bad arguments");
    cands c = {0};
    deid_status st = DEID_OK;
    double t_detect = 0, t_prep = 0, t0 = deid__now();
    size_t found_lines = 0, found_page = 0;
    if (e->opts.passes & DEID_TEXT_PASS_LINES)
        st = lines_pass(e, f, phi, &c, &found_lines, &t_detect);
    size_t n_lines = c.n;
    if (st == DEID_OK && (e->opts.passes & DEID_TEXT_PASS_PAGE))
        st = page_pass(e, f, &c, &found_page, &t_prep);
    double t_all = deid__now() - t0;
    (void)n_lines;
    if (st == DEID_OK)
        st = merge(&c);
    deid_text_region *rs = c.n ? deid__calloc(c.n, sizeof *rs) : NULL;
    if (c.n && !rs)
        st = DEID_ERR_NOMEM;
    for (size_t i = 0; i < c.n && st == DEID_OK; i++) {
        deid_text_region *r = &rs[i];
        r->frame = f->frame;
        r->source = f->source;
        r->x = (size_t)c.v[i].x0;
        r->y = (size_t)c.v[i].y0;
        r->w = (size_t)(c.v[i].x1 - c.v[i].x0);
        r->h = (size_t)(c.v[i].y1 - c.v[i].y0);
        r->confidence = c.v[i].conf;
        r->passes = c.v[i].passes;
        r->text = c.v[i].text ? c.v[i].text : "";
        decide(e, f, phi, &c.v[i], r);
    }
    if (st == DEID_OK && e->opts.redact == DEID_TEXT_REDACT_PHI)
        around_phi(f, &c, rs);
    for (size_t i = 0; i < c.n && st == DEID_OK; i++)
        st = deid__text_result_push(res, &rs[i]);
    free(rs);
    cands_clear(&c);
    if (st != DEID_OK)
        return st;
    res->stats.frames++;
    res->stats.found += found_lines + found_page;
    res->stats.found_lines += found_lines;
    res->stats.found_page += found_page;
    res->stats.seconds_detect += t_detect;
    res->stats.seconds_prepare += t_prep;
    res->stats.seconds_ocr += t_all - t_detect - t_prep;
    return DEID_OK;
}

deid_status deid__text_read_box(deid_text_engine *e, const deid_text_frame *f, size_t x,
                                size_t y, size_t w, size_t h, char **text, double *confidence)
{
    if (!e || !f || !f->grey || !text || !confidence)
        return deid__fail(DEID_ERR_ARGUMENT, M, "text read: bad arguments");
    *text = NULL;
    *confidence = 0;
    if (x >= f->cols || y >= f->rows || !w || !h)
        return (*text = deid__strdup("")) ? DEID_OK : DEID_ERR_NOMEM;
    if (x + w > f->cols)
        w = f->cols - x;
    if (y + h > f->rows)
        h = f->rows - y;
    /* the box as it is, contrast-stretched and upscaled like a line, read as a block */
    size_t s = h < 16 ? 3 : h < 32 ? 2 : 1;
    size_t W = w * s + 20, H = h * s + 20;
    uint8_t *img = deid__malloc(W * H);
    if (!img)
        return DEID_ERR_NOMEM;
    uint8_t lo = 255, hi = 0;
    for (size_t yy = y; yy < y + h; yy++)
        for (size_t xx = x; xx < x + w; xx++) {
            uint8_t v = f->grey[yy * f->cols + xx];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    /* 255 everywhere unless the box holds real contrast */
    memset(img, 255, W * H);
    if (hi > lo + 8)
        for (size_t Y = 0; Y < h * s; Y++)
            for (size_t X = 0; X < w * s; X++) {
                uint8_t v = f->grey[(y + Y / s) * f->cols + x + X / s];
                img[(Y + 10) * W + X + 10] = (uint8_t)((unsigned)(v - lo) * 255u / (hi - lo));
            }
    deid_ocr_words words = {0};
    deid_status st = deid__ocr_words(e->tess, img, W, H, W, DEID_OCR_PSM_SINGLE_BLOCK, &words);
    free(img);
    if (st == DEID_OK)
        st = join_words(&words, text, confidence);
    deid__ocr_words_clear(&words);
    return st;
}
