/* libdeid: the QC render of a deface (include/deid/ct.h): front and side views of the skin
 * surface, ray-cast to the first voxel above the skin threshold, Lambert-shaded with the normal
 * of the depth map and darkened with depth, square pixels, superior at the top. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/core.h"
#include "ct/ct_int.h"
#include "ct/morph.h"
#include "pixel/pixel_int.h"

#define M "ct"
#define SKIN_HU -300.0
#define MAX_SIDE 512.0 /* pixels along a view's longer side at most */
#define GAP 4u

typedef struct view {
    size_t w, h;
    uint8_t *rgb;
} view;

/* Patient-axis mapping of a volume; identity (axial LPS) when the geometry cannot tell. */
static void axes_of(const deid_volume *v, int axis[3], int sign[3])
{
    if (deid__ct_axes(v, axis, sign) != 0)
        for (int p = 0; p < 3; p++) {
            axis[p] = p;
            sign[p] = 1;
        }
}

/* Ray along patient axis `pr` starting at its `from` end (+1: the + end), image columns along
 * patient axis `ph` increasing towards its + end when hdir > 0, rows from superior down. */
static deid_status render_view(const deid_volume *v, deid__above skin, int pr, int from, int ph,
                               int hdir, view *out)
{
    int axis[3], sign[3];
    axes_of(v, axis, sign);
    const deid_volume_geometry *g = &v->geom;
    int ar = axis[pr], ah = axis[ph], as = axis[2];
    size_t nr = g->dims[ar], nh = g->dims[ah], ns = g->dims[as];
    double sr = g->spacing[ar], sh = g->spacing[ah], ss = g->spacing[as];
    double px = sh < ss ? sh : ss;
    double eh = nh * sh, es = ns * ss;
    if (eh / px > MAX_SIDE)
        px = eh / MAX_SIDE;
    if (es / px > MAX_SIDE)
        px = es / MAX_SIDE;
    size_t w = (size_t)(eh / px + 0.5), h = (size_t)(es / px + 0.5);
    w = w ? w : 1;
    h = h ? h : 1;
    double *depth = deid__malloc(w * h * sizeof *depth);
    uint8_t *rgb = deid__malloc(w * h * 3);
    if (!depth || !rgb) {
        free(depth);
        free(rgb);
        return DEID_ERR_NOMEM;
    }
    /* the ray starts at the `from` end: index increasing towards + is sign > 0 */
    int rev_r = (sign[pr] > 0) == (from > 0);
    int rev_h = (sign[ph] > 0) != (hdir > 0);
    int rev_s = sign[2] > 0; /* row 0 = most superior */
    size_t st[3] = {1, g->dims[0], g->dims[0] * g->dims[1]};
    for (size_t y = 0; y < h; y++) {
        size_t s = (size_t)((y + 0.5) * px / ss);
        s = s < ns ? s : ns - 1;
        s = rev_s ? ns - 1 - s : s;
        for (size_t x = 0; x < w; x++) {
            size_t q = (size_t)((x + 0.5) * px / sh);
            q = q < nh ? q : nh - 1;
            q = rev_h ? nh - 1 - q : q;
            double d = -1;
            size_t base = s * st[as] + q * st[ah];
            for (size_t t = 0; t < nr; t++) {
                size_t r = rev_r ? nr - 1 - t : t;
                if (deid__is_above(skin, v->vox[base + r * st[ar]])) {
                    d = (double)t * sr;
                    break;
                }
            }
            depth[y * w + x] = d;
        }
    }
    double dmin = INFINITY, dmax = -INFINITY;
    for (size_t x = 0; x < w * h; x++)
        if (depth[x] >= 0) {
            dmin = depth[x] < dmin ? depth[x] : dmin;
            dmax = depth[x] > dmax ? depth[x] : dmax;
        }
    const double L[3] = {-0.3, -0.4, 0.866}; /* light from the viewer's upper left */
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++) {
            uint8_t *p = rgb + 3 * (y * w + x);
            double d = depth[y * w + x];
            if (d < 0) {
                p[0] = 16;
                p[1] = 16;
                p[2] = 36;
                continue;
            }
            /* central differences over neighbours that hit the surface */
            double gx = 0, gy = 0;
            size_t xl = x > 0 && depth[y * w + x - 1] >= 0 ? x - 1 : x;
            size_t xr = x + 1 < w && depth[y * w + x + 1] >= 0 ? x + 1 : x;
            size_t yu = y > 0 && depth[(y - 1) * w + x] >= 0 ? y - 1 : y;
            size_t yd = y + 1 < h && depth[(y + 1) * w + x] >= 0 ? y + 1 : y;
            if (xr > xl)
                gx = (depth[y * w + xr] - depth[y * w + xl]) / ((double)(xr - xl) * px);
            if (yd > yu)
                gy = (depth[yd * w + x] - depth[yu * w + x]) / ((double)(yd - yu) * px);
            double n[3] = {-gx, -gy, 1.0};
            double len = sqrt(n[0] * n[0] + n[1] * n[1] + 1.0);
            double lambert = (n[0] * L[0] + n[1] * L[1] + n[2] * L[2]) / len;
            lambert = lambert > 0 ? lambert : 0;
            double fade = dmax > dmin ? 1.0 - 0.6 * (d - dmin) / (dmax - dmin) : 1.0;
            double c = 255.0 * (0.12 + 0.88 * lambert * fade);
            c = c > 255 ? 255 : c;
            p[0] = (uint8_t)c;
            p[1] = (uint8_t)(c * 0.92);
            p[2] = (uint8_t)(c * 0.85);
        }
    free(depth);
    out->w = w;
    out->h = h;
    out->rgb = rgb;
    return DEID_OK;
}

static void blit(uint8_t *canvas, size_t cw, const view *v, size_t x0, size_t y0)
{
    for (size_t y = 0; y < v->h; y++)
        memcpy(canvas + 3 * ((y0 + y) * cw + x0), v->rgb + 3 * y * v->w, 3 * v->w);
}

deid_status deid_volume_render_qc(const deid_volume *before, const deid_volume *after,
                                  const char *png_path)
{
    if (!before || !png_path)
        return deid__fail(DEID_ERR_ARGUMENT, M, "deid_volume_render_qc: NULL argument");
    deid__ct_levels lv;
    double skin;
    if (deid__ct_levels_find(before, 0, &lv) == DEID_OK)
        skin = deid__ct_from_hu(before, &lv, SKIN_HU);
    else
        skin = before->hounsfield ? SKIN_HU : 0.0;
    const deid_volume *vols[2] = {before, after};
    size_t rows = after ? 2 : 1;
    view views[4];
    memset(views, 0, sizeof views);
    deid_status st = DEID_OK;
    for (size_t r = 0; r < rows && st == DEID_OK; r++) {
        deid__above a = deid__above_make(vols[r], skin);
        /* front: from the anterior end, patient's right on the image's left; side: from the
         * patient's left, anterior on the image's left */
        st = render_view(vols[r], a, 1, -1, 0, +1, &views[2 * r]);
        if (st == DEID_OK)
            st = render_view(vols[r], a, 0, +1, 1, +1, &views[2 * r + 1]);
    }
    uint8_t *canvas = NULL, *png = NULL;
    size_t cw = 0, ch = 0, png_size = 0;
    if (st == DEID_OK) {
        for (size_t r = 0; r < rows; r++) {
            size_t rw = views[2 * r].w + GAP + views[2 * r + 1].w;
            size_t rh = views[2 * r].h > views[2 * r + 1].h ? views[2 * r].h : views[2 * r + 1].h;
            cw = rw > cw ? rw : cw;
            ch += rh + (r ? GAP : 0);
        }
        canvas = deid__calloc(cw * ch, 3);
        if (!canvas)
            st = DEID_ERR_NOMEM;
    }
    if (st == DEID_OK) {
        size_t y = 0;
        const uint8_t yellow[3] = {255, 220, 0};
        for (size_t r = 0; r < rows; r++) {
            blit(canvas, cw, &views[2 * r], 0, y);
            blit(canvas, cw, &views[2 * r + 1], views[2 * r].w + GAP, y);
            deid__draw_text(canvas, ch, cw, 4, y + 4, 2, yellow, r ? "after" : "before");
            size_t rh =
                views[2 * r].h > views[2 * r + 1].h ? views[2 * r].h : views[2 * r + 1].h;
            y += rh + GAP;
        }
        st = deid__png_encode_rgb(canvas, ch, cw, &png, &png_size);
    }
    if (st == DEID_OK) {
        st = deid__write_file_atomic(png_path, png, png_size, 0644, 0);
        if (st != DEID_OK)
            st = deid__fail(st, M, "%s: cannot write the QC render", png_path);
    }
    free(png);
    free(canvas);
    for (size_t x = 0; x < 4; x++)
        free(views[x].rgb);
    return st;
}
