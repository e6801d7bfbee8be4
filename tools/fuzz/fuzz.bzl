"""dmue_fuzz_target: one libFuzzer target, built two ways from one source.

For a target `name` (source defining LLVMFuzzerTestOneInput):
  <name>_replay_test  cc_test: replay_main.cc runs the target over its seed
                      corpus (corpus/<name>/) and cheap variants of each seed.
                      Built by the normal toolchain; `bazel test //...` runs it.
  <name>_fuzzer       cc_binary: with --config=fuzz (clang, libFuzzer, ASan and
                      UBSan) the libFuzzer engine; otherwise the replay driver,
                      which makes it a reproducer for crash files in any build.
The target's code is compiled once, into <name>_target, shared by both.
"""

def dmue_fuzz_target(name, srcs, deps = [], size = "small"):
    target = name + "_target"
    corpus = "corpus/" + name
    native.cc_library(
        name = target,
        srcs = srcs,
        deps = deps,
        # Nothing references the entry points until the final link.
        alwayslink = True,
        visibility = ["//visibility:private"],
    )
    native.cc_test(
        name = name + "_replay_test",
        size = size,
        args = [native.package_name() + "/" + corpus],
        data = native.glob([corpus + "/**"]),
        linkstatic = True,
        deps = [":" + target, ":replay_main"],
    )
    native.cc_binary(
        name = name + "_fuzzer",
        linkopts = select({
            ":libfuzzer": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        linkstatic = True,
        deps = [":" + target] + select({
            ":libfuzzer": [],
            "//conditions:default": [":replay_main"],
        }),
    )
