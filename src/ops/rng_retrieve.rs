//! RNG Retrieve: random bytes from the token's generator.

use super::object::payload;
use super::{Context, Outcome};
use crate::kmip::Error;
use crate::ttlv::{Item, Tag, Value};

/// Most bytes one request may ask for.
pub const MAX_RANDOM: i32 = 1 << 20;

/// Handles one RNG Retrieve request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let n = match payload_in.child(Tag::DATA_LENGTH).map(|v| &v.value) {
        Some(Value::Integer(n)) if *n > 0 && *n <= MAX_RANDOM => *n as usize,
        Some(_) => {
            return Err(Error::InvalidField(format!(
                "Data Length must be 1 to {MAX_RANDOM}"
            )));
        }
        None => return Err(Error::MissingData("Data Length".into())),
    };
    let data = ctx.vault()?.token().random(n).map_err(Error::Token)?;
    Ok(payload(vec![Item::new(Tag::DATA, Value::ByteString(data))]))
}
