/*
 * mem.h - committing memory: make a range of a mapping resident before it
 * is used, so that its first writes on the fill path take no page faults
 * (and a virtual machine's host backs it).
 */
#ifndef UC_MEM_H
#define UC_MEM_H

#include <stddef.h>

/**
 * Fault every page of [ptr, ptr + len) in, writable, in one
 * MADV_POPULATE_WRITE, then write one byte of each page: its last, with
 * the value it holds, so that blocks whose headers start a page keep them
 * (the caller ensures no one else writes those bytes meanwhile).
 */
void uc_mem_commit(void *ptr, size_t len);

#endif
