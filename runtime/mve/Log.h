// Log.h: the leader -> follower log of the multi-version layer.
//
// One writer (a leader thread) and one reader (its follower thread) share a
// byte stream of framed records in shared memory (a memfd mapped MAP_SHARED
// before the fork, so both processes see it at the same address). Nothing on
// the append or read path allocates with malloc or takes a lock; the writer
// never waits for the reader.
//
// The stream is cut into chunks of `chunk_size` bytes. A stream position p
// lives in logical chunk p / chunk_size, which the writer maps to a physical
// chunk of the memfd when it first writes there. The reader hands each chunk
// back (a free ring) once it has read past it, so memory follows the backlog,
// not the history. When no freed chunk is available the writer takes a new
// one, growing the memfd (ftruncate; the whole virtual range was reserved
// with MAP_NORESERVE at creation). When `bound` bytes of chunks are in use
// the writer gives up: the log is marked abandoned, appends fail, and the
// reader sees the state and stops (whoever supervises kills it).
//
// Records are never split logically, but may straddle chunks: readers copy
// bytes out rather than pointing into the stream.
//
// One Log serves one thread pair; a multi-threaded leader gets one per
// thread (LogCreate any number of times before the fork).
#ifndef MVEDSUA_MVE_LOG_H
#define MVEDSUA_MVE_LOG_H

#include <stddef.h>
#include <stdint.h>

namespace mvedsua {
namespace mve {

enum LogState : uint32_t {
  kLogActive = 0,
  kLogWriterDone = 1, // the leader appended its last record
  kLogAbandoned = 2,  // the bound was reached: the follower must stop
  kLogReaderGone = 3, // the follower stopped (diverged, crashed, finished)
};

struct LogOptions {
  uint64_t bound = uint64_t(1) << 30;      // bytes of chunks at most
  uint64_t chunk_size = uint64_t(1) << 20; // a power of two >= 4096
  uint64_t initial_chunks = 4;             // memfd size at creation
};

struct LogStats {
  uint64_t records_appended;
  uint64_t records_consumed;
  uint64_t bytes_appended;
  uint64_t backlog_bytes;      // appended and not yet consumed
  uint64_t peak_backlog_bytes; // the largest backlog an append saw
  uint64_t chunks_in_use;      // physical chunks ever taken (memory held)
  uint64_t file_bytes;         // current size of the memfd
  uint64_t grow_count;         // ftruncate calls after creation
  uint64_t order_timeouts;     // waits for the order that went on unordered
  uint32_t state;              // LogState
};

// A gathered piece of one record (the writer appends a record from several).
struct Piece {
  const void *data;
  uint64_t len;
};

struct Log;

// Creates a log (memfd + mapping + ftruncate). Before the fork, in the
// process that will lead. Returns null with a message in err on failure.
Log *LogCreate(const LogOptions &opts, char *err, size_t err_size);
// Another process's log, by a descriptor of its memfd (taken over: closed
// with the log), opened as its reader from the first record. Null with
// `err` filled when the memory is not a log.
Log *LogOpen(int memfd, char *err, size_t err_size);
// The log's memfd, e.g. for a child process to be given.
int LogFd(const Log *log);
// A number the creator tags the log with (a child's pid), for the reader
// that opens it to check it has the right one.
void LogSetTag(Log *log, uint64_t tag);
uint64_t LogTag(const Log *log);
// The order of calls across lanes (threads), kept in one log (lane 0's):
// the leader's threads take numbers (from 1) for the calls that must be
// replayed in order; the follower's threads say each number done
// (LogOrderDone), in any order, and order_done is the number up to which
// every one is. A follower thread that must not go on before call n waits
// until order_done reaches n - 1 (LogOrderWait). A waiting thread sleeps on
// a futex that the thread moving order_done wakes only when someone sleeps
// there; neither allocates or locks (the SIGSYS handler). Waits are bounded
// (`max_ms` with no number done meanwhile): a thread that needs another to
// move first while the other waits for it (a lock taken in another order)
// passes every number before its own and goes on unordered; false then. A
// wait for a number whose record the leader has not appended (its call
// still runs) is not the follower's and lasts longer (LogOrderRecorded).
// LogOrderTaken is how many were taken so far.
uint64_t LogOrderTake(Log *log);
uint64_t LogOrderTaken(const Log *log);
// The leader appended the record that holds number n.
void LogOrderRecorded(Log *log, uint64_t n);
bool LogOrderWait(Log *log, uint64_t n, long max_ms);
void LogOrderDone(Log *log, uint64_t n, long max_ms);
// A reader opened it with LogOpen; a reader closed it (LogCloseReader:
// its end, whatever the log's state).
bool LogReaderAttached(const Log *log);
bool LogReaderDone(const Log *log);

// Options from the environment: MVEDSUA_MVE_LOG_BOUND and
// MVEDSUA_MVE_LOG_CHUNK (bytes, with an optional K/M/G suffix).
LogOptions LogOptionsFromEnv();

// Writer. Appends one record made of the pieces, then publishes it and wakes
// a waiting reader. Returns false (and appends nothing) when the log is not
// active: abandoned by this append reaching the bound, or the reader gone.
bool LogAppend(Log *log, const Piece *pieces, int n);
// The same in three steps, for records gathered from many pieces: Begin
// reserves `len` bytes (false when the log is not active or the bound is
// reached), Put copies at the cursor, Commit publishes.
bool LogBegin(Log *log, uint64_t len, uint64_t *cursor);
void LogPut(Log *log, uint64_t *cursor, const void *data, uint64_t len);
void LogCommit(Log *log, uint64_t len);
// The writer has finished: readers drain what is left and then see the end.
void LogCloseWriter(Log *log);
// Marks the log abandoned (e.g. the follower is being killed).
void LogAbandon(Log *log);

// Reader. Waits for the next record; returns its length, or -1 when there is
// none and will be none (writer done, abandoned), or -2 when
// `still_alive(ctx)` says the writer has vanished. `still_alive` is polled
// between bounded futex waits; null means "always alive".
int64_t LogNext(Log *log, bool (*still_alive)(void *), void *ctx);
// Within the current record, in order: copy, compare or skip bytes.
// LogCompare returns the offset of the first differing byte, or -1.
void LogRead(Log *log, void *dst, uint64_t len);
int64_t LogCompare(Log *log, const void *src, uint64_t len);
void LogSkip(Log *log, uint64_t len);
// Copies up to `len` bytes at `offset` from the reader's position without
// moving it (for reports); returns how many were left in the record.
uint64_t LogPeek(const Log *log, uint64_t offset, void *dst, uint64_t len);
// Left in the record (the reader must not read past it).
uint64_t LogRemaining(const Log *log);
// Ends the current record: frees the chunks read past.
void LogFinishRecord(Log *log);
// The reader stops for good (divergence, exit); appends then fail.
void LogCloseReader(Log *log);

void LogGetStats(const Log *log, LogStats *out);
uint32_t LogGetState(const Log *log);
// The log's shared memory (for the divergence report area next to it).
void *LogUserArea(Log *log);
constexpr size_t kLogUserAreaSize = 8192;
// Appended and not yet consumed (either side may ask).
uint64_t LogBacklogBytes(const Log *log);
// Unmaps the log and closes its memfd, in a process that no longer uses it
// (the leader, once its follower is reaped); its slot can be reused.
void LogDestroy(Log *log);

} // namespace mve
} // namespace mvedsua

#endif // MVEDSUA_MVE_LOG_H
