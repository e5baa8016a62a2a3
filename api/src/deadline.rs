//! Request deadlines from the `grpc-timeout` header, which gRPC clients send and
//! grpc-gateway also reads from REST requests. A request that runs past its
//! deadline fails with DEADLINE_EXCEEDED (504 over REST).

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use crate::domain::Error;

/// Parses a `grpc-timeout` value: 1 to 8 digits and a unit, H (hours), M
/// (minutes), S (seconds), m (milliseconds), u (microseconds) or n (nanoseconds),
/// as the gRPC over HTTP/2 protocol defines it and grpc-gateway reads it from REST
/// requests.
pub fn parse_grpc_timeout(value: &str) -> Result<Duration, Error> {
    let invalid = || {
        Error::invalid_request(
            "grpc-timeout",
            format!("must be 1 to 8 digits followed by H, M, S, m, u or n, such as 5S, got {value:?}"),
        )
    };
    let split = value.len().checked_sub(1).filter(|&index| value.is_char_boundary(index)).ok_or_else(invalid)?;
    let (digits, unit) = value.split_at(split);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(invalid());
    }
    let amount: u64 = digits.parse().map_err(|_| invalid())?;
    match unit {
        "H" => Ok(Duration::from_secs(amount * 3600)),
        "M" => Ok(Duration::from_secs(amount * 60)),
        "S" => Ok(Duration::from_secs(amount)),
        "m" => Ok(Duration::from_millis(amount)),
        "u" => Ok(Duration::from_micros(amount)),
        "n" => Ok(Duration::from_nanos(amount)),
        _ => Err(invalid()),
    }
}

/// Runs `call` and returns its output, or `None` when `deadline` passes first or
/// had passed by the time the call finished. The clock is read on every poll, so
/// the result does not depend on the timer's millisecond granularity.
pub async fn run_before<F: Future>(deadline: Instant, call: F) -> Option<F::Output> {
    let mut call = pin!(call);
    let mut timer = pin!(tokio::time::sleep_until(deadline));
    std::future::poll_fn(|context| {
        if let Poll::Ready(output) = call.as_mut().poll(context) {
            return Poll::Ready((Instant::now() < deadline).then_some(output));
        }
        if Instant::now() >= deadline || timer.as_mut().poll(context).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

/// Returns the instant by which a gRPC call must respond: a tenth of the client's
/// timeout (at least 1 ms) before it, so the DEADLINE_EXCEEDED status reaches the
/// client before tonic's own timer ends the call with CANCELLED.
pub fn grpc_answer_by(started: Instant, timeout: Duration) -> Instant {
    let margin = (timeout / 10).max(Duration::from_millis(1)).min(timeout);
    started + (timeout - margin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_parses_every_unit() {
        let cases = [
            ("2H", Duration::from_secs(7200)),
            ("3M", Duration::from_secs(180)),
            ("5S", Duration::from_secs(5)),
            ("250m", Duration::from_millis(250)),
            ("7u", Duration::from_micros(7)),
            ("1n", Duration::from_nanos(1)),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_grpc_timeout(input).unwrap(), expected, "input {input}");
        }
        for input in ["", "S", "5", "5s", "123456789S", "-5S", "5 S", "é"] {
            assert!(parse_grpc_timeout(input).is_err(), "input {input:?}");
        }
    }

    #[tokio::test]
    async fn run_before_rejects_late_results() {
        let now = Instant::now();
        assert_eq!(run_before(now + Duration::from_secs(5), async { 1 }).await, Some(1));
        assert_eq!(run_before(now, async { 1 }).await, None);
        let slow = tokio::time::sleep(Duration::from_millis(50));
        assert_eq!(run_before(Instant::now() + Duration::from_millis(5), slow).await, None);
    }
}
