# lit configuration of the mvedsua suite.
#
# Substitutions:
#   %clang            clang 19
#   %opt              opt 19
#   %plugin           the built MvedsuaPass.so
#   %mvedsua_cflags   -I<include>: the header, for clang -c / -S runs
#   %clang_version    clang with the plugin and the documented version flags:
#                     append sources and -o X.so (links -lmvedsua)
#   %mvedsua-run, %mvedsua-ctl, %mvedsua-xfgen   the built tools
#   %libdir, %bindir, %srcroot, %objroot, %examples (built examples dir)
import os
import shutil
import lit.formats

config.name = "mvedsua"
# External shell (bash): end-to-end tests capture ports and pids with $(...).
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".ll", ".c", ".test", ".sh"]
config.excludes = ["Inputs", "lib", "lit.cfg.py", "lit.site.cfg.py", "CMakeLists.txt"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.mvedsua_obj_root, "test")

# A hung test (a server that never exits) fails after this long instead of
# stalling the suite. lit needs psutil for it (Debian: python3-psutil).
try:
    import psutil  # noqa: F401
    lit_config.maxIndividualTestTime = 300
except ImportError:
    lit_config.note("psutil not found: no per-test time limit")

# Tools are found in LLVM 19's bin first so FileCheck/not/count/split-file
# are the pinned ones, then in the build tree.
config.environment["PATH"] = os.pathsep.join(
    [config.llvm_tools_dir, config.mvedsua_bin_dir, config.environment.get("PATH", os.environ.get("PATH", ""))])
for var in ["HOME", "TMPDIR", "USER", "LANG"]:
    if var in os.environ:
        config.environment[var] = os.environ[var]

clang = os.path.join(config.llvm_tools_dir, "clang")
plugin = os.path.join(config.mvedsua_lib_dir, "MvedsuaPass.so")
inc = config.mvedsua_include_dir
config.substitutions.append(("%clang_version",
    f"{clang} -g -O2 -fPIC -shared -fno-eliminate-unused-debug-types "
    f"-fpass-plugin={plugin} -I{inc} -L{config.mvedsua_lib_dir} -lmvedsua"))
config.substitutions.append(("%clang", clang))
config.substitutions.append(("%opt", os.path.join(config.llvm_tools_dir, "opt")))
config.substitutions.append(("%plugin", plugin))
config.substitutions.append(("%mvedsua_cflags", f"-I{inc}"))
for tool in ["mvedsua-run", "mvedsua-ctl", "mvedsua-xfgen", "mvedsua-rules"]:
    config.substitutions.append((f"%{tool}", os.path.join(config.mvedsua_bin_dir, tool)))
config.substitutions.append(("%libdir", config.mvedsua_lib_dir))
config.substitutions.append(("%bindir", config.mvedsua_bin_dir))
config.substitutions.append(("%srcroot", config.mvedsua_src_root))
config.substitutions.append(("%objroot", config.mvedsua_obj_root))
config.substitutions.append(("%examples", os.path.join(config.mvedsua_obj_root, "examples")))
config.substitutions.append(("%python", config.python_executable))
config.substitutions.append(("%free_port", f"{config.python_executable} {os.path.join(config.test_source_root, 'lib', 'free-port.py')}"))

# Tests that switch users need root.
if os.geteuid() == 0:
    config.available_features.add("root")

# A kernel whose scheduler takes a thread's own time slice (EEVDF's custom
# slice, Linux 6.12 and later) and shows it (/proc/PID/sched, with
# CONFIG_SCHED_DEBUG): the follower's threads' slices (runtime/mve/Sched.h).
def kernel_at_least(major, minor):
    try:
        have = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    except ValueError:
        return False
    return have >= (major, minor)
try:
    with open("/proc/self/sched") as f:
        if kernel_at_least(6, 12) and "se.slice" in f.read():
            config.available_features.add("sched-slice")
except OSError:
    pass

# Features for tests that need real clients.
for client in ["redis-cli", "redis-benchmark"]:
    if shutil.which(client):
        config.available_features.add(client)

# The redis port (ports/redis/build.sh, with -DMVEDSUA_PORTS=ON): its tests run
# only when its versions were fetched and built into this build tree.
if os.path.exists(os.path.join(config.mvedsua_obj_root, "ports", "redis", "versions.list")):
    config.available_features.add("redis-port")
