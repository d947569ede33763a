"""l4re_fuzz_test: a fuzz target as a short CI test and as a libFuzzer binary."""

def l4re_fuzz_test(name, deps, runs = 2000, env = {}, size = "medium"):
    native.cc_test(
        name = name,
        srcs = [name + ".cc"],
        args = ["--runs=%d" % runs, "tests/fuzz/corpus/" + name],
        data = native.glob(["corpus/%s/*" % name]),
        env = env,
        size = size,
        deps = deps + [":fuzz_driver", ":fuzz_input"],
    )
    native.cc_binary(
        name = name + "_libfuzzer",
        testonly = True,
        srcs = [name + ".cc"],
        copts = ["-fsanitize=fuzzer-no-link"],
        linkopts = ["-fsanitize=fuzzer"],
        tags = ["manual"],
        deps = deps + [":fuzz_input"],
    )
