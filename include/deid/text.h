/* libdeid: burned-in text: find text in pixels, decide what to redact, redact it. */
#ifndef DEID_TEXT_H
#define DEID_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include "deid/export.h"
#include "deid/status.h"
#include "deid/dataset.h"
#include "deid/image.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- policy --------------------------------------------------------------------------------- */

/* Which text regions are redacted. */
typedef enum deid_text_redact {
    DEID_TEXT_REDACT_ALL = 0,  /* every text region found */
    DEID_TEXT_REDACT_PHI = 1,  /* only regions whose text matches the object's PHI (names, IDs,
                                  dates: see deid_text_phi); other text is kept or left for
                                  review */
    DEID_TEXT_REDACT_NONE = 2  /* nothing: find and report only */
} deid_text_redact_mode;

/* Where text may be redacted. */
typedef enum deid_text_area {
    DEID_TEXT_AREA_ALL = 0,   /* anywhere in the image */
    DEID_TEXT_AREA_BORDER = 1 /* only regions lying in the border band (`margin` pixels from any
                                 edge); text reaching into the centre is left for review */
} deid_text_area;

/* How a redacted region is overwritten. Both are irreversible. */
typedef enum deid_text_fill {
    DEID_TEXT_FILL_SOLID = 0,  /* the padded box is set to the frame's darkest value (the
                                  minimum sample; the maximum for MONOCHROME1) */
    DEID_TEXT_FILL_INPAINT = 1 /* the padded box is filled by interpolating the pixels around
                                  it (diffusion from its border), so the image behind looks
                                  continuous; nothing of the text's pixels is kept */
} deid_text_fill;

/* Detection passes; a region found by several passes is reported once (merged by IoU). */
#define DEID_TEXT_PASS_LINES 0x1u /* stroke-contrast candidates (bright, dark and colour text)
                                     grouped into lines, each line read by Tesseract on an
                                     enhanced, upscaled crop: small, faint, inverted text */
#define DEID_TEXT_PASS_PAGE 0x2u  /* Tesseract's own layout analysis and recognition on the
                                     contrast-enhanced (CLAHE) whole frame: large text, text on
                                     textured backgrounds */
#define DEID_TEXT_PASS_ALL 0x3u

/* What was decided for a region. */
typedef enum deid_text_decision {
    DEID_TEXT_REDACTED = 0, /* overwritten (or to be, before deid_text_redact) */
    DEID_TEXT_REVIEW = 1,   /* left in place for a person to check: report-only mode, central
                               text in border mode, or unmatched text in PHI mode that may
                               identify (times, short numbers) */
    DEID_TEXT_KEPT = 2      /* left in place: PHI mode, read with confidence, matches no PHI and
                               does not look like an identifier ("L", "5 cm", "MI 1.2") */
} deid_text_decision;

/* Kinds of PHI terms (deid_text_phi_add) and what a region's text matched. */
typedef enum deid_text_phi_kind {
    DEID_TEXT_PHI_NONE = 0,
    DEID_TEXT_PHI_NAME = 1,  /* a person's name */
    DEID_TEXT_PHI_ID = 2,    /* an identifier: patient ID, accession number... */
    DEID_TEXT_PHI_DATE = 3,  /* a date */
    DEID_TEXT_PHI_OTHER = 4  /* any other identifying text: institution, address... */
} deid_text_phi_kind;

#define DEID_TEXT_OPTIONS_VERSION 1
/* Options of a text engine (deid_text_engine_new), used by every call made with it. */
typedef struct deid_text_options {
    unsigned version;      /* DEID_TEXT_OPTIONS_VERSION */
    int redact;            /* deid_text_redact_mode; default DEID_TEXT_REDACT_ALL */
    int area;              /* deid_text_area; default DEID_TEXT_AREA_ALL */
    unsigned margin;       /* DEID_TEXT_AREA_BORDER: width of the border band in pixels; default
                              0 = 15% of the shorter side of the image */
    int fill;              /* deid_text_fill; default DEID_TEXT_FILL_SOLID */
    unsigned pad;          /* pixels added on every side of a redacted box (boxes already
                              reach the faint rim of the glyphs); default 1 */
    unsigned passes;       /* DEID_TEXT_PASS_* bits; default 0 = DEID_TEXT_PASS_ALL */
    double min_confidence; /* 0..100: a candidate Tesseract reads with a lower confidence (and
                              that does not look like text by its strokes) is not text;
                              default 30 */
    int residual_check;    /* 1: after redaction read every redacted box (and a margin around
                              it) again; where PHI is still readable the box is widened once
                              and read again, and the object fails if PHI is still readable
                              then; default 1 */
    int report_text;       /* 1: reports (deid_text_result_json, review.csv) include the text
                              read, which is PHI; default 0 */
    const char *tessdata;  /* folder holding <language>.traineddata; default NULL =
                              $TESSDATA_PREFIX, then the Debian location
                              /usr/share/tesseract-ocr/5/tessdata */
    const char *language;  /* Tesseract language(s), e.g. "eng" or "eng+deu"; default NULL =
                              "eng" */
    int jpeg_quality;      /* lossy inputs (DICOM JPEG baseline/extended, .jpg files) are
                              re-encoded as JPEG baseline at this quality (1..100); lossless
                              inputs stay lossless; default 0 = 95 */
    uint64_t max_samples;  /* limit on decoded samples per object; default 0 = the decoder's
                              default (2^31) */
} deid_text_options;
#define DEID_TEXT_OPTIONS_INIT                                                                   \
    {DEID_TEXT_OPTIONS_VERSION, DEID_TEXT_REDACT_ALL, DEID_TEXT_AREA_ALL, 0,                     \
     DEID_TEXT_FILL_SOLID, 1, 0, 30.0, 1, 0, NULL, NULL, 0, 0}

/* Fill `opts` with defaults; DEID_ERR_ARGUMENT for an unknown version. */
DEID_API deid_status deid_text_options_init(deid_text_options *opts, unsigned version);

/* ---- PHI terms to match against text read in the pixels ------------------------------------- */

/* A set of PHI terms. Not shared between threads while it is being added to; once built it may
 * be read (matched) from several threads. */
typedef struct deid_text_phi deid_text_phi;

/* A new, empty set. On success *out owns it (free with deid_text_phi_free). Errors:
 * DEID_ERR_ARGUMENT, DEID_ERR_NOMEM. */
DEID_API deid_status deid_text_phi_new(deid_text_phi **out);

/* Free a set. NULL is a no-op. */
DEID_API void deid_text_phi_free(deid_text_phi *phi);

/* Add one term (UTF-8, copied). DEID_TEXT_PHI_NAME: a person's name, DICOM PN ("DOE^JOHN^Q")
 * or free text; every component of 2 or more characters is matched on its own, so any order,
 * case and separator match. DEID_TEXT_PHI_ID and DEID_TEXT_PHI_OTHER: matched as a whole,
 * ignoring case, spaces and punctuation. DEID_TEXT_PHI_DATE: a DICOM date "YYYYMMDD" (a DT
 * value is cut to its date), matched in the common written forms (20230405, 2023-04-05,
 * 2023/04/05, 05/04/2023, 04/05/2023, 05.04.2023, 05-Apr-2023, Apr 5 2023, 5 April 2023...).
 * Empty values and values shorter than 2 characters are ignored. Errors: DEID_ERR_ARGUMENT
 * (unknown kind, a date that is not a date), DEID_ERR_NOMEM. */
DEID_API deid_status deid_text_phi_add(deid_text_phi *phi, int kind, const char *value);

/* Add the object's own PHI from its header (read it before the header is de-identified):
 * person names (Patient's Name, Other Patient Names, Patient's Birth Name, Mother's Birth
 * Name, Referring/Performing/Reading Physicians, Operators), identifiers (Patient ID, Other
 * Patient IDs, Issuer of Patient ID, Accession Number, Study ID, Requested Procedure ID,
 * Medical Record Locator), dates (Patient's Birth Date, Study/Series/Acquisition/Content
 * Date) and other identifying text (Institution Name and Address, Station Name, Patient's
 * Address and Telephone Numbers). Missing elements are skipped. Errors: DEID_ERR_ARGUMENT,
 * DEID_ERR_NOMEM. */
DEID_API deid_status deid_text_phi_add_dataset(deid_text_phi *phi, const deid_dataset *ds);

/* Number of terms held (after splitting names into components). 0 for NULL. */
DEID_API size_t deid_text_phi_count(const deid_text_phi *phi);

/* Does OCR'd `text` contain a term of `phi`? Returns the deid_text_phi_kind of the first term
 * found, DEID_TEXT_PHI_NONE when none (or either argument is NULL). Matching folds case,
 * ignores separators, treats characters OCR confuses as equal (O/0/D/Q, I/l/1/|, S/5, B/8,
 * Z/2, G/6) and tolerates one edit per four characters of the term (none for terms shorter
 * than 4). */
DEID_API int deid_text_phi_match(const deid_text_phi *phi, const char *text);

/* ---- engine ---------------------------------------------------------------------------------- */

/* A text engine: the options and a loaded Tesseract instance. Loading costs tens of
 * milliseconds: make one per thread and reuse it. An engine is used by one thread at a time;
 * distinct engines run concurrently. Speed: Debian's Tesseract runs OpenMP threads inside each
 * recognition, and their spinning made a 27-frame cine take 111 s instead of 12 s on 2 cores.
 * Start the process with OMP_THREAD_LIMIT=1 (OpenMP reads it when it is loaded, before main):
 * deid-ocr and the Python binding do so themselves; a gateway linking libdeid should set it in
 * its service environment. */
typedef struct deid_text_engine deid_text_engine;

/* Create an engine with `opts` (NULL for defaults; strings are copied). On success *out owns it
 * (free with deid_text_engine_free). Errors: DEID_ERR_UNSUPPORTED (libdeid built without
 * Tesseract), DEID_ERR_IO (the language data cannot be loaded: the message names the folder),
 * DEID_ERR_ARGUMENT, DEID_ERR_NOMEM; *out untouched on failure. */
DEID_API deid_status deid_text_engine_new(const deid_text_options *opts,
                                          deid_text_engine **out);

/* Free an engine. NULL is a no-op. */
DEID_API void deid_text_engine_free(deid_text_engine *engine);

/* ---- results --------------------------------------------------------------------------------- */

/* Where a region was found. */
#define DEID_TEXT_SOURCE_PIXELS 0u /* the Pixel Data (or the raster file) */
/* 1 + n: the overlay plane in group 0x6000 + 2n (n = 0..15) */

/* One text region (a line of text). */
typedef struct deid_text_region {
    size_t frame;          /* frame index, from 0 (an overlay plane's frame for overlays) */
    unsigned source;       /* DEID_TEXT_SOURCE_PIXELS, or 1 + n for overlay group 0x6000+2n */
    size_t x, y, w, h;     /* the box as found (top-left corner and size, pixels), unpadded */
    double confidence;     /* Tesseract's confidence in what it read, 0..100 */
    unsigned passes;       /* DEID_TEXT_PASS_* bits: the passes that found it; 0 for a box
                              redacted because it was redacted in another frame of the same
                              object (burned-in text does not move) */
    int decision;          /* deid_text_decision */
    int phi;               /* deid_text_phi_kind the text matched; DEID_TEXT_PHI_NONE */
    const char *text;      /* what was read (UTF-8, may be ""): PHI, never log it; owned by
                              the result */
    const char *reason;    /* why the decision, static: "all text", "matches PHI",
                              "a date" and "looks like an identifier" (PHI mode also
                              redacts every written date and every run of 6+ digits or
                              6+-character word with 4+ digits, matching or not: OCR misreads
                              digits), "labelled as PHI" (PHI mode: a field label - DOB,
                              Name, ID, MRN, Acc... - with a value after it, however misread),
                              "beside PHI" (PHI mode: on the same row as a PHI match; a
                              PHI match's own box is also widened by one text height on each
                              side, where a label or a misread end sits), "may identify"
                              (PHI mode: times and shorter numbers,
                              left for review), "report only", "outside the border band",
                              "no PHI match", "overlay plane removed",
                              "redacted in another frame" */
    int residual;          /* 1: the residual check still read text here after redaction */
} deid_text_region;

/* Totals of a result. */
typedef struct deid_text_stats {
    size_t frames;        /* frames and overlay planes searched */
    size_t found;         /* regions found by all passes, before merging */
    size_t found_lines;   /* ... by DEID_TEXT_PASS_LINES */
    size_t found_page;    /* ... by DEID_TEXT_PASS_PAGE */
    size_t merged;        /* regions after merging (deid_text_result_count) */
    size_t redacted, review, kept;
    size_t residual;      /* redacted regions still readable after redaction */
    double seconds_prepare; /* colour/window conversion, contrast enhancement */
    double seconds_detect;  /* candidate search (stroke contrast, grouping) */
    double seconds_ocr;     /* Tesseract */
    double seconds_redact;  /* filling and the residual check */
} deid_text_stats;

/* The regions found in one image or object, with their decisions. One thread at a time per
 * result; distinct results may be used concurrently. */
typedef struct deid_text_result deid_text_result;

/* Number of regions (0 for NULL). */
DEID_API size_t deid_text_result_count(const deid_text_result *res);

/* Region `i` (< count), owned by the result; NULL when out of range. */
DEID_API const deid_text_region *deid_text_result_region(const deid_text_result *res,
                                                         size_t i);

/* Copy the totals into *out (zeros for NULL res). */
DEID_API void deid_text_result_stats(const deid_text_result *res, deid_text_stats *out);

/* The result as a JSON report:
 *   {"regions": [{"frame": 0, "source": "pixels" | "overlay 6000", "box": [x, y, w, h],
 *                 "confidence": 87.5, "passes": ["lines", "page"], "decision": "redacted" |
 *                 "review" | "kept", "reason": "...", "phi": "name" | "id" | "date" |
 *                 "other" | null, "residual": false, "text": "..." (only with include_text)}],
 *    "stats": {"frames": .., "found": .., "found_lines": .., "found_page": .., "merged": ..,
 *              "redacted": .., "review": .., "kept": .., "residual": ..}}
 * On success *json is a NUL-terminated string to free with deid_free. Errors:
 * DEID_ERR_ARGUMENT, DEID_ERR_NOMEM. */
DEID_API deid_status deid_text_result_json(const deid_text_result *res, int include_text,
                                           char **json);

/* Free a result. NULL is a no-op. */
DEID_API void deid_text_result_free(deid_text_result *res);

/* ---- the text stage -------------------------------------------------------------------------- */

/* Find text in every frame of `img` (8- or 16-bit grey, or 8-bit RGB: convert PALETTE COLOR and
 * YBR with deid_image_to_rgb first) and decide, per the engine's options, what is redacted;
 * `phi` (may be NULL: nothing matches) is used by DEID_TEXT_REDACT_PHI. Nothing is modified.
 * On success *out owns a new result (free with deid_text_result_free). Errors:
 * DEID_ERR_ARGUMENT, DEID_ERR_UNSUPPORTED (pixel format), DEID_ERR_NOMEM; *out untouched on
 * failure. */
DEID_API deid_status deid_text_detect(deid_text_engine *engine, const deid_image *img,
                                      const deid_text_phi *phi, deid_text_result **out);

/* Overwrite, in `img`, every region of `res` whose decision is DEID_TEXT_REDACTED and whose
 * source is DEID_TEXT_SOURCE_PIXELS (fill and padding per the engine's options; img must be
 * the image res was found in). With residual_check, each redacted box (with a margin) is read
 * again; where text matching `phi` (in any mode) is still readable the box is widened by the
 * margin and filled again; a region still readable after that gets residual = 1 and the call
 * fails with DEID_ERR_GENERIC ("residual text readable after redaction in N regions"); img
 * stays modified. Errors: DEID_ERR_ARGUMENT, DEID_ERR_GENERIC,
 * DEID_ERR_NOMEM. */
DEID_API DEID_NODISCARD deid_status deid_text_redact(deid_text_engine *engine, deid_image *img,
                                                     deid_text_result *res,
                                                     const deid_text_phi *phi);

/* The text stage on one DICOM object in memory, the same for a batch, a binding and a gateway:
 * PHI terms are the header's own (deid_text_phi_add_dataset) plus `extra` (may be NULL);
 * every frame is decoded (PALETTE COLOR and YBR expanded to RGB) and every overlay plane
 * (60xx,3000) rendered; text is found and redacted; when pixels changed, Pixel Data is
 * replaced (lossless inputs uncompressed, lossy JPEG inputs as JPEG baseline at
 * jpeg_quality) with the pixel module made consistent; every overlay plane (groups
 * 6000-601E) is removed; Burned In Annotation (0028,0301) is set to "NO" when every region
 * found was redacted, "YES" otherwise. The header is not de-identified: apply the profile
 * afterwards. On success *out owns a new result. When the residual check fails the call
 * returns DEID_ERR_GENERIC, ds is unchanged and - as for deid_us_process - *out is still set
 * (free it) so that the caller can report the regions. Other errors: DEID_ERR_NO_PIXELS,
 * DEID_ERR_UNSUPPORTED, DEID_ERR_LIMIT, DEID_ERR_ARGUMENT, DEID_ERR_NOMEM, with ds unchanged
 * and *out untouched. */
DEID_API DEID_NODISCARD deid_status deid_text_process(deid_text_engine *engine,
                                                      deid_dataset *ds,
                                                      const deid_text_phi *extra,
                                                      deid_text_result **out);

/* The text stage on a PNG, JPEG, TIFF or BMP file: read `input` (deid_image_read_raster),
 * find and redact text (`phi` may be NULL), and write `output` in the same format
 * (deid_image_write_raster: PNG, TIFF and BMP losslessly, JPEG at jpeg_quality), atomically.
 * `output` NULL writes nothing. Residual failures and *out behave as in deid_text_process
 * (nothing is written then). Errors: DEID_ERR_IO, DEID_ERR_UNSUPPORTED (not a raster image
 * libdeid reads), DEID_ERR_LIMIT, DEID_ERR_ARGUMENT, DEID_ERR_NOMEM, DEID_ERR_GENERIC. */
DEID_API DEID_NODISCARD deid_status deid_text_process_file(deid_text_engine *engine,
                                                           const char *input,
                                                           const char *output,
                                                           const deid_text_phi *phi,
                                                           deid_text_result **out);

#ifdef __cplusplus
}
#endif
#endif
