//! Registration, sign-in, refresh and sign-out. Browsers get the refresh token in an httpOnly
//! cookie as well as in the JSON; API clients use the JSON.

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hearth_core::api::{AuthResponse, AuthStatus, LoginRequest, RefreshRequest, RegisterRequest};
use hearth_core::CoreError;

use crate::error::ApiError;
use crate::extract::{parse_json, read_body, ClientIp, Json, LenientAuth};
use crate::state::AppState;

const REFRESH_COOKIE: &str = "hearth_refresh";
const COOKIE_PATH: &str = "/api/v1/auth";

/// Whether setup is needed, and how registration works.
#[utoipa::path(get, path = "/api/v1/auth/status", tag = "auth", responses((status = 200, body = AuthStatus)))]
pub async fn status(State(state): State<AppState>) -> Result<axum::Json<AuthStatus>, ApiError> {
    Ok(axum::Json(state.accounts.status().await?))
}

/// Create an account and sign in. The first account becomes admin.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = AuthResponse), (status = 400, body = hearth_core::api::ErrorBody), (status = 403), (status = 409), (status = 422), (status = 429)))]
pub async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<RegisterRequest>,
) -> Result<Response, ApiError> {
    let auth = state.accounts.register(req, ip).await?;
    Ok(with_cookie(StatusCode::CREATED, auth, &state, true))
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = AuthResponse), (status = 401), (status = 403), (status = 429)))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    let auth = state.accounts.login(req, ip).await?;
    Ok(with_cookie(StatusCode::OK, auth, &state, true))
}

/// Exchange a refresh token (body or cookie) for a new pair. Reusing one revokes the session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = AuthResponse), (status = 401), (status = 429)))]
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    OptionalJson(req): OptionalJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    // A token from the body goes back in the body (API clients); one from the cookie goes
    // back only in the cookie, so scripts in the page never hold a refresh token.
    let (token, in_body) = match req.refresh_token {
        Some(token) => (token, true),
        None => {
            let token = cookie(&headers, REFRESH_COOKIE).ok_or_else(|| {
                ApiError::Core(CoreError::Unauthorized(
                    "no refresh token in the body or cookie".into(),
                ))
            })?;
            (token, false)
        }
    };
    match state.accounts.refresh(&token).await {
        Ok(auth) => Ok(with_cookie(StatusCode::OK, auth, &state, in_body)),
        Err(e) => {
            let mut response = ApiError::from(e).into_response();
            // A dead token clears the cookie; a server fault must not sign the user out.
            if matches!(
                response.status(),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
            ) {
                clear_cookie(&mut response, &state);
            }
            Ok(response)
        }
    }
}

/// End the session (of the access token, and of the refresh token in the body or cookie).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204)), security((), ("bearer" = [])))]
pub async fn logout(
    State(state): State<AppState>,
    LenientAuth(principal): LenientAuth,
    headers: HeaderMap,
    OptionalJson(req): OptionalJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    let token = req
        .refresh_token
        .or_else(|| cookie(&headers, REFRESH_COOKIE));
    state
        .accounts
        .logout(principal.as_ref(), token.as_deref())
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    clear_cookie(&mut response, &state);
    Ok(response)
}

fn with_cookie(
    status: StatusCode,
    mut auth: AuthResponse,
    state: &AppState,
    in_body: bool,
) -> Response {
    let cookie = format!(
        "{REFRESH_COOKIE}={}; Path={COOKIE_PATH}; Max-Age={}; HttpOnly; SameSite=Strict{}",
        auth.refresh_token,
        state.accounts.refresh_token_ttl_secs(),
        if state.settings.server.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    if !in_body {
        auth.refresh_token.clear();
    }
    let mut response = (status, axum::Json(auth)).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        headers.append(header::SET_COOKIE, v);
    }
    // Tokens must not land in any cache.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn clear_cookie(response: &mut Response, state: &AppState) {
    let cookie = format!(
        "{REFRESH_COOKIE}=; Path={COOKIE_PATH}; Max-Age=0; HttpOnly; SameSite=Strict{}",
        if state.settings.server.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

/// A JSON body that may be absent (an empty body means the default).
pub struct OptionalJson<T>(pub T);

impl<T: serde::de::DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let has_body = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_none_or(|v| v != "0");
        if req.headers().get(header::CONTENT_TYPE).is_none() {
            let bytes = read_body(req, state).await?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalJson(T::default()));
            }
            return parse_json(&bytes).map(OptionalJson);
        }
        if !has_body {
            return Ok(OptionalJson(T::default()));
        }
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| OptionalJson(v))
    }
}
