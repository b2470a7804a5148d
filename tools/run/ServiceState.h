// ServiceState.h: what the supervisor knows about the service it runs, as
// reported by mvedsua-ctl status.
#ifndef MVEDSUA_TOOLS_RUN_SERVICE_STATE_H
#define MVEDSUA_TOOLS_RUN_SERVICE_STATE_H

#include <deque>
#include <stdint.h>
#include <string>
#include <sys/types.h>

// One update attempt: requested through the control socket, or by the
// program itself (mvedsua_request_update).
struct UpdateRecord {
  uint64_t serial = 0;         // 1, 2, ... in the life of the supervisor
  std::string outcome;         // "in-progress", "finished", "failed",
                               // "rolled-back" (multi-version)
  bool multi_version = false;  // mode "multi-version" (else "in-place")
  int follower_pid = 0;        // multi-version: the last follower forked
  std::string reason;          // why it failed; "" otherwise
  std::string requested_by;    // "supervisor" or "program"
  std::string from, to;        // version paths
  std::string from_id, to_id;  // "" when unknown
  uint64_t requested_us = 0;   // wall clock, us since the epoch
  uint64_t completed_us = 0;   // 0 while no outcome is known
  // The program's report of a finished update (update-done, update-stats).
  bool has_stats = false;
  uint64_t pause_us = 0, entries = 0, bytes = 0, remapped = 0;
  uint64_t transformed = 0, heap_objects = 0, locals = 0;
  uint64_t load_us = 0, transfer_us = 0; // parts of the pause
  std::string point;
};

struct ServiceState {
  static constexpr size_t kMaxHistory = 32;

  pid_t supervisor = 0;
  pid_t leader = 0;          // the process running the program
  bool announced = false;    // the program said which version it runs
  std::string version_id;    // 16 hex digits; empty without a registry
  std::string version_path;  // absolute path of the running version
  bool updating = false;     // the program is performing an update we know of
  // The multi-version layer's view (the program's "mve" lines): its stage
  // ("" before any multi-version update), the follower (0: none), the log.
  std::string mve_stage;
  pid_t follower = 0;
  uint64_t backlog_bytes = 0, backlog_records = 0, peak_backlog_bytes = 0;
  uint64_t records_replayed = 0; // by the follower, in the current log
  uint64_t order_timeouts = 0;   // its waits for the order across threads
                                 // that went on unordered
  std::deque<UpdateRecord> history; // oldest first, the last kMaxHistory
  uint64_t next_serial = 1;

  const char *Stage() const {
    if (!announced)
      return "starting";
    if (!mve_stage.empty() && mve_stage != "single-leader")
      return mve_stage.c_str();
    return updating ? "updating" : "single-leader";
  }
  const UpdateRecord *Last() const {
    return history.empty() ? nullptr : &history.back();
  }
  // A new record, at the end of the history; older ones beyond the bound go.
  UpdateRecord &AddRecord();
  // The record with this serial, or null once it left the history.
  UpdateRecord *Find(uint64_t serial);
};

// Parses the program's "hello PID ID PATH" line into *st; false if malformed.
bool ParseHello(const std::string &line, ServiceState *st);

// Wall clock, microseconds since the epoch.
uint64_t WallMicros();

#endif
