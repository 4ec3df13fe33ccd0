/*
 * fuzz_cred.c - credential sources (origin/cred.c, origin/origin_azure.c):
 * the ucache credentials file and AWS's shared files (ini: "NAME = value",
 * [sections], comments), from a memfd holding the input; and an Azure
 * connection string ("Key=value;..."), from the environment.  The first
 * byte picks which.  Properties: a value found is terminated, trimmed, on
 * one line; a connection string's values have no control characters, its
 * endpoint is http(s):// with no trailing '/', and its key and SAS are
 * taken only for the account it names (or, naming none, with its own
 * BlobEndpoint).
 */
#include "origin/cred.h"
#include "origin/origin_azure.h"
#include "tests/fuzz/fuzz.h"

#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static bool fz_ctl(const char *v)
{
    for (; *v != '\0'; v++) {
        if (((unsigned char)*v < 0x20) || (*v == 0x7f)) {
            return true;
        }
    }
    return false;
}

static void fz_value(const char *v, size_t cap)
{
    size_t n;

    FZ_CHECK(memchr(v, '\0', cap) != NULL);
    n = strlen(v);
    FZ_CHECK(strchr(v, '\n') == NULL);
    FZ_CHECK((n == 0) || ((v[0] != ' ') && (v[0] != '\t') && (v[n - 1] != ' ') &&
                          (v[n - 1] != '\t') && (v[n - 1] != '\r')));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const sections[] = { "", "default", "profile x" };
    static const char *const keys[] = { "aws_access_key_id", "AWS_SECRET_ACCESS_KEY", "region" };
    char path[64], v[256], conn[4096];
    us_az_cred_t c;
    unsigned i;
    int fd;

    fz_quiet();
    if (size < 1) {
        return 0;
    }
    if (data[0] & 1) {
        if (size - 1 >= sizeof(conn)) {
            return 0;
        }
        memcpy(conn, data + 1, size - 1);
        conn[size - 1] = '\0';
        setenv("AZURE_STORAGE_CONNECTION_STRING", conn, 1);
        unsetenv("AZURE_STORAGE_ACCOUNT");
        us_az_cred_load("acct1", &c);
        FZ_CHECK(memchr(c.endpoint, '\0', sizeof(c.endpoint)) != NULL);
        FZ_CHECK(!fz_ctl(c.endpoint) && !fz_ctl(c.key) && !fz_ctl(c.sas));
        FZ_CHECK((c.endpoint[0] == '\0') ||
                 (((strncmp(c.endpoint, "http://", 7) == 0) ||
                   (strncmp(c.endpoint, "https://", 8) == 0)) &&
                  (c.endpoint[strlen(c.endpoint) - 1] != '/')));
        FZ_CHECK(memchr(c.key, '\0', sizeof(c.key)) && memchr(c.sas, '\0', sizeof(c.sas)));
        if (((c.key[0] != '\0') || (c.sas[0] != '\0')) && (strstr(conn, "AccountName=acct1") == NULL)) {
            FZ_CHECK(c.endpoint[0] != '\0');   /* a string naming no account: its endpoint */
        }
        unsetenv("AZURE_STORAGE_CONNECTION_STRING");
        return 0;
    }
    fd = memfd_create("cred", MFD_CLOEXEC);
    if ((fd < 0) || (write(fd, data + 1, size - 1) != (ssize_t)(size - 1))) {
        if (fd >= 0) {
            close(fd);
        }
        return 0;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    for (i = 0; i < 3; i++) {
        if (us_ini_get(path, sections[i], keys[i], v, sizeof(v))) {
            fz_value(v, sizeof(v));
        }
    }
    close(fd);
    return 0;
}
