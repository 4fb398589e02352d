//! Who signed a request: static keys and the temporary credentials that
//! `AssumeRole` hands out, and the IAM roles tests register.
//!
//! Pure logic over plain values (the current time is a parameter), so the
//! rules are tested without a server or a clock. The STS wire protocol lives
//! in `sts`; this module knows nothing about HTTP.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::error::ApiError;

/// How long `AssumeRole` credentials last when the request names no duration
/// (AWS's default: one hour), unless the role allows less.
pub const DEFAULT_SESSION_DURATION: Duration = Duration::from_secs(3600);
/// The shortest and longest `DurationSeconds` the STS model accepts.
const DURATION_SECONDS: std::ops::RangeInclusive<u64> = 900..=43_200;

/// An IAM role that `AssumeRole` can hand out credentials for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Role {
    /// `arn:aws:iam::<account>:role/<path/><name>`; the account is the one
    /// whose credentials `AssumeRole` returns.
    pub arn: String,
    /// The `ExternalId` the role's trust policy requires, if any.
    pub external_id: Option<String>,
    /// The role's maximum session duration: `AssumeRole` without
    /// `DurationSeconds` gets credentials for the shorter of one hour and
    /// this, and a longer `DurationSeconds` is refused. AWS allows 1 to 12
    /// hours; the emulator takes any duration, so tests can get credentials
    /// that expire within seconds.
    #[serde(
        rename = "max_session_duration_secs",
        serialize_with = "serialize_opt_secs"
    )]
    pub max_session_duration: Option<Duration>,
    /// Whether the role's trust policy lets callers assume it; `false`
    /// answers every `AssumeRole` with `AccessDenied`.
    pub assumable: bool,
}

impl Role {
    /// An assumable role without an external id or a session limit.
    pub fn new(arn: impl Into<String>) -> Role {
        Role {
            arn: arn.into(),
            external_id: None,
            max_session_duration: None,
            assumable: true,
        }
    }

    /// The role with a required external id.
    pub fn with_external_id(mut self, external_id: impl Into<String>) -> Role {
        self.external_id = Some(external_id.into());
        self
    }

    /// The role with a maximum session duration.
    pub fn with_max_session_duration(mut self, max: Duration) -> Role {
        self.max_session_duration = Some(max);
        self
    }

    /// The role, but one its trust policy does not let anyone assume.
    pub fn not_assumable(mut self) -> Role {
        self.assumable = false;
        self
    }

    /// The account of the role's ARN, if the ARN is an IAM role ARN.
    pub fn account(&self) -> Option<&str> {
        parse_role_arn(&self.arn).map(|(account, _)| account)
    }
}

/// A set of temporary credentials `AssumeRole` handed out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionSnapshot {
    /// The `ASIA...` access key id.
    pub access_key_id: String,
    /// The account the credentials act as (the role's account).
    pub account: String,
    /// The assumed role.
    pub role_arn: String,
    /// `RoleSessionName` of the request.
    pub session_name: String,
    /// `arn:aws:sts::<account>:assumed-role/<role name>/<session name>`.
    pub arn: String,
    /// When the credentials stop working.
    #[serde(serialize_with = "serialize_secs")]
    pub expiration: SystemTime,
}

/// Temporary credentials as `AssumeRole` answers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IssuedCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: SystemTime,
    /// `AssumedRoleUser/Arn`.
    pub arn: String,
    /// `AssumedRoleUser/AssumedRoleId`: `<role id>:<session name>`.
    pub assumed_role_id: String,
}

/// Whom a request's credentials act as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    /// The AWS account.
    pub account: String,
    /// The caller's ARN as `GetCallerIdentity` reports it.
    pub arn: String,
    /// The caller's `UserId` as `GetCallerIdentity` reports it.
    pub user_id: String,
}

/// Why credentials were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CredentialError {
    /// Temporary credentials past their expiration.
    Expired,
    /// Temporary credentials signed without their session token, or with another.
    InvalidToken,
}

/// `AssumeRole`'s parameters.
#[derive(Debug, Clone, Default)]
pub(crate) struct AssumeRoleRequest<'a> {
    pub role_arn: &'a str,
    pub session_name: &'a str,
    pub external_id: Option<&'a str>,
    pub duration: Option<Duration>,
}

#[derive(Debug, Clone)]
struct Session {
    secret_access_key: String,
    session_token: String,
    account: String,
    role_arn: String,
    role_name: String,
    role_id: String,
    session_name: String,
    expiration: SystemTime,
}

impl Session {
    fn arn(&self) -> String {
        format!(
            "arn:aws:sts::{}:assumed-role/{}/{}",
            self.account, self.role_name, self.session_name
        )
    }
}

/// The registered roles and every session handed out.
#[derive(Debug)]
pub(crate) struct Identities {
    roles: BTreeMap<String, Role>,
    sessions: HashMap<String, Session>,
    keys: std::hash::RandomState,
    counter: u64,
}

impl Identities {
    pub(crate) fn new() -> Identities {
        Identities {
            roles: BTreeMap::new(),
            sessions: HashMap::new(),
            keys: std::hash::RandomState::new(),
            counter: 0,
        }
    }

    /// Registers (or replaces) a role; a malformed role ARN is refused.
    pub(crate) fn add_role(&mut self, role: Role) -> Result<(), String> {
        if role.account().is_none() {
            return Err(format!(
                "not an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>): {:?}",
                role.arn
            ));
        }
        self.roles.insert(role.arn.clone(), role);
        Ok(())
    }

    /// Forgets a role; sessions already handed out keep working until they expire.
    pub(crate) fn remove_role(&mut self, arn: &str) -> bool {
        self.roles.remove(arn).is_some()
    }

    pub(crate) fn roles(&self) -> Vec<Role> {
        self.roles.values().cloned().collect()
    }

    /// Every session handed out, expired ones included, by access key id.
    pub(crate) fn sessions(&self) -> Vec<SessionSnapshot> {
        let mut out: Vec<SessionSnapshot> = self
            .sessions
            .iter()
            .map(|(key, s)| SessionSnapshot {
                access_key_id: key.clone(),
                account: s.account.clone(),
                role_arn: s.role_arn.clone(),
                session_name: s.session_name.clone(),
                arn: s.arn(),
                expiration: s.expiration,
            })
            .collect();
        out.sort_by(|a, b| a.access_key_id.cmp(&b.access_key_id));
        out
    }

    /// Whom the credentials `access_key_id` (+ `security_token`) act as.
    ///
    /// Keys `AssumeRole` handed out act as the role's account until they
    /// expire and need their session token. A session token with any other
    /// key is refused too (temporary credentials this emulator never issued,
    /// or issued before a reset, must not pass as static keys). Any other key
    /// is a static key:
    /// a 12-digit key is that account (so tests can act as any customer),
    /// anything else is `default_account`, acting as the account's root user.
    pub(crate) fn principal(
        &self,
        access_key_id: &str,
        security_token: Option<&str>,
        now: SystemTime,
        default_account: &str,
    ) -> Result<Principal, CredentialError> {
        if let Some(session) = self.sessions.get(access_key_id) {
            if security_token != Some(session.session_token.as_str()) {
                return Err(CredentialError::InvalidToken);
            }
            if now >= session.expiration {
                return Err(CredentialError::Expired);
            }
            return Ok(Principal {
                account: session.account.clone(),
                arn: session.arn(),
                user_id: format!("{}:{}", session.role_id, session.session_name),
            });
        }
        if security_token.is_some() {
            return Err(CredentialError::InvalidToken);
        }
        let account = static_account(access_key_id, default_account);
        Ok(Principal {
            arn: format!("arn:aws:iam::{account}:root"),
            user_id: account.clone(),
            account,
        })
    }

    /// `AssumeRole` for `caller`: temporary credentials acting as the role's account.
    ///
    /// An unknown role, a role that cannot be assumed, or a missing or wrong
    /// external id are all `AccessDenied` with the same message, as AWS
    /// answers (it does not tell which condition of the trust policy failed).
    pub(crate) fn assume_role(
        &mut self,
        caller: &Principal,
        request: &AssumeRoleRequest<'_>,
        now: SystemTime,
    ) -> Result<IssuedCredentials, ApiError> {
        validate(request)?;
        let (role, account, role_name) = self.trusted_role(caller, request)?;
        let lifetime = session_lifetime(&role, request.duration)?;
        let role_id = format!("AROA{}", self.token(&role.arn, 17, UPPER_ALNUM));
        let seed = format!("{}/{}", request.role_arn, request.session_name);
        let access_key_id = format!("ASIA{}", self.fresh(&seed, 16, UPPER_ALNUM));
        let session = Session {
            secret_access_key: self.fresh(&seed, 40, SECRET_CHARS),
            session_token: format!("IQoJb3JpZ2luX2Vj{}", self.fresh(&seed, 340, SECRET_CHARS)),
            account,
            role_arn: role.arn.clone(),
            role_name,
            role_id,
            session_name: request.session_name.to_owned(),
            // Whole seconds, as the answer writes the time: what the client
            // reads is exactly when the emulator starts refusing the keys.
            expiration: ceil_to_second(now + lifetime),
        };
        let issued = IssuedCredentials {
            access_key_id: access_key_id.clone(),
            secret_access_key: session.secret_access_key.clone(),
            session_token: session.session_token.clone(),
            expiration: session.expiration,
            arn: session.arn(),
            assumed_role_id: format!("{}:{}", session.role_id, session.session_name),
        };
        self.sessions.insert(access_key_id, session);
        Ok(issued)
    }

    /// The registered role `request` names, with its account and role name,
    /// if the role's trust policy lets `caller` assume it.
    fn trusted_role(
        &self,
        caller: &Principal,
        request: &AssumeRoleRequest<'_>,
    ) -> Result<(Role, String, String), ApiError> {
        let denied = || {
            ApiError::new(
                "AccessDenied",
                format!(
                    "User: {} is not authorized to perform: sts:AssumeRole on resource: {}",
                    caller.arn, request.role_arn
                ),
            )
        };
        let role = self
            .roles
            .get(request.role_arn)
            .cloned()
            .ok_or_else(denied)?;
        let Some((account, role_name)) = parse_role_arn(&role.arn) else {
            return Err(denied());
        };
        if !role.assumable
            || role
                .external_id
                .as_deref()
                .is_some_and(|wanted| request.external_id != Some(wanted))
        {
            return Err(denied());
        }
        let (account, role_name) = (account.to_owned(), role_name.to_owned());
        Ok((role, account, role_name))
    }

    /// Characters derived from `seed` that differ on every call.
    fn fresh(&mut self, seed: &str, len: usize, alphabet: &[u8]) -> String {
        self.counter += 1;
        self.token(&format!("{seed}#{}", self.counter), len, alphabet)
    }

    /// `len` characters from `alphabet`, determined by `seed` (per emulator instance).
    fn token(&self, seed: &str, len: usize, alphabet: &[u8]) -> String {
        let mut out = String::with_capacity(len);
        let mut block = 0u64;
        while out.len() < len {
            let mut bits = self.keys.hash_one((seed, block));
            block += 1;
            for _ in 0..8 {
                if out.len() == len {
                    break;
                }
                let index = usize::try_from(bits % alphabet.len() as u64).unwrap_or(0);
                out.push(char::from(alphabet[index]));
                bits /= alphabet.len() as u64;
            }
        }
        out
    }
}

const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// How long credentials for `role` last: the `DurationSeconds` asked for, up
/// to the role's maximum, or the default (at most that maximum).
fn session_lifetime(role: &Role, asked: Option<Duration>) -> Result<Duration, ApiError> {
    let max = role
        .max_session_duration
        .unwrap_or(DEFAULT_SESSION_DURATION);
    match asked {
        Some(asked) if asked > max => Err(ApiError::new(
            "ValidationError",
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        )),
        Some(asked) => Ok(asked),
        None => Ok(DEFAULT_SESSION_DURATION.min(max)),
    }
}

/// The account of a static access key id: the key itself when it is an
/// account id (12 digits), otherwise `default_account`.
pub(crate) fn static_account(access_key_id: &str, default_account: &str) -> String {
    if access_key_id.len() == 12 && access_key_id.bytes().all(|b| b.is_ascii_digit()) {
        access_key_id.to_owned()
    } else {
        default_account.to_owned()
    }
}

/// `(account, role name)` of `arn:aws:iam::<account>:role/<path/><name>`.
fn parse_role_arn(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let path = resource.strip_prefix("role/")?;
    let name = path.rsplit('/').next()?;
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) && valid_name)
        .then_some((account, name))
}

/// `AssumeRole`'s input constraints from the STS model, with AWS's wording.
fn validate(request: &AssumeRoleRequest<'_>) -> Result<(), ApiError> {
    let mut violations = Vec::new();
    check_member(
        &mut violations,
        "roleArn",
        Some(request.role_arn),
        20,
        2048,
        b"",
    );
    check_member(
        &mut violations,
        "roleSessionName",
        Some(request.session_name),
        2,
        64,
        b"+=,.@-",
    );
    check_member(
        &mut violations,
        "externalId",
        request.external_id,
        2,
        1224,
        b"+=,.@:/-",
    );
    if let Some(duration) = request.duration
        && !DURATION_SECONDS.contains(&duration.as_secs())
    {
        let secs = duration.as_secs();
        violations.push(if secs < *DURATION_SECONDS.start() {
            format!(
                "Value '{secs}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
            )
        } else {
            format!(
                "Value '{secs}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200"
            )
        });
    }
    match violations.len() {
        0 => Ok(()),
        1 => Err(ApiError::new(
            "ValidationError",
            format!("1 validation error detected: {}", violations[0]),
        )),
        n => Err(ApiError::new(
            "ValidationError",
            format!("{n} validation errors detected: {}", violations.join("; ")),
        )),
    }
}

/// Adds the violations of one string member: its length in characters
/// within `min..=max`, and, when `extra` is not empty, only word characters
/// and `extra` in it (the model's pattern, named in the message).
fn check_member(
    violations: &mut Vec<String>,
    member: &str,
    value: Option<&str>,
    min: usize,
    max: usize,
    extra: &[u8],
) {
    let Some(value) = value else { return };
    let len = value.chars().count();
    if len < min {
        violations.push(format!(
            "Value '{value}' at '{member}' failed to satisfy constraint: Member must have length greater than or equal to {min}"
        ));
    } else if len > max {
        violations.push(format!(
            "Value '{value}' at '{member}' failed to satisfy constraint: Member must have length less than or equal to {max}"
        ));
    }
    if !extra.is_empty()
        && !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || extra.contains(&b))
    {
        let pattern = if extra.contains(&b':') {
            r"[\w+=,.@:\/-]*"
        } else {
            r"[\w+=,.@-]*"
        };
        violations.push(format!(
            "Value '{value}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}"
        ));
    }
}

fn ceil_to_second(t: SystemTime) -> SystemTime {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let whole = since.as_secs() + u64::from(since.subsec_nanos() > 0);
    UNIX_EPOCH + Duration::from_secs(whole)
}

fn serialize_secs<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

fn serialize_opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::444444444444:role/partner/acme-prod";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn partner() -> Principal {
        Identities::new()
            .principal("AKIDPARTNER", None, at(0), "111111111111")
            .expect("static")
    }

    fn request(external_id: Option<&str>) -> AssumeRoleRequest<'_> {
        AssumeRoleRequest {
            role_arn: ROLE,
            session_name: "op",
            external_id,
            duration: None,
        }
    }

    #[test]
    fn static_keys_are_the_account_root() {
        let ids = Identities::new();
        let p = ids
            .principal("222222222222", None, at(0), "111111111111")
            .expect("static");
        assert_eq!(p.account, "222222222222");
        assert_eq!(p.arn, "arn:aws:iam::222222222222:root");
        assert_eq!(partner().account, "111111111111");
        assert_eq!(
            ids.principal("ASIAUNKNOWN", Some("token"), at(0), "111111111111"),
            Err(CredentialError::InvalidToken),
            "temporary credentials the emulator never issued"
        );
        assert_eq!(static_account("2222222222222", "1"), "1");
    }

    #[test]
    fn assumed_credentials_act_as_the_role_account_until_they_expire() {
        let mut ids = Identities::new();
        ids.add_role(Role::new(ROLE).with_max_session_duration(Duration::from_secs(60)))
            .expect("valid");
        let creds = ids
            .assume_role(&partner(), &request(None), at(0))
            .expect("assumed");
        assert!(creds.access_key_id.starts_with("ASIA") && creds.access_key_id.len() == 20);
        assert_eq!(creds.secret_access_key.len(), 40);
        assert_eq!(
            creds.expiration,
            at(60),
            "the shorter of 1 h and the role's max"
        );
        assert_eq!(
            creds.arn,
            "arn:aws:sts::444444444444:assumed-role/acme-prod/op"
        );
        let token = Some(creds.session_token.as_str());
        let p = ids
            .principal(&creds.access_key_id, token, at(59), "111111111111")
            .expect("valid");
        assert_eq!(p.account, "444444444444");
        assert_eq!(p.arn, creds.arn);
        assert_eq!(p.user_id, creds.assumed_role_id);
        assert!(p.user_id.starts_with("AROA") && p.user_id.ends_with(":op"));
        assert_eq!(
            ids.principal(&creds.access_key_id, token, at(60), "1"),
            Err(CredentialError::Expired)
        );
        assert_eq!(
            ids.principal(&creds.access_key_id, None, at(1), "1"),
            Err(CredentialError::InvalidToken)
        );
        let again = ids
            .assume_role(&partner(), &request(None), at(1))
            .expect("assumed again");
        assert_ne!(again.access_key_id, creds.access_key_id);
    }

    #[test]
    fn unknown_role_external_id_and_trust_are_access_denied() {
        let mut ids = Identities::new();
        let err = ids
            .assume_role(&partner(), &request(None), at(0))
            .expect_err("unknown");
        assert_eq!((err.code.as_str(), err.status), ("AccessDenied", 403));
        assert_eq!(
            err.message,
            format!(
                "User: arn:aws:iam::111111111111:root is not authorized to perform: sts:AssumeRole on resource: {ROLE}"
            )
        );
        ids.add_role(Role::new(ROLE).with_external_id("tenant-7"))
            .expect("valid");
        for wrong in [None, Some("tenant-8")] {
            let err = ids
                .assume_role(&partner(), &request(wrong), at(0))
                .expect_err("external id");
            assert_eq!(err.code, "AccessDenied");
        }
        ids.assume_role(&partner(), &request(Some("tenant-7")), at(0))
            .expect("matching external id");
        ids.add_role(Role::new(ROLE).not_assumable())
            .expect("replaced");
        let err = ids
            .assume_role(&partner(), &request(None), at(0))
            .expect_err("not assumable");
        assert_eq!(err.code, "AccessDenied");
    }

    #[test]
    fn durations_and_validation() {
        let mut ids = Identities::new();
        ids.add_role(Role::new(ROLE)).expect("valid");
        let mut req = request(None);
        req.duration = Some(Duration::from_secs(7200));
        let err = ids
            .assume_role(&partner(), &req, at(0))
            .expect_err("too long");
        assert_eq!((err.code.as_str(), err.status), ("ValidationError", 400));
        req.duration = Some(Duration::from_secs(900));
        let creds = ids.assume_role(&partner(), &req, at(0)).expect("15 min");
        assert_eq!(creds.expiration, at(900));
        req.duration = Some(Duration::from_secs(10));
        req.session_name = "a b";
        let err = ids
            .assume_role(&partner(), &req, at(0))
            .expect_err("invalid");
        assert!(
            err.message.starts_with("2 validation errors detected: "),
            "{}",
            err.message
        );
        assert!(err.message.contains("at 'roleSessionName'"));
        assert!(err.message.contains("at 'durationSeconds'"));
        assert!(ids.add_role(Role::new("arn:aws:iam::1:role/x")).is_err());
        assert!(
            ids.add_role(Role::new("arn:aws:iam::444444444444:user/x"))
                .is_err()
        );
        assert_eq!(Role::new(ROLE).account(), Some("444444444444"));
    }
}
