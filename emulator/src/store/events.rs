//! `PutPartnerEvents`: the partner sends events to its sources.
//!
//! The emulator delivers events nowhere; it judges each entry as EventBridge
//! does (an entry needs `Source`, `DetailType` and `Detail`), gives each
//! accepted entry an event id and counts the failed ones.

use serde_json::{Value, json};

use super::Store;
use super::request::{PartnerEventEntry, PutPartnerEvents};
use crate::error::ApiError;

impl Store {
    /// Accepts every complete entry and fails the others one by one; a
    /// request without a single complete entry fails as a whole, as the
    /// model's documentation of the entry members says.
    pub(super) fn put_partner_events(
        &mut self,
        input: &PutPartnerEvents,
    ) -> Result<Value, ApiError> {
        if !input.entries.iter().any(complete) {
            return Err(ApiError::validation(
                "Parameters Detail, DetailType and Source are required for at least one entry.",
            ));
        }
        let mut failed = 0;
        let results: Vec<Value> = input
            .entries
            .iter()
            .map(|e| {
                if complete(e) {
                    json!({ "EventId": self.event_ids.next() })
                } else {
                    failed += 1;
                    json!({
                        "ErrorCode": "InvalidArgument",
                        "ErrorMessage": "Parameters Detail, DetailType and Source are required."
                    })
                }
            })
            .collect();
        Ok(json!({ "Entries": results, "FailedEntryCount": failed }))
    }
}

/// Whether the entry names all three members EventBridge needs to send it.
fn complete(entry: &PartnerEventEntry) -> bool {
    entry.source.is_some() && entry.detail_type.is_some() && entry.detail.is_some()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::Store;
    use super::super::test_support::*;

    #[test]
    fn complete_entries_get_ids_and_incomplete_ones_fail_one_by_one() {
        let mut store = Store::new();
        let partner = caller(PARTNER, at(0));
        let entry = json!({"Source": NAME, "DetailType": "order", "Detail": "{}"});
        let out = call(
            &mut store,
            &partner,
            "PutPartnerEvents",
            json!({"Entries": [entry, {"Source": NAME, "Detail": "{}"}, entry]}),
        )
        .expect("put")
        .expect("output");
        assert_eq!(out["FailedEntryCount"], 1);
        let entries = out["Entries"].as_array().expect("array");
        let ids: Vec<&str> = [&entries[0], &entries[2]]
            .iter()
            .map(|e| e["EventId"].as_str().expect("id"))
            .collect();
        assert_ne!(ids[0], ids[1], "every event gets its own id");
        assert_eq!(
            entries[1],
            json!({
                "ErrorCode": "InvalidArgument",
                "ErrorMessage": "Parameters Detail, DetailType and Source are required."
            })
        );
        let err = call(
            &mut store,
            &partner,
            "PutPartnerEvents",
            json!({"Entries": [{"Source": NAME}]}),
        )
        .expect_err("no complete entry");
        assert_eq!(err.code, "ValidationException");
        assert_eq!(
            err.message,
            "Parameters Detail, DetailType and Source are required for at least one entry."
        );
    }
}
