// ControlServer.h: mvedsua-run's control socket (--control PATH).
#ifndef MVEDSUA_TOOLS_RUN_CONTROL_SERVER_H
#define MVEDSUA_TOOLS_RUN_CONTROL_SERVER_H

#include "ServiceState.h"

#include <string>

// Creates the listening socket at `path`, mode 0600, replacing a stale socket
// nobody serves. Returns the fd, or -1 with a message naming `path` in *err.
int OpenControlSocket(const char *path, std::string *err);

// Accepts one connection on `listen_fd` and answers its one request.
void ServeControlClient(int listen_fd, const ServiceState &st);

// The reply to one request line (without its newline); exposed for clarity
// of the protocol: "status" or "status --json".
std::string AnswerRequest(const std::string &request, const ServiceState &st);

#endif
