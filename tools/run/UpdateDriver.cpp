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
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

namespace {

constexpr uint64_t kWakeEveryMs = 200;
constexpr uint64_t kRollbackWaitMs = 10000;
constexpr uint64_t kCatchUpMarginMs = 5000;
// After a rollback the runtime will retry: its delay and a margin.
constexpr uint64_t kRetryWatchMs = 3000;

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
  if (err.empty() && state_.follower)
    err = "a multi-version update is under way: follower " +
          std::to_string(state_.follower) + " is in stage " + state_.mve_stage +
          "; end it first ('mvedsua-ctl finish' after 'promote', or "
          "'mvedsua-ctl rollback')";
  std::string path = err.empty() ? CheckVersionFile(req.path, &err) : "";
  // The rules (or none) go first: the program keeps them for the follower.
  if (err.empty() && !req.inplace)
    Forward("rules " + (req.rules.empty() ? std::string("-") : req.rules) + "\n",
            &err);
  if (err.empty() && !req.inplace)
    Forward("learn " + (req.learn.empty() ? std::string("-") : req.learn) + "\n",
            &err);
  if (err.empty())
    Forward((req.inplace ? "update " : "update-mve ") +
                std::to_string(req.timeout_ms) + " " +
                (req.inplace ? "" : std::to_string(req.retries) + " ") + path +
                "\n",
            &err);
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
  r.multi_version = !req.inplace;
  p_ = Pending{kForwarded, false, r.serial, conn, MonotonicMs() + req.timeout_ms,
               req.timeout_ms, !req.inplace};
  if (!req.inplace) {
    mve_serial_ = r.serial, mve_retries_left_ = req.retries;
    mve_timeout_ms_ = req.timeout_ms;
    policy_ = Policy{};
    policy_.promote.after_ms = req.promote_after_ms;
    policy_.promote.after_calls = req.promote_after_calls;
    policy_.finish.after_ms = req.finish_after_ms;
    policy_.finish.after_calls = req.finish_after_calls;
    policy_.wait_finished = req.wait_finished;
  }
  state_.updating = true;
  return false;
}

bool UpdateDriver::Rollback(int conn, std::string *reply) {
  std::string err;
  if (!state_.follower)
    err = "there is no follower to roll back (stage " +
          std::string(state_.Stage()) + "; rollback ends the follower of a "
          "multi-version update)";
  else if (rb_.conn >= 0)
    err = "a rollback is already under way";
  else if (send(channel_fd_, "rollback\n", 9, MSG_NOSIGNAL | MSG_DONTWAIT) != 9)
    err = std::string("cannot pass the request to the program: ") +
          strerror(errno);
  else
    Wake();
  if (!err.empty()) {
    *reply = "error: " + err + "\n";
    return true;
  }
  rb_ = PendingRollback{conn, MonotonicMs() + kRollbackWaitMs};
  return false;
}

// "promote"/"finish" on the channel: taken at the leader's next update point.
bool UpdateDriver::ForwardStep(const char *what, int conn, std::string *reply) {
  bool promote = strcmp(what, "promote") == 0;
  std::string stage = state_.mve_stage, err;
  PendingRollback &p = promote ? promote_ : finish_;
  if (!state_.follower)
    err = std::string("there is no multi-version update under way (stage ") +
          state_.Stage() + ")";
  else if (promote && stage != "outdated-leader")
    err = "the follower has not caught up (stage " + stage +
          "); promote once it is in stage outdated-leader";
  else if (!promote && stage != "updated-leader")
    err = "the new version does not lead (stage " + stage +
          "); finish comes after promote";
  else if (p.conn >= 0)
    err = std::string("a ") + what + " is already under way";
  else if (std::string line = std::string(what) + "\n";
           send(channel_fd_, line.data(), line.size(),
                MSG_NOSIGNAL | MSG_DONTWAIT) != ssize_t(line.size()))
    err = std::string("cannot pass the request to the program: ") +
          strerror(errno);
  else
    Wake();
  if (!err.empty()) {
    *reply = "error: " + err + "\n";
    return true;
  }
  p = PendingRollback{conn, MonotonicMs() + kRollbackWaitMs};
  return false;
}

bool UpdateDriver::Promote(int conn, std::string *reply) {
  return ForwardStep("promote", conn, reply);
}

bool UpdateDriver::Finish(int conn, std::string *reply) {
  return ForwardStep("finish", conn, reply);
}

void UpdateDriver::ReplyStep(PendingRollback *p, const std::string &reply) {
  if (p->conn >= 0)
    control_.Reply(p->conn, reply);
  *p = PendingRollback{};
}

bool UpdateDriver::KeepsWaking() const {
  return state_.follower || rb_.conn >= 0 || promote_.conn >= 0 ||
         finish_.conn >= 0 ||
         (!state_.mve_stage.empty() && state_.mve_stage != "single-leader") ||
         MonotonicMs() < retry_watch_until_ms_ ||
         (p_.mve && p_.phase == kTaken && !p_.timed_out) ||
         // A request not taken yet: its wake-up may have come between a
         // thread's look at the flag and its blocking call (an event loop in
         // epoll_wait(-1) then never looks again), so it comes again.
         (p_.phase == kForwarded && !p_.timed_out);
}

void UpdateDriver::Wake() {
  kill(state_.leader, MVEDSUA_WAKE_SIGNAL);
  next_wake_ms_ = MonotonicMs() + kWakeEveryMs;
}

namespace {

std::string Unescape(const std::string &s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      ++i;
      out += s[i] == 'n' ? '\n' : s[i];
    } else {
      out += s[i];
    }
  }
  return out;
}

// A rollback the runtime will retry (runtime/mve/Follower.cpp, Retriable):
// not a failed update, not one requested.
bool Retriable(const std::string &reason) {
  return reason.find("the update failed in follower") == std::string::npos &&
         reason.find("rolled back on request") == std::string::npos;
}

} // namespace

// "STAGE LEADER_PID FOLLOWER_PID BACKLOG_BYTES BACKLOG_RECORDS PEAK_BYTES
// RECORDS_REPLAYED ORDER_TIMEOUTS OUTCOME REASON"
void UpdateDriver::OnMveLine(const std::string &fields) {
  std::istringstream in(fields);
  std::string stage, outcome, reason;
  int leader = 0, follower = 0;
  uint64_t bytes = 0, records = 0, peak = 0, replayed = 0, unordered = 0;
  if (!(in >> stage >> leader >> follower >> bytes >> records >> peak >>
        replayed >> unordered >> outcome)) {
    fprintf(stderr, "mvedsua-run: warning: malformed stage message from the "
                    "program ignored\n");
    return;
  }
  if (in.peek() == ' ')
    in.get();
  std::getline(in, reason);
  reason = Unescape(reason);
  state_.mve_stage = stage;
  state_.follower = follower;
  if (leader > 0)
    state_.leader = leader;
  state_.backlog_bytes = bytes;
  state_.backlog_records = records;
  state_.peak_backlog_bytes = peak;
  state_.records_replayed = replayed;
  state_.order_timeouts = unordered;
  UpdateRecord *r = mve_serial_ ? state_.Find(mve_serial_) : nullptr;
  bool waiting = p_.phase != kNone && p_.mve && !p_.timed_out;
  if (r && follower)
    r->follower_pid = follower;
  if (outcome == "in-progress") {
    retry_watch_until_ms_ = 0;
    if (r && r->outcome != "in-progress") { // the runtime retries
      r->outcome = "in-progress";
      r->completed_us = 0;
      r->reason = "retried after: " + r->reason;
    }
    ArmPolicy(stage);
    if (stage == "updated-leader") {
      ReplyStep(&promote_, "promoted: " + ShortName(r ? r->to : "") +
                               " leads (pid " + std::to_string(leader) +
                               "), the old version follows it (pid " +
                               std::to_string(follower) + ")\n");
      return;
    }
    if (stage == "outdated-leader" && waiting && r && policy_.wait_finished) {
      // The client waits for the end of the unattended update instead.
      policy_.wait_conn = p_.conn;
      p_ = Pending{};
      state_.updating = false;
      return;
    }
    if (stage == "outdated-leader" && waiting && r) {
      ReplyMve("caught up: " + ShortName(r->from) + " -> " + ShortName(r->to) +
               " multi-version, follower " + std::to_string(follower) +
               ", backlog " + std::to_string(bytes) + " bytes (" +
               std::to_string(records) + " records), peak " +
               std::to_string(peak) + " bytes\n");
      state_.updating = false;
    }
    return;
  }
  // The follower is gone: how it ended.
  state_.updating = false;
  if (!r)
    return;
  r->completed_us = WallMicros();
  if (outcome == "rolled-back") {
    r->outcome = "rolled-back";
    r->reason = reason;
    if (mve_retries_left_ && Retriable(reason)) {
      // The runtime forks a new follower after its delay (500 ms), at an
      // update point: keep waking the leader until it did.
      mve_retries_left_--;
      retry_watch_until_ms_ = MonotonicMs() + kRetryWatchMs;
      if (waiting || policy_.wait_conn >= 0) {
        policy_.promote.armed = policy_.finish.armed = false; // armed again
        r->outcome = "in-progress";
        r->completed_us = 0;
        r->reason = "retrying (" + std::to_string(mve_retries_left_) +
                    " more retries after this one) after: " + reason;
        state_.updating = true;
        return;
      }
    }
  } else if (outcome == "finished") {
    r->outcome = "finished";
    r->reason = reason;
  } else if (outcome == "not-started") {
    r->outcome = "failed";
    r->reason = "no follower could be started: " + reason;
  } else {
    r->outcome = "failed";
    r->reason = "the program ended while the follower followed (" + outcome +
                ")" + (reason.empty() ? "" : ": " + reason);
  }
  if (waiting)
    ReplyMve(OutcomeLine(*r) + "\n");
  std::string end = r->outcome == "finished"
                        ? "finished: " + ShortName(r->to) + " runs alone (pid " +
                              std::to_string(state_.leader) + ")\n"
                        : OutcomeLine(*r) + "\n";
  ReplyStep(&finish_, end);
  ReplyStep(&promote_, end);
  EndPolicy(end);
  if (rb_.conn >= 0) {
    // After promotion the new version (which led) ended and the old one
    // leads again.
    bool demoted = previous_leader_ && previous_leader_ != state_.leader &&
                   r->follower_pid == state_.leader;
    control_.Reply(rb_.conn,
                   demoted ? "rolled back: the new version (pid " +
                                 std::to_string(previous_leader_) +
                                 ") ended; the old version (pid " +
                                 std::to_string(state_.leader) +
                                 ") leads again with " +
                                 ShortName(state_.version_path) + "\n"
                           : "rolled back: follower " +
                                 std::to_string(r->follower_pid) +
                                 " ended; the leader (pid " +
                                 std::to_string(state_.leader) +
                                 ") goes on alone with " +
                                 ShortName(state_.version_path) + "\n");
    rb_ = PendingRollback{};
  }
}

// The waiting client of a multi-version update gets its answer; the update
// itself may go on (caught up: the follower keeps following).
void UpdateDriver::ReplyMve(const std::string &reply) {
  control_.Reply(p_.conn, reply);
  p_ = Pending{};
}

// "update TIMEOUT_MS PATH" on the channel, then the wake signal: its handler
// sets the update flag, and an event loop blocked in epoll_wait returns EINTR
// and reaches its update point, where the request is read.
bool UpdateDriver::Forward(const std::string &line, std::string *err) {
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
  next_wake_ms_ = MonotonicMs() + kWakeEveryMs;
  return true;
}

bool UpdateDriver::OnProgramLine(const std::string &line) {
  std::string rest;
  if (StartsWith(line, "update-stats ", &stats_))
    return true;
  if (StartsWith(line, "mve ", &rest)) {
    OnMveLine(rest);
    return true;
  }
  if (StartsWith(line, "leader ", &rest)) {
    // Another process leads (a promotion, or a follower that took over).
    int leader = 0, follower = 0;
    if (sscanf(rest.c_str(), "%d %d", &leader, &follower) == 2 && leader > 0) {
      if (leader != state_.leader)
        previous_leader_ = state_.leader;
      state_.leader = leader;
      state_.follower = follower;
    }
    return true;
  }
  if (StartsWith(line, "promote-failed ", &rest)) {
    ReplyStep(&promote_, "error: promote failed: " + rest + "\n");
    return true;
  }
  if (StartsWith(line, "finish-failed ", &rest)) {
    ReplyStep(&finish_, "error: finish failed: " + rest + "\n");
    return true;
  }
  if (StartsWith(line, "rollback-failed ", &rest)) {
    if (rb_.conn >= 0)
      control_.Reply(rb_.conn, "error: " + rest + "\n");
    rb_ = PendingRollback{};
    return true;
  }
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
  if (p_.mve) // the runtime's own limits apply now; this one only ends the wait
    p_.deadline_ms = MonotonicMs() + 2 * p_.timeout_ms + kCatchUpMarginMs;
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

void UpdateDriver::ArmStep(Step *s, uint64_t now_ms) {
  s->armed = true;
  s->due_ms = s->after_ms >= 0 ? now_ms + uint64_t(s->after_ms) : 0;
  s->due_calls = s->after_calls >= 0
                     ? state_.records_replayed + uint64_t(s->after_calls) : 0;
}

bool UpdateDriver::StepDue(const Step &s, uint64_t now_ms) const {
  if (!s.armed)
    return false;
  return s.after_ms >= 0 ? now_ms >= s.due_ms
                         : state_.records_replayed >= s.due_calls;
}

// Arms the next step of an unattended update when its stage is reached. The
// count of calls restarts with the stage: after promotion the old version
// replays the new leader's log.
void UpdateDriver::ArmPolicy(const std::string &stage) {
  uint64_t now = MonotonicMs();
  Step &promote = policy_.promote, &finish = policy_.finish;
  if (stage == "outdated-leader" && !promote.armed &&
      (promote.after_ms >= 0 || promote.after_calls >= 0))
    ArmStep(&promote, now);
  if (stage == "updated-leader" && !finish.armed &&
      (finish.after_ms >= 0 || finish.after_calls >= 0)) {
    promote.armed = false;
    ArmStep(&finish, now);
  }
}

// Each time round the supervisor's loop: a step counted in calls is due
// after a stage message, one counted in time at its deadline.
void UpdateDriver::RunPolicy(uint64_t now_ms) {
  for (Step *step : {&policy_.promote, &policy_.finish}) {
    if (!StepDue(*step, now_ms))
      continue;
    const char *what = step == &policy_.promote ? "promote" : "finish";
    step->armed = false;
    std::string reply;
    if (ForwardStep(what, -1, &reply))
      fprintf(stderr, "mvedsua-run: the unattended %s was not done: %s",
              what, reply.c_str() + 7);
  }
}

void UpdateDriver::EndPolicy(const std::string &reply) {
  if (policy_.wait_conn >= 0)
    control_.Reply(policy_.wait_conn, reply);
  policy_ = Policy{};
}

void UpdateDriver::OnTimer(uint64_t now_ms) {
  RunPolicy(now_ms);
  for (PendingRollback *p : {&promote_, &finish_})
    if (p->conn >= 0 && now_ms >= p->deadline_ms)
      ReplyStep(p, "error: the program did not report the new stage within " +
                       FormatDuration(kRollbackWaitMs) + "; see status\n");
  if (rb_.conn >= 0 && now_ms >= rb_.deadline_ms) {
    control_.Reply(rb_.conn, "error: the program did not report the "
                             "follower's end within " +
                                 FormatDuration(kRollbackWaitMs) +
                                 " (it has not reached an update point); see "
                                 "status\n");
    rb_ = PendingRollback{};
  }
  // While a follower exists or someone waits on one, an idle leader is woken
  // now and then: it looks at its follower at update points (and every 64
  // recorded calls) only.
  if (KeepsWaking() && now_ms >= next_wake_ms_)
    Wake();
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
  if (p_.mve) {
    if (r)
      control_.Reply(p_.conn,
                     "failed: the follower did not catch up within " +
                         FormatDuration(2 * p_.timeout_ms + kCatchUpMarginMs) +
                         " (stage " + state_.Stage() +
                         "); it is still under way: see status, or end it "
                         "with rollback\n");
    p_ = Pending{};
    state_.updating = false;
    return;
  }
  // In place, there is no way back: say what the program is doing now.
  if (r)
    Fail(*r, "the new version did not reach its update point within " + limit +
                 "; in-place updates cannot be rolled back: the program runs "
                 "the new version's code, still updating");
}

uint64_t UpdateDriver::NextDeadline() const {
  uint64_t d = p_.phase != kNone && !p_.timed_out ? p_.deadline_ms : 0;
  for (const Step *step : {&policy_.promote, &policy_.finish})
    if (step->armed && step->after_ms >= 0 && (!d || step->due_ms < d))
      d = step->due_ms;
  if (rb_.conn >= 0 && (!d || rb_.deadline_ms < d))
    d = rb_.deadline_ms;
  if (KeepsWaking() && (!d || next_wake_ms_ < d))
    d = next_wake_ms_;
  return d;
}

void UpdateDriver::OnProgramEnded(int status) {
  UpdateRecord *r = p_.phase == kNone ? nullptr : state_.Find(p_.serial);
  if (r && !p_.timed_out)
    Fail(*r, ProgramEnd(status) + " before the update completed");
  if (rb_.conn >= 0)
    control_.Reply(rb_.conn, "error: " + ProgramEnd(status) + "\n");
  ReplyStep(&promote_, "error: " + ProgramEnd(status) + "\n");
  EndPolicy("failed: " + ProgramEnd(status) + "\n");
  ReplyStep(&finish_, "error: " + ProgramEnd(status) + "\n");
  p_ = Pending{};
  rb_ = PendingRollback{};
  state_.updating = false;
}
