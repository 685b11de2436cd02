"""Prints TTLV messages encoded by PyKMIP (an independent KMIP implementation), one hex line each.

Used by tests/ttlv_byte_exact_other_implementations.rs: ksg must decode each one and encode it
back to the same bytes. Messages cover requests and responses of the common operations at
several protocol versions, with structures, enumerations, masks, text, bytes and date-times.
"""

import sys

from kmip.core import enums, objects, primitives, utils
from kmip.core.factories.attributes import AttributeFactory
from kmip.core.messages import contents, messages, payloads
from kmip.pie import factory as pie_factory
from kmip.pie import objects as pie_objects

ATTR = AttributeFactory()
CONVERT = pie_factory.ObjectFactory()
TIME = 1_700_000_000

VERSIONS = {
    (1, 0): enums.KMIPVersion.KMIP_1_0,
    (1, 1): enums.KMIPVersion.KMIP_1_1,
    (1, 2): enums.KMIPVersion.KMIP_1_2,
    (1, 3): enums.KMIPVersion.KMIP_1_3,
    (1, 4): enums.KMIPVersion.KMIP_1_4,
}


def attribute(name, value):
    return ATTR.create_attribute(enums.AttributeType(name), value)


def template(*pairs):
    return objects.TemplateAttribute(attributes=[attribute(name, value) for name, value in pairs])


def encode(message, version):
    stream = utils.BytearrayStream()
    message.write(stream, kmip_version=VERSIONS[version])
    return bytes(stream.buffer)


def request(version, operation, payload, extra_items=()):
    items = [messages.RequestBatchItem(operation=contents.Operation(operation), request_payload=payload)]
    items += list(extra_items)
    header = messages.RequestHeader(
        protocol_version=contents.ProtocolVersion(*version),
        maximum_response_size=contents.MaximumResponseSize(1 << 20),
        batch_count=contents.BatchCount(len(items)),
    )
    return encode(messages.RequestMessage(request_header=header, batch_items=items), version)


def response(version, operation, payload, status=enums.ResultStatus.SUCCESS, reason=None, message=None):
    item = messages.ResponseBatchItem(
        operation=contents.Operation(operation),
        result_status=contents.ResultStatus(status),
        result_reason=contents.ResultReason(reason) if reason else None,
        result_message=contents.ResultMessage(message) if message else None,
        response_payload=payload,
    )
    header = messages.ResponseHeader(
        protocol_version=contents.ProtocolVersion(*version),
        time_stamp=contents.TimeStamp(TIME),
        batch_count=contents.BatchCount(1),
    )
    return encode(messages.ResponseMessage(response_header=header, batch_items=[item]), version)


def vectors():
    key = CONVERT.convert(pie_objects.SymmetricKey(
        enums.CryptographicAlgorithm.AES, 256, bytes(range(32)),
        [enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT]))
    secret = CONVERT.convert(pie_objects.SecretData(
        b"correct horse battery staple", enums.SecretDataType.PASSWORD))
    public = CONVERT.convert(pie_objects.PublicKey(
        enums.CryptographicAlgorithm.RSA, 2048, bytes.fromhex("3082010a0282010100c3") + bytes(250),
        enums.KeyFormatType.PKCS_1))
    opaque = CONVERT.convert(pie_objects.OpaqueObject(b"\x00\x01opaque", enums.OpaqueDataType.NONE))
    for version in VERSIONS:
        yield request(version, enums.Operation.CREATE, payloads.CreateRequestPayload(
            object_type=enums.ObjectType.SYMMETRIC_KEY,
            template_attribute=template(
                ("Cryptographic Algorithm", enums.CryptographicAlgorithm.AES),
                ("Cryptographic Length", 256),
                ("Cryptographic Usage Mask", [enums.CryptographicUsageMask.ENCRYPT,
                                              enums.CryptographicUsageMask.DECRYPT]),
                ("Name", "ksg-interop-key"),
            )))
        yield response(version, enums.Operation.CREATE, payloads.CreateResponsePayload(
            object_type=enums.ObjectType.SYMMETRIC_KEY, unique_identifier="fc8833de-70d2-4ece-b063-fede3a3c59fe"))
        yield request(version, enums.Operation.GET, payloads.GetRequestPayload(unique_identifier="1"))
        yield response(version, enums.Operation.GET, payloads.GetResponsePayload(
            object_type=enums.ObjectType.SYMMETRIC_KEY, unique_identifier="1", secret=key))
        yield response(version, enums.Operation.GET, payloads.GetResponsePayload(
            object_type=enums.ObjectType.SECRET_DATA, unique_identifier="2", secret=secret))
        yield response(version, enums.Operation.GET, payloads.GetResponsePayload(
            object_type=enums.ObjectType.PUBLIC_KEY, unique_identifier="3", secret=public))
        yield request(version, enums.Operation.REGISTER, payloads.RegisterRequestPayload(
            object_type=enums.ObjectType.OPAQUE_DATA, template_attribute=template(("Name", "blob")),
            managed_object=opaque))
        yield request(version, enums.Operation.LOCATE, payloads.LocateRequestPayload(
            maximum_items=10, attributes=[attribute("Name", "ksg-interop-key"),
                                          attribute("Object Type", enums.ObjectType.SYMMETRIC_KEY)]))
        yield response(version, enums.Operation.LOCATE, payloads.LocateResponsePayload(
            unique_identifiers=[str(i) for i in range(100)]))
        yield request(version, enums.Operation.GET_ATTRIBUTES, payloads.GetAttributesRequestPayload(
            unique_identifier="1", attribute_names=["Name", "State", "Initial Date"]))
        yield response(version, enums.Operation.GET_ATTRIBUTES, payloads.GetAttributesResponsePayload(
            unique_identifier="1", attributes=[
                attribute("State", enums.State.ACTIVE),
                attribute("Initial Date", TIME),
                attribute("Name", "ksg-interop-key")]))
        yield request(version, enums.Operation.DESTROY, payloads.DestroyRequestPayload(
            unique_identifier=primitives.TextString("1", enums.Tags.UNIQUE_IDENTIFIER)))
        yield response(version, enums.Operation.DESTROY, None, enums.ResultStatus.OPERATION_FAILED,
                       enums.ResultReason.ITEM_NOT_FOUND, "no such object")
        yield request(version, enums.Operation.QUERY, payloads.QueryRequestPayload(
            query_functions=[enums.QueryFunction.QUERY_OPERATIONS, enums.QueryFunction.QUERY_OBJECTS]))
        yield request(version, enums.Operation.DISCOVER_VERSIONS, payloads.DiscoverVersionsRequestPayload(
            protocol_versions=[contents.ProtocolVersion(1, 4), contents.ProtocolVersion(1, 0)]))
        if version >= (1, 2):
            yield request(version, enums.Operation.ENCRYPT, payloads.EncryptRequestPayload(
                unique_identifier="1",
                cryptographic_parameters=ATTR.create_attribute(
                    "Cryptographic Parameters", {
                        "block_cipher_mode": enums.BlockCipherMode.CBC,
                        "padding_method": enums.PaddingMethod.PKCS5,
                        "cryptographic_algorithm": enums.CryptographicAlgorithm.AES,
                    }).attribute_value,
                data=b"\x01\x02\x03\x04\x05\x06\x07\x08\x09",
                iv_counter_nonce=bytes(16)))


def main():
    count = 0
    for v in vectors():
        sys.stdout.write(v.hex() + "\n")
        count += 1
    sys.stderr.write("pykmip vectors: %d\n" % count)


if __name__ == "__main__":
    main()
