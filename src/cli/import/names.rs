//! The `metadata.name` of each imported object: readable where it can be, a stable hash
//! suffix where it must be (too long, or shared with another source), and never the same for
//! two objects of one import.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

/// Longest object name `import` writes: a DNS label, so that the name also fits a label value.
pub(crate) const OBJECT_NAME_MAX_LEN: usize = 63;
/// Hex digits of the hash suffix of a truncated or colliding name.
const HASH_LEN: usize = 8;

/// A DNS label, as Kubernetes checks namespace names (the length apart).
pub(crate) static DNS_LABEL_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").expect("the DNS label pattern is a valid regex")
});

/// 64-bit FNV-1a: small, stable across platforms and releases, which is all a name suffix
/// needs (it is no defence against crafted collisions, and [`object_names`] checks for those).
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The suffix that tells apart objects whose readable names are too long or the same.
fn hash_suffix(source: &str, account: &str) -> String {
    // A zero byte cannot occur in either value, so ("ab", "c") and ("a", "bc") differ.
    let hash = fnv1a(
        source
            .bytes()
            .chain(std::iter::once(0))
            .chain(account.bytes()),
    );
    let folded = (hash >> 32) as u32 ^ hash as u32;
    format!("{folded:0HASH_LEN$x}")
}

/// The readable part of an object name: the source name after `aws.partner/<partner>/`,
/// lowercased, each run of other characters than letters and digits turned into one `-`.
/// `source` when nothing readable is left.
pub(crate) fn readable_name(source: &str) -> String {
    let rest = source
        .strip_prefix("aws.partner/")
        .and_then(|after| after.split_once('/'))
        .map_or(source, |(_partner, rest)| rest);
    let mut name = String::with_capacity(rest.len());
    for c in rest.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            name.push(c);
        } else if !name.is_empty() && !name.ends_with('-') {
            name.push('-');
        }
    }
    let name = name.trim_end_matches('-');
    if name.is_empty() {
        "source".to_owned()
    } else {
        name.to_owned()
    }
}

/// The readable name cut to leave room for the hash suffix.
fn hashed_name(readable: &str, source: &str, account: &str) -> String {
    // The readable name is ASCII, so any byte index is a character boundary.
    let cut = &readable[..readable.len().min(OBJECT_NAME_MAX_LEN - HASH_LEN - 1)];
    format!(
        "{}-{}",
        cut.trim_end_matches('-'),
        hash_suffix(source, account)
    )
}

/// The `metadata.name` of each (source, account), in the same order: the [`readable_name`]
/// when it fits in 63 characters and no other pair gets the same one; otherwise that name cut
/// to fit, then `-` and 8 hex digits of a hash of source and account. The result depends only
/// on the set of pairs, not on their order. Fails only if two pairs still end up with the
/// same name (a hash collision), rather than write two objects that overwrite each other.
pub(crate) fn object_names(pairs: &[(&str, &str)]) -> Result<Vec<String>, String> {
    let readable: Vec<String> = pairs.iter().map(|(s, _)| readable_name(s)).collect();
    let mut hashed: Vec<bool> = readable
        .iter()
        .map(|r| r.len() > OBJECT_NAME_MAX_LEN)
        .collect();
    // Mark every pair that shares its name with another; repeat, since a hashed name could
    // (very rarely) meet a readable one.
    loop {
        let names: Vec<String> = pairs
            .iter()
            .zip(&readable)
            .zip(&hashed)
            .map(|(((source, account), r), &h)| {
                if h {
                    hashed_name(r, source, account)
                } else {
                    r.clone()
                }
            })
            .collect();
        let mut holders: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, name) in names.iter().enumerate() {
            holders.entry(name).or_default().push(i);
        }
        let mut changed = false;
        for (name, idx) in holders.iter().filter(|(_, idx)| idx.len() > 1) {
            if idx.iter().all(|&i| hashed[i]) {
                let who: Vec<String> = idx
                    .iter()
                    .map(|&i| format!("{} for {}", pairs[i].0, pairs[i].1))
                    .collect();
                return Err(format!(
                    "cannot give distinct names to {}: both would be {name}",
                    who.join(" and ")
                ));
            }
            for &i in idx {
                changed |= !hashed[i];
                hashed[i] = true;
            }
        }
        if !changed {
            return Ok(names);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "123456789012";

    fn is_dns_label(name: &str) -> bool {
        name.len() <= OBJECT_NAME_MAX_LEN && DNS_LABEL_RE.is_match(name)
    }

    #[test]
    fn readable_names_drop_the_partner_and_keep_the_rest() {
        let cases = [
            (
                "aws.partner/acme.com/customer-4711/orders",
                "customer-4711-orders",
            ),
            (
                "aws.partner/acme.com/Customer_4711/Orders",
                "customer-4711-orders",
            ),
            ("aws.partner/acme.com/a..b//c", "a-b-c"),
            ("aws.partner/acme.com/-x-/", "x"),
            ("aws.partner/acme.com/___", "source"),
            ("aws.partner/acme.com/4711", "4711"),
        ];
        for (source, name) in cases {
            assert_eq!(readable_name(source), name, "{source}");
        }
    }

    #[test]
    fn names_are_readable_unless_too_long_or_shared() {
        let long = format!("aws.partner/acme.com/{}", "segment/".repeat(20));
        let pairs = [
            ("aws.partner/acme.com/c1/orders", ACCOUNT),
            ("aws.partner/acme.com/C1/Orders", ACCOUNT),
            ("aws.partner/acme.com/c2/orders", ACCOUNT),
            ("aws.partner/acme.com/c3/orders", ACCOUNT),
            ("aws.partner/acme.com/c3/orders", "210987654321"),
            (long.as_str(), ACCOUNT),
        ];
        let names = object_names(&pairs).unwrap();
        assert_eq!(names[2], "c2-orders");
        for i in [0, 1, 3, 4] {
            let n = &names[i];
            assert!(
                n.starts_with(&format!("{}-", readable_name(pairs[i].0))),
                "{n}"
            );
            assert_eq!(
                n.len(),
                readable_name(pairs[i].0).len() + 1 + HASH_LEN,
                "{n}"
            );
        }
        assert!(names[5].starts_with("segment-segment-"), "{}", names[5]);
        assert_eq!(names[5].len(), OBJECT_NAME_MAX_LEN, "{}", names[5]);
        let mut distinct = names.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), names.len(), "{names:?}");
        assert!(names.iter().all(|n| is_dns_label(n)), "{names:?}");
    }

    #[test]
    fn names_depend_on_the_pairs_not_their_order_or_the_run() {
        let pairs: Vec<(String, String)> = (0..40)
            .map(|i| {
                (
                    format!("aws.partner/acme.com/customer-{}/Orders", i % 20),
                    format!("{:012}", 100_000_000_000u64 + i / 20),
                )
            })
            .collect();
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(s, a)| (s.as_str(), a.as_str()))
            .collect();
        let names = object_names(&refs).unwrap();
        let mut reversed = refs.clone();
        reversed.reverse();
        let mut names_reversed = object_names(&reversed).unwrap();
        names_reversed.reverse();
        assert_eq!(names, names_reversed);
        // Pinned, so that a changed hash (which would rename every imported object on the
        // next import) cannot go unnoticed.
        assert_eq!(
            hash_suffix("aws.partner/acme.com/c/orders", ACCOUNT),
            "057d713e"
        );
        assert_eq!(fnv1a(*b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(*b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn a_hashed_name_that_meets_a_readable_one_is_hashed_too() {
        let hashed = object_names(&[
            ("aws.partner/acme.com/x/y", ACCOUNT),
            ("aws.partner/acme.com/X/Y", ACCOUNT),
        ])
        .unwrap();
        // A third source whose readable name is exactly the first one's hashed name.
        let lookalike = format!("aws.partner/acme.com/{}", hashed[0]);
        let names = object_names(&[
            ("aws.partner/acme.com/x/y", ACCOUNT),
            ("aws.partner/acme.com/X/Y", ACCOUNT),
            (lookalike.as_str(), ACCOUNT),
        ])
        .unwrap();
        assert_eq!(names[..2], hashed[..]);
        assert_ne!(names[2], hashed[0]);
        assert!(names[2].starts_with(&format!("{}-", hashed[0])));
    }
}
