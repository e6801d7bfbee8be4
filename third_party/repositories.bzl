"""Repository rules that wire Debian's system libraries into Bazel, offline.

* `libtorch_repository`: LibTorch from LIBTORCH_HOME (default /usr, Debian's
  libtorch-dev). Point LIBTORCH_HOME at an unpacked LibTorch (for example a
  CUDA build) to use it instead.
* `system_protobuf_repository`: a `com_google_protobuf` backed by /usr/bin/protoc
  and libprotobuf, so native proto_library/cc_proto_library work offline.
* `shared_data_repository`: the read-only ../shared folder (golden tensors,
  models, data). When it is absent the repository is empty and carries a
  SHARED_ABSENT marker so tests can say so instead of failing obscurely.
"""

def _libtorch_impl(ctx):
    home = ctx.os.environ.get("LIBTORCH_HOME", "/usr")
    home_path = ctx.path(home)
    if not home_path.exists:
        fail("LIBTORCH_HOME=%s does not exist" % home)
    ctx.symlink(home_path.get_child("include"), "include")

    # Debian puts the libraries in the multiarch folder; official LibTorch zips in lib/.
    lib_dir = home_path.get_child("lib").get_child("x86_64-linux-gnu")
    if not lib_dir.exists:
        lib_dir = home_path.get_child("lib")
    ctx.symlink(lib_dir, "lib")
    api_include = home_path.get_child("include").get_child("torch").get_child("csrc").get_child("api").get_child("include")
    if str(home_path) == "/usr":
        # /usr/include is a builtin include dir of the host toolchain, so no
        # header needs declaring (declaring ~10k torch headers slows sandboxing).
        # Only the C++-API folder needs an -I of its own; declare just its headers.
        ctx.symlink(api_include, "api_include")
        hdrs = 'glob(["api_include/**"])'
        copts = "[]"
        includes = '["api_include"]'
    else:
        hdrs = 'glob(["include/**"])'
        copts = "[]"
        includes = '["include", "include/torch/csrc/api/include"]'
    ctx.file("BUILD.bazel", """
package(default_visibility = ["//visibility:public"])

cc_library(
    name = "torch",
    hdrs = {hdrs},
    includes = {includes},
    copts = {copts},
    defines = ["USE_C10D_GLOO"],
    linkopts = [
        "-L{lib}",
        "-Wl,-rpath,{lib}",
        "-Wl,--no-as-needed",
        "-ltorch",
        "-ltorch_cpu",
        "-lc10",
        "-Wl,--as-needed",
        "-lpthread",
    ],
)
""".format(hdrs = hdrs, includes = includes, copts = copts, lib = lib_dir))

libtorch_repository = repository_rule(
    implementation = _libtorch_impl,
    environ = ["LIBTORCH_HOME"],
    local = True,
)

def _system_protobuf_impl(ctx):
    ctx.file("protoc.sh", "#!/bin/sh\nexec /usr/bin/protoc \"$@\"\n", executable = True)
    ctx.symlink("/usr/include/google/protobuf", "include/google/protobuf")
    ctx.file("BUILD.bazel", """
package(default_visibility = ["//visibility:public"])

sh_binary(
    name = "protoc",
    srcs = ["protoc.sh"],
)

cc_library(
    name = "protobuf",
    linkopts = ["-Wl,--no-as-needed", "-lprotobuf", "-Wl,--as-needed", "-lpthread"],
)

cc_library(
    name = "protobuf_headers",
)

proto_lang_toolchain(
    name = "cc_toolchain",
    command_line = "--cpp_out=$(OUT)",
    runtime = ":protobuf",
)

filegroup(
    name = "well_known_protos",
    srcs = glob(["include/google/protobuf/*.proto"]),
)
""")

system_protobuf_repository = repository_rule(
    implementation = _system_protobuf_impl,
    local = True,
)

def _shared_data_impl(ctx):
    workspace_root = ctx.path(Label("//:WORKSPACE")).dirname
    shared = workspace_root.dirname.get_child(ctx.attr.relative_path)
    names = []
    if shared.exists:
        for child in shared.readdir():
            ctx.symlink(child, child.basename)
            names.append(child.basename)
    else:
        ctx.file("SHARED_ABSENT", "%s was not found when the workspace was loaded\n" % shared)
    ctx.file("BUILD.bazel", """
package(default_visibility = ["//visibility:public"])

filegroup(
    name = "golden",
    srcs = glob(["golden/**"]),
)

filegroup(
    name = "models",
    srcs = glob(["models/**"]),
)

filegroup(
    name = "photos",
    srcs = glob(["data/photos/**"]),
)

filegroup(
    name = "fer2013_ferplus",
    srcs = glob(["data/fer2013_ferplus/**"]),
)

filegroup(
    name = "marker",
    srcs = glob(["SHARED_ABSENT", "DESIGN.md"]),
)
""")

shared_data_repository = repository_rule(
    implementation = _shared_data_impl,
    attrs = {"relative_path": attr.string(default = "shared")},
    local = True,
)
