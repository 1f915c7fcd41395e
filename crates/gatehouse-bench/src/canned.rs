//! An MCP endpoint that answers without doing any work: the load generator's own ceiling.
//!
//! It answers `initialize` with a session id, notifications with 202, `tools/list` with one
//! `echo` tool and every other request with a fixed `tools/call` result, always as JSON. It
//! checks nothing, so it measures what the generator, HTTP/1.1 and loopback cost by themselves.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// Serves the canned responder on `listener` until the process ends.
pub async fn serve_canned(listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let service = service_fn(answer);
            // A connection closed by the client ends here; there is nothing to report.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[derive(Deserialize)]
struct Probe {
    id: Option<Value>,
    method: Option<String>,
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(reply(StatusCode::BAD_REQUEST, Bytes::new(), None)),
    };
    let Ok(probe) = serde_json::from_slice::<Probe>(&body) else {
        return Ok(reply(StatusCode::BAD_REQUEST, Bytes::new(), None));
    };
    let Some(id) = probe.id else {
        return Ok(reply(StatusCode::ACCEPTED, Bytes::new(), None));
    };
    let (result, session) = match probe.method.as_deref() {
        Some("initialize") => (
            json!({
                "protocolVersion": "2025-11-25",
                "capabilities": { "tools": {} },
                "serverInfo": { "name": "canned", "version": "0" },
            }),
            Some(NEXT_SESSION.fetch_add(1, Ordering::Relaxed)),
        ),
        Some("tools/list") => (
            json!({ "tools": [{ "name": "echo", "inputSchema": { "type": "object" } }] }),
            None,
        ),
        _ => (
            json!({ "content": [{ "type": "text", "text": "hello" }] }),
            None,
        ),
    };
    let message = json!({ "jsonrpc": "2.0", "id": id, "result": result });
    Ok(reply(
        StatusCode::OK,
        Bytes::from(message.to_string()),
        session,
    ))
}

fn reply(status: StatusCode, body: Bytes, session: Option<u64>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(session) = session.and_then(|s| HeaderValue::from_str(&format!("canned-{s}")).ok())
    {
        headers.insert("mcp-session-id", session);
    }
    response
}
