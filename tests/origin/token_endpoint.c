/*
 * token_endpoint.c - the Entra ID token endpoint and the instance metadata
 * service (IMDS) of the identity tests, on 127.0.0.1, checking every
 * exchange request as Azure would:
 *   POST /TENANT/oauth2/v2.0/token   (Azure Workload Identity) - a form
 *        with grant_type=client_credentials, the jwt-bearer assertion type,
 *        client_assertion equal to the federated token file's content now,
 *        client_id CLIENT and scope https://storage.azure.com/.default;
 *        answers {"access_token":TOKEN,"expires_in":EXPIRES,...} (a number)
 *   GET /metadata/identity/oauth2/token?api-version=...&resource=
 *        https://storage.azure.com/[&client_id=CLIENT] with "Metadata: true";
 *        answers as IMDS does ("expires_in" a string)
 *   GET /_ctl/stats  {"wi":N,"wi_bad":N,"imds":N,"imds_bad":N}
 * A request that fails a check answers 400 or 401 with an "error" code.
 * Usage: token_endpoint PORT TENANT CLIENT ASSERTION_FILE TOKEN EXPIRES
 * (PORT 0: any); prints "port N" when it listens.  Runs until SIGTERM.
 */
#include "tests/origin/httpd.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *tenant, *client, *assertion_file, *token, *expires;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned wi, wi_bad, imds, imds_bad;

typedef struct upload {
    char   body[32768];
    size_t len;
    int    over;
} upload_t;

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *text)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

/* Decode %XX and '+' in place. */
static void url_decode(char *s)
{
    char *o = s;
    unsigned v;

    for (; *s != '\0'; s++) {
        if ((*s == '%') && isxdigit((unsigned char)s[1]) && isxdigit((unsigned char)s[2]) &&
            (sscanf(s + 1, "%2x", &v) == 1)) {
            *o++ = (char)v;
            s += 2;
        } else {
            *o++ = (*s == '+') ? ' ' : *s;
        }
    }
    *o = '\0';
}

/* The value of form field @p name in @p form (decoded, into @p out). */
static int form_get(const char *form, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    const char *p = form, *e;

    while (p != NULL && *p != '\0') {
        e = strchr(p, '&');
        if ((strncmp(p, name, n) == 0) && (p[n] == '=')) {
            snprintf(out, cap, "%.*s", (int)((e ? (size_t)(e - p) : strlen(p)) - n - 1),
                     p + n + 1);
            url_decode(out);
            return 1;
        }
        p = e ? e + 1 : NULL;
    }
    return 0;
}

static int assertion_is(const char *got)
{
    char want[16384];
    size_t n;
    FILE *f = fopen(assertion_file, "r");

    if (f == NULL) {
        return 0;
    }
    n = fread(want, 1, sizeof(want) - 1, f);
    fclose(f);
    while ((n > 0) && isspace((unsigned char)want[n - 1])) {
        n--;
    }
    want[n] = '\0';
    return (n > 0) && (strcmp(got, want) == 0);
}

static const char *check_wi(struct MHD_Connection *c, const char *form)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    char v[16384];

    if ((ct == NULL) || (strncmp(ct, "application/x-www-form-urlencoded", 33) != 0)) {
        return "invalid_request";
    }
    if (!form_get(form, "grant_type", v, sizeof(v)) || strcmp(v, "client_credentials")) {
        return "unsupported_grant_type";
    }
    if (!form_get(form, "client_assertion_type", v, sizeof(v)) ||
        strcmp(v, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")) {
        return "invalid_request";
    }
    if (!form_get(form, "client_id", v, sizeof(v)) || strcmp(v, client)) {
        return "unauthorized_client";
    }
    if (!form_get(form, "scope", v, sizeof(v)) ||
        strcmp(v, "https://storage.azure.com/.default")) {
        return "invalid_scope";
    }
    if (!form_get(form, "client_assertion", v, sizeof(v)) || !assertion_is(v)) {
        return "invalid_client";
    }
    return NULL;
}

static const char *check_imds(struct MHD_Connection *c)
{
    const char *m   = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Metadata");
    const char *api = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "api-version");
    const char *res = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "resource");
    const char *cid = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "client_id");

    if ((m == NULL) || strcmp(m, "true")) {
        return "invalid_request";
    }
    if ((api == NULL) || (res == NULL) || strcmp(res, "https://storage.azure.com/")) {
        return "invalid_resource";
    }
    if ((cid != NULL) && strcmp(cid, client)) {
        return "invalid_client";
    }
    return NULL;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version,
                               const char *data, size_t *data_len, void **state)
{
    char path[512], out[1024];
    const char *bad;
    upload_t *u = *state;

    (void)cls;
    (void)version;
    if (strcmp(method, "POST") == 0) {
        if (u == NULL) {             /* the first call: headers only */
            u = calloc(1, sizeof(*u));
            *state = u;
            return (u != NULL) ? MHD_YES : MHD_NO;
        }
        if (*data_len > 0) {
            if (u->len + *data_len >= sizeof(u->body)) {
                u->over = 1;
            } else {
                memcpy(u->body + u->len, data, *data_len);
                u->len += *data_len;
            }
            *data_len = 0;
            return MHD_YES;
        }
        u->body[u->len] = '\0';
        snprintf(path, sizeof(path), "/%s/oauth2/v2.0/token", tenant);
        bad = u->over ? "invalid_request" : (strcmp(url, path) != 0) ? "invalid_tenant" :
              check_wi(c, u->body);
        free(u);
        *state = NULL;
        pthread_mutex_lock(&lock);
        wi     += (bad == NULL);
        wi_bad += (bad != NULL);
        pthread_mutex_unlock(&lock);
        if (bad != NULL) {
            snprintf(out, sizeof(out), "{\"error\":\"%s\",\"error_description\":"
                     "\"AADSTS700016: the request failed a check\"}", bad);
            return reply(c, strcmp(bad, "invalid_client") ? 400 : 401, out);
        }
        snprintf(out, sizeof(out), "{\"token_type\":\"Bearer\",\"expires_in\":%s,"
                 "\"ext_expires_in\":%s,\"access_token\":\"%s\"}", expires, expires, token);
        return reply(c, 200, out);
    }
    if (strcmp(url, "/_ctl/stats") == 0) {
        pthread_mutex_lock(&lock);
        snprintf(out, sizeof(out), "{\"wi\":%u,\"wi_bad\":%u,\"imds\":%u,\"imds_bad\":%u}\n",
                 wi, wi_bad, imds, imds_bad);
        pthread_mutex_unlock(&lock);
        return reply(c, 200, out);
    }
    if (strcmp(url, "/metadata/identity/oauth2/token") == 0) {
        bad = check_imds(c);
        pthread_mutex_lock(&lock);
        imds     += (bad == NULL);
        imds_bad += (bad != NULL);
        pthread_mutex_unlock(&lock);
        if (bad != NULL) {
            snprintf(out, sizeof(out), "{\"error\":\"%s\"}", bad);
            return reply(c, 400, out);
        }
        snprintf(out, sizeof(out), "{\"access_token\":\"%s\",\"client_id\":\"%s\","
                 "\"expires_in\":\"%s\",\"expires_on\":\"0\",\"resource\":"
                 "\"https://storage.azure.com/\",\"token_type\":\"Bearer\"}", token, client,
                 expires);
        return reply(c, 200, out);
    }
    return reply(c, 404, "{\"error\":\"not_found\"}");
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: token_endpoint PORT TENANT CLIENT ASSERTION_FILE TOKEN "
                "EXPIRES\n");
        return 2;
    }
    tenant         = argv[2];
    client         = argv[3];
    assertion_file = argv[4];
    token          = argv[5];
    expires        = argv[6];
    return httpd_run("token_endpoint", argv[1], handler);
}
