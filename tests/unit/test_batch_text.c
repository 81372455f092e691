/* review.csv of the batch's text stage: one row per region left for review (text only when
 * asked), a file's rows listed once, and a resume that cuts a torn last line and drops the
 * rows of files that did not finish, so a file processed again is listed exactly once. */
#define _XOPEN_SOURCE 700 /* mkdtemp */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "batch/batch_int.h"
#include "check.h"
#include "deid/deid.h"
#include "text/text_int.h"

static const char header[] = "output_path,frame,source,x,y,w,h,confidence,reason,text\n";

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void append_text(const char *path, const char *s)
{
    FILE *f = fopen(path, "ab");
    CHECK(f != NULL);
    if (f) {
        fputs(s, f);
        fclose(f);
    }
}

/* Two regions for review (one from an overlay, one whose text needs quoting) and one
 * redacted region, which is never listed. */
static deid_text_result *sample(void)
{
    deid_text_result *res = deid__text_result_new();
    deid_text_region g;
    memset(&g, 0, sizeof g);
    g.x = 10, g.y = 20, g.w = 30, g.h = 8, g.confidence = 87.54;
    g.decision = DEID_TEXT_REVIEW;
    g.reason = "outside the border band";
    g.text = "DOE, \"JOHN\"";
    CHECK_OK(deid__text_result_push(res, &g));
    g.decision = DEID_TEXT_REDACTED;
    g.reason = "all text";
    g.text = "12345";
    CHECK_OK(deid__text_result_push(res, &g));
    g.frame = 2, g.source = 2, g.decision = DEID_TEXT_REVIEW;
    g.reason = "report only";
    g.text = "L";
    CHECK_OK(deid__text_result_push(res, &g));
    return res;
}

static const char *done_a;
static int done(void *user, const char *output_path)
{
    (void)user;
    return done_a && strcmp(output_path, done_a) == 0;
}

int main(void)
{
    char dir[] = "/tmp/deid_review_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/review.csv", dir);
    deid_text_result *res = sample();

    /* A fresh run: header only, then rows per file; a second append for the same output
     * (a resume redoing a file whose output was lost) adds nothing. */
    deid_review *r = NULL;
    CHECK_OK(deid__review_open(path, 0, NULL, NULL, NULL, NULL, &r));
    CHECK(strcmp(slurp(path), header) == 0);
    CHECK_OK(deid__review_append(r, "/o/a.png", res, 1));
    CHECK_OK(deid__review_append(r, "/o/a.png", res, 1));
    CHECK_OK(deid__review_append(r, "/o/b,c.dcm", res, 0));
    CHECK(deid__review_rows(r) == 4);
    CHECK_OK(deid__review_close(r));
    const char *rows_a =
        "/o/a.png,0,pixels,10,20,30,8,87.5,outside the border band,\"DOE, \"\"JOHN\"\"\"\n"
        "/o/a.png,2,overlay 6002,10,20,30,8,87.5,report only,L\n";
    const char *rows_b = "\"/o/b,c.dcm\",0,pixels,10,20,30,8,87.5,outside the border band,\n"
                         "\"/o/b,c.dcm\",2,overlay 6002,10,20,30,8,87.5,report only,\n";
    char want[2048];
    snprintf(want, sizeof want, "%s%s%s", header, rows_a, rows_b);
    CHECK(strcmp(slurp(path), want) == 0);

    /* Interrupted: a torn line, and b's file never finished. The resume keeps a's rows only;
     * b is processed again and listed once. */
    append_text(path, "/o/c.png,0,pix");
    done_a = "/o/a.png";
    CHECK_OK(deid__review_open(path, 1, done, NULL, NULL, NULL, &r));
    snprintf(want, sizeof want, "%s%s", header, rows_a);
    CHECK(strcmp(slurp(path), want) == 0);
    CHECK(deid__review_rows(r) == 2);
    CHECK_OK(deid__review_append(r, "/o/a.png", res, 1)); /* already there */
    CHECK_OK(deid__review_append(r, "/o/b,c.dcm", res, 0));
    CHECK_OK(deid__review_close(r));
    snprintf(want, sizeof want, "%s%s%s", header, rows_a, rows_b);
    CHECK(strcmp(slurp(path), want) == 0);

    /* A resume over a file that is not a review file is refused; a fresh run replaces it. */
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs("name,age\nx,1\n", f);
        fclose(f);
    }
    r = NULL;
    CHECK(deid__review_open(path, 1, done, NULL, NULL, NULL, &r) == DEID_ERR_ARGUMENT);
    CHECK(r == NULL);
    CHECK_OK(deid__review_open(path, 0, NULL, NULL, NULL, NULL, &r));
    CHECK_OK(deid__review_close(r));
    CHECK(strcmp(slurp(path), header) == 0);

    deid_text_result_free(res);
    unlink(path);
    rmdir(dir);
    return check_done("test_batch_text");
}
