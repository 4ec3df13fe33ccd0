/*
 * test_util.c - tests of util/: status strings, the configuration table
 * (parsing, environment, printing) and the logger (levels, sinks).
 */
#include "tests/common.h"
#include "ucache.h"
#include "util/config.h"
#include "util/latency.h"
#include "util/opt.h"
#include "util/log.h"

#include <math.h>

static void test_status_strings(void)
{
    CU_ASSERT_STRING_EQUAL(ucache_strerror(UCACHE_OK), "success");
    CU_ASSERT_STRING_EQUAL(ucache_strerror(UCACHE_ERR_PEER),
                           "peer unreachable or failed");
    CU_ASSERT_STRING_EQUAL(ucache_status_name(UCACHE_ERR_TIMEOUT),
                           "UCACHE_ERR_TIMEOUT");
    CU_ASSERT_STRING_EQUAL(ucache_strerror((ucache_status_t)-999), "unknown status");
    CU_ASSERT_STRING_EQUAL(ucache_status_name((ucache_status_t)77),
                           "UCACHE_ERR_UNKNOWN");
    /* Every listed status has a distinct, non-empty message. */
#define X(name, value, msg) CU_ASSERT(strlen(ucache_strerror(name)) > 0);
    UCACHE_FOREACH_STATUS(X)
#undef X
}

static void test_parse_size(void)
{
    uint64_t v;

    CU_ASSERT_EQUAL(uc_parse_size("4096", &v), UCACHE_OK);
    CU_ASSERT_EQUAL(v, 4096);
    CU_ASSERT_EQUAL(uc_parse_size("4K", &v), UCACHE_OK);
    CU_ASSERT_EQUAL(v, 4096);
    CU_ASSERT_EQUAL(uc_parse_size("64m", &v), UCACHE_OK);
    CU_ASSERT_EQUAL(v, 64ull << 20);
    CU_ASSERT_EQUAL(uc_parse_size("1GiB", &v), UCACHE_OK);
    CU_ASSERT_EQUAL(v, 1ull << 30);
    CU_ASSERT_EQUAL(uc_parse_size("2T", &v), UCACHE_OK);
    CU_ASSERT_EQUAL(v, 2ull << 40);
    CU_ASSERT_EQUAL(uc_parse_size("", &v), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uc_parse_size("-1", &v), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uc_parse_size("12Q", &v), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uc_parse_size("1G2", &v), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uc_parse_size("99999999999999999999", &v), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uc_parse_size("99999999999T", &v), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uc_parse_size(NULL, &v), UCACHE_ERR_INVALID);
}

static void test_parse_time(void)
{
    uint64_t v;

    CU_ASSERT_EQUAL(uc_parse_time("2s", &v), UCACHE_OK);
    CU_ASSERT_EQUAL(v, 2000000000ull);
    CU_ASSERT_EQUAL(uc_parse_time("500ms", &v), UCACHE_OK);
    CU_ASSERT_EQUAL(v, 500000000ull);
    CU_ASSERT_EQUAL(uc_parse_time("50us", &v), UCACHE_OK);
    CU_ASSERT_EQUAL(v, 50000ull);
    CU_ASSERT_EQUAL(uc_parse_time("7ns", &v), UCACHE_OK);
    CU_ASSERT_EQUAL(v, 7ull);
    CU_ASSERT_EQUAL(uc_parse_time("3", &v), UCACHE_OK);
    CU_ASSERT_EQUAL(v, 3000000000ull);
    CU_ASSERT_EQUAL(uc_parse_time("2m", &v), UCACHE_OK);
    CU_ASSERT_EQUAL(v, 120000000000ull);
    CU_ASSERT_EQUAL(uc_parse_time("2h", &v), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uc_parse_time("ms", &v), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uc_parse_time("99999999999999m", &v), UCACHE_ERR_INVALID);
}

static void test_format_roundtrip(void)
{
    char buf[32];

    uc_format_size(64ull << 20, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "64M");
    uc_format_size(1000, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "1000");
    uc_format_time(2000000000ull, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "2s");
    uc_format_time(50000, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "50us");
    uc_format_time(0, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "0ns");
}

static void test_config_defaults_and_env(void)
{
    uc_config_t cfg;

    unsetenv("UCACHE_TIMEOUT");
    unsetenv("UCACHE_MEM");
    CU_ASSERT_EQUAL_FATAL(uc_config_load(&cfg), UCACHE_OK);
    CU_ASSERT_EQUAL(cfg.timeout_ns, 2000000000ull);
    CU_ASSERT_EQUAL(cfg.mem_bytes, 1ull << 30);
    CU_ASSERT_EQUAL(cfg.chunk_size, 4ull << 20);
    CU_ASSERT_EQUAL(cfg.max_eps, 1024);
    CU_ASSERT_EQUAL(cfg.read_path, UC_READ_PATH_AUTO);
    CU_ASSERT_STRING_EQUAL(cfg.transport, "ucx");

    setenv("UCACHE_TIMEOUT", "250ms", 1);
    setenv("UCACHE_MEM", "64M", 1);
    setenv("UCACHE_READ_PATH", "am", 1);
    CU_ASSERT_EQUAL(uc_config_load(&cfg), UCACHE_OK);
    CU_ASSERT_EQUAL(cfg.timeout_ns, 250000000ull);
    CU_ASSERT_EQUAL(cfg.mem_bytes, 64ull << 20);
    CU_ASSERT_EQUAL(cfg.read_path, UC_READ_PATH_AM);

    /* A typo is an error, never silently the default. */
    setenv("UCACHE_TIMEOUT", "fast", 1);
    CU_ASSERT_EQUAL(uc_config_load(&cfg), UCACHE_ERR_INVALID);
    setenv("UCACHE_TIMEOUT", "0ns", 1); /* below the minimum */
    CU_ASSERT_EQUAL(uc_config_load(&cfg), UCACHE_ERR_OUT_OF_RANGE);
    unsetenv("UCACHE_TIMEOUT");
    unsetenv("UCACHE_MEM");
    unsetenv("UCACHE_READ_PATH");

    CU_ASSERT_EQUAL(uc_config_set(&cfg, "NO_SUCH_THING", "1"), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uc_config_set(&cfg, "READ_PATH", "rdma"), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uc_config_set(&cfg, "MAX_EPS", "12x"), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(uc_config_set(&cfg, "MAX_EPS", "12"), UCACHE_OK);
    CU_ASSERT_EQUAL(cfg.max_eps, 12);
}

static char *print_config(unsigned flags, ucache_status_t *status_p)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);

    *status_p = ucache_config_print(f, flags);
    fclose(f);
    return text;
}

static void test_config_print(void)
{
    ucache_status_t status;
    char *text;
    size_t i;

    setenv("UCACHE_MAX_EPS", "77", 1);
    text = print_config(UCACHE_CONFIG_PRINT_HELP, &status);
    CU_ASSERT_EQUAL(status, UCACHE_OK);
    /* Every table entry is printed, with its value. */
    for (i = 0; i < uc_config_table_len; i++) {
        char var[64];
        snprintf(var, sizeof(var), "UCACHE_%s=", uc_config_table[i].name);
        CU_ASSERT_PTR_NOT_NULL(strstr(text, var));
        CU_ASSERT_PTR_NOT_NULL(strstr(text, uc_config_table[i].help));
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "UCACHE_MAX_EPS=77\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "UCACHE_TIMEOUT=2s    # default"));
    free(text);

    text = print_config(UCACHE_CONFIG_PRINT_JSON, &status);
    CU_ASSERT_EQUAL(status, UCACHE_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(text,
        "{\"name\":\"UCACHE_MAX_EPS\",\"value\":\"77\",\"default\":\"1024\",\"set\":true"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"valid\":true}"));
    free(text);
    unsetenv("UCACHE_MAX_EPS");

    setenv("UCACHE_MEM", "lots", 1);
    text = print_config(UCACHE_CONFIG_PRINT_JSON, &status);
    CU_ASSERT_EQUAL(status, UCACHE_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"valid\":false}"));
    free(text);
    unsetenv("UCACHE_MEM");

    /* a token command may hold a secret: never printed */
    setenv("UCACHE_TOKEN_COMMAND", "get-token --client-secret s3cr3t-v4lue", 1);
    text = print_config(0, &status);
    CU_ASSERT_PTR_NULL(strstr(text, "s3cr3t-v4lue"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "UCACHE_TOKEN_COMMAND=(set, 38 bytes; not shown"));
    free(text);
    text = print_config(UCACHE_CONFIG_PRINT_JSON, &status);
    CU_ASSERT_PTR_NULL(strstr(text, "s3cr3t-v4lue"));
    free(text);
    unsetenv("UCACHE_TOKEN_COMMAND");

    CU_ASSERT_EQUAL(ucache_config_print(NULL, 0), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(ucache_config_print(stderr, 1u << 7), UCACHE_ERR_INVALID);
}

/* docs/configuration.md lists every variable of the table (the table is the
 * source). */
static void test_docs_list_every_variable(void)
{
    char *text, var[64];
    FILE *f = fopen("docs/configuration.md", "r");
    long len;
    size_t i;

    if (f == NULL) {
        TC_SKIP("docs/configuration.md not found in the working directory (run from the repo root)");
        return;
    }
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    rewind(f);
    text = calloc(1, (size_t)len + 1);
    CU_ASSERT_FATAL(fread(text, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    for (i = 0; i < uc_config_table_len; i++) {
        snprintf(var, sizeof(var), "| `UCACHE_%s` |", uc_config_table[i].name);
        if (strstr(text, var) == NULL) {
            fprintf(stderr, "docs/configuration.md does not list %s\n", var);
        }
        CU_ASSERT_PTR_NOT_NULL(strstr(text, var));
    }
    free(text);
}

static unsigned sink_count;
static char     sink_last[1100];

static void test_sink(void *arg, ucache_log_level_t level, const char *msg)
{
    (void)arg;
    (void)level;
    sink_count++;
    snprintf(sink_last, sizeof(sink_last), "%s", msg);
}

static void test_log_levels_and_sink(void)
{
    ucache_log_set_sink(test_sink, NULL);
    ucache_log_set_level(UCACHE_LOG_WARN);
    sink_count = 0;
    UC_INFO("not shown %d", 1);
    CU_ASSERT_EQUAL(sink_count, 0);
    UC_WARN("shown %d", 2);
    CU_ASSERT_EQUAL(sink_count, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(sink_last, "shown 2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(sink_last, " warn "));
    ucache_log_set_level(UCACHE_LOG_NONE);
    UC_ERROR("silenced");
    CU_ASSERT_EQUAL(sink_count, 1);
    ucache_log_set_level(UCACHE_LOG_WARN);
    ucache_log_set_sink(NULL, NULL);

    CU_ASSERT_EQUAL(uc_log_level_parse("debug"), UCACHE_LOG_DEBUG);
    CU_ASSERT_EQUAL(uc_log_level_parse("WARNING"), UCACHE_LOG_WARN);
    CU_ASSERT_EQUAL(uc_log_level_parse("3"), UCACHE_LOG_INFO);
    CU_ASSERT_EQUAL(uc_log_level_parse("loud"), -1);
}

static void test_init_params(void)
{
    ucache_params_t p = { .field_mask = 1u << 20 };
    ucache_stats_t st;
    ucache_h ctx = NULL;
    size_t nread, want;
    char buf[8], wbuf[8], dir[] = "/tmp/ucache-test.XXXXXX", members[64];
    const void *rec;
    FILE *f;

    CU_ASSERT_EQUAL(ucache_init(&p, &ctx), UCACHE_ERR_INVALID);
    CU_ASSERT_PTR_NULL(ctx);
    p.field_mask = UCACHE_PARAM_FIELD_CHUNK_SIZE;
    p.chunk_size = 100;
    CU_ASSERT_EQUAL(ucache_init(&p, &ctx), UCACHE_ERR_INVALID);
    CU_ASSERT_EQUAL(ucache_init(NULL, NULL), UCACHE_ERR_INVALID);

    p.field_mask = UCACHE_PARAM_FIELD_MEM_BYTES | UCACHE_PARAM_FIELD_TIMEOUT_NS |
                   UCACHE_PARAM_FIELD_MEMBERS;
    p.mem_bytes  = 64 << 20;
    p.timeout_ns = 500000000ull;
    p.members    = "nonsense";
    CU_ASSERT_EQUAL(ucache_init(&p, &ctx), UCACHE_ERR_INVALID);
    p.members    = "file:/nonexistent/ucache-nodes";
    CU_ASSERT_EQUAL(ucache_init(&p, &ctx), UCACHE_ERR_NOT_FOUND);
    CU_ASSERT_PTR_NULL(ctx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(members, sizeof(members), "dir:%s/m", dir);
    p.members    = members;
    CU_ASSERT_EQUAL_FATAL(ucache_init(&p, &ctx), UCACHE_OK);
    CU_ASSERT_EQUAL(ucache_stats_get(ctx, &st), UCACHE_OK);
    CU_ASSERT_EQUAL(st.reads, 0);
    CU_ASSERT_EQUAL(st.eps_open, 0);
    CU_ASSERT_EQUAL(st.view_nodes, 0);
    /* No cache node has joined: the reader reads the origin itself. */
    f = fopen("/etc/hostname", "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    want = fread(wbuf, 1, sizeof(wbuf), f);
    fclose(f);
    CU_ASSERT_EQUAL(ucache_read(ctx, "file:///etc/hostname", 0, sizeof(buf), buf,
                                &nread), UCACHE_OK);
    CU_ASSERT_EQUAL(nread, (want < sizeof(buf)) ? want : sizeof(buf));
    CU_ASSERT(memcmp(buf, wbuf, nread) == 0);
    CU_ASSERT_EQUAL(ucache_stats_get(ctx, &st), UCACHE_OK);
    CU_ASSERT_EQUAL(st.origin_direct, 1);
    /* A serving context is needed for a member record. */
    CU_ASSERT_EQUAL(ucache_member_record(ctx, &rec, &nread), UCACHE_ERR_INVALID);
    ucache_finalize(ctx);
    ucache_finalize(NULL);
    snprintf(members, sizeof(members), "rm -rf '%s'", dir);
    CU_ASSERT_EQUAL(system(members), 0);
}

/* A fresh directory @p dir (a mkdtemp template) with members "dir:DIR/m" in
 * @p members and a 10-byte object DIR/obj: its path in @p path, its URI in
 * @p uri (each of 64, 64 and 80 bytes). */
static void tmp_object(char *dir, char *members, char *path, char *uri)
{
    FILE *f;

    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(members, 64, "dir:%s/m", dir);
    snprintf(path, 64, "%s/obj", dir);
    snprintf(uri, 80, "file://%s", path);
    f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite("0123456789", 1, 10, f), 10);
    fclose(f);
}

/* Two contexts in one process keep their own origin settings: the second
 * ucache_init once overwrote the first's (process-wide), so a reader asked
 * to re-check objects every time (UCACHE_META_TTL=0) trusted a size an
 * hour old once another context had started. */
static void test_origin_settings_per_context(void)
{
    ucache_params_t p = { .field_mask = UCACHE_PARAM_FIELD_MEMBERS };
    char dir[] = "/tmp/ucache-test.XXXXXX", members[64], path[64], uri[80];
    ucache_h a = NULL, b = NULL;
    uint64_t size = 0;
    FILE *f;

    tmp_object(dir, members, path, uri);
    p.members = members;
    setenv("UCACHE_META_TTL", "0", 1);          /* a: ask the origin every time */
    CU_ASSERT_EQUAL_FATAL(ucache_init(&p, &a), UCACHE_OK);
    setenv("UCACHE_META_TTL", "60m", 1);        /* b: trust an answer for an hour */
    CU_ASSERT_EQUAL_FATAL(ucache_init(&p, &b), UCACHE_OK);
    unsetenv("UCACHE_META_TTL");
    CU_ASSERT_EQUAL(ucache_stat(b, uri, &size), UCACHE_OK);
    CU_ASSERT_EQUAL(size, 10);
    f = fopen(path, "a");                        /* the object grows */
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite("abcdefghij", 1, 10, f), 10);
    fclose(f);
    CU_ASSERT_EQUAL(ucache_stat(a, uri, &size), UCACHE_OK);
    CU_ASSERT_EQUAL(size, 20);                   /* a's own TTL: asked again */
    CU_ASSERT_EQUAL(ucache_stat(b, uri, &size), UCACHE_OK);
    CU_ASSERT_EQUAL(size, 20);                   /* the shared cache holds a's answer */
    ucache_finalize(a);
    ucache_finalize(b);
    snprintf(members, sizeof(members), "rm -rf '%s'", dir);
    CU_ASSERT_EQUAL(system(members), 0);
}

/* Settings by name (ucache_params_t.config, what the Python Client's
 * keyword arguments become) override the environment and reject what the
 * table does not know; the counters' JSON has every field, and says when
 * its buffer is short. */
static void test_params_config(void)
{
    const char *bad_name[] = {"NO_SUCH_SETTING=1", NULL};
    const char *bad_value[] = {"META_TTL=soon", NULL};
    const char *no_eq[] = {"META_TTL", NULL};
    const char *ttl0[] = {"UCACHE_META_TTL=0", "log_level=warn", NULL};
    ucache_params_t p = { .field_mask = UCACHE_PARAM_FIELD_MEMBERS | UCACHE_PARAM_FIELD_CONFIG };
    char dir[] = "/tmp/ucache-test.XXXXXX", members[64], path[64], uri[80], json[8192];
    ucache_stats_t st;
    ucache_h a = NULL;
    uint64_t size = 0;
    size_t need = 0;
    FILE *f;

    tmp_object(dir, members, path, uri);
    p.members = members;
    p.config = bad_name;
    CU_ASSERT_EQUAL(ucache_init(&p, &a), UCACHE_ERR_INVALID);
    p.config = bad_value;
    CU_ASSERT_EQUAL(ucache_init(&p, &a), UCACHE_ERR_INVALID);
    p.config = no_eq;
    CU_ASSERT_EQUAL(ucache_init(&p, &a), UCACHE_ERR_INVALID);
    CU_ASSERT_PTR_NULL(a);
    setenv("UCACHE_META_TTL", "60m", 1);         /* the environment says an hour */
    p.config = ttl0;                             /* the setting says every time */
    CU_ASSERT_EQUAL_FATAL(ucache_init(&p, &a), UCACHE_OK);
    unsetenv("UCACHE_META_TTL");
    CU_ASSERT_EQUAL(ucache_stat(a, uri, &size), UCACHE_OK);
    CU_ASSERT_EQUAL(size, 10);
    f = fopen(path, "a");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite("abcdefghij", 1, 10, f), 10);
    fclose(f);
    CU_ASSERT_EQUAL(ucache_stat(a, uri, &size), UCACHE_OK);
    CU_ASSERT_EQUAL(size, 20);                   /* asked again: TTL 0 won */

    CU_ASSERT_EQUAL(ucache_stats_json(a, json, 16, &need), UCACHE_ERR_MSG_TRUNCATED);
    CU_ASSERT(need > 16);
    CU_ASSERT_EQUAL(strlen(json), 15);           /* truncated, terminated */
    CU_ASSERT_EQUAL_FATAL(ucache_stats_json(a, json, sizeof(json), &need), UCACHE_OK);
    CU_ASSERT_EQUAL(strlen(json) + 1, need);
    CU_ASSERT_EQUAL(json[0], '{');
    CU_ASSERT_EQUAL(json[need - 2], '}');
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"origin_meta\":"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"owner_restarts\":0}"));
    CU_ASSERT_PTR_NULL(strstr(json, "\"stats\""));
    CU_ASSERT_EQUAL(ucache_stats_get(a, &st), UCACHE_OK);
    CU_ASSERT(st.origin_meta >= 2);
    CU_ASSERT_EQUAL(ucache_stats_format(&st, "who", json, sizeof(json)), strlen(json));
    CU_ASSERT_PTR_EQUAL(strstr(json, "{\"stats\":\"who\",\"reads\":"), json);
    ucache_finalize(a);
    snprintf(members, sizeof(members), "rm -rf '%s'", dir);
    CU_ASSERT_EQUAL(system(members), 0);
}

/* Command-line options, the one way every program parses them. */
static int opt_run(const char *line, uint64_t *size, double *watch, unsigned *word,
                   int *flag, const char **operand, char *err)
{
    static const uc_opt_t opts[] = {
        {"size", 's', UC_OPT_SIZE, 64, 1u << 20},
        {"watch", 'w', UC_OPT_REAL, 0.5, 60, .optional = 1, .dflt = 2.0},
        {"path", 300, UC_OPT_WORD, .words = "auto|get|am"},
        {"json", 'j', UC_OPT_FLAG},
        {"count", 'c', UC_OPT_UINT, 1, 10},
        {"timeout", 'T', UC_OPT_TIME, 1000, 5e9},
        {NULL, 0, UC_OPT_FLAG}
    };
    char buf[256], *argv[16], *tok, *save;
    const uc_opt_t *o;
    uc_optparse_t op;
    uc_optval_t v;
    int argc = 0, c;

    snprintf(buf, sizeof(buf), "%s", line);
    for (tok = strtok_r(buf, " ", &save); (tok != NULL) && (argc < 15);
         tok = strtok_r(NULL, " ", &save)) {
        argv[argc++] = tok;
    }
    argv[argc] = NULL;
    *operand = NULL;
    if (uc_opt_init(&op, argc, argv, 2, opts, err, 128) != 0) {
        return -2;
    }
    while ((c = uc_opt_next(&op, &v, &o, err, 128)) > 0) {
        CU_ASSERT_EQUAL(o->key, c);
        switch (c) {
        case 's': *size = v.u; break;
        case 'w': *watch = v.d; break;
        case 300: *word = (unsigned)v.u; break;
        case 'j': *flag = 1; break;
        case 'c': *size = v.u; break;
        case 'T': *size = v.u; break;
        }
    }
    if ((c == 0) && (op.optind < argc)) {
        *operand = (strcmp(argv[op.optind], "x") == 0) ? "x" : "other";
    }
    return c;
}

static void test_opt(void)
{
    uint64_t size = 0;
    double watch = 0;
    unsigned word = 9;
    int flag = 0;
    const char *operand;
    char err[128];

    CU_ASSERT_EQUAL(opt_run("prog cmd --size 4K x --path get -j", &size, &watch, &word,
                            &flag, &operand, err), 0);
    CU_ASSERT_EQUAL(size, 4096);
    CU_ASSERT_EQUAL(word, 1);
    CU_ASSERT_EQUAL(flag, 1);
    CU_ASSERT_PTR_NOT_NULL(operand);          /* the operand, after the options */
    CU_ASSERT_STRING_EQUAL(operand, "x");
    CU_ASSERT_EQUAL(opt_run("prog cmd -s 1M --watch", &size, &watch, &word, &flag, &operand,
                            err), 0);
    CU_ASSERT_EQUAL(size, 1u << 20);
    CU_ASSERT_DOUBLE_EQUAL(watch, 2.0, 1e-9);  /* an optional value left out */
    CU_ASSERT_EQUAL(opt_run("prog cmd --watch=0.5 -T 2s", &size, &watch, &word, &flag,
                            &operand, err), 0);
    CU_ASSERT_DOUBLE_EQUAL(watch, 0.5, 1e-9);
    CU_ASSERT_EQUAL(size, 2000000000ull);
    CU_ASSERT_PTR_NULL(operand);
    /* refusals, each naming the option and the value it wants */
    CU_ASSERT_EQUAL(opt_run("prog cmd --size 1G", &size, &watch, &word, &flag, &operand,
                            err), -1);
    CU_ASSERT_STRING_EQUAL(err, "bad --size '1G' (64 .. 1M)");
    CU_ASSERT_EQUAL(opt_run("prog cmd --size 3X", &size, &watch, &word, &flag, &operand,
                            err), -1);
    CU_ASSERT_EQUAL(opt_run("prog cmd --path rdma", &size, &watch, &word, &flag, &operand,
                            err), -1);
    CU_ASSERT_STRING_EQUAL(err, "bad --path 'rdma' (auto|get|am)");
    CU_ASSERT_EQUAL(opt_run("prog cmd --path au", &size, &watch, &word, &flag, &operand,
                            err), -1);                          /* no prefixes of words */
    CU_ASSERT_EQUAL(opt_run("prog cmd --watch=0", &size, &watch, &word, &flag, &operand,
                            err), -1);
    CU_ASSERT_EQUAL(opt_run("prog cmd --watch=1x", &size, &watch, &word, &flag, &operand,
                            err), -1);
    CU_ASSERT_EQUAL(opt_run("prog cmd -c 0", &size, &watch, &word, &flag, &operand, err),
                    -1);
    CU_ASSERT_STRING_EQUAL(err, "bad --count '0' (1 .. 10)");
    CU_ASSERT_EQUAL(opt_run("prog cmd -c -3", &size, &watch, &word, &flag, &operand, err),
                    -1);
    CU_ASSERT_EQUAL(opt_run("prog cmd -c 99999999999999999999999", &size, &watch, &word,
                            &flag, &operand, err), -1);        /* past uint64 */
    CU_ASSERT_EQUAL(opt_run("prog cmd -T 1ns", &size, &watch, &word, &flag, &operand, err),
                    -1);
    CU_ASSERT_EQUAL(opt_run("prog cmd --bogus", &size, &watch, &word, &flag, &operand, err),
                    -1);
    CU_ASSERT_STRING_EQUAL(err, "unknown option '--bogus'");
    CU_ASSERT_EQUAL(opt_run("prog cmd -q", &size, &watch, &word, &flag, &operand, err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown option"));
    CU_ASSERT_EQUAL(opt_run("prog cmd --size", &size, &watch, &word, &flag, &operand, err),
                    -1);
    CU_ASSERT_STRING_EQUAL(err, "option '--size' needs a value");
    /* a fresh parse after a refusal starts over */
    CU_ASSERT_EQUAL(opt_run("prog cmd -j", &size, &watch, &word, &flag, &operand, err), 0);
}

static void test_lat_percentile(void)
{
    uint64_t v[100];
    int i;

    for (i = 0; i < 100; i++) {
        v[i] = (uint64_t)i + 1;
    }
    CU_ASSERT_EQUAL(uc_lat_percentile(v, 100, 0.50), 50);
    CU_ASSERT_EQUAL(uc_lat_percentile(v, 100, 0.99), 99);
    CU_ASSERT_EQUAL(uc_lat_percentile(v, 100, 1.0), 100);
    CU_ASSERT_EQUAL(uc_lat_percentile(v, 1, 0.5), 1);
    CU_ASSERT_EQUAL(uc_lat_percentile(v, 0, 0.5), 0);
}

/* The half-octave bins: exact at their edges, as floor(2 log2 x) is. */
static void test_lat_histogram(void)
{
    uint64_t v[] = { 0, 1, 2, 3, 4, 5, 6, 1000, 1448, 1449, 1ull << 40, UINT64_MAX };
    uint64_t x = 88172645463325252ull, s[4096];
    unsigned want[UC_LAT_BINS] = { 0 }, b, i;
    uc_lat_t lat;

    uc_lat_sort(v, sizeof(v) / sizeof(v[0]));
    uc_lat_stats(v, sizeof(v) / sizeof(v[0]), &lat);
    CU_ASSERT_EQUAL(lat.hist[0], 2);       /* 0 and 1 */
    CU_ASSERT_EQUAL(lat.hist[2], 1);       /* 2: [2, 2.83) */
    CU_ASSERT_EQUAL(lat.hist[3], 1);       /* 3: [2.83, 4) */
    CU_ASSERT_EQUAL(lat.hist[4], 2);       /* 4, 5: [4, 5.66) */
    CU_ASSERT_EQUAL(lat.hist[5], 1);       /* 6 */
    CU_ASSERT_EQUAL(lat.hist[19], 1);      /* 1000: [724, 1024) */
    CU_ASSERT_EQUAL(lat.hist[20], 1);      /* 1448 < 1024 * sqrt 2 = 1448.15 */
    CU_ASSERT_EQUAL(lat.hist[21], 1);      /* 1449 */
    CU_ASSERT_EQUAL(lat.hist[UC_LAT_BINS - 1], 2); /* the rest */
    CU_ASSERT_DOUBLE_EQUAL(lat.max_us, (double)UINT64_MAX / 1e3, 1e6);
    /* random samples against the floating-point formula, away from edges */
    for (i = 0; i < 4096; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        s[i] = 2 + x % 10000000;
        b = (unsigned)floor(2.0 * log2((double)s[i]));
        if (fabs(2.0 * log2((double)s[i]) - round(2.0 * log2((double)s[i]))) > 1e-9) {
            want[(b >= UC_LAT_BINS) ? UC_LAT_BINS - 1 : b]++;
        } else {
            s[i] = 3;      /* on an edge: counted in bin 3 */
            want[3]++;
        }
    }
    uc_lat_sort(s, 4096);
    uc_lat_stats(s, 4096, &lat);
    for (i = 0; i < UC_LAT_BINS; i++) {
        CU_ASSERT_EQUAL(lat.hist[i], want[i]);
    }
    CU_ASSERT(lat.p50_us <= lat.p90_us);
    CU_ASSERT(lat.p99_us <= lat.max_us);
}

int main(void)
{
    static const tc_test_t status_tests[] = {
        {"status_strings", test_status_strings},
        {NULL, NULL}
    };
    static const tc_test_t config_tests[] = {
        {"parse_size", test_parse_size},
        {"parse_time", test_parse_time},
        {"format", test_format_roundtrip},
        {"defaults_and_env", test_config_defaults_and_env},
        {"print", test_config_print},
        {"docs_list_every_variable", test_docs_list_every_variable},
        {NULL, NULL}
    };
    static const tc_test_t log_tests[] = {
        {"levels_and_sink", test_log_levels_and_sink},
        {NULL, NULL}
    };
    static const tc_test_t opt_tests[] = {
        {"options", test_opt},
        {NULL, NULL}
    };
    static const tc_test_t latency_tests[] = {
        {"percentile", test_lat_percentile},
        {"histogram", test_lat_histogram},
        {NULL, NULL}
    };
    static const tc_test_t context_tests[] = {
        {"init_params", test_init_params},
        {"origin_settings_per_context", test_origin_settings_per_context},
        {"params_config", test_params_config},
        {NULL, NULL}
    };

    if ((CU_initialize_registry() != CUE_SUCCESS) ||
        tc_add_suite("status", status_tests) ||
        tc_add_suite("config", config_tests) ||
        tc_add_suite("log", log_tests) ||
        tc_add_suite("latency", latency_tests) ||
        tc_add_suite("opt", opt_tests) ||
        tc_add_suite("context", context_tests)) {
        return 2;
    }
    return tc_run();
}
