/*
 * resp.c: the RESP2 wire format. Parses requests (multi-bulk arrays as sent
 * by redis-cli and redis-benchmark, and inline text lines as typed into nc or
 * telnet) and appends replies to a client's output buffer.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvd.h"

/* Limits that keep a misbehaving client from growing its buffers forever. */
#define MAX_MULTIBULK_ARGS (1024 * 1024)
#define MAX_BULK_LEN (64LL * 1024 * 1024)
#define MAX_INLINE_LEN (64 * 1024)
#define MAX_NUMBER_LINE 32 /* "*" or "$", up to 20 digits, "\r\n" */

/* ---- replies ------------------------------------------------------------ */

/* Makes room for `extra` more bytes of output. On allocation failure the
 * client is marked for closing: a reply stream with a hole in it would
 * desynchronise the client, so the connection must end. */
static int output_reserve(struct client *c, size_t extra) {
  if (c->outcap - c->outlen >= extra)
    return 0;
  if (c->outpos > 0) { /* reclaim the already-sent prefix first */
    memmove(c->outbuf, c->outbuf + c->outpos, c->outlen - c->outpos);
    c->outlen -= c->outpos;
    c->outpos = 0;
    if (c->outcap - c->outlen >= extra)
      return 0;
  }
  size_t cap = c->outcap ? c->outcap : 1024;
  while (cap - c->outlen < extra)
    cap *= 2;
  char *buf = realloc(c->outbuf, cap);
  if (!buf) {
    c->close_after_write = 1;
    return -1;
  }
  c->outbuf = buf;
  c->outcap = cap;
  return 0;
}

void reply_raw(struct client *c, const char *buf, size_t len) {
  if (output_reserve(c, len) < 0)
    return;
  memcpy(c->outbuf + c->outlen, buf, len);
  c->outlen += len;
}

void reply_status(struct client *c, const char *status) {
  reply_raw(c, "+", 1);
  reply_raw(c, status, strlen(status));
  reply_raw(c, "\r\n", 2);
}

void reply_error(struct client *c, const char *fmt, ...) {
  char line[512] = "-ERR ";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line + 5, sizeof line - 7, fmt, ap);
  va_end(ap);
  strcat(line, "\r\n");
  reply_raw(c, line, strlen(line));
}

/* Writes "<prefix><value>\r\n", the header shape shared by :, * and $. */
static void reply_header(struct client *c, char prefix, long long value) {
  char line[32];
  int n = snprintf(line, sizeof line, "%c%lld\r\n", prefix, value);
  reply_raw(c, line, (size_t)n);
}

void reply_int(struct client *c, long long value) {
  reply_header(c, ':', value);
}

void reply_bulk(struct client *c, const char *buf, size_t len) {
  reply_header(c, '$', (long long)len);
  reply_raw(c, buf, len);
  reply_raw(c, "\r\n", 2);
}

void reply_nil(struct client *c) { reply_raw(c, "$-1\r\n", 5); }

void reply_array_len(struct client *c, size_t n) {
  reply_header(c, '*', (long long)n);
}

/* ---- requests ----------------------------------------------------------- */

/* Makes req->argv hold at least n arguments. */
static int request_reserve(struct request *req, size_t n) {
  if (n <= KVD_INLINE_ARGS)
    return 0;
  req->argv = malloc(n * sizeof *req->argv);
  if (!req->argv) {
    req->argv = req->inline_args;
    return -1;
  }
  return 0;
}

void request_release(struct request *req) {
  if (req->argv != req->inline_args)
    free(req->argv);
  req->argv = req->inline_args;
  req->argc = 0;
}

/* Reads "<prefix><integer>\r\n" at *p. Returns PARSE_OK and advances *p,
 * PARSE_INCOMPLETE when the line has not fully arrived, PARSE_ERROR when it
 * is malformed. */
static enum parse_result read_number_line(const char **p, const char *end,
                                          char prefix, long long *value) {
  const char *s = *p;
  size_t avail = (size_t)(end - s);
  const char *cr = memchr(s, '\r', avail < MAX_NUMBER_LINE ? avail : MAX_NUMBER_LINE);
  if (!cr)
    return avail < MAX_NUMBER_LINE ? PARSE_INCOMPLETE : PARSE_ERROR;
  if (cr + 1 == end)
    return PARSE_INCOMPLETE;
  if (cr[1] != '\n' || s[0] != prefix)
    return PARSE_ERROR;
  const char *d = s + 1;
  int negative = d < cr && *d == '-';
  if (negative)
    d++;
  if (d == cr)
    return PARSE_ERROR;
  long long v = 0;
  for (; d < cr; d++) {
    if (*d < '0' || *d > '9' || v > (MAX_BULK_LEN * 16))
      return PARSE_ERROR;
    v = v * 10 + (*d - '0');
  }
  *value = negative ? -v : v;
  *p = cr + 2;
  return PARSE_OK;
}

static enum parse_result parse_error(char *error, size_t errorlen,
                                     const char *msg) {
  snprintf(error, errorlen, "Protocol error: %s", msg);
  return PARSE_ERROR;
}

/* "*<n>\r\n" followed by n times "$<len>\r\n<len bytes>\r\n". */
static enum parse_result parse_multibulk(const char *buf, size_t len,
                                         struct request *req, size_t *consumed,
                                         char *error, size_t errorlen) {
  const char *p = buf, *end = buf + len;
  long long n;
  enum parse_result r = read_number_line(&p, end, '*', &n);
  if (r == PARSE_INCOMPLETE)
    return r;
  if (r == PARSE_ERROR || n > MAX_MULTIBULK_ARGS)
    return parse_error(error, errorlen, "invalid multibulk length");
  if (n <= 0) { /* "*0" and "*-1" are empty requests, as in redis */
    *consumed = (size_t)(p - buf);
    return PARSE_EMPTY;
  }
  if (request_reserve(req, (size_t)n) < 0)
    return parse_error(error, errorlen, "out of memory");
  for (long long i = 0; i < n; i++) {
    long long blen;
    r = read_number_line(&p, end, '$', &blen);
    if (r == PARSE_INCOMPLETE)
      return r;
    if (r == PARSE_ERROR || blen < 0 || blen > MAX_BULK_LEN)
      return parse_error(error, errorlen, "invalid bulk length");
    if (end - p < blen + 2)
      return PARSE_INCOMPLETE;
    if (p[blen] != '\r' || p[blen + 1] != '\n')
      return parse_error(error, errorlen, "bulk string not followed by CRLF");
    req->argv[i] = (struct arg){.ptr = p, .len = (size_t)blen};
    p += blen + 2;
  }
  req->argc = (size_t)n;
  *consumed = (size_t)(p - buf);
  return PARSE_OK;
}

static int is_blank(char ch) { return ch == ' ' || ch == '\t'; }

/* Splits [s, end) on blanks into req->argv (or only counts when argv is
 * NULL). Returns the number of words. No quoting: inline mode is for humans
 * typing simple commands. */
static size_t split_words(const char *s, const char *end, struct arg *argv) {
  size_t n = 0;
  while (s < end) {
    while (s < end && is_blank(*s))
      s++;
    if (s == end)
      break;
    const char *w = s;
    while (s < end && !is_blank(*s))
      s++;
    if (argv)
      argv[n] = (struct arg){.ptr = w, .len = (size_t)(s - w)};
    n++;
  }
  return n;
}

/* One text line: words separated by blanks, ended by "\n" or "\r\n". */
static enum parse_result parse_inline(const char *buf, size_t len,
                                      struct request *req, size_t *consumed,
                                      char *error, size_t errorlen) {
  const char *nl = memchr(buf, '\n', len);
  if (!nl)
    return len < MAX_INLINE_LEN
               ? PARSE_INCOMPLETE
               : parse_error(error, errorlen, "too big inline request");
  const char *end = nl;
  if (end > buf && end[-1] == '\r')
    end--;
  *consumed = (size_t)(nl + 1 - buf);
  size_t n = split_words(buf, end, NULL);
  if (n == 0)
    return PARSE_EMPTY;
  if (request_reserve(req, n) < 0)
    return parse_error(error, errorlen, "out of memory");
  req->argc = split_words(buf, end, req->argv);
  return PARSE_OK;
}

enum parse_result parse_request(const char *buf, size_t len,
                                struct request *req, size_t *consumed,
                                char *error, size_t errorlen) {
  req->argc = 0;
  req->argv = req->inline_args;
  if (len == 0)
    return PARSE_INCOMPLETE;
  if (buf[0] == '*')
    return parse_multibulk(buf, len, req, consumed, error, errorlen);
  return parse_inline(buf, len, req, consumed, error, errorlen);
}
