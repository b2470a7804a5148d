# mvedsua_add_version(<target>
#     SOURCES <file.c>...
#     [OUTPUT_NAME <name>]          # <name>.so, default <target>
#     [INCLUDE_DIRECTORIES <dir>...] [DEFINITIONS <NAME[=value]>...]
#     [COMPILE_OPTIONS <flag>...]   # added after the default -g -O2
#     [LINK_OPTIONS <flag>...]      # e.g. -lm
#     [BITCODE])                    # also write <name>.bc for mvedsua-xfgen
#
# Builds one updatable version of a C program: every source compiled by clang 19
# with the MvedsuaPass plugin, linked into <name>.so against libmvedsua. The
# project's own C compiler does not matter. With BITCODE the same sources are
# also compiled with the same flags plus -c -emit-llvm and llvm-linked into
# <name>.bc, the input mvedsua-xfgen reads. Targets may list the generated
# transformer (from mvedsua-xfgen) as one more source.
#
# Expects MVEDSUA_CLANG, MVEDSUA_LLVM_LINK, MVEDSUA_PLUGIN, MVEDSUA_INCLUDE_DIR,
# MVEDSUA_LIBRARY_DIR (set by MvedsuaConfig.cmake or by mvedsua's own build)
# and optionally MVEDSUA_DEPENDS (targets the commands wait for).
function(mvedsua_add_version target)
  cmake_parse_arguments(PARSE_ARGV 1 V "BITCODE" "OUTPUT_NAME"
    "SOURCES;INCLUDE_DIRECTORIES;DEFINITIONS;COMPILE_OPTIONS;LINK_OPTIONS")
  if(NOT V_SOURCES)
    message(FATAL_ERROR "mvedsua_add_version(${target}): no SOURCES given")
  endif()
  if(NOT V_OUTPUT_NAME)
    set(V_OUTPUT_NAME ${target})
  endif()
  set(flags -g -O2 -fPIC -fno-eliminate-unused-debug-types
      "-I${MVEDSUA_INCLUDE_DIR}")
  foreach(dir IN LISTS V_INCLUDE_DIRECTORIES)
    get_filename_component(dir "${dir}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND flags "-I${dir}")
  endforeach()
  foreach(def IN LISTS V_DEFINITIONS)
    list(APPEND flags "-D${def}")
  endforeach()
  list(APPEND flags ${V_COMPILE_OPTIONS})

  set(workdir "${CMAKE_CURRENT_BINARY_DIR}/${V_OUTPUT_NAME}.dir")
  file(MAKE_DIRECTORY "${workdir}")
  set(objects "")
  set(bitcodes "")
  foreach(src IN LISTS V_SOURCES)
    get_filename_component(abs "${src}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    get_filename_component(base "${src}" NAME)
    # Sources are named by their path relative to the source dir so that the
    # registry keys of statics ("file.c/name") match across versions.
    file(RELATIVE_PATH rel "${CMAKE_CURRENT_SOURCE_DIR}" "${abs}")
    set(obj "${workdir}/${base}.o")
    add_custom_command(OUTPUT "${obj}"
      COMMAND ${MVEDSUA_CLANG} ${flags} "-fpass-plugin=${MVEDSUA_PLUGIN}"
              -MD -MF "${obj}.d" -c "${rel}" -o "${obj}"
      WORKING_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}"
      DEPENDS "${abs}" ${MVEDSUA_DEPENDS}
      DEPFILE "${obj}.d"
      COMMENT "mvedsua: compiling ${rel} for ${V_OUTPUT_NAME}.so"
      VERBATIM)
    list(APPEND objects "${obj}")
    if(V_BITCODE)
      set(bc "${workdir}/${base}.bc")
      add_custom_command(OUTPUT "${bc}"
        COMMAND ${MVEDSUA_CLANG} ${flags} -c -emit-llvm "${rel}" -o "${bc}"
        WORKING_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}"
        DEPENDS "${abs}"
        COMMENT "mvedsua: bitcode of ${rel} for ${V_OUTPUT_NAME}.bc"
        VERBATIM)
      list(APPEND bitcodes "${bc}")
    endif()
  endforeach()

  set(so "${CMAKE_CURRENT_BINARY_DIR}/${V_OUTPUT_NAME}.so")
  add_custom_command(OUTPUT "${so}"
    COMMAND ${MVEDSUA_CLANG} -shared ${objects} -o "${so}"
            "-L${MVEDSUA_LIBRARY_DIR}" -lmvedsua ${V_LINK_OPTIONS}
    DEPENDS ${objects} ${MVEDSUA_DEPENDS}
    COMMENT "mvedsua: linking version ${V_OUTPUT_NAME}.so"
    VERBATIM)
  set(outputs "${so}")
  if(V_BITCODE)
    set(bcout "${CMAKE_CURRENT_BINARY_DIR}/${V_OUTPUT_NAME}.bc")
    add_custom_command(OUTPUT "${bcout}"
      COMMAND ${MVEDSUA_LLVM_LINK} ${bitcodes} -o "${bcout}"
      DEPENDS ${bitcodes}
      COMMENT "mvedsua: linking bitcode ${V_OUTPUT_NAME}.bc"
      VERBATIM)
    list(APPEND outputs "${bcout}")
  endif()
  add_custom_target(${target} ALL DEPENDS ${outputs})
  set_target_properties(${target} PROPERTIES
    MVEDSUA_SHARED_OBJECT "${so}" MVEDSUA_BITCODE "${bcout}")
endfunction()
