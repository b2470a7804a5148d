// Duration.cpp: "500ms", "2s", "1m".
#include "Duration.h"

#include <string.h>

bool ParseDuration(const std::string &text, uint64_t *ms, std::string *err) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
    ++digits;
  std::string unit = text.substr(digits);
  uint64_t scale = unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60000 : 0;
  // At most 7 digits: no overflow before the range check below.
  if (digits == 0 || digits > 7 || scale == 0) {
    *err = "bad duration '" + text +
           "' (expected a whole number and a unit: 500ms, 2s or 1m)";
    return false;
  }
  uint64_t value = std::stoull(text.substr(0, digits)) * scale;
  if (value == 0 || value > kMaxDurationMs) {
    *err = "bad duration '" + text + "' (it must be more than 0 and at most 60m)";
    return false;
  }
  *ms = value;
  return true;
}

bool ParseStepAfter(const std::string &text, int64_t *ms, int64_t *calls,
                    std::string *err) {
  *ms = *calls = -1;
  const std::string unit = "calls";
  size_t digits = text.find_first_not_of("0123456789");
  if (digits != std::string::npos && text.compare(digits, std::string::npos, unit) == 0) {
    // At most 9 digits: a count a follower can reach, no overflow.
    uint64_t n = digits && digits <= 9 ? std::stoull(text.substr(0, digits)) : 0;
    if (n == 0) {
      *err = "bad count '" + text + "' (expected 1calls to 999999999calls)";
      return false;
    }
    *calls = int64_t(n);
    return true;
  }
  uint64_t value = 0;
  if (!ParseDuration(text, &value, err)) {
    *err += "; or a number of calls the follower matched: 5000calls";
    return false;
  }
  *ms = int64_t(value);
  return true;
}

std::string FormatDuration(uint64_t ms) {
  if (ms % 60000 == 0)
    return std::to_string(ms / 60000) + "m";
  if (ms % 1000 == 0)
    return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}
