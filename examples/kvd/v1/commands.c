/*
 * commands.c: the commands kvd understands and their dispatch.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "kvd.h"

typedef void command_fn(struct client *c, const struct request *req);

struct command {
  const char *name; /* lower case, as shown in error messages */
  int arity;        /* argc including the name; -n means at least n */
  command_fn *fn;
};

/* ---- helpers ------------------------------------------------------------ */

static int arg_is(const struct arg *a, const char *word) {
  size_t n = strlen(word);
  return a->len == n && strncasecmp(a->ptr, word, n) == 0;
}

/* Parses a whole argument as a signed 64-bit decimal, as redis does: an
 * optional '-', digits, no blanks, no '+', no leading zeros, no overflow. */
static int parse_int64(const char *p, size_t len, long long *out) {
  if (len == 0 || len > 20)
    return -1;
  size_t i = 0;
  int negative = p[0] == '-';
  if (negative && ++i == len)
    return -1;
  if (p[i] == '0' && len - i > 1)
    return -1;
  unsigned long long v = 0;
  unsigned long long limit = negative ? 9223372036854775808ULL
                                      : 9223372036854775807ULL;
  for (; i < len; i++) {
    if (p[i] < '0' || p[i] > '9')
      return -1;
    unsigned digit = (unsigned)(p[i] - '0');
    if (v > (limit - digit) / 10)
      return -1;
    v = v * 10 + digit;
  }
  if (negative && v == 0 && len > 1)
    return -1; /* "-0" */
  *out = negative ? (long long)(0 - v) : (long long)v;
  return 0;
}

/* Copies a client-supplied word for an error message: bounded, printable. */
static void printable_copy(char *dst, size_t dstlen, const struct arg *a) {
  size_t n = a->len < dstlen - 1 ? a->len : dstlen - 1;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)a->ptr[i];
    dst[i] = isprint(ch) && ch != '\'' ? (char)ch : '?';
  }
  dst[n] = '\0';
}

static void reply_ok(struct client *c) { reply_raw(c, "+OK\r\n", 5); }

static void reply_oom(struct client *c) { reply_error(c, "out of memory"); }

/* ---- commands ----------------------------------------------------------- */

static void cmd_ping(struct client *c, const struct request *req) {
  if (req->argc > 2) {
    reply_error(c, "wrong number of arguments for 'ping' command");
    return;
  }
  if (req->argc == 2)
    reply_bulk(c, req->argv[1].ptr, req->argv[1].len);
  else
    reply_status(c, "PONG");
}

static void cmd_echo(struct client *c, const struct request *req) {
  reply_bulk(c, req->argv[1].ptr, req->argv[1].len);
}

/* Options of SET: NX and XX are honoured; expiry options are refused because
 * kvd keys never expire. */
enum set_condition { SET_ALWAYS, SET_IF_ABSENT, SET_IF_PRESENT };

static int parse_set_options(struct client *c, const struct request *req,
                             enum set_condition *cond) {
  const char *const unsupported[] = {"EX", "PX", "EXAT", "PXAT",
                                            "KEEPTTL", "GET"};
  *cond = SET_ALWAYS;
  for (size_t i = 3; i < req->argc; i++) {
    const struct arg *opt = &req->argv[i];
    enum set_condition want = arg_is(opt, "NX")   ? SET_IF_ABSENT
                              : arg_is(opt, "XX") ? SET_IF_PRESENT
                                                  : SET_ALWAYS;
    if (want != SET_ALWAYS && (*cond == SET_ALWAYS || *cond == want)) {
      *cond = want;
      continue;
    }
    for (size_t u = 0; u < sizeof unsupported / sizeof *unsupported; u++) {
      if (arg_is(opt, unsupported[u])) {
        reply_error(c, "SET option '%s' is not supported by kvd (keys never "
                       "expire)", unsupported[u]);
        return -1;
      }
    }
    reply_error(c, "syntax error");
    return -1;
  }
  return 0;
}

static void cmd_set(struct client *c, const struct request *req) {
  enum set_condition cond;
  if (parse_set_options(c, req, &cond) < 0)
    return;
  const struct arg *key = &req->argv[1], *val = &req->argv[2];
  if (cond != SET_ALWAYS) {
    int exists = table_find(&db, key->ptr, key->len) != NULL;
    if (exists != (cond == SET_IF_PRESENT)) {
      reply_nil(c);
      return;
    }
  }
  if (table_set(&db, key->ptr, key->len, val->ptr, val->len) < 0)
    reply_oom(c);
  else
    reply_ok(c);
}

static void cmd_get(struct client *c, const struct request *req) {
  struct entry *e = table_find(&db, req->argv[1].ptr, req->argv[1].len);
  if (e)
    reply_bulk(c, e->val, e->vallen);
  else
    reply_nil(c);
}

static void cmd_del(struct client *c, const struct request *req) {
  long long removed = 0;
  for (size_t i = 1; i < req->argc; i++)
    removed += table_del(&db, req->argv[i].ptr, req->argv[i].len);
  reply_int(c, removed);
}

static void cmd_exists(struct client *c, const struct request *req) {
  long long found = 0; /* a key named twice counts twice, as in redis */
  for (size_t i = 1; i < req->argc; i++)
    found += table_find(&db, req->argv[i].ptr, req->argv[i].len) != NULL;
  reply_int(c, found);
}

static void cmd_incr(struct client *c, const struct request *req) {
  const struct arg *key = &req->argv[1];
  struct entry *e = table_find(&db, key->ptr, key->len);
  long long value = 0;
  if (e && parse_int64(e->val, e->vallen, &value) < 0) {
    reply_error(c, "value is not an integer or out of range");
    return;
  }
  if (value == INT64_MAX) {
    reply_error(c, "increment or decrement would overflow");
    return;
  }
  value++;
  char digits[24];
  int n = snprintf(digits, sizeof digits, "%lld", value);
  if (table_set(&db, key->ptr, key->len, digits, (size_t)n) < 0)
    reply_oom(c);
  else
    reply_int(c, value);
}

static void cmd_dbsize(struct client *c, const struct request *req) {
  reply_int(c, (long long)db.count);
}

static void cmd_flushall(struct client *c, const struct request *req) {
  if (req->argc > 2 || (req->argc == 2 && !arg_is(&req->argv[1], "ASYNC") &&
                        !arg_is(&req->argv[1], "SYNC"))) {
    reply_error(c, "syntax error");
    return;
  }
  table_clear(&db);
  reply_ok(c);
}

static void cmd_info(struct client *c, const struct request *req) {
  char text[512];
  int n = snprintf(text, sizeof text,
                   "# Server\r\n"
                   "kvd_version:%d.%d\r\n"
                   "tcp_port:%d\r\n"
                   "\r\n"
                   "# Stats\r\n"
                   "connected_clients:%zu\r\n"
                   "total_connections_received:%llu\r\n"
                   "total_commands_processed:%llu\r\n"
                   "\r\n"
                   "# Keyspace\r\n"
                   "keys:%zu\r\n",
                   KVD_VERSION, KVD_PATCHLEVEL, server_port, nclients,
                   (unsigned long long)connections_accepted,
                   (unsigned long long)commands_processed, db.count);
  reply_bulk(c, text, (size_t)n);
}

/* redis-benchmark asks for "save" and "appendonly" when it starts; answer
 * like a redis without persistence. Unknown parameters match nothing. */
static void cmd_config(struct client *c, const struct request *req) {
  const char *const params[][2] = {{"save", ""}, {"appendonly", "no"}};
  const size_t nparams = sizeof params / sizeof *params;
  if (!arg_is(&req->argv[1], "GET")) {
    char sub[64];
    printable_copy(sub, sizeof sub, &req->argv[1]);
    reply_error(c, "CONFIG subcommand '%s' is not supported by kvd", sub);
    return;
  }
  if (req->argc < 3) {
    reply_error(c, "wrong number of arguments for 'config|get' command");
    return;
  }
  int match[sizeof params / sizeof *params] = {0};
  size_t matched = 0;
  for (size_t i = 2; i < req->argc; i++)
    for (size_t p = 0; p < nparams; p++)
      if (!match[p] && arg_is(&req->argv[i], params[p][0])) {
        match[p] = 1;
        matched++;
      }
  reply_array_len(c, 2 * matched);
  for (size_t p = 0; p < nparams; p++)
    if (match[p]) {
      reply_bulk(c, params[p][0], strlen(params[p][0]));
      reply_bulk(c, params[p][1], strlen(params[p][1]));
    }
}

/* COMMAND, COMMAND DOCS, ...: kvd publishes no command table; an empty array
 * makes redis-cli fall back to plain behaviour. */
static void cmd_command(struct client *c, const struct request *req) {
  reply_array_len(c, 0);
}

static void cmd_quit(struct client *c, const struct request *req) {
  reply_ok(c);
  c->close_after_write = 1;
}

/* A table of code pointers must never be copied from the old version: the
 * new version starts from its own initialiser. */
static const struct command command_table[] MVEDSUA_NO_MIGRATE = {
    {"ping", -1, cmd_ping},     {"echo", 2, cmd_echo},
    {"set", -3, cmd_set},       {"get", 2, cmd_get},
    {"del", -2, cmd_del},       {"exists", -2, cmd_exists},
    {"incr", 2, cmd_incr},      {"dbsize", 1, cmd_dbsize},
    {"flushall", -1, cmd_flushall}, {"info", -1, cmd_info},
    {"config", -2, cmd_config}, {"command", -1, cmd_command},
    {"quit", -1, cmd_quit},
};

static const struct command *lookup_command(const struct arg *name) {
  for (size_t i = 0; i < sizeof command_table / sizeof *command_table; i++)
    if (arg_is(name, command_table[i].name))
      return &command_table[i];
  return NULL;
}

static int arity_ok(const struct command *cmd, size_t argc) {
  return cmd->arity >= 0 ? argc == (size_t)cmd->arity
                         : argc >= (size_t)-cmd->arity;
}

void execute_request(struct client *c, const struct request *req) {
  commands_processed++;
  const struct command *cmd = lookup_command(&req->argv[0]);
  if (!cmd) {
    char name[64];
    printable_copy(name, sizeof name, &req->argv[0]);
    reply_error(c, "unknown command '%s'", name);
    return;
  }
  if (!arity_ok(cmd, req->argc)) {
    reply_error(c, "wrong number of arguments for '%s' command", cmd->name);
    return;
  }
  cmd->fn(c, req);
}
