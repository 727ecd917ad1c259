//! Reading a request body under a size limit and a time limit. A body over the size limit is
//! still read and dropped, up to a bound, before the 413 goes out: a server that closes a
//! connection with unread bytes makes the kernel reset it, and a client still sending then sees
//! a broken pipe instead of the answer (nginx's "lingering close" exists for the same reason).

use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use futures_util::StreamExt;
use tokio::time::{timeout_at, Instant};

/// How much more than the limit is read and dropped before answering 413.
pub const DRAIN_BYTES: usize = 64 << 20;

#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Over the size limit.
    TooLarge,
    /// Not all of the body (up to the limit) arrived in time.
    TimedOut,
    Unreadable(String),
}

/// The whole body when it holds at most `max` bytes and arrives within `within`.
pub async fn read_limited(body: Body, max: usize, within: Duration) -> Result<Bytes, BodyError> {
    let deadline = Instant::now() + within;
    // A declared length past what would be drained is refused before reading anything.
    if body
        .size_hint()
        .exact()
        .is_some_and(|n| n > (max.saturating_add(DRAIN_BYTES)) as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut stream = body.into_data_stream();
    let mut kept = Vec::new();
    let mut seen = 0usize;
    loop {
        let next = match timeout_at(deadline, stream.next()).await {
            Ok(next) => next,
            // Late while draining: the answer is still "too large".
            Err(_) if seen > max => return Err(BodyError::TooLarge),
            Err(_) => return Err(BodyError::TimedOut),
        };
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| BodyError::Unreadable(e.to_string()))?;
        seen = seen.saturating_add(chunk.len());
        if seen > max.saturating_add(DRAIN_BYTES) {
            return Err(BodyError::TooLarge);
        }
        if seen <= max {
            kept.extend_from_slice(&chunk);
        }
    }
    if seen > max {
        Err(BodyError::TooLarge)
    } else {
        Ok(Bytes::from(kept))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streamed(chunks: Vec<&'static [u8]>) -> Body {
        let items: Vec<Result<Bytes, std::io::Error>> =
            chunks.into_iter().map(|c| Ok(Bytes::from(c))).collect();
        Body::from_stream(futures_util::stream::iter(items))
    }

    #[tokio::test]
    async fn bodies_up_to_the_limit_are_kept_and_longer_ones_read_to_the_end_then_refused() {
        let second = Duration::from_secs(1);
        let body = streamed(vec![b"abc", b"def"]);
        assert_eq!(read_limited(body, 6, second).await.unwrap(), "abcdef");
        let body = streamed(vec![b"abc", b"defg"]);
        assert_eq!(
            read_limited(body, 6, second).await,
            Err(BodyError::TooLarge)
        );
        let body = Body::from(vec![0u8; DRAIN_BYTES + 11]);
        assert_eq!(
            read_limited(body, 10, second).await,
            Err(BodyError::TooLarge)
        );
    }

    #[tokio::test]
    async fn a_body_that_stops_arriving_times_out_unless_it_is_already_too_large() {
        let stalled = |first: &'static [u8]| {
            let head =
                futures_util::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(first))]);
            Body::from_stream(head.chain(futures_util::stream::pending()))
        };
        let short = Duration::from_millis(50);
        assert_eq!(
            read_limited(stalled(b"ab"), 4, short).await,
            Err(BodyError::TimedOut)
        );
        assert_eq!(
            read_limited(stalled(b"abcdef"), 4, short).await,
            Err(BodyError::TooLarge)
        );
    }
}
