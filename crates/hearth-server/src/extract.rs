//! Extractors: JSON bodies with field-named errors, the authenticated principal, the client IP.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use hearth_core::access::{Area, Principal};
use hearth_core::CoreError;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body. Syntax errors are 400 `malformed_json`; a missing or wrong-typed field is 422
/// `invalid_field` naming the field.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::request(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a JSON body with Content-Type: application/json",
                None,
            ));
        }
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(Json)
    }
}

/// The whole body, with a 413 when it is over the limit.
pub async fn read_body<S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<axum::body::Bytes, ApiError> {
    axum::body::Bytes::from_request(req, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::request(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "request body is too large",
                    None,
                )
            } else {
                ApiError::request(
                    StatusCode::BAD_REQUEST,
                    "bad_body",
                    "could not read the request body",
                    None,
                )
            }
        })
}

/// Parses a JSON body, naming the field at fault. Every body is a JSON object (serde would
/// otherwise read a struct from an array, by position). The body is read straight into `T`:
/// only a body whose whole-number float (`2.0`) an integer field refused is read a second time,
/// through a `Value` (see [`whole_numbers_as_integers`]), so no other body is held twice.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let malformed = |e: serde_json::Error| {
        ApiError::request(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("malformed JSON: {e}"),
            None,
        )
    };
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        // The syntax is checked without building anything: bad JSON is still 400.
        serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(malformed)?;
        return Err(ApiError::request(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "the body must be a JSON object",
            None,
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(&mut *de) {
        Ok(value) => {
            de.end().map_err(malformed)?;
            Ok(value)
        }
        Err(err)
            if err
                .inner()
                .to_string()
                .starts_with("invalid type: floating point") =>
        {
            let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(malformed)?;
            whole_numbers_as_integers(&mut value);
            serde_path_to_error::deserialize(value).map_err(field_error)
        }
        Err(err) => Err(field_error(err)),
    }
}

/// A body that is JSON but not what the endpoint takes: 422 naming the field (400 for a
/// syntax error found while reading it).
fn field_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    let message = inner.to_string();
    if inner.is_syntax() || inner.is_eof() {
        return ApiError::request(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("malformed JSON: {message}"),
            None,
        );
    }
    // serde reports a missing field at the parent's path; take its name from the message.
    let missing = message
        .split_once("missing field `")
        .and_then(|(_, rest)| rest.split('`').next());
    let field = match (path.as_str(), missing) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => String::new(),
        (p, Some(name)) => format!("{p}.{name}"),
        (p, None) => p.to_owned(),
    };
    let message = if message.starts_with("missing field") {
        format!("{field} is required")
    } else if field.is_empty() {
        strip_position(&message)
    } else {
        format!("{field}: {}", strip_position(&message))
    };
    ApiError::request(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        message,
        (!field.is_empty()).then_some(field),
    )
}

/// JSON has one number type: `2.0` is the integer 2 to a JSON Schema, so an integer field takes
/// it too. Floats with no fraction become integers (fields typed as floats take those as well).
/// serde_json's parser bounds nesting at 128, so the walk is bounded too.
fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                // Exactly representable range only: beyond 2^53 a float is not one integer.
                if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 {
                    *n = serde_json::Number::from(f as i64);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        serde_json::Value::Object(map) => map.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

/// serde_json appends " at line 1 column 17"; clients need the field, not the column.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// The authenticated caller, from `Authorization: Bearer <access token or API key>`.
pub struct Auth(pub Principal);

impl<S> FromRequestParts<S> for Auth
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or_else(|| {
            ApiError::Core(CoreError::Unauthorized(
                "missing Authorization: Bearer token".into(),
            ))
        })?;
        let state = AppState::from_ref(state);
        let principal = state.accounts.authenticate(&token).await?;
        tracing::Span::current().record("user.id", tracing::field::display(principal.user_id()));
        // The router gives every authenticated route its area; one without refuses API keys.
        let reading = parts.method == Method::GET || parts.method == Method::HEAD;
        match parts.extensions.get::<Area>() {
            Some(area) => principal.may(*area, reading)?,
            None if principal.session().is_none() => {
                return Err(ApiError::Core(CoreError::Forbidden(
                    "this route does not take API keys".into(),
                )))
            }
            None => {}
        }
        Ok(Auth(principal))
    }
}

/// The caller when valid credentials were sent, `None` otherwise (no error). For sign-out,
/// which must work with an expired access token.
pub struct LenientAuth(pub Option<Principal>);

impl<S> FromRequestParts<S> for LenientAuth
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(LenientAuth(
            Auth::from_request_parts(parts, state)
                .await
                .ok()
                .map(|Auth(p)| p),
        ))
    }
}

pub(crate) fn bearer(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// The client's IP: the TCP peer, or, when the peer is a trusted proxy
/// (`server.trusted_proxies`), the nearest address in `X-Forwarded-For` that is not one.
pub struct ClientIp(pub IpAddr);

impl<S> FromRequestParts<S> for ClientIp
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        Ok(ClientIp(client_of(parts, &state)))
    }
}

/// The client of a request (see [`ClientIp`]).
pub(crate) fn client_of(parts: &Parts, state: &AppState) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let forwarded = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    client_ip(peer, forwarded, &state.settings.server.trusted_proxies)
}

/// Walks `X-Forwarded-For` from the nearest hop while the hop is a trusted proxy: the first
/// address that is not one is the client (addresses further left were written by the client
/// itself and prove nothing). A malformed entry stops the walk at the proxy that passed it.
pub(crate) fn client_ip<'a>(
    peer: IpAddr,
    forwarded: impl Iterator<Item = &'a str>,
    trusted: &[crate::settings::ProxyRange],
) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|range| range.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded.flat_map(|v| v.split(',')).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop_address(hop.trim()) {
            Some(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, or one with a port (`1.2.3.4:80`, `[::1]:80`), as
/// some proxies write it.
fn hop_address(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

#[cfg(test)]
mod client_ip_tests {
    use super::*;
    use crate::settings::ProxyRange;

    fn ranges(entries: &[&str]) -> Vec<ProxyRange> {
        entries
            .iter()
            .map(|e| ProxyRange::try_from(e.to_string()).expect("range"))
            .collect()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let proxies = ranges(&["10.0.0.0/8", "127.0.0.1"]);
        // A stranger's header is ignored.
        assert_eq!(
            client_ip(ip("203.0.113.9"), ["1.2.3.4"].into_iter(), &proxies),
            ip("203.0.113.9")
        );
        // Through one proxy: the address it saw.
        assert_eq!(
            client_ip(ip("127.0.0.1"), ["198.51.100.7"].into_iter(), &proxies),
            ip("198.51.100.7")
        );
        // Through two: the client's own claim on the left is not believed.
        assert_eq!(
            client_ip(
                ip("127.0.0.1"),
                ["6.6.6.6, 198.51.100.7", "10.1.2.3"].into_iter(),
                &proxies
            ),
            ip("198.51.100.7")
        );
        // Proxies that write ports.
        assert_eq!(
            client_ip(
                ip("127.0.0.1"),
                ["198.51.100.7:51234"].into_iter(),
                &proxies
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), ["[2001:db8::7]:443"].into_iter(), &proxies),
            ip("2001:db8::7")
        );
        // Garbage stops at the proxy that passed it; no header means the proxy itself.
        assert_eq!(
            client_ip(ip("127.0.0.1"), ["not-an-ip"].into_iter(), &proxies),
            ip("127.0.0.1")
        );
        assert_eq!(
            client_ip(ip("10.0.0.5"), std::iter::empty(), &proxies),
            ip("10.0.0.5")
        );
        assert!(ProxyRange::try_from("10.0.0.0/99".to_string()).is_err());
        assert!(ProxyRange::try_from("proxy.local".to_string()).is_err());
    }
}

/// Query parameters; a malformed one is 400 `invalid_query` with the parser's message.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(query));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|err| {
                let field = err.path().to_string();
                let message = err.into_inner().to_string();
                let field = (field != ".").then_some(field);
                ApiError::request(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    match &field {
                        Some(f) => format!("query parameter {f}: {message}"),
                        None => format!("query: {message}"),
                    },
                    field,
                )
            })
    }
}

fn form_urlencoded_parse(query: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(query.as_bytes())
}

#[cfg(test)]
mod tests {
    use hearth_core::api::RegisterRequest;
    use proptest::prelude::*;

    use super::parse_json;
    use crate::error::ApiError;

    const FIELDS: [&str; 4] = ["email", "password", "name", "invite_token"];

    fn status_of<T: serde::de::DeserializeOwned>(body: &str) -> Option<u16> {
        match parse_json::<T>(body.as_bytes()) {
            Ok(_) => None,
            Err(ApiError::Request { status, .. }) => Some(status.as_u16()),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bodies_are_objects_and_whole_floats_are_integers() {
        #[derive(serde::Deserialize)]
        struct Days {
            #[allow(dead_code)]
            days: u32,
        }
        assert_eq!(status_of::<Days>(r#"{"days": 30}"#), None);
        assert_eq!(status_of::<Days>(r#"{"days": 30.0}"#), None, "2.0 is 2");
        assert_eq!(status_of::<Days>(r#"{"days": 30.5}"#), Some(422));
        assert_eq!(status_of::<Days>("[30]"), Some(422), "not read by position");
        assert_eq!(status_of::<Days>("not json"), Some(400));
        assert_eq!(status_of::<Days>(r#"{"days": 30} trailing"#), Some(400));
    }

    #[test]
    fn deep_nesting_is_refused_not_followed() {
        // Past serde_json's depth limit (128) the parser stops: 400, no stack overflow.
        let deep = format!(
            r#"{{"days": {}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert_eq!(status_of::<serde_json::Value>(&deep), Some(400));
        // Not an object: its syntax is checked by skipping (no recursion, no tree), then 422.
        let deep_array = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(status_of::<serde_json::Value>(&deep_array), Some(422));
    }

    proptest! {
        #[test]
        fn any_bytes_give_a_value_or_a_named_4xx(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Err(ApiError::Request { status, field, .. }) = parse_json::<RegisterRequest>(&bytes) {
                prop_assert!(status.is_client_error());
                prop_assert!(field.is_none_or(|f| !f.is_empty()));
            }
        }

        #[test]
        fn wrong_types_name_their_field(field in proptest::sample::select(&FIELDS[..]), value in any::<i64>()) {
            let mut body = serde_json::json!({"email": "a@x.io", "password": "correct-horse-battery"});
            body[field] = serde_json::json!(value);
            match parse_json::<RegisterRequest>(body.to_string().as_bytes()) {
                Err(ApiError::Request { field: Some(named), .. }) => prop_assert_eq!(named, field),
                Err(other) => prop_assert!(false, "unexpected error {other:?}"),
                Ok(_) => prop_assert!(false, "a number is not a string"),
            }
        }
    }
}
