/*
 * opt.c - command-line options (opt.h): getopt_long over a table, every
 * value parsed and bounded here.
 */
#include "util/opt.h"
#include "util/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int uc_opt_init(uc_optparse_t *p, int argc, char **argv, int first, const uc_opt_t *opts,
                char *err, size_t cap)
{
    size_t n, k = 0;

    memset(p, 0, sizeof(*p));
    p->opts = opts;
    p->shortopts[k++] = ':';          /* a missing value is ':', not '?' */
    for (n = 0; opts[n].name != NULL; n++) {
        if ((n + 1 >= sizeof(p->lo) / sizeof(p->lo[0])) || (k + 4 > sizeof(p->shortopts))) {
            snprintf(err, cap, "too many options (%zu)", n);
            return -1;
        }
        p->lo[n].name    = opts[n].name;
        p->lo[n].has_arg = (opts[n].kind == UC_OPT_FLAG) ? no_argument :
                           opts[n].optional ? optional_argument : required_argument;
        p->lo[n].flag    = NULL;
        p->lo[n].val     = opts[n].key;
        if ((opts[n].key > 0) && (opts[n].key < 256)) {
            p->shortopts[k++] = (char)opts[n].key;
            if (opts[n].kind != UC_OPT_FLAG) {
                p->shortopts[k++] = ':';
                if (opts[n].optional) {
                    p->shortopts[k++] = ':';
                }
            }
        }
    }
    p->nopts = n;
    memset(&p->lo[n], 0, sizeof(p->lo[n]));
    p->shortopts[k] = '\0';
    /* optind 0: glibc starts afresh even if an earlier parse stopped
     * inside a cluster of short options */
    optind = 0;
    opterr = 0;
    p->optind = first;
    /* getopt counts from argv[0]: hand it the options only, as if the
     * word before them were the program */
    p->base = first - 1;
    p->argc = argc - p->base;
    p->argv = argv + p->base;
    return 0;
}

/* A whole decimal number, no sign. */
static int uc_opt_uint(const char *s, uint64_t *v)
{
    char *end;

    if ((*s < '0') || (*s > '9')) {
        return -1;
    }
    errno = 0;
    *v = strtoull(s, &end, 10);
    return ((errno == 0) && (*end == '\0')) ? 0 : -1;
}

/* The bounds of @p o, worded for a refusal: " (1 .. 1024)". */
static void uc_opt_range(const uc_opt_t *o, char *buf, size_t cap)
{
    if (o->kind == UC_OPT_WORD) {
        snprintf(buf, cap, " (%s)", o->words);
    } else if ((o->kind == UC_OPT_SIZE) && (o->max >= 1e18)) {
        snprintf(buf, cap, " (a size: N, NK, NM, NG, NT)");
    } else if ((o->kind == UC_OPT_SIZE) || (o->kind == UC_OPT_TIME)) {
        char lo[32], hi[32];

        if (o->kind == UC_OPT_SIZE) {
            uc_format_size((uint64_t)o->min, lo, sizeof(lo));
            uc_format_size((uint64_t)o->max, hi, sizeof(hi));
        } else {
            uc_format_time((uint64_t)o->min, lo, sizeof(lo));
            uc_format_time((uint64_t)o->max, hi, sizeof(hi));
        }
        snprintf(buf, cap, " (%s .. %s)", lo, hi);
    } else if ((o->kind == UC_OPT_UINT) || (o->kind == UC_OPT_REAL)) {
        snprintf(buf, cap, " (%.15g .. %.15g)", o->min, o->max);
    } else {
        buf[0] = '\0';
    }
}

/* Parse @p arg as @p o's value; -1 if malformed or out of bounds. */
static int uc_opt_value(const uc_opt_t *o, const char *arg, uc_optval_t *v)
{
    const char *w, *bar;
    size_t len;
    char *end;
    uint64_t i;

    switch (o->kind) {
    case UC_OPT_STR:
        v->s = arg;
        return 0;
    case UC_OPT_UINT:
        return ((uc_opt_uint(arg, &v->u) == 0) && ((double)v->u >= o->min) &&
                ((double)v->u <= o->max)) ? 0 : -1;
    case UC_OPT_SIZE:
        return ((uc_parse_size(arg, &v->u) == UCACHE_OK) && ((double)v->u >= o->min) &&
                ((double)v->u <= o->max)) ? 0 : -1;
    case UC_OPT_TIME:
        return ((uc_parse_time(arg, &v->u) == UCACHE_OK) && ((double)v->u >= o->min) &&
                ((double)v->u <= o->max)) ? 0 : -1;
    case UC_OPT_REAL:
        errno = 0;
        v->d = strtod(arg, &end);
        return ((arg[0] != '\0') && (*end == '\0') && (errno == 0) && (v->d >= o->min) &&
                (v->d <= o->max)) ? 0 : -1;
    case UC_OPT_WORD:
        len = strlen(arg);
        for (w = o->words, i = 0; w != NULL; w = (bar != NULL) ? bar + 1 : NULL, i++) {
            bar = strchr(w, '|');
            if ((len > 0) && (len == ((bar != NULL) ? (size_t)(bar - w) : strlen(w))) &&
                (strncmp(w, arg, len) == 0)) {
                v->u = i;
                return 0;
            }
        }
        return -1;
    default:
        return 0;
    }
}

int uc_opt_next(uc_optparse_t *p, uc_optval_t *v, const uc_opt_t **o_p, char *err,
                size_t cap)
{
    const uc_opt_t *o = NULL;
    char range[96];
    const char *bad;
    size_t i;
    int c;

    memset(v, 0, sizeof(*v));
    c = getopt_long(p->argc, p->argv, p->shortopts, p->lo, NULL);
    if (c == -1) {
        p->optind = ((optind > 0) ? optind : 1) + p->base; /* in the caller's argv */
        return 0;
    }
    bad = p->argv[(optind > 0) ? optind - 1 : 0];
    if (c == ':') {
        snprintf(err, cap, "option '%s' needs a value", bad);
        return -1;
    }
    for (i = 0; (c != '?') && (i < p->nopts); i++) {
        if (p->opts[i].key == c) {
            o = &p->opts[i];
            break;
        }
    }
    if (o == NULL) {
        snprintf(err, cap, "unknown option '%s'", bad);
        return -1;
    }
    *o_p = o;
    if (o->kind == UC_OPT_FLAG) {
        return c;
    }
    if (optarg == NULL) {      /* an optional value left out */
        if (o->kind == UC_OPT_REAL) {
            v->d = o->dflt;
        } else {
            v->u = (uint64_t)o->dflt;
        }
        return c;
    }
    if (uc_opt_value(o, optarg, v) != 0) {
        uc_opt_range(o, range, sizeof(range));
        snprintf(err, cap, "bad --%s '%s'%s", o->name, optarg, range);
        return -1;
    }
    return c;
}
