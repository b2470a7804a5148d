// UpdateDriver.h: the supervisor's side of in-place updates.
//
// An `update --inplace PATH` request is checked here (VersionFile.h), then
// forwarded to the program over the channel ("update MS PATH") with the wake
// signal; the program's messages (runtime/SupervisorChannel.cpp) say when the
// request was taken and how it ended. The client's connection stays open
// until then, or until the time limit, when the request is withdrawn if the
// program has not taken it yet. One request is outstanding at a time.
#ifndef MVEDSUA_TOOLS_RUN_UPDATE_DRIVER_H
#define MVEDSUA_TOOLS_RUN_UPDATE_DRIVER_H

#include "ControlServer.h"
#include "Request.h"
#include "ServiceState.h"

#include <string>

class UpdateDriver {
public:
  UpdateDriver(ServiceState &state, ControlServer &control)
      : state_(state), control_(control) {}
  void SetChannel(int fd) { channel_fd_ = fd; }

  // Handles `update` (multi-version) and `update --inplace`; true with an
  // immediate (error) reply, false when the reply will follow the outcome.
  bool Start(int conn, const Request &req, std::string *reply);
  // `rollback`: true with an immediate (error) reply, false when the reply
  // follows the follower's end.
  bool Rollback(int conn, std::string *reply);
  // `promote` and `finish` (multi-version): the same shape; the reply follows
  // the stage change (updated-leader; the update finished).
  bool Promote(int conn, std::string *reply);
  bool Finish(int conn, std::string *reply);
  // Common refusals of update and check: "" when the service can be updated.
  std::string CheckUpdatable() const;
  // A line from the program; false when it is not an update message.
  bool OnProgramLine(const std::string &line);
  void OnTimer(uint64_t now_ms);
  uint64_t NextDeadline() const;
  // The last multi-version update's time limit (the follower's own bound
  // when it takes over from a leader that died).
  uint64_t MveTimeoutMs() const { return mve_timeout_ms_; }
  // The program ended (wait status): a waiting client learns it.
  void OnProgramEnded(int status);

private:
  enum Phase { kNone, kForwarded, kTaken };
  struct Pending {
    Phase phase = kNone;
    bool timed_out = false; // the client was told; the program was not
    uint64_t serial = 0;    // its UpdateRecord
    int conn = -1;          // the client waiting for the outcome
    uint64_t deadline_ms = 0, timeout_ms = 0;
    bool mve = false;       // a multi-version request
  };
  // A rollback waiting for the follower's end (also a promote or finish
  // waiting for its stage).
  struct PendingRollback {
    int conn = -1;
    uint64_t deadline_ms = 0;
  };
  bool ForwardStep(const char *what, int conn, std::string *reply);
  void OnStepFailed(const std::string &why);
  void ReplyStep(PendingRollback *p, const std::string &reply);

  std::string InProgressError() const;
  bool Forward(const std::string &line, std::string *err);
  void OnMveLine(const std::string &fields);
  void ReplyMve(const std::string &reply);
  void Wake();
  // The program is woken every kWakeEveryMs: a follower exists or is
  // waited on, or a request waits to be taken.
  bool KeepsWaking() const;
  void OnTaken();
  void OnOutcome(const std::string &msg, bool by_program);
  void Resolve(UpdateRecord &r);
  void Fail(UpdateRecord &r, const std::string &reason);
  void ApplyDone(UpdateRecord &r, const std::string &fields);
  void ApplyStats(UpdateRecord &r);

  ServiceState &state_;
  ControlServer &control_;
  int channel_fd_ = -1;
  Pending p_;
  std::string stats_; // the fields of the last update-stats line
  uint64_t mve_serial_ = 0; // the record of the last multi-version update
  uint64_t mve_retries_left_ = 0;     // of its --retry N, as the runtime counts
  uint64_t mve_timeout_ms_ = 30000;   // its --timeout
  uint64_t retry_watch_until_ms_ = 0; // a retry is expected until then
  PendingRollback rb_;
  PendingRollback promote_, finish_;
  pid_t previous_leader_ = 0; // the process that led before the last switch
  // The unattended policy of the last multi-version update (Request).
  // A step is due a time after its stage began, or once the follower
  // replayed a number of calls since (the program reports the count with
  // the log's figures, every 200 ms at most).
  struct Step {
    int64_t after_ms = -1, after_calls = -1; // one of them; both -1: unused
    bool armed = false;
    uint64_t due_ms = 0, due_calls = 0;
  };
  struct Policy {
    Step promote, finish;
    bool wait_finished = false;
    int wait_conn = -1; // the client of --wait finished, after catch-up
  };
  Policy policy_;
  void ArmStep(Step *s, uint64_t now_ms);
  bool StepDue(const Step &s, uint64_t now_ms) const;
  void ArmPolicy(const std::string &stage);
  void RunPolicy(uint64_t now_ms);
  void EndPolicy(const std::string &reply);
  uint64_t next_wake_ms_ = 0; // an idle leader is woken to report stages
};

#endif
