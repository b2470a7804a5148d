// StatusFormat.h: the replies to "status" and "status --json", and the
// one-line outcome of an update (docs/runtime.md describes the fields).
#ifndef MVEDSUA_TOOLS_RUN_STATUS_FORMAT_H
#define MVEDSUA_TOOLS_RUN_STATUS_FORMAT_H

#include "ServiceState.h"

#include <string>

std::string StatusText(const ServiceState &st);
std::string StatusJson(const ServiceState &st);

// "finished: kvd-1 -> kvd-1.1 in-place, pause 1.234 ms, ..." or
// "failed: REASON"; no newline.
std::string OutcomeLine(const UpdateRecord &r);

// "2026-11-30T05:13:01.123Z"
std::string IsoTime(uint64_t wall_us);

// The file name without directories and without ".so", for short messages.
std::string ShortName(const std::string &path);

#endif
