//! The KMIP model: typed request and response messages read from and written to the item tree,
//! the protocol versions ksg speaks, and the one error type with its Result Reason mapping.
//! No I/O.

pub mod error;
pub mod message;

pub use error::Error;
pub use message::{
    RequestBatchItem, RequestHeader, RequestMessage, ResponseBatchItem, ResponseMessage,
};

use crate::ttlv::Version;

/// The protocol versions ksg answers, most preferred first.
pub const SUPPORTED_VERSIONS: [Version; 5] = [
    Version::new(1, 4),
    Version::new(1, 3),
    Version::new(1, 2),
    Version::new(1, 1),
    Version::new(1, 0),
];

/// The version errors are answered in when the request's own version cannot be read.
pub const FALLBACK_VERSION: Version = Version::new(1, 0);

/// The version to process a request of `requested` in: the same if supported; for a newer 1.x
/// minor, the newest 1.x (the specification's rule: same major, ignore what is unknown).
pub fn negotiate(requested: Version) -> Option<Version> {
    if SUPPORTED_VERSIONS.contains(&requested) {
        Some(requested)
    } else if requested.major == 1 && requested.minor > 4 {
        Some(SUPPORTED_VERSIONS[0])
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_negotiation() {
        assert_eq!(negotiate(Version::new(1, 2)), Some(Version::new(1, 2)));
        assert_eq!(negotiate(Version::new(1, 7)), Some(Version::new(1, 4)));
        assert_eq!(negotiate(Version::new(2, 0)), None);
        assert_eq!(negotiate(Version::new(0, 9)), None);
    }
}
