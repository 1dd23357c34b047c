//! Server-sent event bodies that write every event ready at one moment as one frame.
//!
//! axum's `Sse` makes each event a body frame of its own, so a fast upstream costs a write and a
//! TCP segment per token; at 64 streams of tokens as fast as they come, those writes were most
//! of a core. Here the events already waiting are joined into one frame: nothing waits for more,
//! so the first token goes out as soon as it exists, and a busy stream writes in batches.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::Response;
use futures_util::{Stream, StreamExt as _};

/// A comment line sent this often keeps an idle stream open through proxies.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// At most this many events go into one frame.
const MAX_BATCH: usize = 256;

/// Appends one event: `id:` and `event:` when given, each line of `data` as a `data:` line.
pub fn encode(out: &mut String, id: Option<&str>, event: Option<&str>, data: &str) {
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(id);
        out.push('\n');
    }
    if let Some(event) = event {
        out.push_str("event: ");
        out.push_str(event);
        out.push('\n');
    }
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push('\n');
    }
    out.push('\n');
}

/// One event holding only `data`.
pub fn data_event(data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 8);
    encode(&mut out, None, None, data);
    out
}

/// `events` until they end or `ended` resolves (the caller's credential stopped being valid,
/// see `Accounts::credential_ended`); then one last event, made by `last` from the reason.
pub fn until_ended(
    events: impl Stream<Item = String> + Send + 'static,
    ended: impl std::future::Future<Output = String> + Send + 'static,
    last: impl FnOnce(&str) -> String + Send + 'static,
) -> impl Stream<Item = String> + Send + 'static {
    let reason = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let slot = std::sync::Arc::clone(&reason);
    let ended = async move {
        let why = ended.await;
        *slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(why);
    };
    // `take_until` ends the stream the moment `ended` resolves, whatever `events` is waiting on.
    events.take_until(ended).chain(
        futures_util::stream::once(async move {
            let why = reason
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            why.map(|why| last(&why))
        })
        .filter_map(std::future::ready),
    )
}

/// An SSE response of encoded events (see [`encode`]), with heartbeats every [`HEARTBEAT`].
/// It holds `slot` (one of the user's live connections) until the stream is dropped.
pub fn response(
    events: impl Stream<Item = String> + Send + 'static,
    slot: crate::ws::SocketSlot,
) -> Response {
    let events = events.map(move |e| {
        let _held = &slot;
        e
    });
    response_with_heartbeat(events, HEARTBEAT)
}

fn response_with_heartbeat(
    events: impl Stream<Item = String> + Send + 'static,
    every: Duration,
) -> Response {
    // `None` marks the end of the events, so the heartbeats stop with them.
    let frames = events
        .ready_chunks(MAX_BATCH)
        .map(|batch| Some(Bytes::from(batch.concat())))
        .chain(futures_util::stream::once(async { None }));
    let start = tokio::time::Instant::now() + every;
    let beats = futures_util::stream::unfold(
        tokio::time::interval_at(start, every),
        |mut ticks| async move {
            ticks.tick().await;
            Some((Some(Bytes::from_static(b":\n\n")), ticks))
        },
    );
    let body = futures_util::stream::select(frames, beats)
        .take_while(|frame| std::future::ready(frame.is_some()))
        .map(|frame| Ok::<_, Infallible>(frame.unwrap_or_default()));
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    // Proxies must not buffer the stream.
    headers.insert(
        header::HeaderName::from_static("x-accel-buffering"),
        header::HeaderValue::from_static("no"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_encoded_line_by_line() {
        let mut out = String::new();
        encode(&mut out, Some("7"), Some("text_delta"), "a\nb\r\nc");
        assert_eq!(
            out,
            "id: 7\nevent: text_delta\ndata: a\ndata: b\ndata: c\n\n"
        );
        assert_eq!(data_event("[DONE]"), "data: [DONE]\n\n");
    }

    #[tokio::test]
    async fn ready_events_share_a_frame_and_the_body_ends_with_them() {
        let events = futures_util::stream::iter(["one", "two", "three"].map(data_event));
        let (sockets, user) = (
            crate::ws::Sockets::default(),
            hearth_core::ids::UserId::new(),
        );
        let slot = sockets.stream_slot(user, 1).expect("a slot");
        let response = response(events, slot);
        assert!(
            sockets.stream_slot(user, 1).is_err(),
            "the stream holds the user's one slot"
        );
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        let mut body = response.into_body().into_data_stream();
        let first = body.next().await.expect("a frame").expect("no error");
        assert_eq!(first, "data: one\n\ndata: two\n\ndata: three\n\n");
        assert!(body.next().await.is_none(), "the body ends with the events");
        drop(body);
        assert!(
            sockets.stream_slot(user, 1).is_ok(),
            "a dropped stream gives its slot back"
        );
    }

    #[tokio::test]
    async fn a_stream_ends_with_a_last_event_when_its_credential_ends() {
        let (end, ended) = tokio::sync::oneshot::channel::<String>();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let events = tokio_stream_of(rx);
        let mut out = Box::pin(until_ended(
            events,
            async move { ended.await.unwrap_or_default() },
            |reason| data_event(&format!("ended: {reason}")),
        ));
        tx.send(data_event("one")).expect("send");
        assert_eq!(out.next().await.as_deref(), Some("data: one\n\n"));
        end.send("session has ended".into()).expect("end");
        assert_eq!(
            out.next().await.as_deref(),
            Some("data: ended: session has ended\n\n")
        );
        assert_eq!(out.next().await, None, "nothing after the end");
        assert!(
            tx.send(data_event("two")).is_err(),
            "the events (an upstream call) were dropped at once"
        );

        // Events that end first end the stream without waiting for the credential.
        let events = futures_util::stream::iter([data_event("only")]);
        let out: Vec<String> = until_ended(events, std::future::pending(), |_| unreachable!())
            .collect()
            .await;
        assert_eq!(out, vec![data_event("only")]);
    }

    fn tokio_stream_of(
        mut rx: tokio::sync::mpsc::UnboundedReceiver<String>,
    ) -> impl Stream<Item = String> + Send + 'static {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }

    #[tokio::test]
    async fn an_idle_stream_gets_heartbeats() {
        let (tx, rx) = tokio::sync::mpsc::channel::<String>(1);
        let events =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|e| (e, rx)) },
            );
        let mut body = response_with_heartbeat(events, Duration::from_millis(20))
            .into_body()
            .into_data_stream();
        let beat = body.next().await.expect("a frame").expect("no error");
        assert_eq!(beat, ":\n\n");
        tx.send(data_event("x")).await.expect("send");
        drop(tx);
        let mut rest = Vec::new();
        while let Some(frame) = body.next().await {
            rest.extend_from_slice(&frame.expect("no error"));
        }
        let rest = String::from_utf8(rest).expect("utf-8");
        assert!(rest.contains("data: x\n\n"), "{rest}");
    }
}
