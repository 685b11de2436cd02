//! RNG Seed: offers client data to the token's generator; Data Length says how much it took
//! (all of it on a PKCS#11 token, none on the software token, whose OS generator takes none).

use super::object::payload;
use super::{Context, Outcome};
use crate::kmip::Error;
use crate::ttlv::{Item, Tag, Value};

/// Handles one RNG Seed request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let data = match payload_in.child(Tag::DATA).map(|v| &v.value) {
        Some(Value::ByteString(b)) => b.clone(),
        _ => return Err(Error::MissingData("Data".into())),
    };
    let accepted = ctx
        .vault()?
        .token()
        .seed_random(&data)
        .map_err(Error::Token)?;
    Ok(payload(vec![Item::new(
        Tag::DATA_LENGTH,
        Value::Integer(accepted as i32),
    )]))
}
