/*
 * dataset.c - datasets for the CLI (see dataset.h): prefixes are listed
 * with ucache_list() (file:// directories, Azure List Blobs, S3
 * ListObjectsV2), single objects sized with ucache_stat().
 */
#include "tools/dataset.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef struct ds_vec {
    ds_file_t *v;
    unsigned   n, cap;
} ds_vec_t;

double ds_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

const char *ds_bytes(double b, char *out, size_t cap)
{
    static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
    unsigned u = 0;

    while ((b >= 1024.0) && (u < 5)) {
        b /= 1024.0;
        u++;
    }
    snprintf(out, cap, (u == 0) ? "%.0f %s" : "%.1f %s", b, unit[u]);
    return out;
}

static ucache_status_t ds_add(void *arg, const char *uri, uint64_t size)
{
    ds_vec_t *d = arg;
    ds_file_t *nv;

    if (strlen(uri) >= sizeof(d->v[0].uri)) {
        fprintf(stderr, "skipped (URI too long): %.80s...\n", uri);
        return UCACHE_OK;
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 64;
        nv = realloc(d->v, d->cap * sizeof(*nv));
        if (nv == NULL) {
            return UCACHE_ERR_NO_MEMORY;
        }
        d->v = nv;
    }
    memset(&d->v[d->n], 0, sizeof(d->v[0]));
    snprintf(d->v[d->n].uri, sizeof(d->v[0].uri), "%s", uri);
    if (strncmp(uri, "file://", 7) == 0) {
        snprintf(d->v[d->n].path, sizeof(d->v[0].path), "%s", uri + 7);
    }
    d->v[d->n].size = size;
    d->n++;
    return UCACHE_OK;
}

static int ds_cmp(const void *a, const void *b)
{
    return strcmp(((const ds_file_t *)a)->uri, ((const ds_file_t *)b)->uri);
}

/* One argument or manifest line: a prefix or an object. */
static int ds_one(ucache_h ctx, const char *cmd, const char *uri, ds_vec_t *d)
{
    size_t len = strlen(uri);
    ucache_status_t status;
    struct stat st;
    uint64_t size;

    if ((len > 0 && uri[len - 1] == '/') ||
        ((strncmp(uri, "file://", 7) == 0) && (stat(uri + 7, &st) == 0) &&
         S_ISDIR(st.st_mode))) {
        status = ucache_list(ctx, uri, ds_add, d);
    } else {
        status = ucache_stat(ctx, uri, &size);
        if (status == UCACHE_OK) {
            status = ds_add(d, uri, size);
        }
    }
    if (status != UCACHE_OK) {
        fprintf(stderr, "%s: %.*s: %s\n", cmd, (int)strcspn(uri, "?#"), uri,
                ucache_strerror(status));
        return -1;
    }
    return 0;
}

/* Whether @p f (at its start) is a ucache manifest, whose versions a job
 * pins (ucache manifest), rather than a list of URIs; left at its start. */
static bool ds_pinned(FILE *f)
{
    char head[32] = "";
    bool pinned = (fgets(head, sizeof(head), f) != NULL) &&
                  (strncmp(head, "# ucache manifest ", 18) == 0);

    rewind(f);
    return pinned;
}

int ds_collect(ucache_h ctx, const char *cmd, int nargs, char **args, const char *manifest,
               ds_file_t **files_p, unsigned *n_p)
{
    ds_vec_t d = { NULL, 0, 0 };
    char line[2048], *s, *e;
    ucache_status_t status;
    unsigned i, o;
    int rc = 0;
    FILE *f;

    for (i = 0; (int)i < nargs && rc == 0; i++) {
        rc = ds_one(ctx, cmd, args[i], &d);
    }
    if ((rc == 0) && (manifest != NULL)) {
        f = (strcmp(manifest, "-") == 0) ? stdin : fopen(manifest, "r");
        if (f == NULL) {
            fprintf(stderr, "%s: cannot open the manifest %s\n", cmd, manifest);
            rc = -1;
        } else if ((f != stdin) && ds_pinned(f) &&
                   ((status = ucache_manifest_load(ctx, manifest)) != UCACHE_OK)) {
            fprintf(stderr, "%s: the manifest %s: %s\n", cmd, manifest,
                    ucache_strerror(status));
            rc = -1;
        }
        while ((rc == 0) && (f != NULL) && (fgets(line, sizeof(line), f) != NULL)) {
            if ((strchr(line, '\n') == NULL) && !feof(f)) {
                fprintf(stderr, "%s: a line of the manifest is longer than %zu bytes\n",
                        cmd, sizeof(line) - 2);
                rc = -1;
                break;
            }
            for (s = line; (*s == ' ') || (*s == '\t'); s++) {
            }
            for (e = s + strlen(s); (e > s) && ((e[-1] == '\n') || (e[-1] == '\r') ||
                                                (e[-1] == ' ') || (e[-1] == '\t')); e--) {
            }
            *e = '\0';
            s[strcspn(s, "\t")] = '\0'; /* a ucache manifest's line: the URI, then tabs */
            if ((*s != '\0') && (*s != '#')) {
                rc = ds_one(ctx, cmd, s, &d);
            }
        }
        if ((f != NULL) && (f != stdin)) {
            fclose(f);
        }
    }
    if (rc != 0) {
        free(d.v);
        return -1;
    }
    if (d.n > 1) {
        qsort(d.v, d.n, sizeof(*d.v), ds_cmp);
        for (i = 1, o = 1; i < d.n; i++) {   /* drop duplicates */
            if (strcmp(d.v[i].uri, d.v[o - 1].uri) != 0) {
                d.v[o++] = d.v[i];
            }
        }
        d.n = o;
    }
    *files_p = d.v;
    *n_p = d.n;
    return 0;
}
