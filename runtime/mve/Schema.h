// Schema.h: the per-syscall schema (Schema.def) as data, and the walks over
// one call's arguments that recording and replaying share.
#ifndef MVEDSUA_MVE_SCHEMA_H
#define MVEDSUA_MVE_SCHEMA_H

#include <stdint.h>

namespace mvedsua {
namespace mve {

enum ArgKind : uint8_t {
  kX, kS, kP, kStr, kIn, kInF, kOutR, kOutF, kInOutF, kLenBuf, kLenPtr,
  kIovIn, kIovOut, kMsgIn, kMsgOut, kEpevIn, kEpevOut, kPollFd, kFdSet,
  kFcntlArg, kIoctlArg,
};

struct ArgSpec {
  ArgKind kind;
  uint8_t arg;   // the argument holding a length or count
  uint16_t size; // fixed sizes
};

enum CallClass : uint8_t { kLocal = 0, kReplay, kExit };

struct Spec {
  const char *name;
  CallClass cls;
  ArgSpec args[6];
};

constexpr int kMaxSyscall = 512;
// Not a system call: the records of mvedsua_shared_value (a value one thread
// read from memory another thread writes), the last number of the table.
#define SYS_mvedsua_shared_value 511
// The schema of syscall `nr` (class kLocal with a null name if unlisted).
const Spec &SpecOf(long nr);
const char *SyscallName(long nr); // "syscall_N" for unlisted ones
// Whether call `nr` hands something to whoever waits on a descriptor or a
// thread (bytes another thread may read, a registration its epoll_wait
// reports, a shutdown, a signal, a descriptor table change): what the
// calling thread wrote to memory before it may be read by the thread that
// sees it. The cross-thread order numbers such a call before it is made.
bool Publishes(long nr);
// Whether call `nr` may return what another thread (or, through a client,
// another thread's reply) handed over: bytes read, events, a connection, a
// child's end, a value another thread wrote (mvedsua_shared_value). With
// every thread's calls ordered, such a call is replayed only after the
// calls that published before it returned. Other calls (the time, a file's
// size) are not ordered: a program makes them inside its critical sections
// too, and a follower thread waiting there for another thread that waits
// for its lock would stop both.
bool Receives(long nr);

// One call, as recording and replaying see it: its number, the kernel's
// arguments, the result (after the call, or from the record) and what the
// pointers held before the call (capacities the kernel overwrites).
struct CallView {
  long nr;
  long a[6];
  long ret;
  uint64_t before[8]; // [6], [7]: msghdr name and control capacities
  // An in-out struct's bytes before the call (INOUTF, up to 16 bytes: a
  // select timeout, a sendfile offset): what the call was given is
  // compared, not what the kernel left there.
  uint64_t inout[6][2];
};

// Captures in-out lengths (socklen_t, msghdr lengths) and in-out structs
// before the call.
void CaptureBefore(CallView &c);
// The values compared for each argument (pointers reduced to their nullness,
// ignored ones to 0).
void CompareValues(const CallView &c, int64_t out[6]);

// Visits the bytes a call sends, in order: f(const void *p, uint64_t n).
// Out items: f(void *p, uint64_t n) with lengths known only after the call
// (and, in the follower, after the previous items were copied back).
typedef void (*InFn)(void *ctx, const void *p, uint64_t n);
typedef void (*OutFn)(void *ctx, void *p, uint64_t n);
void VisitIn(const CallView &c, InFn f, void *ctx);
void VisitOut(const CallView &c, OutFn f, void *ctx);

} // namespace mve
} // namespace mvedsua

#endif // MVEDSUA_MVE_SCHEMA_H
