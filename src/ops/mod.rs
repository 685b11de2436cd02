//! KMIP operations, one module per operation, all with the same `handle` signature, dispatched
//! by an exhaustive `match` on the typed Operation.

pub mod discover_versions;
pub mod query;

use crate::config::AuxConf;
use crate::kmip::Error;
use crate::ttlv::tables::enums::Operation;
use crate::ttlv::{Item, Version};

/// What an operation may use while it handles one batch item.
#[derive(Debug)]
pub struct Context<'a> {
    /// The protocol version the request is processed in (and answered in).
    pub version: Version,
    /// The verified client identity, if the connection has one.
    pub identity: Option<&'a str>,
    /// The current time (POSIX seconds).
    pub now: i64,
    /// What Query reports.
    pub aux: &'a AuxConf,
}

/// The result of an operation: a Response Payload, or none for operations that have none.
pub type Outcome = Result<Option<Item>, Error>;

/// The operations this build implements, in Operation value order.
pub const IMPLEMENTED: &[Operation] = &[Operation::Query, Operation::DiscoverVersions];

/// The Object Types this build can manage (Query Objects reports these, filtered by the conf).
pub const SUPPORTED_OBJECT_TYPES: &[u32] = &[];

/// Runs `operation` on `payload`.
pub fn dispatch(operation: Operation, ctx: &Context<'_>, payload: Item) -> Outcome {
    match operation {
        Operation::DiscoverVersions => discover_versions::handle(ctx, payload),
        Operation::Query => query::handle(ctx, payload),
        Operation::Create
        | Operation::CreateKeyPair
        | Operation::Register
        | Operation::ReKey
        | Operation::DeriveKey
        | Operation::Certify
        | Operation::ReCertify
        | Operation::Locate
        | Operation::Check
        | Operation::Get
        | Operation::GetAttributes
        | Operation::GetAttributeList
        | Operation::AddAttribute
        | Operation::ModifyAttribute
        | Operation::DeleteAttribute
        | Operation::ObtainLease
        | Operation::GetUsageAllocation
        | Operation::Activate
        | Operation::Revoke
        | Operation::Destroy
        | Operation::Archive
        | Operation::Recover
        | Operation::Validate
        | Operation::Cancel
        | Operation::Poll
        | Operation::Notify
        | Operation::Put
        | Operation::ReKeyKeyPair
        | Operation::Encrypt
        | Operation::Decrypt
        | Operation::Sign
        | Operation::SignatureVerify
        | Operation::MAC
        | Operation::MACVerify
        | Operation::RNGRetrieve
        | Operation::RNGSeed
        | Operation::Hash
        | Operation::CreateSplitKey
        | Operation::JoinSplitKey
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
        | Operation::UnknownValue(_) => {
            Err(Error::OperationNotSupported(operation_name(operation)))
        }
    }
}

/// Whether the configuration offers `operation` (the conf's `operations` list, when present).
pub fn offered(operation: Operation, aux: &AuxConf) -> bool {
    aux.operations
        .as_ref()
        .is_none_or(|list| list.contains(&operation.to_u32()))
}

/// The operation's name for messages.
pub fn operation_name(operation: Operation) -> String {
    crate::ttlv::tables::enum_by_name("Operation")
        .and_then(|t| t.by_value(operation.to_u32()))
        .map_or_else(
            || format!("0x{:08X}", operation.to_u32()),
            |v| v.name.to_string(),
        )
}
