// UpdateDriver.cpp: forwarding in-place updates to the program and reporting
// their outcomes.
#include "UpdateDriver.h"
#include "Duration.h"
#include "StatusFormat.h"
#include "ToolApi.h"
#include "VersionFile.h"

#include <errno.h>
#include <signal.h>
#include <sstream>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

namespace {

bool StartsWith(const std::string &s, const char *prefix, std::string *rest) {
  size_t n = strlen(prefix);
  if (s.compare(0, n, prefix) != 0)
    return false;
  *rest = s.substr(n);
  return true;
}

std::string ProgramEnd(int status) {
  if (WIFSIGNALED(status))
    return "the program died of signal " + std::to_string(WTERMSIG(status));
  return "the program exited with status " + std::to_string(WEXITSTATUS(status));
}

} // namespace

std::string UpdateDriver::CheckUpdatable() const {
  if (!state_.announced)
    return "the program has not started yet (no version announced)";
  if (state_.version_id.empty())
    return "the running version " + state_.version_path +
           " has no mvedsua registry: it cannot be updated";
  return "";
}

std::string UpdateDriver::InProgressError() const {
  const UpdateRecord *r = state_.Find(p_.serial);
  std::string what = r ? " (to " + r->to + " since " + IsoTime(r->requested_us)
                       : " (";
  if (p_.timed_out && p_.phase == kTaken)
    what += "; it timed out, but the program still runs towards its update point";
  else if (p_.timed_out)
    what += "; it timed out and is being withdrawn, but the program has not "
            "reached an update point since";
  return "an update is already in progress" + what + ")";
}

bool UpdateDriver::Start(int conn, const Request &req, std::string *reply) {
  std::string err = CheckUpdatable();
  if (err.empty() && p_.phase != kNone)
    err = InProgressError();
  std::string path = err.empty() ? CheckVersionFile(req.path, &err) : "";
  if (err.empty())
    Forward(path, req.timeout_ms, &err);
  if (!err.empty()) {
    *reply = "error: " + err + "\n";
    return true;
  }
  UpdateRecord &r = state_.AddRecord();
  r.outcome = "in-progress";
  r.requested_by = "supervisor";
  r.from = state_.version_path;
  r.from_id = state_.version_id;
  r.to = path;
  r.requested_us = WallMicros();
  p_ = Pending{kForwarded, false, r.serial, conn, MonotonicMs() + req.timeout_ms,
               req.timeout_ms};
  state_.updating = true;
  return false;
}

// "update TIMEOUT_MS PATH" on the channel, then the wake signal: its handler
// sets the update flag, and an event loop blocked in epoll_wait returns EINTR
// and reaches its update point, where the request is read.
bool UpdateDriver::Forward(const std::string &path, uint64_t timeout_ms,
                           std::string *err) {
  std::string line =
      "update " + std::to_string(timeout_ms) + " " + path + "\n";
  ssize_t n = send(channel_fd_, line.data(), line.size(),
                   MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n != ssize_t(line.size())) {
    *err = std::string("cannot pass the request to the program: ") +
           (n < 0 ? strerror(errno) : "its channel is full");
    return false;
  }
  if (kill(state_.leader, MVEDSUA_WAKE_SIGNAL) != 0) {
    *err = std::string("cannot wake the program: ") + strerror(errno);
    return false;
  }
  return true;
}

bool UpdateDriver::OnProgramLine(const std::string &line) {
  std::string rest;
  if (StartsWith(line, "update-stats ", &stats_))
    return true;
  if (line.compare(0, 13, "update-taken ") == 0) {
    OnTaken();
    return true;
  }
  if (StartsWith(line, "update-withdrawn ", &rest)) {
    if (p_.phase == kForwarded && p_.timed_out)
      p_ = Pending{};
    return true;
  }
  if (StartsWith(line, "program ", &rest) &&
      rest.compare(0, 7, "update-") == 0) {
    OnOutcome(rest, true);
    return true;
  }
  if (line.compare(0, 12, "update-done ") == 0 ||
      line.compare(0, 14, "update-failed ") == 0) {
    OnOutcome(line, false);
    return true;
  }
  return false;
}

void UpdateDriver::OnTaken() {
  if (p_.phase != kForwarded)
    return;
  p_.phase = kTaken;
  UpdateRecord *r = state_.Find(p_.serial);
  if (p_.timed_out && r) { // the withdrawal came too late: it is under way
    r->outcome = "in-progress";
    r->reason = "taken at an update point after the " +
                FormatDuration(p_.timeout_ms) +
                " time limit had been reported as a failure";
    state_.updating = true;
  }
}

void UpdateDriver::OnOutcome(const std::string &msg, bool by_program) {
  UpdateRecord *r = nullptr;
  if (by_program) {
    r = &state_.AddRecord();
    r->requested_by = "program";
    r->from = state_.version_path;
    r->from_id = state_.version_id;
  } else {
    r = p_.phase == kNone ? nullptr : state_.Find(p_.serial);
    if (!r) {
      fprintf(stderr, "mvedsua-run: warning: the program reported an update "
                      "nobody asked for: %s\n", msg.c_str());
      return;
    }
  }
  std::string rest;
  if (StartsWith(msg, "update-done ", &rest))
    ApplyDone(*r, rest);
  else
    r->outcome = "failed", r->reason = msg.substr(msg.find(' ') + 1);
  stats_.clear(); // they belonged to this outcome
  r->completed_us = WallMicros();
  if (by_program) {
    r->requested_us = r->completed_us - (r->has_stats ? r->pause_us : 0);
    return;
  }
  if (p_.timed_out && r->outcome == "finished")
    r->reason = "finished after the " + FormatDuration(p_.timeout_ms) +
                " time limit had been reported as a failure";
  Resolve(*r);
}

// "FROM_ID TO_ID PAUSE_US ENTRIES BYTES REMAPPED PATH"
void UpdateDriver::ApplyDone(UpdateRecord &r, const std::string &fields) {
  std::istringstream in(fields);
  std::string from_id, to_id;
  in >> from_id >> to_id >> r.pause_us >> r.entries >> r.bytes >> r.remapped;
  std::string path;
  std::getline(in >> std::ws, path);
  r.outcome = "finished";
  r.from_id = from_id;
  r.to_id = to_id;
  r.to = path;
  r.has_stats = true;
  ApplyStats(r);
  // The new version runs: the program's hello confirms it just after.
  state_.version_id = to_id;
  state_.version_path = path;
}

// "TRANSFORMED HEAP_OBJECTS LOCALS LOAD_US TRANSFER_US POINT", sent just
// before the outcome.
void UpdateDriver::ApplyStats(UpdateRecord &r) {
  std::istringstream in(stats_);
  in >> r.transformed >> r.heap_objects >> r.locals >> r.load_us >>
      r.transfer_us;
  std::getline(in >> std::ws, r.point);
  stats_.clear();
}

// The outcome of our request: its client learns it, unless it already had
// its answer (the time ran out).
void UpdateDriver::Resolve(UpdateRecord &r) {
  if (!p_.timed_out)
    control_.Reply(p_.conn, OutcomeLine(r) + "\n");
  p_ = Pending{};
  state_.updating = false;
}

void UpdateDriver::Fail(UpdateRecord &r, const std::string &reason) {
  r.outcome = "failed";
  r.reason = reason;
  r.completed_us = WallMicros();
  control_.Reply(p_.conn, OutcomeLine(r) + "\n");
}

void UpdateDriver::OnTimer(uint64_t now_ms) {
  if (p_.phase == kNone || p_.timed_out || now_ms < p_.deadline_ms)
    return;
  UpdateRecord *r = state_.Find(p_.serial);
  std::string limit = FormatDuration(p_.timeout_ms);
  p_.timed_out = true;
  if (p_.phase == kForwarded) {
    // Withdraw it; if the program takes it before reading this, update-taken
    // still comes and the record follows.
    (void)!send(channel_fd_, "cancel\n", 7, MSG_NOSIGNAL | MSG_DONTWAIT);
    state_.updating = false;
    if (r)
      Fail(*r, "the program did not reach an update point within " + limit +
                   "; the request is withdrawn and the old version keeps "
                   "running");
    return;
  }
  // In place, there is no way back: say what the program is doing now.
  if (r)
    Fail(*r, "the new version did not reach its update point within " + limit +
                 "; in-place updates cannot be rolled back: the program runs "
                 "the new version's code, still updating");
}

uint64_t UpdateDriver::NextDeadline() const {
  return p_.phase != kNone && !p_.timed_out ? p_.deadline_ms : 0;
}

void UpdateDriver::OnProgramEnded(int status) {
  UpdateRecord *r = p_.phase == kNone ? nullptr : state_.Find(p_.serial);
  if (r && !p_.timed_out)
    Fail(*r, ProgramEnd(status) + " before the update completed");
  p_ = Pending{};
  state_.updating = false;
}
