//! The one error type of request handling, and its mapping to KMIP Result Reasons.

use std::fmt;

use crate::token::{RvError, TokenError};
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
    /// The token (HSM or software token) refused or failed a call.
    Token(TokenError),
    /// No object (or attribute instance) with that identifier.
    ItemNotFound(String),
    /// The caller may not do this to this object.
    PermissionDenied(String),
    /// The object's state does not allow the operation.
    WrongKeyLifecycleState(String),
    /// The object's Cryptographic Usage Mask does not allow the operation.
    IncompatibleUsageMask(String),
    /// A cryptographic check failed (e.g. an authentication tag).
    CryptographicFailure(String),
    /// The attribute may not be set or changed by a client.
    AttributeReadOnly(String),
    /// The attribute instance index does not exist.
    IndexOutOfBounds(String),
    /// The key may not leave the token.
    NotExtractable(String),
    /// The key is sensitive and may only leave wrapped.
    Sensitive(String),
    /// The object's Usage Limits are used up.
    UsageLimitExceeded(String),
    /// A feature of the request is not supported.
    FeatureNotSupported(String),
    /// The requested Key Format Type is not supported for this object.
    KeyFormatTypeNotSupported(String),
    /// The object is archived and must be recovered first.
    ObjectArchived(String),
    /// The keystore could not record the change (detail logged).
    Store(String),
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
            Error::Token(TokenError::Call { rv, .. }) => token_reason(*rv),
            Error::Token(TokenError::Unsupported(_)) => ResultReason::FeatureNotSupported,
            Error::Token(TokenError::Setup(_)) => ResultReason::GeneralFailure,
            Error::Token(TokenError::Unavailable(_)) => ResultReason::GeneralFailure,
            Error::ItemNotFound(_) => ResultReason::ItemNotFound,
            Error::PermissionDenied(_) => ResultReason::PermissionDenied,
            Error::WrongKeyLifecycleState(_) => ResultReason::WrongKeyLifecycleState,
            Error::IncompatibleUsageMask(_) => ResultReason::IncompatibleCryptographicUsageMask,
            Error::CryptographicFailure(_) => ResultReason::CryptographicFailure,
            Error::AttributeReadOnly(_) => ResultReason::AttributeReadOnly,
            Error::IndexOutOfBounds(_) => ResultReason::IndexOutOfBounds,
            Error::NotExtractable(_) => ResultReason::NotExtractable,
            Error::Sensitive(_) => ResultReason::Sensitive,
            Error::UsageLimitExceeded(_) => ResultReason::UsageLimitExceeded,
            Error::FeatureNotSupported(_) => ResultReason::FeatureNotSupported,
            Error::KeyFormatTypeNotSupported(_) => ResultReason::KeyFormatTypeNotSupported,
            Error::ObjectArchived(_) => ResultReason::ObjectArchived,
            Error::Store(_) => ResultReason::GeneralFailure,
        }
    }

    /// The Result Reason as protocol version `v` can express it: reasons that version does not
    /// define become the reason it used for the same failure (KMIP 1.x says Permission Denied
    /// for a wrong state, a usage mask or a read-only attribute, Item Not Found for a missing
    /// attribute instance).
    pub fn result_reason_in(&self, v: crate::ttlv::Version) -> ResultReason {
        let reason = self.result_reason();
        if crate::ttlv::tables::enum_defined_in("ResultReason", reason.to_u32(), v) {
            return reason;
        }
        match self {
            Error::WrongKeyLifecycleState(_)
            | Error::IncompatibleUsageMask(_)
            | Error::AttributeReadOnly(_)
            | Error::UsageLimitExceeded(_)
            | Error::NotExtractable(_)
            | Error::Sensitive(_) => ResultReason::PermissionDenied,
            Error::IndexOutOfBounds(_) => ResultReason::ItemNotFound,
            Error::InvalidMessage(_)
            | Error::UnsupportedVersion(_)
            | Error::OperationNotSupported(_)
            | Error::InvalidField(_)
            | Error::MissingData(_)
            | Error::ResponseTooLarge
            | Error::Internal(_)
            | Error::Token(_)
            | Error::ItemNotFound(_)
            | Error::PermissionDenied(_)
            | Error::CryptographicFailure(_)
            | Error::FeatureNotSupported(_)
            | Error::KeyFormatTypeNotSupported(_)
            | Error::ObjectArchived(_)
            | Error::Store(_) => ResultReason::GeneralFailure,
        }
    }
}

/// The Result Reason for every PKCS#11 return value: what the client did wrong, or General
/// Failure when the fault lies with the token or the gateway's set-up. Reasons are those KMIP
/// 1.x defines, so every client version understands them.
pub fn token_reason(rv: RvError) -> ResultReason {
    use RvError as R;
    match rv {
        // The data or the signature does not check out.
        R::DataInvalid
        | R::DataLenRange
        | R::EncryptedDataInvalid
        | R::EncryptedDataLenRange
        | R::SignatureInvalid
        | R::SignatureLenRange
        | R::WrappedKeyInvalid
        | R::WrappedKeyLenRange
        | R::PublicKeyInvalid
        // SoftHSM2 reports a GCM tag mismatch as CKR_GENERAL_ERROR.
        | R::GeneralError
        | R::FunctionFailed => ResultReason::CryptographicFailure,
        // The object is not there (any more).
        R::KeyHandleInvalid
        | R::ObjectHandleInvalid
        | R::UnwrappingKeyHandleInvalid
        | R::WrappingKeyHandleInvalid => ResultReason::ItemNotFound,
        // The key may not do that.
        R::KeyFunctionNotPermitted | R::ActionProhibited | R::KeyTypeInconsistent | R::KeyIndigestible => {
            ResultReason::PermissionDenied
        }
        R::UnwrappingKeyTypeInconsistent | R::WrappingKeyTypeInconsistent => ResultReason::PermissionDenied,
        R::KeyUnextractable | R::KeyNotWrappable => ResultReason::NotExtractable,
        R::AttributeSensitive | R::InformationSensitive => ResultReason::Sensitive,
        R::AttributeReadOnly => ResultReason::PermissionDenied,
        // What was asked is not something this token does.
        R::MechanismInvalid
        | R::MechanismParamInvalid
        | R::CurveNotSupported
        | R::KeySizeRange
        | R::WrappingKeySizeRange
        | R::UnwrappingKeySizeRange
        | R::DomainParamsInvalid
        | R::FunctionNotSupported
        | R::RandomSeedNotSupported
        | R::RandomNoRng
        | R::StateUnsaveable
        | R::FunctionRejected => ResultReason::FeatureNotSupported,
        // The request's values do not fit.
        R::AttributeTypeInvalid
        | R::AttributeValueInvalid
        | R::TemplateIncomplete
        | R::TemplateInconsistent
        | R::ArgumentsBad
        | R::KeyNeeded
        | R::KeyNotNeeded
        | R::KeyChanged
        | R::SavedStateInvalid
        | R::ExceededMaxIterations => ResultReason::InvalidField,
        R::FunctionCanceled | R::Cancel => ResultReason::OperationCanceledByRequester,
        // The token, its session or the gateway's set-up failed: not the client's doing.
        R::HostMemory
        | R::SlotIdInvalid
        | R::NoEvent
        | R::NeedToCreateThreads
        | R::CantLock
        | R::DeviceError
        | R::DeviceMemory
        | R::DeviceRemoved
        | R::FunctionNotParallel
        | R::OperationActive
        | R::OperationNotInitialized
        | R::PinIncorrect
        | R::PinInvalid
        | R::PinLenRange
        | R::PinExpired
        | R::PinLocked
        | R::PinTooWeak
        | R::SessionClosed
        | R::SessionCount
        | R::SessionHandleInvalid
        | R::SessionParallelNotSupported
        | R::SessionReadOnly
        | R::SessionExists
        | R::SessionReadOnlyExists
        | R::SessionReadWriteSoExists
        | R::TokenNotPresent
        | R::TokenNotRecognized
        | R::TokenWriteProtected
        | R::UserAlreadyLoggedIn
        | R::UserNotLoggedIn
        | R::UserPinNotInitialized
        | R::UserTypeInvalid
        | R::UserAnotherAlreadyLoggedIn
        | R::UserTooManyTypes
        | R::BufferTooSmall
        | R::CryptokiNotInitialized
        | R::CryptokiAlreadyInitialized
        | R::MutexBad
        | R::MutexNotLocked
        | R::NewPinMode
        | R::NextOtp
        | R::FipsSelfTestFailed
        | R::LibraryLoadFailed
        | R::VendorDefined(_)
        | R::UnknownErrorCode(_) => ResultReason::GeneralFailure,
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
            Error::Token(TokenError::Call { rv, .. }) => match token_reason(*rv) {
                ResultReason::GeneralFailure => f.write_str("the key store is unavailable"),
                ResultReason::CryptographicFailure => f.write_str("cryptographic failure"),
                ResultReason::NotExtractable => f.write_str("the key is not extractable"),
                ResultReason::Sensitive => f.write_str("the key is sensitive"),
                _ => write!(f, "the token refused the request ({rv:?})"),
            },
            Error::Token(TokenError::Unsupported(m)) => {
                write!(f, "not supported by this token: {m}")
            }
            Error::Token(TokenError::Setup(_)) => f.write_str("the key store is unavailable"),
            Error::Token(TokenError::Unavailable(_)) => {
                f.write_str("the HSM is unavailable; try again later")
            }
            Error::ItemNotFound(m) => write!(f, "not found: {m}"),
            Error::PermissionDenied(m) => write!(f, "permission denied: {m}"),
            Error::WrongKeyLifecycleState(m) => write!(f, "wrong key lifecycle state: {m}"),
            Error::IncompatibleUsageMask(m) => write!(f, "the usage mask does not allow {m}"),
            Error::CryptographicFailure(m) => write!(f, "cryptographic failure: {m}"),
            Error::AttributeReadOnly(m) => write!(f, "attribute is read-only: {m}"),
            Error::IndexOutOfBounds(m) => write!(f, "no such attribute instance: {m}"),
            Error::NotExtractable(m) => write!(f, "not extractable: {m}"),
            Error::Sensitive(m) => write!(f, "sensitive: {m}"),
            Error::UsageLimitExceeded(m) => write!(f, "usage limit exceeded: {m}"),
            Error::FeatureNotSupported(m) => write!(f, "not supported: {m}"),
            Error::KeyFormatTypeNotSupported(m) => write!(f, "key format type not supported: {m}"),
            Error::ObjectArchived(m) => write!(f, "object archived: {m}"),
            Error::Store(_) => f.write_str("the keystore could not record the change"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_failures_map_to_reasons_and_safe_messages() {
        let e = |rv| {
            Error::Token(TokenError::Call {
                function: "C_Decrypt".into(),
                rv,
            })
        };
        assert_eq!(
            e(RvError::EncryptedDataInvalid).result_reason(),
            ResultReason::CryptographicFailure
        );
        assert_eq!(
            e(RvError::KeyUnextractable).result_reason(),
            ResultReason::NotExtractable
        );
        assert_eq!(
            e(RvError::ObjectHandleInvalid).result_reason(),
            ResultReason::ItemNotFound
        );
        assert_eq!(
            e(RvError::PinIncorrect).result_reason(),
            ResultReason::GeneralFailure
        );
        assert_eq!(
            e(RvError::RandomSeedNotSupported).result_reason(),
            ResultReason::FeatureNotSupported
        );
        assert_eq!(
            e(RvError::PinIncorrect).to_string(),
            "the key store is unavailable",
            "no detail to clients"
        );
    }
}
