//! Tests of `ApiError`: the error table of PRODUCT_SPEC §9.6 row by row, and
//! the headers an error adds.

use super::*;

/// PRODUCT_SPEC §9.6, one row each: status, type, code.
#[test]
fn every_row_of_the_error_table() {
    let rows: Vec<(ApiError, u16, &str, &str)> = vec![
        (
            ApiError::MissingRequiredParameter { param: "model" },
            400,
            "invalid_request_error",
            "missing_required_parameter",
        ),
        (
            ApiError::UnsupportedParameter {
                param: "tools".into(),
                message: "x".into(),
            },
            400,
            "invalid_request_error",
            "unsupported_parameter",
        ),
        (
            ApiError::ModelNotFound {
                model: "o1".into(),
                valid: vec!["sonnet"],
            },
            400,
            "invalid_request_error",
            "model_not_found",
        ),
        (
            ApiError::MissingApiKey,
            401,
            "authentication_error",
            "missing_api_key",
        ),
        (
            ApiError::BackendAuthFailed,
            401,
            "authentication_error",
            "backend_auth_failed",
        ),
        (
            ApiError::SessionBusy,
            429,
            "rate_limit_error",
            "session_busy",
        ),
        (
            ApiError::SessionInUse,
            409,
            "invalid_request_error",
            "session_busy",
        ),
        (
            ApiError::RateLimitExceeded {
                retry_after_secs: 3,
                scope: "ip",
            },
            429,
            "rate_limit_error",
            "rate_limit_exceeded",
        ),
        (
            ApiError::CapacityExceeded {
                retry_after_secs: 1,
            },
            429,
            "rate_limit_error",
            "capacity_exceeded",
        ),
        (
            ApiError::PassthroughNotConfigured,
            503,
            "server_error",
            "passthrough_not_configured",
        ),
        (
            ApiError::BackendUnavailable { reason: "x".into() },
            503,
            "server_error",
            "backend_unavailable",
        ),
        (
            ApiError::InternalError {
                message: "x".into(),
            },
            500,
            "server_error",
            "internal_error",
        ),
        (
            ApiError::Timeout { what: "request" },
            504,
            "server_error",
            "timeout",
        ),
        (
            ApiError::InvalidHeaderValue {
                header: "X-Claude-Code",
                message: "x".into(),
            },
            400,
            "invalid_request_error",
            "invalid_header_value",
        ),
        (
            ApiError::InvalidSessionId,
            400,
            "invalid_request_error",
            "invalid_session_id",
        ),
        (
            ApiError::SessionNotFound { id: "x".into() },
            404,
            "invalid_request_error",
            "session_not_found",
        ),
        (
            ApiError::PayloadTooLarge {
                limit: 1,
                setting: "MAX_BODY_BYTES",
            },
            413,
            "invalid_request_error",
            "payload_too_large",
        ),
        (
            ApiError::UnsupportedMediaType,
            415,
            "invalid_request_error",
            "unsupported_media_type",
        ),
        (
            ApiError::PassthroughDisabled,
            503,
            "server_error",
            "passthrough_disabled",
        ),
        (
            ApiError::ServerShuttingDown,
            503,
            "server_error",
            "server_shutting_down",
        ),
    ];
    for (err, status, kind, code) in rows {
        assert_eq!(err.status(), status, "{err:?}");
        assert_eq!(err.kind(), kind, "{err:?}");
        assert_eq!(err.code(), code, "{err:?}");
        let body = err.body();
        assert_eq!(body["error"]["code"], code);
        assert!(!body["error"]["message"].as_str().unwrap_or("").is_empty());
        assert!(body["error"]
            .as_object()
            .is_some_and(|o| o.contains_key("param")));
    }
}

#[test]
fn retry_after_is_carried() {
    let e = ApiError::RateLimitExceeded {
        retry_after_secs: 7,
        scope: "ip",
    };
    assert_eq!(e.extra_headers(), vec![("Retry-After", "7".to_string())]);
}
