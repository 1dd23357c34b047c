//! A Server-Sent Events decoder: bytes in, events out. Tolerates `\r\n`, split chunks, comments
//! and multi-line data, and bounds how much it buffers so a hostile upstream cannot grow memory.

/// One event of an SSE stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, empty when absent.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental decoder.
#[derive(Debug)]
pub struct SseDecoder {
    buf: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
    max_event_bytes: usize,
}

/// The upstream sent an event larger than the decoder accepts.
#[derive(Debug, thiserror::Error)]
#[error("an event of the upstream stream is larger than {0} bytes")]
pub struct SseTooLarge(pub usize);

impl SseDecoder {
    /// A decoder refusing events over `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            buf: Vec::new(),
            event: String::new(),
            data: String::new(),
            has_data: false,
            max_event_bytes,
        }
    }

    /// Feeds bytes; returns the events completed by them.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseTooLarge> {
        // Lines are read in place (no copy per line) from the buffer, taken out for the loop.
        let mut buf = std::mem::take(&mut self.buf);
        buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos;
            let line_end = if end > start && buf[end - 1] == b'\r' {
                end - 1
            } else {
                end
            };
            let event = self.line(&String::from_utf8_lossy(&buf[start..line_end]));
            start = end + 1;
            if let Some(event) = event {
                out.push(event);
            }
            if self.data.len() + self.event.len() > self.max_event_bytes {
                return Err(SseTooLarge(self.max_event_bytes));
            }
        }
        buf.drain(..start);
        self.buf = buf;
        if self.buf.len() > self.max_event_bytes {
            return Err(SseTooLarge(self.max_event_bytes));
        }
        Ok(out)
    }

    /// Ends the stream: a last event without its blank line still counts.
    pub fn finish(&mut self) -> Option<SseEvent> {
        if !self.buf.is_empty() {
            let line = String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
            if let Some(event) = self.line(line.trim_end_matches('\r')) {
                return Some(event);
            }
        }
        self.dispatch()
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        Some(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_split_chunks_crlf_comments_and_multiline() {
        let mut d = SseDecoder::new(1024);
        let mut events = d.push(b": hi\r\nevent: a\r\ndata: one\r\nda").expect("ok");
        assert!(events.is_empty());
        events.extend(d.push(b"ta: two\r\n\r\ndata:x\n\n").expect("ok"));
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: "a".into(),
                    data: "one\ntwo".into()
                },
                SseEvent {
                    event: String::new(),
                    data: "x".into()
                }
            ]
        );
        assert_eq!(d.push(b"data: tail").expect("ok"), vec![]);
        assert_eq!(d.finish().map(|e| e.data), Some("tail".into()));
    }

    #[test]
    fn refuses_oversized_events() {
        let mut d = SseDecoder::new(16);
        assert!(d.push(&[b'a'; 64]).is_err());
        let mut d = SseDecoder::new(16);
        assert!(d.push(b"data: 0123456789abcdefghij\n").is_err());
    }
}
