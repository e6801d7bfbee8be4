"""A KServe v2 client that is not ours against //serving:server.

Debian's python3-grpcio and python3-protobuf, with stubs generated from
serving/grpc/grpc_predict_v2.proto at test time (kserve_client_test.sh):
  kserve_client_test.py STUB_DIR HOST:PORT PHOTO_DIR
Checks ServerLive / ServerReady / ModelReady / ServerMetadata, ModelMetadata,
ModelInfer with a photo (typed and raw contents, skip_detection) and with an
FP32 tensor (fp32_contents and raw_input_contents), and the error codes
(unknown model NOT_FOUND, bad shape INVALID_ARGUMENT).
"""
import math
import os
import struct
import sys

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
import grpc_predict_v2_pb2 as pb  # noqa: E402
import grpc_predict_v2_pb2_grpc as pb_grpc  # noqa: E402

ADDRESS, PHOTOS = sys.argv[2], sys.argv[3]
failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)


def outputs_of(response):
    """name -> (shape, values) for typed or raw contents."""
    result = {}
    for i, out in enumerate(response.outputs):
        shape = list(out.shape)
        if response.raw_output_contents:
            raw = response.raw_output_contents[i]
            if out.datatype == "BYTES":
                values, pos = [], 0
                while pos < len(raw):
                    (n,) = struct.unpack_from("<I", raw, pos)
                    values.append(raw[pos + 4:pos + 4 + n].decode())
                    pos += 4 + n
            else:
                values = list(struct.unpack("<%df" % (len(raw) // 4), raw))
        elif out.datatype == "BYTES":
            values = [v.decode() for v in out.contents.bytes_contents]
        else:
            values = list(out.contents.fp32_contents)
        result[out.name] = (shape, values)
    return result


def rows_sum_to_one(values, classes):
    return len(values) % classes == 0 and all(
        abs(sum(values[r:r + classes]) - 1) < 1e-4 for r in range(0, len(values), classes))


def photo_request(name, raw=False, skip_detection=False, model="dmue"):
    data = open(os.path.join(PHOTOS, name), "rb").read()
    request = pb.ModelInferRequest(model_name=model, id="req-" + name)
    tensor = request.inputs.add(name="image", datatype="BYTES", shape=[1])
    if skip_detection:
        tensor.parameters["skip_detection"].bool_param = True
    if raw:
        request.raw_input_contents.append(struct.pack("<I", len(data)) + data)
    else:
        tensor.contents.bytes_contents.append(data)
    return request


def tensor_request(shape, raw=False):
    count = math.prod(shape)
    values = [((i % 17) - 8) / 8.0 for i in range(count)]
    request = pb.ModelInferRequest(model_name="dmue", model_version="1")
    tensor = request.inputs.add(name="input", datatype="FP32", shape=shape)
    if raw:
        request.raw_input_contents.append(struct.pack("<%df" % count, *values))
    else:
        tensor.contents.fp32_contents.extend(values)
    return request


def expect_error(call, code, what):
    try:
        call()
    except grpc.RpcError as error:
        check(error.code() == code, "%s -> %s (%s: %s)" % (what, code.name, error.code().name, error.details()))
        return
    check(False, what + " -> " + code.name + " (it succeeded)")


def main():
    channel = grpc.insecure_channel(ADDRESS)
    grpc.channel_ready_future(channel).result(timeout=30)
    stub = pb_grpc.GRPCInferenceServiceStub(channel)

    check(stub.ServerLive(pb.ServerLiveRequest()).live, "ServerLive")
    check(stub.ServerReady(pb.ServerReadyRequest()).ready, "ServerReady")
    check(stub.ModelReady(pb.ModelReadyRequest(name="dmue", version="1")).ready, "ModelReady")
    server = stub.ServerMetadata(pb.ServerMetadataRequest())
    check(server.name == "dmue-server", "ServerMetadata name: " + server.name)

    meta = stub.ModelMetadata(pb.ModelMetadataRequest(name="dmue"))
    inputs = {t.name: (t.datatype, list(t.shape)) for t in meta.inputs}
    outputs = {t.name: (t.datatype, list(t.shape)) for t in meta.outputs}
    check(meta.name == "dmue" and list(meta.versions) == ["1"], "ModelMetadata name and versions")
    check(inputs.get("image") == ("BYTES", [-1]), "ModelMetadata input image: %s" % (inputs.get("image"),))
    side = inputs.get("input", ("", [0, 0, 0, 0]))[1][2]
    check(inputs.get("input") == ("FP32", [-1, 3, side, side]) and side > 0,
          "ModelMetadata input input: %s" % (inputs.get("input"),))
    check(sorted(outputs) == ["boxes", "labels", "landmarks", "probabilities", "scores"],
          "ModelMetadata outputs: %s" % sorted(outputs))
    classes = outputs["probabilities"][1][1]
    check(classes == 8, "probabilities [-1, 8]: %s" % outputs["probabilities"][1])

    for raw in (False, True):
        kind = "raw" if raw else "bytes_contents"
        reply = stub.ModelInfer(photo_request("face_sdk_test1.jpg", raw=raw), timeout=120)
        out = outputs_of(reply)
        check(reply.model_name == "dmue" and reply.id == "req-face_sdk_test1.jpg", "ModelInfer photo (%s): id" % kind)
        check(bool(reply.raw_output_contents) == raw, "ModelInfer photo (%s): reply in the same form" % kind)
        check(out["boxes"][0] == [2, 4], "ModelInfer photo (%s): 2 faces, boxes %s" % (kind, out["boxes"][0]))
        check(out["probabilities"][0] == [2, classes] and rows_sum_to_one(out["probabilities"][1], classes),
              "ModelInfer photo (%s): probabilities [2, %d] summing to 1" % (kind, classes))
        check(out["landmarks"][0] == [2, 5, 2] and len(out["landmarks"][1]) == 20, "ModelInfer photo: landmarks")
        check(len(out["labels"][1]) == 2 and all(out["labels"][1]), "ModelInfer photo: labels %s" % out["labels"][1])

    crop = outputs_of(stub.ModelInfer(photo_request("test1.jpg", skip_detection=True), timeout=120))
    check(crop["boxes"][1] == [0.0, 0.0, 256.0, 256.0], "ModelInfer skip_detection: box %s" % crop["boxes"][1])

    for raw in (False, True):
        kind = "raw_input_contents" if raw else "fp32_contents"
        reply = stub.ModelInfer(tensor_request([2, 3, side, side], raw=raw), timeout=120)
        out = outputs_of(reply)
        check(list(out) == ["probabilities"] and out["probabilities"][0] == [2, classes]
              and rows_sum_to_one(out["probabilities"][1], classes),
              "ModelInfer FP32 (%s): probabilities [2, %d] summing to 1" % (kind, classes))

    expect_error(lambda: stub.ModelInfer(photo_request("test1.jpg", model="nope")), grpc.StatusCode.NOT_FOUND,
                 "ModelInfer unknown model")
    expect_error(lambda: stub.ModelMetadata(pb.ModelMetadataRequest(name="nope")), grpc.StatusCode.NOT_FOUND,
                 "ModelMetadata unknown model")
    expect_error(lambda: stub.ModelInfer(tensor_request([1, 3, side + 1, side + 1])),
                 grpc.StatusCode.INVALID_ARGUMENT, "ModelInfer bad shape")
    bad_raw = tensor_request([1, 3, side, side], raw=True)
    bad_raw.raw_input_contents[0] = bad_raw.raw_input_contents[0][:-4]
    expect_error(lambda: stub.ModelInfer(bad_raw), grpc.StatusCode.INVALID_ARGUMENT, "ModelInfer raw too short")
    not_image = pb.ModelInferRequest(model_name="dmue")
    not_image.inputs.add(name="image", datatype="BYTES", shape=[1]).contents.bytes_contents.append(b"not a photo")
    expect_error(lambda: stub.ModelInfer(not_image), grpc.StatusCode.INVALID_ARGUMENT, "ModelInfer bytes not a photo")

    if failures:
        print("%d check(s) failed" % len(failures))
        sys.exit(1)
    print("PASS")


main()
