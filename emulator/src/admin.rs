//! The admin API under `/_emulator/`: fault injection, out-of-band actions,
//! inspection and reset, as JSON over HTTP for tests and demos outside Rust.
//! `emulator/README.md` documents every endpoint.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::faults::{RandomFaults, ScriptedError};
use crate::identity::Role;
use crate::shared::{Shared, is_known_operation, known_operations};

type AppState = State<Arc<Shared>>;

/// The admin routes, relative to `/_emulator`.
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/config", get(config).post(set_config))
        .route("/state", get(state))
        .route("/calls", get(calls))
        .route("/faults", get(faults))
        .route("/faults/errors", post(inject_errors))
        .route("/faults/latency", post(set_latency))
        .route("/faults/quota", post(set_quota))
        .route("/faults/random", post(set_random_faults))
        .route("/faults/clear", post(clear_faults))
        .route("/changes", get(changes))
        .route("/sources/delete", post(delete_source))
        .route("/sources/expire", post(expire_source))
        .route("/sources/activate", post(activate_source))
        .route("/sources/deactivate", post(deactivate_source))
        .route("/sources/delete-bus", post(delete_bus))
        .route("/roles", get(roles).post(add_role))
        .route("/roles/delete", post(remove_role))
        .route("/reset", post(reset))
}

fn respond(status: StatusCode, body: Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn bad_request(message: impl std::fmt::Display) -> Response {
    respond(
        StatusCode::BAD_REQUEST,
        json!({ "error": message.to_string() }),
    )
}

/// Parses a JSON request body (an empty body is `{}`).
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| format!("invalid request body: {e}"))
}

fn known_operation(operation: &str) -> Result<(), String> {
    if is_known_operation(operation) {
        Ok(())
    } else {
        Err(format!(
            "unknown operation {operation:?}; known: {}",
            known_operations().join(", ")
        ))
    }
}

async fn config(State(shared): AppState) -> Response {
    let expirations = shared.expirations();
    respond(
        StatusCode::OK,
        json!({
            "region": shared.config.region,
            "partner_account": shared.config.partner_account,
            "pending_expiration_secs": expirations.pending.as_secs_f64(),
            "deactivated_expiration_secs": expirations.deactivated.as_secs_f64(),
            "operations": known_operations(),
        }),
    )
}

async fn state(State(shared): AppState) -> Response {
    let sources = shared.store().sources(SystemTime::now());
    let buses = shared.store().buses();
    respond(
        StatusCode::OK,
        json!({ "sources": sources, "buses": buses }),
    )
}

async fn calls(State(shared): AppState) -> Response {
    let calls = shared.calls().clone();
    match serde_json::to_value(calls) {
        Ok(v) => respond(StatusCode::OK, v),
        Err(e) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": e.to_string() }),
        ),
    }
}

async fn faults(State(shared): AppState) -> Response {
    let faults = shared.faults();
    let view = json!({
        "operations": faults.view(),
        "random": faults.random(),
        "injected": faults.injected(),
    });
    respond(StatusCode::OK, view)
}

/// `{"seed", "error_rate", "spike_rate", "spike_ms", "timeout_rate", "timeout_ms"}`, or
/// `{"off": true}` to stop.
async fn set_random_faults(State(shared): AppState, body: Bytes) -> Response {
    if parse::<Value>(&body).is_ok_and(|v| v.get("off") == Some(&Value::Bool(true))) {
        shared.faults().set_random(None);
        shared.changed();
        return respond(StatusCode::OK, json!({ "random": null }));
    }
    let random: RandomFaults = match parse(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    if let Err(e) = random.check() {
        return bad_request(e);
    }
    shared.faults().set_random(Some(random.clone()));
    shared.changed();
    respond(StatusCode::OK, json!({ "random": random }))
}

async fn changes(State(shared): AppState) -> Response {
    let changes = shared.store().changes();
    match serde_json::to_value(changes) {
        Ok(v) => respond(StatusCode::OK, json!({ "changes": v })),
        Err(e) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": e.to_string() }),
        ),
    }
}

/// One scripted error: a bare code or `{code, message?, status?}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorSpec {
    Code(String),
    Full(ScriptedError),
}

#[derive(Deserialize)]
struct InjectErrors {
    operation: String,
    errors: Vec<ErrorSpec>,
}

async fn inject_errors(State(shared): AppState, body: Bytes) -> Response {
    let req: InjectErrors = match parse(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    if let Err(e) = known_operation(&req.operation) {
        return bad_request(e);
    }
    let errors: Vec<ScriptedError> = req
        .errors
        .into_iter()
        .map(|e| match e {
            ErrorSpec::Code(code) => ScriptedError::code(&code),
            ErrorSpec::Full(full) => full,
        })
        .collect();
    if let Some(bad) = errors.iter().find(|e| e.code.is_empty()) {
        return bad_request(format!("empty error code in {bad:?}"));
    }
    if let Some(bad) = errors
        .iter()
        .find(|e| e.status.is_some_and(|s| !(400..=599).contains(&s)))
    {
        return bad_request(format!("status must be 400..=599, got {bad:?}"));
    }
    let queued = errors.len();
    shared.faults().push_errors(&req.operation, errors);
    shared.changed();
    respond(
        StatusCode::OK,
        json!({ "operation": req.operation, "queued": queued }),
    )
}

#[derive(Deserialize)]
struct SetLatency {
    operation: String,
    latency_ms: u64,
}

async fn set_latency(State(shared): AppState, body: Bytes) -> Response {
    let req: SetLatency = match parse(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    if let Err(e) = known_operation(&req.operation) {
        return bad_request(e);
    }
    shared
        .faults()
        .set_latency(&req.operation, Duration::from_millis(req.latency_ms));
    shared.changed();
    respond(
        StatusCode::OK,
        json!({ "operation": req.operation, "latency_ms": req.latency_ms }),
    )
}

#[derive(Deserialize)]
struct SetQuota {
    operation: String,
    rate_per_sec: f64,
    burst: u32,
}

async fn set_quota(State(shared): AppState, body: Bytes) -> Response {
    let req: SetQuota = match parse(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    if let Err(e) = known_operation(&req.operation) {
        return bad_request(e);
    }
    if !(req.rate_per_sec.is_finite() && req.rate_per_sec >= 0.0) {
        return bad_request("rate_per_sec must be a finite number >= 0");
    }
    shared
        .faults()
        .set_quota(&req.operation, req.rate_per_sec, req.burst, Instant::now());
    shared.changed();
    respond(
        StatusCode::OK,
        json!({ "operation": req.operation, "rate_per_sec": req.rate_per_sec, "burst": req.burst }),
    )
}

#[derive(Deserialize)]
struct ClearFaults {
    #[serde(default)]
    operation: Option<String>,
}

async fn clear_faults(State(shared): AppState, body: Bytes) -> Response {
    let req: ClearFaults = match parse(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    if let Some(op) = &req.operation
        && let Err(e) = known_operation(op)
    {
        return bad_request(e);
    }
    shared.faults().clear(req.operation.as_deref());
    shared.changed();
    respond(
        StatusCode::OK,
        json!({ "cleared": req.operation.as_deref().unwrap_or("*") }),
    )
}

#[derive(Deserialize)]
struct SourceAction {
    name: String,
    #[serde(default)]
    region: Option<String>,
}

/// Runs an out-of-band action on sources by name; 404 when nothing matched.
fn source_action(
    shared: &Shared,
    body: &[u8],
    action: &str,
    run: impl FnOnce(&Shared, &str, Option<&str>) -> usize,
) -> Response {
    let req: SourceAction = match parse(body) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    let affected = run(shared, &req.name, req.region.as_deref());
    shared.changed();
    source_answer(&req.name, action, affected)
}

/// The answer to an out-of-band action: 404 when nothing matched.
fn source_answer(name: &str, action: &str, affected: usize) -> Response {
    if affected == 0 {
        respond(
            StatusCode::NOT_FOUND,
            json!({ "error": format!("no source named {name:?} to {action}") }),
        )
    } else {
        respond(
            StatusCode::OK,
            json!({ "name": name, "affected": affected }),
        )
    }
}

async fn delete_source(State(shared): AppState, body: Bytes) -> Response {
    source_action(&shared, &body, "delete", |s, name, region| {
        s.store()
            .delete_out_of_band(name, region, SystemTime::now())
    })
}

#[derive(Deserialize)]
struct ExpireSource {
    name: String,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    in_secs: f64,
}

async fn expire_source(State(shared): AppState, body: Bytes) -> Response {
    let req: ExpireSource = match parse(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    let Ok(delay) = Duration::try_from_secs_f64(req.in_secs) else {
        return bad_request("in_secs must be a finite number >= 0");
    };
    let now = SystemTime::now();
    let affected = shared
        .store()
        .expire_at(&req.name, req.region.as_deref(), now, now + delay);
    shared.changed();
    source_answer(&req.name, "expire (only pending sources expire)", affected)
}

async fn delete_bus(State(shared): AppState, body: Bytes) -> Response {
    source_action(
        &shared,
        &body,
        "delete the matching bus of",
        |s, name, region| {
            let period = s.expirations().deactivated;
            s.store()
                .delete_bus(name, region, SystemTime::now(), period)
        },
    )
}

#[derive(Deserialize)]
struct SetConfig {
    #[serde(default)]
    pending_expiration_secs: Option<f64>,
    #[serde(default)]
    deactivated_expiration_secs: Option<f64>,
}

/// Changes the expiration periods at run time (for sources created or
/// deactivated afterwards) and answers the whole configuration.
async fn set_config(State(shared): AppState, body: Bytes) -> Response {
    let req: SetConfig = match parse(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    let seconds = |v: Option<f64>, name: &str| {
        v.map(|s| {
            Duration::try_from_secs_f64(s)
                .map_err(|_| format!("{name} must be a finite number >= 0"))
        })
        .transpose()
    };
    let (pending, deactivated) = match (
        seconds(req.pending_expiration_secs, "pending_expiration_secs"),
        seconds(
            req.deactivated_expiration_secs,
            "deactivated_expiration_secs",
        ),
    ) {
        (Ok(p), Ok(d)) => (p, d),
        (Err(e), _) | (_, Err(e)) => return bad_request(e),
    };
    shared.set_expirations(|e| {
        if let Some(p) = pending {
            e.pending = p;
        }
        if let Some(d) = deactivated {
            e.deactivated = d;
        }
    });
    config(State(shared)).await
}

async fn activate_source(State(shared): AppState, body: Bytes) -> Response {
    source_action(&shared, &body, "activate", |s, name, region| {
        s.store().activate(name, region, SystemTime::now())
    })
}

async fn deactivate_source(State(shared): AppState, body: Bytes) -> Response {
    source_action(&shared, &body, "deactivate", |s, name, region| {
        let period = s.expirations().deactivated;
        s.store()
            .deactivate(name, region, SystemTime::now(), period)
    })
}

async fn roles(State(shared): AppState) -> Response {
    let identities = shared.identities();
    let roles: Vec<Value> = identities
        .roles()
        .into_iter()
        .map(|role| {
            let account = role.account().map(str::to_owned);
            let mut v = json!(role);
            v["account"] = json!(account);
            v
        })
        .collect();
    respond(
        StatusCode::OK,
        json!({ "roles": roles, "sessions": identities.sessions() }),
    )
}

#[derive(Deserialize)]
struct AddRole {
    arn: String,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    max_session_duration_secs: Option<f64>,
    #[serde(default = "yes")]
    assumable: bool,
}

fn yes() -> bool {
    true
}

async fn add_role(State(shared): AppState, body: Bytes) -> Response {
    let req: AddRole = match parse(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    let max_session_duration = match req
        .max_session_duration_secs
        .map(Duration::try_from_secs_f64)
        .transpose()
    {
        Ok(max) => max,
        Err(_) => return bad_request("max_session_duration_secs must be a finite number >= 0"),
    };
    let role = Role {
        arn: req.arn,
        external_id: req.external_id,
        max_session_duration,
        assumable: req.assumable,
    };
    let account = role.account().map(str::to_owned);
    let arn = role.arn.clone();
    if let Err(e) = shared.identities().add_role(role) {
        return bad_request(e);
    }
    shared.changed();
    respond(StatusCode::OK, json!({ "arn": arn, "account": account }))
}

#[derive(Deserialize)]
struct RemoveRole {
    arn: String,
}

async fn remove_role(State(shared): AppState, body: Bytes) -> Response {
    let req: RemoveRole = match parse(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    let removed = shared.identities().remove_role(&req.arn);
    shared.changed();
    if removed {
        respond(StatusCode::OK, json!({ "arn": req.arn }))
    } else {
        respond(
            StatusCode::NOT_FOUND,
            json!({ "error": format!("no role {:?}", req.arn) }),
        )
    }
}

async fn reset(State(shared): AppState) -> Response {
    shared.reset();
    respond(StatusCode::OK, json!({ "reset": true }))
}
