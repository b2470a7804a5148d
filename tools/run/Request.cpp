// Request.cpp: parsing control request lines.
#include "Request.h"
#include "Duration.h"

#include <ctype.h>
#include <stdlib.h>
#include <vector>

const char kKnownRequests[] =
    "known: status [--json], update [--timeout DUR] [--retry N] "
    "[--promote-after DUR|Ncalls [--finish-after DUR|Ncalls] [--wait finished]] PATH, "
    "update --inplace [--timeout DUR] PATH, "
    "update --check [--timeout DUR] PATH, rollback, promote, finish";

namespace {

// Printable form of a request for an error message.
std::string Sanitize(const std::string &s) {
  std::string out;
  for (unsigned char c : s.substr(0, 64))
    out += (c >= 0x20 && c < 0x7f) ? char(c) : '?';
  return s.size() > 64 ? out + "..." : out;
}

// Splits at blanks; after a "--" word the rest of the line is one word.
std::vector<std::string> Words(const std::string &line) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < line.size()) {
    if (line[i] == ' ' || line[i] == '\t') {
      ++i;
      continue;
    }
    size_t end = line.find_first_of(" \t", i);
    words.push_back(line.substr(i, end == std::string::npos ? end : end - i));
    if (words.back() == "--") {
      if (end != std::string::npos && end + 1 < line.size())
        words.push_back(line.substr(end + 1));
      break;
    }
    i = end == std::string::npos ? line.size() : end;
  }
  return words;
}

bool ParseStatus(const std::vector<std::string> &w, Request *req,
                 std::string *err) {
  req->kind = Request::kStatus;
  for (size_t i = 1; i < w.size(); ++i) {
    if (w[i] != "--json") {
      *err = "status: unknown argument '" + Sanitize(w[i]) + "' (" +
             kKnownRequests + ")";
      return false;
    }
    req->json = true;
  }
  return true;
}

struct UpdateWords {
  bool inplace = false, check = false, timeout_given = false;
  bool retry_given = false;
  std::string timeout, retry, rules, learn;
  std::string promote_after, finish_after, wait;
  std::vector<std::string> paths;
};

// Sorts update's words into options and the file; false on an unknown
// option or a missing value.
bool ScanUpdate(const std::vector<std::string> &w, UpdateWords *u,
                std::string *err) {
  bool options_ended = false;
  for (size_t i = 1; i < w.size(); ++i) {
    const std::string &a = w[i];
    if (options_ended || a.empty() || a[0] != '-') {
      u->paths.push_back(a);
    } else if (a == "--") {
      options_ended = true;
    } else if (a == "--inplace") {
      u->inplace = true;
    } else if (a == "--check") {
      u->check = true;
    } else if (a == "--timeout" && i + 1 < w.size() && w[i + 1] != "--") {
      u->timeout = w[++i], u->timeout_given = true;
    } else if (a == "--retry" && i + 1 < w.size() && w[i + 1] != "--") {
      u->retry = w[++i], u->retry_given = true;
    } else if (a == "--learn" && i + 1 < w.size() && w[i + 1] != "--") {
      u->learn = w[++i];
    } else if (a == "--rules" && i + 1 < w.size() && w[i + 1] != "--") {
      u->rules = w[++i];
    } else if (a == "--promote-after" && i + 1 < w.size() && w[i + 1] != "--") {
      u->promote_after = w[++i];
    } else if (a == "--finish-after" && i + 1 < w.size() && w[i + 1] != "--") {
      u->finish_after = w[++i];
    } else if (a == "--wait" && i + 1 < w.size() && w[i + 1] != "--") {
      u->wait = w[++i];
    } else if (a.compare(0, 8, "--retry=") == 0) {
      u->retry = a.substr(8), u->retry_given = true;
    } else if (a.compare(0, 10, "--timeout=") == 0) {
      u->timeout = a.substr(10), u->timeout_given = true;
    } else {
      *err = a == "--timeout" ? "update: --timeout needs a duration (500ms, 2s, 1m)"
             : a == "--retry" ? "update: --retry needs a number of retries"
                              : "update: unknown option '" + Sanitize(a) + "'";
      return false;
    }
  }
  return true;
}

// --promote-after DUR|Ncalls [--finish-after DUR|Ncalls]
// [--wait finished|caught-up].
bool ParsePolicy(const UpdateWords &u, Request *req, std::string *err) {
  bool any = !u.promote_after.empty() || !u.finish_after.empty() ||
             !u.wait.empty();
  if (any && (u.inplace || u.check)) {
    *err = "update: --promote-after, --finish-after and --wait are for "
           "multi-version updates";
    return false;
  }
  if (!u.promote_after.empty() &&
      !ParseStepAfter(u.promote_after, &req->promote_after_ms,
                      &req->promote_after_calls, err))
    return *err = "update: --promote-after: " + *err, false;
  if (!u.finish_after.empty()) {
    if (u.promote_after.empty())
      return *err = "update: --finish-after needs --promote-after (finish "
                    "comes after promotion)",
             false;
    if (!ParseStepAfter(u.finish_after, &req->finish_after_ms,
                        &req->finish_after_calls, err))
      return *err = "update: --finish-after: " + *err, false;
  }
  if (!u.wait.empty() && u.wait != "finished" && u.wait != "caught-up")
    return *err = "update: --wait takes 'caught-up' (the default) or "
                  "'finished', not '" + Sanitize(u.wait) + "'",
           false;
  req->wait_finished = u.wait == "finished";
  if (req->wait_finished && u.finish_after.empty())
    return *err = "update: --wait finished needs --promote-after and "
                  "--finish-after (nothing would finish the update)",
           false;
  return true;
}

bool ParseUpdate(const std::vector<std::string> &w, Request *req,
                 std::string *err) {
  UpdateWords u;
  if (!ScanUpdate(w, &u, err))
    return false;
  if (u.paths.empty()) {
    *err = "update: no version file given (update --inplace [--timeout DUR] PATH)";
    return false;
  }
  if (u.paths.size() > 1) {
    *err = "update: one version file expected, got '" + Sanitize(u.paths[0]) +
           "' and '" + Sanitize(u.paths[1]) + "'";
    return false;
  }
  if (u.retry_given) {
    char *end = nullptr;
    unsigned long long n = strtoull(u.retry.c_str(), &end, 10);
    if (u.retry.empty() || !isdigit((unsigned char)u.retry[0]) || *end ||
        n > 100) {
      *err = "update: --retry needs a whole number from 0 to 100, not '" +
             Sanitize(u.retry) + "'";
      return false;
    }
    if (u.inplace || u.check) {
      *err = "update: --retry is for multi-version updates (an in-place update "
             "cannot be rolled back, so never retried)";
      return false;
    }
    req->retries = n;
  }
  if (!u.rules.empty() && (u.inplace || u.rules[0] != '/')) {
    *err = u.inplace ? "update: --rules is for multi-version updates"
                     : "update: --rules needs the absolute path of a compiled "
                       "rules object (mvedsua-ctl compiles it)";
    return false;
  }
  if (!u.learn.empty() && (u.inplace || u.learn[0] != '/')) {
    *err = u.inplace ? "update: --learn is for multi-version updates"
                     : "update: --learn needs an absolute path";
    return false;
  }
  req->rules = u.rules;
  req->learn = u.learn;
  if (!ParsePolicy(u, req, err))
    return false;
  req->inplace = u.inplace;
  req->timeout_ms = kDefaultUpdateTimeoutMs;
  if (u.timeout_given && !ParseDuration(u.timeout, &req->timeout_ms, err)) {
    *err = "update: " + *err;
    return false;
  }
  req->kind = u.check ? Request::kCheck : Request::kUpdate;
  req->path = u.paths[0];
  return true;
}

} // namespace

bool ParseRequest(const std::string &line, Request *req, std::string *err) {
  std::vector<std::string> w = Words(line);
  if (w.empty()) {
    *err = std::string("empty request (") + kKnownRequests + ")";
    return false;
  }
  if (w[0] == "status")
    return ParseStatus(w, req, err);
  if (w[0] == "update")
    return ParseUpdate(w, req, err);
  if (w[0] == "rollback" || w[0] == "promote" || w[0] == "finish") {
    if (w.size() > 1) {
      *err = w[0] + ": unexpected argument '" + Sanitize(w[1]) + "'";
      return false;
    }
    req->kind = w[0] == "rollback"  ? Request::kRollback
                : w[0] == "promote" ? Request::kPromote
                                    : Request::kFinish;
    return true;
  }
  *err = "unknown request '" + Sanitize(line) + "' (" + kKnownRequests + ")";
  return false;
}
