// Report.cpp: the runtime's diagnostics. Formatting goes to a stack buffer and
// out with one write(2), so a message is never interleaved with the program's
// own output and is safe from signal handlers and constructors.
#include "Runtime.h"

#include <stdarg.h>
#include <unistd.h>

namespace mvedsua {

void Report(const char *fmt, ...) {
  char buf[8192]; // a divergence report with its rules' notes and stack
  int prefix = snprintf(buf, sizeof buf, "mvedsua: ");
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + prefix, sizeof buf - prefix - 1, fmt, ap);
  va_end(ap);
  size_t len = prefix + (n < 0 ? 0 : n);
  if (len > sizeof buf - 2)
    len = sizeof buf - 2;
  buf[len++] = '\n';
  ssize_t ignored = write(2, buf, len);
  (void)ignored;
}

} // namespace mvedsua
