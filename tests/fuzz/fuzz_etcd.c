/*
 * fuzz_etcd.c - what etcd's v3 JSON gateway sends (fabric/etcd.c
 * uf_etcd_parse: lease, range, txn, watch and auth replies, error replies)
 * and the node records read out of etcd (fabric/member_etcd.c
 * uf_etcd_record_decode, uf_etcd_config_decode).  The first byte picks the
 * parser.  Properties:
 * an accepted reply's keys and values are within their limits and
 * terminated, its revisions are not negative, a refused one holds nothing;
 * an accepted record names a node by its listener (id = the listener's
 * hash), with slots in range, and encodes back to a record that decodes
 * to the same node.
 */
#include "fabric/etcd.h"
#include "fabric/member.h"
#include "fabric/place.h"
#include "tests/fuzz/fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fz_record(const char *buf, size_t len)
{
    uf_member_t m, d;
    char listen[UF_HOST_MAX + 8], *json;
    bool draining;

    if (uf_etcd_record_decode(buf, len, &m, &draining) != UCACHE_OK) {
        return;
    }
    FZ_CHECK(memchr(m.host, '\0', sizeof(m.host)) != NULL);
    FZ_CHECK(memchr(m.zone, '\0', sizeof(m.zone)) != NULL);
    FZ_CHECK((m.port > 0) && (m.weight >= 1) && (m.weight <= UF_MAX_WEIGHT));
    FZ_CHECK((uint64_t)m.slot0 + m.weight <= UF_MAX_SLOTS);
    FZ_CHECK((m.addr == NULL) && (m.rkey == NULL));
    snprintf(listen, sizeof(listen), "%s:%u", m.host, m.port);
    FZ_CHECK(m.id == uf_member_id_of(listen));
    FZ_CHECK(uf_etcd_record_encode(&m, draining, &json) == UCACHE_OK);
    FZ_CHECK(uf_etcd_record_decode(json, strlen(json), &d, NULL) == UCACHE_OK);
    FZ_CHECK((d.id == m.id) && (d.slot0 == m.slot0) && (d.weight == m.weight) &&
             (d.port == m.port) && (d.mem_bytes == m.mem_bytes) &&
             (strcmp(d.host, m.host) == 0) && (strcmp(d.zone, m.zone) == 0));
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uf_etcd_kind_t kinds[] = { UF_ETCD_LEASE_GRANT, UF_ETCD_KEEPALIVE,
                                            UF_ETCD_RANGE, UF_ETCD_TXN, UF_ETCD_WATCH,
                                            UF_ETCD_AUTH, UF_ETCD_PLAIN,
                                            UF_ETCD_STATUS };
    const char *buf = (const char *)data + 1;
    size_t len = (size > 0) ? size - 1 : 0;
    ucache_status_t status;
    uf_etcd_reply_t r;
    uint32_t i;

    fz_quiet();
    if (size == 0) {
        return 0;
    }
    if (data[0] % 10 == 8) {
        fz_record(buf, len);
        return 0;
    }
    if (data[0] % 10 == 9) {
        uint32_t slots;
        uint64_t bytes;

        if (uf_etcd_config_decode(buf, len, &slots, &bytes) == UCACHE_OK) {
            FZ_CHECK((slots >= 8) && (slots <= UF_MAX_SLOTS) && !(slots & (slots - 1)));
            FZ_CHECK(bytes >= (1u << 20));
        }
        return 0;
    }
    status = uf_etcd_parse(kinds[data[0] % 10], buf, len, &r);
    if (status != UCACHE_OK) {
        FZ_CHECK((r.kvs == NULL) && (r.nkvs == 0));
        return 0;
    }
    FZ_CHECK((r.revision >= 0) && (r.ttl >= 0) && (r.compact_rev >= 0) &&
             (r.db_size >= 0));
    FZ_CHECK(memchr(r.token, '\0', sizeof(r.token)) != NULL);
    for (i = 0; i < r.nkvs; i++) {
        FZ_CHECK((r.kvs[i].key_len > 0) && (r.kvs[i].key_len <= UF_ETCD_KEY_MAX));
        FZ_CHECK(r.kvs[i].value_len <= UF_ETCD_VALUE_MAX);
        FZ_CHECK((r.kvs[i].key[r.kvs[i].key_len] == '\0') &&
                 (r.kvs[i].value[r.kvs[i].value_len] == '\0'));
        FZ_CHECK((r.kvs[i].create_rev >= 0) && (r.kvs[i].mod_rev >= 0));
    }
    uf_etcd_reply_clear(&r);
    return 0;
}
