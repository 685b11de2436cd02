//! The one error type of request handling, and its mapping to KMIP Result Reasons.

use std::fmt;

use crate::ttlv::tables::enums::ResultReason;

/// Why a request (or one batch item) failed. `Display` gives the short Result Message a client
/// sees; internal detail goes to the log, never into these messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The message could not be decoded or is not a well-formed KMIP message.
    InvalidMessage(String),
    /// The request's protocol version is not one ksg speaks.
    UnsupportedVersion(crate::ttlv::Version),
    /// The operation is unknown, not implemented, or switched off in the configuration.
    OperationNotSupported(String),
    /// A field has a value that is not allowed.
    InvalidField(String),
    /// A required field is missing.
    MissingData(String),
    /// The response would exceed the client's Maximum Response Size.
    ResponseTooLarge,
    /// A failure inside the gateway; the detail is logged, the client sees a generic message.
    Internal(String),
}

impl Error {
    /// The Result Reason the specification prescribes for this failure.
    pub fn result_reason(&self) -> ResultReason {
        match self {
            Error::InvalidMessage(_) => ResultReason::InvalidMessage,
            Error::UnsupportedVersion(_) => ResultReason::InvalidMessage,
            Error::OperationNotSupported(_) => ResultReason::OperationNotSupported,
            Error::InvalidField(_) => ResultReason::InvalidField,
            Error::MissingData(_) => ResultReason::MissingData,
            Error::ResponseTooLarge => ResultReason::ResponseTooLarge,
            Error::Internal(_) => ResultReason::GeneralFailure,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidMessage(m) => write!(f, "invalid message: {m}"),
            Error::UnsupportedVersion(v) => {
                write!(
                    f,
                    "protocol version {v} is not supported (supported: 1.0 to 1.4)"
                )
            }
            Error::OperationNotSupported(m) => write!(f, "operation not supported: {m}"),
            Error::InvalidField(m) => write!(f, "invalid field: {m}"),
            Error::MissingData(m) => write!(f, "missing data: {m}"),
            Error::ResponseTooLarge => f.write_str("response exceeds the Maximum Response Size"),
            Error::Internal(_) => f.write_str("internal error"),
        }
    }
}

impl std::error::Error for Error {}
