// Log.cpp: the shared leader -> follower log (see Log.h for the design).
//
// Memory ordering: the writer fills a record, then publishes it with a
// release store of `head`; the reader acquires `head` before reading bytes
// below it. The reader publishes `tail` and the free ring the same way. The
// futex handshake is the classic one: the reader announces itself in
// `reader_waiting` and re-checks `head` before sleeping on `futex_word`; the
// writer changes `futex_word` after publishing and, after a full fence,
// wakes the reader only if it announced itself. Either the reader sees the
// record or the writer sees the reader.
//
// Wake-ups are batched. The follower is never on a client's path, and on a
// machine with few cores every futex wake costs the leader a system call and
// every spin takes a core from the leader or its clients (a follower that
// spun until the next record used four fifths of its time spinning). So a
// reader that finds nothing spins briefly, then *naps*: a futex wait of at
// most kNapNs, from which the writer wakes it only once kWakeBatch records
// are waiting (it then reads them in one go). After kIdleNaps naps with
// nothing new it *sleeps*: kWaitSliceNs slices, and the next record wakes it
// at once, so a quiet leader's next request reaches the follower without
// delay.
#include "Log.h"
#include "Raw.h"

#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <stdio.h>
#include <time.h>

namespace mvedsua {
namespace mve {

namespace {

constexpr uint32_t kMagic = 0x4d56454cu; // "MVEL"
constexpr int kMaxLogs = 64;             // thread pairs per process, for now
constexpr int kSpin = 128;               // bounded spin before the futex
constexpr long kNapNs = 1000 * 1000;     // a napping reader's longest wait
constexpr int kIdleNaps = 4;             // naps with nothing new: then sleep
constexpr uint64_t kWakeBatch = 256;     // records that end a nap early
constexpr long kWaitSliceNs = 50 * 1000 * 1000;

// reader_waiting
enum : uint32_t { kAwake = 0, kNapping = 1, kSleeping = 2 };

// A futex word per slot (bumped by a wake) and how many sleep on it. Two
// waiters share a slot only when their numbers are kOrderSlots apart: a
// wake for one wakes both, and the other sleeps again.
constexpr int kOrderSlots = 64;
// How long a thread whose turn has not come spins before it sleeps: short,
// as the thread it waits for is more often waiting for a core than running.
constexpr int kOrderSpins = 64;
// Numbers said done ahead of the replayed prefix (LogOrderDone), each in
// slot n % kOrderRing: a number may be said done at most this far ahead.
// Numbers whose records the leader has appended, likewise.
constexpr uint64_t kOrderRing = 4096;
// How long a follower thread waits for a number whose record the leader has
// not appended yet (its call still runs: a blocking write) before it goes
// on unordered all the same (the leader may have died in that call).
constexpr long kUnrecordedMaxMs = 5000;
struct OrderSlot {
  uint32_t word;
  uint32_t waiters;
};

struct alignas(64) Shared {
  uint32_t magic;
  uint32_t max_chunks;
  uint64_t chunk_size;
  uint64_t bound;
  uint64_t header_bytes;
  // Written by the writer only.
  alignas(64) uint64_t head;
  uint32_t futex_word;
  uint32_t free_tail;
  uint64_t records_appended;
  uint64_t peak_backlog;
  uint64_t chunks_taken;
  uint64_t file_chunks;
  uint64_t grow_count;
  // Written by the reader only.
  alignas(64) uint64_t tail;
  uint64_t records_consumed;
  uint32_t free_head;
  // Written by the reader only when it naps or sleeps: on a line of its
  // own, so the writer's check after each append does not miss on `tail`.
  // A napping reader is woken once records_appended reaches wake_at.
  alignas(64) uint32_t reader_waiting;
  uint64_t wake_at;
  // Either side.
  alignas(64) uint32_t state;
  // A reader opened the log (LogOpen) / ended (LogCloseReader, whatever the
  // state), and a number its creator tagged it with (LogSetTag).
  uint32_t reader_attached, reader_done;
  uint64_t tag;
  // The order of calls across lanes: taken by the leader's threads, and
  // the number up to which the follower's have said every one done (each
  // on a line of its own).
  alignas(64) uint64_t order_taken;
  alignas(64) uint64_t order_done;
  uint64_t order_timeouts; // waits that passed what they waited for (Skip)
  // Follower threads asleep until call n's turn, on slot n % kOrderSlots:
  // the thread that moves order_done to n - 1 wakes only that slot, and
  // only when its `waiters` says someone sleeps there.
  alignas(64) OrderSlot order_slots[kOrderSlots];
  // Numbers said done while an earlier one was not yet (n at n % kOrderRing),
  // and numbers whose records the leader appended (the same).
  alignas(64) uint64_t order_ring[kOrderRing];
  alignas(64) uint64_t order_recorded[kOrderRing];
  // Then: uint32_t chunk_of[max_chunks], uint32_t free_ring[max_chunks],
  // the user area, padding to a page; the chunks follow header_bytes.
};

} // namespace

struct Log {
  Shared *sh;
  char *chunks;
  uint32_t *chunk_of;  // logical chunk k -> physical, at k % max_chunks
  uint32_t *free_ring; // physical chunks the reader is done with
  char *user;
  int memfd;
  uint32_t shift; // log2(chunk_size)
  uint64_t mask;  // chunk_size - 1
  // Writer's own: stream position up to which chunks are mapped.
  uint64_t w_mapped_end;
  // Reader's own: position in the stream, end of the current record, and
  // the next logical chunk to hand back.
  uint64_t r_pos;
  uint64_t r_end;
  uint64_t r_free_next;
  // The last `head` the reader saw: below it, records are known to be there
  // without touching the writer's cache line.
  uint64_t r_head_seen;
};

namespace {

Log g_logs[kMaxLogs];
int g_log_count;

uint64_t Round8(uint64_t n) { return (n + 7) & ~uint64_t(7); }

template <class T> T Load(const T *p) {
  return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
template <class T> void Store(T *p, T v) {
  __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

char *Addr(const Log *log, uint64_t pos) {
  uint32_t phys = log->chunk_of[(pos >> log->shift) % log->sh->max_chunks];
  return log->chunks + (uint64_t(phys) << log->shift) + (pos & log->mask);
}

// Copies between the stream at `pos` and a flat buffer, chunk by chunk.
void CopyOut(const Log *log, uint64_t pos, void *dst, uint64_t len) {
  char *d = static_cast<char *>(dst);
  while (len > 0) {
    uint64_t room = (log->mask + 1) - (pos & log->mask);
    uint64_t n = len < room ? len : room;
    memcpy(d, Addr(log, pos), n);
    d += n, pos += n, len -= n;
  }
}

void CopyIn(const Log *log, uint64_t pos, const void *src, uint64_t len) {
  const char *s = static_cast<const char *>(src);
  while (len > 0) {
    uint64_t room = (log->mask + 1) - (pos & log->mask);
    uint64_t n = len < room ? len : room;
    memcpy(Addr(log, pos), s, n);
    s += n, pos += n, len -= n;
  }
}

bool ValidOptions(const LogOptions &o, char *err, size_t err_size) {
  const char *why = nullptr;
  if (o.chunk_size < 4096 || (o.chunk_size & (o.chunk_size - 1)))
    why = "chunk size must be a power of two of at least 4096";
  else if (o.bound < o.chunk_size || o.bound / o.chunk_size > (1u << 24))
    why = "bound must hold 1 to 2^24 chunks";
  else if (o.initial_chunks < 1)
    why = "at least one initial chunk";
  if (why)
    snprintf(err, err_size, "invalid log options: %s", why);
  return why == nullptr;
}

// This process's pointers into a mapped log.
void SetLayout(Log *log, uint32_t max_chunks, uint64_t header,
               uint64_t chunk_size) {
  Shared *sh = log->sh;
  log->chunk_of = reinterpret_cast<uint32_t *>(sh + 1);
  log->free_ring = log->chunk_of + max_chunks;
  log->user = reinterpret_cast<char *>(log->free_ring + max_chunks);
  log->chunks = reinterpret_cast<char *>(sh) + header;
  log->shift = uint32_t(__builtin_ctzll(chunk_size));
  log->mask = chunk_size - 1;
}

void InitShared(Log *log, const LogOptions &o, uint32_t max_chunks,
                uint64_t header, uint64_t initial) {
  Shared *sh = log->sh;
  sh->max_chunks = max_chunks;
  sh->chunk_size = o.chunk_size;
  sh->bound = o.bound;
  sh->header_bytes = header;
  sh->file_chunks = initial;
  SetLayout(log, max_chunks, header, o.chunk_size);
  Store(&sh->magic, kMagic);
}

// Grows the memfd so that physical chunk `phys` exists: doubling, so the
// number of ftruncate calls is logarithmic in the peak backlog.
bool EnsureFile(Log *log, uint64_t phys) {
  Shared *sh = log->sh;
  if (phys < sh->file_chunks)
    return true;
  uint64_t want = sh->file_chunks * 2;
  if (want < phys + 1)
    want = phys + 1;
  if (want > sh->max_chunks)
    want = sh->max_chunks;
  if (RawSyscall(SYS_ftruncate, log->memfd,
                 long(sh->header_bytes + (want << log->shift))) != 0)
    return false;
  sh->file_chunks = want;
  sh->grow_count++;
  return true;
}

// A physical chunk for the writer: one the reader handed back, else a new
// one while the bound allows. -1 when the bound is reached.
int64_t TakeChunk(Log *log) {
  Shared *sh = log->sh;
  if (sh->free_tail != Load(&sh->free_head))
    return log->free_ring[sh->free_tail++ % sh->max_chunks];
  if (sh->chunks_taken >= sh->max_chunks || !EnsureFile(log, sh->chunks_taken))
    return -1;
  return int64_t(sh->chunks_taken++);
}

// The backlog is sampled when a chunk is taken (it can only have grown past
// the previous peak then), so appends within a chunk do not read `tail`.
void SamplePeak(Log *log, uint64_t end) {
  Shared *sh = log->sh;
  uint64_t backlog = end - Load(&sh->tail);
  if (backlog > sh->peak_backlog)
    sh->peak_backlog = backlog;
}

bool MapChunksUpTo(Log *log, uint64_t end) {
  if (log->w_mapped_end < end)
    SamplePeak(log, end);
  while (log->w_mapped_end < end) {
    int64_t phys = TakeChunk(log);
    if (phys < 0)
      return false;
    uint64_t k = log->w_mapped_end >> log->shift;
    log->chunk_of[k % log->sh->max_chunks] = uint32_t(phys);
    log->w_mapped_end += log->mask + 1;
  }
  return true;
}

// `all`: a change the reader must see at once (a state), not a record.
void Wake(Log *log, bool all) {
  Shared *sh = log->sh;
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  uint32_t w = __atomic_load_n(&sh->reader_waiting, __ATOMIC_RELAXED);
  if (w == kAwake)
    return;
  if (w == kNapping && !all &&
      sh->records_appended < __atomic_load_n(&sh->wake_at, __ATOMIC_RELAXED))
    return;
  RawSyscall(SYS_futex, long(&sh->futex_word), FUTEX_WAKE, 1);
}

void SetState(Log *log, uint32_t state) {
  uint32_t active = kLogActive;
  __atomic_compare_exchange_n(&log->sh->state, &active, state, false,
                              __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  __atomic_fetch_add(&log->sh->futex_word, 1, __ATOMIC_SEQ_CST);
  Wake(log, true);
}

void Publish(Log *log, uint64_t end) {
  Shared *sh = log->sh;
  Store(&sh->head, end);
  sh->records_appended++;
  Store(&sh->futex_word, uint32_t(sh->records_appended));
  Wake(log, false);
}

uint64_t ParseSize(const char *s, uint64_t fallback) {
  if (!s || !*s)
    return fallback;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  switch (*end) {
  case 'G': case 'g': v <<= 10; [[fallthrough]];
  case 'M': case 'm': v <<= 10; [[fallthrough]];
  case 'K': case 'k': v <<= 10; ++end; break;
  default: break;
  }
  return (*end || v == 0) ? fallback : uint64_t(v);
}

// One bounded futex wait on `word` while it still equals `seen`: a nap or
// a sleep (reader_waiting). True when it timed out.
bool SleepOn(Log *log, uint32_t seen, uint32_t how) {
  Shared *sh = log->sh;
  if (how == kNapping)
    __atomic_store_n(&sh->wake_at, Load(&sh->records_appended) + kWakeBatch,
                     __ATOMIC_RELAXED);
  __atomic_store_n(&sh->reader_waiting, how, __ATOMIC_SEQ_CST);
  bool timed_out = false;
  if (Load(&sh->head) <= log->r_pos && Load(&sh->state) == kLogActive) {
    struct timespec slice = {0, how == kNapping ? kNapNs : kWaitSliceNs};
    timed_out = RawSyscall(SYS_futex, long(&sh->futex_word), FUTEX_WAIT,
                           long(seen), long(&slice)) == -110; // ETIMEDOUT
  }
  __atomic_store_n(&sh->reader_waiting, kAwake, __ATOMIC_RELAXED);
  return timed_out;
}

// True when a record starts at r_pos; false when none will come.
int WaitForRecord(Log *log, bool (*still_alive)(void *), void *ctx) {
  Shared *sh = log->sh;
  if (log->r_head_seen > log->r_pos &&
      __atomic_load_n(&sh->state, __ATOMIC_RELAXED) != kLogAbandoned)
    return 1;
  int naps = 0;
  for (int spins = 0;; ++spins) {
    // Abandoned first: a follower past the bound stops even with a backlog.
    uint32_t state = Load(&sh->state);
    if (state == kLogAbandoned || state == kLogReaderGone)
      return -1;
    if ((log->r_head_seen = Load(&sh->head)) > log->r_pos)
      return 1;
    if (state == kLogWriterDone)
      return Load(&sh->head) > log->r_pos ? 1 : -1;
    if (spins < kSpin) {
      __builtin_ia32_pause();
      continue;
    }
    uint32_t seen = Load(&sh->futex_word);
    if (Load(&sh->head) > log->r_pos)
      return 1;
    if (naps < kIdleNaps) {
      naps += SleepOn(log, seen, kNapping);
      continue;
    }
    // Asleep: each slice that passes without a record checks the writer.
    if (SleepOn(log, seen, kSleeping) && still_alive && !still_alive(ctx))
      return Load(&sh->head) > log->r_pos ? 1 : -2;
  }
}

// A slot no live log uses: successive updates each create and destroy one.
// Logs are created before a fork by the single thread that will lead.
Log *FreeSlot() {
  for (int i = 0; i < g_log_count; ++i)
    if (!g_logs[i].sh)
      return &g_logs[i];
  int slot = __atomic_fetch_add(&g_log_count, 1, __ATOMIC_RELAXED);
  return slot < kMaxLogs ? &g_logs[slot] : nullptr;
}

} // namespace

LogOptions LogOptionsFromEnv() {
  LogOptions o;
  o.bound = ParseSize(getenv("MVEDSUA_MVE_LOG_BOUND"), o.bound);
  o.chunk_size = ParseSize(getenv("MVEDSUA_MVE_LOG_CHUNK"), o.chunk_size);
  return o;
}

Log *LogCreate(const LogOptions &o, char *err, size_t err_size) {
  if (!ValidOptions(o, err, err_size))
    return nullptr;
  Log *log = FreeSlot();
  if (!log) {
    snprintf(err, err_size, "too many logs (%d at most)", kMaxLogs);
    return nullptr;
  }
  uint32_t max_chunks = uint32_t(o.bound / o.chunk_size);
  uint64_t header = sizeof(Shared) + 8ull * max_chunks + kLogUserAreaSize;
  header = (header + o.chunk_size - 1) & ~(o.chunk_size - 1);
  uint64_t initial = o.initial_chunks < max_chunks ? o.initial_chunks
                                                   : max_chunks;
  long fd = RawSyscall(SYS_memfd_create, long("mvedsua-mve-log"), MFD_CLOEXEC);
  if (fd < 0 || RawSyscall(SYS_ftruncate, fd,
                           long(header + initial * o.chunk_size)) != 0) {
    // Names, not messages: this may run in a fork's SIGSYS handler, where
    // strerror's translation could allocate.
    snprintf(err, err_size, "cannot create the log's shared memory: %s",
             strerrorname_np(int(fd < 0 ? -fd : 28)));
    return nullptr;
  }
  long addr = RawSyscall(SYS_mmap, 0, long(header + o.bound),
                         PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                         fd, 0);
  if (addr < 0 && addr > -4096) {
    snprintf(err, err_size, "cannot map the log: %s",
             strerrorname_np(int(-addr)));
    RawSyscall(SYS_close, fd);
    return nullptr;
  }
  log->memfd = MoveFdHigh(int(fd));
  log->sh = reinterpret_cast<Shared *>(addr);
  InitShared(log, o, max_chunks, header, initial);
  return log;
}

Log *LogOpen(int memfd, char *err, size_t err_size) {
  Log *log = FreeSlot();
  if (!log) {
    snprintf(err, err_size, "too many logs (%d at most)", kMaxLogs);
    return nullptr;
  }
  Shared head;
  if (RawSyscall(SYS_pread64, memfd, long(&head), sizeof head, 0) !=
          long(sizeof head) ||
      head.magic != kMagic) {
    snprintf(err, err_size, "descriptor %d does not hold a log", memfd);
    return nullptr;
  }
  long addr = RawSyscall(SYS_mmap, 0, long(head.header_bytes + head.bound),
                         PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                         memfd, 0);
  if (addr < 0 && addr > -4096) {
    snprintf(err, err_size, "cannot map the log: %s",
             strerrorname_np(int(-addr)));
    return nullptr;
  }
  log->memfd = MoveFdHigh(memfd);
  log->sh = reinterpret_cast<Shared *>(addr);
  SetLayout(log, head.max_chunks, head.header_bytes, head.chunk_size);
  __atomic_store_n(&log->sh->reader_attached, 1, __ATOMIC_RELEASE);
  log->r_pos = log->r_end = log->r_head_seen = log->r_free_next = 0;
  return log;
}

int LogFd(const Log *log) { return log->memfd; }

bool LogBegin(Log *log, uint64_t len, uint64_t *cursor) {
  Shared *sh = log->sh;
  if (__atomic_load_n(&sh->state, __ATOMIC_RELAXED) != kLogActive)
    return false;
  uint64_t start = sh->head;
  if (!MapChunksUpTo(log, start + Round8(8 + len))) {
    LogAbandon(log);
    return false;
  }
  // 8-aligned frame headers never straddle a chunk.
  *reinterpret_cast<uint64_t *>(Addr(log, start)) = len;
  *cursor = start + 8;
  return true;
}

void LogPut(Log *log, uint64_t *cursor, const void *data, uint64_t len) {
  CopyIn(log, *cursor, data, len);
  *cursor += len;
}

void LogCommit(Log *log, uint64_t len) {
  Publish(log, log->sh->head + Round8(8 + len));
}

bool LogAppend(Log *log, const Piece *pieces, int n) {
  uint64_t len = 0, cursor;
  for (int i = 0; i < n; ++i)
    len += pieces[i].len;
  if (!LogBegin(log, len, &cursor))
    return false;
  for (int i = 0; i < n; ++i)
    LogPut(log, &cursor, pieces[i].data, pieces[i].len);
  LogCommit(log, len);
  return true;
}

void LogCloseWriter(Log *log) { SetState(log, kLogWriterDone); }
void LogAbandon(Log *log) { SetState(log, kLogAbandoned); }
void LogCloseReader(Log *log) {
  __atomic_store_n(&log->sh->reader_done, 1, __ATOMIC_RELEASE);
  SetState(log, kLogReaderGone);
}

uint64_t LogOrderTake(Log *log) {
  return __atomic_add_fetch(&log->sh->order_taken, 1, __ATOMIC_ACQ_REL);
}

uint64_t LogOrderTaken(const Log *log) {
  return __atomic_load_n(&log->sh->order_taken, __ATOMIC_ACQUIRE);
}

// Only ever a larger number (a call that ran long is recorded after later
// ones): a slot that still holds an older number reads as not recorded,
// which costs a longer wait, never a wrong one.
void LogOrderRecorded(Log *log, uint64_t n) {
  uint64_t *slot = &log->sh->order_recorded[n % kOrderRing];
  uint64_t old = __atomic_load_n(slot, __ATOMIC_RELAXED);
  while (old < n && !__atomic_compare_exchange_n(slot, &old, n, true,
                                                 __ATOMIC_RELEASE,
                                                 __ATOMIC_RELAXED)) {
  }
}

namespace {

bool OrderReached(const Shared *sh, uint64_t n) {
  return __atomic_load_n(&sh->order_done, __ATOMIC_SEQ_CST) + 1 >= n;
}

long MsSince(const struct timespec &start) {
  struct timespec now;
  RawSyscall(SYS_clock_gettime, CLOCK_MONOTONIC, long(&now));
  return (now.tv_sec - start.tv_sec) * 1000 +
         (now.tv_nsec - start.tv_nsec) / 1000000;
}

// One sleep on n's slot until the thread that moves order_done to n - 1
// wakes it, or `ms`. The handshake of WaitForRecord's: the sleeper counts
// itself in `waiters` before its last look at order_done, the waker moves
// order_done before it looks at `waiters`; one of them sees the other.
void SleepForTurn(Shared *sh, uint64_t n, long ms) {
  OrderSlot *slot = &sh->order_slots[n % kOrderSlots];
  uint32_t seen = __atomic_load_n(&slot->word, __ATOMIC_SEQ_CST);
  __atomic_fetch_add(&slot->waiters, 1, __ATOMIC_SEQ_CST);
  if (!OrderReached(sh, n)) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
    RawSyscall(SYS_futex, long(&slot->word),
               FUTEX_WAIT | FUTEX_PRIVATE_FLAG, long(seen), long(&t));
  }
  __atomic_fetch_sub(&slot->waiters, 1, __ATOMIC_SEQ_CST);
}

void WakeSlot(OrderSlot *slot) {
  if (__atomic_load_n(&slot->waiters, __ATOMIC_SEQ_CST) == 0)
    return;
  __atomic_fetch_add(&slot->word, 1, __ATOMIC_SEQ_CST);
  RawSyscall(SYS_futex, long(&slot->word), FUTEX_WAKE | FUTEX_PRIVATE_FLAG,
             0x7fffffff);
}

// order_done moved from `from` to `to`: the sleepers whose turn came.
void WakeFrom(Shared *sh, uint64_t from, uint64_t to) {
  if (to - from >= kOrderSlots) {
    for (int i = 0; i < kOrderSlots; ++i)
      WakeSlot(&sh->order_slots[i]);
    return;
  }
  for (uint64_t t = from + 1; t <= to; ++t)
    WakeSlot(&sh->order_slots[(t + 1) % kOrderSlots]);
}

// Moves order_done over every number said done right after it.
void Advance(Shared *sh) {
  uint64_t p = __atomic_load_n(&sh->order_done, __ATOMIC_SEQ_CST);
  while (__atomic_load_n(&sh->order_ring[(p + 1) % kOrderRing],
                         __ATOMIC_SEQ_CST) == p + 1) {
    if (__atomic_compare_exchange_n(&sh->order_done, &p, p + 1, false,
                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
      WakeFrom(sh, p, p + 1);
      ++p;
    }
  }
}

// Passes every number up to n, said done or not (a wait that timed out).
void Skip(Shared *sh, uint64_t n) {
  uint64_t cur = __atomic_load_n(&sh->order_done, __ATOMIC_SEQ_CST);
  while (cur < n && !__atomic_compare_exchange_n(&sh->order_done, &cur, n,
                                                 true, __ATOMIC_SEQ_CST,
                                                 __ATOMIC_SEQ_CST)) {
  }
  if (cur < n) {
    __atomic_fetch_add(&sh->order_timeouts, 1, __ATOMIC_RELAXED);
    WakeFrom(sh, cur, n);
    Advance(sh);
  }
}

} // namespace

// Only the follower's threads wait and wake (one process: private futexes).
// A wait that spins briefly finds its turn without a call when the thread
// before it is running on another core.
// The time limit counts from the last move of order_done (the follower's
// threads are replaying, however slowly), and while the next number's
// record is not in the log yet (the leader's call still runs) it is
// kUnrecordedMaxMs.
bool LogOrderWait(Log *log, uint64_t n, long max_ms) {
  Shared *sh = log->sh;
  for (int spins = 0; spins < kOrderSpins; ++spins) {
    if (OrderReached(sh, n))
      return true;
    __builtin_ia32_pause();
  }
  struct timespec start, waiting;
  RawSyscall(SYS_clock_gettime, CLOCK_MONOTONIC, long(&start));
  waiting = start;
  uint64_t done = __atomic_load_n(&sh->order_done, __ATOMIC_SEQ_CST);
  bool unrecorded = false; // the next number's record was missing
  for (;;) {
    long left = max_ms - MsSince(start);
    if (left <= 0) {
      uint64_t next = done + 1;
      bool recorded = __atomic_load_n(&sh->order_recorded[next % kOrderRing],
                                      __ATOMIC_ACQUIRE) == next;
      if (recorded && unrecorded) { // it just came: its thread gets its time
        unrecorded = false;
        RawSyscall(SYS_clock_gettime, CLOCK_MONOTONIC, long(&start));
        continue;
      }
      if (recorded || MsSince(waiting) >= kUnrecordedMaxMs)
        break;
      unrecorded = true;
      left = 10;
    }
    SleepForTurn(sh, n, left);
    if (OrderReached(sh, n))
      return true;
    uint64_t now_done = __atomic_load_n(&sh->order_done, __ATOMIC_SEQ_CST);
    if (now_done != done) { // progress: the limit counts from here
      done = now_done;
      RawSyscall(SYS_clock_gettime, CLOCK_MONOTONIC, long(&start));
      waiting = start;
    }
  }
  if (OrderReached(sh, n))
    return true;
  Skip(sh, n - 1);
  return false;
}

// A number said done ahead of order_done waits in the ring until the ones
// before it are; the thread that fills the gap moves order_done over all.
void LogOrderDone(Log *log, uint64_t n, long max_ms) {
  Shared *sh = log->sh;
  if (n > kOrderRing)
    LogOrderWait(log, n - kOrderRing + 1, max_ms); // its slot free
  if (__atomic_load_n(&sh->order_done, __ATOMIC_SEQ_CST) >= n)
    return; // passed by a wait that timed out
  // Only ever a larger number: a thread that looked at order_done before a
  // Skip passed n may store n after a later number took the slot.
  uint64_t *slot = &sh->order_ring[n % kOrderRing];
  uint64_t old = __atomic_load_n(slot, __ATOMIC_SEQ_CST);
  while (old < n && !__atomic_compare_exchange_n(slot, &old, n, true,
                                                 __ATOMIC_SEQ_CST,
                                                 __ATOMIC_SEQ_CST)) {
  }
  Advance(sh);
}

void LogSetTag(Log *log, uint64_t tag) {
  __atomic_store_n(&log->sh->tag, tag, __ATOMIC_RELEASE);
}
uint64_t LogTag(const Log *log) {
  return __atomic_load_n(&log->sh->tag, __ATOMIC_ACQUIRE);
}
bool LogReaderAttached(const Log *log) {
  return __atomic_load_n(&log->sh->reader_attached, __ATOMIC_ACQUIRE);
}
bool LogReaderDone(const Log *log) {
  return __atomic_load_n(&log->sh->reader_done, __ATOMIC_ACQUIRE);
}

int64_t LogNext(Log *log, bool (*still_alive)(void *), void *ctx) {
  int got = WaitForRecord(log, still_alive, ctx);
  if (got < 0)
    return got;
  uint64_t len = *reinterpret_cast<const uint64_t *>(Addr(log, log->r_pos));
  log->r_pos += 8;
  log->r_end = log->r_pos + len;
  return int64_t(len);
}

uint64_t LogRemaining(const Log *log) { return log->r_end - log->r_pos; }

void LogRead(Log *log, void *dst, uint64_t len) {
  CopyOut(log, log->r_pos, dst, len);
  log->r_pos += len;
}

int64_t LogCompare(Log *log, const void *src, uint64_t len) {
  const char *s = static_cast<const char *>(src);
  uint64_t done = 0;
  while (done < len) {
    uint64_t pos = log->r_pos + done;
    uint64_t room = (log->mask + 1) - (pos & log->mask);
    uint64_t n = len - done < room ? len - done : room;
    const char *a = Addr(log, pos);
    if (memcmp(a, s + done, n) != 0) {
      for (uint64_t i = 0;; ++i)
        if (a[i] != s[done + i])
          return int64_t(done + i);
    }
    done += n;
  }
  log->r_pos += len;
  return -1;
}

void LogSkip(Log *log, uint64_t len) { log->r_pos += len; }

uint64_t LogPeek(const Log *log, uint64_t offset, void *dst, uint64_t len) {
  uint64_t left = log->r_end - log->r_pos;
  if (offset >= left)
    return 0;
  if (len > left - offset)
    len = left - offset;
  CopyOut(log, log->r_pos + offset, dst, len);
  return len;
}

void LogFinishRecord(Log *log) {
  Shared *sh = log->sh;
  log->r_pos = Round8(log->r_end);
  Store(&sh->tail, log->r_pos);
  Store(&sh->records_consumed, sh->records_consumed + 1);
  // Hand back every chunk wholly behind the reader.
  while (((log->r_free_next + 1) << log->shift) <= log->r_pos) {
    uint32_t phys = log->chunk_of[log->r_free_next % sh->max_chunks];
    log->free_ring[sh->free_head % sh->max_chunks] = phys;
    Store(&sh->free_head, sh->free_head + 1);
    log->r_free_next++;
  }
}

void LogGetStats(const Log *log, LogStats *out) {
  const Shared *sh = log->sh;
  out->records_appended = Load(&sh->records_appended);
  out->records_consumed = Load(&sh->records_consumed);
  out->bytes_appended = Load(&sh->head);
  out->backlog_bytes = out->bytes_appended - Load(&sh->tail);
  out->peak_backlog_bytes = Load(&sh->peak_backlog);
  out->chunks_in_use = Load(&sh->chunks_taken);
  out->file_bytes = sh->header_bytes + (Load(&sh->file_chunks) << log->shift);
  out->grow_count = Load(&sh->grow_count);
  out->order_timeouts = Load(&sh->order_timeouts);
  out->state = Load(&sh->state);
}

uint32_t LogGetState(const Log *log) { return Load(&log->sh->state); }

void *LogUserArea(Log *log) { return log->user; }

uint64_t LogBacklogBytes(const Log *log) {
  return Load(&log->sh->head) - Load(&log->sh->tail);
}

void LogDestroy(Log *log) {
  RawSyscall(SYS_munmap, long(log->sh), long(log->sh->header_bytes + log->sh->bound));
  CloseRuntimeFd(log->memfd);
  *log = Log();
}

} // namespace mve
} // namespace mvedsua
