/* The compiled core of walking isochrones (why and what it measured:
 * gis_service/access/isochrone.py's docstring; the definition: docs/access.md).
 *
 *   search(...)   Dijkstra from a snapped origin over the graph's CSR adjacency, bounded
 *                 by the budget (search.search_from);
 *   reached(...)  points along the reached parts of streets and the access legs, ring
 *                 by ring (isochrone.reached_samples);
 *   trace(...)    the band round those points on a grid: cell marking, exact distance
 *                 transform, marching squares, holes given to their islands;
 *   simplify(...) few vertices within a tolerance, ring by ring
 *                 (isochrone.generalized);
 *   encode(...)   the outline in degrees as GeoJSON coordinate text, rounded to the
 *                 grid's precision, with an exact validity check (service.isochrone).
 *
 * trace(x, y, x0, y0, cell, nx, ny, level) -> (coords, ring_offsets, part_offsets)
 *
 * x, y: float64 buffers of projected sample points. The grid has nx × ny cells of side
 * `cell` from (x0, y0); every cell holding a sample is marked; the exact Euclidean
 * distance transform (Felzenszwalb & Huttenlocher's lower envelope of parabolas, in whole
 * cells, times `cell`) gives every cell centre its distance to the nearest marked cell
 * centre; marching squares traces the line where that distance is `level`, interpolated
 * linearly between cell centres (saddles resolved by the quad's mean value). Rings keep
 * the inside on their left (shells counter-clockwise, holes clockwise, RFC 7946); each
 * hole goes to the smallest shell holding it. Returns bytes: float64 (x, y) pairs, closed
 * rings; int64 ring offsets into the pairs; int64 part offsets into the rings — shapely's
 * ragged-array layout of one MultiPolygon.
 *
 * Plain C with the buffer protocol (no numpy headers): it builds with the compiler alone.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The distance transform and its row pass compiled twice, for x86-64-v3 (AVX2: sixteen
 * 16-bit lanes an instruction) and the baseline (SSE2: eight), the one the processor runs
 * chosen when the module loads (GCC's target_clones, an ifunc), so the build is not tied
 * to the machine it ran on: a demo contour's trace 0.19 → 0.16 ms (2026-12-01; as fast as
 * the whole module built with -march=native). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#define GRID_PASSES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define GRID_PASSES
#endif

#define FAR 0x3fffffff
#define FAR2 0x7fffffff

typedef struct {
    double *xy;
    Py_ssize_t n, cap;
} Points;

static int push(Points *p, double x, double y) {
    if (p->n == p->cap) {
        Py_ssize_t cap = p->cap ? 2 * p->cap : 1024;
        double *xy = realloc(p->xy, (size_t)cap * 2 * sizeof(double));
        if (!xy) return -1;
        p->xy = xy;
        p->cap = cap;
    }
    p->xy[2 * p->n] = x;
    p->xy[2 * p->n + 1] = y;
    p->n++;
    return 0;
}

/* box (min x, min y, max x, max y) widened to hold the points xy[a..b) */
static void widen_box(double *box, const double *xy, Py_ssize_t a, Py_ssize_t b) {
    for (Py_ssize_t i = a; i < b; i++) {
        double x = xy[2 * i], y = xy[2 * i + 1];
        box[0] = x < box[0] ? x : box[0];
        box[1] = y < box[1] ? y : box[1];
        box[2] = x > box[2] ? x : box[2];
        box[3] = y > box[3] ? y : box[3];
    }
}

/* The row pass for a small `cap` (the band a few cells wide, as in every default
 * isochrone: 8–18 cells): a cell's distance² is the least (j - q)² + g(q)² over the
 * columns q within `cap` of it — exact wherever the distance is at most `cap`, which is
 * all the tracing reads (the level plus a diagonal cell); farther cells read FAR2 or a
 * larger true distance², never inside. As 16-bit lanes the compiler vectorizes it: 2·cap
 * + 1 passes of min over the row, cheaper than the envelope's branches and divisions
 * below some 30 cells. `fr`: scratch of nx + 2·cap, `out`: of nx (int16); `in` gets
 * each cell's d² <= level2 as its row is done (a pass over the grid saved). */
#define WINDOW_CAP 30
#define FAR16 0x3fff
GRID_PASSES static void window_rows(int32_t *g, Py_ssize_t nx, Py_ssize_t ny, int32_t cap,
                                    int16_t *restrict fr, int16_t *restrict out,
                                    uint8_t *restrict in, int32_t level2) {
    for (Py_ssize_t j = 0; j < cap; j++) fr[j] = fr[cap + nx + j] = FAR16;
    int16_t *restrict mid = fr + cap;
    for (Py_ssize_t i = 0; i < ny; i++) {
        int32_t *row = g + i * nx;
        Py_ssize_t first = nx, last = -1;
        for (Py_ssize_t j = 0; j < nx; j++) {
            int32_t gq = row[j];
            mid[j] = gq <= cap ? (int16_t)(gq * gq) : FAR16;
        }
        for (Py_ssize_t j = 0; j < nx; j++)
            if (mid[j] != FAR16) {
                first = j;
                break;
            }
        for (Py_ssize_t j = nx - 1; j >= first; j--)
            if (mid[j] != FAR16) {
                last = j;
                break;
            }
        /* only the span within cap of the row's nearest columns */
        Py_ssize_t a0 = first - cap > 0 ? first - cap : 0, a1 = last + cap + 1 < nx ? last + cap + 1 : nx;
        uint8_t *inside = in + i * nx;
        for (Py_ssize_t j = 0; j < a0; j++) row[j] = FAR2;
        for (Py_ssize_t j = a1 > a0 ? a1 : a0; j < nx; j++) row[j] = FAR2;
        memset(inside, 0, (size_t)nx);
        if (last < 0) continue;
        Py_ssize_t w = a1 - a0;
        const int16_t *restrict base = mid + a0;
        memcpy(out, base, (size_t)w * sizeof(int16_t));
        for (int32_t d = 1; d <= cap; d++) {
            const int16_t dd = (int16_t)(d * d), *restrict lo = base - d, *restrict hi = base + d;
            for (Py_ssize_t j = 0; j < w; j++) {
                int16_t a = (int16_t)(lo[j] + dd), b = (int16_t)(hi[j] + dd), o = out[j];
                a = a < b ? a : b;
                out[j] = a < o ? a : o;
            }
        }
        for (Py_ssize_t j = 0; j < w; j++) {
            int32_t d2 = out[j] >= FAR16 ? FAR2 : out[j];
            row[a0 + j] = d2;
            inside[a0 + j] = d2 <= level2;
        }
    }
}

/* The tracer's grids, kept by each thread between calls up to SCRATCH_KEEP bytes each:
 * a fresh 0.3–0.5 MB allocation per grid came from mmap (the app fixes glibc's mmap
 * threshold at 128 KiB: gis_service/memory.py) and its first touch of every page from the
 * kernel (a fifth of a contour's time). Thread-local because trace releases the GIL. The
 * default grids (about 260 × 260 cells) need 1.4 MB in all, kept per thread that traced;
 * larger grids (an asked resolution) are allocated and freed each time, as before. */
#define SCRATCH_KEEP ((size_t)1 << 20)
static _Thread_local struct {
    void *p;
    size_t n;
} kept[4];

static void *scratch(int k, size_t bytes) {
    if (bytes > SCRATCH_KEEP) return malloc(bytes);
    if (kept[k].n < bytes) {
        free(kept[k].p);
        kept[k].p = malloc(bytes);
        kept[k].n = kept[k].p ? bytes : 0;
    }
    return kept[k].p;
}

static void release(int k, void *p) {
    if (p && p != kept[k].p) free(p);
}

/* in place: every cell's squared distance, in cells², to the nearest marked cell (0 in
 * `g`), exact up to `cap` cells (a cell farther reads FAR2): columns first, then the
 * lower envelope of the parabolas (j - q)² + g(q)² along each row. The envelope's
 * breakpoints are kept as fractions zn / zd (zd > 0; zd = 0: -∞) and compared by
 * cross-multiplying: no division, the same envelope (the fractions are small enough that
 * doubles compared them exactly too). `f`, `zn`, `zd`, `v`: row scratch of nx. */
GRID_PASSES static void distance_transform(int32_t *g, Py_ssize_t nx, Py_ssize_t ny, int32_t cap,
                                           int32_t *f, int64_t *zn, int64_t *zd, int32_t *v,
                                           uint8_t *in, int32_t level2) {
    for (Py_ssize_t i = 1; i < ny; i++) {
        int32_t *row = g + i * nx, *prev = row - nx;
        for (Py_ssize_t j = 0; j < nx; j++) {
            int32_t up = prev[j] + 1;
            row[j] = row[j] < up ? row[j] : up;
        }
    }
    for (Py_ssize_t i = ny - 2; i >= 0; i--) {
        int32_t *row = g + i * nx, *next = row + nx;
        for (Py_ssize_t j = 0; j < nx; j++) {
            int32_t down = next[j] + 1;
            row[j] = row[j] < down ? row[j] : down;
        }
    }
    if (cap <= WINDOW_CAP) {
        window_rows(g, nx, ny, cap, (int16_t *)f, (int16_t *)v, in, level2);
        return;
    }
    for (Py_ssize_t i = 0; i < ny; i++) {
        int32_t *row = g + i * nx;
        Py_ssize_t k = -1;
        for (Py_ssize_t q = 0; q < nx; q++) {
            int32_t gq = row[q];
            if (gq > cap) continue; /* too far to matter at the level */
            int64_t fq = (int64_t)gq * gq + (int64_t)q * q;
            f[q] = gq * gq;
            int64_t sn = 0, sd = 0;
            while (k >= 0) {
                int32_t p = v[k];
                /* s = sn / sd, where the parabolas of p and q meet */
                sn = fq - ((int64_t)f[p] + (int64_t)p * p);
                sd = 2 * ((int64_t)q - p);
                if (!zd[k] || sn * zd[k] > zn[k] * sd) break; /* s > z[k] */
                k--;
            }
            if (k < 0) sd = 0; /* -∞ */
            v[++k] = (int32_t)q;
            zn[k] = sn;
            zd[k] = sd;
        }
        if (k < 0) {
            for (Py_ssize_t j = 0; j < nx; j++) row[j] = FAR2;
            continue;
        }
        Py_ssize_t m = 0;
        for (Py_ssize_t j = 0; j < nx; j++) {
            while (m < k && zn[m + 1] < (int64_t)j * zd[m + 1]) m++;
            int32_t d = (int32_t)j - v[m];
            row[j] = d * d + f[v[m]];
        }
    }
    for (Py_ssize_t c = 0; c < nx * ny; c++) in[c] = g[c] <= level2;
}

/* the distance of a cell centre in metres from its squared distance in cells² */
static inline double height(int32_t d2, double cell) {
    return d2 >= FAR2 ? INFINITY : cell * sqrt((double)d2);
}

static double ring_area(const double *xy, Py_ssize_t a, Py_ssize_t b) {
    double s = 0;
    for (Py_ssize_t i = a; i < b - 1; i++)
        s += xy[2 * i] * xy[2 * i + 3] - xy[2 * i + 2] * xy[2 * i + 1];
    return s / 2;
}

static int inside_ring(const double *xy, Py_ssize_t a, Py_ssize_t b, double px, double py) {
    int in = 0;
    for (Py_ssize_t i = a, j = b - 2; i < b - 1; j = i++) {
        double xi = xy[2 * i], yi = xy[2 * i + 1], xj = xy[2 * j], yj = xy[2 * j + 1];
        if ((yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi) in = !in;
    }
    return in;
}

/* Marching squares' pieces per quad: corners counter-clockwise (i,j) (i,j+1) (i+1,j+1)
 * (i+1,j), `code` their inside bits (corner k: bit k), edge k joining corner k and k+1; a
 * piece of outline enters through every edge where inside turns outside (counter-
 * clockwise) and leaves through the next edge where outside turns inside, or — a saddle
 * whose mean is outside — through the edge just before its corner: the inside stays on
 * the left. QUAD[code][mean inside] lists them by entering edge; filled once (quad_table)
 * from that rule, so the tracer looks them up instead of walking the corners each quad. */
typedef struct {
    int8_t n, enter[2], leave[2];
} QuadPieces;
static QuadPieces QUAD[16][2];

static void quad_table(void) {
    for (int code = 0; code < 16; code++)
        for (int mean_in = 0; mean_in < 2; mean_in++) {
            int c4[4] = {code & 1, code >> 1 & 1, code >> 2 & 1, code >> 3 & 1};
            int saddle = code == 5 || code == 10;
            QuadPieces *qp = &QUAD[code][mean_in];
            qp->n = 0;
            for (int k = 0; k < 4; k++) {
                if (!(c4[k] && !c4[(k + 1) & 3])) continue;
                int m;
                if (saddle && !mean_in)
                    m = (k + 3) & 3;
                else
                    for (m = (k + 1) & 3; !(!c4[m] && c4[(m + 1) & 3]); m = (m + 1) & 3) {
                    }
                qp->enter[qp->n] = (int8_t)k;
                qp->leave[qp->n] = (int8_t)m;
                qp->n++;
            }
        }
}

static PyObject *trace(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer bx, by;
    double x0, y0, cell, level;
    Py_ssize_t nx, ny;
    if (!PyArg_ParseTuple(args, "y*y*dddnnd", &bx, &by, &x0, &y0, &cell, &nx, &ny, &level))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t count = bx.len / (Py_ssize_t)sizeof(double);
    const double *px = bx.buf, *py = by.buf;
    Py_ssize_t cells = nx * ny;
    int32_t *g = NULL, *next = NULL, *starts = NULL, *f = NULL, *v = NULL;
    uint8_t *in = NULL;
    int64_t *zn = NULL, *zd = NULL;
    int64_t *ring_end = NULL, *order = NULL, *owner = NULL;
    double *area = NULL, *box = NULL;
    Points pts = {0};
    Py_ssize_t nstart = 0, nrings = 0;
    if (by.len != bx.len || nx < 2 || ny < 2 || cell <= 0 || nx * ny >= 0x3fffffff) {
        PyErr_SetString(PyExc_ValueError, "trace: x and y differ in length or the grid is empty");
        goto done;
    }
    g = scratch(0, (size_t)cells * sizeof(int32_t));
    in = scratch(1, (size_t)cells);
    v = malloc((size_t)(nx + 2 * WINDOW_CAP + 2) * sizeof(int32_t));
    zn = malloc((size_t)(nx + 1) * sizeof(int64_t));
    zd = malloc((size_t)(nx + 1) * sizeof(int64_t));
    f = malloc((size_t)(nx + 2 * WINDOW_CAP + 2) * sizeof(int32_t));
    /* crossing edges: horizontal (i, j)–(i, j+1) at i*nx + j, vertical (i, j)–(i+1, j)
     * at cells + i*nx + j; next[e] is the edge where the ring that enters the quad
     * through edge e leaves it (-1 once followed) */
    next = scratch(2, (size_t)2 * cells * sizeof(int32_t));
    starts = scratch(3, (size_t)2 * cells * sizeof(int32_t));
    if (!g || !in || !v || !zn || !zd || !f || !next || !starts) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t c = 0; c < cells; c++) g[c] = FAR;
    for (Py_ssize_t s = 0; s < count; s++) {
        /* truncation toward zero, as numpy's astype(int64) */
        Py_ssize_t j = (Py_ssize_t)((px[s] - x0) / cell), i = (Py_ssize_t)((py[s] - y0) / cell);
        if (i >= 0 && i < ny && j >= 0 && j < nx) g[i * nx + j] = 0;
    }
    /* a cell next to one within the level lies within level + 1 cell: farther distances
     * are never interpolated, only known to be outside */
    double reach = level / cell;
    int32_t cap = (int32_t)(reach + 2.0);
    int32_t level2 = (int32_t)floor(reach * reach); /* squared distances are whole */
    Py_BEGIN_ALLOW_THREADS;
    distance_transform(g, nx, ny, cap, f, zn, zd, v, in, level2);
    Py_END_ALLOW_THREADS;

    /* marching squares, each quad's pieces from QUAD (the rule is written there) */
    for (Py_ssize_t i = 0; i + 1 < ny; i++) {
        const uint8_t *r0 = in + i * nx, *r1 = r0 + nx;
        for (Py_ssize_t j = 0; j + 1 < nx; j++) {
            if (j + 8 <= nx) { /* eight columns alike in both rows: seven quads to skip */
                uint64_t w0, w1;
                memcpy(&w0, r0 + j, 8);
                memcpy(&w1, r1 + j, 8);
                if (w0 == w1 && (w0 == 0 || w0 == 0x0101010101010101ULL)) {
                    j += 6;
                    continue;
                }
            }
            int code = r0[j] | r0[j + 1] << 1 | r1[j + 1] << 2 | r1[j] << 3;
            if (code == 0 || code == 15) continue;
            int mean_in = 0;
            if (code == 5 || code == 10) { /* a saddle */
                const int32_t *d0 = g + i * nx + j, *d1 = d0 + nx;
                mean_in = (height(d0[0], cell) + height(d0[1], cell) + height(d1[0], cell) +
                           height(d1[1], cell)) / 4 <= level;
            }
            const int32_t base = (int32_t)(i * nx + j);
            const int32_t edge[4] = {base, (int32_t)cells + base + 1, base + (int32_t)nx,
                                     (int32_t)cells + base};
            const QuadPieces *qp = &QUAD[code][mean_in];
            for (int p = 0; p < qp->n; p++) {
                next[edge[qp->enter[p]]] = edge[qp->leave[p]];
                starts[nstart++] = edge[qp->enter[p]];
            }
        }
    }
    /* follow the pieces into rings */
    ring_end = malloc((size_t)(nstart + 1) * sizeof(int64_t));
    if (!ring_end) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t s = 0; s < nstart; s++) {
        int32_t e0 = starts[s];
        if (next[e0] < 0) continue;
        Py_ssize_t first = pts.n;
        int32_t e = e0;
        do {
            int horizontal = e < cells;
            int32_t sl = horizontal ? e : e - (int32_t)cells;
            Py_ssize_t i = sl / nx, j = sl % nx;
            double za = height(g[sl], cell), ax = x0 + (j + 0.5) * cell,
                   ay = y0 + (i + 0.5) * cell;
            double x, y;
            if (horizontal) { /* (i, j) → (i, j+1) */
                x = ax + (level - za) / (height(g[sl + 1], cell) - za) * cell;
                y = ay;
            } else { /* (i, j) → (i+1, j) */
                x = ax;
                y = ay + (level - za) / (height(g[sl + nx], cell) - za) * cell;
            }
            if (push(&pts, x, y)) {
                PyErr_NoMemory();
                goto done;
            }
            int32_t after = next[e];
            next[e] = -1;
            e = after;
        } while (e != e0 && e >= 0);
        if (push(&pts, pts.xy[2 * first], pts.xy[2 * first + 1])) {
            PyErr_NoMemory();
            goto done;
        }
        ring_end[nrings++] = pts.n;
    }
    /* shells (counter-clockwise) and the holes each holds: the smallest shell holding the
     * hole's first vertex. Every hole lies in some shell (the grid's rim is outside), so
     * of the shells that could hold it — larger, their box round the vertex — the largest
     * needs no test once the smaller ones failed, nor does a lone one: the point-in-ring
     * tests were an eighth of a contour's tracing (2026-12-01). */
    area = malloc((size_t)(nrings + 1) * sizeof(double));
    box = malloc((size_t)(nrings + 1) * 4 * sizeof(double));
    owner = malloc((size_t)(nrings + 1) * sizeof(int64_t));
    order = malloc((size_t)(nrings + 1) * sizeof(int64_t));
    if (!area || !box || !owner || !order) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t r = 0; r < nrings; r++) {
        Py_ssize_t a = r ? ring_end[r - 1] : 0;
        area[r] = ring_area(pts.xy, a, ring_end[r]);
        owner[r] = -1;
        double *bx = box + 4 * r;
        bx[0] = bx[1] = INFINITY;
        bx[2] = bx[3] = -INFINITY;
        widen_box(bx, pts.xy, a, ring_end[r]);
    }
    for (Py_ssize_t h = 0; h < nrings; h++) {
        if (area[h] >= 0) continue;
        Py_ssize_t ha = h ? ring_end[h - 1] : 0, ncand = 0;
        double hx = pts.xy[2 * ha], hy = pts.xy[2 * ha + 1];
        for (Py_ssize_t r = 0; r < nrings; r++) { /* candidates, by area (insertion) */
            const double *bx = box + 4 * r;
            if (area[r] <= 0 || area[r] < -area[h] || hx < bx[0] || hx > bx[2] || hy < bx[1] ||
                hy > bx[3])
                continue;
            Py_ssize_t k = ncand++;
            while (k > 0 && area[order[k - 1]] > area[r]) {
                order[k] = order[k - 1];
                k--;
            }
            order[k] = r;
        }
        for (Py_ssize_t k = 0; k < ncand; k++) {
            Py_ssize_t r = order[k], a = r ? ring_end[r - 1] : 0;
            if (k == ncand - 1 || inside_ring(pts.xy, a, ring_end[r], hx, hy)) {
                owner[h] = r;
                break;
            }
        }
    }
    /* output: each shell, then its holes */
    Py_ssize_t nshell = 0, nout = 0, ncoord = 0;
    for (Py_ssize_t r = 0; r < nrings; r++) {
        if (area[r] <= 0) continue;
        nshell++;
        order[nout++] = r;
        for (Py_ssize_t h = 0; h < nrings; h++)
            if (owner[h] == r) order[nout++] = h;
    }
    for (Py_ssize_t o = 0; o < nout; o++) {
        Py_ssize_t r = order[o];
        ncoord += ring_end[r] - (r ? ring_end[r - 1] : 0);
    }
    PyObject *coords = PyBytes_FromStringAndSize(NULL, ncoord * 2 * (Py_ssize_t)sizeof(double));
    PyObject *roff = PyBytes_FromStringAndSize(NULL, (nout + 1) * (Py_ssize_t)sizeof(int64_t));
    PyObject *poff = PyBytes_FromStringAndSize(NULL, (nshell + 1) * (Py_ssize_t)sizeof(int64_t));
    if (!coords || !roff || !poff) {
        Py_XDECREF(coords);
        Py_XDECREF(roff);
        Py_XDECREF(poff);
        goto done;
    }
    double *cout = (double *)PyBytes_AS_STRING(coords);
    int64_t *ro = (int64_t *)PyBytes_AS_STRING(roff), *po = (int64_t *)PyBytes_AS_STRING(poff);
    Py_ssize_t at = 0, np_ = 0;
    ro[0] = 0;
    for (Py_ssize_t o = 0; o < nout; o++) {
        Py_ssize_t r = order[o], a = r ? ring_end[r - 1] : 0, b = ring_end[r];
        if (area[r] > 0) po[np_++] = o;
        memcpy(cout + 2 * at, pts.xy + 2 * a, (size_t)(b - a) * 2 * sizeof(double));
        at += b - a;
        ro[o + 1] = at;
    }
    po[np_] = nout;
    result = Py_BuildValue("NNN", coords, roff, poff);
done:
    PyBuffer_Release(&bx);
    PyBuffer_Release(&by);
    release(0, g);
    release(1, in);
    free(v);
    free(zn);
    free(zd);
    free(f);
    release(2, next);
    release(3, starts);
    free(ring_end);
    free(area);
    free(box);
    free(owner);
    free(order);
    free(pts.xy);
    return result;
}

/* Stretches f0..f1 (fractions of the projected length) of streets, in three arrays. */
typedef struct {
    int64_t *e;
    double *a, *b;
    Py_ssize_t n, cap;
} Pieces;

static int piece(Pieces *p, int64_t e, double a, double b) {
    if (p->n == p->cap) {
        Py_ssize_t cap = p->cap ? 2 * p->cap : 1024;
        int64_t *ne = realloc(p->e, (size_t)cap * sizeof(int64_t));
        if (ne) p->e = ne;
        double *na = ne ? realloc(p->a, (size_t)cap * sizeof(double)) : NULL;
        if (na) p->a = na;
        double *nb = na ? realloc(p->b, (size_t)cap * sizeof(double)) : NULL;
        if (!nb) return -1;
        p->b = nb;
        p->cap = cap;
    }
    p->e[p->n] = e;
    p->a[p->n] = a;
    p->b[p->n] = b;
    p->n++;
    return 0;
}

/* In place: the stretches sorted by (edge, f0) — by insertion, as they come sorted by edge
 * but for a few, so it costs a pass — then each run of overlapping stretches of one street
 * as one (its first f0, its furthest f1); returns how many are left. */
static Py_ssize_t merge_pieces(int64_t *e, double *a, double *b, Py_ssize_t n) {
    for (Py_ssize_t i = 1; i < n; i++) {
        int64_t ke = e[i];
        double ka = a[i], kb = b[i];
        Py_ssize_t j = i;
        while (j > 0 && (e[j - 1] > ke || (e[j - 1] == ke && a[j - 1] > ka))) {
            e[j] = e[j - 1];
            a[j] = a[j - 1];
            b[j] = b[j - 1];
            j--;
        }
        e[j] = ke;
        a[j] = ka;
        b[j] = kb;
    }
    Py_ssize_t m = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (m && e[m - 1] == e[i] && a[i] <= b[m - 1]) {
            if (b[i] > b[m - 1]) b[m - 1] = b[i];
            continue;
        }
        e[m] = e[i];
        a[m] = a[i];
        b[m] = b[i];
        m++;
    }
    return m;
}

/* Points every `step` metres (at most; evenly, both ends included) along each stretch,
 * walking its street's vertices in order; -1 with a ValueError for an edge outside the
 * graph, or without memory. */
static int sample_into(Points *out, const Pieces *p, double step, const int64_t *offset,
                       Py_ssize_t edges, const double *along, const double *xy) {
    for (Py_ssize_t i = 0; i < p->n; i++) {
        int64_t k = p->e[i];
        if (k < 0 || k >= edges || offset[k + 1] - offset[k] < 2) {
            PyErr_SetString(PyExc_ValueError, "reached: an edge outside the graph");
            return -1;
        }
        int64_t idx = offset[k], last = offset[k + 1] - 2;
        double len = along[offset[k + 1] - 1], s0 = p->a[i] * len, span = p->b[i] * len - s0;
        double c = ceil(span / step);
        Py_ssize_t count = (c > 1 ? (Py_ssize_t)c : 1) + 1;
        for (Py_ssize_t j = 0; j < count; j++) {
            double s = s0 + span * ((double)j / (double)(count - 1));
            while (idx < last && along[idx + 1] < s) idx++;
            double a0 = along[idx], seg = along[idx + 1] - a0;
            double t = seg > 0 ? (s - a0) / seg : 0.0;
            t = t < 0 ? 0 : (t > 1 ? 1 : t);
            const double *q = xy + 2 * idx;
            if (push(out, q[0] + (q[2] - q[0]) * t, q[1] + (q[3] - q[1]) * t)) {
                PyErr_NoMemory();
                return -1;
            }
        }
    }
    return 0;
}

static inline double clip01(double v) { return v < 0 ? 0.0 : (v > 1 ? 1.0 : v); }

/* reached(arc_edge, from_dist, arc_len, forward, o_edge, o_t, o_leg, o_len, o_two,
 *         qx, qy, sx, sy, budgets, steps, offset, along, coords) -> (x, y, ends)
 * isochrone.reached_samples (the rule is written there): per budget (ascending) the
 * stretches reached after the previous budget and within this one — of the reached arcs
 * (sorted by street: int64 edge, float64 start distance and length, bool forward), and of
 * the origins' own streets both ways from where they stand (o_*: edge, fraction, leg,
 * length, two-way) — merged street by street, sampled every steps[k] metres, then the
 * straight legs from the query points (qx, qy) to where they meet the network (sx, sy)
 * that this budget covers first. Returns float64 bytes x, y, int64 bytes ends: the
 * number of leading samples reached within each budget, and float64 bytes boxes: per
 * budget the (min x, min y, max x, max y) of those samples. */
static PyObject *reached(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer b[18];
    memset(b, 0, sizeof b);
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*y*y*y*y*y*y*y*y*y*y*", &b[0], &b[1], &b[2],
                          &b[3], &b[4], &b[5], &b[6], &b[7], &b[8], &b[9], &b[10], &b[11],
                          &b[12], &b[13], &b[14], &b[15], &b[16], &b[17]))
        return NULL;
    PyObject *result = NULL, *xs = NULL, *ys = NULL, *es = NULL, *bs = NULL;
    Points out = {0};
    Pieces p = {0};
    const int64_t *arc_edge = b[0].buf, *o_edge = b[4].buf, *offset = b[15].buf;
    const double *from = b[1].buf, *arc_len = b[2].buf, *o_t = b[5].buf, *o_leg = b[6].buf;
    const double *o_len = b[7].buf, *qx = b[9].buf, *qy = b[10].buf, *sx = b[11].buf;
    const double *sy = b[12].buf, *budgets = b[13].buf, *steps = b[14].buf;
    const double *along = b[16].buf, *xy = b[17].buf;
    const uint8_t *fwd = b[3].buf, *o_two = b[8].buf;
    Py_ssize_t n = b[0].len / 8, m = b[4].len / 8, nk = b[13].len / 8;
    Py_ssize_t edges = b[15].len / 8 - 1;
    if (b[1].len != n * 8 || b[2].len != n * 8 || b[3].len != n || b[5].len != m * 8 ||
        b[6].len != m * 8 || b[7].len != m * 8 || b[8].len != m || b[9].len != m * 8 ||
        b[10].len != m * 8 || b[11].len != m * 8 || b[12].len != m * 8 || b[14].len != nk * 8) {
        PyErr_SetString(PyExc_ValueError, "reached: the arrays differ in length");
        goto done;
    }
    es = PyBytes_FromStringAndSize(NULL, nk * 8);
    bs = PyBytes_FromStringAndSize(NULL, nk * 4 * 8);
    if (!es || !bs) goto done;
    int64_t *ends = (int64_t *)PyBytes_AS_STRING(es);
    double *boxes = (double *)PyBytes_AS_STRING(bs);
    double box[4] = {INFINITY, INFINITY, -INFINITY, -INFINITY};
    double lo = -INFINITY;
    for (Py_ssize_t k = 0; k < nk; k++) {
        double hi = budgets[k], step = steps[k];
        if (!(step > 0)) {
            PyErr_SetString(PyExc_ValueError, "reached: a step <= 0");
            goto done;
        }
        p.n = 0;
        for (Py_ssize_t i = 0; i < n; i++) {  /* the arcs: what this ring adds of each */
            double a = clip01((lo - from[i]) / arc_len[i]), c = clip01((hi - from[i]) / arc_len[i]);
            if (!(from[i] <= hi && (c > a || from[i] > lo))) continue;
            if (fwd[i] ? piece(&p, arc_edge[i], a, c) : piece(&p, arc_edge[i], 1.0 - c, 1.0 - a))
                goto nomem;
        }
        for (int back = 0; back < 2; back++) {  /* the origins' streets: ahead, then back */
            for (Py_ssize_t j = 0; j < m; j++) {
                double oa = clip01((lo - o_leg[j]) / o_len[j]);
                double ob = clip01((hi - o_leg[j]) / o_len[j]);
                int first = o_leg[j] > lo;
                if (!(o_leg[j] <= hi && (ob > oa || first))) continue;
                if (!back) {
                    double fa = fmin(1.0, o_t[j] + oa), fb = fmin(1.0, o_t[j] + ob);
                    if ((fb > fa || first) && piece(&p, o_edge[j], fa, fb)) goto nomem;
                } else if (o_two[j]) {
                    double ba = fmax(0.0, o_t[j] - ob), bb = fmax(0.0, o_t[j] - oa);
                    if ((bb > ba || first) && piece(&p, o_edge[j], ba, bb)) goto nomem;
                }
            }
        }
        if (p.n > 1) p.n = merge_pieces(p.e, p.a, p.b, p.n);
        if (sample_into(&out, &p, step, offset, edges, along, xy)) goto done;
        for (Py_ssize_t j = 0; j < m; j++) {  /* the legs this budget covers first */
            if (!(o_leg[j] <= hi) || o_leg[j] <= lo) continue;
            double c = ceil(o_leg[j] / step) + 1;
            Py_ssize_t count = c > 2 ? (Py_ssize_t)c : 2;
            for (Py_ssize_t i = 0; i < count; i++) {
                double t = (double)i / (double)(count - 1);
                if (push(&out, qx[j] + (sx[j] - qx[j]) * t, qy[j] + (sy[j] - qy[j]) * t))
                    goto nomem;
            }
        }
        widen_box(box, out.xy, k ? ends[k - 1] : 0, out.n);
        ends[k] = out.n; /* rings 0..k: their samples and the box of them */
        memcpy(boxes + 4 * k, box, sizeof box);
        lo = hi;
    }
    xs = PyBytes_FromStringAndSize(NULL, out.n * 8);
    ys = PyBytes_FromStringAndSize(NULL, out.n * 8);
    if (!xs || !ys) goto done;
    double *ox = (double *)PyBytes_AS_STRING(xs), *oy = (double *)PyBytes_AS_STRING(ys);
    for (Py_ssize_t i = 0; i < out.n; i++) {
        ox[i] = out.xy[2 * i];
        oy[i] = out.xy[2 * i + 1];
    }
    result = Py_BuildValue("OOOO", xs, ys, es, bs);
    goto done;
nomem:
    PyErr_NoMemory();
done:
    Py_XDECREF(xs);
    Py_XDECREF(ys);
    Py_XDECREF(es);
    Py_XDECREF(bs);
    free(out.xy);
    free(p.e);
    free(p.a);
    free(p.b);
    for (int i = 0; i < 18; i++) PyBuffer_Release(&b[i]);
    return result;
}

/* merge(edge, f0, f1) -> (edge, f0, f1): merge_pieces on copies (what reached does to each
 * ring's stretches, open to the tests). int64 edge, float64 fractions in; the same as
 * bytes out. */
static PyObject *merge(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer be, b0, b1;
    if (!PyArg_ParseTuple(args, "y*y*y*", &be, &b0, &b1)) return NULL;
    PyObject *result = NULL, *oe = NULL, *o0 = NULL, *o1 = NULL;
    Py_ssize_t n = be.len / 8;
    if (b0.len != be.len || b1.len != be.len) {
        PyErr_SetString(PyExc_ValueError, "merge: edge, f0 and f1 differ in length");
        goto done;
    }
    oe = PyBytes_FromStringAndSize(NULL, n * 8);
    o0 = PyBytes_FromStringAndSize(NULL, n * 8);
    o1 = PyBytes_FromStringAndSize(NULL, n * 8);
    if (!oe || !o0 || !o1) goto done;
    int64_t *e = (int64_t *)PyBytes_AS_STRING(oe);
    double *a = (double *)PyBytes_AS_STRING(o0), *b = (double *)PyBytes_AS_STRING(o1);
    memcpy(e, be.buf, (size_t)n * 8);
    memcpy(a, b0.buf, (size_t)n * 8);
    memcpy(b, b1.buf, (size_t)n * 8);
    Py_ssize_t m = merge_pieces(e, a, b, n);
    if (_PyBytes_Resize(&oe, m * 8) || _PyBytes_Resize(&o0, m * 8) || _PyBytes_Resize(&o1, m * 8))
        goto done;
    result = Py_BuildValue("OOO", oe, o0, o1);
done:
    Py_XDECREF(oe);
    Py_XDECREF(o0);
    Py_XDECREF(o1);
    PyBuffer_Release(&be);
    PyBuffer_Release(&b0);
    PyBuffer_Release(&b1);
    return result;
}

static double segment_distance2(const double *p, const double *a, const double *b) {
    double dx = b[0] - a[0], dy = b[1] - a[1], l2 = dx * dx + dy * dy;
    double t = l2 > 0 ? ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / l2 : 0.0;
    t = t < 0 ? 0 : (t > 1 ? 1 : t);
    double ex = a[0] + t * dx - p[0], ey = a[1] + t * dy - p[1];
    return ex * ex + ey * ey;
}

/* Few vertices within a tolerance: from a ring's first traced vertex a, the shortcut to the
 * farthest vertex k that still passes within the tolerance of every vertex it skips, then
 * from k on, to the ring's last vertex b (the same point as a). Douglas–Peucker gives the
 * same guarantee (no vertex moves farther than the tolerance) with more vertices: on a
 * demo answer at one cell 48,543 → 41,152 vertices over 100 origins (−15 %; the fewest
 * any chain of the trace's own vertices can have, Imai & Iri's min-# found by a shortest
 * path over every shortcut: 40,560, at 25 times the cost), in two thirds of the time
 * (0.15 → 0.10 ms an answer), 2026-12-01, benchmarks/RESULTS.md. Greedy farthest reach
 * is this product's own code: GEOS offers Douglas–Peucker and Visvalingam–Whyatt only.
 *
 * The sweep from i tests each k in O(1) (the cone intersection of Zhao & Saalfeld, 1997):
 * the directions from P[i] whose ray passes within the tolerance of every vertex so far
 * form one arc (a vertex farther than the tolerance allows a cone of half-angle
 * asin(tol / distance)); the ray to P[k] holds when its direction lies in the arc, and
 * then the segment too unless a skipped vertex lies farther from P[i] than P[k] (only such
 * a vertex can lie beyond P[k]): that case is checked vertex by vertex. The sweep stops
 * when the arc is empty. Arcs are kept as their end vectors and compared by cross
 * products: no angles, no trigonometry. */
typedef struct {
    double rx, ry, lx, ly; /* the arc runs counter-clockwise from r to l (< π) */
    int all;               /* no vertex farther than the tolerance yet: every direction */
} Arc;

static inline double cross(double ax, double ay, double bx, double by) {
    return ax * by - ay * bx;
}

static inline int in_arc(double rx, double ry, double lx, double ly, double vx, double vy) {
    return cross(rx, ry, vx, vy) >= 0 && cross(vx, vy, lx, ly) >= 0;
}

/* the arc narrowed to the rays that pass within sqrt(tol2) of d (a vector from the apex);
 * 0 when nothing is left */
static inline int narrow(Arc *w, double dx, double dy, double tol2) {
    double l2 = dx * dx + dy * dy;
    if (l2 <= tol2) return 1;
    double s = sqrt(tol2 / l2), c = sqrt(1 - tol2 / l2);
    double rx = dx * c + dy * s, ry = dy * c - dx * s; /* d turned clockwise */
    double lx = dx * c - dy * s, ly = dy * c + dx * s; /* and counter-clockwise */
    if (w->all) {
        *w = (Arc){rx, ry, lx, ly, 0};
        return 1;
    }
    Arc n = *w;
    if (in_arc(w->rx, w->ry, w->lx, w->ly, rx, ry)) n.rx = rx, n.ry = ry;
    else if (!in_arc(rx, ry, lx, ly, w->rx, w->ry)) return 0;
    if (in_arc(w->rx, w->ry, w->lx, w->ly, lx, ly)) n.lx = lx, n.ly = ly;
    else if (!in_arc(rx, ry, lx, ly, w->lx, w->ly)) return 0;
    *w = n;
    return 1;
}

/* whether the ray from the apex through d (d ≠ 0) lies in the arc */
static inline int holds(const Arc *w, double dx, double dy) {
    if (dx == 0 && dy == 0) return w->all;
    return w->all || in_arc(w->rx, w->ry, w->lx, w->ly, dx, dy);
}

/* whether every vertex strictly between i and k lies within sqrt(tol2) of segment i–k */
static int shortcut_holds(const double *xy, int64_t i, int64_t k, double tol2) {
    for (int64_t m = i + 1; m < k; m++)
        if (segment_distance2(xy + 2 * m, xy + 2 * i, xy + 2 * k) > tol2) return 0;
    return 1;
}

static void farthest_reach(const double *xy, int64_t a, int64_t b, double tol2, uint8_t *keep) {
    keep[a] = keep[b] = 1;
    for (int64_t i = a; i < b;) {
        Arc w = {0, 0, 0, 0, 1};
        int64_t best = i + 1;
        double far2 = 0; /* the farthest skipped vertex from P[i], squared */
        for (int64_t k = i + 1; k <= b; k++) {
            double dx = xy[2 * k] - xy[2 * i], dy = xy[2 * k + 1] - xy[2 * i + 1];
            double d2 = dx * dx + dy * dy;
            /* the ray holds; the segment too when no skipped vertex lies farther from
             * P[i] than P[k] (none can then lie beyond P[k]), else checked vertex by vertex */
            if (holds(&w, dx, dy) && (d2 >= far2 || shortcut_holds(xy, i, k, tol2))) best = k;
            if (!narrow(&w, dx, dy, tol2)) break;
            if (d2 > far2) far2 = d2;
        }
        keep[best] = 1;
        i = best;
    }
}

/* simplify(coords, ring_offsets, part_offsets, tolerance, short, min_area)
 *   -> (coords, ring_offsets, part_offsets, collapsed, area):
 * each closed ring cut to few of its own vertices, its first kept, every vertex dropped
 * within `tolerance` of the shortcut that skips it (`farthest_reach`: Douglas–Peucker's guarantee
 * — no vertex moves farther than the tolerance — with fewer vertices); a ring
 * enclosing less than `min_area` is dropped, and a part whose shell is dropped goes with
 * its holes (smaller still); a ring that would fall below four vertices becomes a
 * triangle of its own vertices within the tolerance or, all on one line, keeps its own,
 * and `collapsed` counts those of more than `short` vertices. `area`: what the simplified
 * outline encloses, its shells less their holes. float64 (p, 2) coords, int64 offsets in
 * (shapely's ragged layout of one MultiPolygon); the same as bytes out. */
static PyObject *simplify(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer bc, br, bp;
    double tolerance, min_area;
    Py_ssize_t shortest, collapsed = 0;
    if (!PyArg_ParseTuple(args, "y*y*y*dnd", &bc, &br, &bp, &tolerance, &shortest, &min_area))
        return NULL;
    PyObject *result = NULL, *co = NULL, *ro = NULL, *po = NULL;
    const double *xy = bc.buf;
    const int64_t *off = br.buf, *parts = bp.buf;
    Py_ssize_t nring = br.len / 8 - 1, n = bc.len / 16, npart = bp.len / 8 - 1;
    uint8_t *keep = NULL;
    if (nring < 0 || (nring > 0 && (off[0] != 0 || off[nring] != n)) || npart < 0 ||
        (npart > 0 && (parts[0] != 0 || parts[npart] != nring)) || (npart <= 0 && nring > 0)) {
        PyErr_SetString(PyExc_ValueError,
                        "simplify: ring or part offsets do not fit the coordinates");
        goto done;
    }
    for (Py_ssize_t q = 0; q < npart; q++)
        if (parts[q + 1] <= parts[q]) {
            PyErr_SetString(PyExc_ValueError, "simplify: a part without a ring");
            goto done;
        }
    keep = calloc((size_t)n + 1, 1);
    if (!keep) {
        PyErr_NoMemory();
        goto done;
    }
    double tol2 = tolerance * tolerance;
    Py_ssize_t total = 0;
    for (Py_ssize_t r = 0; r < nring; r++) {
        int64_t a = off[r], b = off[r + 1] - 1, kept = 0;
        if (min_area > 0 && fabs(ring_area(xy, a, b + 1)) < min_area) continue;
        if (b - a < 3) {
            for (int64_t i = a; i <= b; i++) keep[i] = 1;
            total += b - a + 1;
            continue;
        }
        farthest_reach(xy, a, b, tol2, keep);
        for (int64_t i = a; i <= b; i++) kept += keep[i];
        if (kept < 4 && b - a >= 4) {
            /* a ring that simplifying flattens lies within the tolerance of its first
             * vertex, or of the segment to its farthest: it is kept as the triangle of
             * those two and the vertex farthest from that segment (every vertex of the
             * ring stays within the tolerance of it), not as its whole trace (the small
             * holes of a demo answer: 11.9 → 11.1 KiB, 2026-12-01) */
            int64_t f1 = -1, f2 = -1;
            double w1 = 0, w2 = 0;
            for (int64_t i = a + 1; i < b; i++) {
                double dx = xy[2 * i] - xy[2 * a], dy = xy[2 * i + 1] - xy[2 * a + 1];
                if (dx * dx + dy * dy > w1) {
                    w1 = dx * dx + dy * dy;
                    f1 = i;
                }
            }
            for (int64_t i = a + 1; f1 > 0 && i < b; i++) {
                double d = segment_distance2(xy + 2 * i, xy + 2 * a, xy + 2 * f1);
                if (i != f1 && d > w2) {
                    w2 = d;
                    f2 = i;
                }
            }
            if (f2 > 0) { /* not all on one line */
                for (int64_t i = a; i <= b; i++) keep[i] = 0;
                keep[a] = keep[b] = keep[f1] = keep[f2] = 1;
                kept = 4;
            }
        }
        if (kept < 4) {
            collapsed += b - a + 1 > shortest;
            for (int64_t i = a; i <= b; i++) keep[i] = 1;
            kept = b - a + 1;
        }
        total += kept;
    }
    co = PyBytes_FromStringAndSize(NULL, total * 16);
    ro = PyBytes_FromStringAndSize(NULL, (nring + 1) * 8);
    po = PyBytes_FromStringAndSize(NULL, (npart > 0 ? npart + 1 : 1) * 8);
    if (!co || !ro || !po) goto done;
    double *out = (double *)PyBytes_AS_STRING(co), area = 0;
    int64_t *oo = (int64_t *)PyBytes_AS_STRING(ro), *op = (int64_t *)PyBytes_AS_STRING(po);
    Py_ssize_t at = 0, nkept = 0, nparts = 0;
    oo[0] = op[0] = 0;
    for (Py_ssize_t q = 0; q < npart; q++) {
        for (int64_t r = parts[q]; r < parts[q + 1]; r++) {
            Py_ssize_t from = at;
            for (int64_t i = off[r]; i < off[r + 1]; i++)
                if (keep[i]) {
                    out[2 * at] = xy[2 * i];
                    out[2 * at + 1] = xy[2 * i + 1];
                    at++;
                }
            if (at == from) continue; /* dropped */
            double a = fabs(ring_area(out, from, at));
            area += nkept == op[nparts] ? a : -a; /* the part's first ring: its shell */
            oo[++nkept] = at;
        }
        if (nkept > op[nparts]) op[++nparts] = nkept;
    }
    if (_PyBytes_Resize(&ro, (nkept + 1) * 8) || _PyBytes_Resize(&po, (nparts + 1) * 8))
        goto done;
    result = Py_BuildValue("OOOnd", co, ro, po, collapsed, area);
done:
    Py_XDECREF(co);
    Py_XDECREF(ro);
    Py_XDECREF(po);
    free(keep);
    PyBuffer_Release(&bc);
    PyBuffer_Release(&br);
    PyBuffer_Release(&bp);
    return result;
}

/* search(out_ptr, arc_order, arc_to, arc_cost, source, source_cost, budget)
 *   -> (nodes, dist, pred)
 * Dijkstra from virtual sources (graph node `source[i]` entered at `source_cost[i]`)
 * over the graph's CSR adjacency (out-arcs of node u: arc_order[out_ptr[u]:out_ptr[u+1]],
 * each to arc_to at arc_cost), bounded by `budget`: every node reached within it once,
 * in the order settled, its distance and the node it was reached from (-1: a source).
 * int64 arrays in (float64 costs), int64 / float64 / int64 bytes out. The nodes seen are
 * found through one int32 slot per graph node (calloc: the kernel zeroes only the pages
 * a search touches), so the cost follows the reached area, not the graph. */
typedef struct {
    double key;
    int32_t at;
} Entry;

typedef struct {
    int32_t *slot; /* per graph node: 1 + its place below, 0 unseen */
    int64_t *node, *pred;
    double *dist;
    uint8_t *done;
    Py_ssize_t n, cap;
    Entry *heap;
    Py_ssize_t hn, hcap;
} Search;

/* node v reached at d from `from`: recorded and queued unless known as near; -1 no memory */
static int reach(Search *S, int64_t v, double d, int64_t from) {
    int32_t s = S->slot[v];
    if (s && (S->done[s - 1] || S->dist[s - 1] <= d)) return 0;
    if (!s) {
        if (S->n == S->cap) {
            Py_ssize_t cap = 2 * S->cap;
            int64_t *n2 = realloc(S->node, (size_t)cap * sizeof(int64_t));
            if (n2) S->node = n2;
            int64_t *p2 = realloc(S->pred, (size_t)cap * sizeof(int64_t));
            if (p2) S->pred = p2;
            double *d2 = realloc(S->dist, (size_t)cap * sizeof(double));
            if (d2) S->dist = d2;
            uint8_t *o2 = realloc(S->done, (size_t)cap);
            if (o2) S->done = o2;
            if (!n2 || !p2 || !d2 || !o2) return -1;
            S->cap = cap;
        }
        S->node[S->n] = v;
        S->done[S->n] = 0;
        s = (int32_t)(++S->n);
        S->slot[v] = s;
    }
    S->dist[s - 1] = d;
    S->pred[s - 1] = from;
    if (S->hn == S->hcap) {
        Entry *h2 = realloc(S->heap, (size_t)(2 * S->hcap) * sizeof(Entry));
        if (!h2) return -1;
        S->heap = h2;
        S->hcap *= 2;
    }
    Py_ssize_t k = S->hn++;
    while (k > 0 && S->heap[(k - 1) / 2].key > d) { /* sift up */
        S->heap[k] = S->heap[(k - 1) / 2];
        k = (k - 1) / 2;
    }
    S->heap[k].key = d;
    S->heap[k].at = s - 1;
    return 0;
}

static Entry pop(Search *S) {
    Entry top = S->heap[0], last = S->heap[--S->hn];
    Py_ssize_t k = 0, hn = S->hn;
    for (;;) { /* sift the last entry down from the root */
        Py_ssize_t c = 2 * k + 1;
        if (c >= hn) break;
        if (c + 1 < hn && S->heap[c + 1].key < S->heap[c].key) c++;
        if (S->heap[c].key >= last.key) break;
        S->heap[k] = S->heap[c];
        k = c;
    }
    if (hn > 0) S->heap[k] = last;
    return top;
}

static PyObject *search(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer bp, bo, bt, bc, bs, bsc;
    double budget;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*d", &bp, &bo, &bt, &bc, &bs, &bsc, &budget))
        return NULL;
    PyObject *result = NULL, *on = NULL, *od = NULL, *op = NULL;
    const int64_t *out_ptr = bp.buf, *arc_order = bo.buf, *arc_to = bt.buf, *source = bs.buf;
    const double *arc_cost = bc.buf, *source_cost = bsc.buf;
    Py_ssize_t nodes = bp.len / 8 - 1, nsrc = bs.len / 8;
    Search S = {0};
    if (nodes < 1 || nodes >= 0x7fffffff || bt.len != bo.len || bc.len != bo.len ||
        bsc.len != bs.len) {
        PyErr_SetString(PyExc_ValueError, "search: arrays of the graph or sources disagree");
        goto done;
    }
    S.cap = S.hcap = 1024;
    S.slot = calloc((size_t)nodes, sizeof(int32_t));
    S.node = malloc((size_t)S.cap * sizeof(int64_t));
    S.pred = malloc((size_t)S.cap * sizeof(int64_t));
    S.dist = malloc((size_t)S.cap * sizeof(double));
    S.done = malloc((size_t)S.cap);
    S.heap = malloc((size_t)S.hcap * sizeof(Entry));
    if (!S.slot || !S.node || !S.pred || !S.dist || !S.done || !S.heap) goto nomem;
    for (Py_ssize_t i = 0; i < nsrc; i++) {
        if (source[i] < 0 || source[i] >= nodes) {
            PyErr_SetString(PyExc_ValueError, "search: a source outside the graph");
            goto done;
        }
        if (source_cost[i] <= budget && reach(&S, source[i], source_cost[i], -1)) goto nomem;
    }
    while (S.hn > 0) {
        Entry top = pop(&S);
        if (S.done[top.at] || top.key > S.dist[top.at]) continue;
        S.done[top.at] = 1;
        int64_t u = S.node[top.at];
        double du = S.dist[top.at];
        for (int64_t a = out_ptr[u]; a < out_ptr[u + 1]; a++) {
            int64_t arc = arc_order[a];
            double dw = du + arc_cost[arc];
            if (dw <= budget && reach(&S, arc_to[arc], dw, u)) goto nomem;
        }
    }
    on = PyBytes_FromStringAndSize((const char *)S.node, S.n * 8);
    od = PyBytes_FromStringAndSize((const char *)S.dist, S.n * 8);
    op = PyBytes_FromStringAndSize((const char *)S.pred, S.n * 8);
    if (on && od && op) result = Py_BuildValue("OOO", on, od, op);
    goto done;
nomem:
    PyErr_NoMemory();
done:
    Py_XDECREF(on);
    Py_XDECREF(od);
    Py_XDECREF(op);
    free(S.slot);
    free(S.node);
    free(S.pred);
    free(S.dist);
    free(S.done);
    free(S.heap);
    PyBuffer_Release(&bp);
    PyBuffer_Release(&bo);
    PyBuffer_Release(&bt);
    PyBuffer_Release(&bc);
    PyBuffer_Release(&bs);
    PyBuffer_Release(&bsc);
    return result;
}

/* encode(lonlat, ring_offsets, part_offsets, decimals, lines) -> bytes | None
 *
 * An outline's coordinates as the text of a GeoJSON "coordinates" member, rounded to
 * `decimals` of a degree — MultiPolygon nesting, or with `lines` the rings alone
 * (MultiLineString) — or None where the rounded outline might not be valid (OGC simple
 * features), so the caller takes GEOS's way (service.wgs84_outline: is_valid, then
 * snap-rounding). float64 (p, 2) lon/lat and int64 offsets in shapely's ragged layout.
 *
 * Rounding is numpy's (rint(v · 10^d) / 10^d, written exactly as that decimal); repeated
 * vertices that rounding makes are written once. The check is exact (integer multiples
 * of 10^-d, 128-bit products) and errs only toward None: every ring keeps four vertices,
 * no two of its segments meet except neighbours at their shared vertex (no spike), no
 * segment of one ring meets one of another, each hole lies inside its shell and outside
 * the part's other holes, and a part inside another part's shell lies in one of its
 * holes. Why here: with GEOS (from_ragged_array, is_valid, the coordinates' nested lists)
 * this stage was the answer's largest after tracing (≈ 0.5 ms a 5/10/15 answer). */
typedef struct {
    int64_t x0, x1, y0, y1; /* the segment's box */
    int32_t ring, at;       /* its ring, its first vertex's place in that ring */
} Seg;

static int seg_xmin(const void *a, const void *b) {
    int64_t u = ((const Seg *)a)->x0, v = ((const Seg *)b)->x0;
    return (u > v) - (u < v);
}

/* segments by the west end of their box: a radix sort of 8-bit digits (qsort's calls of
 * seg_xmin were half of encode's time); qsort where the span passes 32 bits. -1 no memory */
static int sort_segments(Seg *seg, Py_ssize_t n) {
    if (n < 2) return 0;
    int64_t lo = seg[0].x0, hi = seg[0].x0;
    for (Py_ssize_t i = 1; i < n; i++) {
        lo = seg[i].x0 < lo ? seg[i].x0 : lo;
        hi = seg[i].x0 > hi ? seg[i].x0 : hi;
    }
    if (hi - lo >= ((int64_t)1 << 32)) {
        qsort(seg, (size_t)n, sizeof(Seg), seg_xmin);
        return 0;
    }
    Seg *tmp = malloc((size_t)n * sizeof(Seg)), *src = seg, *dst = tmp;
    if (!tmp) return -1;
    for (int shift = 0; shift < 32; shift += 8) {
        if (!(((uint64_t)(hi - lo)) >> shift)) break; /* no higher digit differs */
        Py_ssize_t count[257] = {0};
        for (Py_ssize_t i = 0; i < n; i++) count[((uint64_t)(src[i].x0 - lo) >> shift & 255) + 1]++;
        for (int d = 0; d < 256; d++) count[d + 1] += count[d];
        for (Py_ssize_t i = 0; i < n; i++) dst[count[(uint64_t)(src[i].x0 - lo) >> shift & 255]++] = src[i];
        Seg *t = src;
        src = dst;
        dst = t;
    }
    if (src != seg) memcpy(seg, src, (size_t)n * sizeof(Seg));
    free(tmp);
    return 0;
}

static inline int orient(const int64_t *a, const int64_t *b, const int64_t *c) {
    __int128 d = (__int128)(b[0] - a[0]) * (c[1] - a[1]) - (__int128)(b[1] - a[1]) * (c[0] - a[0]);
    return (d > 0) - (d < 0);
}

/* c lies on segment a–b, given a, b, c collinear */
static inline int within(const int64_t *a, const int64_t *b, const int64_t *c) {
    return (c[0] >= (a[0] < b[0] ? a[0] : b[0])) && (c[0] <= (a[0] > b[0] ? a[0] : b[0])) &&
           (c[1] >= (a[1] < b[1] ? a[1] : b[1])) && (c[1] <= (a[1] > b[1] ? a[1] : b[1]));
}

/* the closed segments a–b and c–d share a point */
static int meet(const int64_t *a, const int64_t *b, const int64_t *c, const int64_t *d) {
    int o1 = orient(a, b, c), o2 = orient(a, b, d), o3 = orient(c, d, a), o4 = orient(c, d, b);
    if (o1 * o2 < 0 && o3 * o4 < 0) return 1; /* they cross */
    return (o1 == 0 && within(a, b, c)) || (o2 == 0 && within(a, b, d)) ||
           (o3 == 0 && within(c, d, a)) || (o4 == 0 && within(c, d, b));
}

/* p strictly inside the closed ring q[a..b) (p on no segment of it: checked before) */
static int inside_q(const int64_t *q, Py_ssize_t a, Py_ssize_t b, const int64_t *p) {
    int in = 0;
    for (Py_ssize_t i = a, j = b - 2; i < b - 1; j = i++) {
        const int64_t *u = q + 2 * i, *v = q + 2 * j;
        if ((u[1] > p[1]) != (v[1] > p[1])) {
            /* p left of the crossing: (p - u) × (v - u) has the sign of (v - u).y */
            __int128 c = (__int128)(v[0] - u[0]) * (p[1] - u[1]) -
                         (__int128)(p[0] - u[0]) * (v[1] - u[1]);
            if ((c > 0) == (v[1] > u[1])) in = !in;
        }
    }
    return in;
}

static int put_number(char *out, int64_t k, int decimals, int64_t scale) {
    char *o = out;
    if (k < 0) {
        *o++ = '-';
        k = -k;
    }
    char whole[24];
    int w = 0;
    int64_t ip = k / scale;
    do {
        whole[w++] = (char)('0' + ip % 10);
        ip /= 10;
    } while (ip);
    while (w) *o++ = whole[--w];
    int64_t frac = k % scale;
    *o++ = '.';
    if (!frac) {
        *o++ = '0';
        return (int)(o - out);
    }
    char digits[24];
    for (int i = decimals - 1; i >= 0; i--) {
        digits[i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    int n = decimals;
    while (n > 1 && digits[n - 1] == '0') n--;
    memcpy(o, digits, (size_t)n);
    return (int)(o + n - out);
}

static PyObject *encode(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer bc, br, bp;
    int decimals, lines;
    if (!PyArg_ParseTuple(args, "y*y*y*ip", &bc, &br, &bp, &decimals, &lines)) return NULL;
    PyObject *result = NULL;
    const double *xy = bc.buf;
    const int64_t *roff = br.buf, *poff = bp.buf;
    Py_ssize_t n = bc.len / 16, nring = br.len / 8 - 1, npart = bp.len / 8 - 1;
    int64_t *q = NULL, *qat = NULL;
    Seg *seg = NULL;
    char *text = NULL;
    int suspect = 0;
    if (decimals < 0 || decimals > 9 || nring < 1 || npart < 1 || roff[0] != 0 ||
        roff[nring] != n || poff[0] != 0 || poff[npart] != nring) {
        PyErr_SetString(PyExc_ValueError, "encode: offsets do not fit or decimals not in 0..9");
        goto done;
    }
    for (Py_ssize_t r = 0; r < nring; r++)
        if (roff[r + 1] < roff[r]) {
            PyErr_SetString(PyExc_ValueError, "encode: ring offsets decrease");
            goto done;
        }
    for (Py_ssize_t p = 0; p < npart; p++)
        if (poff[p + 1] <= poff[p]) {
            PyErr_SetString(PyExc_ValueError, "encode: a part without rings");
            goto done;
        }
    int64_t scale = 1;
    for (int i = 0; i < decimals; i++) scale *= 10;
    q = malloc((size_t)(n + 1) * 2 * sizeof(int64_t));
    qat = malloc((size_t)(nring + 1) * sizeof(int64_t));
    seg = malloc((size_t)(n + 1) * sizeof(Seg));
    if (!q || !qat || !seg) {
        PyErr_NoMemory();
        goto done;
    }
    /* rounded, repeats dropped */
    Py_ssize_t m = 0, nseg = 0;
    qat[0] = 0;
    for (Py_ssize_t r = 0; r < nring; r++) {
        Py_ssize_t first = m;
        for (int64_t i = roff[r]; i < roff[r + 1]; i++) {
            double vx = rint(xy[2 * i] * (double)scale), vy = rint(xy[2 * i + 1] * (double)scale);
            if (!(fabs(vx) < 9e15 && fabs(vy) < 9e15)) {
                suspect = 1; /* not finite or beyond exact integers: GEOS's way */
                goto checked;
            }
            int64_t kx = (int64_t)vx, ky = (int64_t)vy;
            if (m > first && q[2 * m - 2] == kx && q[2 * m - 1] == ky) continue;
            q[2 * m] = kx;
            q[2 * m + 1] = ky;
            m++;
        }
        qat[r + 1] = m;
        Py_ssize_t len = m - first;
        if (len < 4 || q[2 * first] != q[2 * m - 2] || q[2 * first + 1] != q[2 * m - 1]) {
            suspect = 1; /* collapsed, or not closed */
            goto checked;
        }
        /* neighbouring segments: no spike (turning straight back over the shared vertex) */
        Py_ssize_t sides = len - 1;
        for (Py_ssize_t s = 0; s < sides; s++) {
            const int64_t *a = q + 2 * (first + (s + sides - 1) % sides), *b = q + 2 * (first + s),
                          *c = q + 2 * (first + s + 1);
            if (orient(a, b, c) == 0 &&
                (a[0] - b[0]) * (__int128)(c[0] - b[0]) + (a[1] - b[1]) * (__int128)(c[1] - b[1]) > 0) {
                suspect = 1;
                goto checked;
            }
        }
        for (Py_ssize_t s = 0; s < sides; s++) {
            const int64_t *a = q + 2 * (first + s), *b = a + 2;
            Seg *g = seg + nseg++;
            g->x0 = a[0] < b[0] ? a[0] : b[0];
            g->x1 = a[0] < b[0] ? b[0] : a[0];
            g->y0 = a[1] < b[1] ? a[1] : b[1];
            g->y1 = a[1] < b[1] ? b[1] : a[1];
            g->ring = (int32_t)r;
            g->at = (int32_t)s;
        }
    }
    /* no two segments meet but neighbours (sweep along x) */
    if (sort_segments(seg, nseg)) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < nseg && !suspect; i++) {
        const Seg *u = seg + i;
        for (Py_ssize_t j = i + 1; j < nseg && seg[j].x0 <= u->x1; j++) {
            const Seg *v = seg + j;
            if (v->y0 > u->y1 || v->y1 < u->y0) continue;
            if (u->ring == v->ring) {
                int64_t sides = qat[u->ring + 1] - qat[u->ring] - 1, d = u->at - v->at;
                if (d == 1 || d == -1 || d == sides - 1 || d == 1 - sides) continue;
            }
            const int64_t *a = q + 2 * (qat[u->ring] + u->at), *c = q + 2 * (qat[v->ring] + v->at);
            if (meet(a, a + 2, c, c + 2)) {
                suspect = 1;
                break;
            }
        }
    }
    if (suspect) goto checked;
    /* holes inside their shell, outside the part's other holes; a part inside another's
     * shell lies in one of its holes */
    for (Py_ssize_t p = 0; p < npart && !suspect; p++) {
        int64_t s = poff[p];
        for (int64_t h = s + 1; h < poff[p + 1] && !suspect; h++) {
            const int64_t *v = q + 2 * qat[h];
            if (!inside_q(q, qat[s], qat[s + 1], v)) suspect = 1;
            for (int64_t o = s + 1; o < poff[p + 1] && !suspect; o++)
                if (o != h && inside_q(q, qat[o], qat[o + 1], v)) suspect = 1;
        }
        const int64_t *v = q + 2 * qat[s];
        for (Py_ssize_t o = 0; o < npart && !suspect; o++) {
            if (o == p || !inside_q(q, qat[poff[o]], qat[poff[o] + 1], v)) continue;
            int held = 0;
            for (int64_t h = poff[o] + 1; h < poff[o + 1] && !held; h++)
                held = inside_q(q, qat[h], qat[h + 1], v);
            if (!held) suspect = 1;
        }
    }
checked:
    if (suspect) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    /* the text: at most 2 × (sign + 19 digits + point) + "[,]," a vertex */
    size_t cap = (size_t)m * 48 + (size_t)nring * 4 + (size_t)npart * 4 + 8;
    text = malloc(cap);
    if (!text) {
        PyErr_NoMemory();
        goto done;
    }
    char *o = text;
    *o++ = '[';
    for (Py_ssize_t p = 0; p < npart; p++) {
        if (!lines) {
            if (p) *o++ = ',';
            *o++ = '[';
        }
        for (int64_t r = poff[p]; r < poff[p + 1]; r++) {
            if (lines ? r > 0 : r > poff[p]) *o++ = ',';
            *o++ = '[';
            for (int64_t i = qat[r]; i < qat[r + 1]; i++) {
                if (i > qat[r]) *o++ = ',';
                *o++ = '[';
                o += put_number(o, q[2 * i], decimals, scale);
                *o++ = ',';
                o += put_number(o, q[2 * i + 1], decimals, scale);
                *o++ = ']';
            }
            *o++ = ']';
        }
        if (!lines) *o++ = ']';
    }
    *o++ = ']';
    result = PyBytes_FromStringAndSize(text, o - text);
done:
    free(q);
    free(qat);
    free(seg);
    free(text);
    PyBuffer_Release(&bc);
    PyBuffer_Release(&br);
    PyBuffer_Release(&bp);
    return result;
}

static PyMethodDef methods[] = {
    {"search", search, METH_VARARGS,
     "search(out_ptr, arc_order, arc_to, arc_cost, source, source_cost, budget) -> "
     "(nodes, dist, pred) bytes"},
    {"simplify", simplify, METH_VARARGS,
     "simplify(coords, ring_offsets, part_offsets, tolerance, short, min_area) -> "
     "(coords, ring_offsets, part_offsets, collapsed, area)"},
    {"reached", reached, METH_VARARGS,
     "reached(arc_edge, from_dist, arc_len, forward, o_edge, o_t, o_leg, o_len, o_two, qx, qy, "
     "sx, sy, budgets, steps, offset, along, coords) -> (x, y, ends, boxes) bytes"},
    {"merge", merge, METH_VARARGS, "merge(edge, f0, f1) -> (edge, f0, f1) bytes"},
    {"encode", encode, METH_VARARGS,
     "encode(lonlat, ring_offsets, part_offsets, decimals, lines) -> bytes | None"},
    {"trace", trace, METH_VARARGS,
     "trace(x, y, x0, y0, cell, nx, ny, level) -> (coords, ring_offsets, part_offsets)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_band",
                                    "The compiled core of walking isochrones (see _band.c).", -1, methods};

PyMODINIT_FUNC PyInit__band(void) {
    quad_table();
    return PyModule_Create(&module);
}
