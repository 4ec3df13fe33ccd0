/*
 * plot.c - ucperf --plot FILE.svg: a small SVG writer (no dependency) with
 * three panels: bandwidth against read size, p50/p99 latency against read
 * size (both on log2 size axes), and each size's latency histogram (log
 * latency axis), so a user can look rather than read.
 */
#include "perf/ucperf.h"
#include "util/config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define PW 420   /* panel width, height and margins */
#define PH 260
#define PM 50

static const char *const plot_colors[] = {
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"
};

typedef struct plot_axes {
    double x0, x1, y0, y1;     /* data range (x in log2 units when logx) */
    int    ox, oy;             /* panel origin in the SVG */
} plot_axes_t;

static double plot_x(const plot_axes_t *a, double x)
{
    return a->ox + PM + (x - a->x0) / ((a->x1 > a->x0) ? a->x1 - a->x0 : 1) * (PW - 2 * PM);
}

static double plot_y(const plot_axes_t *a, double y)
{
    return a->oy + PH - PM - (y - a->y0) / ((a->y1 > a->y0) ? a->y1 - a->y0 : 1) *
                             (PH - 2 * PM);
}

/* A panel's frame, title, axis labels and ticks; x ticks at log2 values. */
static void plot_frame(FILE *f, const plot_axes_t *a, const char *title, const char *xl,
                       const char *yl, int x_is_size)
{
    char lab[32];
    double v;
    int i;

    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
            "stroke=\"#999\"/>\n", a->ox + PM, a->oy + PM, PW - 2 * PM, PH - 2 * PM);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"14\" text-anchor=\"middle\">%s</text>\n",
            a->ox + PW / 2, a->oy + PM - 18, title);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%s</text>\n",
            a->ox + PW / 2, a->oy + PH - 12, xl);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 %d %d)\">%s</text>\n", a->ox + 14, a->oy + PH / 2,
            a->ox + 14, a->oy + PH / 2, yl);
    for (v = ceil(a->x0); v <= a->x1 + 1e-9; v += (a->x1 - a->x0 > 12) ? 2 : 1) {
        if (x_is_size) {
            uc_format_size((uint64_t)pow(2, v), lab, sizeof(lab));
        } else { /* latency in ns, labelled in us */
            snprintf(lab, sizeof(lab), "%g", pow(2, v) / 1e3);
        }
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\">%s"
                "</text>\n", plot_x(a, v), a->oy + PH - PM + 14, lab);
    }
    for (i = 0; i <= 4; i++) {
        v = a->y0 + (a->y1 - a->y0) * i / 4;
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">%.3g"
                "</text>\n", a->ox + PM - 4, plot_y(a, v) + 3, v);
    }
}

static void plot_line(FILE *f, const plot_axes_t *a, const double *xs, const double *ys,
                      unsigned n, const char *color, int dots)
{
    unsigned i;

    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", color);
    for (i = 0; i < n; i++) {
        fprintf(f, "%.1f,%.1f ", plot_x(a, xs[i]), plot_y(a, ys[i]));
    }
    fprintf(f, "\"/>\n");
    for (i = 0; dots && (i < n); i++) {
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                plot_x(a, xs[i]), plot_y(a, ys[i]), color);
    }
}

int ucperf_plot(const char *path, const ucperf_opts_t *o, const ucperf_result_t *r,
                unsigned n)
{
    double xs[16], bw[16], p50[16], p99[16], hx[UCPERF_HIST_BINS], hy[UCPERF_HIST_BINS];
    plot_axes_t a;
    char title[128], lab[32];
    unsigned i, b, lo = UCPERF_HIST_BINS, hi = 0;
    uint64_t peak = 1;
    FILE *f;

    if ((n == 0) || (n > 16) || ((f = fopen(path, "w")) == NULL)) {
        return -1;
    }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" "
            "fill=\"white\"/>\n", 3 * PW, PH + 20);
    memset(&a, 0, sizeof(a));
    a.x0 = a.x1 = log2((double)o->sizes[0]);
    for (i = 0; i < n; i++) {
        xs[i]  = log2((double)o->sizes[i]);
        bw[i]  = r[i].gbps;
        p50[i] = r[i].p50_us;
        p99[i] = r[i].p99_us;
        a.x0 = (xs[i] < a.x0) ? xs[i] : a.x0;
        a.x1 = (xs[i] > a.x1) ? xs[i] : a.x1;
        a.y1 = (bw[i] > a.y1) ? bw[i] : a.y1;
    }
    if (a.x1 == a.x0) {
        a.x0 -= 1;
        a.x1 += 1;
    }
    a.y1 = (a.y1 > 0) ? a.y1 * 1.1 : 1;
    snprintf(title, sizeof(title), "ucperf %s over %s: bandwidth", ucperf_mode_name(o->mode),
             o->transport);
    plot_frame(f, &a, title, "read size", "GB/s (10^9 B/s)", 1);
    plot_line(f, &a, xs, bw, n, plot_colors[0], 1);

    a.ox = PW;
    a.y1 = 0;
    for (i = 0; i < n; i++) {
        a.y1 = (p99[i] > a.y1) ? p99[i] : a.y1;
    }
    a.y1 = (a.y1 > 0) ? a.y1 * 1.1 : 1;
    plot_frame(f, &a, "latency: p50 (blue), p99 (red)", "read size", "microseconds", 1);
    plot_line(f, &a, xs, p50, n, plot_colors[0], 1);
    plot_line(f, &a, xs, p99, n, plot_colors[1], 1);

    for (i = 0; i < n; i++) {
        for (b = 0; b < UCPERF_HIST_BINS; b++) {
            if (r[i].hist[b] > 0) {
                lo = (b < lo) ? b : lo;
                hi = (b > hi) ? b : hi;
                peak = (r[i].hist[b] > peak) ? r[i].hist[b] : peak;
            }
        }
    }
    a.ox = 2 * PW;
    a.x0 = (lo < hi) ? lo / 2.0 : 0;
    a.x1 = (lo < hi) ? (hi + 1) / 2.0 : 1;
    a.y0 = 0;
    a.y1 = 100;
    plot_frame(f, &a, "latency histogram (% of reads)", "latency (us)", "% of reads", 0);
    for (i = 0; (i < n) && (lo <= hi); i++) {
        uint64_t total = 0;

        for (b = lo; b <= hi; b++) {
            total += r[i].hist[b];
        }
        for (b = lo; b <= hi; b++) {
            hx[b - lo] = (b + 0.5) / 2.0;
            hy[b - lo] = total ? 100.0 * (double)r[i].hist[b] / (double)total : 0;
        }
        plot_line(f, &a, hx, hy, hi - lo + 1, plot_colors[i % 8], 0);
        uc_format_size(o->sizes[i], lab, sizeof(lab));
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"10\" fill=\"%s\">%s</text>\n",
                a.ox + PW - PM - 40, a.oy + PM + 12 + 12 * (int)i, plot_colors[i % 8], lab);
    }
    fprintf(f, "</svg>\n");
    return (fclose(f) == 0) ? 0 : -1;
}
