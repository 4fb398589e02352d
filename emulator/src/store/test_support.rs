//! What the store's unit tests share: fixed accounts and names, a clock of
//! plain offsets, and calls made the way the listener makes them (typed
//! through [`Request::parse`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::{Caller, Expirations, Request, Store};
use crate::error::ApiError;

pub(super) const PARTNER: &str = "111111111111";
pub(super) const CUSTOMER: &str = "222222222222";
pub(super) const OTHER: &str = "333333333333";
pub(super) const NAME: &str = "aws.partner/acme.com/c1/orders";
pub(super) const ONE_WEEK: Duration = Duration::from_secs(7 * 24 * 3600);
pub(super) const TWO_WEEKS: Duration = Duration::from_secs(14 * 24 * 3600);

pub(super) fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

pub(super) fn caller(account: &str, now: SystemTime) -> Caller<'_> {
    Caller {
        region: "eu-west-1",
        account,
        now,
        expirations: Expirations {
            pending: ONE_WEEK,
            deactivated: TWO_WEEKS,
        },
    }
}

pub(super) fn call(
    store: &mut Store,
    who: &Caller<'_>,
    op: &str,
    input: Value,
) -> Result<Option<Value>, ApiError> {
    store.handle(who, Request::parse(op, &input)?)
}

pub(super) fn create(store: &mut Store, now: SystemTime) {
    call(
        store,
        &caller(PARTNER, now),
        "CreatePartnerEventSource",
        json!({"Name": NAME, "Account": CUSTOMER}),
    )
    .expect("created");
}

pub(super) fn customer_state(store: &mut Store, now: SystemTime) -> Value {
    call(
        store,
        &caller(CUSTOMER, now),
        "DescribeEventSource",
        json!({"Name": NAME}),
    )
    .expect("described")
    .expect("output")
}
