/*
 * ucx_guard.c - closes three aborts in UCX 1.13.1 that any client could
 * trigger in a node.  Both are assertions (Debian builds UCX with them on)
 * over states that UCX's own code after them handles, so the guard steers
 * the one call that would assert and hands everything else on untouched.
 *
 * 1. The wireup abort.  A client killed while the node answers its
 *    connection (the node's half of the wireup pending on a tcp endpoint
 *    that then fails) made UCX assert in ucp_request_send_state_ff() - "got
 *    WIREUP_MSG_REPLY message" - and abort the whole daemon.
 *    tests/fabric/test_wireup.sh hit it within 3-80 killed clients.  UCX
 *    fixed it upstream by deleting the assertion (commit 9ccaf31, "Remove
 *    assertion for checking WIREUP_MSGs when purging"): the code after it
 *    frees such a message correctly.  The guard relabels a purged REQUEST
 *    or REPLY wireup message as an ACK, which the assertion accepts and
 *    which is freed the same way.
 *
 * 2. The stale write event.  UCX's async thread queues an event that comes
 *    while the worker is busy ("missed") by file descriptor; closing that
 *    descriptor does not take the event out of the queue.  When the
 *    listener accepts a new connection that gets the same descriptor
 *    number before the worker drains the queue, the old connection's
 *    "writable" event is delivered to the new one, which has nothing to
 *    send yet, and uct_tcp_sockcm_ep_progress_send() asserts ("tcp_sockcm_
 *    ep.c:416") - 5 aborts in 300 runs of test_ucx listener_bounds (70
 *    connections from one address, 6 refused, 4 closed).  The guard takes
 *    uct_tcp_sockcm_ep_send(), the handler's call for a write event, and
 *    drops the event for a server endpoint that cannot send: not created
 *    by the listener's user yet, not rejecting, nothing sent.  Its
 *    descriptor is watched for reads only, as the listener left it.
 *
 * 3. The double zero-copy completion.  A tcp active message sent zero-copy
 *    that the socket took only part of is finished by the write events
 *    that follow.  When the socket send of its rest fails (the requester
 *    reset the connection: exited, killed, or closed its endpoint with our
 *    reply unread), uct_tcp_ep_progress_zcopy_tx() purges the endpoint -
 *    which completes the message - and then completes it again itself, and
 *    uct_invoke_completion() asserts ("uct_iface.h:884 Assertion
 *    `comp->count > 0' failed ... status=-80"): a fresh-clone CI run saw
 *    an owner end so (test_ucx reply_data_stalled).  Still so in UCX's
 *    master.  The guard takes uct_tcp_ep_handle_io_err(), which that send
 *    error goes through before the purge, and - for that one call site -
 *    takes the endpoint's zero-copy flag off, so the purge leaves the
 *    message to the completion after it: one completion, with the error.
 *
 * libucp and libuct call these functions through their PLTs, so the
 * definitions here take those calls (the library and the programs that
 * link it export them: see the Makefile).  They touch UCX-private
 * structures, so each acts only on the exact code it was written against,
 * checked by the instructions below; any other build gets its calls passed
 * on untouched (and one log line saying the guard is off).
 */
#include "transport/ucx_guard.h"
#include "util/log.h"

#include <ucp/api/ucp.h>
#include <ucs/async/async_fwd.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

typedef void (*ug_ff_fn_t)(void *req, ucs_status_t status);
typedef ucs_status_t (*ug_send_fn_t)(void *cep);
typedef ucs_status_t (*ug_io_err_fn_t)(void *ep, const char *op, ucs_status_t status);

#define UG_OFF_FUNC  0xe0   /* req->send.uct.func                         */
#define UG_OFF_TYPE  0xa8   /* req->send.wireup.type                      */
#define UG_MSG_ACK   3      /* UCP_WIREUP_MSG_ACK; REQUEST 1, REPLY 2     */

/* uct_tcp_sockcm_ep_t (UCX 1.13): its descriptor and state bits */
#define UG_CEP_OFF_FD      0x30
#define UG_CEP_OFF_STATE   0x34
#define UG_CEP_ON_SERVER   (1u << 0)
#define UG_CEP_CREATED     (1u << 2)   /* SERVER_CREATED                  */
#define UG_CEP_DATA_SENT   (1u << 5)
#define UG_CEP_DATA_RECVD  (1u << 6)
#define UG_CEP_DISCONNECTING (1u << 11)
#define UG_CEP_REJECTING   (1u << 16)  /* SERVER_REJECT_CALLED            */

/* uct_tcp_ep_t (UCX 1.13): its flags and the zero-copy-in-progress bit */
#define UG_EP_OFF_FLAGS    0x0c
#define UG_EP_ZCOPY_TX     (1u << 2)

static pthread_once_t   ug_once = PTHREAD_ONCE_INIT;
static ug_ff_fn_t       ug_real;
static ug_send_fn_t     ug_send_real;
static ug_io_err_fn_t   ug_io_err_real;
static void            *ug_wireup_progress;
static bool             ug_on, ug_send_on, ug_zc_on;
static _Atomic uint64_t ug_relabelled, ug_stale, ug_zcopy;

typedef struct ug_code {
    size_t  at;
    uint8_t bytes[8];
    size_t  len;
} ug_code_t;

/* The instructions of UCX 1.13.1's ucp_request_send_state_ff() (x86-64)
 * that read the two fields, at their offsets from its entry. */
static const ug_code_t ug_ff_code[] = {
    { 0x48, { 0x48, 0x8b, 0x83, 0xe0, 0x00, 0x00, 0x00 }, 7 }, /* mov 0xe0(%rbx),%rax   */
    { 0xf8, { 0x0f, 0xb6, 0x83, 0xa8, 0x00, 0x00, 0x00 }, 7 }, /* movzbl 0xa8(%rbx),%eax */
    { 0xff, { 0x8d, 0x50, 0xfd, 0x80, 0xfa, 0x02, 0x0f, 0x87 }, 8 }, /* type-3 > 2: assert */
};

/* ... and of its uct_tcp_sockcm_ep_send(): the state read, its first test,
 * and a server endpoint with nothing sent going on to progress_send. */
static const ug_code_t ug_send_code[] = {
    { 0x04, { 0x8b, 0x47, 0x34 }, 3 },                         /* mov 0x34(%rdi),%eax   */
    { 0x07, { 0xa9, 0x09, 0x00, 0x08, 0x00 }, 5 },             /* test $0x80009,%eax    */
    { 0x2e, { 0xa8, 0x01, 0x75, 0x1e }, 4 },                   /* test $0x1,%al; jne    */
    { 0x50, { 0xa8, 0x20, 0x74, 0xf0 }, 4 },                   /* test $0x20,%al; je    */
};

/* ... and, at the return address of uct_tcp_ep_progress_tx()'s call of
 * uct_tcp_ep_handle_io_err() for a failed send of a zero-copy message's
 * rest: the status kept, tested for CANCELED, and - further on - the
 * message's completion read from its context (%rbp) and the endpoint's
 * (%rbx) zero-copy flag cleared before that completion is invoked. */
static const ug_code_t ug_zc_code[] = {
    { 0x00, { 0x41, 0x89, 0xc4, 0x3c, 0xf0, 0x0f, 0x85 }, 7 }, /* mov %eax,%r12d; cmp $-16 */
    { 0x3d, { 0x48, 0x8b, 0x6d, 0x08 }, 4 },                   /* mov 0x8(%rbp),%rbp    */
    { 0x41, { 0x66, 0x83, 0x63, 0x0c, 0xfb }, 5 },             /* andw $0xfffb,0xc(%rbx) */
};

/* Where libuct's call for that send error returns to (checked in ug_init);
 * NULL while the guard is off. */
static const void *ug_zc_site;

/* Whether @p fn's code is what @p code says (x86-64 only). */
static bool ug_code_matches(const void *fn, const ug_code_t *code, size_t n)
{
#if defined(__x86_64__)
    size_t i;

    for (i = 0; (fn != NULL) && (i < n); i++) {
        if (memcmp((const uint8_t *)(uintptr_t)fn + code[i].at, code[i].bytes,
                   code[i].len) != 0) {
            return false;
        }
    }
    return fn != NULL;
#else
    (void)fn; (void)code; (void)n;
    return false;
#endif
}

/* The send-error call site of guard 3, from uct_tcp_ep_handle_io_err()'s
 * own entry (libuct's code runs after the function in one text section). */
#define UG_ZC_SITE_OFF 0x1b17

static const void *ug_zc_find(void)
{
    const uint8_t *site;

    if (ug_io_err_real == NULL) {
        return NULL;
    }
    site = (const uint8_t *)(uintptr_t)ug_io_err_real + UG_ZC_SITE_OFF;
    return ug_code_matches(site, ug_zc_code, sizeof(ug_zc_code) / sizeof(ug_zc_code[0])) ?
           site : NULL;
}

static void ug_init(void)
{
    unsigned major = 0, minor = 0, release = 0;
    bool v113;

    ug_real            = (ug_ff_fn_t)dlsym(RTLD_NEXT, "ucp_request_send_state_ff");
    ug_send_real       = (ug_send_fn_t)dlsym(RTLD_NEXT, "uct_tcp_sockcm_ep_send");
    ug_io_err_real     = (ug_io_err_fn_t)dlsym(RTLD_NEXT, "uct_tcp_ep_handle_io_err");
    ug_wireup_progress = dlsym(RTLD_NEXT, "ucp_wireup_msg_progress");
    ucp_get_version(&major, &minor, &release);
    v113       = (major == 1) && (minor == 13);
    ug_on      = v113 && (ug_wireup_progress != NULL) &&
                 ug_code_matches((const void *)(uintptr_t)ug_real, ug_ff_code,
                                 sizeof(ug_ff_code) / sizeof(ug_ff_code[0]));
    ug_send_on = v113 &&
                 ug_code_matches((const void *)(uintptr_t)ug_send_real, ug_send_code,
                                 sizeof(ug_send_code) / sizeof(ug_send_code[0]));
    ug_zc_site = v113 ? ug_zc_find() : NULL;
    ug_zc_on   = (ug_zc_site != NULL) && (ug_io_err_real != NULL);
    if (v113 && (!ug_on || !ug_send_on || !ug_zc_on)) {
        UC_INFO("UCX %u.%u.%u: part of the guard is off (not the code it was written "
                "for), so a client may abort this process:%s%s%s", major, minor, release,
                ug_on ? "" : " the wireup abort", ug_send_on ? "" : " stale listener events",
                ug_zc_on ? "" : " the double zero-copy completion");
    }
}

void ucp_request_send_state_ff(void *req, ucs_status_t status);

void ucp_request_send_state_ff(void *req, ucs_status_t status)
{
    uint64_t n;
    uint8_t *type;

    pthread_once(&ug_once, ug_init);
    if (ug_real == NULL) {
        return; /* not reached: libucp defines it, or nothing calls this */
    }
    if (ug_on && (*(void **)((uint8_t *)req + UG_OFF_FUNC) == ug_wireup_progress)) {
        type = (uint8_t *)req + UG_OFF_TYPE;
        if (*type < UG_MSG_ACK) {
            *type = UG_MSG_ACK;
            n     = atomic_fetch_add_explicit(&ug_relabelled, 1, memory_order_relaxed) + 1;
            UC_WARN("a peer left during its connection set-up: UCX 1.13's abort on "
                    "the pending wireup message averted (%llu so far)",
                    (unsigned long long)n);
        }
    }
    ug_real(req, status);
}

ucs_status_t uct_tcp_sockcm_ep_send(void *cep);

ucs_status_t uct_tcp_sockcm_ep_send(void *cep)
{
    uint32_t state;
    uint64_t n;

    pthread_once(&ug_once, ug_init);
    if (ug_send_real == NULL) {
        return UCS_ERR_UNSUPPORTED; /* not reached: libuct defines it */
    }
    if (ug_send_on) {
        state = *(const uint32_t *)((const uint8_t *)cep + UG_CEP_OFF_STATE);
        if ((state & UG_CEP_ON_SERVER) &&
            !(state & (UG_CEP_DATA_SENT | UG_CEP_DISCONNECTING | UG_CEP_REJECTING)) &&
            ((state & (UG_CEP_CREATED | UG_CEP_DATA_RECVD)) !=
             (UG_CEP_CREATED | UG_CEP_DATA_RECVD))) {
            /* a write event for an endpoint with nothing to send: another
             * connection's, on a reused descriptor.  Reads only, as the
             * listener registered it (a level-triggered write interest left
             * on would come back at once). */
            ucs_async_modify_handler(*(const int *)((const uint8_t *)cep + UG_CEP_OFF_FD),
                                     UCS_EVENT_SET_EVREAD | UCS_EVENT_SET_EVERR);
            n = atomic_fetch_add_explicit(&ug_stale, 1, memory_order_relaxed) + 1;
            UC_DEBUG("a stale write event on a listener connection dropped (state 0x%x, "
                     "%llu so far)", state, (unsigned long long)n);
            return UCS_OK;
        }
    }
    return ug_send_real(cep);
}

ucs_status_t uct_tcp_ep_handle_io_err(void *ep, const char *op, ucs_status_t status);

ucs_status_t uct_tcp_ep_handle_io_err(void *ep, const char *op, ucs_status_t status)
{
    uint16_t *flags;
    uint64_t n;

    pthread_once(&ug_once, ug_init);
    if (ug_io_err_real == NULL) {
        return status; /* not reached: libuct defines it */
    }
    if (ug_zc_on && (__builtin_return_address(0) == ug_zc_site)) {
        flags = (uint16_t *)(void *)((uint8_t *)ep + UG_EP_OFF_FLAGS);
        if (*flags & UG_EP_ZCOPY_TX) {
            *flags = (uint16_t)(*flags & ~UG_EP_ZCOPY_TX);
            n      = atomic_fetch_add_explicit(&ug_zcopy, 1, memory_order_relaxed) + 1;
            UC_DEBUG("a peer reset its connection during a zero-copy send: UCX 1.13's "
                     "double completion of it averted (%llu so far)", (unsigned long long)n);
        }
    }
    return ug_io_err_real(ep, op, status);
}

bool ut_ucx_guard_active(void)
{
    pthread_once(&ug_once, ug_init);
    return ug_on;
}

uint64_t ut_ucx_guard_stale_events(void)
{
    return atomic_load_explicit(&ug_stale, memory_order_relaxed);
}

uint64_t ut_ucx_guard_zcopy(void)
{
    return atomic_load_explicit(&ug_zcopy, memory_order_relaxed);
}

uint64_t ut_ucx_guard_count(void)
{
    return atomic_load_explicit(&ug_relabelled, memory_order_relaxed);
}
