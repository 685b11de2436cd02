//! Discover Versions: the protocol versions both sides speak, in the client's order of
//! preference (all of ksg's when the client lists none).

use super::{Context, Outcome};
use crate::kmip::message::version_item;
use crate::kmip::{Error, SUPPORTED_VERSIONS};
use crate::ttlv::{Item, Tag, Value, Version};

/// Handles one Discover Versions request payload.
pub fn handle(_ctx: &mut Context<'_>, payload: Item) -> Outcome {
    let mut offered = Vec::new();
    for v in payload.children_with(Tag::PROTOCOL_VERSION) {
        let part = |tag| match v.child(tag).map(|i| &i.value) {
            Some(Value::Integer(n)) => {
                u8::try_from(*n).map_err(|_| Error::InvalidField("protocol version".into()))
            }
            _ => Err(Error::InvalidField(
                "Protocol Version needs Major and Minor".into(),
            )),
        };
        offered.push(Version::new(
            part(Tag::PROTOCOL_VERSION_MAJOR)?,
            part(Tag::PROTOCOL_VERSION_MINOR)?,
        ));
    }
    let answer: Vec<Version> = if offered.is_empty() {
        SUPPORTED_VERSIONS.to_vec()
    } else {
        offered
            .into_iter()
            .filter(|v| SUPPORTED_VERSIONS.contains(v))
            .collect()
    };
    let items = answer.into_iter().map(version_item).collect();
    Ok(Some(Item::structure(Tag::RESPONSE_PAYLOAD, items)))
}
