//! An incremental Server-Sent Events parser: bytes in as they arrive, `data` payloads out.
//! Strict where servers go wrong (unknown fields, overlong lines), so a broken stream is
//! reported as malformed instead of silently losing tokens.

/// Longest line accepted; a server that sends more without a newline is broken.
pub const MAX_LINE_BYTES: usize = 1 << 20;

#[derive(Debug, Default)]
pub struct SseParser {
    pending: Vec<u8>,
    data: Option<String>,
    line_number: usize,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed the next chunk; returns the events it completed (their joined `data` lines).
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<String>, String> {
        self.pending.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut consumed = 0;
        while let Some(newline) = self.pending[consumed..].iter().position(|&b| b == b'\n') {
            let end = consumed + newline;
            let line = &self.pending[consumed..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let line = std::str::from_utf8(line)
                .map_err(|_| format!("SSE line {}: not UTF-8", self.line_number + 1))?
                .to_string();
            consumed = end + 1;
            self.line_number += 1;
            if let Some(event) = self.line(&line)? {
                events.push(event);
            }
        }
        self.pending.drain(..consumed);
        if self.pending.len() > MAX_LINE_BYTES {
            return Err(format!(
                "SSE line {}: over {MAX_LINE_BYTES} bytes without a newline",
                self.line_number + 1
            ));
        }
        Ok(events)
    }

    /// The stream ended: an event not yet closed by a blank line still counts (some servers
    /// omit the last blank line).
    pub fn finish(&mut self) -> Result<Option<String>, String> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            let line = String::from_utf8(rest)
                .map_err(|_| format!("SSE line {}: not UTF-8", self.line_number + 1))?;
            self.line_number += 1;
            if let Some(event) = self.line(&line)? {
                return Ok(Some(event));
            }
        }
        Ok(self.data.take())
    }

    fn line(&mut self, line: &str) -> Result<Option<String>, String> {
        if line.is_empty() {
            return Ok(self.data.take());
        }
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                match &mut self.data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => self.data = Some(value.to_string()),
                }
                Ok(None)
            }
            "event" | "id" | "retry" => Ok(None),
            _ => Err(format!(
                "SSE line {}: unknown field in {:?}",
                self.line_number,
                truncate(line, 80)
            )),
        }
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_crlf() {
        let mut p = SseParser::new();
        assert!(p.push(b"data: {\"a\"").unwrap().is_empty());
        assert_eq!(
            p.push(b":1}\r\n\r\ndata: [DONE]\n").unwrap(),
            vec!["{\"a\":1}"]
        );
        assert_eq!(p.push(b"\n").unwrap(), vec!["[DONE]"]);
        assert_eq!(p.finish().unwrap(), None);
    }

    #[test]
    fn comments_and_known_fields_are_skipped_multiline_data_joined() {
        let mut p = SseParser::new();
        let events = p
            .push(b": keep-alive\nevent: message\nid: 7\ndata:x\ndata: y\n\n")
            .unwrap();
        assert_eq!(events, vec!["x\ny"]);
    }

    #[test]
    fn unterminated_last_event_is_kept() {
        let mut p = SseParser::new();
        assert!(p.push(b"data: last").unwrap().is_empty());
        assert_eq!(p.finish().unwrap().as_deref(), Some("last"));
    }

    #[test]
    fn garbage_lines_are_errors_with_their_line_number() {
        let mut p = SseParser::new();
        let err = p.push(b"data: ok\n\n{not sse}\n").unwrap_err();
        assert!(err.contains("SSE line 3"), "{err}");
    }

    #[test]
    fn endless_line_is_refused() {
        let mut p = SseParser::new();
        let err = p.push(&vec![b'x'; MAX_LINE_BYTES + 1]).unwrap_err();
        assert!(err.contains("without a newline"), "{err}");
    }
}
