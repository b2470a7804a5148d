// CtlMain.cpp: mvedsua-ctl, the operator's client of mvedsua-run's control
// socket. It sends one request line, prints the reply, and exits 0, or 1 when
// the supervisor answered with an error or could not be reached (2: usage).
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char kUsage[] =
    "usage: mvedsua-ctl --control SOCKET COMMAND\n"
    "\n"
    "Talks to the mvedsua-run supervisor serving SOCKET.\n"
    "\n"
    "Commands:\n"
    "  status [--json]   the running version (path, id) and the update stage\n"
    "\n"
    "  --control SOCKET  the supervisor's control socket (mvedsua-run --control)\n"
    "  --help            print this help\n";

static int UsageError(const char *what, const char *arg) {
  fprintf(stderr, "mvedsua-ctl: error: %s%s (see mvedsua-ctl --help)\n", what,
          arg);
  return 2;
}

static int Connect(const char *path) {
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof addr.sun_path) {
    fprintf(stderr, "mvedsua-ctl: error: control socket path too long: %s\n",
            path);
    return -1;
  }
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0)
    return fd;
  fprintf(stderr, "mvedsua-ctl: error: cannot connect to control socket %s: %s\n",
          path, strerror(errno));
  if (fd >= 0)
    close(fd);
  return -1;
}

static bool WriteAll(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    buf += n;
    len -= n;
  }
  return true;
}

// The whole reply: the supervisor closes the connection after it.
static ssize_t ReadReply(int fd, char *buf, size_t size) {
  size_t len = 0;
  while (len < size - 1) {
    ssize_t n = read(fd, buf + len, size - 1 - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    if (n == 0)
      break;
    len += n;
  }
  buf[len] = '\0';
  return len;
}

// Sends `request` to the supervisor at `path` and prints its reply.
static int Transact(const char *path, const char *request) {
  int fd = Connect(path);
  if (fd < 0)
    return 1;
  static char reply[1 << 16];
  bool sent = WriteAll(fd, request, strlen(request));
  ssize_t len = sent ? ReadReply(fd, reply, sizeof reply) : -1;
  close(fd);
  if (len <= 0) {
    fprintf(stderr, "mvedsua-ctl: error: no reply from control socket %s%s%s\n",
            path, len < 0 ? ": " : "", len < 0 ? strerror(errno) : "");
    return 1;
  }
  if (strncmp(reply, "error: ", 7) == 0) {
    fprintf(stderr, "mvedsua-ctl: error: %s: %s", path, reply + 7);
    return 1;
  }
  fputs(reply, stdout);
  return 0;
}

static int Status(const char *control, int argc, char **argv) {
  bool json = false;
  for (int i = 0; i < argc; ++i) {
    if (strcmp(argv[i], "--json") != 0)
      return UsageError("status: unknown argument ", argv[i]);
    json = true;
  }
  return Transact(control, json ? "status --json\n" : "status\n");
}

int main(int argc, char **argv) {
  const char *control = nullptr;
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; ++i) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(kUsage, stdout);
      return 0;
    }
    if (strcmp(argv[i], "--control") == 0 && i + 1 < argc)
      control = argv[++i];
    else if (strncmp(argv[i], "--control=", 10) == 0)
      control = argv[i] + 10;
    else
      return UsageError("unknown option or missing value: ", argv[i]);
  }
  if (!control || !*control)
    return UsageError("no control socket given: use --control SOCKET", "");
  if (i == argc)
    return UsageError("no command given", "");
  if (strcmp(argv[i], "status") == 0)
    return Status(control, argc - i - 1, argv + i + 1);
  return UsageError("unknown command ", argv[i]);
}
