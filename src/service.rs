//! The request path: one function from (request bytes, encoding, client identity, time) to
//! response bytes. No sockets here; the server calls it, and so can tests and fuzzers.

use std::sync::Arc;

use crate::config::Config;
use crate::kmip::{self, Error, RequestMessage, ResponseBatchItem, ResponseMessage};
use crate::ops::vault::{HsmOptions, Vault};
use crate::ops::{self, Context};
use crate::store::Store;
use crate::token::Token;
use crate::token::soft::SoftToken;
use crate::ttlv::tables::enums::{BatchErrorContinuationOption, Operation, ResultStatus};
use crate::ttlv::{
    DecodeError, DecodeErrorKind, Item, Limits, Tag, Value, Version, binary, json, xml,
};

/// The three message encodings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Binary TTLV.
    Ttlv,
    /// KMIP XML.
    Xml,
    /// KMIP JSON.
    Json,
}

impl Encoding {
    /// The HTTP Content-Type of this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Ttlv => "application/octet-stream",
            Encoding::Xml => "text/xml",
            Encoding::Json => "application/json",
        }
    }

    /// The trace-file extension for this encoding.
    pub fn extension(self) -> &'static str {
        match self {
            Encoding::Ttlv => "ttlv",
            Encoding::Xml => "xml",
            Encoding::Json => "json",
        }
    }
}

/// One request handled: the trees (for tracing) and the response bytes.
#[derive(Debug)]
pub struct Exchange {
    /// The decoded request, when it could be decoded.
    pub request: Option<Item>,
    /// The response tree.
    pub response: Item,
    /// The encoded response.
    pub bytes: Vec<u8>,
    /// Why the request could not be decoded, for the error stream.
    pub decode_error: Option<String>,
    /// What the audit log records of this request: its state-changing and key-revealing
    /// batch items, and every refused one.
    pub audit: Vec<AuditRecord>,
}

/// One batch item for the audit log (no key material: operation, object, result).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// The operation.
    pub operation: Operation,
    /// The object it named or made, if any.
    pub uid: Option<String>,
    /// Result Status.
    pub status: ResultStatus,
    /// Result Reason, when it failed.
    pub reason: Option<String>,
}

/// Whether an operation is audited whatever its outcome: it changes state or reveals keys.
pub fn audited(op: Operation) -> bool {
    !matches!(
        op,
        Operation::Locate
            | Operation::Check
            | Operation::GetAttributes
            | Operation::GetAttributeList
            | Operation::Query
            | Operation::DiscoverVersions
            | Operation::Encrypt
            | Operation::Sign
            | Operation::SignatureVerify
            | Operation::MAC
            | Operation::MACVerify
            | Operation::RNGRetrieve
            | Operation::Hash
            | Operation::Poll
            | Operation::Cancel
            | Operation::Validate
    )
}

/// Everything requests share.
#[derive(Debug)]
pub struct Gateway {
    /// The configuration.
    pub config: Arc<Config>,
    /// Limits for decoding requests.
    pub limits: Limits,
    /// The keystore (absent only in tests of the request path itself).
    pub store: Option<Arc<Store>>,
    /// Token handles and streams.
    pub vault: Arc<Vault>,
    /// KMIP Credentials already verified (SHA-256 of user and password), so that the salted
    /// hash is computed once per client, not per request.
    verified_credentials: VerifiedCredentials,
}

/// Fingerprints of verified credentials (`Debug` shows only how many).
#[derive(Default)]
struct VerifiedCredentials(std::sync::Mutex<std::collections::HashSet<[u8; 32]>>);

impl std::fmt::Debug for VerifiedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map(|s| s.len()).unwrap_or(0);
        write!(f, "VerifiedCredentials({n})")
    }
}

/// Verified credentials remembered at most (the set is emptied when full).
const MAX_VERIFIED_CREDENTIALS: usize = 1024;

impl Gateway {
    /// A gateway for `config`, with its keystore, on `token` (an HSM) or, when `None`, the
    /// built-in software token.
    pub fn new(
        config: Arc<Config>,
        store: Option<Arc<Store>>,
        token: Option<Arc<dyn Token>>,
    ) -> Self {
        let bounds = &config.server.bounds;
        let vault = match token {
            Some(t) => Vault::new(t, false).with_hsm(hsm_options(&config)),
            None => Vault::new(Arc::new(SoftToken::new()), true),
        };
        let vault = Arc::new(
            vault.with_stream_limits(bounds.max_streams, bounds.max_streams_per_connection),
        );
        let limits = Limits {
            max_size: config.server.max_buf_size,
            max_depth: bounds.max_depth,
            max_items: bounds.max_items,
        };
        Gateway {
            config,
            limits,
            store,
            vault,
            verified_credentials: Default::default(),
        }
    }

    /// Handles one request message. With `keep_request` the decoded request tree is returned
    /// too (for tracing); otherwise it is consumed without a copy.
    pub fn handle(
        &self,
        bytes: &[u8],
        encoding: Encoding,
        identity: Option<&str>,
        connection: u64,
        now: i64,
        keep_request: bool,
    ) -> Exchange {
        let decoded = decode(bytes, encoding, &self.limits, now);
        let (request, response, decode_error) = match decoded {
            Ok(tree) => {
                let kept = keep_request.then(|| tree.clone());
                let (response, audit) = self.handle_tree(tree, identity, connection, now);
                (kept, (response, audit), None)
            }
            Err(e) => {
                let detail = e.to_string();
                let msg = match e.kind {
                    DecodeErrorKind::TooLarge => "message exceeds the size limit".to_string(),
                    DecodeErrorKind::TooDeep | DecodeErrorKind::TooManyItems => {
                        "message exceeds the structure limits".to_string()
                    }
                    DecodeErrorKind::Malformed | DecodeErrorKind::UnknownName => detail.clone(),
                };
                (
                    None,
                    (
                        error_response(kmip::FALLBACK_VERSION, now, &Error::InvalidMessage(msg)),
                        Vec::new(),
                    ),
                    Some(detail),
                )
            }
        };
        let (response, audit) = response;
        let response_tree = response.into_item();
        let bytes = encode(&response_tree, encoding);
        Exchange {
            request,
            response: response_tree,
            bytes,
            decode_error,
            audit,
        }
    }

    fn handle_tree(
        &self,
        tree: Item,
        identity: Option<&str>,
        connection: u64,
        now: i64,
    ) -> (ResponseMessage, Vec<AuditRecord>) {
        let peeked = kmip::message::peek_version(&tree);
        let message = match RequestMessage::from_item(tree) {
            Ok(m) => m,
            Err(e) => {
                let v = peeked.unwrap_or(kmip::FALLBACK_VERSION);
                return (error_response(v, now, &e), Vec::new());
            }
        };
        let requested = message.header.version;
        let Some(version) = kmip::negotiate(requested) else {
            let e = Error::UnsupportedVersion(requested);
            return (error_response(requested, now, &e), Vec::new());
        };
        if message.items.len() > self.config.server.bounds.max_batch_items {
            let e = Error::InvalidMessage(format!(
                "{} batch items; at most {} are accepted",
                message.items.len(),
                self.config.server.bounds.max_batch_items
            ));
            return (error_response(version, now, &e), Vec::new());
        }
        let mut audit = Vec::new();
        let credential_ok = !self.config.server.require_credential
            || self.credential_valid(message.header.authentication.as_ref());
        let mut ctx = Context {
            version,
            identity,
            connection,
            max_locate_results: self.config.server.bounds.max_locate_results,
            operation: Operation::DiscoverVersions,
            policies: &self.config.policies,
            now,
            aux: &self.config.aux,
            hsm_name: &self.config.ksg.hsm_name,
            store: self.store.as_deref(),
            vault: Some(&self.vault),
            id_placeholder: None,
            undo: (message.header.batch_error_continuation == BatchErrorContinuationOption::Undo)
                .then(Default::default),
        };
        let continue_on_error =
            message.header.batch_error_continuation == BatchErrorContinuationOption::Continue;
        let mut items = Vec::with_capacity(message.items.len());
        for item in message.items {
            let op = item.operation;
            ctx.operation = op;
            let named_uid = placeholder_of(&item.payload);
            // Discover Versions is answered in every version: it is how a client finds one.
            let defined = op == Operation::DiscoverVersions
                || crate::ttlv::tables::enum_defined_in("Operation", op.to_u32(), version);
            let result = if !credential_ok
                && !matches!(op, Operation::DiscoverVersions | Operation::Query)
            {
                Err(Error::PermissionDenied(
                    "a valid KMIP Credential (Username and Password) is required".into(),
                ))
            } else if !defined {
                Err(Error::OperationNotSupported(format!(
                    "{} is not a KMIP {version} operation",
                    ops::operation_name(op)
                )))
            } else if ops::offered(op, &self.config.aux) {
                ops::dispatch(op, &mut ctx, item.payload)
            } else {
                Err(Error::OperationNotSupported(format!(
                    "{} is switched off",
                    ops::operation_name(op)
                )))
            };
            match result {
                Ok(payload) => {
                    let made_uid = payload.as_ref().and_then(placeholder_of);
                    if audited(op) {
                        audit.push(AuditRecord {
                            operation: op,
                            uid: made_uid.clone().or(named_uid),
                            status: ResultStatus::Success,
                            reason: None,
                        });
                    }
                    if let Some(uid) = made_uid {
                        ctx.id_placeholder = Some(uid);
                    }
                    items.push(ResponseBatchItem::success(
                        op,
                        item.unique_batch_item_id,
                        payload,
                    ));
                }
                Err(e) => {
                    if let Error::Internal(detail) | Error::Store(detail) = &e {
                        crate::log::error(&format!("{}: {detail}", ops::operation_name(op)));
                    }
                    if audited(op) || matches!(e, Error::PermissionDenied(_)) {
                        audit.push(AuditRecord {
                            operation: op,
                            uid: named_uid.or_else(|| ctx.id_placeholder.clone()),
                            status: ResultStatus::OperationFailed,
                            reason: Some(format!("{:?}", e.result_reason_in(version))),
                        });
                    }
                    items.push(ResponseBatchItem::failure(
                        Some(op),
                        item.unique_batch_item_id,
                        &e,
                        version,
                    ));
                    if ctx.undo.is_some() {
                        // Undo: what the batch did so far is put back; those items say so.
                        match ops::object::undo_batch(&ctx) {
                            Ok(()) => {
                                let failed = items.len() - 1;
                                for done in &mut items[..failed] {
                                    done.status = ResultStatus::OperationUndone;
                                    done.payload = None;
                                }
                            }
                            Err(e) => crate::log::error(&format!("batch undo: {e}")),
                        }
                    }
                    if !continue_on_error {
                        break;
                    }
                }
            }
        }
        let mut response = ResponseMessage {
            version,
            time_stamp: now,
            items,
        };
        if let Some(max) = message.header.maximum_response_size {
            let size = crate::ttlv::tree::encoded_len(&response.clone().into_item());
            if size.is_none_or(|n| n > max.max(0) as usize) {
                for it in &mut response.items {
                    *it = ResponseBatchItem::failure(
                        it.operation,
                        it.unique_batch_item_id.take(),
                        &Error::ResponseTooLarge,
                        version,
                    );
                }
            }
        }
        (response, audit)
    }
}

/// The identifier a successful item hands to the next one as the ID Placeholder.
fn placeholder_of(payload: &Item) -> Option<String> {
    [Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER, Tag::UNIQUE_IDENTIFIER]
        .iter()
        .find_map(|t| match payload.child(*t).map(|v| &v.value) {
            Some(Value::TextString(s)) => Some(s.clone()),
            _ => None,
        })
}

/// HSM options from `ksg.conf`: the vendor, the customer KEK (a KEK that cannot be read is
/// logged and leaves keys on the HSM), its handle, and whether C_DigestKey may be used.
fn hsm_options(config: &Config) -> HsmOptions {
    use crate::token::vendor::{self, Vendor};
    let ksg = &config.ksg;
    let vendor = Vendor::from_hsm_type(ksg.hsm_type);
    let kek = ksg
        .kek_key_path
        .as_deref()
        .and_then(|p| match vendor::load_kek(p) {
            Ok(k) => Some(k),
            Err(e) => {
                crate::log::error(&format!("{e}; keys on the HSM cannot be exported"));
                None
            }
        });
    HsmOptions {
        vendor,
        kek,
        kek_handle: match vendor {
            Vendor::AwsCloudHsm => ksg.aws_kek_handle,
            Vendor::CaviumLiquidSecurity => ksg.cavium_kek_handle,
            Vendor::Generic => None,
        },
        digest_key: vendor::digest_key_allowed(ksg.gate_flags),
        session_key_copies: ksg.session_key_copies,
    }
}

impl Gateway {
    /// Whether a request header's Authentication holds a Username and Password credential
    /// listed in p6kmip_credentials.conf.
    fn credential_valid(&self, authentication: Option<&Item>) -> bool {
        use sha2::Digest as _;
        let Some(credential) = authentication.and_then(|a| a.child(Tag::CREDENTIAL)) else {
            return false;
        };
        let username_and_password = crate::ttlv::tables::enums::CredentialType::UsernameAndPassword;
        if credential.child(Tag::CREDENTIAL_TYPE).map(|t| &t.value)
            != Some(&Value::Enumeration(username_and_password.to_u32()))
        {
            return false;
        }
        let value = credential.child(Tag::CREDENTIAL_VALUE);
        let text = |tag| match value.and_then(|v| v.child(tag)).map(|v| &v.value) {
            Some(Value::TextString(s)) => Some(s.as_str()),
            _ => None,
        };
        let (Some(user), Some(password)) = (text(Tag::USERNAME), text(Tag::PASSWORD)) else {
            return false;
        };
        let mut h = sha2::Sha256::new();
        h.update(user.as_bytes());
        h.update([0]);
        h.update(password.as_bytes());
        let fingerprint: [u8; 32] = h.finalize().into();
        if let Ok(seen) = self.verified_credentials.0.lock()
            && seen.contains(&fingerprint)
        {
            return true;
        }
        let ok = self
            .config
            .credentials
            .iter()
            .any(|c| c.user == user && c.verify(password.as_bytes()));
        if ok && let Ok(mut seen) = self.verified_credentials.0.lock() {
            if seen.len() >= MAX_VERIFIED_CREDENTIALS {
                seen.clear();
            }
            seen.insert(fingerprint);
        }
        ok
    }
}

/// A response with one failed batch item and no operation (the request could not be read).
pub fn error_response(version: Version, now: i64, error: &Error) -> ResponseMessage {
    ResponseMessage {
        version,
        time_stamp: now,
        items: vec![ResponseBatchItem::failure(None, None, error, version)],
    }
}

/// Decodes one request in `encoding`.
pub fn decode(
    bytes: &[u8],
    encoding: Encoding,
    limits: &Limits,
    now: i64,
) -> Result<Item, DecodeError> {
    let text = || {
        std::str::from_utf8(bytes).map_err(|_| DecodeError {
            kind: DecodeErrorKind::Malformed,
            at: "body".into(),
            detail: "not UTF-8".into(),
        })
    };
    match encoding {
        Encoding::Ttlv => binary::decode(bytes, limits),
        Encoding::Xml => xml::decode(text()?, now, limits),
        Encoding::Json => json::decode(text()?, now, limits),
    }
}

/// Encodes a response tree (which never holds placeholders) in `encoding`.
pub fn encode(item: &Item, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Ttlv => binary::to_vec(item).unwrap_or_default(),
        Encoding::Xml => xml::encode(item).into_bytes(),
        Encoding::Json => json::encode(item).into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(aux_operations: Option<Vec<u32>>) -> Gateway {
        let dir = crate::test_dir::TempDir::new("service");
        for (f, t) in [
            ("ksg.conf", "[p6ksg-gen]\n"),
            ("p6kmipserver.conf", "[p6kmip-server-gen]\n"),
            ("p6kmip_auxiliary_ksg.conf", "[p6kmip-server-auxiliary]\n"),
        ] {
            std::fs::write(dir.join(f), t).expect("write");
        }
        let mut config = Config::load(&dir, &dir).expect("config");
        config.aux.operations = aux_operations;
        Gateway::new(Arc::new(config), None, None)
    }

    fn request(minor: i32, continue_on_error: bool, ops: &[u32]) -> Item {
        let items = ops
            .iter()
            .map(|op| (*op, Item::structure(Tag::REQUEST_PAYLOAD, vec![])))
            .collect();
        message(minor, continue_on_error.then_some(1), items)
    }

    /// A request message: protocol 1.`minor`, the Batch Error Continuation Option if given, and
    /// (operation, payload) items with Unique Batch Item IDs 0, 1, ...
    fn message(minor: i32, continuation: Option<u32>, items: Vec<(u32, Item)>) -> Item {
        let mut header = vec![
            Item::structure(
                Tag::PROTOCOL_VERSION,
                vec![
                    Item::new(Tag::PROTOCOL_VERSION_MAJOR, Value::Integer(1)),
                    Item::new(Tag::PROTOCOL_VERSION_MINOR, Value::Integer(minor)),
                ],
            ),
            Item::new(Tag::BATCH_COUNT, Value::Integer(items.len() as i32)),
        ];
        if let Some(c) = continuation {
            header.push(Item::new(
                Tag::BATCH_ERROR_CONTINUATION_OPTION,
                Value::Enumeration(c),
            ));
        }
        let mut children = vec![Item::structure(Tag::REQUEST_HEADER, header)];
        for (i, (op, payload)) in items.into_iter().enumerate() {
            children.push(Item::structure(
                Tag::BATCH_ITEM,
                vec![
                    Item::new(Tag::OPERATION, Value::Enumeration(op)),
                    Item::new(Tag::UNIQUE_BATCH_ITEM_ID, Value::ByteString(vec![i as u8])),
                    payload,
                ],
            ));
        }
        Item::structure(Tag::REQUEST_MESSAGE, children)
    }

    fn answer(g: &Gateway, msg: &Item) -> Item {
        let bytes = binary::to_vec(msg).expect("encode");
        g.handle(&bytes, Encoding::Ttlv, None, 0, 1_700_000_000, false)
            .response
    }

    fn statuses(resp: &Item) -> Vec<(Value, Option<Value>)> {
        resp.children_with(Tag::BATCH_ITEM)
            .map(|b| {
                let id = b
                    .child(Tag::UNIQUE_BATCH_ITEM_ID)
                    .map(|i| i.value.clone())
                    .expect("echoed id");
                (id, b.child(Tag::RESULT_REASON).map(|r| r.value.clone()))
            })
            .collect()
    }

    #[test]
    fn batches_stop_at_the_first_failure_unless_told_to_continue() {
        let g = gateway(None);
        let stop = answer(&g, &request(4, false, &[0x06, 0x1E]));
        assert_eq!(
            statuses(&stop),
            vec![(Value::ByteString(vec![0]), Some(Value::Enumeration(5)))]
        );
        let cont = answer(&g, &request(4, true, &[0x06, 0x1E]));
        assert_eq!(
            statuses(&cont),
            vec![
                (Value::ByteString(vec![0]), Some(Value::Enumeration(5))),
                (Value::ByteString(vec![1]), None)
            ]
        );
        let header = cont.child(Tag::RESPONSE_HEADER).expect("header");
        assert_eq!(
            header.child(Tag::BATCH_COUNT).map(|c| &c.value),
            Some(&Value::Integer(2))
        );
        assert_eq!(
            header.child(Tag::TIME_STAMP).map(|c| &c.value),
            Some(&Value::DateTime(1_700_000_000))
        );
    }

    #[test]
    fn versions_are_answered_in_kind_and_switched_off_operations_are_refused() {
        let g = gateway(None);
        let minor_of = |resp: &Item| {
            resp.child(Tag::RESPONSE_HEADER)
                .and_then(|h| h.child(Tag::PROTOCOL_VERSION))
                .and_then(|v| v.child(Tag::PROTOCOL_VERSION_MINOR))
                .map(|m| m.value.clone())
        };
        assert_eq!(
            minor_of(&answer(&g, &request(2, false, &[0x1E]))),
            Some(Value::Integer(2))
        );
        assert_eq!(
            minor_of(&answer(&g, &request(9, false, &[0x1E]))),
            Some(Value::Integer(4))
        );
        let off = gateway(Some(vec![0x18]));
        let resp = answer(&off, &request(4, false, &[0x1E]));
        assert_eq!(
            statuses(&resp),
            vec![(Value::ByteString(vec![0]), Some(Value::Enumeration(5)))]
        );
        // Undecodable XML is answered in XML with Invalid Message.
        let ex = g.handle(
            b"<RequestMessage><Nope/></RequestMessage>",
            Encoding::Xml,
            None,
            0,
            0,
            false,
        );
        let text = String::from_utf8(ex.bytes).expect("xml");
        assert!(
            text.contains("InvalidMessage") && text.starts_with("<ResponseMessage>"),
            "{text}"
        );
    }

    /// A gateway on the software token with a keystore in a fresh directory, and the objects
    /// the conf offers.
    fn gateway_with_store(
        name: &str,
        objects: Option<Vec<u32>>,
    ) -> (Gateway, Arc<Store>, crate::test_dir::TempDir) {
        let dir = crate::test_dir::TempDir::new(&format!("service-{name}"));
        let (store, _) =
            Store::open(&dir, &crate::store::key::Key256([7; 32]), "test", false).expect("store");
        let store = Arc::new(store);
        let mut config = (*gateway(None).config).clone();
        config.aux.objects = objects;
        let g = Gateway::new(Arc::new(config), Some(store.clone()), None);
        (g, store, dir)
    }

    #[test]
    fn an_object_type_switched_off_in_the_conf_is_refused_when_used() {
        let (g, store, _dir) = gateway_with_store("objects", Some(vec![2]));
        let secret = Item::structure(
            Tag::SECRET_DATA,
            vec![
                Item::new(Tag::SECRET_DATA_TYPE, Value::Enumeration(1)),
                Item::structure(
                    Tag::KEY_BLOCK,
                    vec![
                        Item::new(Tag::KEY_FORMAT_TYPE, Value::Enumeration(2)),
                        Item::structure(
                            Tag::KEY_VALUE,
                            vec![Item::new(Tag::KEY_MATERIAL, Value::ByteString(vec![1; 8]))],
                        ),
                    ],
                ),
            ],
        );
        let register = message(
            4,
            None,
            vec![(
                0x03,
                Item::structure(
                    Tag::REQUEST_PAYLOAD,
                    vec![Item::new(Tag::OBJECT_TYPE, Value::Enumeration(7)), secret],
                ),
            )],
        );
        let resp = answer(&g, &register);
        let item = resp.child(Tag::BATCH_ITEM).expect("item");
        assert_eq!(
            item.child(Tag::RESULT_REASON).map(|r| r.value.clone()),
            Some(Value::Enumeration(8)),
            "Secret Data is switched off: Feature Not Supported"
        );
        assert_eq!(store.read().len(), 0);
    }

    #[test]
    fn an_undo_batch_that_fails_puts_back_what_it_did() {
        let (g, store, _dir) = gateway_with_store("undo", None);
        let attr = |name: &str, v: Value| {
            Item::structure(
                Tag::ATTRIBUTE,
                vec![
                    Item::new(Tag::ATTRIBUTE_NAME, Value::TextString(name.into())),
                    Item::new(Tag::ATTRIBUTE_VALUE, v),
                ],
            )
        };
        let create = Item::structure(
            Tag::REQUEST_PAYLOAD,
            vec![
                Item::new(Tag::OBJECT_TYPE, Value::Enumeration(2)),
                Item::structure(
                    Tag::TEMPLATE_ATTRIBUTE,
                    vec![
                        attr("Cryptographic Algorithm", Value::Enumeration(3)),
                        attr("Cryptographic Length", Value::Integer(256)),
                    ],
                ),
            ],
        );
        let get = Item::structure(
            Tag::REQUEST_PAYLOAD,
            vec![Item::new(
                Tag::UNIQUE_IDENTIFIER,
                Value::TextString("nope".into()),
            )],
        );
        let msg = message(4, Some(3), vec![(0x01, create), (0x0A, get)]);
        let resp = answer(&g, &msg);
        let status: Vec<_> = resp
            .children_with(Tag::BATCH_ITEM)
            .map(|b| b.child(Tag::RESULT_STATUS).map(|s| s.value.clone()))
            .collect();
        assert_eq!(
            status,
            vec![Some(Value::Enumeration(3)), Some(Value::Enumeration(1))],
            "the Create is undone, the Get failed"
        );
        assert_eq!(store.read().len(), 0, "the created key is gone");
    }
}
