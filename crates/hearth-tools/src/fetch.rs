//! `fetch_url`: fetches a web page and returns it as readable Markdown (scripts, styles and
//! page chrome dropped). Only http(s); each hop of a redirect is checked against the address
//! rules in [`crate::net`] and connected to the address that was checked (no DNS rebinding);
//! the body is read up to a size limit, the whole fetch under a time limit.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::StreamExt as _;
use hearth_llm::ToolSpec;
use serde_json::{json, Value};

use crate::net::{non_public, Allowlist};
use crate::{Tool, ToolError};

const MAX_REDIRECTS: usize = 5;
const DEFAULT_MAX_CHARS: usize = 20_000;

/// The `fetch_url` tool.
pub struct FetchUrl {
    allow: Allowlist,
    max_bytes: usize,
    timeout: Duration,
}

impl FetchUrl {
    /// A fetcher with these limits.
    pub fn new(allow: Allowlist, max_bytes: usize, timeout: Duration) -> Self {
        Self {
            allow,
            max_bytes,
            timeout,
        }
    }

    /// The address to connect to for `url`, after the checks.
    async fn check(&self, url: &reqwest::Url) -> Result<SocketAddr, ToolError> {
        match url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(ToolError::Failed(format!(
                    "only http and https URLs can be fetched, not {other}"
                )))
            }
        }
        let host = url
            .host_str()
            .ok_or_else(|| ToolError::Failed("the URL has no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(80);
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| ToolError::Failed(format!("cannot resolve {host}: {e}")))?
                .collect(),
        };
        // The connection goes to this very address, so what is checked is what is reached.
        let addr = *addrs
            .first()
            .ok_or_else(|| ToolError::Failed(format!("{host} has no address")))?;
        match non_public(addr.ip()) {
            Some(_) if self.allow.allows_host(&host) || self.allow.allows_ip(addr.ip()) => Ok(addr),
            Some(kind) => Err(ToolError::Failed(format!(
                "refusing to fetch {host}: it resolves to a {kind} address ({}); an admin can allow it with tools.fetch_allowlist",
                addr.ip()
            ))),
            None => Ok(addr),
        }
    }

    async fn fetch(&self, url: &str, max_chars: usize) -> Result<String, ToolError> {
        let mut url: reqwest::Url = url
            .parse()
            .map_err(|e| ToolError::Failed(format!("`{url}` is not a URL: {e}")))?;
        for _ in 0..=MAX_REDIRECTS {
            let addr = self.check(&url).await?;
            let host = url.host_str().unwrap_or_default().to_owned();
            let client = reqwest::Client::builder()
                // A proxy would resolve the host itself and bypass the address check.
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .resolve(&host, addr)
                .timeout(self.timeout)
                .user_agent("Hearth fetch_url (+https://github.com/hearth)")
                .build()
                .map_err(|e| ToolError::Failed(e.to_string()))?;
            let response = client
                .get(url.clone())
                .header(
                    reqwest::header::ACCEPT,
                    "text/html, text/plain, application/json;q=0.9, */*;q=0.5",
                )
                .send()
                .await
                .map_err(|e| {
                    ToolError::Failed(format!("fetching {url} failed: {}", e.without_url()))
                })?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| {
                        ToolError::Failed(format!("{url} redirected without a location"))
                    })?;
                url = url
                    .join(location)
                    .map_err(|e| ToolError::Failed(format!("bad redirect from {url}: {e}")))?;
                continue;
            }
            if !status.is_success() {
                return Err(ToolError::Failed(format!("{url} answered {status}")));
            }
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("text/html")
                .to_lowercase();
            let body = self.read_limited(response).await?;
            let text = String::from_utf8_lossy(&body);
            let markdown = if content_type.contains("html") {
                // The same bounded conversion as knowledge uploads (a page nested 100,000 deep
                // fails instead of overflowing a stack), on a blocking thread.
                let html = text.into_owned();
                tokio::task::spawn_blocking(move || {
                    let limits = hearth_rag::ParseLimits::default();
                    hearth_rag::parse::html_to_markdown(
                        &html,
                        &["footer", "header", "form"],
                        &limits,
                    )
                })
                .await
                .map_err(|_| ToolError::Failed("cannot read the page".into()))?
                .map_err(|e| ToolError::Failed(format!("cannot read the page: {e}")))?
            } else if content_type.starts_with("text/")
                || content_type.contains("json")
                || content_type.contains("xml")
            {
                text.into_owned()
            } else {
                return Err(ToolError::Failed(format!(
                    "{url} is {content_type}, not a page or text"
                )));
            };
            return Ok(truncate(markdown.trim(), max_chars, &url));
        }
        Err(ToolError::Failed(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }

    async fn read_limited(&self, response: reqwest::Response) -> Result<Vec<u8>, ToolError> {
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                ToolError::Failed(format!("reading the page failed: {}", e.without_url()))
            })?;
            let room = self.max_bytes.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= self.max_bytes {
                break;
            }
        }
        Ok(body)
    }
}

fn truncate(text: &str, max_chars: usize, url: &reqwest::Url) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max_chars).collect();
    format!("{cut}\n\n[truncated: the page at {url} is longer than {max_chars} characters]")
}

impl Tool for FetchUrl {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "fetch_url".into(),
            description:
                "Fetches a public web page (http or https) and returns its text as Markdown.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "url": {"type": "string", "description": "The page's URL."},
                    "max_chars": {"type": "integer", "description": "Longest text to return (default 20000)."}
                },
                "required": ["url"],
                "additionalProperties": false,
            }),
        }
    }

    fn call(&self, arguments: Value) -> BoxFuture<'_, Result<String, ToolError>> {
        Box::pin(async move {
            let url = arguments["url"].as_str().unwrap_or_default().to_owned();
            let max_chars = arguments["max_chars"]
                .as_u64()
                .map(|n| (n as usize).clamp(100, 200_000))
                .unwrap_or(DEFAULT_MAX_CHARS);
            tokio::time::timeout(self.timeout, self.fetch(&url, max_chars))
                .await
                .map_err(|_| {
                    ToolError::Failed(format!(
                        "fetching {url} took longer than {} s",
                        self.timeout.as_secs()
                    ))
                })?
        })
    }
}
