//! Request and response messages: the header, the batch items and their payloads.
//!
//! Requests are taken apart by value, so payloads (and any key material in them) move out of
//! the decoded tree without a copy.

use super::Error;
use crate::ttlv::tables::enums::{
    BatchErrorContinuationOption, Operation, ResultReason, ResultStatus,
};
use crate::ttlv::{Item, Tag, Value, Version};

/// The Request Header.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestHeader {
    /// Protocol Version.
    pub version: Version,
    /// Maximum Response Size, in bytes.
    pub maximum_response_size: Option<i32>,
    /// Asynchronous Indicator (1.x Boolean).
    pub asynchronous_indicator: Option<bool>,
    /// Authentication, kept as sent (checked by the access-control layer).
    pub authentication: Option<Item>,
    /// Batch Error Continuation Option (default Stop).
    pub batch_error_continuation: BatchErrorContinuationOption,
    /// Batch Order Option.
    pub batch_order: Option<bool>,
    /// Time Stamp.
    pub time_stamp: Option<i64>,
    /// Batch Count as sent (may disagree with the items; the items win).
    pub batch_count: Option<i32>,
}

/// One request batch item.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestBatchItem {
    /// The operation.
    pub operation: Operation,
    /// Unique Batch Item ID, echoed in the response.
    pub unique_batch_item_id: Option<Vec<u8>>,
    /// The Request Payload structure (empty if absent).
    pub payload: Item,
}

/// A request message.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestMessage {
    /// The header.
    pub header: RequestHeader,
    /// The batch items, in order.
    pub items: Vec<RequestBatchItem>,
}

/// One response batch item.
#[derive(Clone, Debug, PartialEq)]
pub struct ResponseBatchItem {
    /// The operation (absent when the request item could not be read).
    pub operation: Option<Operation>,
    /// Echo of the request's Unique Batch Item ID.
    pub unique_batch_item_id: Option<Vec<u8>>,
    /// Result Status.
    pub status: ResultStatus,
    /// Result Reason, on failure.
    pub reason: Option<ResultReason>,
    /// Result Message, on failure.
    pub message: Option<String>,
    /// Response Payload.
    pub payload: Option<Item>,
}

impl ResponseBatchItem {
    /// A successful item.
    pub fn success(operation: Operation, id: Option<Vec<u8>>, payload: Option<Item>) -> Self {
        ResponseBatchItem {
            operation: Some(operation),
            unique_batch_item_id: id,
            status: ResultStatus::Success,
            reason: None,
            message: None,
            payload,
        }
    }

    /// A failed item carrying `error`'s Result Reason (as `version` names it) and message.
    pub fn failure(
        operation: Option<Operation>,
        id: Option<Vec<u8>>,
        error: &Error,
        version: Version,
    ) -> Self {
        ResponseBatchItem {
            operation,
            unique_batch_item_id: id,
            status: ResultStatus::OperationFailed,
            reason: Some(error.result_reason_in(version)),
            message: Some(error.to_string()),
            payload: None,
        }
    }
}

/// A response message.
#[derive(Clone, Debug, PartialEq)]
pub struct ResponseMessage {
    /// Protocol Version of the response.
    pub version: Version,
    /// Time Stamp (POSIX seconds).
    pub time_stamp: i64,
    /// The batch items.
    pub items: Vec<ResponseBatchItem>,
}

fn missing(what: &str) -> Error {
    Error::InvalidMessage(format!("{what} is missing"))
}

fn wrong_type(tag: Tag) -> Error {
    Error::InvalidMessage(format!("{tag} has the wrong item type"))
}

fn int(item: &Item) -> Result<i32, Error> {
    match item.value {
        Value::Integer(v) => Ok(v),
        _ => Err(wrong_type(item.tag)),
    }
}

fn children(item: Item) -> Result<Vec<Item>, Error> {
    match item.value {
        Value::Structure(c) => Ok(c),
        _ => Err(wrong_type(item.tag)),
    }
}

/// The Protocol Version of a message tree, if it can be read (for answering a request that is
/// otherwise unreadable in its own version).
pub fn peek_version(message: &Item) -> Option<Version> {
    let header = message.child(Tag::REQUEST_HEADER)?;
    parse_version(header.child(Tag::PROTOCOL_VERSION)?).ok()
}

fn parse_version(item: &Item) -> Result<Version, Error> {
    let major = item
        .child(Tag::PROTOCOL_VERSION_MAJOR)
        .ok_or_else(|| missing("Protocol Version Major"))?;
    let minor = item
        .child(Tag::PROTOCOL_VERSION_MINOR)
        .ok_or_else(|| missing("Protocol Version Minor"))?;
    let (major, minor) = (int(major)?, int(minor)?);
    let part = |v: i32| {
        u8::try_from(v).map_err(|_| Error::InvalidMessage("protocol version out of range".into()))
    };
    Ok(Version::new(part(major)?, part(minor)?))
}

impl RequestMessage {
    /// Reads a Request Message from its tree, by value.
    pub fn from_item(message: Item) -> Result<RequestMessage, Error> {
        if message.tag != Tag::REQUEST_MESSAGE {
            return Err(Error::InvalidMessage(format!(
                "expected RequestMessage, found {}",
                message.tag
            )));
        }
        let mut header = None;
        let mut items = Vec::new();
        for child in children(message)? {
            match child.tag {
                Tag::REQUEST_HEADER if header.is_none() => {
                    header = Some(RequestHeader::from_item(child)?)
                }
                Tag::BATCH_ITEM if header.is_some() => {
                    items.push(RequestBatchItem::from_item(child)?)
                }
                other => {
                    return Err(Error::InvalidMessage(format!(
                        "unexpected {other} in RequestMessage"
                    )));
                }
            }
        }
        let header = header.ok_or_else(|| missing("Request Header"))?;
        if items.is_empty() {
            return Err(missing("Batch Item"));
        }
        Ok(RequestMessage { header, items })
    }
}

impl RequestHeader {
    fn from_item(item: Item) -> Result<RequestHeader, Error> {
        let mut version = None;
        let mut h = RequestHeader {
            version: Version::new(0, 0),
            maximum_response_size: None,
            asynchronous_indicator: None,
            authentication: None,
            batch_error_continuation: BatchErrorContinuationOption::Stop,
            batch_order: None,
            time_stamp: None,
            batch_count: None,
        };
        for c in children(item)? {
            match c.tag {
                Tag::PROTOCOL_VERSION => version = Some(parse_version(&c)?),
                Tag::MAXIMUM_RESPONSE_SIZE => h.maximum_response_size = Some(int(&c)?),
                Tag::ASYNCHRONOUS_INDICATOR => match c.value {
                    Value::Boolean(b) => h.asynchronous_indicator = Some(b),
                    _ => return Err(wrong_type(c.tag)),
                },
                Tag::AUTHENTICATION => h.authentication = Some(c),
                Tag::BATCH_ERROR_CONTINUATION_OPTION => match c.value {
                    Value::Enumeration(v) => {
                        h.batch_error_continuation = BatchErrorContinuationOption::from_u32(v)
                    }
                    _ => return Err(wrong_type(c.tag)),
                },
                Tag::BATCH_ORDER_OPTION => match c.value {
                    Value::Boolean(b) => h.batch_order = Some(b),
                    _ => return Err(wrong_type(c.tag)),
                },
                Tag::TIME_STAMP => match c.value {
                    Value::DateTime(t) => h.time_stamp = Some(t),
                    _ => return Err(wrong_type(c.tag)),
                },
                Tag::BATCH_COUNT => h.batch_count = Some(int(&c)?),
                // Fields of later versions (client correlation values, attestation, …) are
                // accepted and ignored here; the operations that need them read them.
                _ => {}
            }
        }
        h.version = version.ok_or_else(|| missing("Protocol Version"))?;
        Ok(h)
    }
}

impl RequestBatchItem {
    fn from_item(item: Item) -> Result<RequestBatchItem, Error> {
        let mut operation = None;
        let mut id = None;
        let mut payload = None;
        for c in children(item)? {
            match (c.tag, c.value) {
                (Tag::OPERATION, Value::Enumeration(v)) => operation = Some(Operation::from_u32(v)),
                (Tag::UNIQUE_BATCH_ITEM_ID, Value::ByteString(b)) => id = Some(b),
                (Tag::REQUEST_PAYLOAD, value @ Value::Structure(_)) => {
                    payload = Some(Item {
                        tag: Tag::REQUEST_PAYLOAD,
                        value,
                    });
                }
                (Tag::OPERATION | Tag::UNIQUE_BATCH_ITEM_ID | Tag::REQUEST_PAYLOAD, _) => {
                    return Err(wrong_type(c.tag));
                }
                _ => {}
            }
        }
        Ok(RequestBatchItem {
            operation: operation.ok_or_else(|| missing("Operation"))?,
            unique_batch_item_id: id,
            payload: payload.unwrap_or_else(|| Item::structure(Tag::REQUEST_PAYLOAD, Vec::new())),
        })
    }
}

/// A Protocol Version structure.
pub fn version_item(v: Version) -> Item {
    Item::structure(
        Tag::PROTOCOL_VERSION,
        vec![
            Item::new(
                Tag::PROTOCOL_VERSION_MAJOR,
                Value::Integer(i32::from(v.major)),
            ),
            Item::new(
                Tag::PROTOCOL_VERSION_MINOR,
                Value::Integer(i32::from(v.minor)),
            ),
        ],
    )
}

impl ResponseMessage {
    /// The response tree.
    pub fn into_item(self) -> Item {
        let header = Item::structure(
            Tag::RESPONSE_HEADER,
            vec![
                version_item(self.version),
                Item::new(Tag::TIME_STAMP, Value::DateTime(self.time_stamp)),
                Item::new(Tag::BATCH_COUNT, Value::Integer(self.items.len() as i32)),
            ],
        );
        let mut children = Vec::with_capacity(self.items.len() + 1);
        children.push(header);
        for item in self.items {
            let mut c = Vec::with_capacity(6);
            if let Some(op) = item.operation {
                c.push(Item::new(Tag::OPERATION, Value::Enumeration(op.to_u32())));
            }
            if let Some(id) = item.unique_batch_item_id {
                c.push(Item::new(Tag::UNIQUE_BATCH_ITEM_ID, Value::ByteString(id)));
            }
            c.push(Item::new(
                Tag::RESULT_STATUS,
                Value::Enumeration(item.status.to_u32()),
            ));
            if let Some(r) = item.reason {
                c.push(Item::new(
                    Tag::RESULT_REASON,
                    Value::Enumeration(r.to_u32()),
                ));
            }
            if let Some(m) = item.message {
                c.push(Item::new(Tag::RESULT_MESSAGE, Value::TextString(m)));
            }
            if let Some(p) = item.payload {
                c.push(p);
            }
            children.push(Item::structure(Tag::BATCH_ITEM, c));
        }
        Item::structure(Tag::RESPONSE_MESSAGE, children)
    }
}
