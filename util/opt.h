/*
 * opt.h - command-line options, one way for every program of ours
 * (ucached, the ucache commands, ucperf): each declares a table of its
 * options - long name, short letter, kind of value and its bounds - and
 * takes them one at a time from uc_opt_next(), which runs getopt_long over
 * the table, parses and bounds every value and words every refusal the
 * same way ("bad --NAME 'ARG' (RANGE)", "unknown option", "needs a
 * value").  Nothing here prints: the program says it, and exits 2.
 */
#ifndef UC_OPT_H
#define UC_OPT_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

typedef enum uc_opt_kind {
    UC_OPT_FLAG,    /* no value                                            */
    UC_OPT_STR,     /* v.s: the argument as given                          */
    UC_OPT_UINT,    /* v.u: a whole decimal number in [min, max]           */
    UC_OPT_SIZE,    /* v.u: a size (K/M/G/T, powers of 1024) in [min, max]  */
    UC_OPT_TIME,    /* v.u: nanoseconds (ns/us/ms/s/m; bare: s) in [min, max] */
    UC_OPT_REAL,    /* v.d: a decimal number in [min, max]                 */
    UC_OPT_WORD     /* v.u: the index of the argument in `words` ("a|b|c") */
} uc_opt_kind_t;

#define UC_OPT_VALUE_OPTIONAL 1   /* uc_opt_t.optional: --name[=VALUE] */

typedef struct uc_opt {
    const char   *name;     /* long name, without "--"                     */
    int           key;      /* a short letter (< 256: also -k), else > 255 */
    uc_opt_kind_t kind;
    double        min, max; /* numbers: inclusive bounds                   */
    const char   *words;    /* UC_OPT_WORD: the words, '|' between them    */
    int           optional; /* the value may be left out: then `dflt`     */
    double        dflt;
} uc_opt_t;

typedef union uc_optval {
    uint64_t    u;
    double      d;
    const char *s;
} uc_optval_t;

typedef struct uc_optparse {
    int             argc;
    char          **argv;
    const uc_opt_t *opts;
    size_t          nopts;
    struct option   lo[48];
    char            shortopts[160];
    int             base;    /* argv index getopt's argv[0] stands at     */
    int             optind;  /* after the last option: the first operand   */
} uc_optparse_t;

/** Get ready to take the options of @p argv from index @p first on (the
 *  ones before it are the program and its command); -1 if the table does
 *  not fit (a bug, said in @p err). */
int uc_opt_init(uc_optparse_t *p, int argc, char **argv, int first, const uc_opt_t *opts,
                char *err, size_t cap);

/**
 * The next option: its key, with its value in *v and its table entry in
 * *o_p; 0 once they are all taken (p->optind: the first operand); -1 for
 * an option that is not in the table, lacks its value or whose value is
 * malformed or out of bounds (said in @p err, naming the option).
 */
int uc_opt_next(uc_optparse_t *p, uc_optval_t *v, const uc_opt_t **o_p, char *err,
                size_t cap);

#endif
