/*
 * manifest.h - a dataset manifest (manifest.c): every object under some
 * prefixes with the size and version it had when the manifest was
 * written, so a job that pins it never asks the origin (or an owner) about
 * them.  Text, one object a line:
 *
 *   # ucache manifest 1
 *   # prefix az://account/container/train/
 *   az://account/container/train/a.tar<TAB>SIZE<TAB>VERSION<TAB>ETAG
 *
 * SIZE in decimal, VERSION 16 hex digits (the origin backend's digest),
 * ETAG as the origin sent it, printable, possibly empty.  A manifest is
 * read like any input: every field checked, a bad line an error naming it.
 */
#ifndef UF_MANIFEST_H
#define UF_MANIFEST_H

#include "origin/origin.h"

#include <stdbool.h>
#include <stdio.h>

#define UF_MANIFEST_MAGIC  "# ucache manifest 1"
#define UF_MANIFEST_PREFIX "# prefix "

typedef struct uf_manifest uf_manifest_t;

/** What one manifest line is. */
typedef enum { UF_MLINE_OBJECT, UF_MLINE_PREFIX, UF_MLINE_OTHER } uf_mline_t;

/**
 * Parse line @p line (terminated, its newline removed; modified in place):
 * an object (*uri_p, *obj_p, and *etag_p its ETag in the line, if not
 * NULL), a prefix (*uri_p), or another comment or a blank line.
 * UCACHE_ERR_INVALID if malformed.
 */
ucache_status_t uf_manifest_line(char *line, uf_mline_t *kind_p, const char **uri_p,
                                 us_object_t *obj_p, const char **etag_p);

/** Write @p uri's line to @p out; false if it has no place in a manifest
 *  (a tab, a newline or a query - a secret - in the URI). */
bool uf_manifest_put(FILE *out, const char *uri, const us_object_t *obj);

/** Parse manifest @p text of @p len bytes (not terminated).
 *  UCACHE_ERR_INVALID (logged with the line number) if malformed. */
ucache_status_t uf_manifest_parse(const char *text, size_t len, uf_manifest_t **m_p);

/** Read manifest file @p path. */
ucache_status_t uf_manifest_load(const char *path, uf_manifest_t **m_p);

void uf_manifest_free(uf_manifest_t *m);

/** @p uri's size and version as the manifest gives them; false if absent. */
bool uf_manifest_get(const uf_manifest_t *m, const char *uri, us_object_t *obj_p);

/** Whether @p prefix lies under a prefix the manifest was written for: its
 *  listing is the manifest's. */
bool uf_manifest_covers(const uf_manifest_t *m, const char *prefix);

/** Call @p fn for each object of the manifest under @p prefix, in URI
 *  order; the first non-OK of fn. */
ucache_status_t uf_manifest_list(const uf_manifest_t *m, const char *prefix,
                                 us_origin_list_fn_t fn, void *arg);

/** Objects in the manifest. */
size_t uf_manifest_count(const uf_manifest_t *m);

#endif
