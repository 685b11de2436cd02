//! MAC Verify: see `crypto.rs` for what the cryptographic operations share.

use super::crypto::{self, Op};
use super::{Context, Outcome};
use crate::ttlv::Item;

/// Handles one request payload.
pub fn handle(ctx: &mut Context<'_>, payload: Item) -> Outcome {
    crypto::run(ctx, payload, Op::MacVerify)
}
