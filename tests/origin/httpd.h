/*
 * httpd.h - what the tests' HTTP servers share (httpd.c): serve a
 * libmicrohttpd handler on 127.0.0.1, a thread per connection, print
 * "port N" once listening, run until SIGTERM or SIGINT.
 */
#ifndef UCACHE_TESTS_HTTPD_H
#define UCACHE_TESTS_HTTPD_H

#include <microhttpd.h>

/** Serve @p handler on 127.0.0.1:@p port (0: any); returns the exit code
 *  (1 if it cannot listen, naming @p prog). */
int httpd_run(const char *prog, const char *port, MHD_AccessHandlerCallback handler);

#endif
