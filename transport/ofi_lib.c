/*
 * ofi_lib.c - libfabric, loaded when the ofi backend is first used (a
 * context with UCACHE_TRANSPORT=ofi, or `ucache devices`), not linked:
 * a program that reads over UCX never loads it, and the library runs
 * where libfabric is not installed at all.
 *
 * Loading libfabric loads its PSM dependency, libinfinipath, whose
 * constructor installs handlers for SIGINT, SIGTERM, SIGSEGV, SIGBUS,
 * SIGILL and SIGABRT (its SIGTERM handler exits 1; libfuse, finding a
 * handler there, left SIGTERM to it - `ucache mount` exited 1 on SIGTERM).
 * The program's own handlers, whatever they were, are put back right after
 * the load.  Only the few functions libfabric really exports are called
 * through here; the rest of its API is inline calls through its objects.
 */
#include "transport/ofi_int.h"

#include <dlfcn.h>
#include <signal.h>

ut_ofi_lib_t ut_ofi_lib;

static pthread_once_t   ut_ofi_lib_once = PTHREAD_ONCE_INIT;
static ucache_status_t  ut_ofi_lib_status = UCACHE_ERR_UNSUPPORTED;

#define UT_OFI_LIB_NAME "libfabric.so.1"

static void do_lib_load(void)
{
    static const int sigs[] = { SIGINT, SIGTERM, SIGSEGV, SIGBUS, SIGILL, SIGABRT };
    struct sigaction saved[sizeof(sigs) / sizeof(sigs[0])];
    bool have[sizeof(sigs) / sizeof(sigs[0])];
    void *h;
    size_t i;

    for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        have[i] = (sigaction(sigs[i], NULL, &saved[i]) == 0);
    }
    h = dlopen(UT_OFI_LIB_NAME, RTLD_NOW | RTLD_LOCAL);
    for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        if (have[i]) {
            sigaction(sigs[i], &saved[i], NULL);
        }
    }
    if (h == NULL) {
        UC_INFO("libfabric not loaded (%s): UCACHE_TRANSPORT=ofi is unavailable", dlerror());
        return;
    }
    *(void **)&ut_ofi_lib.getinfo  = dlsym(h, "fi_getinfo");
    *(void **)&ut_ofi_lib.freeinfo = dlsym(h, "fi_freeinfo");
    *(void **)&ut_ofi_lib.dupinfo  = dlsym(h, "fi_dupinfo");
    *(void **)&ut_ofi_lib.fabric   = dlsym(h, "fi_fabric");
    *(void **)&ut_ofi_lib.strerror = dlsym(h, "fi_strerror");
    *(void **)&ut_ofi_lib.version  = dlsym(h, "fi_version");
    if ((ut_ofi_lib.getinfo == NULL) || (ut_ofi_lib.freeinfo == NULL) ||
        (ut_ofi_lib.dupinfo == NULL) || (ut_ofi_lib.fabric == NULL) ||
        (ut_ofi_lib.strerror == NULL) || (ut_ofi_lib.version == NULL) ||
        (FI_MAJOR(ut_ofi_lib.version()) != FI_MAJOR(UT_OFI_API)) ||
        (ut_ofi_lib.version() < UT_OFI_API)) {
        UC_ERROR("%s is not a libfabric %u.%u or later of this major version",
                 UT_OFI_LIB_NAME, FI_MAJOR(UT_OFI_API), FI_MINOR(UT_OFI_API));
        memset(&ut_ofi_lib, 0, sizeof(ut_ofi_lib));
        dlclose(h);
        return;
    }
    ut_ofi_lib_status = UCACHE_OK; /* kept loaded: its providers' threads live on */
}

ucache_status_t ut_ofi_lib_load(void)
{
    pthread_once(&ut_ofi_lib_once, do_lib_load);
    return ut_ofi_lib_status;
}

const char *ut_ofi_strerror(int err)
{
    return (ut_ofi_lib.strerror != NULL) ? ut_ofi_lib.strerror(err) : "libfabric error";
}
