//! One request from tiny_http to the socket, as a short run of steps: read
//! its head, answer it (route, drain refusal, admission, body, handler; a
//! panic becomes a 500), add the common headers, send it, log it, then run
//! the reply's work for afterwards.
//!
//! Probes, preflights and refusals during a drain are answered whatever
//! the load (see [`Service::is_quick`]); everything else must first be
//! admitted by the worker pool.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tiny_http::Request;

use crate::admission::{self, Admitted};
use crate::app::App;
use crate::error::ApiError;
use crate::http::body::{check_content_type, read_body};
use crate::http::cors;
use crate::http::send::{send, Sent};
use crate::http::workers::Service;
use crate::http::{ClientWatch, Head, Incoming, Reply, TurnFacts};
use crate::metrics;
use crate::mode::Mode;
use crate::ratelimit::KeySlot;
use crate::routes::{self, Route};

const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("X-Content-Type-Options", "nosniff"),
    ("Cache-Control", "no-store"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "default-src 'none'"),
    ("Referrer-Policy", "no-referrer"),
];

impl Service for App {
    fn is_quick(&self, rq: &Request) -> bool {
        if self.draining.load(Ordering::SeqCst) {
            return true;
        }
        let path = rq.url().split('?').next().unwrap_or("");
        match rq.method().as_str() {
            "GET" => path == "/health" || path == "/v1/models",
            "OPTIONS" => true,
            _ => false,
        }
    }

    fn serve(&self, rq: Request) {
        serve(self, rq);
    }

    fn refuse_busy(&self, rq: Request) {
        let head = Head::of(&rq, self.config.trust_proxy);
        let busy = ApiError::CapacityExceeded {
            retry_after_secs: 1,
        };
        finish(
            self,
            rq,
            &head,
            Err(busy),
            Learnt::default(),
            Instant::now(),
        );
    }
}

/// What the steps learn about a request on the way, for the headers and
/// the access log, whatever the answer turns out to be.
#[derive(Default)]
struct Learnt {
    route: Option<Route>,
    mode: Option<Mode>,
    key_mask: Option<String>,
    /// `X-RateLimit-*` of a limited route, on every answer it gives.
    limit_headers: Vec<(String, String)>,
    /// Held while the request is worked on (see [`send`]).
    key_slot: Option<KeySlot>,
    /// Ended before the answer is written (see [`ClientWatch`]).
    client: Option<Arc<ClientWatch>>,
}

pub fn serve(app: &App, mut rq: Request) {
    let started = Instant::now();
    let head = Head::of(&rq, app.config.trust_proxy);
    let mut learnt = Learnt::default();
    let result = catch_unwind(AssertUnwindSafe(|| steps(app, &mut rq, &head, &mut learnt)))
        .unwrap_or_else(|_| {
            log::error!("handler panicked (request_id={})", head.request_id);
            Err(ApiError::InternalError {
                message: "Internal server error.".into(),
            })
        });
    finish(app, rq, &head, result, learnt, started);
}

/// The steps up to a reply; each records what it learnt in `learnt`.
fn steps(app: &App, rq: &mut Request, head: &Head, learnt: &mut Learnt) -> Result<Reply, ApiError> {
    if head.method == "OPTIONS" {
        return Ok(Reply::bytes(204, "text/plain", Vec::new()));
    }
    let route = routes::resolve(&head.method, &head.path)?;
    learnt.route = Some(route);
    if app.draining.load(Ordering::SeqCst) && route != Route::Health {
        return Err(ApiError::ServerShuttingDown);
    }
    let mut incoming = Incoming::from_head(rq, head);
    let mut over_key_limit = None;
    let open_metrics = route == Route::Metrics && app.config.metrics_public;
    if route.needs_auth() && !open_metrics {
        let admitted =
            admission::admit(app, &incoming, route.speaks_anthropic()).map_err(|refused| {
                learnt.key_mask = refused.key_mask;
                learnt.limit_headers = refused.limit_headers;
                refused.error
            })?;
        let Admitted {
            key,
            key_mask,
            limit_headers,
            key_slot,
            over_key_limit: over,
        } = admitted;
        (learnt.key_mask, learnt.limit_headers, learnt.key_slot) =
            (key_mask, limit_headers, key_slot);
        incoming.api_key = key;
        over_key_limit = over;
    }
    learnt.mode = routes::mode(route, &incoming)?;
    // A relayed body streams to the upstream as it arrives: never held here.
    let relay = route.relays(learnt.mode);
    // Held for as long as the body is: until the handler has answered.
    let mut body_permit = app.bodies.permit();
    if head.method == "POST" && !relay {
        check_content_type(incoming.header("Content-Type"))?;
        let limit = app.config.max_body_bytes;
        incoming.body = read_body(rq, limit, app.config.body_timeout, &mut body_permit)?;
    }
    if let Some(refusal) = over_key_limit {
        let carries_results = learnt.mode == Some(Mode::ClaudeCode)
            && !relay
            && routes::carries_tool_results(route, &incoming.body);
        learnt.key_slot = admission::settle_key_limit(
            app,
            &incoming,
            refusal,
            carries_results,
            learnt.key_mask.clone(),
        )?;
    }
    if relay {
        return app.passthrough.forward(&incoming, rq.as_reader());
    }
    if learnt.mode == Some(Mode::ClaudeCode) && head.method == "POST" {
        let client = ClientWatch::of(rq);
        learnt.client = Some(client.clone());
        incoming.client = Some(client);
    }
    routes::handle(app, route, learnt.mode, &incoming)
}

/// Turns the answer into a response with the common headers, sends it,
/// logs it, then runs the reply's afterwards work.
fn finish(
    app: &App,
    rq: Request,
    head: &Head,
    result: Result<Reply, ApiError>,
    learnt: Learnt,
    started: Instant,
) {
    let Learnt {
        route,
        mode,
        key_mask,
        mut limit_headers,
        key_slot,
        client,
    } = learnt;
    // In passthrough mode an answer (not an error of ours) is the upstream's.
    let answered_by_upstream = mode == Some(Mode::Passthrough) && result.is_ok();
    let mut reply = match result {
        Ok(reply) => reply,
        Err(err) => {
            if let Some(own) = app.limiter.refusal_headers(&err) {
                limit_headers = own;
            }
            count_error(app, mode, &err);
            error_reply(head, &err)
        }
    };
    if answered_by_upstream && reply.status >= 400 {
        app.metrics.upstream_error(reply.status.to_string());
    }
    let streaming = matches!(reply.body, crate::http::Body::Stream(_));
    let facts = reply.turn.take();
    let session_id = facts.as_ref().map(|f| f.session_id.clone());
    let warm = facts.as_ref().map(|f| f.warm);
    let account = facts.as_ref().map(|f| f.account.clone());
    let usage_warning = account
        .as_deref()
        .and_then(|name| app.allowance.of(name).warning());
    reply
        .headers
        .extend(facts.iter().flat_map(TurnFacts::headers));
    if let Some(warning) = &usage_warning {
        reply
            .headers
            .push(("X-Claude-Usage-Warning".into(), warning.clone()));
    }
    // Claude Code, as a client of the Messages API, shows its user the
    // allowance from Anthropic's own headers.
    if route.is_some_and(Route::speaks_anthropic) {
        let name = account.as_deref().unwrap_or_default();
        reply
            .headers
            .extend(app.allowance.of(name).unified_headers());
    }
    reply.headers.extend(common_headers(app, head, mode));
    reply.headers.append(&mut limit_headers);
    if streaming {
        app.metrics.stream_opened();
    }
    let sent = send(rq, reply, client.as_deref(), move || drop(key_slot));
    if streaming {
        app.metrics.stream_closed();
    }
    app.metrics.request(&metrics::Finished {
        route: route.map_or("unknown", Route::label),
        mode,
        status: sent.status,
        elapsed: started.elapsed(),
    });
    let claude = ClaudeTurn {
        session_id,
        warm,
        usage_warning,
        account,
    };
    access_log(head, &sent, mode, key_mask, claude, started);
    for work in sent.afterwards {
        work();
    }
}

/// Errors the metrics count by kind: rate-limit refusals by limit, and the
/// passthrough's failures to reach its upstream.
fn count_error(app: &App, mode: Option<Mode>, err: &ApiError) {
    match err {
        ApiError::RateLimitExceeded { scope, .. } => app.metrics.rate_limited(scope),
        ApiError::CapacityExceeded { .. } => app.metrics.rate_limited("capacity"),
        ApiError::UpstreamUnreachable if mode == Some(Mode::Passthrough) => {
            app.metrics.upstream_error("unreachable".into())
        }
        ApiError::Timeout { .. } if mode == Some(Mode::Passthrough) => {
            app.metrics.upstream_error("timeout".into())
        }
        _ => {}
    }
}

fn error_reply(head: &Head, err: &ApiError) -> Reply {
    if err.status() >= 500 {
        log::warn!(
            "{}",
            json!({"event": "request_error", "request_id": head.request_id, "code": err.code()})
        );
    }
    // Anthropic's SDKs read errors in their own shape, whatever raised them.
    let body = if routes::speaks_anthropic(&head.path) {
        serde_json::to_vec(&err.anthropic_body()).unwrap_or_default()
    } else {
        err.to_json_bytes()
    };
    let reply = Reply::bytes(err.status(), "application/json", body);
    err.extra_headers()
        .into_iter()
        .fold(reply, |r, (k, v)| r.with_header(k, v))
}

fn common_headers(app: &App, head: &Head, mode: Option<Mode>) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::with_capacity(12);
    headers.push(("X-Request-ID".into(), head.request_id.clone()));
    for (k, v) in SECURITY_HEADERS {
        headers.push((k.to_string(), v.to_string()));
    }
    let allowed = &app.config.cors_allowed_origins;
    headers.extend(if head.method == "OPTIONS" {
        cors::preflight_headers(allowed, head.origin.as_deref())
    } else {
        cors::response_headers(allowed, head.origin.as_deref())
    });
    if let Some(mode) = mode {
        headers.push(("X-Backend-Mode".into(), mode.header_value().into()));
    }
    headers
}

/// What the access log tells of a Claude Code turn.
struct ClaudeTurn {
    session_id: Option<String>,
    /// Whether the turn ran on a child that was already up.
    warm: Option<bool>,
    /// The allowance's warning, when a window is nearly spent.
    usage_warning: Option<String>,
    /// The login the turn ran on.
    account: Option<String>,
}

fn access_log(
    head: &Head,
    sent: &Sent,
    mode: Option<Mode>,
    key_mask: Option<String>,
    claude: ClaudeTurn,
    started: Instant,
) {
    if !log::log_enabled!(target: "access", log::Level::Info) {
        return;
    }
    let mut line = json!({
        "event": "request",
        "request_id": head.request_id,
        "method": head.method,
        "path": head.path,
        "status": sent.status,
        "duration_ms": (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0,
        "client_ip": head.client_ip.to_string(),
    });
    if let Some(mode) = mode {
        line["mode"] = mode.header_value().into();
    }
    if let Some(key) = key_mask {
        line["key"] = key.into();
    }
    if let Some(sid) = claude.session_id {
        line["session_id"] = sid.into();
    }
    if let Some(warm) = claude.warm {
        line["warm"] = warm.into();
    }
    if let Some(account) = claude.account {
        line["account"] = account.into();
    }
    if let Some(warning) = claude.usage_warning {
        line["usage_warning"] = warning.into();
    }
    if let Some((events, broken)) = sent.stream {
        line["stream_events"] = events.into();
        line["client_gone"] = broken.into();
    }
    log::info!(target: "access", "{line}");
}
