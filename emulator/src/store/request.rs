//! The typed form of each operation's input.
//!
//! The listener validates a request body against the service model first
//! (`model.rs`), so by the time it reaches the store every required member is
//! present and every member has its model type. [`Request::parse`] then reads
//! the body into one small struct per input shape (members named as in
//! `model/eventbridge-partner-api.json`), and the store dispatches on the
//! operation's variant. Members the emulator does not act on (such as
//! `CreateEventBus`'s `Tags`) are not read; unknown members are ignored, as the
//! validation ignores them.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::ApiError;

/// One operation the store serves, with its input.
#[derive(Debug)]
pub(crate) enum Request {
    /// `CreatePartnerEventSource`.
    CreatePartnerEventSource(SourceForAccount),
    /// `DescribePartnerEventSource`.
    DescribePartnerEventSource(Named),
    /// `DeletePartnerEventSource`.
    DeletePartnerEventSource(SourceForAccount),
    /// `ListPartnerEventSourceAccounts`.
    ListPartnerEventSourceAccounts(ListAccounts),
    /// `ListPartnerEventSources`.
    ListPartnerEventSources(ListSources),
    /// `DescribeEventSource`.
    DescribeEventSource(Named),
    /// `CreateEventBus`.
    CreateEventBus(CreateEventBus),
    /// `ActivateEventSource`.
    ActivateEventSource(Named),
    /// `DeactivateEventSource`.
    DeactivateEventSource(Named),
    /// `DeleteEventBus`.
    DeleteEventBus(Named),
    /// `PutPartnerEvents`.
    PutPartnerEvents(PutPartnerEvents),
}

impl Request {
    /// Reads `input`, already validated against the model, as `operation`'s request.
    ///
    /// An operation of the model the emulator does not serve answers
    /// `UnknownOperationException`. Input that does not fit its struct after
    /// validation is a bug of the emulator, so it answers `InternalException`
    /// rather than blaming the client.
    pub(crate) fn parse(operation: &str, input: &Value) -> Result<Request, ApiError> {
        Ok(match operation {
            "CreatePartnerEventSource" => {
                Request::CreatePartnerEventSource(read(operation, input)?)
            }
            "DescribePartnerEventSource" => {
                Request::DescribePartnerEventSource(read(operation, input)?)
            }
            "DeletePartnerEventSource" => {
                Request::DeletePartnerEventSource(read(operation, input)?)
            }
            "ListPartnerEventSourceAccounts" => {
                Request::ListPartnerEventSourceAccounts(read(operation, input)?)
            }
            "ListPartnerEventSources" => Request::ListPartnerEventSources(read(operation, input)?),
            "DescribeEventSource" => Request::DescribeEventSource(read(operation, input)?),
            "CreateEventBus" => Request::CreateEventBus(read(operation, input)?),
            "ActivateEventSource" => Request::ActivateEventSource(read(operation, input)?),
            "DeactivateEventSource" => Request::DeactivateEventSource(read(operation, input)?),
            "DeleteEventBus" => Request::DeleteEventBus(read(operation, input)?),
            "PutPartnerEvents" => Request::PutPartnerEvents(read(operation, input)?),
            other => {
                return Err(ApiError::unknown_operation(format!(
                    "Operation {other} is not emulated"
                )));
            }
        })
    }
}

fn read<T: DeserializeOwned>(operation: &str, input: &Value) -> Result<T, ApiError> {
    T::deserialize(input).map_err(|e| {
        ApiError::internal(format!(
            "{operation} input does not fit after validation: {e}"
        ))
    })
}

/// An input of just a name: `DescribePartnerEventSourceRequest`,
/// `DescribeEventSourceRequest`, `ActivateEventSourceRequest`,
/// `DeactivateEventSourceRequest` and `DeleteEventBusRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Named {
    /// The source (or, for `DeleteEventBus`, bus) name.
    pub(super) name: String,
}

/// `CreatePartnerEventSourceRequest` and `DeletePartnerEventSourceRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SourceForAccount {
    /// The source name (`aws.partner/...`).
    pub(super) name: String,
    /// The customer account the source is shared with.
    pub(super) account: String,
}

/// `ListPartnerEventSourceAccountsRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListAccounts {
    /// The source whose accounts are listed.
    pub(super) event_source_name: String,
    /// The token of the page to continue with.
    pub(super) next_token: Option<String>,
    /// The page size (the model bounds it to 1..=100).
    pub(super) limit: Option<usize>,
}

/// `ListPartnerEventSourcesRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListSources {
    /// Only sources whose name starts with this are listed.
    pub(super) name_prefix: String,
    /// The token of the page to continue with.
    pub(super) next_token: Option<String>,
    /// The page size (the model bounds it to 1..=100).
    pub(super) limit: Option<usize>,
}

/// `CreateEventBusRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateEventBus {
    /// The bus name; for a partner bus, the source's name.
    pub(super) name: String,
    /// The partner event source the bus is for, if it is a partner bus.
    pub(super) event_source_name: Option<String>,
    /// Echoed in the answer.
    pub(super) description: Option<String>,
    /// Echoed in the answer.
    pub(super) kms_key_identifier: Option<String>,
    /// Echoed in the answer exactly as sent (a JSON value, since the emulator
    /// only hands it back).
    pub(super) dead_letter_config: Option<Value>,
    /// Echoed in the answer exactly as sent, like `dead_letter_config`.
    pub(super) log_config: Option<Value>,
}

/// `PutPartnerEventsRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PutPartnerEvents {
    /// The events (the model bounds the list to 1..=20 entries).
    pub(super) entries: Vec<PartnerEventEntry>,
}

/// `PutPartnerEventsRequestEntry`: the members that decide whether an entry
/// is complete enough to be accepted.
///
/// Each is `Some` when the entry names the member, `Some(None)` when it names
/// it as `null`. An entry is judged by the members it names, and the model's
/// validation lets a `null` member through, so `null` is kept apart from absence.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PartnerEventEntry {
    /// The event source the event is from.
    #[serde(default, deserialize_with = "named")]
    pub(super) source: Option<Option<String>>,
    /// The event's detail type.
    #[serde(default, deserialize_with = "named")]
    pub(super) detail_type: Option<Option<String>>,
    /// The event's detail (a JSON document as a string).
    #[serde(default, deserialize_with = "named")]
    pub(super) detail: Option<Option<String>>,
}

/// Reads a member that is present (serde calls this only then), `null` or not.
fn named<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::Model;

    #[test]
    fn every_model_operation_is_emulated() {
        for operation in Model::get().operation_names() {
            // `{}` lacks required members: the answer is an internal error, never "not emulated".
            if let Err(err) = Request::parse(operation, &json!({})) {
                assert_ne!(err.code, "UnknownOperationException", "{operation}");
            }
        }
        let err = Request::parse("PutEvents", &json!({})).expect_err("not emulated");
        assert_eq!(err.code, "UnknownOperationException");
        assert_eq!(err.message, "Operation PutEvents is not emulated");
    }

    #[test]
    fn inputs_read_model_member_names_and_keep_null_apart_from_absence() {
        let input = json!({
            "Name": "bus",
            "Description": null,
            "DeadLetterConfig": {"Arn": "arn:aws:sqs:eu-west-1:222222222222:dlq"},
            "Tags": [{"Key": "k", "Value": "v"}],
        });
        let Request::CreateEventBus(bus) =
            Request::parse("CreateEventBus", &input).expect("parsed")
        else {
            panic!("wrong variant");
        };
        assert_eq!(bus.name, "bus");
        assert_eq!(bus.description, None);
        assert_eq!(bus.event_source_name, None);
        assert_eq!(
            bus.dead_letter_config,
            Some(input["DeadLetterConfig"].clone())
        );

        let input = json!({"Entries": [{"Source": "s", "DetailType": null}]});
        let Request::PutPartnerEvents(put) =
            Request::parse("PutPartnerEvents", &input).expect("parsed")
        else {
            panic!("wrong variant");
        };
        let entry = &put.entries[0];
        assert_eq!(entry.source, Some(Some("s".to_owned())));
        assert_eq!(entry.detail_type, Some(None));
        assert_eq!(entry.detail, None);
    }
}
