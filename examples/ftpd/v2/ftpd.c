/*
 * ftpd.c: a small forking FTP server, version 2 (docs/ftpd.md): version 1
 * plus STOU (store unique), the prior-art case of a command the old version
 * rejects with "500 Unknown command.".
 *
 * Shaped like vsftpd in standalone mode: a master process listens on the
 * control port and forks one process per session; the child serves the
 * session to its end and exits; the master reaps it (SIGCHLD, waitpid).
 * Every session is rooted at the directory given with --root.
 *
 * Updates apply to the master, the long-lived process: its state is the
 * globals below (the listening socket, the configuration, the counters), and
 * its loop has the update point "accept". A session child is a copy of the
 * master as it was at the fork: it runs the version the master ran then, to
 * the end of the session. Its loop has an update point too ("session"), which
 * the runtime never triggers today (docs/ftpd.md says why).
 *
 * Control migration follows the mvedsua pattern: while a new version's main()
 * runs during an update, mvedsua_is_updating() is true and everything that
 * created state (arguments, the listening socket) is skipped.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mvedsua.h"

#define FTPD_VERSION 2
#define FTPD_DEFAULT_PORT 2121
#define FTPD_DEFAULT_BIND "127.0.0.1"
#define LINE_MAX_LEN 1024  /* a command line, CRLF included */
#define DATA_TIMEOUT_MS 30000 /* the client's data connection must come by then */
#define IO_CHUNK 65536

/* ---- the master's state: every global is migrated to the next version ---- */

struct ftpd_config {
  char root[PATH_MAX]; /* absolute, no trailing slash ("" for "/") */
  char user[64];       /* the configured user ("" for none) and its password */
  char pass[64];
  char bind_addr[64];
  int port; /* the port actually bound */
};

#define FTPD_MAX_SESSIONS 256

struct ftpd_master {
  int listen_fd;
  unsigned int sessions; /* sessions accepted since the start */
  unsigned int active;   /* session children not reaped yet */
  pid_t pids[FTPD_MAX_SESSIONS]; /* theirs; 0: a free slot */
};

struct ftpd_config config;
struct ftpd_master master = {.listen_fd = -1};
volatile sig_atomic_t stop_requested;

/* ---- one session (in the child): it never outlives its process ---------- */

enum { NEED_USER, NEED_PASS, LOGGED_IN };

struct session {
  int ctrl_fd;
  int pasv_fd; /* the passive data listener, -1 without PASV/EPSV */
  int state;
  int anonymous; /* anonymous sessions may read only */
  char user[64];
  char cwd[PATH_MAX]; /* virtual: "/" is config.root */
  char type;          /* 'A' or 'I': no conversion either way, like vsftpd */
  char in[LINE_MAX_LEN];
  size_t in_len;
  unsigned int number; /* which session of the master this is */
};

struct session sess = {.ctrl_fd = -1, .pasv_fd = -1};

/* ---- options --------------------------------------------------------------- */

static void usage(FILE *out) {
  fprintf(out,
          "usage: ftpd --root DIR [--port N] [--bind ADDR] [--user NAME:PASS]\n"
          "  --root DIR        the directory every session sees as /\n"
          "  --port N          control port (default %d, 0: any free one)\n"
          "  --bind ADDR       numeric IPv4 address (default %s)\n"
          "  --user NAME:PASS  a user who may also write (anonymous and ftp "
          "may read)\n",
          FTPD_DEFAULT_PORT, FTPD_DEFAULT_BIND);
}

static int parse_args(int argc, char **argv) {
  const char *root = NULL;
  config.port = FTPD_DEFAULT_PORT;
  snprintf(config.bind_addr, sizeof config.bind_addr, "%s", FTPD_DEFAULT_BIND);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help")) {
      usage(stdout);
      return 1;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "ftpd: %s needs a value\n", a);
      usage(stderr);
      return -1;
    }
    const char *v = argv[++i];
    if (!strcmp(a, "--root")) {
      root = v;
    } else if (!strcmp(a, "--port")) {
      char *end;
      long p = strtol(v, &end, 10);
      if (*end || p < 0 || p > 65535) {
        fprintf(stderr, "ftpd: invalid port '%s'\n", v);
        return -1;
      }
      config.port = (int)p;
    } else if (!strcmp(a, "--bind")) {
      snprintf(config.bind_addr, sizeof config.bind_addr, "%s", v);
    } else if (!strcmp(a, "--user")) {
      const char *colon = strchr(v, ':');
      if (!colon || colon == v || (size_t)(colon - v) >= sizeof config.user ||
          strlen(colon + 1) >= sizeof config.pass) {
        fprintf(stderr, "ftpd: --user wants NAME:PASS\n");
        return -1;
      }
      snprintf(config.user, sizeof config.user, "%.*s", (int)(colon - v), v);
      snprintf(config.pass, sizeof config.pass, "%s", colon + 1);
    } else {
      fprintf(stderr, "ftpd: unknown option '%s'\n", a);
      usage(stderr);
      return -1;
    }
  }
  if (!root) {
    fprintf(stderr, "ftpd: --root DIR is required\n");
    usage(stderr);
    return -1;
  }
  char real[PATH_MAX];
  struct stat st;
  if (!realpath(root, real) || stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "ftpd: --root %s: not a directory\n", root);
    return -1;
  }
  snprintf(config.root, sizeof config.root, "%s", strcmp(real, "/") ? real : "");
  return 0;
}

/* ---- the control connection ------------------------------------------------ */

static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

static void reply(const char *fmt, ...) {
  char line[PATH_MAX + 128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 2, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n > sizeof line - 3)
    n = (int)sizeof line - 3;
  line[n++] = '\r';
  line[n++] = '\n';
  write_all(sess.ctrl_fd, line, (size_t)n);
}

/* The next command line, without its line end; 0 at the end of the session. */
static int read_command(char *out, size_t size) {
  for (;;) {
    char *nl = memchr(sess.in, '\n', sess.in_len);
    if (nl) {
      size_t len = (size_t)(nl - sess.in);
      size_t keep = len;
      if (keep > 0 && sess.in[keep - 1] == '\r')
        keep--;
      if (keep >= size)
        keep = size - 1;
      memcpy(out, sess.in, keep);
      out[keep] = '\0';
      sess.in_len -= len + 1;
      memmove(sess.in, nl + 1, sess.in_len);
      return 1;
    }
    if (sess.in_len == sizeof sess.in) { /* over-long: dropped, answered */
      sess.in_len = 0;
      reply("500 Command line too long.");
      continue;
    }
    ssize_t n = read(sess.ctrl_fd, sess.in + sess.in_len,
                     sizeof sess.in - sess.in_len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return 0;
    sess.in_len += (size_t)n;
  }
}

/* ---- paths: everything stays under config.root ----------------------------- */

/* The virtual path of `arg` (relative to the session's cwd) in `vpath`, and
 * the real one in `real`; -1 when too long. ".." never leaves the root. */
static int resolve(const char *arg, char *vpath, char *real) {
  char tmp[PATH_MAX * 2];
  if (arg[0] == '/')
    snprintf(tmp, sizeof tmp, "%s", arg);
  else
    snprintf(tmp, sizeof tmp, "%s/%s", sess.cwd, arg);
  size_t len = 0;
  vpath[0] = '\0';
  for (char *save, *part = strtok_r(tmp, "/", &save); part;
       part = strtok_r(NULL, "/", &save)) {
    if (!strcmp(part, "."))
      continue;
    if (!strcmp(part, "..")) {
      char *slash = strrchr(vpath, '/');
      if (slash)
        *slash = '\0';
      len = strlen(vpath);
      continue;
    }
    size_t plen = strlen(part);
    if (len + 1 + plen + 1 > PATH_MAX)
      return -1;
    vpath[len++] = '/';
    memcpy(vpath + len, part, plen + 1);
    len += plen;
  }
  if (len == 0)
    strcpy(vpath, "/");
  if (strlen(config.root) + strlen(vpath) + 1 > PATH_MAX)
    return -1;
  snprintf(real, PATH_MAX, "%s%s", config.root, len ? vpath : "/");
  return 0;
}

/* ---- data connections (passive only) -------------------------------------- */

static void close_pasv(void) {
  if (sess.pasv_fd >= 0)
    close(sess.pasv_fd);
  sess.pasv_fd = -1;
}

/* A listener on the control connection's local address, any port: its port. */
static int open_pasv(void) {
  close_pasv();
  struct sockaddr_in addr;
  socklen_t alen = sizeof addr;
  if (getsockname(sess.ctrl_fd, (struct sockaddr *)&addr, &alen) != 0 ||
      addr.sin_family != AF_INET)
    return -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  addr.sin_port = 0;
  alen = sizeof addr;
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
      listen(fd, 1) != 0 ||
      getsockname(fd, (struct sockaddr *)&addr, &alen) != 0) {
    close(fd);
    return -1;
  }
  sess.pasv_fd = fd;
  return ntohs(addr.sin_port);
}

static void cmd_pasv(void) {
  struct sockaddr_in addr;
  socklen_t alen = sizeof addr;
  int port = open_pasv();
  if (port < 0 ||
      getsockname(sess.ctrl_fd, (struct sockaddr *)&addr, &alen) != 0) {
    reply("425 Cannot open a passive connection.");
    return;
  }
  unsigned char *ip = (unsigned char *)&addr.sin_addr.s_addr;
  reply("227 Entering Passive Mode (%u,%u,%u,%u,%d,%d).", ip[0], ip[1], ip[2],
        ip[3], port >> 8, port & 255);
}

static void cmd_epsv(const char *arg) {
  if (arg && !strcasecmp(arg, "ALL")) {
    reply("200 EPSV ALL ok.");
    return;
  }
  int port = open_pasv();
  if (port < 0) {
    reply("425 Cannot open a passive connection.");
    return;
  }
  reply("229 Entering Extended Passive Mode (|||%d|)", port);
}

/* The client's data connection, after the 150 reply; -1 (answered) when
 * there is none. The passive listener is used once. */
static int accept_data(void) {
  if (sess.pasv_fd < 0) {
    reply("425 Use PASV or EPSV first.");
    return -1;
  }
  struct pollfd p = {.fd = sess.pasv_fd, .events = POLLIN};
  int r;
  while ((r = poll(&p, 1, DATA_TIMEOUT_MS)) < 0 && errno == EINTR)
    ;
  int fd = r == 1 ? accept4(sess.pasv_fd, NULL, NULL, SOCK_CLOEXEC) : -1;
  close_pasv();
  if (fd < 0)
    reply("425 Failed to establish connection.");
  return fd;
}

/* ---- listings --------------------------------------------------------------- */

static void mode_string(mode_t m, char *s) {
  s[0] = S_ISDIR(m) ? 'd' : S_ISLNK(m) ? 'l' : '-';
  const char *rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; i++)
    s[i + 1] = (m & (1 << (8 - i))) ? rwx[i] : '-';
  s[10] = '\0';
}

static int list_line(char *buf, size_t size, const char *name,
                     const struct stat *st, int full) {
  if (!full)
    return snprintf(buf, size, "%s\r\n", name);
  char mode[11], when[32];
  struct tm tm;
  mode_string(st->st_mode, mode);
  gmtime_r(&st->st_mtime, &tm);
  strftime(when, sizeof when, "%b %d %H:%M", &tm);
  return snprintf(buf, size, "%s %3lu %-8u %-8u %12lld %s %s\r\n", mode,
                  (unsigned long)st->st_nlink, (unsigned)st->st_uid,
                  (unsigned)st->st_gid, (long long)st->st_size, when, name);
}

static void cmd_list(const char *arg, int full) {
  /* "LIST -la dir": options are ignored */
  while (arg && *arg == '-') {
    arg = strchr(arg, ' ');
    while (arg && *arg == ' ')
      arg++;
  }
  char vpath[PATH_MAX], real[PATH_MAX];
  struct stat st;
  if (resolve(arg && *arg ? arg : ".", vpath, real) != 0 ||
      lstat(real, &st) != 0) {
    close_pasv();
    reply("550 No such file or directory.");
    return;
  }
  DIR *dir = S_ISDIR(st.st_mode) ? opendir(real) : NULL;
  if (S_ISDIR(st.st_mode) && !dir) {
    close_pasv();
    reply("550 Permission denied.");
    return;
  }
  reply("150 Here comes the directory listing.");
  int fd = accept_data();
  if (fd < 0) {
    if (dir)
      closedir(dir);
    return;
  }
  char line[PATH_MAX + 128];
  int ok = 1;
  if (!dir) {
    const char *base = strrchr(vpath, '/');
    int n = list_line(line, sizeof line, base ? base + 1 : vpath, &st, full);
    ok = write_all(fd, line, (size_t)n) == 0;
  } else {
    struct dirent *de;
    while (ok && (de = readdir(dir))) {
      if (de->d_name[0] == '.')
        continue;
      char path[PATH_MAX * 2];
      struct stat est;
      snprintf(path, sizeof path, "%s/%s", real, de->d_name);
      if (lstat(path, &est) != 0)
        continue;
      int n = list_line(line, sizeof line, de->d_name, &est, full);
      ok = write_all(fd, line, (size_t)n) == 0;
    }
    closedir(dir);
  }
  close(fd);
  reply(ok ? "226 Directory send OK." : "426 Failure writing network stream.");
}

/* ---- transfers -------------------------------------------------------------- */

/* Copies `in` to `out` to the end of `in`: 0, -1 reading, -2 writing. */
static int copy_fd(int in, int out) {
  static char buf[IO_CHUNK] MVEDSUA_NO_MIGRATE; /* scratch, not state */
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    if (n == 0)
      return 0;
    if (write_all(out, buf, (size_t)n) != 0)
      return -2;
  }
}

static void cmd_retr(const char *arg) {
  char vpath[PATH_MAX], real[PATH_MAX];
  struct stat st;
  int file = -1;
  if (resolve(arg, vpath, real) == 0)
    file = open(real, O_RDONLY | O_CLOEXEC);
  if (file < 0 || fstat(file, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (file >= 0)
      close(file);
    close_pasv();
    reply("550 Failed to open file.");
    return;
  }
  reply("150 Opening %s mode data connection for %s (%lld bytes).",
        sess.type == 'A' ? "ASCII" : "BINARY", arg, (long long)st.st_size);
  int fd = accept_data();
  if (fd >= 0) {
    int r = copy_fd(file, fd);
    close(fd);
    reply(r == 0 ? "226 Transfer complete."
          : r == -1 ? "451 Failure reading local file."
                    : "426 Failure writing network stream.");
  }
  close(file);
}

/* Receives the data connection into the file `real`, opened with `flags`;
 * the 150 reply says `what`. */
static void receive_file(const char *real, int flags, const char *what) {
  int file = open(real, O_WRONLY | O_CLOEXEC | flags, 0644);
  if (file < 0) {
    close_pasv();
    reply("553 Could not create file.");
    return;
  }
  reply("150 %s", what);
  int fd = accept_data();
  if (fd >= 0) {
    int r = copy_fd(fd, file);
    close(fd);
    reply(r == 0 ? "226 Transfer complete."
          : r == -1 ? "426 Failure reading network stream."
                    : "451 Failure writing to local file.");
  }
  close(file);
}

static int may_write(void) {
  if (!sess.anonymous)
    return 1;
  close_pasv();
  reply("550 Permission denied.");
  return 0;
}

static void cmd_stor(const char *arg) {
  char vpath[PATH_MAX], real[PATH_MAX];
  if (!may_write())
    return;
  if (resolve(arg, vpath, real) != 0) {
    close_pasv();
    reply("553 Could not create file.");
    return;
  }
  receive_file(real, O_CREAT | O_TRUNC, "Ok to send data.");
}

/* STOU [BASE]: stores under a name no file has yet: BASE (default "stou"),
 * else BASE.1, BASE.2, ... The 150 reply names the file (RFC 1123 4.1.2.9,
 * in vsftpd's words). */
static void cmd_stou(const char *arg) {
  char vpath[PATH_MAX], real[PATH_MAX];
  if (!may_write())
    return;
  if (sess.pasv_fd < 0) { /* before creating anything */
    reply("425 Use PASV or EPSV first.");
    return;
  }
  const char *base = arg && *arg ? arg : "stou";
  char name[PATH_MAX];
  for (unsigned i = 0; i < 10000; i++) {
    if (i == 0)
      snprintf(name, sizeof name, "%s", base);
    else
      snprintf(name, sizeof name, "%s.%u", base, i);
    if (resolve(name, vpath, real) != 0)
      break;
    int fd = open(real, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST)
      continue;
    if (fd < 0)
      break;
    close(fd);
    char what[PATH_MAX + 16];
    snprintf(what, sizeof what, "FILE: %s", name);
    receive_file(real, O_TRUNC, what);
    return;
  }
  close_pasv();
  reply("553 Could not create file.");
}

/* ---- the other commands ------------------------------------------------------ */

static void cmd_cwd(const char *arg) {
  char vpath[PATH_MAX], real[PATH_MAX];
  struct stat st;
  if (resolve(arg, vpath, real) != 0 || stat(real, &st) != 0 ||
      !S_ISDIR(st.st_mode) || access(real, X_OK) != 0) {
    reply("550 Failed to change directory.");
    return;
  }
  snprintf(sess.cwd, sizeof sess.cwd, "%s", vpath);
  reply("250 Directory successfully changed.");
}

static void cmd_size(const char *arg) {
  char vpath[PATH_MAX], real[PATH_MAX];
  struct stat st;
  if (resolve(arg, vpath, real) != 0 || stat(real, &st) != 0 ||
      !S_ISREG(st.st_mode)) {
    reply("550 Could not get file size.");
    return;
  }
  reply("213 %lld", (long long)st.st_size);
}

static void cmd_dele(const char *arg) {
  char vpath[PATH_MAX], real[PATH_MAX];
  if (!may_write())
    return;
  struct stat st;
  if (resolve(arg, vpath, real) != 0 || lstat(real, &st) != 0 ||
      S_ISDIR(st.st_mode) || unlink(real) != 0) {
    reply("550 Delete operation failed.");
    return;
  }
  reply("250 Delete operation successful.");
}

static void cmd_mkd(const char *arg) {
  char vpath[PATH_MAX], real[PATH_MAX];
  if (!may_write())
    return;
  if (resolve(arg, vpath, real) != 0 || mkdir(real, 0755) != 0) {
    reply("550 Create directory operation failed.");
    return;
  }
  reply("257 \"%s\" created", vpath);
}

static void cmd_rmd(const char *arg) {
  char vpath[PATH_MAX], real[PATH_MAX];
  if (!may_write())
    return;
  if (resolve(arg, vpath, real) != 0 || !strcmp(vpath, "/") ||
      rmdir(real) != 0) {
    reply("550 Remove directory operation failed.");
    return;
  }
  reply("250 Remove directory operation successful.");
}

static void cmd_user(const char *arg) {
  if (sess.state == LOGGED_IN) {
    reply("530 Can't change to another user.");
    return;
  }
  snprintf(sess.user, sizeof sess.user, "%s", arg);
  sess.state = NEED_PASS;
  reply("331 Please specify the password.");
}

static void cmd_pass(const char *arg) {
  if (sess.state == LOGGED_IN) {
    reply("230 Already logged in.");
    return;
  }
  if (sess.state != NEED_PASS) {
    reply("503 Login with USER first.");
    return;
  }
  if (!strcmp(sess.user, "anonymous") || !strcmp(sess.user, "ftp")) {
    sess.anonymous = 1;
  } else if (!config.user[0] || strcmp(sess.user, config.user) ||
             strcmp(arg, config.pass)) {
    sess.state = NEED_USER;
    reply("530 Login incorrect.");
    return;
  }
  sess.state = LOGGED_IN;
  reply("230 Login successful.");
}

static void cmd_feat(void) {
  reply("211-Features:");
  reply(" EPSV");
  reply(" PASV");
  reply(" SIZE");
  reply(" UTF8");
  reply("211 End");
}

/* One command; 0 when the session ends. */
static int dispatch(char *line) {
  char *arg = strchr(line, ' ');
  if (arg)
    *arg++ = '\0';
  else
    arg = line + strlen(line);
  for (char *p = line; *p; p++)
    *p = (char)toupper((unsigned char)*p);
  const char *cmd = line;

  if (!strcmp(cmd, "QUIT")) {
    reply("221 Goodbye.");
    return 0;
  }
  if (!strcmp(cmd, "USER"))
    return cmd_user(arg), 1;
  if (!strcmp(cmd, "PASS"))
    return cmd_pass(arg), 1;
  if (!strcmp(cmd, "NOOP"))
    return reply("200 NOOP ok."), 1;
  if (!strcmp(cmd, "SYST"))
    return reply("215 UNIX Type: L8"), 1;
  if (!strcmp(cmd, "FEAT"))
    return cmd_feat(), 1;
  if (!strcmp(cmd, "OPTS")) {
    if (!strcasecmp(arg, "UTF8 ON"))
      return reply("200 Always in UTF8 mode."), 1;
    return reply("501 Option not understood."), 1;
  }
  if (sess.state != LOGGED_IN)
    return reply("530 Please login with USER and PASS."), 1;

  if (!strcmp(cmd, "PWD") || !strcmp(cmd, "XPWD"))
    reply("257 \"%s\" is the current directory", sess.cwd);
  else if (!strcmp(cmd, "CWD") || !strcmp(cmd, "XCWD"))
    cmd_cwd(arg);
  else if (!strcmp(cmd, "CDUP") || !strcmp(cmd, "XCUP"))
    cmd_cwd("..");
  else if (!strcmp(cmd, "TYPE")) {
    char t = (char)toupper((unsigned char)arg[0]);
    if (t == 'A' || t == 'I' || (t == 'L' && !strcmp(arg + 1, " 8"))) {
      sess.type = t == 'A' ? 'A' : 'I';
      reply(t == 'A' ? "200 Switching to ASCII mode."
                     : "200 Switching to Binary mode.");
    } else {
      reply("500 Unrecognised TYPE command.");
    }
  } else if (!strcmp(cmd, "MODE"))
    reply(!strcasecmp(arg, "S") ? "200 Mode set to S." : "504 Bad MODE command.");
  else if (!strcmp(cmd, "STRU"))
    reply(!strcasecmp(arg, "F") ? "200 Structure set to F."
                                : "504 Bad STRU command.");
  else if (!strcmp(cmd, "PASV"))
    cmd_pasv();
  else if (!strcmp(cmd, "EPSV"))
    cmd_epsv(arg);
  else if (!strcmp(cmd, "LIST"))
    cmd_list(arg, 1);
  else if (!strcmp(cmd, "NLST"))
    cmd_list(arg, 0);
  else if (!strcmp(cmd, "RETR"))
    cmd_retr(arg);
  else if (!strcmp(cmd, "STOR"))
    cmd_stor(arg);
  else if (!strcmp(cmd, "STOU"))
    cmd_stou(arg);
  else if (!strcmp(cmd, "DELE"))
    cmd_dele(arg);
  else if (!strcmp(cmd, "MKD") || !strcmp(cmd, "XMKD"))
    cmd_mkd(arg);
  else if (!strcmp(cmd, "RMD") || !strcmp(cmd, "XRMD"))
    cmd_rmd(arg);
  else if (!strcmp(cmd, "SIZE"))
    cmd_size(arg);
  else
    reply("500 Unknown command.");
  return 1;
}

/* The child's whole life: serve the control connection `fd`. */
static void serve_session(int fd, unsigned int number) {
  memset(&sess, 0, sizeof sess);
  sess.ctrl_fd = fd;
  sess.pasv_fd = -1;
  sess.state = NEED_USER;
  sess.type = 'A';
  sess.number = number;
  strcpy(sess.cwd, "/");
  reply("220 ftpd %d ready.", FTPD_VERSION);
  char line[LINE_MAX_LEN];
  for (;;) {
    mvedsua_update_point("session");
    if (!read_command(line, sizeof line) || !dispatch(line))
      break;
  }
  close_pasv();
  close(fd);
}

/* ---- the master ------------------------------------------------------------------ */

static void on_stop_signal(int sig) { stop_requested = 1; }
static void on_child_signal(int sig) {} /* only interrupts poll */

/* Handlers are code pointers into this version: installed by every version,
 * including while updating. No SA_RESTART: a signal must interrupt poll so
 * the loop sees stop_requested and reaps children. */
static void install_signal_handlers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = on_stop_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sa.sa_handler = on_child_signal;
  sigaction(SIGCHLD, &sa, NULL);
  signal(SIGPIPE, SIG_IGN); /* a vanished client is an EPIPE, not a death */
}

static int server_start(void) {
  struct sockaddr_in addr = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)config.port)};
  if (inet_pton(AF_INET, config.bind_addr, &addr.sin_addr) != 1) {
    fprintf(stderr, "ftpd: invalid --bind address '%s' (numeric IPv4)\n",
            config.bind_addr);
    return -1;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  socklen_t alen = sizeof addr;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
      bind(fd, (struct sockaddr *)&addr, sizeof addr) || listen(fd, 64) ||
      getsockname(fd, (struct sockaddr *)&addr, &alen)) {
    fprintf(stderr, "ftpd: cannot listen on %s:%d: %s\n", config.bind_addr,
            config.port, strerror(errno));
    if (fd >= 0)
      close(fd);
    return -1;
  }
  master.listen_fd = fd;
  config.port = ntohs(addr.sin_port);
  fprintf(stderr, "ftpd: listening on %s:%d\n", config.bind_addr, config.port);
  return 0;
}

static void forget_child(pid_t pid) {
  for (int i = 0; i < FTPD_MAX_SESSIONS; i++)
    if (master.pids[i] == pid) {
      master.pids[i] = 0;
      master.active--;
      return;
    }
}

/* Reaps every session that ended. Called on every turn of the loop, whether
 * or not a SIGCHLD came: the same calls every time, whoever replays them. */
static void reap_children(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
    forget_child(pid);
}

/* When every slot is taken: frees those whose process is not our child
 * (any more). After a multi-version update has been promoted and finished,
 * the table of the version that leads lists the sessions the old leader had
 * forked: they are not this process's children, and it never reaps them. */
static void sweep_slots(void) {
  int status;
  for (int i = 0; i < FTPD_MAX_SESSIONS; i++)
    if (master.pids[i] && waitpid(master.pids[i], &status, WNOHANG) != 0)
      forget_child(master.pids[i]); /* ended now, or ECHILD: not ours */
}

/* A new session: its own process. */
static void start_session(int fd) {
  int slot = 0;
  for (int pass = 0; pass < 2; pass++) {
    for (slot = 0; slot < FTPD_MAX_SESSIONS && master.pids[slot]; slot++)
      ;
    if (slot < FTPD_MAX_SESSIONS || pass == 1)
      break;
    sweep_slots();
  }
  pid_t pid = slot < FTPD_MAX_SESSIONS ? fork() : -1;
  if (pid == 0) {
    /* the child: the session's process, to the session's end */
    close(master.listen_fd);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    serve_session(fd, master.sessions + 1);
    _exit(0);
  }
  if (pid > 0) {
    master.sessions++;
    master.active++;
    master.pids[slot] = pid;
  } else {
    static const char busy[] = "421 Too many sessions, try later.\r\n";
    write_all(fd, busy, sizeof busy - 1);
  }
  close(fd);
}

static int serve(void) {
  for (;;) {
    mvedsua_update_point("accept");
    reap_children();
    if (stop_requested)
      return 0;
    /* poll, not a blocking accept: a signal (a stop, a child's end, or the
     * runtime's wake-up for an update) interrupts poll whatever SA_RESTART
     * says, and the loop goes back to its update point. */
    struct pollfd p = {.fd = master.listen_fd, .events = POLLIN};
    int n = poll(&p, 1, -1);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      perror("ftpd: poll");
      return 1;
    }
    int fd = accept4(master.listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
      continue; /* the client went away, or EINTR: next turn */
    start_session(fd);
  }
}

/* Sessions end with the master: each child gets SIGTERM and is waited for. */
static void server_stop(void) {
  close(master.listen_fd);
  for (int i = 0; i < FTPD_MAX_SESSIONS; i++)
    if (master.pids[i])
      kill(master.pids[i], SIGTERM);
  for (int i = 0; i < FTPD_MAX_SESSIONS; i++)
    if (master.pids[i]) {
      int status;
      waitpid(master.pids[i], &status, 0);
      master.pids[i] = 0;
    }
  master.active = 0;
}

int main(int argc, char **argv) {
  install_signal_handlers();
  if (!mvedsua_is_updating()) {
    int r = parse_args(argc, argv);
    if (r != 0)
      return r > 0 ? 0 : 2;
    if (server_start() < 0)
      return 1;
  }
  int status = serve();
  fprintf(stderr, "ftpd: shutting down\n");
  server_stop();
  return status;
}
