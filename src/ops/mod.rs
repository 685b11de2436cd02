//! KMIP operations, one module per operation, all with the same `handle` signature, dispatched
//! by an exhaustive `match` on the typed Operation.

pub mod access;
pub mod activate;
pub mod add_attribute;
pub mod archive;
pub mod attributes;
pub mod check;
pub mod create;
pub mod create_key_pair;
pub mod create_split_key;
pub mod crypto;
pub mod decrypt;
pub mod delete_attribute;
pub mod derive_key;
pub mod destroy;
pub mod discover_versions;
pub mod encrypt;
pub mod features;
pub mod get;
pub mod get_attribute_list;
pub mod get_attributes;
pub mod get_usage_allocation;
pub mod hash;
pub mod join_split_key;
pub mod keyblock;
pub mod locate;
pub mod mac;
pub mod mac_verify;
pub mod modify_attribute;
pub mod object;
pub mod obtain_lease;
pub mod pkcs12_objects;
pub mod query;
pub mod re_key;
pub mod re_key_key_pair;
pub mod recover;
pub mod register;
pub mod revoke;
pub mod rng_retrieve;
pub mod rng_seed;
pub mod sign;
pub mod signature_verify;
pub mod vault;
pub mod wrapping;

use crate::config::AuxConf;
use crate::kmip::Error;
use crate::store::Store;
use crate::ttlv::tables::enums::{ObjectType, Operation};
use crate::ttlv::{Item, Version};
use vault::Vault;

/// What an operation may use while it handles one batch item.
#[derive(Debug)]
pub struct Context<'a> {
    /// The protocol version the request is processed in (and answered in).
    pub version: Version,
    /// The verified client identity, if the connection has one.
    pub identity: Option<&'a str>,
    /// The connection the request came on (streams are counted and ended per connection).
    pub connection: u64,
    /// The most identifiers one Locate returns (`maxLocateResults`).
    pub max_locate_results: usize,
    /// The operation being performed (what access to objects is checked for).
    pub operation: Operation,
    /// The site's operation policies (beside the built-in `default` and `public`).
    pub policies: &'a [crate::config::policies::SitePolicy],
    /// The current time (POSIX seconds).
    pub now: i64,
    /// What Query reports.
    pub aux: &'a AuxConf,
    /// The gateway's HSM_name (recorded with every object).
    pub hsm_name: &'a str,
    /// The keystore.
    pub store: Option<&'a Store>,
    /// Token handles and streams.
    pub vault: Option<&'a Vault>,
    /// The ID Placeholder: the Unique Identifier the last batch item created or used.
    pub id_placeholder: Option<String>,
    /// With Batch Error Continuation Option Undo: every object the batch changed, as it was
    /// before its first change (`None`: created by the batch).
    pub undo: Option<UndoLog>,
}

impl Context<'_> {
    /// The keystore, or an internal error when this gateway has none (request-path tests).
    pub fn store(&self) -> Result<&Store, Error> {
        self.store
            .ok_or_else(|| Error::Internal("no keystore is open".into()))
    }

    /// The token vault.
    pub fn vault(&self) -> Result<&Vault, Error> {
        self.vault
            .ok_or_else(|| Error::Internal("no token is open".into()))
    }

    /// The gateway's HSM_name.
    pub fn hsm_name(&self) -> &str {
        self.hsm_name
    }
}

/// Each object a batch changed, as it was before the batch first changed it (`None`: created by
/// the batch).
pub type UndoLog = std::cell::RefCell<Vec<(String, Option<crate::store::StoredObject>)>>;

/// The result of an operation: a Response Payload, or none for operations that have none.
pub type Outcome = Result<Option<Item>, Error>;

/// The operations this build implements, in Operation value order.
pub const IMPLEMENTED: &[Operation] = &[
    Operation::Create,
    Operation::CreateKeyPair,
    Operation::Register,
    Operation::ReKey,
    Operation::DeriveKey,
    Operation::Locate,
    Operation::Check,
    Operation::Get,
    Operation::GetAttributes,
    Operation::GetAttributeList,
    Operation::AddAttribute,
    Operation::ModifyAttribute,
    Operation::DeleteAttribute,
    Operation::ObtainLease,
    Operation::GetUsageAllocation,
    Operation::Activate,
    Operation::Revoke,
    Operation::Destroy,
    Operation::Archive,
    Operation::Recover,
    Operation::Query,
    Operation::DiscoverVersions,
    Operation::ReKeyKeyPair,
    Operation::Encrypt,
    Operation::Decrypt,
    Operation::Sign,
    Operation::SignatureVerify,
    Operation::MAC,
    Operation::MACVerify,
    Operation::RNGRetrieve,
    Operation::RNGSeed,
    Operation::Hash,
    Operation::CreateSplitKey,
    Operation::JoinSplitKey,
];

/// The Object Types this build can manage (Query Objects reports these, filtered by the conf).
pub const SUPPORTED_OBJECT_TYPES: &[u32] = &[
    ObjectType::Certificate.to_u32(),
    ObjectType::SymmetricKey.to_u32(),
    ObjectType::PublicKey.to_u32(),
    ObjectType::PrivateKey.to_u32(),
    ObjectType::SplitKey.to_u32(),
    ObjectType::Template.to_u32(),
    ObjectType::SecretData.to_u32(),
    ObjectType::OpaqueObject.to_u32(),
    ObjectType::PGPKey.to_u32(),
];

/// Runs `operation` on `payload`.
pub fn dispatch(operation: Operation, ctx: &mut Context<'_>, payload: Item) -> Outcome {
    match operation {
        Operation::DiscoverVersions => discover_versions::handle(ctx, payload),
        Operation::Query => query::handle(ctx, payload),
        Operation::Create => create::handle(ctx, payload),
        Operation::CreateKeyPair => create_key_pair::handle(ctx, payload),
        Operation::Register => register::handle(ctx, payload),
        Operation::ReKey => re_key::handle(ctx, payload),
        Operation::Locate => locate::handle(ctx, payload),
        Operation::Check => check::handle(ctx, payload),
        Operation::Get => get::handle(ctx, payload),
        Operation::GetAttributes => get_attributes::handle(ctx, payload),
        Operation::GetAttributeList => get_attribute_list::handle(ctx, payload),
        Operation::AddAttribute => add_attribute::handle(ctx, payload),
        Operation::ModifyAttribute => modify_attribute::handle(ctx, payload),
        Operation::DeleteAttribute => delete_attribute::handle(ctx, payload),
        Operation::ObtainLease => obtain_lease::handle(ctx, payload),
        Operation::GetUsageAllocation => get_usage_allocation::handle(ctx, payload),
        Operation::Activate => activate::handle(ctx, payload),
        Operation::Revoke => revoke::handle(ctx, payload),
        Operation::Destroy => destroy::handle(ctx, payload),
        Operation::Archive => archive::handle(ctx, payload),
        Operation::Recover => recover::handle(ctx, payload),
        Operation::ReKeyKeyPair => re_key_key_pair::handle(ctx, payload),
        Operation::Encrypt => encrypt::handle(ctx, payload),
        Operation::Decrypt => decrypt::handle(ctx, payload),
        Operation::Sign => sign::handle(ctx, payload),
        Operation::SignatureVerify => signature_verify::handle(ctx, payload),
        Operation::MAC => mac::handle(ctx, payload),
        Operation::MACVerify => mac_verify::handle(ctx, payload),
        Operation::RNGRetrieve => rng_retrieve::handle(ctx, payload),
        Operation::RNGSeed => rng_seed::handle(ctx, payload),
        Operation::Hash => hash::handle(ctx, payload),
        Operation::CreateSplitKey => create_split_key::handle(ctx, payload),
        Operation::JoinSplitKey => join_split_key::handle(ctx, payload),
        Operation::DeriveKey => derive_key::handle(ctx, payload),
        Operation::Certify
        | Operation::ReCertify
        | Operation::Validate
        | Operation::Cancel
        | Operation::Poll
        | Operation::Notify
        | Operation::Put
        | Operation::Import
        | Operation::Export
        | Operation::Log
        | Operation::Login
        | Operation::Logout
        | Operation::DelegatedLogin
        | Operation::AdjustAttribute
        | Operation::SetAttribute
        | Operation::SetEndpointRole
        | Operation::PKCS_11
        | Operation::Interop
        | Operation::ReProvision
        | Operation::SetDefaults
        | Operation::SetConstraints
        | Operation::GetConstraints
        | Operation::QueryAsynchronousRequests
        | Operation::Process
        | Operation::Ping
        | Operation::UnknownValue(_) => Err(Error::OperationNotSupported(
            operation_name(operation).into_owned(),
        )),
    }
}

/// Whether the configuration offers `operation` (the conf's `operations` list, when present).
pub fn offered(operation: Operation, aux: &AuxConf) -> bool {
    aux.operations
        .as_ref()
        .is_none_or(|list| list.contains(&operation.to_u32()))
}

/// The operation's name for messages.
pub fn operation_name(operation: Operation) -> std::borrow::Cow<'static, str> {
    crate::ttlv::tables::enum_by_name("Operation")
        .and_then(|t| t.by_value(operation.to_u32()))
        .map_or_else(
            || format!("0x{:08X}", operation.to_u32()).into(),
            |v| v.name.into(),
        )
}
