"""system_protoc_gen: C++ messages and gRPC stubs of one .proto, generated with
Debian's /usr/bin/protoc and /usr/bin/grpc_cpp_plugin (gRPC's own Bazel rules
are not available offline).

For `x.proto` it writes x.pb.h, x.pb.cc, x.grpc.pb.h and x.grpc.pb.cc into the
bin folder of the package, so they are included as "<package>/x.pb.h". `imports`
lists the .proto files x.proto imports (by their workspace paths).
"""

def system_protoc_gen(name, proto, imports = []):
    base = proto[:-len(".proto")]
    native.genrule(
        name = name,
        srcs = [proto] + imports,
        outs = [
            base + ".pb.h",
            base + ".pb.cc",
            base + ".grpc.pb.h",
            base + ".grpc.pb.cc",
        ],
        cmd = " ".join([
            "/usr/bin/protoc",
            "--proto_path=.",
            "--cpp_out=$(GENDIR)",
            "--grpc_out=$(GENDIR)",
            "--plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin",
            "$(location %s)" % proto,
        ]),
    )
