//! The viewer's security rules, in one place. Everything an op wrote is hostile, and so is any
//! page in the user's browser that is not this one:
//! - a request whose `Host` is not the address listened on is refused (DNS rebinding: a foreign
//!   page whose name resolves to 127.0.0.1 would otherwise read the API);
//! - a POST must come from this origin and carry the per-process token the pages hold;
//! - every response forbids scripts, styles and frames from anywhere but here, and sniffing.

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::server::{Shared, UiError};

/// The header a POST carries the token in.
pub(crate) const TOKEN_HEADER: &str = "x-sandmap-token";

/// What the guard checks against.
pub(crate) struct Guard {
    /// The `Host` values accepted.
    hosts: Vec<String>,
    /// Listening on every interface: any IP literal with the port is accepted too.
    any_ip: bool,
    port: u16,
    /// The random per-process token a page must send with a POST.
    pub token: String,
}

impl Guard {
    /// The rules for a server bound to `addr`.
    pub fn new(addr: SocketAddr) -> Result<Self, UiError> {
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes).map_err(|e| UiError::Token(e.to_string()))?;
        let port = addr.port();
        let mut hosts = vec![addr.to_string()];
        if addr.ip().is_loopback() || addr.ip().is_unspecified() {
            hosts.push(format!("localhost:{port}"));
        }
        Ok(Self { hosts, any_ip: addr.ip().is_unspecified(), port, token: hex::encode(bytes) })
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        if self.hosts.contains(&host) {
            return true;
        }
        self.any_ip && host.parse::<SocketAddr>().is_ok_and(|a| a.port() == self.port)
    }

    /// Why a POST is refused, if it is.
    fn post_refusal(&self, headers: &HeaderMap, host: &str) -> Option<&'static str> {
        let given = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !constant_time_eq(given.as_bytes(), self.token.as_bytes()) {
            return Some("this request does not carry the viewer's token");
        }
        if let Some(origin) = headers.get(header::ORIGIN)
            && origin.to_str().ok() != Some(format!("http://{host}").as_str())
        {
            return Some("this request comes from another origin");
        }
        if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
            && site != "same-origin"
        {
            return Some("this request comes from another site");
        }
        None
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The middleware: refuse what the rules refuse, and add the security headers to the rest.
pub(crate) async fn check(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let refusal = if !state.guard.host_allowed(&host) {
        Some((StatusCode::MISDIRECTED_REQUEST, "this server answers only to the address it listens on"))
    } else if request.method() == Method::POST {
        state.guard.post_refusal(request.headers(), &host).map(|why| (StatusCode::FORBIDDEN, why))
    } else if request.method() != Method::GET && request.method() != Method::HEAD {
        Some((StatusCode::METHOD_NOT_ALLOWED, "only GET, HEAD and POST"))
    } else {
        None
    };
    let mut response = match refusal {
        Some((status, why)) => (status, why).into_response(),
        None => next.run(request).await,
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_address_listened_on_is_a_host() {
        let guard = Guard::new("127.0.0.1:8737".parse().unwrap()).unwrap();
        assert!(guard.host_allowed("127.0.0.1:8737"));
        assert!(guard.host_allowed("LOCALHOST:8737"));
        for foreign in ["evil.example:8737", "127.0.0.1:80", "", "127.0.0.1", "localhost", "127.0.0.2:8737"] {
            assert!(!guard.host_allowed(foreign), "{foreign}");
        }
        let open = Guard::new("0.0.0.0:9000".parse().unwrap()).unwrap();
        assert!(open.host_allowed("192.168.1.5:9000"));
        assert!(!open.host_allowed("attacker.example:9000"));
        assert_eq!(guard.token.len(), 48);
        assert_ne!(guard.token, open.token);
    }
}
