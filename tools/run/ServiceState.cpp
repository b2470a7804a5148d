// ServiceState.cpp: the program's announcements to the supervisor, and the
// history of updates.
#include "ServiceState.h"

#include <time.h>

// "hello PID ID PATH": ID is 16 hex digits or "-" (no registry); PATH is the
// rest of the line, so it may contain spaces. PID is the sender's, which the
// supervisor already knows from fork.
bool ParseHello(const std::string &line, ServiceState *st) {
  if (line.compare(0, 6, "hello ") != 0)
    return false;
  size_t id_at = line.find(' ', 6);
  size_t path_at = id_at == std::string::npos ? id_at : line.find(' ', id_at + 1);
  if (path_at == std::string::npos || path_at + 1 >= line.size())
    return false;
  std::string id = line.substr(id_at + 1, path_at - id_at - 1);
  if (id != "-" && (id.size() != 16 ||
                    id.find_first_not_of("0123456789abcdef") != std::string::npos))
    return false;
  st->version_id = id == "-" ? "" : id;
  st->version_path = line.substr(path_at + 1);
  st->announced = true;
  return true;
}

UpdateRecord &ServiceState::AddRecord() {
  if (history.size() == kMaxHistory)
    history.pop_front();
  history.emplace_back();
  history.back().serial = next_serial++;
  return history.back();
}

UpdateRecord *ServiceState::Find(uint64_t serial) {
  for (UpdateRecord &r : history)
    if (r.serial == serial)
      return &r;
  return nullptr;
}

uint64_t WallMicros() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000 + uint64_t(ts.tv_nsec) / 1000;
}
