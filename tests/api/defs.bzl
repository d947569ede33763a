"""api_suite: one C API test source, run over every backend, in process and against memd."""

# Every registered backend; the default (buddy) gets the plain target name.
BACKENDS = ["buddy", "bitmap", "region", "slab"]

def api_suite(name, deps = [], remote = True, c = False):
    """Compiles `name`.cc (or .c) once and links one test per backend and mode.

    Targets: `name` (in process, buddy), `name_<backend>`, and with `remote`
    `remote_name` and `remote_name_<backend>`, which run the same tests
    against a real memd started by //tests/server:remote_env_main.
    """
    lib = name + "_lib"
    native.cc_library(
        name = lib,
        testonly = True,
        srcs = [name + (".c" if c else ".cc")],
        deps = deps,
        alwayslink = True,
    )
    for backend in BACKENDS:
        suffix = "" if backend == "buddy" else "_" + backend
        native.cc_test(
            name = name + suffix,
            env = {"L4RE_MA_BACKEND": backend},
            deps = [":" + lib] + ([] if c else ["@system_libs//:gtest_main"]),
        )
        if remote:
            native.cc_test(
                name = "remote_" + name + suffix,
                data = ["//server:memd"],
                env = {"L4RE_MA_BACKEND": backend},
                deps = [":" + lib, "//tests/server:remote_env_main"],
            )
