//! What to do for each condition reason, read from the README's reason tables, so that
//! `status` and the README can never say different things.

use crate::resources::conditions::Reason;

/// The README as it was built into the binary.
const README: &str = include_str!("../../../README.md");

/// The README's "what to do" (its last column) for a reason of condition `type_`, from the
/// table whose header starts with `` | `<type_>` reason ``.
pub(crate) fn what_to_do(type_: &str, reason: Reason) -> Option<&'static str> {
    let header = format!("| `{type_}` reason |");
    let table = README.split(header.as_str()).nth(1)?;
    table
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .find(|row| names(row).any(|name| name == reason.as_str()))
        .and_then(|row| row.trim_end_matches('|').rsplit(" | ").next())
        .map(str::trim)
}

/// The reasons a table row is about: every backquoted word of its first cell.
fn names(row: &str) -> impl Iterator<Item = &str> {
    let first = row
        .trim_start_matches('|')
        .split(" | ")
        .next()
        .unwrap_or("");
    first.split('`').skip(1).step_by(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::conditions::{ACTIVATED, PAUSED, READY};

    #[test]
    fn every_reason_a_condition_can_hold_has_the_readmes_advice() {
        let ready = [
            Reason::Creating,
            Reason::Created,
            Reason::Adopted,
            Reason::Recreated,
            Reason::Expired,
            Reason::Observed,
            Reason::NotFound,
            Reason::NotPermitted,
            Reason::PartnerAccountNotReady,
            Reason::Retrying,
            Reason::InvalidSpec,
            Reason::NameConflict,
            Reason::NoRegion,
            Reason::Deleting,
            Reason::OperationDisabled,
            Reason::AccessDenied,
            Reason::InvalidCredentials,
            Reason::InvalidRequest,
            Reason::Terminal,
        ];
        let activated = [
            Reason::Active,
            Reason::Pending,
            Reason::ExpiringSoon,
            Reason::Deleted,
            Reason::Unknown,
        ];
        let paused = [Reason::Paused, Reason::Resumed];
        for (type_, reasons) in [
            (READY, &ready[..]),
            (ACTIVATED, &activated[..]),
            (PAUSED, &paused[..]),
        ] {
            for reason in reasons {
                let advice = what_to_do(type_, *reason);
                assert!(
                    advice.is_some_and(|a| !a.is_empty() && !a.contains('|')),
                    "no advice for {type_} {reason}: {advice:?}"
                );
            }
        }
        assert_eq!(
            what_to_do(READY, Reason::Adopted),
            Some("re-checked every resync interval"),
            "a row naming several reasons serves each"
        );
        assert_eq!(what_to_do(ACTIVATED, Reason::Active), Some("nothing"));
        assert_eq!(
            what_to_do(READY, Reason::Active),
            None,
            "another table's reason"
        );
    }
}
