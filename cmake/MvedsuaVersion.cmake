# mvedsua_add_version(<target>
#     SOURCES <file.c>...
#     [OUTPUT_NAME <name>]          # <name>.so, default <target>
#     [INCLUDE_DIRECTORIES <dir>...] [DEFINITIONS <NAME[=value]>...]
#     [COMPILE_OPTIONS <flag>...]   # added after the default -g -O2
#     [LINK_OPTIONS <flag>...]      # e.g. -lm
#     [BITCODE]                     # also write <name>.bc for mvedsua-xfgen
#     [FROM <version-target> [SPEC <file.xf> [KITSUNE_SPEC]]])
#
# FROM names the version this one updates (another mvedsua_add_version target
# built with BITCODE): mvedsua-xfgen then generates the state transformer
# <name>.xform.c from the two versions' bitcode (and the spec, if any) and it
# is compiled into <name>.so like the other sources. This version's own bitcode
# never includes the transformer. KITSUNE_SPEC: the spec is in Kitsune's
# dialect (mvedsua-xfgen --kitsune, docs/kitsune.md).
#
# Builds one updatable version of a C program: every source compiled by clang 19
# with the MvedsuaPass plugin, linked into <name>.so against libmvedsua. The
# project's own C compiler does not matter. With BITCODE the same sources are
# also compiled with the same flags plus -c -emit-llvm and llvm-linked into
# <name>.bc, the input mvedsua-xfgen reads. Targets may list the generated
# transformer (from mvedsua-xfgen) as one more source.
#
# Expects MVEDSUA_CLANG, MVEDSUA_LLVM_LINK, MVEDSUA_PLUGIN, MVEDSUA_INCLUDE_DIR,
# MVEDSUA_LIBRARY_DIR, MVEDSUA_XFGEN (set by MvedsuaConfig.cmake or by
# mvedsua's own build) and optionally MVEDSUA_DEPENDS (targets the commands
# wait for).
function(mvedsua_add_version target)
  cmake_parse_arguments(PARSE_ARGV 1 V "BITCODE;KITSUNE_SPEC" "OUTPUT_NAME;FROM;SPEC"
    "SOURCES;INCLUDE_DIRECTORIES;DEFINITIONS;COMPILE_OPTIONS;LINK_OPTIONS")
  if(V_SPEC AND NOT V_FROM)
    message(FATAL_ERROR "mvedsua_add_version(${target}): SPEC needs FROM")
  endif()
  if(V_FROM)
    set(V_BITCODE ON) # the transformer is generated from this version's bitcode
  endif()
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

  if(V_FROM)
    _mvedsua_add_transformer("${workdir}" xform_obj)
    list(APPEND objects "${xform_obj}")
  endif()

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
  if(V_FROM)
    add_dependencies(${target} ${V_FROM})
  endif()
  set_target_properties(${target} PROPERTIES
    MVEDSUA_SHARED_OBJECT "${so}" MVEDSUA_BITCODE "${bcout}")
endfunction()

# The transformer from V_FROM's bitcode to this version's (both llvm-linked
# .bc files), compiled with this version's flags; sets ${out_var} to the object.
# Uses the caller's variables (V_*, flags, bcout is not yet set).
function(_mvedsua_add_transformer workdir out_var)
  get_target_property(from_bc ${V_FROM} MVEDSUA_BITCODE)
  if(NOT from_bc)
    message(FATAL_ERROR "mvedsua_add_version(${target}): FROM ${V_FROM} is "
                        "not a version built with BITCODE")
  endif()
  set(this_bc "${CMAKE_CURRENT_BINARY_DIR}/${V_OUTPUT_NAME}.bc")
  set(xform_c "${CMAKE_CURRENT_BINARY_DIR}/${V_OUTPUT_NAME}.xform.c")
  set(spec_args "")
  set(spec_dep "")
  if(V_SPEC)
    get_filename_component(spec "${V_SPEC}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    set(spec_args -x "${spec}")
    if(V_KITSUNE_SPEC)
      list(APPEND spec_args --kitsune)
    endif()
    set(spec_dep "${spec}")
  endif()
  set(xfgen_dep "")
  if(TARGET mvedsua-xfgen)
    set(xfgen_dep mvedsua-xfgen)
  endif()
  add_custom_command(OUTPUT "${xform_c}"
    COMMAND ${MVEDSUA_XFGEN} "${from_bc}" "${this_bc}" ${spec_args} -o "${xform_c}"
    DEPENDS "${from_bc}" "${this_bc}" ${spec_dep} ${xfgen_dep}
    COMMENT "mvedsua: state transformer ${V_FROM} -> ${V_OUTPUT_NAME}"
    VERBATIM)
  set(obj "${workdir}/${V_OUTPUT_NAME}.xform.c.o")
  add_custom_command(OUTPUT "${obj}"
    COMMAND ${MVEDSUA_CLANG} ${flags} "-fpass-plugin=${MVEDSUA_PLUGIN}"
            -c "${xform_c}" -o "${obj}"
    DEPENDS "${xform_c}" ${MVEDSUA_DEPENDS}
    COMMENT "mvedsua: compiling the transformer for ${V_OUTPUT_NAME}.so"
    VERBATIM)
  set(${out_var} "${obj}" PARENT_SCOPE)
endfunction()
