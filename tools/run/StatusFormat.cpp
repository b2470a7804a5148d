// StatusFormat.cpp: status replies as text and as JSON.
#include "StatusFormat.h"

#include <stdio.h>
#include <time.h>

namespace {

std::string JsonString(const std::string &s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

std::string JsonOrNull(const std::string &s) {
  return s.empty() ? "null" : JsonString(s);
}

std::string Millis(uint64_t us) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.3f", double(us) / 1000.0);
  return buf;
}

std::string Field(const char *name, const std::string &json) {
  return std::string(",\"") + name + "\":" + json;
}

std::string Count(const UpdateRecord &r, uint64_t value) {
  return r.has_stats ? std::to_string(value) : "null";
}

// A multi-line reason (a divergence report, a backtrace) under its field.
std::string Indented(const std::string &s) {
  std::string out;
  for (char c : s.substr(0, s.find_last_not_of('\n') + 1))
    out += c == '\n' ? std::string("\n    ") : std::string(1, c);
  return out;
}

const char *Mode(const UpdateRecord &r) {
  return r.multi_version ? "multi-version" : "in-place";
}

std::string LogJson(const ServiceState &st) {
  if (st.mve_stage.empty())
    return "null";
  return "{\"backlog_bytes\":" + std::to_string(st.backlog_bytes) +
         Field("backlog_records", std::to_string(st.backlog_records)) +
         Field("peak_backlog_bytes", std::to_string(st.peak_backlog_bytes)) +
         Field("records_replayed", std::to_string(st.records_replayed)) +
         Field("order_timeouts", std::to_string(st.order_timeouts)) +
         "}";
}

std::string RecordJson(const UpdateRecord &r) {
  return "{\"outcome\":" + JsonString(r.outcome) +
         Field("reason", JsonString(r.reason)) +
         Field("mode", r.multi_version ? "\"multi-version\"" : "\"in-place\"") +
         (r.multi_version ? Field("follower_pid", r.follower_pid
                                                      ? std::to_string(r.follower_pid)
                                                      : "null")
                          : "") +
         Field("requested_by", JsonString(r.requested_by)) +
         Field("from", JsonOrNull(r.from)) + Field("to", JsonOrNull(r.to)) +
         Field("from_id", JsonOrNull(r.from_id)) +
         Field("to_id", JsonOrNull(r.to_id)) +
         Field("requested_at", JsonString(IsoTime(r.requested_us))) +
         Field("completed_at",
               r.completed_us ? JsonString(IsoTime(r.completed_us)) : "null") +
         Field("pause_ms", r.has_stats ? Millis(r.pause_us) : "null") +
         Field("load_ms", r.has_stats ? Millis(r.load_us) : "null") +
         Field("transfer_ms", r.has_stats ? Millis(r.transfer_us) : "null") +
         Field("point", r.has_stats ? JsonString(r.point) : "null") +
         Field("entries", Count(r, r.entries)) +
         Field("bytes", Count(r, r.bytes)) +
         Field("transformed", Count(r, r.transformed)) +
         Field("remapped", Count(r, r.remapped)) +
         Field("heap_objects", Count(r, r.heap_objects)) +
         Field("locals", Count(r, r.locals)) + "}";
}

// "version" is the leading version's path (what scripts read), "version_id"
// its id; both null until the program announced itself.
std::string VersionJson(const ServiceState &st) {
  if (!st.announced)
    return "null";
  return JsonString(st.version_path);
}

std::string VersionIdJson(const ServiceState &st) {
  return st.announced ? JsonOrNull(st.version_id) : "null";
}

std::string Transferred(const UpdateRecord &r) {
  return std::to_string(r.entries) + " entries (" + std::to_string(r.bytes) +
         " bytes) transferred, " + std::to_string(r.transformed) +
         " transformed, " + std::to_string(r.remapped) +
         " pointers remapped, " + std::to_string(r.heap_objects) +
         " heap objects walked, " + std::to_string(r.locals) + " locals";
}

// The indented lines under "last_update:" in the text status.
std::string RecordDetails(const UpdateRecord &r) {
  std::string out = "  from: " + r.from +
                    (r.from_id.empty() ? "" : " id " + r.from_id) + "\n" +
                    "  to: " + r.to + (r.to_id.empty() ? "" : " id " + r.to_id) +
                    "\n";
  if (!r.reason.empty())
    out += "  reason: " + Indented(r.reason) + "\n";
  if (r.has_stats)
    out += "  pause: " + Millis(r.pause_us) + " ms (loading " +
           Millis(r.load_us) + " ms, state transfer " + Millis(r.transfer_us) +
           " ms), at update point '" + r.point + "'\n  " + Transferred(r) +
           "\n";
  return out;
}

std::string HistoryLine(const UpdateRecord &r) {
  std::string line = "  #" + std::to_string(r.serial) + " " +
                     IsoTime(r.requested_us) + " " + r.outcome + " " + Mode(r) + " " +
                     ShortName(r.from) + " -> " + ShortName(r.to);
  if (r.has_stats)
    line += ", pause " + Millis(r.pause_us) + " ms, " +
            std::to_string(r.entries) + " entries";
  if (!r.reason.empty())
    line += ": " + r.reason.substr(0, r.reason.find('\n'));
  return line + "\n";
}

} // namespace

std::string IsoTime(uint64_t wall_us) {
  time_t secs = time_t(wall_us / 1000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
           tm.tm_sec, unsigned(wall_us % 1000000 / 1000));
  return buf;
}

std::string ShortName(const std::string &path) {
  std::string name = path.substr(path.rfind('/') + 1);
  if (name.size() > 3 && name.compare(name.size() - 3, 3, ".so") == 0)
    name.resize(name.size() - 3);
  return name;
}

std::string OutcomeLine(const UpdateRecord &r) {
  if (r.outcome != "finished" || r.multi_version)
    return r.outcome + ": " + r.reason;
  return "finished: " + ShortName(r.from) + " -> " + ShortName(r.to) +
         " in-place, pause " + Millis(r.pause_us) + " ms, " + Transferred(r);
}

std::string StatusJson(const ServiceState &st) {
  std::string history;
  for (const UpdateRecord &r : st.history)
    history += (history.empty() ? "" : ",") + RecordJson(r);
  return std::string("{\"stage\":\"") + st.Stage() + "\"" +
         Field("version", VersionJson(st)) +
         Field("version_id", VersionIdJson(st)) +
         Field("leader_pid", std::to_string(st.leader)) +
         Field("follower_pid",
               st.follower ? std::to_string(st.follower) : "null") +
         Field("log", LogJson(st)) +
         Field("last_update", st.Last() ? RecordJson(*st.Last()) : "null") +
         Field("history", "[" + history + "]") +
         Field("supervisor_pid", std::to_string(st.supervisor)) + "}\n";
}

std::string StatusText(const ServiceState &st) {
  std::string version = "(starting)";
  if (st.announced)
    version = st.version_id.empty()
                  ? st.version_path + " (no registry: cannot be updated)"
                  : st.version_path + " id " + st.version_id;
  std::string last = "none\n";
  if (const UpdateRecord *r = st.Last())
    last = r->outcome + " (" + Mode(*r) + ", requested by " + r->requested_by + " at " +
           IsoTime(r->requested_us) + ")\n" + RecordDetails(*r);
  std::string history = "none\n";
  if (!st.history.empty()) {
    history = std::to_string(st.history.size()) + " (oldest first)\n";
    for (const UpdateRecord &r : st.history)
      history += HistoryLine(r);
  }
  return std::string("stage: ") + st.Stage() + "\nversion: " + version +
         "\nleader_pid: " + std::to_string(st.leader) +
         "\nfollower_pid: " +
         (st.follower ? std::to_string(st.follower) : std::string("none")) +
         (st.mve_stage.empty()
              ? std::string()
              : "\nlog: backlog " + std::to_string(st.backlog_bytes) +
                    " bytes (" + std::to_string(st.backlog_records) +
                    " records), peak " + std::to_string(st.peak_backlog_bytes) +
                    " bytes" +
                    (st.order_timeouts
                         ? ", " + std::to_string(st.order_timeouts) +
                               " waits for the order across threads timed "
                               "out"
                         : std::string())) +
         "\nlast_update: " + last +
         "supervisor_pid: " + std::to_string(st.supervisor) +
         "\nhistory: " + history;
}
