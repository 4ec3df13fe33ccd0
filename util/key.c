/*
 * key.c - loading, generating and using the fabric's keys (key.h).
 */
#include "key.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

struct uc_mac {
    EVP_MAC     *alg;
    EVP_MAC_CTX *ctx;   /* keyed once; each MAC re-initialises it with the key */
};

static int uc_hexval(int c)
{
    return isdigit(c) ? c - '0' : (isxdigit(c) ? (tolower(c) - 'a' + 10) : -1);
}

ucache_status_t uc_key_load(const char *path, uc_key_t *key)
{
    uint8_t buf[UC_KEY_LEN * 2 + 3];
    struct stat st;
    ssize_t n;
    size_t len, i;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        UC_ERROR("cannot open the key file %s: %m", path);
        return UCACHE_ERR_INVALID;
    }
    if ((fstat(fd, &st) != 0) || !S_ISREG(st.st_mode)) {
        UC_ERROR("the key file %s is not a regular file", path);
        close(fd);
        return UCACHE_ERR_INVALID;
    }
    if (st.st_mode & (S_IRWXO | S_IWGRP)) {
        UC_ERROR("the key file %s is open to others (mode %03o): chmod 600 it (a "
                 "Kubernetes Secret: defaultMode 0400)", path, (unsigned)(st.st_mode & 0777));
        close(fd);
        return UCACHE_ERR_INVALID;
    }
    n = read(fd, buf, sizeof(buf));
    close(fd);
    len = (n > 0) ? (size_t)n : 0;
    if (len == UC_KEY_LEN) {
        memcpy(key->b, buf, UC_KEY_LEN);
        OPENSSL_cleanse(buf, sizeof(buf));
        return UCACHE_OK;
    }
    while ((len > 0) && ((buf[len - 1] == '\n') || (buf[len - 1] == '\r'))) {
        len--;
    }
    if (len == UC_KEY_LEN * 2) {
        for (i = 0; i < UC_KEY_LEN; i++) {
            int hi = uc_hexval(buf[2 * i]), lo = uc_hexval(buf[2 * i + 1]);

            if ((hi < 0) || (lo < 0)) {
                break;
            }
            key->b[i] = (uint8_t)(hi << 4 | lo);
        }
        if (i == UC_KEY_LEN) {
            OPENSSL_cleanse(buf, sizeof(buf));
            return UCACHE_OK;
        }
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    OPENSSL_cleanse(key->b, sizeof(key->b));
    UC_ERROR("the key file %s holds %zd bytes: a key is 32 bytes, or 64 hex digits "
             "(ucache keygen FILE makes one)", path, n);
    return UCACHE_ERR_INVALID;
}

ucache_status_t uc_key_generate(const char *path)
{
    uint8_t key[UC_KEY_LEN];
    size_t got = 0;
    ssize_t n;
    int fd;

    while (got < sizeof(key)) {
        n = getrandom(key + got, sizeof(key) - got, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            UC_ERROR("getrandom: %m");
            return UCACHE_ERR_IO;
        }
        got += (size_t)n;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        OPENSSL_cleanse(key, sizeof(key));
        UC_ERROR("cannot create the key file %s: %m", path);
        return (errno == EEXIST) ? UCACHE_ERR_EXISTS : UCACHE_ERR_IO;
    }
    n = write(fd, key, sizeof(key));
    OPENSSL_cleanse(key, sizeof(key));
    if ((n != (ssize_t)sizeof(key)) || (fsync(fd) != 0) || (close(fd) != 0)) {
        UC_ERROR("cannot write the key file %s: %m", path);
        unlink(path);
        return UCACHE_ERR_IO;
    }
    return UCACHE_OK;
}

ucache_status_t uc_mac_create(const uc_key_t *key, uc_mac_t **mac_p)
{
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end()
    };
    uc_mac_t *mac = calloc(1, sizeof(*mac));

    if (mac == NULL) {
        return UCACHE_ERR_NO_MEMORY;
    }
    mac->alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
    mac->ctx = (mac->alg != NULL) ? EVP_MAC_CTX_new(mac->alg) : NULL;
    if ((mac->ctx == NULL) || !EVP_MAC_init(mac->ctx, key->b, UC_KEY_LEN, params)) {
        UC_ERROR("libcrypto has no HMAC-SHA256");
        uc_mac_destroy(mac);
        return UCACHE_ERR_UNSUPPORTED;
    }
    *mac_p = mac;
    return UCACHE_OK;
}

void uc_mac_destroy(uc_mac_t *mac)
{
    if (mac != NULL) {
        EVP_MAC_CTX_free(mac->ctx);
        EVP_MAC_free(mac->alg);
        free(mac);
    }
}

ucache_status_t uc_mac_compute(uc_mac_t *mac, const void *a, size_t alen,
                               const void *b, size_t blen, uint8_t out[UC_MAC_LEN])
{
    size_t outl = 0;

    if (!EVP_MAC_init(mac->ctx, NULL, 0, NULL) ||   /* the same key again */
        !EVP_MAC_update(mac->ctx, a, alen) ||
        ((blen > 0) && !EVP_MAC_update(mac->ctx, b, blen)) ||
        !EVP_MAC_final(mac->ctx, out, &outl, UC_MAC_LEN) || (outl != UC_MAC_LEN)) {
        return UCACHE_ERR_TRANSPORT;
    }
    return UCACHE_OK;
}

bool uc_mac_equal(const uint8_t x[UC_MAC_LEN], const uint8_t y[UC_MAC_LEN])
{
    return CRYPTO_memcmp(x, y, UC_MAC_LEN) == 0;
}
