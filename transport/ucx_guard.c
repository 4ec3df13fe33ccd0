/*
 * ucx_guard.c - closes an abort in UCX 1.13.1 that any client could trigger
 * in a node: a client killed while the node answers its connection (the
 * node's half of the wireup pending on a tcp endpoint that then fails)
 * made UCX assert in ucp_request_send_state_ff() - "got WIREUP_MSG_REPLY
 * message" - and abort the whole daemon.  tests/fabric/test_wireup.sh hit
 * it within 3-80 killed clients.  UCX fixed it upstream by deleting the
 * assertion (commit 9ccaf31, "Remove assertion for checking WIREUP_MSGs
 * when purging"): the code after it frees such a message correctly.
 *
 * libucp calls ucp_request_send_state_ff() through its PLT, so this
 * definition takes those calls (the library and the programs that link it
 * export it: see the Makefile), and hands every request on to UCX's own
 * function - after relabelling a purged REQUEST or REPLY wireup message as
 * an ACK, which the assertion accepts and which is freed the same way.
 *
 * It touches a UCX-private structure, so it acts only on the exact code it
 * was written against: UCX 1.13.x whose function reads the request's
 * progress callback at offset 0xe0 and the message type at 0xa8 with the
 * instructions checked below.  Any other build gets the call passed on
 * untouched (and one log line saying the guard is off).
 */
#include "transport/ucx_guard.h"
#include "util/log.h"

#include <ucp/api/ucp.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

typedef void (*ug_ff_fn_t)(void *req, ucs_status_t status);

#define UG_OFF_FUNC  0xe0   /* req->send.uct.func                         */
#define UG_OFF_TYPE  0xa8   /* req->send.wireup.type                      */
#define UG_MSG_ACK   3      /* UCP_WIREUP_MSG_ACK; REQUEST 1, REPLY 2     */

static pthread_once_t   ug_once = PTHREAD_ONCE_INIT;
static ug_ff_fn_t       ug_real;
static void            *ug_wireup_progress;
static bool             ug_on;
static _Atomic uint64_t ug_relabelled;

/* The instructions of UCX 1.13.1's function (x86-64) that read the two
 * fields, at their offsets from its entry. */
static const struct {
    size_t  at;
    uint8_t bytes[8];
    size_t  len;
} ug_code[] = {
    { 0x48, { 0x48, 0x8b, 0x83, 0xe0, 0x00, 0x00, 0x00 }, 7 }, /* mov 0xe0(%rbx),%rax   */
    { 0xf8, { 0x0f, 0xb6, 0x83, 0xa8, 0x00, 0x00, 0x00 }, 7 }, /* movzbl 0xa8(%rbx),%eax */
    { 0xff, { 0x8d, 0x50, 0xfd, 0x80, 0xfa, 0x02, 0x0f, 0x87 }, 8 }, /* type-3 > 2: assert */
};

static void ug_init(void)
{
    unsigned major = 0, minor = 0, release = 0, i;

    ug_real            = (ug_ff_fn_t)dlsym(RTLD_NEXT, "ucp_request_send_state_ff");
    ug_wireup_progress = dlsym(RTLD_NEXT, "ucp_wireup_msg_progress");
    ucp_get_version(&major, &minor, &release);
    ug_on = (ug_real != NULL) && (ug_wireup_progress != NULL) && (major == 1) &&
            (minor == 13);
#if defined(__x86_64__)
    for (i = 0; ug_on && (i < sizeof(ug_code) / sizeof(ug_code[0])); i++) {
        ug_on = memcmp((const uint8_t *)(uintptr_t)ug_real + ug_code[i].at,
                       ug_code[i].bytes, ug_code[i].len) == 0;
    }
#else
    (void)i;
    ug_on = false;
#endif
    if (!ug_on && (ug_real != NULL) && (major == 1) && (minor == 13)) {
        UC_INFO("UCX %u.%u.%u: the wireup-abort guard is off (not the code it was "
                "written for); a client killed during its connect may abort this "
                "process", major, minor, release);
    }
}

void ucp_request_send_state_ff(void *req, ucs_status_t status);

void ucp_request_send_state_ff(void *req, ucs_status_t status)
{
    uint8_t *type;

    pthread_once(&ug_once, ug_init);
    if (ug_real == NULL) {
        return; /* not reached: libucp defines it, or nothing calls this */
    }
    if (ug_on && (*(void **)((uint8_t *)req + UG_OFF_FUNC) == ug_wireup_progress)) {
        type = (uint8_t *)req + UG_OFF_TYPE;
        if (*type < UG_MSG_ACK) {
            *type = UG_MSG_ACK;
            UC_WARN("a peer left during its connection set-up: UCX 1.13's abort on "
                    "the pending wireup message averted (%llu so far)",
                    (unsigned long long)atomic_fetch_add_explicit(&ug_relabelled, 1,
                                                                 memory_order_relaxed) + 1);
        }
    }
    ug_real(req, status);
}

bool ut_ucx_guard_active(void)
{
    pthread_once(&ug_once, ug_init);
    return ug_on;
}

uint64_t ut_ucx_guard_count(void)
{
    return atomic_load_explicit(&ug_relabelled, memory_order_relaxed);
}
