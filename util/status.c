/*
 * status.c - ucache_strerror() and ucache_status_name(), generated from the
 * one UCACHE_FOREACH_STATUS list in status.h so names, values and messages
 * can never drift apart.
 */
#include "util/status.h"

const char *ucache_strerror(ucache_status_t status)
{
    switch (status) {
#define UC_STATUS_MSG(name, value, msg) case name: return msg;
    UCACHE_FOREACH_STATUS(UC_STATUS_MSG)
#undef UC_STATUS_MSG
    }
    return "unknown status";
}

const char *ucache_status_name(ucache_status_t status)
{
    switch (status) {
#define UC_STATUS_NAME(name, value, msg) case name: return #name;
    UCACHE_FOREACH_STATUS(UC_STATUS_NAME)
#undef UC_STATUS_NAME
    }
    return "UCACHE_ERR_UNKNOWN";
}
