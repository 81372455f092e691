/* PHI terms against OCR'd text: the patient's name in any order, case and separator, with OCR
 * misreadings; IDs inside longer words; dates in the common written forms - all match, while
 * ordinary annotation text and another patient's name, ID or date do not. A header's own PHI
 * is collected from the dataset; bad terms are refused; unmatched text that looks like an
 * identifier or a date is flagged for review, measurement annotations are not. */
#include <stdio.h>
#include <string.h>
#include "check.h"
#include "core/core.h"
#include "deid/deid.h"
#include "dicom/dataset_int.h"
#include "text/text_int.h"

enum { NAME = DEID_TEXT_PHI_NAME, ID = DEID_TEXT_PHI_ID, DATE = DEID_TEXT_PHI_DATE,
       OTHER = DEID_TEXT_PHI_OTHER, NONE = DEID_TEXT_PHI_NONE };

typedef struct term {
    int kind;
    const char *value;
} term;

/* The patient of most cases. */
static const term patient[] = {
    {NAME, "DOE^JOHN^Q^^DR"}, {ID, "1234567"}, {DATE, "19620504"},
    {OTHER, "ST MARY HOSPITAL"}, {ID, "ACC2023X17"}, {0, NULL},
};
static const term short_name[] = {{NAME, "LI^NA"}, {0, NULL}};
static const term accented[] = {{NAME, "M\xC3\xBCLLER^J\xC3\xBCRGEN"}, {0, NULL}};
static const term latin1[] = {{NAME, "M\xDCLLER^FRAN\xC7OIS"}, {0, NULL}};
static const term short_id[] = {{ID, "120"}, {ID, "12"}, {0, NULL}};
static const term dt_date[] = {{DATE, "20231231235959.000000+0100"}, {0, NULL}};
static const term apostrophe[] = {{NAME, "O'BRIEN^SEAN"}, {0, NULL}};
static const term long_name[] = {{NAME, "HARGREAVES^EVANDER"}, {0, NULL}};
static const term address[] = {{OTHER, "12 ELM STREET\r\nSPRINGFIELD"}, {0, NULL}};

typedef struct match_case {
    const term *terms;
    const char *text;
    int expect;
} match_case;

static const match_case cases[] = {
    /* names: order, case, separators */
    {patient, "Name: DOE, JOHN", NAME},
    {patient, "JOHN DOE", NAME},
    {patient, "doe^john", NAME},
    {patient, "Doe, J.", NAME},
    {patient, "Pt: John", NAME},
    /* names: OCR misreadings, merged and split words */
    {patient, "J0HN D0E", NAME},
    {patient, "JOHM", NAME},
    {patient, "DOEJOHN", NAME},
    {patient, "JO HN", NAME},
    {patient, "D0E", NAME},
    {short_name, "LI NA", NAME},
    {short_name, "Patient: L1", NAME},
    {accented, "Muller Jurgen", NAME},
    {accented, "M\xC3\x9CLLER", NAME},
    {latin1, "Francois", NAME},
    {latin1, "MULLER", NAME},
    {apostrophe, "OBRIEN", NAME},
    /* dates OCR read only in part: two of day, month and year of the patient's own date */
    {patient, "May 1962", DATE},
    {patient, "DOB: May 4", DATE},
    {patient, "4 May", DATE},
    {patient, "05/04", DATE},
    /* names cut short by OCR (5+ letters, half the name or more); labels never match */
    {long_name, "ANDER HARGRE", NAME},
    {long_name, "VANDER", NAME},
    {long_name, "GREAV", NAME},
    {long_name, "ANDE", NONE},
    {long_name, "Name:", NONE},
    {apostrophe, "O'Brien, Sean", NAME},
    {apostrophe, "O\xE2\x80\x99" "BRIEN", NAME},
    /* IDs: embedded, separated, misread */
    {patient, "ID: 1234567", ID},
    {patient, "ID:1234567", ID},
    {patient, "MRN1234567", ID},
    {patient, "PID 123-4567", ID},
    {patient, "l234567", ID},
    {patient, "I23456T", ID},
    {patient, "Acc# ACC2023X17", ID},
    {patient, "ACC 2023 X17", ID},
    {short_id, "kVp 120", ID},
    /* dates */
    {patient, "DOB 05/04/1962", DATE},
    {patient, "04/05/1962", DATE},
    {patient, "1962-05-04", DATE},
    {patient, "1962/05/04", DATE},
    {patient, "04.05.1962", DATE},
    {patient, "04-May-1962", DATE},
    {patient, "May 4, 1962", DATE},
    {patient, "4 May 1962", DATE},
    {patient, "4th May 1962", DATE},
    {patient, "04MAY1962", DATE},
    {patient, "04 MAY 62", DATE},
    {patient, "19620504", DATE},
    {patient, "4/5/62", DATE},
    {patient, "5/4/1962", DATE},
    {patient, "1962-5-4", DATE},
    {patient, "O4/O5/I962", DATE},
    {patient, "04/05/1952", DATE},
    {patient, "04/05/962", DATE},
    {patient, "DOB 64/65/1962", DATE}, /* small 0s read as 6 */
    {patient, "05041962 10:32", DATE},
    {dt_date, "31 December 2023", DATE},
    {dt_date, "Dec 31 2023 23:59", DATE},
    {dt_date, "2023-12-31", DATE},
    /* other identifying text, matched whole */
    {patient, "St. Mary Hospital", OTHER},
    {patient, "ST MARY H0SPITAL", OTHER},
    {address, "12 Elm Street", OTHER},
    {address, "Springfield", OTHER},
    /* annotations */
    {patient, "L", NONE},
    {patient, "R", NONE},
    {patient, "5 cm", NONE},
    {patient, "MI 1.2", NONE},
    {patient, "TIS 0.4", NONE},
    {patient, "kVp 120", NONE},
    {patient, "HEAD", NONE},
    {patient, "1/34", NONE},
    {patient, "Series 3", NONE},
    {patient, "W 400 L 40", NONE},
    {patient, "512x512", NONE},
    {patient, "Im: 12/34", NONE},
    {patient, "C5-2 ABDOMEN", NONE},
    {patient, "ZOOM 1.5 FR 30Hz", NONE},
    {patient, "HOSPITAL", NONE},
    {patient, "ST", NONE},
    {short_name, "MI 1.2", NONE},
    {short_name, "LINAC", NONE},
    {short_id, "1120", NONE},
    {short_id, "Series 12", NONE},
    /* another patient */
    {patient, "Name: ROE, JANE", NONE},
    {patient, "JOHNSTONE", NAME}, /* contains JOHN: over-redaction, accepted */
    {patient, "ID: 7654321", NONE},
    {patient, "ID: 9876543", NONE},
    {patient, "DOB 12/11/1975", NONE},
    {patient, "07/08/1962", NONE},
    {patient, "04 Jun 1962", NONE},
    {patient, "1962", NONE},
    {patient, "Jun 30", NONE},
    {patient, "05/30", NONE},
    {dt_date, "235959", NONE},
};

static deid_text_phi *build(const term *terms)
{
    deid_text_phi *phi = NULL;
    CHECK_OK(deid_text_phi_new(&phi));
    for (const term *t = terms; phi && t->value; t++)
        CHECK_OK(deid_text_phi_add(phi, t->kind, t->value));
    return phi;
}

static void test_cases(void)
{
    size_t n = sizeof cases / sizeof cases[0], wrong = 0;
    for (size_t i = 0; i < n; i++) {
        deid_text_phi *phi = build(cases[i].terms);
        int got = deid_text_phi_match(phi, cases[i].text);
        if (got != cases[i].expect) {
            fprintf(stderr, "case %zu \"%s\": matched kind %d, expected %d\n", i, cases[i].text,
                    got, cases[i].expect);
            wrong++;
        }
        deid_text_phi_free(phi);
    }
    CHECK(wrong == 0);
    printf("%zu match cases\n", n);
}

static void test_terms(void)
{
    deid_text_phi *phi = build(patient);
    /* DOE, JOHN, Q and DR dropped, 2 IDs, a date, the hospital */
    CHECK(deid_text_phi_count(phi) == 6);
    CHECK_OK(deid_text_phi_add(phi, NAME, "Doe^John")); /* held already */
    CHECK_OK(deid_text_phi_add(phi, NAME, ""));
    CHECK_OK(deid_text_phi_add(phi, ID, "7"));
    CHECK_OK(deid_text_phi_add(phi, DATE, " "));
    CHECK(deid_text_phi_count(phi) == 6);
    CHECK(deid_text_phi_count(NULL) == 0);
    CHECK(deid_text_phi_add(phi, 0, "X") == DEID_ERR_ARGUMENT);
    CHECK(deid_text_phi_add(phi, 5, "SMITH") == DEID_ERR_ARGUMENT);
    CHECK(deid_text_phi_add(phi, DATE, "19621304") == DEID_ERR_ARGUMENT);
    CHECK(deid_text_phi_add(phi, DATE, "19630229") == DEID_ERR_ARGUMENT);
    CHECK(deid_text_phi_add(phi, DATE, "not a date") == DEID_ERR_ARGUMENT);
    CHECK(strstr(deid_last_error(), "not a date") == NULL); /* the value is not in the message */
    CHECK(deid_text_phi_add(phi, DATE, "202304") == DEID_ERR_ARGUMENT);
    CHECK_OK(deid_text_phi_add(phi, DATE, "20000229"));
    CHECK_OK(deid_text_phi_add(phi, DATE, "1999.12.31"));
    CHECK(deid_text_phi_add(NULL, NAME, "X") == DEID_ERR_ARGUMENT);
    CHECK(deid_text_phi_add(phi, NAME, NULL) == DEID_ERR_ARGUMENT);
    CHECK(deid_text_phi_count(phi) == 8);
    CHECK(deid_text_phi_match(phi, "29 Feb 2000") == DATE);
    CHECK(deid_text_phi_match(phi, "31.12.1999") == DATE);
    CHECK(deid_text_phi_match(NULL, "DOE") == NONE);
    CHECK(deid_text_phi_match(phi, NULL) == NONE);
    CHECK(deid_text_phi_match(phi, "") == NONE);
    CHECK(deid_text_phi_new(NULL) == DEID_ERR_ARGUMENT);
    deid_text_phi_free(phi);
    deid_text_phi_free(NULL);

    deid_text_phi *empty = build(short_name + 1);
    CHECK(deid_text_phi_match(empty, "DOE JOHN 1234567") == NONE);
    deid_text_phi_free(empty);
}

static void test_dataset(void)
{
    deid_dataset *ds = deid__dataset_new("phi");
    CHECK(ds != NULL);
    if (!ds)
        return;
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0010, 0x0010), "DOE^JOHN"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0010, 0x0020), "1234567"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0010, 0x1000), "AB998877\\CD554433"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0010, 0x0030), "19620504"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0008, 0x0020), "20230405"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0008, 0x0021), "20230405"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0008, 0x0022), "2023")); /* malformed */
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0008, 0x0090), "SMITH^ANNA^^DR"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0008, 0x0080), "ST MARY HOSPITAL"));
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0020, 0x0010), "12")); /* too short */
    CHECK_OK(deid_dataset_set_string(ds, DEID_TAG(0x0008, 0x0060), "CT")); /* not PHI */
    deid_text_phi *phi = NULL;
    CHECK_OK(deid_text_phi_new(&phi));
    CHECK_OK(deid_text_phi_add_dataset(phi, ds));
    /* DOE JOHN, 3 IDs, 2 dates, SMITH ANNA, the hospital */
    CHECK(deid_text_phi_count(phi) == 10);
    CHECK(deid_text_phi_match(phi, "DOE JOHN") == NAME);
    CHECK(deid_text_phi_match(phi, "Ref: Dr. Anna Smith") == NAME);
    CHECK(deid_text_phi_match(phi, "ID CD554433") == ID);
    CHECK(deid_text_phi_match(phi, "05-APR-2023 14:02") == DATE);
    CHECK(deid_text_phi_match(phi, "ST MARY HOSPITAL") == OTHER);
    CHECK(deid_text_phi_match(phi, "CT") == NONE);
    CHECK(deid_text_phi_match(phi, "Series 12") == NONE);
    CHECK(deid_text_phi_add_dataset(NULL, ds) == DEID_ERR_ARGUMENT);
    CHECK(deid_text_phi_add_dataset(phi, NULL) == DEID_ERR_ARGUMENT);
    deid_text_phi_free(phi);
    deid_dataset_free(ds);
}

static void test_looks_identifying(void)
{
    static const char *const yes[] = {
        "1234567",     "ID 00123456", "05/04/1962", "1962-05-04", "4.5.62",     "10:32",
        "10:32:15",    "AB12345",     "MRN0042",    "04-May-1962", "May 4, 1962", "O5/O4/I962",
        "Acc A2023X17"};
    static const char *const no[] = {
        "L",       "R",        "5 cm",   "MI 1.2",   "TIS 0.4", "kVp 120", "120 kVp", "120kVp",
        "HEAD",    "1/34",     "Series 3", "512x512", "W 400 L 40", "T2FLAIR", "B1000", "1.2.3",
        "FR 30Hz", "Zoom 1.5", "C5-2",   "",         "25:99",   "Im 12/34"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!deid__text_looks_identifying(yes[i])) {
            fprintf(stderr, "\"%s\" should look identifying\n", yes[i]);
            check_failures++;
        }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (deid__text_looks_identifying(no[i])) {
            fprintf(stderr, "\"%s\" should not look identifying\n", no[i]);
            check_failures++;
        }
    CHECK(!deid__text_looks_identifying(NULL));
}

/* A line of 40 characters against 30 terms: microseconds. Printed, not asserted. */
static void test_speed(void)
{
    deid_text_phi *phi = NULL;
    CHECK_OK(deid_text_phi_new(&phi));
    char value[32];
    for (int i = 0; i < 10; i++) {
        snprintf(value, sizeof value, "SURNAME%c^GIVEN%c", 'A' + i, 'A' + i);
        CHECK_OK(deid_text_phi_add(phi, NAME, value));
        snprintf(value, sizeof value, "%d", 7000000 + 1013 * i);
        CHECK_OK(deid_text_phi_add(phi, ID, value));
        snprintf(value, sizeof value, "2023%02d%02d", 1 + i, 10 + i);
        CHECK_OK(deid_text_phi_add(phi, DATE, value));
    }
    const char *line = "Name: ROE, JANE  ID 1234567  05/04/1962";
    int n = 20000, hits = 0;
    double t0 = deid__now();
    for (int i = 0; i < n; i++)
        hits += deid_text_phi_match(phi, line) != NONE;
    double us = (deid__now() - t0) / n * 1e6;
    CHECK(hits == 0);
    printf("match: %zu terms, %zu-character line: %.2f us per line\n", deid_text_phi_count(phi),
           strlen(line), us);
    deid_text_phi_free(phi);
}

int main(void)
{
    test_cases();
    test_terms();
    test_dataset();
    test_looks_identifying();
    test_speed();
    return check_done("test_text_phi");
}
