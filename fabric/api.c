/*
 * api.c - the public entry points whose work is done in a lower layer
 * (configuration and logging in util/, devices in transport/, the token
 * provider in origin/): the API is exposed here, at the top, and each call
 * goes down to its layer, so the lower layers implement no ucache_*
 * function of their own.
 */
#include "ucache.h"
#include "origin/cred.h"
#include "transport/transport.h"
#include "util/config.h"
#include "util/log.h"

_Static_assert(((unsigned)UCACHE_CONFIG_PRINT_HELP == (unsigned)UC_CONFIG_PRINT_HELP) &&
               ((unsigned)UCACHE_CONFIG_PRINT_JSON == (unsigned)UC_CONFIG_PRINT_JSON),
               "the same flags");

ucache_status_t ucache_config_print(FILE *out, unsigned flags)
{
    return uc_config_print(out, flags);
}

void ucache_log_set_level(ucache_log_level_t level)
{
    uc_log_set_level(level);
}

void ucache_log_set_sink(ucache_log_sink_t sink, void *arg)
{
    uc_log_set_sink(sink, arg);
}

ucache_status_t ucache_devices_query(ucache_devices_t *devs)
{
    return ut_devices_query(devs);
}

void ucache_token_provider_set(ucache_token_fn_t fn, void *arg)
{
    us_token_provider_set(fn, arg);
}
