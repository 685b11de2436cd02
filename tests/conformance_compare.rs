//! The conformance runner's comparison rules, on small hand-written XML messages (no server).

use std::collections::VecDeque;

use ksg::conformance::compare::{
    Bindings, Difference, compare_response, reasons_equivalent, substitute_request,
};
use ksg::conformance::{Outcome, Transport, run_file};
use ksg::ttlv::tables::enums::ResultReason;
use ksg::ttlv::{Document, Item, Limits, Tag, Value, xml};

const NOW: i64 = 1_700_000_000;

fn parse(text: &str) -> Item {
    xml::decode(text, NOW, &Limits::default()).expect("test XML")
}

fn version(major: u8, minor: u8) -> String {
    format!(
        "<ProtocolVersion><ProtocolVersionMajor type=\"Integer\" value=\"{major}\"/>\
         <ProtocolVersionMinor type=\"Integer\" value=\"{minor}\"/></ProtocolVersion>"
    )
}

/// A request with one batch item in protocol 1.4.
fn request(op: &str, payload: &str) -> Item {
    request_v((1, 4), op, payload)
}

fn request_v(v: (u8, u8), op: &str, payload: &str) -> Item {
    parse(&format!(
        "<RequestMessage><RequestHeader>{}<BatchCount type=\"Integer\" value=\"1\"/>\
         </RequestHeader><BatchItem><Operation type=\"Enumeration\" value=\"{op}\"/>\
         <RequestPayload>{payload}</RequestPayload></BatchItem></RequestMessage>",
        version(v.0, v.1)
    ))
}

/// A successful response with one batch item in protocol 1.4; `time` is the TimeStamp text.
fn success(op: &str, payload: &str) -> Item {
    response_v((1, 4), "$NOW", op, "Success", "", payload)
}

fn response_v(v: (u8, u8), time: &str, op: &str, status: &str, extra: &str, payload: &str) -> Item {
    parse(&format!(
        "<ResponseMessage><ResponseHeader>{}<TimeStamp type=\"DateTime\" value=\"{time}\"/>\
         <BatchCount type=\"Integer\" value=\"1\"/></ResponseHeader><BatchItem>\
         <Operation type=\"Enumeration\" value=\"{op}\"/>\
         <ResultStatus type=\"Enumeration\" value=\"{status}\"/>{extra}\
         <ResponsePayload>{payload}</ResponsePayload></BatchItem></ResponseMessage>",
        version(v.0, v.1)
    ))
}

fn failure(op: &str, reason: &str) -> Item {
    parse(&format!(
        "<ResponseMessage><ResponseHeader>{}<TimeStamp type=\"DateTime\" value=\"$NOW\"/>\
         <BatchCount type=\"Integer\" value=\"1\"/></ResponseHeader><BatchItem>\
         <Operation type=\"Enumeration\" value=\"{op}\"/>\
         <ResultStatus type=\"Enumeration\" value=\"OperationFailed\"/>\
         <ResultReason type=\"Enumeration\" value=\"{reason}\"/>\
         <ResultMessage type=\"TextString\" value=\"whatever the server says\"/>\
         </BatchItem></ResponseMessage>",
        version(1, 4)
    ))
}

fn uid(v: &str) -> String {
    format!("<UniqueIdentifier type=\"TextString\" value=\"{v}\"/>")
}

fn attribute(name: &str, value: &str) -> String {
    format!("<Attribute><AttributeName type=\"TextString\" value=\"{name}\"/>{value}</Attribute>")
}

fn check(expected: &Item, actual: &Item, sent: &Item, b: &mut Bindings) -> Result<(), Difference> {
    compare_response(expected, actual, sent, b)
}

/// Creates a key: expected `$UNIQUE_IDENTIFIER_0`, the server says `key-1`.
fn created(b: &mut Bindings) {
    let sent = request(
        "Create",
        "<ObjectType type=\"Enumeration\" value=\"SymmetricKey\"/>",
    );
    let expected = success(
        "Create",
        &format!(
            "<ObjectType type=\"Enumeration\" value=\"SymmetricKey\"/>{}",
            uid("$UNIQUE_IDENTIFIER_0")
        ),
    );
    let actual = success(
        "Create",
        &format!(
            "<ObjectType type=\"Enumeration\" value=\"SymmetricKey\"/>{}",
            uid("key-1")
        ),
    );
    check(&expected, &actual, &sent, b).expect("Create matches");
}

#[test]
fn placeholder_is_captured_then_substituted_and_required() {
    let mut b = Bindings::new();
    created(&mut b);
    assert_eq!(
        b.var("$UNIQUE_IDENTIFIER_0"),
        Some(&Value::TextString("key-1".into()))
    );

    let sent = substitute_request(&request("Activate", &uid("$UNIQUE_IDENTIFIER_0")), &mut b)
        .expect("substitute");
    let payload = sent
        .child(Tag::BATCH_ITEM)
        .and_then(|i| i.child(Tag::REQUEST_PAYLOAD))
        .expect("payload");
    assert_eq!(
        payload.child(Tag::UNIQUE_IDENTIFIER).map(|u| &u.value),
        Some(&Value::TextString("key-1".into()))
    );

    let expected = success("Activate", &uid("$UNIQUE_IDENTIFIER_0"));
    check(
        &expected,
        &success("Activate", &uid("key-1")),
        &sent,
        &mut b,
    )
    .expect("same UID");
    let d = check(
        &expected,
        &success("Activate", &uid("key-2")),
        &sent,
        &mut b,
    )
    .expect_err("another UID");
    assert_eq!(
        d.path,
        "ResponseMessage/BatchItem[0]/ResponsePayload/UniqueIdentifier"
    );
    assert_eq!(d.expected, "$UNIQUE_IDENTIFIER_0 (= TextString \"key-1\")");
    assert_eq!(d.got, "TextString \"key-2\"");
}

#[test]
fn request_with_an_uncaptured_placeholder_fails() {
    let mut b = Bindings::new();
    let e = substitute_request(&request("Get", &uid("$UNIQUE_IDENTIFIER_3")), &mut b)
        .expect_err("not captured");
    assert_eq!(
        e,
        "request uses $UNIQUE_IDENTIFIER_3 before any response gave it"
    );
    let e = substitute_request(
        &request("Decrypt", "<Data type=\"ByteString\" value=\"$DATA_0\"/>"),
        &mut b,
    )
    .expect_err("not captured");
    assert!(e.contains("$DATA_0"), "{e}");
}

#[test]
fn byte_string_placeholder_captured_from_one_step_feeds_the_next() {
    let mut b = Bindings::new();
    let sent = request(
        "Encrypt",
        &format!("{}<Data type=\"ByteString\" value=\"01020304\"/>", uid("k")),
    );
    let expected = success(
        "Encrypt",
        &format!(
            "{}<Data type=\"ByteString\" value=\"$DATA_0\"/>\
             <IVCounterNonce type=\"ByteString\" value=\"$IV_COUNTER_NONCE\"/>",
            uid("k")
        ),
    );
    let actual = success(
        "Encrypt",
        &format!(
            "{}<Data type=\"ByteString\" value=\"cafe\"/>\
             <IVCounterNonce type=\"ByteString\" value=\"0011\"/>",
            uid("k")
        ),
    );
    check(&expected, &actual, &sent, &mut b).expect("captured");
    let next = substitute_request(
        &request(
            "Decrypt",
            &format!(
                "{}<Data type=\"ByteString\" value=\"$DATA_0\"/>\
                 <IVCounterNonce type=\"ByteString\" value=\"$IV_COUNTER_NONCE\"/>",
                uid("k")
            ),
        ),
        &mut b,
    )
    .expect("substitute");
    let payload = next
        .child(Tag::BATCH_ITEM)
        .and_then(|i| i.child(Tag::REQUEST_PAYLOAD))
        .expect("payload");
    assert_eq!(
        payload.child(Tag::DATA).map(|d| &d.value),
        Some(&Value::ByteString(vec![0xca, 0xfe]))
    );
    assert_eq!(
        payload.child(Tag::IV_COUNTER_NONCE).map(|d| &d.value),
        Some(&Value::ByteString(vec![0x00, 0x11]))
    );
}

#[test]
fn two_identifier_placeholders_never_capture_the_same_value() {
    let mut b = Bindings::new();
    created(&mut b);
    let sent = request("Create", "");
    let expected = success("Create", &uid("$UNIQUE_IDENTIFIER_1"));
    let d = check(&expected, &success("Create", &uid("key-1")), &sent, &mut b)
        .expect_err("same value as _0");
    assert!(d.got.contains("already $UNIQUE_IDENTIFIER_0"), "{d}");
}

#[test]
fn literal_identifier_is_mapped_to_the_servers_and_used_in_requests() {
    let mut b = Bindings::new();
    let literal = "8590e6e9-61c1-4b81-98d3-053a3c6a521b";
    let sent = request("Register", "");
    check(
        &success("Register", &uid(literal)),
        &success("Register", &uid("server-uid-9")),
        &sent,
        &mut b,
    )
    .expect("a literal identifier may differ");

    let next = substitute_request(&request("Get", &uid(literal)), &mut b).expect("substitute");
    let payload = next
        .child(Tag::BATCH_ITEM)
        .and_then(|i| i.child(Tag::REQUEST_PAYLOAD))
        .expect("payload");
    assert_eq!(
        payload.child(Tag::UNIQUE_IDENTIFIER).map(|u| &u.value),
        Some(&Value::TextString("server-uid-9".into()))
    );

    // From now on the literal stands for the server's value.
    let d = check(
        &success("Destroy", &uid(literal)),
        &success("Destroy", &uid("server-uid-10")),
        &next,
        &mut b,
    )
    .expect_err("mapping must hold");
    assert_eq!(
        d.path,
        "ResponseMessage/BatchItem[0]/ResponsePayload/UniqueIdentifier"
    );
    assert!(d.expected.contains("server-uid-9"), "{d}");

    // A literal no response mapped is sent as written.
    let other = substitute_request(&request("Get", &uid("AAABBBCCC")), &mut b).expect("sub");
    let payload = other
        .child(Tag::BATCH_ITEM)
        .and_then(|i| i.child(Tag::REQUEST_PAYLOAD))
        .expect("payload");
    assert_eq!(
        payload.child(Tag::UNIQUE_IDENTIFIER).map(|u| &u.value),
        Some(&Value::TextString("AAABBBCCC".into()))
    );
}

#[test]
fn attributes_in_any_order_with_extras_and_index_zero() {
    let mut b = Bindings::new();
    created(&mut b);
    let sent = request("GetAttributes", &uid("key-1"));
    let expected = success(
        "GetAttributes",
        &format!(
            "{}{}{}{}",
            uid("$UNIQUE_IDENTIFIER_0"),
            attribute(
                "State",
                "<AttributeValue type=\"Enumeration\" value=\"PreActive\"/>"
            ),
            attribute(
                "Cryptographic Usage Mask",
                "<AttributeValue type=\"Integer\" value=\"Encrypt Decrypt\"/>"
            ),
            attribute(
                "Initial Date",
                "<AttributeValue type=\"DateTime\" value=\"2012-04-27T08:12:24+00:00\"/>"
            ),
        ),
    );
    let actual = success(
        "GetAttributes",
        &format!(
            "{}{}{}{}{}",
            uid("key-1"),
            attribute(
                "Cryptographic Usage Mask",
                "<AttributeIndex type=\"Integer\" value=\"0\"/>\
                 <AttributeValue type=\"Integer\" value=\"Decrypt Encrypt\"/>"
            ),
            attribute(
                "Initial Date",
                "<AttributeValue type=\"DateTime\" value=\"2031-01-01T00:00:00+00:00\"/>"
            ),
            attribute(
                "x-vendor",
                "<AttributeValue type=\"TextString\" value=\"extra\"/>"
            ),
            attribute(
                "State",
                "<AttributeIndex type=\"Integer\" value=\"0\"/>\
                 <AttributeValue type=\"Enumeration\" value=\"PreActive\"/>"
            ),
        ),
    );
    check(&expected, &actual, &sent, &mut b).expect("order, extras and index 0 are fine");

    // KMIP 2.x: an Attributes structure, in any order, with extras.
    let expected = success(
        "GetAttributes",
        &format!(
            "{}<Attributes><State type=\"Enumeration\" value=\"PreActive\"/>\
             <CryptographicLength type=\"Integer\" value=\"256\"/></Attributes>",
            uid("$UNIQUE_IDENTIFIER_0")
        ),
    );
    let actual = success(
        "GetAttributes",
        &format!(
            "{}<Attributes><CryptographicLength type=\"Integer\" value=\"256\"/>\
             <ObjectType type=\"Enumeration\" value=\"SymmetricKey\"/>\
             <State type=\"Enumeration\" value=\"PreActive\"/></Attributes>",
            uid("key-1")
        ),
    );
    check(&expected, &actual, &sent, &mut b).expect("2.x order and extras are fine");
}

#[test]
fn attribute_value_mismatch_is_reported_with_its_path() {
    let mut b = Bindings::new();
    created(&mut b);
    let sent = request("GetAttributes", &uid("key-1"));
    let expected = success(
        "GetAttributes",
        &format!(
            "{}{}",
            uid("$UNIQUE_IDENTIFIER_0"),
            attribute(
                "State",
                "<AttributeValue type=\"Enumeration\" value=\"PreActive\"/>"
            )
        ),
    );
    let actual = success(
        "GetAttributes",
        &format!(
            "{}{}",
            uid("key-1"),
            attribute(
                "State",
                "<AttributeValue type=\"Enumeration\" value=\"Active\"/>"
            )
        ),
    );
    let d = check(&expected, &actual, &sent, &mut b).expect_err("wrong state");
    assert_eq!(
        d.to_string(),
        "ResponseMessage/BatchItem[0]/ResponsePayload/Attribute[State]/AttributeValue: \
         expected PreActive, got Active"
    );

    // A missing attribute.
    let actual = success("GetAttributes", &uid("key-1"));
    let d = check(&expected, &actual, &sent, &mut b).expect_err("missing");
    assert_eq!(
        d.path,
        "ResponseMessage/BatchItem[0]/ResponsePayload/Attribute[State]"
    );
    assert_eq!(d.got, "nothing");
}

#[test]
fn result_reason_equivalence_and_mismatch() {
    assert!(reasons_equivalent(
        ResultReason::PermissionDenied.to_u32(),
        ResultReason::WrongKeyLifecycleState.to_u32()
    ));
    assert!(reasons_equivalent(
        ResultReason::WrongKeyLifecycleState.to_u32(),
        ResultReason::PermissionDenied.to_u32()
    ));
    let mut b = Bindings::new();
    let sent = request("ModifyAttribute", &uid("k"));
    let expected = failure("ModifyAttribute", "PermissionDenied");
    check(
        &expected,
        &failure("ModifyAttribute", "WrongKeyLifecycleState"),
        &sent,
        &mut b,
    )
    .expect("equivalent reasons");
    let d = check(
        &expected,
        &failure("ModifyAttribute", "ItemNotFound"),
        &sent,
        &mut b,
    )
    .expect_err("different reason");
    assert_eq!(d.path, "ResponseMessage/BatchItem[0]/ResultReason");
    assert_eq!(d.expected, "PermissionDenied");
    assert!(d.got.starts_with("ItemNotFound"), "{d}");

    // A failure where success was expected shows the server's reason and message.
    let d = check(
        &success("ModifyAttribute", &uid("k")),
        &failure("ModifyAttribute", "ItemNotFound"),
        &sent,
        &mut b,
    )
    .expect_err("failed");
    assert_eq!(d.path, "ResponseMessage/BatchItem[0]/ResultStatus");
    assert_eq!(
        d.got,
        "OperationFailed (ItemNotFound: \"whatever the server says\")"
    );
}

#[test]
fn header_rules_time_stamp_and_version_quirk() {
    let mut b = Bindings::new();
    let payload = uid("k");
    // Any time stamp.
    check(
        &response_v(
            (1, 4),
            "2012-04-27T08:12:24+00:00",
            "Activate",
            "Success",
            "",
            &payload,
        ),
        &response_v((1, 4), "$NOW", "Activate", "Success", "", &payload),
        &request("Activate", &payload),
        &mut b,
    )
    .expect("time stamps vary");
    // The file says 1.3 in the response, but the request was 1.4 and so is the answer.
    check(
        &response_v((1, 3), "$NOW", "Activate", "Success", "", &payload),
        &response_v((1, 4), "$NOW", "Activate", "Success", "", &payload),
        &request_v((1, 4), "Activate", &payload),
        &mut b,
    )
    .expect("version of the request accepted");
    let d = check(
        &response_v((1, 4), "$NOW", "Activate", "Success", "", &payload),
        &response_v((1, 3), "$NOW", "Activate", "Success", "", &payload),
        &request_v((1, 4), "Activate", &payload),
        &mut b,
    )
    .expect_err("wrong version");
    assert_eq!(
        d.to_string(),
        "ResponseMessage/ResponseHeader/ProtocolVersion: expected 1.4, got 1.3"
    );
}

#[test]
fn key_material_of_generated_keys_varies_but_not_of_registered_ones() {
    let key_block = |material: &str| {
        format!(
            "<ObjectType type=\"Enumeration\" value=\"SymmetricKey\"/>{}<SymmetricKey><KeyBlock>\
             <KeyFormatType type=\"Enumeration\" value=\"Raw\"/><KeyValue>\
             <KeyMaterial type=\"ByteString\" value=\"{material}\"/></KeyValue>\
             <CryptographicAlgorithm type=\"Enumeration\" value=\"AES\"/>\
             <CryptographicLength type=\"Integer\" value=\"128\"/></KeyBlock></SymmetricKey>",
            uid("$UNIQUE_IDENTIFIER_0")
        )
    };
    let expected = success("Get", &key_block("00112233445566778899aabbccddeeff"));

    // Created by the server: any key material.
    let mut b = Bindings::new();
    created(&mut b);
    let sent =
        substitute_request(&request("Get", &uid("$UNIQUE_IDENTIFIER_0")), &mut b).expect("sub");
    let actual = success(
        "Get",
        &key_block("ffeeddccbbaa99887766554433221100").replace("$UNIQUE_IDENTIFIER_0", "key-1"),
    );
    check(&expected, &actual, &sent, &mut b).expect("generated key material varies");

    // Registered by the client: the bytes must come back.
    let mut b = Bindings::new();
    check(
        &success("Register", &uid("$UNIQUE_IDENTIFIER_0")),
        &success("Register", &uid("key-1")),
        &request("Register", ""),
        &mut b,
    )
    .expect("register");
    let sent =
        substitute_request(&request("Get", &uid("$UNIQUE_IDENTIFIER_0")), &mut b).expect("sub");
    let d = check(&expected, &actual, &sent, &mut b).expect_err("registered bytes differ");
    assert_eq!(
        d.path,
        "ResponseMessage/BatchItem[0]/ResponsePayload/SymmetricKey/KeyBlock/KeyValue/KeyMaterial"
    );
    assert_eq!(d.expected, "00112233445566778899aabbccddeeff");
    assert_eq!(d.got, "ffeeddccbbaa99887766554433221100");
}

#[test]
fn long_byte_strings_are_shown_truncated() {
    let mut b = Bindings::new();
    let sent = request("Hash", "");
    let long = "ab".repeat(64);
    let d = check(
        &success(
            "Hash",
            &format!("<Data type=\"ByteString\" value=\"{long}\"/>"),
        ),
        &success("Hash", "<Data type=\"ByteString\" value=\"00\"/>"),
        &sent,
        &mut b,
    )
    .expect_err("differs");
    assert_eq!(d.expected, format!("{}… (64 bytes)", "ab".repeat(16)));
    assert_eq!(d.got, "00");
}

#[test]
fn random_outputs_and_signatures_vary() {
    let mut b = Bindings::new();
    check(
        &success(
            "RNGRetrieve",
            "<Data type=\"ByteString\" value=\"0102030405060708\"/>",
        ),
        &success(
            "RNGRetrieve",
            "<Data type=\"ByteString\" value=\"a1a2a3a4a5a6a7a8\"/>",
        ),
        &request("RNGRetrieve", "<DataLength type=\"Integer\" value=\"8\"/>"),
        &mut b,
    )
    .expect("random data varies");
    check(
        &success(
            "Sign",
            &format!(
                "{}<SignatureData type=\"ByteString\" value=\"0102\"/>",
                uid("k")
            ),
        ),
        &success(
            "Sign",
            &format!(
                "{}<SignatureData type=\"ByteString\" value=\"0304\"/>",
                uid("k")
            ),
        ),
        &request("Sign", &uid("k")),
        &mut b,
    )
    .expect("signatures vary");
}

#[test]
fn locate_identifiers_are_a_multiset() {
    let mut b = Bindings::new();
    created(&mut b);
    let sent = request("Locate", "");
    let expected = success(
        "Locate",
        &format!(
            "{}{}",
            uid("$UNIQUE_IDENTIFIER_1"),
            uid("$UNIQUE_IDENTIFIER_0")
        ),
    );
    // The captured one is matched first, whatever the order.
    check(
        &expected,
        &success("Locate", &format!("{}{}", uid("key-1"), uid("key-2"))),
        &sent,
        &mut b,
    )
    .expect("order does not matter");
    assert_eq!(
        b.var("$UNIQUE_IDENTIFIER_1"),
        Some(&Value::TextString("key-2".into()))
    );
    let d = check(
        &expected,
        &success(
            "Locate",
            &format!("{}{}{}", uid("key-1"), uid("key-2"), uid("key-3")),
        ),
        &sent,
        &mut b,
    )
    .expect_err("an extra object");
    assert_eq!(
        d.to_string(),
        "ResponseMessage/BatchItem[0]/ResponsePayload/UniqueIdentifier: expected nothing, got \
         \"key-3\""
    );
}

#[test]
fn discover_versions_may_list_more_and_query_is_not_compared() {
    let mut b = Bindings::new();
    let expected = success(
        "DiscoverVersions",
        &format!("{}{}", version(1, 4), version(1, 3)),
    );
    check(
        &expected,
        &success(
            "DiscoverVersions",
            &format!(
                "{}{}{}{}",
                version(2, 1),
                version(1, 4),
                version(1, 3),
                version(1, 0)
            ),
        ),
        &request("DiscoverVersions", ""),
        &mut b,
    )
    .expect("more versions are fine");
    let d = check(
        &expected,
        &success(
            "DiscoverVersions",
            &format!("{}{}", version(1, 3), version(1, 4)),
        ),
        &request("DiscoverVersions", ""),
        &mut b,
    )
    .expect_err("wrong order");
    assert_eq!(
        d.path,
        "ResponseMessage/BatchItem[0]/ResponsePayload/ProtocolVersion"
    );
    check(
        &success(
            "Query",
            "<Operation type=\"Enumeration\" value=\"Create\"/>\
             <VendorIdentification type=\"TextString\" value=\"OASIS\"/>",
        ),
        &success(
            "Query",
            "<VendorIdentification type=\"TextString\" value=\"ksg\"/>",
        ),
        &request("Query", ""),
        &mut b,
    )
    .expect("Query contents are the server's");
}

#[test]
fn extra_items_are_differences_except_optional_structures() {
    let mut b = Bindings::new();
    let sent = request("Activate", &uid("k"));
    let d = check(
        &success("Activate", &uid("k")),
        &success(
            "Activate",
            &format!(
                "{}<ObjectType type=\"Enumeration\" value=\"SymmetricKey\"/>",
                uid("k")
            ),
        ),
        &sent,
        &mut b,
    )
    .expect_err("extra item");
    assert_eq!(
        d.to_string(),
        "ResponseMessage/BatchItem[0]/ResponsePayload/ObjectType: expected nothing, got \
         SymmetricKey"
    );
    check(
        &success("Create", &uid("k")),
        &success(
            "Create",
            &format!(
                "{}<TemplateAttribute>{}</TemplateAttribute>",
                uid("k"),
                attribute(
                    "State",
                    "<AttributeValue type=\"Enumeration\" value=\"Active\"/>"
                )
            ),
        ),
        &request("Create", ""),
        &mut b,
    )
    .expect("an extra TemplateAttribute is optional");
}

/// Answers each request with the next canned response, recording what was sent.
struct Script {
    responses: VecDeque<Item>,
    sent: Vec<Item>,
}

impl Transport for Script {
    fn exchange(&mut self, request: &Item) -> Result<Item, String> {
        self.sent.push(request.clone());
        self.responses
            .pop_front()
            .ok_or_else(|| "the server closed the connection".to_string())
    }
}

fn document(messages: Vec<Item>) -> Document {
    Document {
        messages,
        container: Some("KMIP".to_string()),
    }
}

#[test]
fn run_file_passes_fails_and_skips() {
    let create_expected = success("Create", &uid("$UNIQUE_IDENTIFIER_0"));
    let destroy_request = request("Destroy", &uid("$UNIQUE_IDENTIFIER_0"));
    let destroy_expected = success("Destroy", &uid("$UNIQUE_IDENTIFIER_0"));
    let doc = document(vec![
        request("Create", ""),
        create_expected.clone(),
        destroy_request.clone(),
        destroy_expected.clone(),
    ]);

    let mut server = Script {
        responses: [
            success("Create", &uid("u-1")),
            success("Destroy", &uid("u-1")),
        ]
        .into(),
        sent: Vec::new(),
    };
    assert_eq!(run_file(&mut server, &doc), Outcome::Pass);
    let destroy_payload = server.sent[1]
        .child(Tag::BATCH_ITEM)
        .and_then(|i| i.child(Tag::REQUEST_PAYLOAD))
        .expect("payload");
    assert_eq!(
        destroy_payload
            .child(Tag::UNIQUE_IDENTIFIER)
            .map(|u| &u.value),
        Some(&Value::TextString("u-1".into()))
    );

    let mut server = Script {
        responses: [
            success("Create", &uid("u-1")),
            failure("Destroy", "ItemNotFound"),
        ]
        .into(),
        sent: Vec::new(),
    };
    match run_file(&mut server, &doc) {
        Outcome::Fail(why) => assert_eq!(
            why,
            "step 1 (Destroy): ResponseMessage/BatchItem[0]/ResultStatus: expected Success, got \
             OperationFailed (ItemNotFound: \"whatever the server says\")"
        ),
        other => panic!("{other:?}"),
    }

    let mut server = Script {
        responses: [success("Create", &uid("u-1"))].into(),
        sent: Vec::new(),
    };
    assert_eq!(
        run_file(&mut server, &doc),
        Outcome::Fail("step 1 (Destroy): the server closed the connection".to_string())
    );

    let np = document(vec![request("Notify", ""), success("Notify", "")]);
    let mut server = Script {
        responses: VecDeque::new(),
        sent: Vec::new(),
    };
    assert_eq!(
        run_file(&mut server, &np),
        Outcome::Skip("server-to-client Notify/Put".to_string())
    );
    assert!(server.sent.is_empty());
}

#[test]
fn a_missing_operation_shows_what_the_server_said() {
    let mut b = Bindings::new();
    let actual = parse(&format!(
        "<ResponseMessage><ResponseHeader>{}<TimeStamp type=\"DateTime\" value=\"$NOW\"/>\
         <BatchCount type=\"Integer\" value=\"1\"/></ResponseHeader><BatchItem>\
         <ResultStatus type=\"Enumeration\" value=\"OperationFailed\"/>\
         <ResultReason type=\"Enumeration\" value=\"InvalidMessage\"/></BatchItem>\
         </ResponseMessage>",
        version(1, 4)
    ));
    let d = check(
        &success("Create", &uid("$UNIQUE_IDENTIFIER_0")),
        &actual,
        &request("Create", ""),
        &mut b,
    )
    .expect_err("no operation");
    assert_eq!(
        d.to_string(),
        "ResponseMessage/BatchItem[0]/Operation: expected Create, got nothing (the server said \
         OperationFailed (InvalidMessage))"
    );
}

/// A temporary test-case file, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        // A directory of its own: tests run at once, and each removes its directory whole.
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ksg-conformance-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn text(item: &Item) -> String {
    xml::encode(item)
}

#[test]
fn errata_repairs_are_applied_by_file_name() {
    use ksg::conformance::load_file;

    // Requests out of order (as in TC-DERIVEKEY-4-10): paired by operation after the repair.
    let destroy = request("Destroy", &uid("$UNIQUE_IDENTIFIER_0"));
    let revoke = request("Revoke", &uid("$UNIQUE_IDENTIFIER_0"));
    let body = format!(
        "<KMIP>\n{}{}{}{}</KMIP>\n",
        text(&destroy),
        text(&revoke),
        text(&success("Revoke", &uid("$UNIQUE_IDENTIFIER_0"))),
        text(&success("Destroy", &uid("$UNIQUE_IDENTIFIER_0")))
    );
    let listed = TempFile::new("TC-DERIVEKEY-4-10.xml", &body);
    let doc = load_file(&listed.0, NOW).expect("load");
    let order: Vec<(Tag, Item)> = doc
        .messages
        .iter()
        .map(|m| {
            let op = m
                .child(Tag::BATCH_ITEM)
                .and_then(|b| b.child(Tag::OPERATION))
                .expect("operation")
                .clone();
            (m.tag, op)
        })
        .collect();
    let names: Vec<String> = order
        .iter()
        .map(|(t, op)| format!("{t}:{}", ksg::conformance::compare::show(op)))
        .collect();
    assert_eq!(
        names,
        [
            "RequestMessage:Revoke",
            "ResponseMessage:Revoke",
            "RequestMessage:Destroy",
            "ResponseMessage:Destroy"
        ]
    );
    // The same content under another name is left as it is.
    let other = TempFile::new("TC-OTHER.xml", &body);
    let doc = load_file(&other.0, NOW).expect("load");
    assert_eq!(doc.messages[0].tag, Tag::REQUEST_MESSAGE);
    assert_eq!(doc.messages[1].tag, Tag::REQUEST_MESSAGE);

    // A second </KMIP> (as in TC-ECDSA-SIGN-1-14) is dropped.
    let body = format!(
        "<KMIP>\n{}{}</KMIP>\n</KMIP>\n",
        text(&request("Query", "")),
        text(&success("Query", ""))
    );
    let listed = TempFile::new("TC-ECDSA-SIGN-1-14.xml", &body);
    assert_eq!(
        load_file(&listed.0, NOW).expect("repaired").messages.len(),
        2
    );
    let other = TempFile::new("TC-ECDSA-OTHER.xml", &body);
    assert!(load_file(&other.0, NOW).is_err());
}

#[test]
fn skip_list_matches_names_and_path_ends() {
    use ksg::conformance::SkipList;
    use std::path::Path;

    let text = "# not for this server\nTC-NP-1-14.xml   server-to-client\nv2.0/testcases/TC-SJ-1-20.xml\n\n\
                [hsm]\nCS-AC-M-4-14.xml   the HSM refuses short HMAC keys (PKCS#11 KeySizeRange)\n";
    let list = SkipList::parse(text, None);
    assert_eq!(list.reason(Path::new("/x/CS-AC-M-4-14.xml")), None);
    let hsm = SkipList::parse(text, Some("hsm"));
    assert_eq!(
        hsm.reason(Path::new("/x/CS-AC-M-4-14.xml")),
        Some("the HSM refuses short HMAC keys (PKCS#11 KeySizeRange)".to_string()),
        "a '#' inside a reason is kept"
    );
    assert!(hsm.reason(Path::new("/x/TC-NP-1-14.xml")).is_some());
    assert_eq!(
        list.reason(Path::new("/x/v1.4/testcases/TC-NP-1-14.xml")),
        Some("server-to-client".to_string())
    );
    assert_eq!(
        list.reason(Path::new("/x/v2.0/testcases/TC-SJ-1-20.xml")),
        Some("listed in the skip file".to_string())
    );
    assert_eq!(
        list.reason(Path::new("/x/v2.1/testcases/TC-SJ-1-20.xml")),
        None
    );
    assert_eq!(list.reason(Path::new("/x/ATC-NP-1-14.xml")), None);
}

#[test]
fn a_literal_that_a_later_request_uses_as_a_placeholder_is_captured() {
    // As in CS-AC-M-6-14: the MAC response has a literal MACData, the MACVerify request
    // sends `$MAC_DATA`.
    let mac = |v: &str| format!("{}<MACData type=\"ByteString\" value=\"{v}\"/>", uid("k"));
    let doc = document(vec![
        request("MAC", &uid("k")),
        success("MAC", &mac("c911e781")),
        request("MACVerify", &mac("$MAC_DATA")),
        success("MACVerify", &uid("k")),
    ]);
    let mut server = Script {
        responses: [
            success("MAC", &mac("c911e781")),
            success("MACVerify", &uid("k")),
        ]
        .into(),
        sent: Vec::new(),
    };
    assert_eq!(run_file(&mut server, &doc), Outcome::Pass);
    let verify = server.sent[1]
        .child(Tag::BATCH_ITEM)
        .and_then(|i| i.child(Tag::REQUEST_PAYLOAD))
        .expect("payload");
    assert_eq!(
        verify.child(Tag::MAC_DATA).map(|d| &d.value),
        Some(&Value::ByteString(vec![0xc9, 0x11, 0xe7, 0x81]))
    );
}
