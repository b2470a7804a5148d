// VersionFile.h: the supervisor's checks of a new version file, made before
// anything is sent to the program (which would dlopen it and run its
// constructors).
#ifndef MVEDSUA_TOOLS_RUN_VERSION_FILE_H
#define MVEDSUA_TOOLS_RUN_VERSION_FILE_H

#include <string>

// `path` must be absolute (the client resolved it against its own working
// directory). Checks that it resolves to a regular file owned by the
// supervisor's uid or root and writable by nobody else, holding an ELF shared
// object whose dynamic symbols reference the runtime's module registration
// (what MvedsuaPass.so adds). Returns the resolved path, or "" with a message
// naming the file in *err.
std::string CheckVersionFile(const std::string &path, std::string *err);

#endif
