// Rules.cpp: the follower's matcher (docs/rules.md).
//
// With rules loaded, the follower's replay no longer takes the leader's
// records one by one: a record whose syscall starts some rule's left side
// is copied out of the log (with as many following records as the rule's
// left side needs), and when a rule matches, its right side replaces those
// records in a queue of what the follower must do next:
//   exact    a leader's record, compared and replayed as without rules
//   synth    a call the rule describes (wildcards, variables, strings, a
//            predicate), with the result of the left call it stands for,
//            or run for real when it stands for none (the follower's own
//            extra call), then the rule's callback
//   star     any number of such calls (scall *), run for real
// A record no rule starts with is replayed straight from the log, as
// without rules: that is the whole cost of rules that do not match, beyond
// one index lookup per call.
//
// This runs in the SIGSYS handler too: nothing here allocates or locks
// after RulesActivate; records live in a preallocated arena.
#include "Rules.h"
#include "../Runtime.h"
#include "../Threads.h"
#include "EpollMap.h"
#include "Follower.h"
#include "Handover.h"
#include "Log.h"
#include "Raw.h"
#include "Shim.h"
#include "Sud.h"
#include "mvedsua/rules_abi.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

namespace mvedsua {
namespace mve {

Matcher *g_rules;

namespace {

constexpr int kMaxRecs = 64;      // leader records held at once
constexpr int kMaxItems = 128;    // queued expectations
constexpr int kMaxEnvs = 64;      // rule instances alive at once
constexpr int kWindow = 6;        // calls shown around a divergence
constexpr uint64_t kArenaBytes = uint64_t(64) << 20;

char g_pending[512];
char g_learn_path[512]; // learning: where each difference goes

// A leader's record copied out of the log.
struct Rec {
  RecHead h;
  uint8_t *in;  // bytes sent
  uint8_t *out; // out-items: (u64 length, bytes)*
  uint64_t out_len;
  bool live;
};

// One matched rule: its variables and which of them are bound.
struct Env {
  mvr_ctx ctx;
  uint32_t bound;
  int refs;
  const mvr_rule *rule;
};

struct Item {
  enum Kind : uint8_t { kExact, kSynth, kStar } kind;
  Rec *rec;            // exact: the record; synth: the result's source
  const mvr_call *call;
  Env *env;
};

struct Seen {
  int32_t nr;
  int64_t args[6];
  int64_t ret;
};

// The rules themselves: loaded once per follower, read-only after
// RulesActivate, shared by every lane's matcher.
struct RuleSet {
  const mvr_table *table; // null when only learning
  bool learn;             // note differences and go on (docs/rules.md)
  uint64_t learned;       // differences noted, over every lane
  // Rules by the syscall of their first left call, and `nothing` rules by
  // the syscall of their first right call: rule numbers, -1 terminated.
  int *by_lhs[kMaxSyscall];
  int *by_extra[kMaxSyscall];
  bool any_extra;
  struct sigaction old_actions[32];
};

} // namespace

// One lane's matcher: the records its follower thread holds, what that
// thread must do next, and what its reports show. Each follower thread
// matches its own lane's records with its own (t_matcher).
struct Matcher {
  Rec recs[kMaxRecs];
  int live_recs;
  uint8_t *arena;
  uint64_t arena_used;
  Rec *ahead[kMaxRecs]; // copied, not yet matched
  int n_ahead;
  Item items[kMaxItems]; // a ring
  int head, count;
  Env envs[kMaxEnvs];
  // For reports.
  Seen leader_seen[kWindow], follower_seen[kWindow];
  uint64_t n_leader_seen, n_follower_seen;
  const mvr_rule *expected_by; // the rule of the item being checked
  const mvr_rule *near;        // the last rule that almost matched
  char near_why[160];
  // Where the last rule that almost matched failed, formatted only for a
  // report (this is noted for every rule tried).
  enum NearKind : uint8_t { kNoBytes, kArgDiffers, kPredFalse } near_kind;
  int near_call, near_arg;
  uint32_t near_nr;
  // A crash in C code of a rule (in this lane's thread).
  const mvr_rule *in_rule;
  const char *in_what;
};

namespace {

RuleSet g_set;
// kMaxLanes matchers, mapped at RulesActivate (pages touched only by the
// lanes that exist); a lane's arena is mapped when its thread joins it,
// before it replays.
Matcher *g_lane_matchers;
__thread __attribute__((tls_model("initial-exec"))) Matcher *t_matcher;

Matcher &Cur() { return *t_matcher; }

// " in thread K (name)" for a managed thread's lane, "" for main's: what
// divergence reports say too.
void LaneName(char *out, size_t size) {
  int k = ShimLane();
  if (k > 0)
    snprintf(out, size, " in thread %d (%s)", k, ThreadName(ShimSlotOfLane(k)));
  else if (size)
    out[0] = 0;
}

// ---- rule errors -------------------------------------------------------------

[[noreturn]] void RuleError(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

[[noreturn]] void RuleError(const char *fmt, ...) {
  if (t_matcher) // the text names the rule
    Cur().expected_by = Cur().near = nullptr;
  DivergenceReport *r = ShimLaneReport();
  memset(r, 0, sizeof *r);
  r->kind = kDivRule;
  r->leader_nr = r->follower_nr = -1;
  char thread[96];
  LaneName(thread, sizeof thread);
  va_list ap;
  va_start(ap, fmt);
  int n = snprintf(r->text, sizeof r->text, "rule error%s: ", thread);
  vsnprintf(r->text + n, sizeof r->text - n, fmt, ap);
  va_end(ap);
  ShimDiverge(r);
}

const int kCrashSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

// A crash while a rule's C code runs is the rule's fault: reported as a rule
// error naming it. Other crashes go to the handler that was there before
// (the follower's crash report).
void OnCrash(int sig, siginfo_t *info, void *uc) {
  if (t_matcher && t_matcher->in_rule) {
    Matcher &m = Cur();
    const mvr_rule *rule = m.in_rule;
    m.in_rule = nullptr;
    RuleError("the %s of rule %s crashed: signal %d (SIG%s), address %p\n"
              "  rule: %s\n",
              m.in_what, rule->name, sig, sigabbrev_np(sig),
              info->si_addr, rule->text);
  }
  struct sigaction &old = g_set.old_actions[sig];
  if (old.sa_flags & SA_SIGINFO) {
    old.sa_sigaction(sig, info, uc);
    return;
  }
  if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) {
    old.sa_handler(sig);
    return;
  }
  sigaction(sig, &old, nullptr);
  // Raw: a follower's libc raise() is a replayed call (Schema.def).
  RawSyscall(SYS_tgkill, RawSyscall(SYS_getpid), RawSyscall(SYS_gettid), sig);
}

// Rules activated again in a process that had them (a promoted follower
// forks the next one) find OnCrash there: the handler it replaced is kept.
void InstallCrashHandlers() {
  for (int sig : kCrashSignals) {
    struct sigaction sa, prev;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = OnCrash;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(sig, &sa, &prev);
    if (!(prev.sa_flags & SA_SIGINFO) || prev.sa_sigaction != OnCrash)
      g_set.old_actions[sig] = prev;
  }
}

// The rule's C code runs with the selector open: a syscall it makes (a
// debugging fprintf) is the follower's own, not a call to replay.
int CallPred(const mvr_rule *rule, int (*f)(mvr_ctx *), mvr_ctx *ctx) {
  Cur().in_rule = rule;
  Cur().in_what = "predicate";
  SudAllow();
  int r = f(ctx);
  SudBlock();
  Cur().in_rule = nullptr;
  return r;
}

void CallCallback(const mvr_rule *rule, void (*f)(mvr_ctx *), mvr_ctx *ctx) {
  Cur().in_rule = rule;
  Cur().in_what = "callback";
  SudAllow();
  f(ctx);
  SudBlock();
  Cur().in_rule = nullptr;
}

// ---- records -----------------------------------------------------------------

void Remember(Seen *ring, uint64_t *n, int32_t nr, const int64_t args[6],
              int64_t ret) {
  Seen &s = ring[*n % kWindow];
  s.nr = nr;
  memcpy(s.args, args, sizeof s.args);
  s.ret = ret;
  ++*n;
}

void RememberFollower(const CallView &c, int64_t ret) {
  int64_t v[6];
  CompareValues(c, v);
  Remember(Cur().follower_seen, &Cur().n_follower_seen, int32_t(c.nr),
           v, ret);
}

int FormatSeen(char *out, size_t size, const Seen &s, bool with_ret) {
  const Spec &spec = SpecOf(s.nr);
  int last = -1;
  for (int i = 0; i < 6; ++i)
    if (spec.args[i].kind != kX)
      last = i;
  int n = snprintf(out, size, "%s(", SyscallName(s.nr));
  for (int i = 0; i <= last && n < int(size); ++i) {
    ArgKind k = spec.args[i].kind;
    bool scalar = k == kS || k == kFcntlArg || k == kIoctlArg;
    n += snprintf(out + n, size - n, "%s%s", i ? "," : "",
                  scalar ? "" : (s.args[i] ? "ptr" : "NULL"));
    if (scalar && n < int(size))
      n += snprintf(out + n, size - n, "%lld", (long long)s.args[i]);
  }
  if (n < int(size))
    n += snprintf(out + n, size - n, with_ret ? ")=%lld" : ")", (long long)s.ret);
  return n;
}

int FormatWindow(char *out, size_t size, const char *who, const Seen *ring,
                 uint64_t n, bool with_ret) {
  int k = snprintf(out, size, "  %s's last calls:", who);
  uint64_t from = n > kWindow ? n - kWindow : 0;
  for (uint64_t i = from; i < n && k < int(size); ++i) {
    k += snprintf(out + k, size - k, " ");
    if (k < int(size))
      k += FormatSeen(out + k, size - k, ring[i % kWindow], with_ret);
  }
  if (k < int(size))
    k += snprintf(out + k, size - k, "\n");
  return k;
}

void *ArenaTake(uint64_t n) {
  Matcher &m = Cur();
  n = (n + 15) & ~uint64_t(15);
  if (m.arena_used + n > kArenaBytes)
    RuleError("a record of %llu bytes does not fit the matcher's %llu MiB "
              "arena\n", (unsigned long long)n,
              (unsigned long long)(kArenaBytes >> 20));
  void *p = m.arena + m.arena_used;
  m.arena_used += n;
  return p;
}

Rec *NewRec() {
  Matcher &m = Cur();
  for (Rec &r : m.recs)
    if (!r.live) {
      r.live = true;
      m.live_recs++;
      return &r;
    }
  RuleError("more than %d leader records held by the rules at once\n",
            kMaxRecs);
}

void FreeRec(Rec *r) {
  Matcher &m = Cur();
  if (!r || !r->live)
    return;
  r->live = false;
  if (--m.live_recs == 0)
    m.arena_used = 0; // nothing held: the arena starts over
}

// The rest of a record whose head was read, copied out of the log.
Rec *CopyRecord(const RecHead &h, uint64_t len) {
  Rec *r = NewRec();
  r->h = h;
  uint64_t rest = len - sizeof h;
  uint8_t *body = static_cast<uint8_t *>(ArenaTake(rest ? rest : 1));
  LogRead(ShimThreadLog(), body, rest);
  // Descriptors the leader handed over with this record come in the log's
  // order: taken now, before the record leaves the log (a drained lane's
  // thread reads its socket no more), whatever the rules then make of it.
  if (h.n_fds)
    if (const char *why = HandoverReceive(h.n_fds))
      FollowerAbort(why);
  LogFinishRecord(ShimThreadLog());
  r->in = body;
  r->out = body + h.in_len;
  r->out_len = rest - h.in_len;
  Remember(Cur().leader_seen, &Cur().n_leader_seen, int32_t(h.nr),
           h.args, h.ret);
  return r;
}

// The next leader record into the look-ahead; false at the log's end.
bool FetchAhead() {
  Matcher &m = Cur();
  int64_t len = ShimWaitRecord(true);
  if (len < 0)
    return false;
  RecHead h;
  LogRead(ShimThreadLog(), &h, sizeof h);
  m.ahead[m.n_ahead++] = CopyRecord(h, uint64_t(len));
  return true;
}

void DropAhead(int n) {
  Matcher &m = Cur();
  memmove(m.ahead, m.ahead + n, sizeof(Rec *) * size_t(m.n_ahead - n));
  m.n_ahead -= n;
}

// ---- the bytes of one argument ----------------------------------------------

struct Bytes {
  const uint8_t *p;
  uint64_t n;
};

uint64_t StrLen(const uint8_t *p, uint64_t max) {
  const void *z = memchr(p, 0, max);
  return z ? uint64_t(static_cast<const uint8_t *>(z) - p) + 1 : max;
}

// Argument k of a leader's record: its bytes sent, or its bytes received
// (the out-item). False when the schema gives it no bytes the rules can
// find (the checker refuses patterns on those).
bool RecArg(const Rec &r, int k, Bytes &out) {
  const Spec &s = SpecOf(r.h.nr);
  uint64_t off = 0;
  for (int i = 0; i < 6; ++i) {
    const ArgSpec &a = s.args[i];
    bool set = r.h.args[i] != 0;
    uint64_t n = 0;
    switch (a.kind) {
    case kStr:
      if (off > r.h.in_len)
        return false;
      n = set ? StrLen(r.in + off, r.h.in_len - off) : 0;
      break;
    case kIn: n = set ? uint64_t(r.h.args[a.arg]) : 0; break;
    case kInF: case kInOutF: n = set ? a.size : 0; break;
    case kX: case kS: case kP: case kOutR: case kOutF: case kLenBuf:
    case kLenPtr:
      break;
    default:
      i = 6; // bytes of unknown length from here on
      continue;
    }
    if (i == k && n) {
      out = {r.in + off, n};
      return off + n <= r.h.in_len;
    }
    off += n;
  }
  if (r.h.ret < 0)
    return false;
  uint64_t pos = 0;
  auto item = [&](Bytes &b) {
    if (pos + 8 > r.out_len)
      return false;
    uint64_t n;
    memcpy(&n, r.out + pos, 8);
    b = {r.out + pos + 8, n};
    pos += 8 + n;
    return pos <= r.out_len;
  };
  for (int i = 0; i < 6; ++i) {
    const ArgSpec &a = s.args[i];
    bool set = r.h.args[i] != 0;
    Bytes b;
    switch (a.kind) {
    case kOutR: case kOutF: case kInOutF:
      if (!set)
        break;
      if (!item(b))
        return false;
      if (i == k) {
        out = b;
        return true;
      }
      break;
    case kLenBuf:
      if (r.h.args[a.arg] == -1) // no socklen_t: nothing copied
        break;
      if (!item(b) || (set && !item(b)))
        return false;
      if (i == k && set) {
        out = b;
        return true;
      }
      break;
    case kX: case kS: case kP: case kStr: case kIn: case kInF: case kLenPtr:
      break;
    default:
      return false;
    }
  }
  return false;
}

// The bytes the follower's call sends through argument k.
bool CallInArg(const CallView &c, int k, Bytes &out) {
  const ArgSpec &a = SpecOf(c.nr).args[k];
  const uint8_t *p = reinterpret_cast<const uint8_t *>(c.a[k]);
  if (!p)
    return false;
  switch (a.kind) {
  case kStr: out = {p, strlen(reinterpret_cast<const char *>(p)) + 1}; return true;
  case kIn: out = {p, uint64_t(c.a[a.arg])}; return true;
  case kInF: case kInOutF: out = {p, a.size}; return true;
  default: return false;
  }
}

bool IsOutKind(ArgKind k) {
  return k == kOutR || k == kOutF || k == kLenBuf;
}

// The length argument of a received buffer stands for the length received.
int LengthOf(const Spec &s, int k) {
  for (int i = 0; i < 6; ++i)
    if (s.args[i].kind == kOutR && s.args[i].arg == k)
      return i;
  return -1;
}

bool StartsWith(Bytes b, const mvr_arg &a) {
  return b.n >= a.len && memcmp(b.p, a.str, a.len) == 0;
}

// ---- matching the left side ------------------------------------------------

void Near(const mvr_rule *rule, Matcher::NearKind kind, int j, int k,
          uint32_t nr) {
  Matcher &m = Cur();
  m.near = rule;
  m.near_kind = kind;
  m.near_call = j;
  m.near_arg = k;
  m.near_nr = nr;
}

void FormatNear(char *out, size_t size) {
  Matcher &m = Cur();
  const char *name = SyscallName(m.near_nr);
  switch (m.near_kind) {
  case Matcher::kNoBytes:
    snprintf(out, size, "its call %d (%s) has no bytes for argument %d",
             m.near_call + 1, name, m.near_arg + 1);
    break;
  case Matcher::kArgDiffers:
    snprintf(out, size, "argument %d of its call %d (%s) does not match the "
             "leader's", m.near_arg + 1, m.near_call + 1, name);
    break;
  case Matcher::kPredFalse:
    snprintf(out, size, "the predicate of its call %d (%s) is false",
             m.near_call + 1, name);
    break;
  }
}

// One left call against a leader's record, binding variables in `env`.
bool MatchLeft(const mvr_rule *rule, int j, const Rec &r, Env &env) {
  const mvr_call &call = rule->lhs[j];
  if (uint32_t(call.nr) != r.h.nr)
    return false;
  const Spec &s = SpecOf(r.h.nr);
  for (int k = 0; k < 6; ++k) {
    const mvr_arg &a = call.args[k];
    if (a.kind == MVR_WILD)
      continue;
    bool len_arg = LengthOf(s, k) >= 0;
    int64_t value = len_arg ? r.h.ret : r.h.args[k];
    bool scalar = s.args[k].kind == kS || len_arg ||
                  s.args[k].kind == kFcntlArg || s.args[k].kind == kIoctlArg;
    Bytes b = {nullptr, 0};
    if (!scalar && !RecArg(r, k, b)) {
      Near(rule, Matcher::kNoBytes, j, k, r.h.nr);
      return false;
    }
    mvr_val &v = env.ctx.vars[a.var];
    bool ok = true;
    if (a.kind == MVR_INT)
      ok = value == a.ival;
    else if (a.kind == MVR_STR)
      ok = StartsWith(b, a);
    else if (env.bound & (1u << a.var))
      ok = scalar ? v.v == value
                  : (uint64_t(v.len) == b.n && memcmp(v.p, b.p, b.n) == 0);
    else if (scalar)
      v.v = value, env.bound |= 1u << a.var;
    else
      v.p = const_cast<char *>(reinterpret_cast<const char *>(b.p)),
      v.len = int64_t(b.n), env.bound |= 1u << a.var;
    if (!ok) {
      Near(rule, Matcher::kArgDiffers, j, k, r.h.nr);
      return false;
    }
  }
  env.ctx.ret = r.h.ret;
  if (call.pred && !CallPred(rule, call.pred, &env.ctx)) {
    Near(rule, Matcher::kPredFalse, j, 0, r.h.nr);
    return false;
  }
  return true;
}

Env *NewEnv(const mvr_rule *rule) {
  for (Env &e : Cur().envs)
    if (e.refs == 0) {
      // Only the rule's own variables: this runs for every rule tried.
      memset(e.ctx.vars, 0, sizeof e.ctx.vars[0] * size_t(rule->nvars));
      e.ctx.ret = 0;
      e.bound = 0;
      e.rule = rule;
      return &e;
    }
  RuleError("more than %d rule instances alive at once\n", kMaxEnvs);
}

// Room at the front (for `nothing` and `begin` rules) or the back.
void Push(const Item &it, bool front) {
  Matcher &m = Cur();
  if (m.count == kMaxItems)
    RuleError("more than %d calls expected at once\n", kMaxItems);
  if (it.env)
    it.env->refs++;
  if (front) {
    m.head = (m.head + kMaxItems - 1) % kMaxItems;
    m.items[m.head] = it;
  } else {
    m.items[(m.head + m.count) % kMaxItems] = it;
  }
  m.count++;
}

void Pop() {
  Matcher &m = Cur();
  Item &it = m.items[m.head];
  if (it.env)
    it.env->refs--;
  m.head = (m.head + 1) % kMaxItems;
  m.count--;
}

// The right side of a matched rule, in order; records it does not refer to
// are dropped (the follower does not make those calls).
void Expand(const mvr_rule *rule, Env *env, Rec **lhs, bool front) {
  bool used[kMaxRecs] = {};
  Item items[kMaxItems];
  int n = 0;
  for (int j = 0; j < rule->nrhs && n < kMaxItems; ++j) {
    const mvr_call &c = rule->rhs[j];
    Rec *src = c.from >= 0 && lhs ? lhs[c.from] : nullptr;
    if (c.from >= 0)
      used[c.from] = true;
    Item::Kind kind = c.nr < 0 ? Item::kExact
                      : c.star ? Item::kStar : Item::kSynth;
    items[n++] = {kind, src, &c, env};
  }
  for (int i = 0; lhs && i < rule->nlhs; ++i)
    if (!used[i]) {
      ShimRecordDone(nullptr, lhs[i]->h.ret);
      // Its number said done without a wait: it may come after records of
      // this lane that the right side replays only later (a dropped read
      // that returned after the open the right side still makes), and it
      // makes no call whose place in the order matters.
      ShimOrderDone(lhs[i]->h);
      FreeRec(lhs[i]);
    }
  if (front)
    for (int i = n - 1; i >= 0; --i)
      Push(items[i], true);
  else
    for (int i = 0; i < n; ++i)
      Push(items[i], false);
}

// Tries the rules that start with the first record ahead; the first that
// matches is expanded, else the record is expected as it is.
void MatchAhead() {
  Matcher &m = Cur();
  Rec *first = m.ahead[0];
  if (const int *list = first->h.nr < uint32_t(kMaxSyscall) ? g_set.by_lhs[first->h.nr] : nullptr)
    for (; *list >= 0; ++list) {
      const mvr_rule *rule = &g_set.table->rules[*list];
      Env *env = NewEnv(rule);
      int j = 0;
      for (; j < rule->nlhs; ++j) {
        if (j == m.n_ahead && !FetchAhead())
          break;
        if (!MatchLeft(rule, j, *m.ahead[j], *env))
          break;
      }
      if (j < rule->nlhs)
        continue;
      Rec *lhs[kMaxRecs];
      memcpy(lhs, m.ahead, sizeof(Rec *) * size_t(rule->nlhs));
      DropAhead(rule->nlhs);
      m.near = nullptr;
      Expand(rule, env, lhs, false);
      return;
    }
  Push({Item::kExact, first, nullptr, nullptr}, false);
  DropAhead(1);
}

// Could a rule starting with this record's call match it? Only the numbers
// its first left call gives are looked at (they are in the record's head),
// so that a record whose call starts rules that cannot match it is replayed
// straight from the log, not copied out of it.
bool MayMatch(const RecHead &h) {
  const int *list = h.nr < uint32_t(kMaxSyscall) ? g_set.by_lhs[h.nr] : nullptr;
  const Spec &s = SpecOf(h.nr);
  for (; list && *list >= 0; ++list) {
    const mvr_call &call = g_set.table->rules[*list].lhs[0];
    bool fits = true;
    for (int k = 0; k < 6 && fits; ++k)
      if (call.args[k].kind == MVR_INT)
        fits = (LengthOf(s, k) >= 0 ? h.ret : h.args[k]) == call.args[k].ival;
    if (fits)
      return true;
  }
  return false;
}

// ---- the follower's call against what is expected ---------------------------

DivergenceReport *StartReport(uint32_t kind, const Rec *r, const CallView &c) {
  DivergenceReport *d = ShimLaneReport();
  memset(d, 0, sizeof *d);
  d->kind = kind;
  d->leader_nr = r ? int32_t(r->h.nr) : -1;
  if (r) {
    memcpy(d->leader_args, r->h.args, sizeof r->h.args);
    d->leader_ret = r->h.ret;
  }
  d->follower_nr = int32_t(c.nr);
  CompareValues(c, d->follower_args);
  return d;
}

struct InCmp {
  const uint8_t *leader;
  uint64_t leader_len;
  uint64_t done;
  int64_t diff; // first differing offset, -1 none
};

void CompareInPiece(void *ctx, const void *p, uint64_t n) {
  InCmp *k = static_cast<InCmp *>(ctx);
  const uint8_t *b = static_cast<const uint8_t *>(p);
  for (uint64_t i = 0; i < n && k->diff < 0; ++i)
    if (k->done + i >= k->leader_len || k->leader[k->done + i] != b[i])
      k->diff = int64_t(k->done + i);
  k->done += n;
}

void AddLen(void *ctx, const void *, uint64_t n) {
  *static_cast<uint64_t *>(ctx) += n;
}

[[noreturn]] void BytesDiffer(const Rec &r, const CallView &c, uint64_t own,
                              uint64_t at) {
  DivergenceReport *d =
      StartReport(own == r.h.in_len ? kDivBytes : kDivLength, &r, c);
  d->leader_len = r.h.in_len;
  d->follower_len = own;
  d->offset = at;
  d->n_leader_bytes = uint32_t(at < r.h.in_len ? (r.h.in_len - at < 16 ? r.h.in_len - at : 16) : 0);
  memcpy(d->leader_bytes, r.in + at, d->n_leader_bytes);
  // The follower's bytes from `at`: gathered again.
  struct Gather {
    uint64_t at, pos;
    DivergenceReport *d;
  } g = {at, 0, d};
  VisitIn(c, [](void *ctx, const void *p, uint64_t n) {
    Gather *g = static_cast<Gather *>(ctx);
    const uint8_t *b = static_cast<const uint8_t *>(p);
    for (uint64_t i = 0; i < n; ++i, ++g->pos)
      if (g->pos >= g->at && g->d->n_follower_bytes < 16)
        g->d->follower_bytes[g->d->n_follower_bytes++] = b[i];
  }, &g);
  ShimDiverge(d);
}

struct OutCopy {
  const Rec *r;
  const CallView *c;
  uint64_t pos;
  const uint8_t *first; // replaces the first out-item (a rule's data)
  uint64_t first_len;
  int index;
};

void CopyOutPiece(void *ctx, void *p, uint64_t n) {
  OutCopy *k = static_cast<OutCopy *>(ctx);
  if (k->index++ == 0 && k->first) {
    memcpy(p, k->first, k->first_len < n ? k->first_len : n);
    if (k->pos + 8 <= k->r->out_len) { // the record's own data: skipped
      uint64_t len;
      memcpy(&len, k->r->out + k->pos, 8);
      k->pos += 8 + len;
    }
    return;
  }
  uint64_t len = 0;
  if (k->pos + 8 <= k->r->out_len)
    memcpy(&len, k->r->out + k->pos, 8);
  if (len != n || k->pos + 8 + n > k->r->out_len)
    ShimDiverge(StartReport(kDivOutput, k->r, *k->c));
  memcpy(p, k->r->out + k->pos + 8, n);
  k->pos += 8 + n;
}

// Learning: one difference as a line of the learn file; the follower goes
// on with the leader's result.
void Learn(const Rec &r, const CallView &c, const char *what, uint64_t at,
           uint64_t own) {
  uint64_t nth = __atomic_add_fetch(&g_set.learned, 1, __ATOMIC_RELAXED);
  if (nth > 10000)
    return; // enough to write the rules from
  char line[768];
  Seen leader = {int32_t(r.h.nr), {}, r.h.ret}, mine = {int32_t(c.nr), {}, 0};
  memcpy(leader.args, r.h.args, sizeof leader.args);
  CompareValues(c, mine.args);
  char thread[96];
  LaneName(thread, sizeof thread);
  int n = snprintf(line, sizeof line, "difference %llu at record %llu%s: %s\n"
                   "  leader:   ", (unsigned long long)nth,
                   (unsigned long long)ShimSeq(), thread, what);
  n += FormatSeen(line + n, sizeof line - n, leader, true);
  n += snprintf(line + n, sizeof line - n, "\n  follower: ");
  n += FormatSeen(line + n, sizeof line - n, mine, false);
  if (own != uint64_t(-1) && n < int(sizeof line)) {
    // The bytes from the first difference on, both sides.
    n += snprintf(line + n, sizeof line - n, "\n  at byte %llu: leader \"",
                  (unsigned long long)at);
    for (uint64_t i = at; i < r.h.in_len && i < at + 24 && n < int(sizeof line) - 8; ++i)
      n += snprintf(line + n, sizeof line - n,
                    r.in[i] >= 32 && r.in[i] < 127 && r.in[i] != '"' ? "%c" : "\\x%02x",
                    r.in[i]);
    struct Gather {
      uint64_t at, pos;
      uint8_t b[24];
      uint32_t n;
    } g = {at, 0, {}, 0};
    VisitIn(c, [](void *ctx, const void *p, uint64_t len) {
      Gather *g = static_cast<Gather *>(ctx);
      for (uint64_t i = 0; i < len; ++i, ++g->pos)
        if (g->pos >= g->at && g->n < sizeof g->b)
          g->b[g->n++] = static_cast<const uint8_t *>(p)[i];
    }, &g);
    n += snprintf(line + n, sizeof line - n, "\", follower \"");
    for (uint32_t i = 0; i < g.n && n < int(sizeof line) - 8; ++i)
      n += snprintf(line + n, sizeof line - n,
                    g.b[i] >= 32 && g.b[i] < 127 && g.b[i] != '"' ? "%c" : "\\x%02x",
                    g.b[i]);
    n += snprintf(line + n, sizeof line - n, "\"; %llu bytes vs %llu",
                  (unsigned long long)r.h.in_len, (unsigned long long)own);
  }
  if (n < int(sizeof line))
    n += snprintf(line + n, sizeof line - n, "\n");
  long fd = RawSyscall(SYS_openat, AT_FDCWD, long(g_learn_path),
                       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    return;
  RawWriteAll(int(fd), line, uint64_t(n < int(sizeof line) ? n : sizeof line - 1));
  RawSyscall(SYS_close, fd);
}

// A leader's record as it is: what the replay does without rules. While
// learning, a difference in what is sent is noted and the replay goes on;
// a different call ends it as usual (nothing to go on with).
long ReplayExact(CallView &c, Rec *r) {
  EpollTakeLeaderData(r->h); // data is mapped, not compared (EpollMap.h)
  if (r->h.nr != uint32_t(c.nr))
    ShimDiverge(StartReport(kDivCall, r, c));
  uint64_t own = 0;
  VisitIn(c, AddLen, &own);
  InCmp k = {r->in, r->h.in_len, 0, -1};
  VisitIn(c, CompareInPiece, &k);
  uint64_t at = k.diff >= 0 ? uint64_t(k.diff) : (own < r->h.in_len ? own : r->h.in_len);
  bool bytes = k.diff >= 0 || own != r->h.in_len;
  if (bytes && g_set.learn)
    Learn(*r, c, own == r->h.in_len ? "the bytes sent differ"
                                    : "one sent more bytes than the other", at, own);
  else if (bytes)
    BytesDiffer(*r, c, own, at);
  int64_t mine[6];
  CompareValues(c, mine);
  for (int i = 0; i < 6; ++i)
    if (mine[i] != r->h.args[i] && !(bytes && g_set.learn)) {
      if (g_set.learn) {
        char what[64];
        snprintf(what, sizeof what, "argument %d differs", i + 1);
        Learn(*r, c, what, 0, uint64_t(-1));
        break;
      }
      DivergenceReport *d = StartReport(kDivArgument, r, c);
      d->arg = i;
      ShimDiverge(d);
    }
  c.ret = r->h.ret;
  OutCopy o = {r, &c, 0, nullptr, 0, 0};
  VisitOut(c, CopyOutPiece, &o);
  return long(r->h.ret);
}

// The follower's call does not fit the rule's right side. A buffer that
// differs is shown as bytes: the rule's (as the leader's side) against the
// follower's.
[[noreturn]] void SynthMismatch(const Item &it, const CallView &c, int arg,
                                const char *why) {
  DivergenceReport *d = StartReport(kDivArgument, it.rec, c);
  d->arg = arg < 0 ? 0 : arg;
  if (!it.rec) { // an extra call: show what the rule wanted
    d->leader_nr = it.call->nr;
    for (int k = 0; k < 6; ++k)
      d->leader_args[k] = it.call->args[k].kind == MVR_INT ? it.call->args[k].ival : 0;
  }
  Bytes mine;
  if (arg >= 0 && CallInArg(c, arg, mine)) {
    const mvr_arg &a = it.call->args[arg];
    const mvr_val &v = it.env->ctx.vars[a.var];
    Bytes want = a.kind == MVR_STR
                     ? Bytes{reinterpret_cast<const uint8_t *>(a.str), a.len}
                     : Bytes{reinterpret_cast<const uint8_t *>(v.p), uint64_t(v.len)};
    uint64_t at = 0;
    while (at < want.n && at < mine.n && want.p[at] == mine.p[at])
      at++;
    d->kind = kDivBytes;
    d->leader_len = want.n;
    d->follower_len = mine.n;
    d->offset = at;
    d->n_leader_bytes = uint32_t(want.n - at < 16 ? want.n - at : 16);
    d->n_follower_bytes = uint32_t(mine.n - at < 16 ? mine.n - at : 16);
    memcpy(d->leader_bytes, want.p + at, d->n_leader_bytes);
    memcpy(d->follower_bytes, mine.p + at, d->n_follower_bytes);
  }
  Cur().expected_by = it.env ? it.env->rule : nullptr;
  snprintf(Cur().near_why, sizeof Cur().near_why, "%s", why);
  ShimDiverge(d);
}

// Does the follower's call fit the pattern? Binds the variables it sets.
// `why` says what did not fit.
bool FitsRight(const mvr_call &call, const CallView &c, Env &env,
               const int64_t mine[6], char *why, size_t size, int *bad) {
  if (c.nr != call.nr) {
    snprintf(why, size, "the rule expects %s, the follower made %s",
             SyscallName(call.nr), SyscallName(c.nr));
    *bad = -1;
    return false;
  }
  const Spec &s = SpecOf(c.nr);
  for (int k = 0; k < 6; ++k) {
    const mvr_arg &a = call.args[k];
    if (a.kind == MVR_WILD || IsOutKind(s.args[k].kind) || LengthOf(s, k) >= 0)
      continue; // received data and lengths: given, not compared
    Bytes b = {nullptr, 0};
    bool scalar = s.args[k].kind == kS || s.args[k].kind == kFcntlArg ||
                  s.args[k].kind == kIoctlArg;
    if (!scalar && !CallInArg(c, k, b)) {
      snprintf(why, size, "argument %d has no bytes", k + 1);
      *bad = k;
      return false;
    }
    mvr_val &v = env.ctx.vars[a.var];
    bool ok = true;
    if (a.kind == MVR_INT)
      ok = mine[k] == a.ival;
    else if (a.kind == MVR_STR)
      ok = StartsWith(b, a);
    else if (env.bound & (1u << a.var))
      ok = scalar ? v.v == mine[k]
                  : (uint64_t(v.len) == b.n && memcmp(v.p, b.p, b.n) == 0);
    else if (scalar)
      v.v = mine[k], env.bound |= 1u << a.var;
    else
      v.p = const_cast<char *>(reinterpret_cast<const char *>(b.p)),
      v.len = int64_t(b.n), env.bound |= 1u << a.var;
    if (!ok) {
      snprintf(why, size, "argument %d of %s does not match the rule's", k + 1,
               SyscallName(c.nr));
      *bad = k;
      return false;
    }
  }
  return true;
}

// What a received buffer gets from the rule: a string, or a variable bound
// on the left; its length from the length argument when the rule gives it.
bool RuleData(const mvr_call &call, const CallView &c, Env &env, Bytes &data,
              int64_t *len) {
  const Spec &s = SpecOf(c.nr);
  for (int k = 0; k < 6; ++k) {
    if (s.args[k].kind != kOutR)
      continue;
    const mvr_arg &a = call.args[k];
    bool have = false;
    if (a.kind == MVR_STR)
      data = {reinterpret_cast<const uint8_t *>(a.str), a.len}, have = true;
    else if (a.kind == MVR_VAR && (env.bound & (1u << a.var)))
      data = {reinterpret_cast<const uint8_t *>(env.ctx.vars[a.var].p),
              uint64_t(env.ctx.vars[a.var].len)},
      have = true;
    const mvr_arg &l = call.args[s.args[k].arg];
    *len = int64_t(data.n);
    if (l.kind == MVR_INT)
      *len = l.ival;
    else if (l.kind == MVR_VAR && (env.bound & (1u << l.var)))
      *len = env.ctx.vars[l.var].v;
    if (have && uint64_t(*len) > uint64_t(c.a[s.args[k].arg]))
      *len = c.a[s.args[k].arg]; // never past the follower's buffer
    return have;
  }
  return false;
}

// After the result is known: the variables of received buffers are the
// follower's buffer (a callback edits what the follower gets), lengths the
// length received.
void BindReceived(const mvr_call &call, const CallView &c, Env &env) {
  const Spec &s = SpecOf(c.nr);
  for (int k = 0; k < 6; ++k) {
    const mvr_arg &a = call.args[k];
    if (a.kind != MVR_VAR)
      continue;
    mvr_val &v = env.ctx.vars[a.var];
    if (s.args[k].kind == kOutR) {
      v.p = reinterpret_cast<char *>(c.a[k]);
      v.len = c.ret > 0 ? c.ret : 0;
      env.bound |= 1u << a.var;
    } else if (LengthOf(s, k) >= 0) {
      v.v = c.ret;
      env.bound |= 1u << a.var;
    }
  }
}

long RunForReal(CallView &c) {
  long r = RawSyscall(c.nr, c.a[0], c.a[1], c.a[2], c.a[3], c.a[4], c.a[5]);
  // A descriptor of the follower's own must not take a number the leader
  // will hand out later: moved above the program's range.
  if (r >= 0 && (c.nr == SYS_openat || c.nr == SYS_open || c.nr == SYS_socket ||
                 c.nr == SYS_dup || c.nr == SYS_eventfd2 ||
                 c.nr == SYS_epoll_create1 || c.nr == SYS_timerfd_create))
    r = MoveFdHigh(int(r));
  return r;
}

long ReplaySynth(CallView &c, const Item &it) {
  Env &env = *it.env;
  int64_t mine[6];
  CompareValues(c, mine);
  char why[160];
  int bad = 0;
  if (!FitsRight(*it.call, c, env, mine, why, sizeof why, &bad))
    SynthMismatch(it, c, bad, why);
  env.ctx.ret = it.rec ? it.rec->h.ret : 0;
  if (it.call->pred && !CallPred(env.rule, it.call->pred, &env.ctx))
    SynthMismatch(it, c, -1, "the follower's call does not satisfy the rule's predicate");
  if (it.rec) {
    Bytes data = {nullptr, 0};
    int64_t len = 0;
    bool given = RuleData(*it.call, c, env, data, &len);
    c.ret = given ? len : it.rec->h.ret;
    OutCopy o = {it.rec, &c, 0, given ? data.p : nullptr,
                 given ? uint64_t(len) : 0, 0};
    VisitOut(c, CopyOutPiece, &o);
  } else {
    c.ret = RunForReal(c);
  }
  BindReceived(*it.call, c, env);
  if (it.call->cb) {
    env.ctx.ret = c.ret;
    CallCallback(env.rule, it.call->cb, &env.ctx);
    c.ret = env.ctx.ret;
  }
  return c.ret;
}

// The follower's call starts a `nothing` rule: the first call of its right
// side runs for real, the rest is expected next.
bool TryExtra(CallView &c, long *ret) {
  Matcher &m = Cur();
  const int *list = c.nr >= 0 && c.nr < kMaxSyscall ? g_set.by_extra[c.nr] : nullptr;
  for (; list && *list >= 0; ++list) {
    const mvr_rule *rule = &g_set.table->rules[*list];
    Env *env = NewEnv(rule);
    int64_t mine[6];
    CompareValues(c, mine);
    char why[160];
    int bad;
    if (!FitsRight(rule->rhs[0], c, *env, mine, why, sizeof why, &bad))
      continue;
    env->ctx.ret = 0;
    if (rule->rhs[0].pred && !CallPred(rule, rule->rhs[0].pred, &env->ctx))
      continue;
    Expand(rule, env, nullptr, true);
    m.expected_by = rule;
    Item it = m.items[m.head];
    *ret = ReplaySynth(c, it);
    Pop();
    return true;
  }
  return false;
}

// The compiled rules of `direction`, indexed.
void LoadTable(int direction) {
  void *h = dlopen(g_pending, RTLD_NOW | RTLD_LOCAL);
  if (!h)
    RuleError("cannot load the rules %s: %s\n", g_pending, dlerror());
  g_set.table = static_cast<const mvr_table *>(dlsym(h, "mvr_table"));
  if (!g_set.table || g_set.table->abi != MVR_ABI_VERSION)
    RuleError("%s is not a compiled rules file of this mvedsua (no mvr_table "
              "of ABI %d)\n", g_pending, MVR_ABI_VERSION);
  int count[kMaxSyscall] = {}, extra[kMaxSyscall] = {};
  auto lhs_nr = [](const mvr_rule &r) { return r.nlhs ? r.lhs[0].nr : -1; };
  auto rhs_nr = [](const mvr_rule &r) { return r.nrhs ? r.rhs[0].nr : -1; };
  for (int i = 0; i < g_set.table->nrules; ++i) {
    const mvr_rule &r = g_set.table->rules[i];
    if (r.direction != direction)
      continue;
    if (r.kind == MVR_REWRITE && lhs_nr(r) >= 0 && lhs_nr(r) < kMaxSyscall)
      count[lhs_nr(r)]++;
    if (r.kind == MVR_NOTHING && rhs_nr(r) >= 0 && rhs_nr(r) < kMaxSyscall)
      extra[rhs_nr(r)]++;
  }
  for (int nr = 0; nr < kMaxSyscall; ++nr) {
    if (count[nr])
      g_set.by_lhs[nr] = static_cast<int *>(calloc(size_t(count[nr]) + 1, sizeof(int)));
    if (extra[nr])
      g_set.by_extra[nr] = static_cast<int *>(calloc(size_t(extra[nr]) + 1, sizeof(int)));
    count[nr] = extra[nr] = 0;
  }
  for (int i = 0; i < g_set.table->nrules; ++i) {
    const mvr_rule &r = g_set.table->rules[i];
    if (r.direction != direction)
      continue;
    if (r.kind == MVR_REWRITE && g_set.by_lhs[lhs_nr(r)])
      g_set.by_lhs[lhs_nr(r)][count[lhs_nr(r)]++] = i;
    if (r.kind == MVR_NOTHING && g_set.by_extra[rhs_nr(r)])
      g_set.by_extra[rhs_nr(r)][extra[rhs_nr(r)]++] = i;
  }
  for (int nr = 0; nr < kMaxSyscall; ++nr) {
    if (g_set.by_lhs[nr])
      g_set.by_lhs[nr][count[nr]] = -1;
    if (g_set.by_extra[nr]) {
      g_set.by_extra[nr][extra[nr]] = -1;
      g_set.any_extra = true;
    }
  }
}

// A lane's matcher as it starts: nothing held, nothing expected.
void ResetMatcher(Matcher &m) {
  for (Rec &r : m.recs)
    r.live = false;
  for (Env &e : m.envs)
    e.refs = 0;
  m.live_recs = 0;
  m.arena_used = 0;
  m.n_ahead = 0;
  m.head = m.count = 0;
  m.n_leader_seen = m.n_follower_seen = 0;
  m.expected_by = m.near = nullptr;
  m.near_why[0] = 0;
  m.in_rule = nullptr;
}

// The rules of an earlier update, which a process that followed then (and
// was promoted, or forked the follower of the next update) still holds:
// this update's rules, or none, replace them. Called in the only thread
// that replays at that point (the one starting to follow).
void Forget() {
  if (g_lane_matchers) {
    for (int k = 0; k < kMaxLanes; ++k)
      if (g_lane_matchers[k].arena)
        munmap(g_lane_matchers[k].arena, kArenaBytes);
    munmap(g_lane_matchers, sizeof(Matcher) * kMaxLanes);
  }
  for (int nr = 0; nr < kMaxSyscall; ++nr) {
    free(g_set.by_lhs[nr]);
    free(g_set.by_extra[nr]);
    g_set.by_lhs[nr] = g_set.by_extra[nr] = nullptr;
  }
  g_set.table = nullptr;
  g_set.any_extra = g_set.learn = false;
  g_set.learned = 0;
  g_lane_matchers = nullptr;
  t_matcher = nullptr;
  g_rules = nullptr;
}

// Raw: this runs in a follower's thread about to replay (its calls
// trapped), never from the SIGSYS handler.
void MapArena(Matcher &m) {
  if (m.arena)
    return;
  long p = RawSyscall(SYS_mmap, 0, long(kArenaBytes), PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p < 0 && p > -4096)
    RuleError("cannot map the matcher's arena: %s\n", strerrorname_np(int(-p)));
  m.arena = reinterpret_cast<uint8_t *>(p);
}

} // namespace

void RulesSetLearn(const char *path) {
  snprintf(g_learn_path, sizeof g_learn_path, "%s", path ? path : "");
}

void RulesSetPending(const char *so_path) {
  snprintf(g_pending, sizeof g_pending, "%s", so_path ? so_path : "");
}

const char *RulesPending() { return g_pending; }

void RulesActivate(int direction) {
  Forget();
  g_set.learn = g_learn_path[0] != 0;
  if (!g_pending[0] && !g_set.learn)
    return;
  if (g_pending[0])
    LoadTable(direction);
  void *lanes = mmap(nullptr, sizeof(Matcher) * kMaxLanes,
                     PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (lanes == MAP_FAILED)
    RuleError("cannot map the matchers of %d lanes: %s\n", kMaxLanes,
              strerror(errno));
  g_lane_matchers = static_cast<Matcher *>(lanes);
  // Every lane that exists now gets its arena here, where a failure is
  // still a plain rule error; a thread started later maps its own when it
  // joins its lane (RulesJoinLane), before it replays.
  for (int k = 0; k < ShimLaneCount(); ++k)
    MapArena(g_lane_matchers[k]);
  InstallCrashHandlers();
  t_matcher = &g_lane_matchers[0];
  // `begin` rules describe the start of the new version: the thread that
  // runs main goes through it.
  for (int i = 0; g_set.table && i < g_set.table->nrules; ++i) {
    const mvr_rule &r = g_set.table->rules[i];
    if (r.direction == direction && r.kind == MVR_BEGIN)
      Expand(&r, NewEnv(&r), nullptr, false);
  }
  g_rules = &g_lane_matchers[0];
}

void RulesJoinLane(int lane) {
  if (!g_rules || lane < 0 || lane >= kMaxLanes)
    return;
  Matcher &m = g_lane_matchers[lane];
  // A slot's thread that ended left its lane's matcher behind; a new one
  // starts from nothing (its lane is new: ShimLaneForNewThread).
  ResetMatcher(m);
  MapArena(m);
  t_matcher = &m;
}

bool RulesHoldsRecord(uint32_t *nr) {
  if (!g_rules || !t_matcher)
    return false;
  Matcher &m = Cur();
  for (int i = 0; i < m.count; ++i)
    if (const Rec *r = m.items[(m.head + i) % kMaxItems].rec) {
      *nr = r->h.nr;
      return true;
    }
  if (m.n_ahead)
    *nr = m.ahead[0]->h.nr;
  return m.n_ahead != 0;
}

void RulesForkedChild() {
  if (!g_rules || !t_matcher)
    return;
  // No `begin` rules: they describe the start of the new version, which a
  // child does not go through.
  ResetMatcher(Cur());
}

long RulesReplay(CallView &c) {
  if (!t_matcher) // every follower thread joins its lane before it replays
    RuleError("thread of lane %d replays without a matcher\n", ShimLane());
  Matcher &m = Cur();
  long ret;
  if (g_set.any_extra && TryExtra(c, &ret)) {
    RememberFollower(c, ret);
    return ret;
  }
  for (;;) {
    while (m.count && m.items[m.head].kind == Item::kStar) {
      const Item &it = m.items[m.head];
      int64_t mine[6];
      CompareValues(c, mine);
      char why[8];
      int bad;
      if (FitsRight(*it.call, c, *it.env, mine, why, sizeof why, &bad)) {
        ret = RunForReal(c);
        RememberFollower(c, ret);
        return ret;
      }
      Pop();
    }
    if (m.count)
      break;
    if (m.n_ahead == 0) {
      // Nothing held: a record no rule starts with is replayed straight
      // from the log.
      int64_t len = ShimWaitRecord(false);
      if (len < 0)
        ShimDiverge(StartReport(kDivExtra, nullptr, c));
      RecHead h;
      LogRead(ShimThreadLog(), &h, sizeof h);
      if (!g_set.learn && !MayMatch(h)) {
        Remember(m.leader_seen, &m.n_leader_seen, int32_t(h.nr), h.args, h.ret);
        RememberFollower(c, h.ret);
        return ShimReplayRecord(c, h);
      }
      m.ahead[m.n_ahead++] = CopyRecord(h, uint64_t(len));
    }
    MatchAhead();
  }
  Item it = m.items[m.head];
  m.expected_by = it.env ? it.env->rule : nullptr;
  RememberFollower(c, 0);
  if (it.rec) // in the leader's order across lanes, when it is kept
    ShimOrderWait(it.rec->h);
  if (it.kind == Item::kExact) {
    ret = ReplayExact(c, it.rec);
  } else {
    ret = ReplaySynth(c, it);
  }
  m.follower_seen[(m.n_follower_seen - 1) % kWindow].ret = ret;
  if (it.rec) {
    ShimRecordDone(&c, it.rec->h.ret);
    ShimOrderDone(it.rec->h);
  }
  FreeRec(it.rec);
  Pop();
  m.expected_by = nullptr;
  return ret;
}

bool RulesIdle() {
  return !t_matcher || (!Cur().count && !Cur().n_ahead);
}

void RulesFinish() {
  if (!t_matcher)
    return;
  Matcher &m = Cur();
  // Star items and extra calls the follower never made are fine: they were
  // optional. A leader's record still held is a call the follower skipped.
  for (int i = 0; i < m.count; ++i) {
    const Item &it = m.items[(m.head + i) % kMaxItems];
    if (it.rec) {
      CallView none = {};
      none.nr = -1;
      DivergenceReport *d = StartReport(kDivNone, it.rec, none);
      d->follower_nr = -1;
      ShimDiverge(d);
    }
  }
  if (m.n_ahead) {
    CallView none = {};
    none.nr = -1;
    DivergenceReport *d = StartReport(kDivNone, m.ahead[0], none);
    d->follower_nr = -1;
    ShimDiverge(d);
  }
}

void RulesAnnotate(char *text, size_t size) {
  if (!g_rules || !t_matcher)
    return;
  Matcher &m = Cur();
  size_t n = strlen(text);
  auto add = [&](int k) { n = k < 0 ? n : (n + size_t(k) < size ? n + size_t(k) : size - 1); };
  if (m.expected_by && n < size)
    add(snprintf(text + n, size - n, "  the call was expected by rule %s: %s%s%s\n",
                 m.expected_by->name, m.expected_by->text,
                 m.near_why[0] && !m.near ? "\n  why: " : "",
                 m.near_why[0] && !m.near ? m.near_why : ""));
  if (m.near && n < size) {
    char why[160];
    FormatNear(why, sizeof why);
    add(snprintf(text + n, size - n, "  rule %s almost matched (%s): %s\n",
                 m.near->name, why, m.near->text));
  }
  if (n < size)
    add(FormatWindow(text + n, size - n, "leader", m.leader_seen,
                     m.n_leader_seen, true));
  if (n < size)
    add(FormatWindow(text + n, size - n, "follower", m.follower_seen,
                     m.n_follower_seen, true));
}

} // namespace mve
} // namespace mvedsua

MVEDSUA_EXPORT void mvedsua_rt_mve_set_rules(const char *so_path) {
  mvedsua::mve::RulesSetPending(so_path);
}

MVEDSUA_EXPORT void mvedsua_rt_mve_set_learn(const char *path) {
  mvedsua::mve::RulesSetLearn(path);
}
