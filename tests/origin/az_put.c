/*
 * az_put.c - what the Azure tests need of Blob storage beyond reading:
 * create a container and upload files as block blobs (Shared Key, from
 * AZURE_STORAGE_CONNECTION_STRING), or print an account SAS for reading.
 *   az_put CONTAINER FILE...   upload each FILE as CONTAINER/basename(FILE)
 *   az_put --sas               print a read/list account SAS (no '?')
 * Uses the library's signing (origin/origin_azure.c); exit 0 on success.
 */
#include "origin/origin_azure.h"

#include <curl/curl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static us_az_cred_t cred;
static char eppath[512];

static int put(const char *path_q, const char *canon_extra, const char *file)
{
    char url[2048], sts[4096], sig[128], date[64], h1[256], h2[256], h3[256], len[32] = "";
    struct curl_slist *hdrs = NULL;
    const char *q = strchr(path_q, '?');
    FILE *f = NULL;
    struct stat st;
    long code = 0;
    CURL *c;
    int rc;

    if (file != NULL) {
        if ((stat(file, &st) != 0) || ((f = fopen(file, "rb")) == NULL)) {
            return 1;
        }
        if (st.st_size > 0) {
            snprintf(len, sizeof(len), "%lld", (long long)st.st_size);
        }
    }
    us_az_date(date, sizeof(date));
    snprintf(sts, sizeof(sts), "PUT\n\n\n%s\n\n%s\n\n\n\n\n\n\n%sx-ms-date:%s\nx-ms-version:%s\n"
             "/%s%s%.*s%s", len, file ? "application/octet-stream" : "",
             file ? "x-ms-blob-type:BlockBlob\n" : "", date, US_AZ_VERSION, cred.account,
             eppath, q ? (int)(q - path_q) : (int)strlen(path_q), path_q, canon_extra);
    if (us_az_sign(cred.key, sts, sig, sizeof(sig)) != UCACHE_OK) {
        return 1;
    }
    snprintf(url, sizeof(url), "%s%s", cred.endpoint, path_q);
    snprintf(h1, sizeof(h1), "x-ms-date: %s", date);
    snprintf(h2, sizeof(h2), "Authorization: SharedKey %s:%s", cred.account, sig);
    snprintf(h3, sizeof(h3), "x-ms-version: %s", US_AZ_VERSION);
    hdrs = curl_slist_append(hdrs, h1);
    hdrs = curl_slist_append(hdrs, h2);
    hdrs = curl_slist_append(hdrs, h3);
    if (file != NULL) {
        hdrs = curl_slist_append(hdrs, "x-ms-blob-type: BlockBlob");
        hdrs = curl_slist_append(hdrs, "Content-Type: application/octet-stream");
    } else {
        hdrs = curl_slist_append(hdrs, "Content-Type:");  /* none */
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READDATA, f);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)(file ? st.st_size : 0));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    if (f == NULL) {
        curl_easy_setopt(c, CURLOPT_READFUNCTION, NULL);
        curl_easy_setopt(c, CURLOPT_READDATA, stdin); /* never read: size 0 */
    }
    rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    if (f != NULL) {
        fclose(f);
    }
    if ((rc != CURLE_OK) || ((code != 201) && (code != 409))) {
        fprintf(stderr, "az_put: PUT %s: curl %d, HTTP %ld\n", path_q, rc, code);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *conn = getenv("AZURE_STORAGE_CONNECTION_STRING"), *ep;
    char name[64] = "", sts[512], sig[128], path[1024], *enc;
    int i;

    if ((conn == NULL) || (argc < 2)) {
        fprintf(stderr, "usage: az_put CONTAINER FILE... | az_put --sas "
                "(with AZURE_STORAGE_CONNECTION_STRING)\n");
        return 2;
    }
    {   /* the account named in the connection string */
        const char *p = strstr(conn, "AccountName=");
        if (p != NULL) {
            p += 12;
            snprintf(name, sizeof(name), "%.*s", (int)strcspn(p, ";"), p);
        }
    }
    us_az_cred_load(name, &cred);
    ep = strstr(cred.endpoint, "://");
    ep = ep ? strchr(ep + 3, '/') : NULL;
    snprintf(eppath, sizeof(eppath), "%s", ep ? ep : "");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (strcmp(argv[1], "--sas") == 0) {
        snprintf(sts, sizeof(sts), "%s\nrl\nb\nsco\n\n2035-01-01T00:00:00Z\n\nhttps,http\n%s\n\n",
                 cred.account, US_AZ_VERSION);
        if (us_az_sign(cred.key, sts, sig, sizeof(sig)) != UCACHE_OK) {
            return 1;
        }
        enc = curl_easy_escape(NULL, sig, 0);
        printf("sv=%s&ss=b&srt=sco&sp=rl&se=2035-01-01T00%%3A00%%3A00Z&spr=https%%2Chttp"
               "&sig=%s\n", US_AZ_VERSION, enc);
        curl_free(enc);
        return 0;
    }
    snprintf(path, sizeof(path), "/%s?restype=container", argv[1]);
    if (put(path, "\nrestype:container", NULL) != 0) {
        return 1;
    }
    for (i = 2; i < argc; i++) {
        snprintf(path, sizeof(path), "/%s/%s", argv[1], basename(argv[i]));
        if (put(path, "", argv[i]) != 0) {
            return 1;
        }
    }
    return 0;
}
