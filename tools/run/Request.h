// Request.h: the requests of the control protocol, one line each.
//
//   status [--json]
//   update [--timeout DUR] [--retry N] PATH   a multi-version update (the
//                                             default): returns once the
//                                             follower caught up, or failed
//   update --inplace [--timeout DUR] PATH     apply an in-place update
//   rollback                                  end the follower of a
//                                             multi-version update
//   promote, finish                           not implemented yet (refused)
//   update --check [--inplace] [--timeout DUR] PATH
//                                             would it be accepted?
// Words are separated by blanks; options may stand before or after PATH.
// "--" ends the options: the rest of the line after "-- " is PATH verbatim
// (spaces included), which is how mvedsua-ctl sends it.
#ifndef MVEDSUA_TOOLS_RUN_REQUEST_H
#define MVEDSUA_TOOLS_RUN_REQUEST_H

#include <stdint.h>
#include <string>

struct Request {
  enum Kind { kStatus, kUpdate, kCheck, kRollback, kPromote, kFinish } kind =
      kStatus;
  bool inplace = false;    // update: --inplace (else multi-version)
  uint64_t retries = 0;    // update (multi-version): --retry N
  std::string rules;       // update (multi-version): --rules OBJECT.so
  std::string learn;       // update (multi-version): --learn FILE
  // The unattended policy (multi-version): promote this long (or after this
  // many calls the follower matched) after it caught up, finish this long
  // (or this many calls) after promotion; -1: not by that measure (both -1:
  // the operator does). --wait finished: reply when the update ended, not at
  // catch-up.
  int64_t promote_after_ms = -1, finish_after_ms = -1;
  int64_t promote_after_calls = -1, finish_after_calls = -1;
  bool wait_finished = false;
  bool json = false;       // status --json
  uint64_t timeout_ms = 0; // update/check: the time limit
  std::string path;        // update/check: the new version file, as sent
};

// Parses one request line; false with the error reply's text (no "error: "
// prefix, no newline) in *err.
bool ParseRequest(const std::string &line, Request *req, std::string *err);

// For error replies: what requests exist.
extern const char kKnownRequests[];

#endif
