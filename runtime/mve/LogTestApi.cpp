// LogTestApi.cpp: the log's test-only entry points (ToolApi.h), so that a
// test program can drive one writer and one reader across a real fork.
#include "../Runtime.h"
#include "../ToolApi.h"
#include "Log.h"

using namespace mvedsua::mve;

namespace {
Log *Unwrap(mvedsua_rt_mve_log *log) { return reinterpret_cast<Log *>(log); }
} // namespace

MVEDSUA_EXPORT mvedsua_rt_mve_log *
mvedsua_rt_mve_log_create(uint64_t bound, uint64_t chunk_size,
                          uint64_t initial_chunks, char *err, size_t size) {
  LogOptions o;
  o.bound = bound;
  o.chunk_size = chunk_size;
  o.initial_chunks = initial_chunks;
  return reinterpret_cast<mvedsua_rt_mve_log *>(LogCreate(o, err, size));
}

MVEDSUA_EXPORT int mvedsua_rt_mve_log_append(mvedsua_rt_mve_log *log,
                                             const void *data, size_t len) {
  Piece piece = {data, len};
  return LogAppend(Unwrap(log), &piece, 1) ? 0 : -1;
}

MVEDSUA_EXPORT void mvedsua_rt_mve_log_close_writer(mvedsua_rt_mve_log *log) {
  LogCloseWriter(Unwrap(log));
}

MVEDSUA_EXPORT int64_t mvedsua_rt_mve_log_next(mvedsua_rt_mve_log *log,
                                               void *buf, size_t cap) {
  Log *l = Unwrap(log);
  int64_t len = LogNext(l, nullptr, nullptr);
  if (len < 0)
    return -1;
  LogRead(l, buf, uint64_t(len) < cap ? uint64_t(len) : cap);
  LogFinishRecord(l);
  return len;
}

MVEDSUA_EXPORT void mvedsua_rt_mve_log_get_stats(mvedsua_rt_mve_log *log,
                                                 mvedsua_rt_mve_log_stats *out) {
  LogStats s;
  LogGetStats(Unwrap(log), &s);
  out->records_appended = s.records_appended;
  out->records_consumed = s.records_consumed;
  out->bytes_appended = s.bytes_appended;
  out->backlog_bytes = s.backlog_bytes;
  out->peak_backlog_bytes = s.peak_backlog_bytes;
  out->chunks_in_use = s.chunks_in_use;
  out->file_bytes = s.file_bytes;
  out->grow_count = s.grow_count;
  out->state = s.state;
}
