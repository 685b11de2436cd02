//! `ksg client`: a KMIP 1.x client for people and scripts. One command per run, over the same
//! transports as `ksg conformance` (TTLV on mutual TLS by default, or HTTPS with TTLV, XML or
//! JSON), with the development PKI under `./data/tls` as its default credentials.

use std::io::Write;
use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, SubjectPublicKeyInfoDer};

use super::args::Args;
use super::connect;
use crate::conformance::Transport;
use crate::conformance::transport::Connection;
use crate::ttlv::tables::{self, TagKind};
use crate::ttlv::{Item, Tag, Value, Version};

const HELP: &str = "\
Usage: ksg client [options] <command> [arguments]

A KMIP client: sends one request to a KMIP server (ksg or any other) and prints the answer.
With no options it talks to ksg on 127.0.0.1:5696 with the development PKI in ./data/tls.

Commands:
  discover-versions                   the protocol versions the server speaks
  query                               operations, object types and server information
  create --alg ALG --length BITS      a symmetric key (AES, DES3, HMAC_SHA256, ...)
  create-key-pair --alg RSA --length BITS | --alg EC --curve P-256
                                      a key pair; prints both Unique Identifiers
  register --type TYPE --file FILE    an object from a file: symmetric-key (raw bytes, with
                                      --alg), private-key (PKCS#8, PKCS#1 or SEC1, PEM or DER),
                                      public-key (SubjectPublicKeyInfo or PKCS#1), certificate
                                      (X.509, PEM or DER), secret-data (bytes; --secret-type
                                      password|seed), opaque (bytes)
  get UID [--format FMT] [--out FILE|-] [--pem]
                                      the object's value: hex on standard output, or its bytes
                                      to FILE ('-': standard output); FMT is a Key Format Type
                                      (raw, pkcs1, pkcs8, x509, ec-private-key, pkcs12, ...)
  get-attributes UID [--attribute NAME]...
  locate [--name N] [--type TYPE] [--alg ALG] [--state STATE] [--attr NAME=TEXT]... [--max N]
  activate UID
  revoke UID [--reason REASON] [--message TEXT]
                                      REASON: unspecified, key-compromise, ca-compromise,
                                      affiliation-changed, superseded, cessation-of-operation
                                      (default), privilege-withdrawn
  destroy UID
  encrypt UID --in FILE --out FILE [--mode cbc|ecb|gcm|ctr] [--padding pkcs5|none|oaep|pkcs1v15]
          [--iv HEX] [--aad HEX] [--tag-length BYTES]
                                      prints the IV the server made and the GCM tag
  decrypt UID --in FILE --out FILE [same options] [--tag HEX]
  sign UID --in FILE --out FILE [--hash sha256 (default)] [--padding pss|pkcs1v15]
  verify UID --in FILE --signature FILE [--hash sha256] [--padding pss|pkcs1v15]
                                      exit status 0 if valid, 1 if not
  rng --length BYTES [--out FILE]     random bytes from the server

Options for create, create-key-pair and register:
  --name NAME          the Name attribute
  --usage LIST         Cryptographic Usage Mask, e.g. encrypt,decrypt (default: what the
                       algorithm does: encrypt,decrypt for AES; sign / verify for key pairs)
  --attr NAME=TEXT     a text attribute, e.g. x-owner=alice (repeatable)
  --activate           make the object Active now (Activation Date = now)

General options:
  --server HOST:PORT   the KMIP server (default 127.0.0.1:5696)
  --kmip-version V     1.0, 1.1, 1.2, 1.3 or 1.4 (default 1.4)
  --username NAME      send a KMIP Credential (Username and Password) with the request, for a
  --password-file F    server with requireCredential = 1; the password is F's first line
  --json               print the result as one JSON object, for scripts
";

/// Options that take a value (besides the connection's).
const VALUE_OPTIONS: [&str; 29] = [
    "kmip-version",
    "username",
    "password-file",
    "alg",
    "length",
    "curve",
    "type",
    "file",
    "format",
    "out",
    "attribute",
    "name",
    "state",
    "attr",
    "max",
    "reason",
    "message",
    "in",
    "mode",
    "padding",
    "iv",
    "aad",
    "tag",
    "tag-length",
    "hash",
    "signature",
    "usage",
    "secret-type",
    "uid",
];

/// Switches (besides the connection's).
const SWITCHES: [&str; 4] = ["json", "pem", "activate", "help"];

/// Runs `ksg client`.
pub fn run(args: &[String]) -> i32 {
    let args = match Args::parse(
        args,
        &[&connect::VALUE_OPTIONS[..], &VALUE_OPTIONS[..]].concat(),
        &[&connect::SWITCHES[..], &SWITCHES[..]].concat(),
    ) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    if args.has("help") || args.positionals.is_empty() {
        print!("{HELP}\nConnection options:\n{}", connect::HELP);
        return if args.has("help") { 0 } else { 2 };
    }
    let command = args.positionals[0].clone();
    let version = match args.value("kmip-version").unwrap_or("1.4") {
        "1.0" => Version::new(1, 0),
        "1.1" => Version::new(1, 1),
        "1.2" => Version::new(1, 2),
        "1.3" => Version::new(1, 3),
        "1.4" => Version::new(1, 4),
        other => return usage_error(&format!("--kmip-version {other:?}: expected 1.0 to 1.4")),
    };
    let request = match build(&command, &args) {
        Ok(r) => r,
        Err(Problem::Usage(m)) => return usage_error(&m),
        Err(Problem::Failed(m)) => return failed(&m),
    };
    let target = match connect::target(&args, Some("127.0.0.1:5696")) {
        Ok(t) => t,
        Err(e) => return usage_error(&e),
    };
    let mut connection = match Connection::open(&target) {
        Ok(c) => c,
        Err(e) => return failed(&format!("cannot reach {}: {e}", target.address)),
    };
    let authentication = match credential(&args) {
        Ok(a) => a,
        Err(Problem::Usage(m)) => return usage_error(&m),
        Err(Problem::Failed(m)) => return failed(&m),
    };
    let message = connect::request_message(
        version,
        authentication,
        request.operation,
        &request.payload,
        1,
    );
    let response = match connection.exchange(&message) {
        Ok(r) => r,
        Err(e) => return failed(&e),
    };
    let payload = match response_payload(&response, &command) {
        Ok(p) => p,
        Err(m) => return failed(&m),
    };
    let output = match (request.report)(&payload, &args) {
        Ok(o) => o,
        Err(Problem::Usage(m)) => return usage_error(&m),
        Err(Problem::Failed(m)) => return failed(&m),
    };
    print_output(&output.fields, args.has("json"));
    output.status
}

/// The Authentication structure for `--username` and `--password-file`, if given.
fn credential(args: &Args) -> Result<Option<Item>, Problem> {
    let Some(user) = args.value("username") else {
        return Ok(None);
    };
    let path = args
        .value("password-file")
        .ok_or_else(|| Problem::Usage("--username needs --password-file FILE".into()))?;
    let text =
        std::fs::read_to_string(path).map_err(|e| Problem::Failed(format!("{path}: {e}")))?;
    let password = text.lines().next().unwrap_or_default();
    Ok(Some(Item::structure(
        Tag::AUTHENTICATION,
        vec![Item::structure(
            Tag::CREDENTIAL,
            vec![
                enumeration(
                    Tag::CREDENTIAL_TYPE,
                    tables::enums::CredentialType::UsernameAndPassword.to_u32(),
                ),
                Item::structure(
                    Tag::CREDENTIAL_VALUE,
                    vec![
                        text_item(Tag::USERNAME, user),
                        text_item(Tag::PASSWORD, password),
                    ],
                ),
            ],
        )],
    )))
}

fn usage_error(message: &str) -> i32 {
    eprintln!("ksg client: {message}\nRun `ksg client --help` for usage.");
    2
}

fn failed(message: &str) -> i32 {
    eprintln!("ksg client: {message}");
    1
}

/// Why a command could not run.
#[derive(Debug)]
enum Problem {
    /// The command line is wrong (exit 2).
    Usage(String),
    /// Something else went wrong (a file, the server's answer; exit 1).
    Failed(String),
}

fn usage<T>(m: impl Into<String>) -> Result<T, Problem> {
    Err(Problem::Usage(m.into()))
}

/// One request: its operation and payload, and how to report the response payload.
struct Request {
    operation: u32,
    payload: Vec<Item>,
    report: fn(&Item, &Args) -> Result<Output, Problem>,
}

/// What a command prints: named fields (in order) and its exit status.
struct Output {
    fields: Vec<(String, Json)>,
    status: i32,
}

impl Output {
    fn of(fields: Vec<(&str, Json)>) -> Output {
        Output {
            fields: fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            status: 0,
        }
    }
}

/// A value of the output.
#[derive(Debug, Clone)]
enum Json {
    Text(String),
    Number(i64),
    Bool(bool),
    List(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn render(&self, out: &mut String) {
        match self {
            Json::Text(s) => crate::ttlv::json::write_string(s, out),
            Json::Number(n) => out.push_str(&n.to_string()),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.render(out);
                }
                out.push(']');
            }
            Json::Object(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    Json::Text(k.clone()).render(out);
                    out.push(':');
                    v.render(out);
                }
                out.push('}');
            }
        }
    }

    fn text(&self) -> String {
        match self {
            Json::Text(s) => s.clone(),
            Json::Number(n) => n.to_string(),
            Json::Bool(b) => b.to_string(),
            other => {
                let mut s = String::new();
                other.render(&mut s);
                s
            }
        }
    }
}

fn print_output(fields: &[(String, Json)], json: bool) {
    let mut out = String::new();
    if json {
        Json::Object(fields.to_vec()).render(&mut out);
        out.push('\n');
    } else {
        for (k, v) in fields {
            match v {
                // One line per element, so that `grep` and `cut` work on lists.
                Json::List(items) => items
                    .iter()
                    .for_each(|i| out.push_str(&format!("{k}: {}\n", i.text()))),
                v => out.push_str(&format!("{k}: {}\n", v.text())),
            }
        }
    }
    let _ = std::io::stdout().write_all(out.as_bytes());
}

fn hex(b: &[u8]) -> String {
    crate::ttlv::hex::encode(b)
}

fn unhex(name: &str, s: &str) -> Result<Vec<u8>, Problem> {
    crate::ttlv::hex::decode(s)
        .ok_or_else(|| Problem::Usage(format!("--{name} {s:?} is not hexadecimal")))
}

fn text_item(tag: Tag, s: &str) -> Item {
    Item::new(tag, Value::TextString(s.to_string()))
}

fn enumeration(tag: Tag, v: u32) -> Item {
    Item::new(tag, Value::Enumeration(v))
}

/// A name as users may type it: case, '-', '_' and spaces do not matter.
fn fold(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The value of enumeration `table` a user typed: case, '-', '_' and spaces do not matter
/// ("p-256" is P_256, "cessation-of-operation" is CessationOfOperation).
fn enum_value(table: &str, option: &str, typed: &str) -> Result<u32, Problem> {
    let t =
        tables::enum_by_name(table).ok_or_else(|| Problem::Failed(format!("no table {table}")))?;
    let want = fold(typed);
    t.values
        .iter()
        .find(|v| fold(v.name) == want)
        .map(|v| v.value)
        .ok_or_else(|| {
            let names: Vec<&str> = t.values.iter().map(|v| v.name).collect();
            Problem::Usage(format!(
                "--{option} {typed:?}: expected one of {}",
                names.join(", ")
            ))
        })
}

fn uid_argument(args: &Args) -> Result<String, Problem> {
    match args
        .positionals
        .get(1)
        .map(String::as_str)
        .or(args.value("uid"))
    {
        Some(u) => Ok(u.to_string()),
        None => usage("the command needs the object's Unique Identifier"),
    }
}

fn int_option(args: &Args, name: &str) -> Result<Option<i32>, Problem> {
    match args.value(name) {
        None => Ok(None),
        Some(v) => v
            .parse::<i32>()
            .ok()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| Problem::Usage(format!("--{name} {v:?} is not a number"))),
    }
}

fn read_file(option: &str, args: &Args) -> Result<Vec<u8>, Problem> {
    let path = args
        .value(option)
        .ok_or_else(|| Problem::Usage(format!("--{option} FILE is required")))?;
    std::fs::read(path).map_err(|e| Problem::Failed(format!("{path}: {e}")))
}

fn write_output(path: &str, bytes: &[u8]) -> Result<(), Problem> {
    let result = if path == "-" {
        let mut out = std::io::stdout();
        out.write_all(bytes).and_then(|()| out.flush())
    } else {
        std::fs::write(Path::new(path), bytes)
    };
    result.map_err(|e| Problem::Failed(format!("{path}: {e}")))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A KMIP 1.x Attribute.
fn attribute(name: &str, mut value: Item) -> Item {
    value.tag = Tag::ATTRIBUTE_VALUE;
    Item::structure(
        Tag::ATTRIBUTE,
        vec![text_item(Tag::ATTRIBUTE_NAME, name), value],
    )
}

fn name_attribute(name: &str) -> Item {
    attribute(
        "Name",
        Item::structure(
            Tag::ATTRIBUTE_VALUE,
            vec![
                text_item(Tag::NAME_VALUE, name),
                enumeration(Tag::NAME_TYPE, 1), // Uninterpreted Text String
            ],
        ),
    )
}

fn usage_mask(list: &str) -> Result<i32, Problem> {
    let table = tables::mask_by_name("CryptographicUsageMask")
        .ok_or_else(|| Problem::Failed("no usage mask table".into()))?;
    let mut mask = 0u32;
    for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let bit = table
            .values
            .iter()
            .find(|v| fold(v.name) == fold(word))
            .ok_or_else(|| Problem::Usage(format!("--usage: unknown usage {word:?}")))?;
        mask |= bit.value;
    }
    Ok(mask as i32)
}

/// The attributes every object-making command takes: --name, --usage (or `default_usage`),
/// --attr NAME=TEXT, --activate.
fn common_attributes(args: &Args, default_usage: Option<i32>) -> Result<Vec<Item>, Problem> {
    let mut out = Vec::new();
    if let Some(n) = args.value("name") {
        out.push(name_attribute(n));
    }
    let mask = match args.value("usage") {
        Some(list) => Some(usage_mask(list)?),
        None => default_usage,
    };
    if let Some(m) = mask {
        out.push(attribute(
            "Cryptographic Usage Mask",
            Item::new(Tag::ATTRIBUTE_VALUE, Value::Integer(m)),
        ));
    }
    for a in args.values("attr") {
        let (name, value) = a
            .split_once('=')
            .ok_or_else(|| Problem::Usage(format!("--attr {a:?} is not NAME=TEXT")))?;
        out.push(attribute(
            name.trim(),
            Item::new(Tag::ATTRIBUTE_VALUE, Value::TextString(value.to_string())),
        ));
    }
    if args.has("activate") {
        out.push(attribute(
            "Activation Date",
            Item::new(Tag::ATTRIBUTE_VALUE, Value::DateTime(now())),
        ));
    }
    Ok(out)
}

const ENCRYPT: i32 = 0x04;
const DECRYPT: i32 = 0x08;
const SIGN: i32 = 0x01;
const VERIFY: i32 = 0x02;
const MAC_GENERATE: i32 = 0x80;
const MAC_VERIFY: i32 = 0x100;

/// The response payload of a successful answer, or the server's failure in words.
fn response_payload(response: &Item, command: &str) -> Result<Item, String> {
    let item = response
        .child(Tag::BATCH_ITEM)
        .ok_or("the response has no batch item")?;
    let status = match item.child(Tag::RESULT_STATUS).map(|v| &v.value) {
        Some(Value::Enumeration(s)) => *s,
        _ => return Err("the response has no Result Status".into()),
    };
    if status == 0 {
        return Ok(item
            .child(Tag::RESPONSE_PAYLOAD)
            .cloned()
            .unwrap_or_else(|| Item::structure(Tag::RESPONSE_PAYLOAD, vec![])));
    }
    let name = |table: &str, v: u32| {
        tables::enum_by_name(table)
            .and_then(|t| t.by_value(v))
            .map_or_else(|| format!("{v:#x}"), |n| n.name.to_string())
    };
    let reason = match item.child(Tag::RESULT_REASON).map(|v| &v.value) {
        Some(Value::Enumeration(r)) => name("ResultReason", *r),
        _ => "no reason given".into(),
    };
    let message = match item.child(Tag::RESULT_MESSAGE).map(|v| &v.value) {
        Some(Value::TextString(m)) => format!(": {m}"),
        _ => String::new(),
    };
    Err(format!(
        "{command} failed ({}): {reason}{message}",
        name("ResultStatus", status)
    ))
}

fn payload_uid(p: &Item) -> Json {
    match p.child(Tag::UNIQUE_IDENTIFIER).map(|v| &v.value) {
        Some(Value::TextString(s)) => Json::Text(s.clone()),
        _ => Json::Text(String::new()),
    }
}

fn report_uid(p: &Item, _: &Args) -> Result<Output, Problem> {
    Ok(Output::of(vec![("unique_identifier", payload_uid(p))]))
}

/// Builds the request for `command`.
fn build(command: &str, args: &Args) -> Result<Request, Problem> {
    use crate::ttlv::tables::enums::Operation as Op;
    let op = |o: Op| o.to_u32();
    Ok(match command {
        "discover-versions" => Request {
            operation: op(Op::DiscoverVersions),
            payload: vec![],
            report: report_versions,
        },
        "query" => Request {
            operation: op(Op::Query),
            // Query Operations, Objects and Server Information: the functions every KMIP
            // 1.x server knows.
            payload: [1u32, 2, 3]
                .iter()
                .map(|f| enumeration(Tag::QUERY_FUNCTION, *f))
                .collect(),
            report: report_query,
        },
        "create" => build_create(args)?,
        "create-key-pair" => build_create_key_pair(args)?,
        "register" => build_register(args)?,
        "get" => {
            let mut payload = vec![text_item(Tag::UNIQUE_IDENTIFIER, &uid_argument(args)?)];
            if let Some(f) = args.value("format") {
                payload.push(enumeration(
                    Tag::KEY_FORMAT_TYPE,
                    enum_value("KeyFormatType", "format", f)?,
                ));
            }
            Request {
                operation: op(Op::Get),
                payload,
                report: report_get,
            }
        }
        "get-attributes" => {
            let mut payload = vec![text_item(Tag::UNIQUE_IDENTIFIER, &uid_argument(args)?)];
            payload.extend(
                args.values("attribute")
                    .into_iter()
                    .map(|n| text_item(Tag::ATTRIBUTE_NAME, n)),
            );
            Request {
                operation: op(Op::GetAttributes),
                payload,
                report: report_attributes,
            }
        }
        "locate" => build_locate(args)?,
        "activate" | "destroy" => Request {
            operation: op(if command == "activate" {
                Op::Activate
            } else {
                Op::Destroy
            }),
            payload: vec![text_item(Tag::UNIQUE_IDENTIFIER, &uid_argument(args)?)],
            report: report_uid,
        },
        "revoke" => {
            let reason = enum_value(
                "RevocationReasonCode",
                "reason",
                args.value("reason").unwrap_or("cessation-of-operation"),
            )?;
            let mut revocation = vec![enumeration(Tag::REVOCATION_REASON_CODE, reason)];
            if let Some(m) = args.value("message") {
                revocation.push(text_item(Tag::REVOCATION_MESSAGE, m));
            }
            let mut payload = vec![
                text_item(Tag::UNIQUE_IDENTIFIER, &uid_argument(args)?),
                Item::structure(Tag::REVOCATION_REASON, revocation),
            ];
            // Key Compromise and CA Compromise need the date the compromise happened.
            if matches!(reason, 2 | 3) {
                payload.push(Item::new(
                    Tag::COMPROMISE_OCCURRENCE_DATE,
                    Value::DateTime(now()),
                ));
            }
            Request {
                operation: op(Op::Revoke),
                payload,
                report: report_uid,
            }
        }
        "encrypt" | "decrypt" => build_crypt(command == "encrypt", args)?,
        "sign" => {
            let mut payload = vec![text_item(Tag::UNIQUE_IDENTIFIER, &uid_argument(args)?)];
            payload.extend(signature_parameters(args)?);
            payload.push(Item::new(
                Tag::DATA,
                Value::ByteString(read_file("in", args)?),
            ));
            Request {
                operation: op(Op::Sign),
                payload,
                report: report_sign,
            }
        }
        "verify" => {
            let mut payload = vec![text_item(Tag::UNIQUE_IDENTIFIER, &uid_argument(args)?)];
            payload.extend(signature_parameters(args)?);
            payload.push(Item::new(
                Tag::DATA,
                Value::ByteString(read_file("in", args)?),
            ));
            payload.push(Item::new(
                Tag::SIGNATURE_DATA,
                Value::ByteString(read_file("signature", args)?),
            ));
            Request {
                operation: op(Op::SignatureVerify),
                payload,
                report: report_verify,
            }
        }
        "rng" => {
            let n = int_option(args, "length")?
                .filter(|n| *n > 0)
                .ok_or_else(|| Problem::Usage("--length BYTES is required".into()))?;
            Request {
                operation: op(Op::RNGRetrieve),
                payload: vec![Item::new(Tag::DATA_LENGTH, Value::Integer(n))],
                report: report_rng,
            }
        }
        other => return usage(format!("unknown command {other:?}")),
    })
}

fn build_create(args: &Args) -> Result<Request, Problem> {
    use crate::ttlv::tables::enums::{CryptographicAlgorithm as A, ObjectType, Operation};
    let alg = enum_value(
        "CryptographicAlgorithm",
        "alg",
        args.value("alg").unwrap_or("AES"),
    )?;
    let length = int_option(args, "length")?.unwrap_or(256);
    let default_usage =
        if alg == A::AES.to_u32() || alg == A::DES3.to_u32() || alg == A::DES.to_u32() {
            ENCRYPT | DECRYPT
        } else {
            MAC_GENERATE | MAC_VERIFY
        };
    let mut attrs = vec![
        attribute(
            "Cryptographic Algorithm",
            enumeration(Tag::ATTRIBUTE_VALUE, alg),
        ),
        attribute(
            "Cryptographic Length",
            Item::new(Tag::ATTRIBUTE_VALUE, Value::Integer(length)),
        ),
    ];
    attrs.extend(common_attributes(args, Some(default_usage))?);
    Ok(Request {
        operation: Operation::Create.to_u32(),
        payload: vec![
            enumeration(Tag::OBJECT_TYPE, ObjectType::SymmetricKey.to_u32()),
            Item::structure(Tag::TEMPLATE_ATTRIBUTE, attrs),
        ],
        report: report_uid,
    })
}

fn build_create_key_pair(args: &Args) -> Result<Request, Problem> {
    use crate::ttlv::tables::enums::Operation;
    let alg_name = args.value("alg").unwrap_or("RSA");
    let alg = enum_value("CryptographicAlgorithm", "alg", alg_name)?;
    let mut common = vec![attribute(
        "Cryptographic Algorithm",
        enumeration(Tag::ATTRIBUTE_VALUE, alg),
    )];
    match (args.value("curve"), int_option(args, "length")?) {
        (Some(curve), _) => common.push(attribute(
            "Cryptographic Domain Parameters",
            Item::structure(
                Tag::ATTRIBUTE_VALUE,
                vec![enumeration(
                    Tag::RECOMMENDED_CURVE,
                    enum_value("RecommendedCurve", "curve", curve)?,
                )],
            ),
        )),
        (None, length) => common.push(attribute(
            "Cryptographic Length",
            Item::new(Tag::ATTRIBUTE_VALUE, Value::Integer(length.unwrap_or(2048))),
        )),
    }
    let named = |suffix: &str| -> Result<Vec<Item>, Problem> {
        let mut attrs = Vec::new();
        if let Some(n) = args.value("name") {
            attrs.push(name_attribute(&format!("{n}{suffix}")));
        }
        Ok(attrs)
    };
    let mut private = named("")?;
    let mut public = named("-public")?;
    let mask = args.value("usage").map(usage_mask).transpose()?;
    private.push(attribute(
        "Cryptographic Usage Mask",
        Item::new(Tag::ATTRIBUTE_VALUE, Value::Integer(mask.unwrap_or(SIGN))),
    ));
    public.push(attribute(
        "Cryptographic Usage Mask",
        Item::new(Tag::ATTRIBUTE_VALUE, Value::Integer(mask.unwrap_or(VERIFY))),
    ));
    // --attr and --activate apply to both halves.
    let rest: Vec<Item> = common_attributes(args, None)?
        .into_iter()
        .filter(|a| !matches!(a.child(Tag::ATTRIBUTE_NAME).map(|n| &n.value), Some(Value::TextString(n)) if n == "Name"))
        .collect();
    common.extend(rest);
    Ok(Request {
        operation: Operation::CreateKeyPair.to_u32(),
        payload: vec![
            Item::structure(Tag::COMMON_TEMPLATE_ATTRIBUTE, common),
            Item::structure(Tag::PRIVATE_KEY_TEMPLATE_ATTRIBUTE, private),
            Item::structure(Tag::PUBLIC_KEY_TEMPLATE_ATTRIBUTE, public),
        ],
        report: |p, _| {
            let uid = |tag| match p.child(tag).map(|v| &v.value) {
                Some(Value::TextString(s)) => Json::Text(s.clone()),
                _ => Json::Text(String::new()),
            };
            Ok(Output::of(vec![
                ("private_key", uid(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER)),
                ("public_key", uid(Tag::PUBLIC_KEY_UNIQUE_IDENTIFIER)),
            ]))
        },
    })
}

/// A Key Block holding `material` in `format`.
fn key_block(format: u32, material: Vec<u8>, alg: Option<u32>, bits: Option<i32>) -> Item {
    let mut children = vec![
        enumeration(Tag::KEY_FORMAT_TYPE, format),
        Item::structure(
            Tag::KEY_VALUE,
            vec![Item::new(Tag::KEY_MATERIAL, Value::ByteString(material))],
        ),
    ];
    if let Some(a) = alg {
        children.push(enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, a));
    }
    if let Some(b) = bits {
        children.push(Item::new(Tag::CRYPTOGRAPHIC_LENGTH, Value::Integer(b)));
    }
    Item::structure(Tag::KEY_BLOCK, children)
}

fn build_register(args: &Args) -> Result<Request, Problem> {
    use crate::ttlv::tables::enums::{
        CertificateType, KeyFormatType as F, ObjectType as T, Operation, SecretDataType,
    };
    let kind = args
        .value("type")
        .ok_or_else(|| Problem::Usage("--type TYPE is required".into()))?;
    let bytes = read_file("file", args)?;
    let pem_error = |what: &str| Problem::Failed(format!("{what}: cannot read the file"));
    let (object_type, object, default_usage) = match kind {
        "symmetric-key" => {
            let alg = enum_value(
                "CryptographicAlgorithm",
                "alg",
                args.value("alg").unwrap_or("AES"),
            )?;
            let bits = bytes.len() as i32 * 8;
            (
                T::SymmetricKey,
                Item::structure(
                    Tag::SYMMETRIC_KEY,
                    vec![key_block(F::Raw.to_u32(), bytes, Some(alg), Some(bits))],
                ),
                Some(ENCRYPT | DECRYPT),
            )
        }
        "private-key" => {
            let (format, der) = if bytes.starts_with(b"-----") {
                match PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| pem_error("PEM"))? {
                    PrivateKeyDer::Pkcs8(k) => (F::PKCS_8, k.secret_pkcs8_der().to_vec()),
                    PrivateKeyDer::Pkcs1(k) => (F::PKCS_1, k.secret_pkcs1_der().to_vec()),
                    PrivateKeyDer::Sec1(k) => (F::ECPrivateKey, k.secret_sec1_der().to_vec()),
                    _ => return Err(pem_error("PEM private key of an unknown kind")),
                }
            } else {
                (F::PKCS_8, bytes)
            };
            (
                T::PrivateKey,
                Item::structure(
                    Tag::PRIVATE_KEY,
                    vec![key_block(format.to_u32(), der, None, None)],
                ),
                Some(SIGN),
            )
        }
        "public-key" => {
            let (format, der) = if bytes.starts_with(b"-----BEGIN RSA PUBLIC KEY") {
                let text = String::from_utf8_lossy(&bytes);
                let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
                (
                    F::PKCS_1,
                    crate::store::key::unbase64(&body).ok_or_else(|| pem_error("PEM"))?,
                )
            } else if bytes.starts_with(b"-----") {
                let k = SubjectPublicKeyInfoDer::from_pem_slice(&bytes)
                    .map_err(|_| pem_error("PEM"))?;
                (F::X_509, k.as_ref().to_vec())
            } else {
                (F::X_509, bytes)
            };
            (
                T::PublicKey,
                Item::structure(
                    Tag::PUBLIC_KEY,
                    vec![key_block(format.to_u32(), der, None, None)],
                ),
                Some(VERIFY),
            )
        }
        "certificate" => {
            let der = if bytes.starts_with(b"-----") {
                CertificateDer::from_pem_slice(&bytes)
                    .map_err(|_| pem_error("PEM certificate"))?
                    .as_ref()
                    .to_vec()
            } else {
                bytes
            };
            (
                T::Certificate,
                Item::structure(
                    Tag::CERTIFICATE,
                    vec![
                        enumeration(Tag::CERTIFICATE_TYPE, CertificateType::X_509.to_u32()),
                        Item::new(Tag::CERTIFICATE_VALUE, Value::ByteString(der)),
                    ],
                ),
                Some(VERIFY),
            )
        }
        "secret-data" => {
            let t = match args.value("secret-type").unwrap_or("password") {
                "password" => SecretDataType::Password,
                "seed" => SecretDataType::Seed,
                other => return usage(format!("--secret-type {other:?}: password or seed")),
            };
            (
                T::SecretData,
                Item::structure(
                    Tag::SECRET_DATA,
                    vec![
                        enumeration(Tag::SECRET_DATA_TYPE, t.to_u32()),
                        key_block(F::Opaque.to_u32(), bytes, None, None),
                    ],
                ),
                Some(0x200), // Derive Key
            )
        }
        "opaque" => (
            T::OpaqueObject,
            Item::structure(
                Tag::OPAQUE_OBJECT,
                vec![
                    // The first vendor-defined Opaque Data Type: KMIP 1.x defines none.
                    enumeration(Tag::OPAQUE_DATA_TYPE, 0x8000_0000),
                    Item::new(Tag::OPAQUE_DATA_VALUE, Value::ByteString(bytes)),
                ],
            ),
            None,
        ),
        other => {
            return usage(format!(
                "--type {other:?}: expected symmetric-key, private-key, public-key, certificate, \
                 secret-data or opaque"
            ));
        }
    };
    let attrs = common_attributes(args, default_usage)?;
    Ok(Request {
        operation: Operation::Register.to_u32(),
        payload: vec![
            enumeration(Tag::OBJECT_TYPE, object_type.to_u32()),
            Item::structure(Tag::TEMPLATE_ATTRIBUTE, attrs),
            object,
        ],
        report: report_uid,
    })
}

fn build_locate(args: &Args) -> Result<Request, Problem> {
    use crate::ttlv::tables::enums::Operation;
    let mut payload = Vec::new();
    if let Some(n) = int_option(args, "max")? {
        payload.push(Item::new(Tag::MAXIMUM_ITEMS, Value::Integer(n)));
    }
    if let Some(n) = args.value("name") {
        payload.push(name_attribute(n));
    }
    if let Some(t) = args.value("type") {
        payload.push(attribute(
            "Object Type",
            enumeration(Tag::ATTRIBUTE_VALUE, enum_value("ObjectType", "type", t)?),
        ));
    }
    if let Some(a) = args.value("alg") {
        payload.push(attribute(
            "Cryptographic Algorithm",
            enumeration(
                Tag::ATTRIBUTE_VALUE,
                enum_value("CryptographicAlgorithm", "alg", a)?,
            ),
        ));
    }
    if let Some(s) = args.value("state") {
        payload.push(attribute(
            "State",
            enumeration(Tag::ATTRIBUTE_VALUE, enum_value("State", "state", s)?),
        ));
    }
    for a in args.values("attr") {
        let (name, value) = a
            .split_once('=')
            .ok_or_else(|| Problem::Usage(format!("--attr {a:?} is not NAME=TEXT")))?;
        payload.push(attribute(
            name.trim(),
            Item::new(Tag::ATTRIBUTE_VALUE, Value::TextString(value.to_string())),
        ));
    }
    Ok(Request {
        operation: Operation::Locate.to_u32(),
        payload,
        report: |p, _| {
            let uids = p
                .children_with(Tag::UNIQUE_IDENTIFIER)
                .filter_map(|u| match &u.value {
                    Value::TextString(s) => Some(Json::Text(s.clone())),
                    _ => None,
                })
                .collect();
            Ok(Output::of(vec![("unique_identifier", Json::List(uids))]))
        },
    })
}

fn cryptographic_parameters(args: &Args) -> Result<Option<Item>, Problem> {
    let mut params = Vec::new();
    if let Some(m) = args.value("mode") {
        params.push(enumeration(
            Tag::BLOCK_CIPHER_MODE,
            enum_value("BlockCipherMode", "mode", m)?,
        ));
    }
    if let Some(p) = args.value("padding") {
        let typed = match p {
            "pkcs5" | "pkcs7" => "PKCS5",
            "pkcs1v15" | "pkcs1" => "PKCS1v1_5",
            "none" => "None",
            other => other,
        };
        params.push(enumeration(
            Tag::PADDING_METHOD,
            enum_value("PaddingMethod", "padding", typed)?,
        ));
    }
    if let Some(h) = args.value("hash") {
        let typed = h.replace("sha", "SHA_").replace("SHA_-", "SHA_");
        params.push(enumeration(
            Tag::HASHING_ALGORITHM,
            enum_value("HashingAlgorithm", "hash", &typed)?,
        ));
    }
    if let Some(t) = int_option(args, "tag-length")? {
        params.push(Item::new(Tag::TAG_LENGTH, Value::Integer(t)));
    }
    Ok((!params.is_empty()).then(|| Item::structure(Tag::CRYPTOGRAPHIC_PARAMETERS, params)))
}

/// Sign and verify hash with SHA-256 unless told otherwise (a server needs some hash).
fn signature_parameters(args: &Args) -> Result<Vec<Item>, Problem> {
    let mut params = cryptographic_parameters(args)?;
    if args.value("hash").is_none() {
        let sha256 = enumeration(
            Tag::HASHING_ALGORITHM,
            tables::enums::HashingAlgorithm::SHA_256.to_u32(),
        );
        match &mut params {
            Some(Item {
                value: Value::Structure(children),
                ..
            }) => children.push(sha256),
            _ => params = Some(Item::structure(Tag::CRYPTOGRAPHIC_PARAMETERS, vec![sha256])),
        }
    }
    Ok(params.into_iter().collect())
}

fn build_crypt(encrypt: bool, args: &Args) -> Result<Request, Problem> {
    use crate::ttlv::tables::enums::Operation;
    let mut payload = vec![text_item(Tag::UNIQUE_IDENTIFIER, &uid_argument(args)?)];
    let mut params = cryptographic_parameters(args)?;
    let iv = args.value("iv").map(|v| unhex("iv", v)).transpose()?;
    if encrypt
        && iv.is_none()
        && !args
            .value("mode")
            .is_some_and(|m| m.eq_ignore_ascii_case("ecb"))
    {
        // Let the server choose the IV (and report it), the safe default.
        let p =
            params.get_or_insert_with(|| Item::structure(Tag::CRYPTOGRAPHIC_PARAMETERS, vec![]));
        if let Value::Structure(children) = &mut p.value {
            children.push(Item::new(Tag::RANDOM_IV, Value::Boolean(true)));
        }
    }
    payload.extend(params);
    payload.push(Item::new(
        Tag::DATA,
        Value::ByteString(read_file("in", args)?),
    ));
    if let Some(iv) = iv {
        payload.push(Item::new(Tag::IV_COUNTER_NONCE, Value::ByteString(iv)));
    }
    if let Some(aad) = args.value("aad") {
        payload.push(Item::new(
            Tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA,
            Value::ByteString(unhex("aad", aad)?),
        ));
    }
    if !encrypt && let Some(tag) = args.value("tag") {
        payload.push(Item::new(
            Tag::AUTHENTICATED_ENCRYPTION_TAG,
            Value::ByteString(unhex("tag", tag)?),
        ));
    }
    if args.value("out").is_none() {
        return usage("--out FILE is required ('-' for standard output)");
    }
    Ok(Request {
        operation: if encrypt {
            Operation::Encrypt.to_u32()
        } else {
            Operation::Decrypt.to_u32()
        },
        payload,
        report: |p, args| {
            let data = match p.child(Tag::DATA).map(|v| &v.value) {
                Some(Value::ByteString(b)) => b.clone(),
                _ => return Err(Problem::Failed("the response has no Data".into())),
            };
            let out = args.value("out").unwrap_or("-");
            write_output(out, &data)?;
            let mut fields = vec![
                ("unique_identifier", payload_uid(p)),
                ("bytes", Json::Number(data.len() as i64)),
            ];
            if let Some(Value::ByteString(iv)) = p.child(Tag::IV_COUNTER_NONCE).map(|v| &v.value) {
                fields.push(("iv", Json::Text(hex(iv))));
            }
            if let Some(Value::ByteString(t)) =
                p.child(Tag::AUTHENTICATED_ENCRYPTION_TAG).map(|v| &v.value)
            {
                fields.push(("tag", Json::Text(hex(t))));
            }
            if out == "-" {
                return Ok(Output {
                    fields: vec![],
                    status: 0,
                });
            }
            Ok(Output::of(fields))
        },
    })
}

fn report_sign(p: &Item, args: &Args) -> Result<Output, Problem> {
    let sig = match p.child(Tag::SIGNATURE_DATA).map(|v| &v.value) {
        Some(Value::ByteString(b)) => b.clone(),
        _ => return Err(Problem::Failed("the response has no Signature Data".into())),
    };
    match args.value("out") {
        Some(out) => {
            write_output(out, &sig)?;
            Ok(Output::of(vec![
                ("unique_identifier", payload_uid(p)),
                ("bytes", Json::Number(sig.len() as i64)),
            ]))
        }
        None => Ok(Output::of(vec![
            ("unique_identifier", payload_uid(p)),
            ("signature", Json::Text(hex(&sig))),
        ])),
    }
}

fn report_verify(p: &Item, _: &Args) -> Result<Output, Problem> {
    let valid = p.child(Tag::VALIDITY_INDICATOR).map(|v| &v.value)
        == Some(&Value::Enumeration(
            tables::enums::ValidityIndicator::Valid.to_u32(),
        ));
    let mut out = Output::of(vec![
        ("unique_identifier", payload_uid(p)),
        ("valid", Json::Bool(valid)),
    ]);
    out.status = i32::from(!valid);
    Ok(out)
}

fn report_rng(p: &Item, args: &Args) -> Result<Output, Problem> {
    let data = match p.child(Tag::DATA).map(|v| &v.value) {
        Some(Value::ByteString(b)) => b.clone(),
        _ => return Err(Problem::Failed("the response has no Data".into())),
    };
    match args.value("out") {
        Some(out) => {
            write_output(out, &data)?;
            Ok(Output::of(vec![("bytes", Json::Number(data.len() as i64))]))
        }
        None => Ok(Output::of(vec![("data", Json::Text(hex(&data)))])),
    }
}

fn report_versions(p: &Item, _: &Args) -> Result<Output, Problem> {
    let versions = p
        .children_with(Tag::PROTOCOL_VERSION)
        .map(|v| {
            let part = |t| match v.child(t).map(|i| &i.value) {
                Some(Value::Integer(n)) => *n,
                _ => 0,
            };
            Json::Text(format!(
                "{}.{}",
                part(Tag::PROTOCOL_VERSION_MAJOR),
                part(Tag::PROTOCOL_VERSION_MINOR)
            ))
        })
        .collect();
    Ok(Output::of(vec![("version", Json::List(versions))]))
}

fn report_query(p: &Item, _: &Args) -> Result<Output, Problem> {
    let names = |tag: Tag| -> Json {
        Json::List(
            p.children_with(tag)
                .map(|i| Json::Text(value_text(tag, &i.value)))
                .collect(),
        )
    };
    let mut fields = vec![
        ("operation", names(Tag::OPERATION)),
        ("object_type", names(Tag::OBJECT_TYPE)),
    ];
    if let Some(Value::TextString(v)) = p.child(Tag::VENDOR_IDENTIFICATION).map(|v| &v.value) {
        fields.push(("vendor", Json::Text(v.clone())));
    }
    Ok(Output::of(fields))
}

/// A value as text: enumerations and masks by name, dates in ISO 8601, bytes in hex,
/// structures as `{Field=value, ...}`.
fn value_text(tag: Tag, v: &Value) -> String {
    let info = tables::tag_info(tag);
    match v {
        Value::Enumeration(e) => match info.map(|i| i.kind) {
            Some(TagKind::Enumeration(id)) => id
                .table()
                .by_value(*e)
                .map_or_else(|| format!("{e:#x}"), |n| n.name.to_string()),
            _ => format!("{e:#x}"),
        },
        Value::Integer(n) => match info.map(|i| i.kind) {
            Some(TagKind::Mask(id)) => tables::mask_names(id.table(), *n as u32)
                .map_or_else(|| n.to_string(), |names| names.join(" ")),
            _ => n.to_string(),
        },
        Value::LongInteger(n) => n.to_string(),
        Value::Interval(n) => n.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::TextString(s) => s.clone(),
        Value::ByteString(b) | Value::BigInteger(b) => hex(b),
        Value::DateTime(t) => crate::ttlv::format_iso8601(*t, None),
        Value::Structure(children) => {
            let parts: Vec<String> = children
                .iter()
                .map(|c| {
                    let name = tables::tag_info(c.tag).map_or("?", |i| i.name);
                    format!("{name}={}", value_text(c.tag, &c.value))
                })
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        other => format!("{other:?}"),
    }
}

fn report_attributes(p: &Item, _: &Args) -> Result<Output, Problem> {
    let mut fields: Vec<(String, Json)> = Vec::new();
    for a in p.children_with(Tag::ATTRIBUTE) {
        let Some(Value::TextString(name)) = a.child(Tag::ATTRIBUTE_NAME).map(|n| &n.value) else {
            continue;
        };
        let Some(value) = a.child(Tag::ATTRIBUTE_VALUE) else {
            continue;
        };
        // The Attribute Value's meaning comes from the attribute's name.
        let tag = tables::tag_by_spec_name(name).map_or(Tag::ATTRIBUTE_VALUE, |i| i.tag);
        let text = Json::Text(value_text(tag, &value.value));
        match fields.iter_mut().find(|(k, _)| k == name) {
            Some((_, Json::List(list))) => list.push(text),
            Some((_, existing)) => {
                let first = existing.clone();
                *existing = Json::List(vec![first, text]);
            }
            None => fields.push((name.clone(), text)),
        }
    }
    if !fields.iter().any(|(k, _)| k == "Unique Identifier") {
        fields.insert(0, ("Unique Identifier".into(), payload_uid(p)));
    }
    Ok(Output { fields, status: 0 })
}

fn report_get(p: &Item, args: &Args) -> Result<Output, Problem> {
    let object_type = match p.child(Tag::OBJECT_TYPE).map(|v| &v.value) {
        Some(v) => value_text(Tag::OBJECT_TYPE, v),
        None => String::new(),
    };
    let object = p
        .children()
        .iter()
        .find(|c| !matches!(c.tag, Tag::OBJECT_TYPE | Tag::UNIQUE_IDENTIFIER))
        .ok_or_else(|| Problem::Failed("the response has no object".into()))?;
    let bytes_of = |i: Option<&Item>| match i.map(|v| &v.value) {
        Some(Value::ByteString(b)) => Some(b.clone()),
        _ => None,
    };
    let (format, value, structure) = if let Some(block) = object.child(Tag::KEY_BLOCK) {
        let format = block
            .child(Tag::KEY_FORMAT_TYPE)
            .map(|f| value_text(Tag::KEY_FORMAT_TYPE, &f.value))
            .unwrap_or_default();
        let key_value = block.child(Tag::KEY_VALUE);
        let bytes = bytes_of(key_value)
            .or_else(|| bytes_of(key_value.and_then(|v| v.child(Tag::KEY_MATERIAL))));
        let structure = key_value
            .and_then(|v| v.child(Tag::KEY_MATERIAL))
            .filter(|m| matches!(m.value, Value::Structure(_)))
            .map(|m| value_text(Tag::KEY_MATERIAL, &m.value));
        (format, bytes, structure)
    } else if let Some(cert) = bytes_of(object.child(Tag::CERTIFICATE_VALUE)) {
        ("X_509".to_string(), Some(cert), None)
    } else if let Some(data) = bytes_of(object.child(Tag::OPAQUE_DATA_VALUE)) {
        ("Opaque".to_string(), Some(data), None)
    } else {
        (
            String::new(),
            None,
            Some(value_text(object.tag, &object.value)),
        )
    };
    let mut fields = vec![
        ("unique_identifier", payload_uid(p)),
        ("object_type", Json::Text(object_type.clone())),
        ("format", Json::Text(format.clone())),
    ];
    match (value, structure) {
        (Some(bytes), _) => {
            let bytes = if args.has("pem") {
                pem(&object_type, &format, &bytes)?.into_bytes()
            } else {
                bytes
            };
            match args.value("out") {
                Some("-") => {
                    write_output("-", &bytes)?;
                    return Ok(Output {
                        fields: vec![],
                        status: 0,
                    });
                }
                Some(path) => {
                    write_output(path, &bytes)?;
                    fields.push(("bytes", Json::Number(bytes.len() as i64)));
                }
                None if args.has("pem") => {
                    fields.push(("pem", Json::Text(String::from_utf8_lossy(&bytes).into())));
                }
                None => fields.push(("value", Json::Text(hex(&bytes)))),
            }
        }
        (None, Some(s)) => fields.push(("value", Json::Text(s))),
        (None, None) => {}
    }
    Ok(Output::of(fields))
}

/// `bytes` as PEM, with the label its object type and format call for.
fn pem(object_type: &str, format: &str, bytes: &[u8]) -> Result<String, Problem> {
    let label = match (object_type, format) {
        ("Certificate", _) => "CERTIFICATE",
        ("PrivateKey", "PKCS_8") => "PRIVATE KEY",
        ("PrivateKey", "PKCS_1") => "RSA PRIVATE KEY",
        ("PrivateKey", "ECPrivateKey") => "EC PRIVATE KEY",
        ("PublicKey", "X_509") => "PUBLIC KEY",
        ("PublicKey", "PKCS_1") => "RSA PUBLIC KEY",
        _ => {
            return Err(Problem::Usage(format!(
                "--pem: no PEM form for {object_type} in {format}"
            )));
        }
    };
    let body = crate::store::key::base64(bytes);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_enumeration_names_fold_case_and_punctuation() {
        assert_eq!(
            enum_value("RecommendedCurve", "curve", "p-256").ok(),
            enum_value("RecommendedCurve", "curve", "P_256").ok()
        );
        assert!(enum_value("CryptographicAlgorithm", "alg", "aes").is_ok());
        assert!(matches!(
            enum_value("CryptographicAlgorithm", "alg", "rot13"),
            Err(Problem::Usage(_))
        ));
        assert_eq!(usage_mask("encrypt, decrypt").ok(), Some(ENCRYPT | DECRYPT));
    }

    #[test]
    fn json_output_escapes_text() {
        let mut out = String::new();
        Json::Object(vec![("a\"b".into(), Json::Text("line\nnext\u{1}".into()))]).render(&mut out);
        assert_eq!(out, r#"{"a\"b":"line\nnext\u0001"}"#);
        assert_eq!(
            crate::store::key::unbase64(&crate::store::key::base64(b"Ma")),
            Some(b"Ma".to_vec())
        );
    }
}
