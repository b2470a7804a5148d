// Duration.h: time limits on the command line and in control requests read
// like "500ms", "2s", "1m" (shared by mvedsua-run and mvedsua-ctl).
#ifndef MVEDSUA_TOOLS_RUN_DURATION_H
#define MVEDSUA_TOOLS_RUN_DURATION_H

#include <stdint.h>
#include <string>

// The default time an update may take before it is reported as failed.
constexpr uint64_t kDefaultUpdateTimeoutMs = 30000;
// Longer limits are refused: a typo like "30m" for "30s" is likely.
constexpr uint64_t kMaxDurationMs = 3600 * 1000;

// Parses a positive whole number followed by ms, s or m. Returns false with
// a message naming `text` in *err otherwise.
bool ParseDuration(const std::string &text, uint64_t *ms, std::string *err);

// The point of an unattended step (update --promote-after/--finish-after):
// a duration, or "Ncalls", that many calls the follower matched since the
// stage began (1 to 10^9). Exactly one of *ms and *calls is set, the other
// is -1; false with a message naming `text` in *err.
bool ParseStepAfter(const std::string &text, int64_t *ms, int64_t *calls,
                    std::string *err);

// The shortest exact spelling: 500ms, 2s, 1m, 1500ms.
std::string FormatDuration(uint64_t ms);

#endif
